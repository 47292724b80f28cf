"""Reverse mode by transformation: the VJP procedure of straight-line code.

For a one-parameter procedure ``f`` whose body is one block (let and arithmetic, no branches,
no calls with active arguments), ``f__vjp`` takes ``x`` and returns ``(f(x) . df/dx)``: the
forward sweep is ``f``'s body; the reverse sweep walks the active primitives backwards,
turning the result's cotangent (1) into their operands' with the VJP rules
(autodiff_rules.py) and adding the contributions of a value's several uses. Nothing is taped:
the reverse sweep reads the forward sweep's SSA values directly.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import func

from eshkol.dialect import ops
from eshkol.passes.autodiff_analysis import FnInfo, ModuleInfo, attr_str
from eshkol.passes.autodiff_jvp import Builder, new_procedure
from eshkol.passes.autodiff_rules import vjp_rule


def build_vjp(mi: ModuleInfo, inf: FnInfo, made: dict[str, str]) -> str:
    """The VJP procedure of ``inf`` (see vjp_ready), built on first request."""
    got = made.get(inf.sym)
    if got is not None:
        return got
    name = f"{inf.sym}__vjp"
    made[inf.sym] = name
    new = new_procedure(mi, inf, name, 1)
    entry = new.add_entry_block()
    old = inf.blocks[0]
    vmap = {old.arguments[0]: entry.arguments[0], old.arguments[1]: entry.arguments[1]}
    b = Builder(new.body, entry, ir.Location.unknown())
    tape = []  # the active primitives, in forward order
    ret = None
    for op in old.operations:
        op = op.operation
        if op.name == "func.return":
            ret = op
            break
        b.loc = op.location
        if op.name == ops.TAIL_CALL:  # its result is paired with the gradient: a plain call
            vmap[op.results[0]] = b.call(vmap[op.operands[0]], [vmap[v] for v in list(op.operands)[1:]])
            continue
        new_op = b.copy(op, [vmap[v] for v in op.operands])
        for r, n in zip(op.results, new_op.results, strict=True):
            vmap[r] = n
        if op.name == ops.PRIM and any(r in inf.active for r in op.results):
            tape.append(op)
    out = ret.operands[0]
    b.loc = ret.location
    adj: dict[ir.Value, ir.Value] = {}
    if out in inf.active:
        adj[out] = b.float(1.0)
    for op in reversed(tape):
        g = adj.get(op.results[0])
        if g is None:
            continue
        b.loc = op.location
        need = [v in inf.active for v in op.operands]
        contrib = vjp_rule(attr_str(op, "name"))(b, [vmap[v] for v in op.operands], vmap[op.results[0]], g, need)
        for v, c, n in zip(op.operands, contrib, need, strict=True):
            if c is None or not n:
                continue
            adj[v] = c if v not in adj else b.prim("%add2", adj[v], c)
    b.loc = ret.location
    x = old.arguments[1]
    grad = adj.get(x)
    if grad is None:
        grad = b.float(0.0)
    pair = b.prim("cons", vmap[out], grad)
    with ir.InsertionPoint(b.block), ret.location:
        func.ReturnOp([pair])
    return name
