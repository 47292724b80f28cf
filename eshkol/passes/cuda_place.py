"""Send tensors made by creation builtins to the current device (with-device).

For the cuda target: the result of every ``create`` primitive (zeros, ones, arange, tensor
literals, ...) goes through ``%tensor-place``, which moves a fresh host tensor to the GPU
inside ``(with-device 'cuda:0 ...)`` and returns anything else unchanged, so the creation
builtins stay device-agnostic (runtime_c/cuda_tensor.c: esk_tensor_place).
"""

from __future__ import annotations

from mlir import ir

from eshkol.dialect import ops, primitives

PLACE = "%tensor-place"


def _placed(name: str) -> bool:
    p = primitives.lookup(name)
    return p is not None and p.kind == "create" and not name.startswith("gpu-")


def run(module: ir.Operation) -> None:
    """Follow each creation primitive's result by ``%tensor-place``."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == ops.PRIM and _placed(ir.StringAttr(op.attributes["name"]).value):
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.walk(visit)
    for op in found:
        with ir.InsertionPoint(op), op.location:
            placed = ir.Operation.create(ops.PRIM, results=[ops.value_type()], operands=[op.result],
                                         attributes={"name": ir.StringAttr.get(PLACE)})
        placed.move_after(op)
        op.result.replace_all_uses_except(placed.result, placed)
