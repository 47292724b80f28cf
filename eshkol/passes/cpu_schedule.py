"""Attach the host's vectorization schedule (lower/cpu.py) to the kernels module, for the
transform interpreter that follows in eshkol-cpu-vectorize."""

from __future__ import annotations

from mlir import ir

from eshkol.lower.cpu import vectorize_schedule
from eshkol.lower.to_linalg import kernels_module

ATTR = "transform.with_named_sequence"


def run(module: ir.Operation) -> None:
    """Append ``@__transform_main`` to ``@esk_kernels`` (nothing without kernels)."""
    km = kernels_module(module)
    if km is None:
        return
    km.attributes[ATTR] = ir.UnitAttr.get()
    seq = ir.Module.parse("module attributes {transform.with_named_sequence} {\n"
                          + vectorize_schedule() + "\n}")
    body = km.regions[0].blocks[0]
    for op in list(seq.body.operations):
        body.append(op.operation)
