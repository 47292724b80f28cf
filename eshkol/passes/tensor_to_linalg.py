"""Generate linalg-on-tensors kernels for the fused tensor chains (lower/to_linalg.py).

Each ``eshkol.tensor_fused`` op gets an f64 and an f32 kernel in the nested module
``@esk_kernels``: one linalg.generic per primitive, fused by the next stage.
"""

from __future__ import annotations

from mlir import ir

from eshkol.lower import kernel_calls, to_linalg  # noqa: F401 (kernel_calls registers the op's LLVM rule)


def run(module: ir.Operation) -> None:
    """Add the kernels of the module's fused chains."""
    to_linalg.run(module)
