"""Remove the vectorization schedule from the kernels module once it has been applied."""

from __future__ import annotations

from mlir import ir

from eshkol.lower.to_linalg import kernels_module


def run(module: ir.Operation) -> None:
    """Erase ``transform.named_sequence`` ops and the marker attribute of ``@esk_kernels``."""
    km = kernels_module(module)
    if km is None:
        return
    for op in list(km.regions[0].blocks[0].operations):
        if op.operation.name == "transform.named_sequence":
            op.operation.erase()
    if "transform.with_named_sequence" in km.attributes:
        del km.attributes["transform.with_named_sequence"]
