"""Lower the eshkol dialect (with func and cf) to the LLVM dialect and the C runtime.

The rules live in eshkol/lower/to_llvm.py; this pass replaces the module's contents with
their result.
"""

from __future__ import annotations

from mlir import ir

from eshkol.lower.to_llvm import lower_block_to_llvm


def run(module: ir.Operation) -> None:
    """Replace the module body by its LLVM-dialect lowering."""
    body = module.regions[0].blocks[0]
    lowered = lower_block_to_llvm(body)
    for op in list(body.operations):
        op.erase()
    for op in list(lowered.body.operations):
        body.append(op)
