"""Erase eshkol ops whose results are unused and that have no effect.

Constants, closure construction and reads of closures and boxes are pure; global reads are
not (they check that the global is defined), nor are calls and primitives.
"""

from __future__ import annotations

from mlir import ir

from eshkol.dialect import ops

PURE = {ops.CONST_INT, ops.CONST_FLOAT, ops.CONST_IMM, ops.CONST_EXACT, ops.CONST_STRING, ops.CONST_SYMBOL,
        ops.PRIM_REF, ops.MAKE_CLOSURE, ops.CLOSURE_REF, ops.UNBOX, ops.BOX, ops.TRUTHY,
        ops.IS_DEFAULT}


def _dead_ops(module: ir.Operation) -> list[ir.Operation]:
    dead = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name in PURE and all(len(list(r.uses)) == 0 for r in op.results):
            dead.append(op)
        return ir.WalkResult.ADVANCE

    module.walk(visit)
    return dead


def run(module: ir.Operation) -> None:
    """Erase dead pure ops until none is left (erasing one can make its operands dead)."""
    while dead := _dead_ops(module):
        for op in dead:
            op.erase()
