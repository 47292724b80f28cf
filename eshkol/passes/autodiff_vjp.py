"""Reverse mode by transformation: VJP procedures (forward sweep, then adjoint sweep; no tape).

For a procedure ``f`` whose code is loop-free (``let``, ``if``, calls; autodiff_analysis.py):

- ``f__vjp`` / ``f__vjpt`` (one parameter, a number / a tensor point) return ``(f(x) . df/dx)``;
- ``f__vjpc_<kinds>`` (``n`` parameters and the cotangent ``g`` of the result) returns
  ``(f(a..) . (adjoint of a1 ... adjoint of an))``: what a caller's adjoint sweep calls for a
  call of ``f`` (the callee is differentiated by its own VJP procedure, not inlined; it runs
  its forward sweep again, so nothing crosses the call but values).

Branches: the forward sweep is copied path by path (a join block is copied once per path that
reaches it, its arguments replaced by the values that path passes), so at each return every
forward value of that path is at hand and the adjoint sweep of that path follows it, reading
them directly. The cotangent of a value is the sum of its uses' contributions (rules in
autodiff_rules.py and autodiff_rules_tensor.py); element reads of a tensor add theirs into one
zero tensor in place. ``kinds`` says which parameters are numbers: operations on numbers only
need no un-broadcasting of cotangents, so scalar code stays scalar code the specializer unboxes.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import cf, func

from eshkol.dialect import ops
from eshkol.dialect.ops import attr_str
from eshkol.passes.autodiff_analysis import FnInfo, ModuleInfo
from eshkol.passes.autodiff_jvp import Builder, new_procedure
from eshkol.passes.autodiff_rules import vjp_rule
from eshkol.passes.autodiff_rules_tensor import SCATTER_ADD
from eshkol.passes.autodiff_vjp_loop import LoopVJP, call_adjoints
from eshkol.passes.cfg import branch_edges


class VJPBuilder:
    """Builds and remembers the VJP procedures of a module's procedures."""

    def __init__(self, mi: ModuleInfo) -> None:
        self.mi = mi
        self.made: dict[tuple, str] = {}

    def top(self, sym: str, tensor_point: bool) -> str:
        """``sym``'s VJP for a gradient at one point (a number, or a tensor)."""
        return self._ensure(sym, (not tensor_point,), top=True)

    def callee(self, sym: str, kinds: tuple) -> str:
        """``sym``'s VJP for its calls: arguments, then the result's cotangent."""
        return self._ensure(sym, kinds, top=False)

    def _ensure(self, sym: str, kinds: tuple, top: bool) -> str:
        key = (sym, kinds, top)
        got = self.made.get(key)
        if got is not None:
            return got
        if top:
            name = f"{sym}__vjp" if kinds[0] else f"{sym}__vjpt"
        else:
            name = f"{sym}__vjpc_" + "".join("s" if k else "t" for k in kinds)
        self.made[key] = name
        inf = self.mi.info(sym)
        (LoopVJP if inf.loops else _VJPFunction)(self, inf, name, kinds, top).build()
        return name

    def symbols(self) -> list[str]:
        """Every VJP procedure made."""
        return list(self.made.values())


class _VJPFunction:
    def __init__(self, vb: VJPBuilder, inf: FnInfo, name: str, kinds: tuple, top: bool) -> None:
        self.vb = vb
        self.mi = vb.mi
        self.inf = inf
        self.name = name
        self.kinds = kinds
        self.top = top

    def build(self) -> None:
        inf = self.inf
        n = inf.nreq
        new = new_procedure(self.mi, inf, self.name, n if self.top else n + 1)
        entry = new.add_entry_block()
        self.region = new.body
        old = inf.blocks[0]
        self.self_arg = old.arguments[0]
        vmap = {old.arguments[i]: entry.arguments[i] for i in range(n + 1)}
        scal = {entry.arguments[1 + i] for i, k in enumerate(self.kinds) if k}
        self.g_in = None if self.top else entry.arguments[n + 1]
        self.walk(old, Builder(self.region, entry, ir.Location.unknown(), self.mi, scal), vmap, [])

    # ---- forward sweep, path by path ---------------------------------------------------------

    def walk(self, block: ir.Block, b: Builder, vmap: dict, trace: list) -> None:
        inf = self.inf
        for op in block.operations:
            op = op.operation
            b.loc = op.location
            name = op.name
            if name == "cf.br":
                succ, args = branch_edges(op)[0]
                for a, v in zip(succ.arguments, args, strict=True):
                    vmap[a] = vmap[v]
                self.walk(succ, b, vmap, trace)     # the same path: go on in the same block
                return
            if name == "cf.cond_br":
                arms = []
                for succ, args in branch_edges(op):
                    vm = dict(vmap)
                    for a, v in zip(succ.arguments, args, strict=True):
                        vm[a] = vmap[v]
                    arms.append((succ, self.region.blocks.append(), vm))
                with ir.InsertionPoint(b.block), op.location:
                    cf.CondBranchOp(vmap[op.opview.condition], [], [], arms[0][1], arms[1][1])
                for succ, nb, vm in arms:
                    self.walk(succ, Builder(self.region, nb, op.location, self.mi, b.scal), vm, list(trace))
                return
            if name == "func.return":
                self.reverse(b, vmap, trace, op)
                return
            active_in = any(v in inf.active for v in op.operands)
            if name in (ops.CALL, ops.TAIL_CALL):
                # a plain call: the results are paired with adjoints at the return
                fn = op.operands[0]
                # a self-call: this procedure's own closure is the VJP's, so make f's
                fn = b.closure(inf.sym, []) if fn == self.self_arg else vmap[fn]
                r = b.call(fn, [vmap[v] for v in list(op.operands)[1:]])
                vmap[op.results[0]] = r
                if active_in:
                    trace.append(op)
                continue
            new = b.copy(op, [vmap[v] for v in op.operands])
            for r, nr in zip(op.results, new.results, strict=True):
                vmap[r] = nr
            if name == ops.PRIM and any(r in inf.active for r in op.results):
                trace.append(op)

    # ---- adjoint sweep of one path ----------------------------------------------------------------

    def reverse(self, b: Builder, vmap: dict, trace: list, ret) -> None:
        inf = self.inf
        out = ret.operands[0]
        vout = vmap[out]
        if self.top and not b.is_scalar(vout):
            # A gradient needs a number: anything else goes back to the caller, whose guard
            # hands the call to the runtime (which reports it).
            num = b.prim("number?", vout)
            with ir.InsertionPoint(b.block), ret.location:
                c = ir.Operation.create(ops.TRUTHY, results=[ir.IntegerType.get_signless(1)],
                                        operands=[num], loc=ret.location).result
            sweep = self.region.blocks.append()
            bail = self.region.blocks.append()
            with ir.InsertionPoint(b.block), ret.location:
                cf.CondBranchOp(c, [], [], sweep, bail)
            bb = Builder(self.region, bail, ret.location, self.mi, b.scal)
            pair = bb.prim("cons", vout, bb.float(0.0))
            with ir.InsertionPoint(bb.block), ret.location:
                func.ReturnOp([pair])
            b = Builder(self.region, sweep, ret.location, self.mi, b.scal)
        self.b = b
        self.vmap = vmap
        self.adj: dict[ir.Value, ir.Value] = {}
        self.sparse: dict[ir.Value, list] = {}
        if out in inf.active:
            self.adj[out] = b.float(1.0) if self.top else self.g_in
        for op in reversed(trace):
            g = self.cotangent(op.results[0])
            if g is None:
                continue
            b.loc = op.location
            if op.name == ops.PRIM:
                self.prim_vjp(op, g)
            else:
                self.call_vjp(op, g)
        b = self.b
        b.loc = ret.location
        params = list(inf.blocks[0].arguments)[1:]
        grads = []
        for x in params:
            gx = self.cotangent(x)
            if gx is None:
                gx = b.float(0.0) if b.is_scalar(vmap[x]) else b.helper("zero-like", vmap[x])
            grads.append(gx)
        if self.top:
            rest = grads[0]
        else:
            rest = b.prim("list", *grads) if grads else b.prim("list")
        pair = b.prim("cons", vout, rest)
        with ir.InsertionPoint(b.block), ret.location:
            func.ReturnOp([pair])

    def cotangent(self, v: ir.Value) -> ir.Value | None:
        """The whole cotangent of ``v`` (its element reads' scattered contributions added)."""
        reads = self.sparse.pop(v, None)
        if reads:
            b = self.b
            z = b.prim("zeros-like", self.vmap[v])
            for helper, g, idx in reads:
                z = b.helper(helper, z, g, *idx)
            self.add(v, z)
        return self.adj.get(v)

    def add(self, v: ir.Value, c: ir.Value) -> None:
        self.adj[v] = c if v not in self.adj else self.b.prim("%add2", self.adj[v], c)

    def prim_vjp(self, op, g: ir.Value) -> None:
        inf = self.inf
        b = self.b
        pname = attr_str(op, "name")
        src = op.operands[0]
        if pname in SCATTER_ADD and src in inf.active and not any(v in inf.active for v in list(op.operands)[1:]):
            self.sparse.setdefault(src, []).append(
                (SCATTER_ADD[pname], g, [self.vmap[v] for v in list(op.operands)[1:]]))
            return
        need = [v in inf.active for v in op.operands]
        contrib = vjp_rule(pname)(b, [self.vmap[v] for v in op.operands], self.vmap[op.results[0]], g, need)
        for v, c, n in zip(op.operands, contrib, need, strict=True):
            if c is not None and n:
                self.add(v, c)

    def call_vjp(self, op, g: ir.Value) -> None:
        """A call of a known procedure: its VJP procedure gives its arguments' adjoints."""
        call_adjoints(self, op, g, self.add)
