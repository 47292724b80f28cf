"""Fold fixnum arithmetic and comparisons whose operands are constants.

Only exact results that fit in a fixnum are folded; anything that could overflow or raise an
error is left for run time, so folding never changes what a program prints.
"""

from __future__ import annotations

import operator

from mlir import ir

from eshkol.dialect import ops

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

ARITH = {"%add2": operator.add, "%sub2": operator.sub, "%mul2": operator.mul}
COMPARE = {"%num=2": operator.eq, "%num<2": operator.lt, "%num>2": operator.gt,
           "%num<=2": operator.le, "%num>=2": operator.ge}


def _const_int(v: ir.Value) -> int | None:
    owner = v.owner
    if isinstance(owner, ir.Block):
        return None
    if owner.name != ops.CONST_INT:
        return None
    return ir.IntegerAttr(owner.attributes["value"]).value


def run(module: ir.Operation) -> None:
    """Replace foldable eshkol.prim ops by constants."""
    todo = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == ops.PRIM:
            todo.append(op)
        return ir.WalkResult.ADVANCE

    module.walk(visit)
    for op in todo:
        name = ir.StringAttr(op.attributes["name"]).value
        if name not in ARITH and name not in COMPARE or len(op.operands) != 2:
            continue
        a, b = (_const_int(x) for x in op.operands)
        if a is None or b is None:
            continue
        with ir.InsertionPoint(op), op.location:
            if name in ARITH:
                r = ARITH[name](a, b)
                if not INT64_MIN <= r <= INT64_MAX:
                    continue
                new = ops.const_int(r)
            else:
                new = ops.const_imm("bool", int(COMPARE[name](a, b)))
        op.result.replace_all_uses_with(new)
        op.erase()
