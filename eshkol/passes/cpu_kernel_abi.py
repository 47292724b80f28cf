"""Give each lowered kernel its C entry and move the kernels into the program module.

See lower/kernel_abi.py; runs last in eshkol-lower-cpu, before eshkol-to-llvm.
"""

from __future__ import annotations

from mlir import ir

from eshkol.lower import kernel_abi


def run(module: ir.Operation) -> None:
    """Entries, target features, hoisting (nothing without kernels)."""
    kernel_abi.run(module)
