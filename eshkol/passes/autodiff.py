"""Differentiate by transformation the calculus calls whose procedure is statically known.

At each ``(derivative f x)``, ``(D f x)``, ``(directional-derivative f x dir)``,
``(gradient f x)`` and ``(value-and-grad f x)`` whose ``f`` is a lambda made in the same
function or a global defined once and never assigned, and whose body (and every known
procedure it calls with the point) is differentiable (autodiff_analysis.py), the call becomes:

    if x (and dir) is a flonum:  the transformed procedure on x   (no dual numbers, no tape)
    else:                        the runtime primitive, as before

Forward mode (autodiff_jvp.py) serves derivative and directional-derivative, and gradient /
value-and-grad at a flonum point of procedures with loops or that reverse mode cannot follow;
reverse mode serves gradient / value-and-grad otherwise: path by path for loop-free code
(autodiff_vjp.py), with a stack of the loop blocks' values through loops
(autodiff_vjp_loop.py). Exact points, tensors, lists, and
run-time dual numbers (a derivative nested inside a runtime one) take the runtime path, so
results and nesting (no perturbation confusion) are unchanged. Values that an enclosing
runtime derivative makes dual and that reach the transformed code as captured variables are
handled by the generic primitives the transformed code is made of.

``--eshkol-autodiff-report`` runs the same pass and prints, per call site, the path taken.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, cf

from eshkol.dialect import ops
from eshkol.dialect.ops import attr_str
from eshkol.passes.autodiff_analysis import ModuleInfo, vjp_ready
from eshkol.passes.autodiff_jvp import Builder, JVPBuilder
from eshkol.passes.autodiff_vjp import VJPBuilder
from eshkol.passes.cfg import reverse_postorder

# Calculus forms handled, with the operand count of the form that is transformed.
FORMS = {"derivative": 2, "D": 2, "directional-derivative": 3, "gradient": 2, "value-and-grad": 2}
REVERSE_FORMS = {"gradient", "value-and-grad"}


@dataclass(frozen=True)
class Site:
    """What happened at one calculus call."""

    where: str      # file:line:col
    form: str
    path: str       # 'transformed (forward)', 'transformed (reverse)' or 'runtime: <reason>'


@dataclass
class _Plan:
    fn: ir.Operation
    op: ir.Operation
    sym: str
    mode: str       # 'forward', 'reverse' or 'mixed' (flonum: forward; tensor: reverse)
    captured: list


def _where(loc: ir.Location) -> str:
    m = re.search(r'"(.*)":(\d+):(\d+)', str(loc))
    return f"{m.group(1)}:{m.group(2)}:{m.group(3)}" if m else "<unknown>"


def _decide(mi: ModuleInfo, op: ir.Operation) -> tuple[str, _Plan | None]:
    form = attr_str(op, "name")
    if len(op.operands) != FORMS[form]:
        return "runtime: the curried or several-point form", None
    callee = mi.callee_of(op.operands[0], None, None)
    if callee is None:
        return "runtime: the procedure is not statically known", None
    inf = mi.info(callee.sym)
    reverse = form in REVERSE_FORMS and vjp_ready(inf)
    if inf.reason is not None and not reverse:
        why = inf.vjp_reason if form in REVERSE_FORMS and inf.vjp_reason is not None else inf.reason
        return f"runtime: {why}", None
    if inf.nreq != 1:
        return f"runtime: the procedure takes {inf.nreq} arguments, not one point", None
    mode = "reverse" if reverse else "forward"
    if reverse and inf.loops and inf.reason is None:
        # a flonum point through a loop: forward mode (one sweep, no stack); tensor points
        # reverse mode with a stack
        return ("transformed (reverse; a flonum point: forward)",
                _Plan(None, op, callee.sym, "mixed", callee.captured))
    return f"transformed ({mode})", _Plan(None, op, callee.sym, mode, callee.captured)


def _rewrite(mi: ModuleInfo, plan: _Plan, target: str, tensor_target: str | None) -> None:
    """Split the block at the call: the transformed procedure for flonum points (and, in
    reverse mode, ``tensor_target`` for host float64 tensor points), else the runtime
    primitive (the original op, moved)."""
    op = plan.op
    form = attr_str(op, "name")
    loc = op.location
    vt = ops.value_type()
    blk = op.block
    after = []
    seen = False
    for o in blk.operations:
        if seen:
            after.append(o.operation)
        elif o.operation == op:
            seen = True
    join = blk.create_after(vt)
    slow = blk.create_after()
    tfast = blk.create_after() if tensor_target is not None else None
    check2 = blk.create_after() if tensor_target is not None else None
    fast = blk.create_after()
    for o in after:
        join.append(o)
    res = op.results[0]
    res.replace_all_uses_with(join.arguments[0])
    slow.append(op)
    with ir.InsertionPoint(slow), loc:
        cf.BranchOp([res], join)
    x = op.operands[1]
    with ir.InsertionPoint(blk), loc:
        ok = ops.has_tag(x, "flonum", loc)
        if form == "directional-derivative":
            ok = arith.AndIOp(ok, ops.has_tag(op.operands[2], "flonum", loc)).result
        cf.CondBranchOp(ok, [], [], fast, check2 if check2 is not None else slow)
    if check2 is not None:
        # a plain tensor (the tag: not a run-time dual or tape node over one), f64, on the host
        check3 = blk.create_after()
        with ir.InsertionPoint(check2), loc:
            cf.CondBranchOp(ops.has_tag(x, "tensor", loc), [], [], check3, slow)
        b = Builder(blk.region, check3, loc, mi)
        is_t = b.helper("host-f64-tensor?", x)
        with ir.InsertionPoint(b.block), loc:
            c = ir.Operation.create(ops.TRUTHY, results=[ir.IntegerType.get_signless(1)],
                                    operands=[is_t], loc=loc).result
            cf.CondBranchOp(c, [], [], tfast, slow)
    fast_mode = "forward" if plan.mode == "mixed" else plan.mode
    arms = [(fast, target, fast_mode)] + ([(tfast, tensor_target, "reverse")] if tfast is not None else [])
    for block, sym, mode in arms:
        b = Builder(blk.region, block, loc, mi)
        clos = b.closure(sym, list(plan.captured))
        if mode == "reverse":
            pair = b.call(clos, [x])
        else:
            seed = op.operands[2] if form == "directional-derivative" else b.float(1.0)
            pair = b.call(clos, [x, seed])
        p = b.prim("car", pair)
        t = b.prim("cdr", pair)
        result = b.prim("values", p, t) if form == "value-and-grad" else t
        with ir.InsertionPoint(b.block), loc:
            if form in REVERSE_FORMS:
                # The runtime reports a non-scalar result (a captured tensor): let it.
                is_num = ir.Operation.create(ops.TRUTHY, results=[ir.IntegerType.get_signless(1)],
                                             operands=[b.prim("number?", p)], loc=loc).result
                cf.CondBranchOp(is_num, [result], [], join, slow)
            else:
                cf.BranchOp([result], join)


def _order_blocks(fn: ir.Operation) -> None:
    """Blocks in reverse postorder: the LLVM text lowering wants definitions before uses."""
    region = fn.regions[0]
    for b in reverse_postorder(list(region.blocks)[0]):
        b.append_to(region)


def transform(module: ir.Operation) -> list[Site]:
    """Rewrite the module's calculus calls where possible; what happened at each."""
    mi = ModuleInfo(module)
    calls = []
    for fn in list(mi.funcs.values()):
        for block in fn.regions[0].blocks:
            for op in block.operations:
                op = op.operation
                if op.name == ops.PRIM and attr_str(op, "name") in FORMS:
                    calls.append((fn, op))
    sites, plans = [], []
    jvps: dict[str, str] = {}
    jb = JVPBuilder(mi, jvps)
    vb = VJPBuilder(mi)
    # First every transformed procedure (from the unchanged bodies), then the call sites.
    for fn, op in calls:
        path, plan = _decide(mi, op)
        sites.append(Site(_where(op.location), attr_str(op, "name"), path))
        if plan is None:
            continue
        plan.fn = fn
        if plan.mode == "mixed":
            plans.append((plan, jb.ensure(plan.sym), vb.top(plan.sym, True)))
        elif plan.mode == "reverse":
            plans.append((plan, vb.top(plan.sym, False), vb.top(plan.sym, True)))
        else:
            plans.append((plan, jb.ensure(plan.sym), None))
    for plan, target, tensor_target in plans:
        _rewrite(mi, plan, target, tensor_target)
    touched = {p[0].fn for p in plans} | {mi.funcs[s] for s in (*jvps.values(), *vb.symbols())}
    for fn in touched:
        _order_blocks(fn)
    return sites


def run(module: ir.Operation) -> None:
    """Differentiate known procedures at calculus calls by transformation (JVP/VJP)."""
    with ir.Location.unknown():
        transform(module)


def run_report(module: ir.Operation) -> None:
    """The autodiff pass, printing (stderr) which path each calculus call takes."""
    with ir.Location.unknown():
        sites = transform(module)
    for s in sites:
        print(f"{s.where}: {s.form}: {s.path}", file=sys.stderr)
    sys.stderr.flush()
