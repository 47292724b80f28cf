"""Reverse mode through loops: a VJP procedure whose forward sweep keeps a stack of records.

The path-by-path sweep of autodiff_vjp.py needs loop-free code. For a procedure with loops
(named let, do, self tail calls: loop blocks of the procedure) the forward sweep is the
procedure's own control-flow graph, every block given one more argument, the stack (an Eshkol
list): each block except the entry pushes a record (a vector: the block's number, then every
value its adjoint needs that the entry block does not define) before its terminator. The
reverse sweep is one dispatch loop that pops a record, runs that block's adjoint and goes
round again; the empty stack means the entry block, whose adjoint ends the sweep.

Adjoints that cross blocks ride on the dispatch loop's arguments:

- ``cross[v]`` for an active value used outside its defining block (a loop-carried value read
  in the body, a value from outside the loop read in it): uses add into it; the defining
  block's adjoint takes it and resets it (the next record of that block is an earlier
  instance of ``v``);
- ``sacc[v]`` for element reads (tensor-get / tensor-ref) of such a value: one zero tensor
  the reads add into in place (a loop summing n reads costs O(n), not n zero tensors);
- ``argadj[B]`` the adjoints of block ``B``'s active arguments, set by ``B``'s adjoint and read
  by the predecessor's adjoint right after (``prev``, the block just done, picks the edge).

A carried adjoint that nothing has added to yet is the fixnum 0 (helpers ``adj-add`` and
``adj-val`` in autodiff_helpers.py tell it from a real cotangent).
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
from eshkol.passes.cfg import branch_edges, edge_bindings

_CONSTS = (ops.CONST_INT, ops.CONST_FLOAT, ops.CONST_IMM, ops.CONST_EXACT)


class LoopVJP:
    """Builds one VJP procedure of a procedure with loops (see the module docstring)."""

    def __init__(self, vb, inf: FnInfo, name: str, kinds: tuple, top: bool) -> None:
        self.vb = vb
        self.mi: ModuleInfo = vb.mi
        self.inf = inf
        self.name = name
        self.kinds = kinds
        self.top = top

    # ---- analysis -----------------------------------------------------------------------------

    def _plan(self) -> None:
        inf = self.inf
        self.entry = inf.blocks[0]
        self.self_arg = self.entry.arguments[0]
        self.ids = {b: i for i, b in enumerate(inf.blocks)}
        self.def_block: dict[ir.Value, ir.Block] = {}
        for b in inf.blocks:
            for a in b.arguments:
                self.def_block[a] = b
            for op in b.operations:
                for r in op.operation.results:
                    self.def_block[r] = b
        self.trace: dict[ir.Block, list] = {}
        self.cross: list[ir.Value] = []      # adjoints carried across blocks
        self.sacc: list[ir.Value] = []       # in-place element-read accumulators
        cross, sacc = set(), set()
        need: dict[ir.Block, list] = {}
        for b in inf.blocks:
            tr, nd = [], []
            for op in b.operations:
                op = op.operation
                name = op.name
                if name in ("cf.br", "cf.cond_br"):
                    for a, v in edge_bindings(op):
                        if a in inf.active and v in inf.active and self.def_block[v] != b:
                            cross.add(v)
                    continue
                if name == "func.return":
                    v = op.operands[0]
                    if v in inf.active and self.def_block[v] != b:
                        cross.add(v)
                    continue
                active_in = any(v in inf.active for v in op.operands)
                if name in (ops.CALL, ops.TAIL_CALL):
                    if not active_in:
                        continue
                    callee = self.mi.callee_of(op.operands[0], self.self_arg, inf.sym)
                    nd += list(op.operands)[1:] + (callee.captured if callee.kind == "local" else [])
                elif name == ops.PRIM and any(r in inf.active for r in op.results):
                    nd += list(op.operands) + list(op.results)
                else:
                    continue
                tr.append(op)
                for v in list(op.operands)[1 if name != ops.PRIM else 0:]:
                    if v in inf.active and self.def_block[v] != b:
                        if self._is_read(op) and v == op.operands[0]:
                            sacc.add(v)
                        else:
                            cross.add(v)
            self.trace[b] = tr
            need[b] = nd
        order = {v: i for i, v in enumerate(self.def_block)}
        self.cross = sorted(cross, key=order.__getitem__)
        self.sacc = sorted(sacc, key=order.__getitem__)
        self.argadj = [(b, j) for b in inf.blocks[1:] for j, a in enumerate(b.arguments) if a in inf.active]
        # what each block's record holds: needed values not from the entry, not constants
        self.record: dict[ir.Block, list] = {}
        self.consts: dict[ir.Block, list] = {}
        for b in inf.blocks[1:]:
            seen, rec, consts = set(), [], []
            # the adjoint-valued ones too ('nothing yet' becomes zeros of their shape)
            own = [a for a in b.arguments if a in inf.active]
            own += [v for v in self.cross + self.sacc if self.def_block[v] is b]
            for v in need[b] + own + [v for v in self.sacc if self._reads_in(b, v)]:
                if v in seen or self.def_block.get(v) is self.entry or v == self.self_arg:
                    continue
                seen.add(v)
                if self._const(v) is None:
                    rec.append(v)
                else:
                    consts.append(v)
            self.record[b] = rec
            self.consts[b] = consts

    def _is_read(self, op) -> bool:
        return (op.name == ops.PRIM and attr_str(op, "name") in SCATTER_ADD
                and not any(v in self.inf.active for v in list(op.operands)[1:]))

    def _reads_in(self, b: ir.Block, v: ir.Value) -> bool:
        return any(self._is_read(op) and op.operands[0] == v for op in self.trace[b])

    def _const(self, v: ir.Value):
        o = v.owner
        if isinstance(o, ir.Block) or o.name not in _CONSTS:
            return None
        return o

    # ---- forward sweep ------------------------------------------------------------------------

    def build(self) -> None:
        self._plan()
        inf = self.inf
        n = inf.nreq
        vt = ops.value_type()
        new = new_procedure(self.mi, inf, self.name, n if self.top else n + 1)
        fentry = new.add_entry_block()
        self.region = new.body
        self.g_in = None if self.top else fentry.arguments[n + 1]
        self.scal = {fentry.arguments[1 + i] for i, k in enumerate(self.kinds) if k}
        fblocks = {self.entry: fentry}
        for b in inf.blocks[1:]:
            fblocks[b] = self.region.blocks.append(*([vt] * (len(b.arguments) + 1)))
        # the reverse sweep's dispatch: stack, prev, result, cross, sacc, argadj
        nstate = 3 + len(self.cross) + len(self.sacc) + len(self.argadj)
        self.dispatch = self.region.blocks.append(*([vt] * nstate))
        vmap = {self.entry.arguments[i]: fentry.arguments[i] for i in range(n + 1)}
        for b in inf.blocks[1:]:
            for a, na in zip(b.arguments, fblocks[b].arguments, strict=False):
                vmap[a] = na
        self.fvmap = vmap
        loc = ir.Location.unknown()
        for b in inf.blocks:
            bld = Builder(self.region, fblocks[b], loc, self.mi, self.scal)
            stack = bld.prim("list") if b is self.entry else fblocks[b].arguments[len(b.arguments)]
            for op in b.operations:
                op = op.operation
                bld.loc = op.location
                name = op.name
                if name in ("cf.br", "cf.cond_br", "func.return"):
                    if b is not self.entry:
                        rec = [vmap[v] for v in self.record[b]]
                        stack = bld.prim("cons", bld.prim("vector", bld.int(self.ids[b]), *rec), stack)
                    self._terminator(bld, op, vmap, fblocks, stack)
                    continue
                if name in (ops.CALL, ops.TAIL_CALL):
                    fn = op.operands[0]
                    fn = bld.closure(inf.sym, []) if fn == self.self_arg else vmap[fn]
                    vmap[op.results[0]] = bld.call(fn, [vmap[v] for v in list(op.operands)[1:]])
                    continue
                copy = bld.copy(op, [vmap[v] for v in op.operands])
                for r, nr in zip(op.results, copy.results, strict=True):
                    vmap[r] = nr
        self._reverse()

    def _terminator(self, bld: Builder, op, vmap: dict, fblocks: dict, stack: ir.Value) -> None:
        loc = op.location
        if op.name == "cf.br":
            succ, args = branch_edges(op)[0]
            with ir.InsertionPoint(bld.block), loc:
                cf.BranchOp([vmap[v] for v in args] + [stack], fblocks[succ])
            return
        if op.name == "cf.cond_br":
            (s0, a0), (s1, a1) = branch_edges(op)
            with ir.InsertionPoint(bld.block), loc:
                cf.CondBranchOp(vmap[op.opview.condition], [vmap[v] for v in a0] + [stack],
                                [vmap[v] for v in a1] + [stack], fblocks[s0], fblocks[s1])
            return
        vout = vmap[op.operands[0]]
        if self.top and not bld.is_scalar(vout):
            # a gradient needs a number: anything else back to the caller's guard (runtime)
            num = bld.prim("number?", vout)
            with ir.InsertionPoint(bld.block), loc:
                c = ir.Operation.create(ops.TRUTHY, results=[ir.IntegerType.get_signless(1)],
                                        operands=[num], loc=loc).result
            go = self.region.blocks.append()
            bail = self.region.blocks.append()
            with ir.InsertionPoint(bld.block), loc:
                cf.CondBranchOp(c, [], [], go, bail)
            bb = Builder(self.region, bail, loc, self.mi, self.scal)
            pair = bb.prim("cons", vout, bb.float(0.0))
            with ir.InsertionPoint(bb.block), loc:
                func.ReturnOp([pair])
            bld.block = go
        zero = bld.int(0)
        nz = len(self.cross) + len(self.sacc) + len(self.argadj)
        with ir.InsertionPoint(bld.block), loc:
            cf.BranchOp([stack, bld.int(-1), vout] + [zero] * nz, self.dispatch)

    # ---- reverse sweep ------------------------------------------------------------------------

    def _reverse(self) -> None:
        loc = ir.Location.unknown()
        d = self.dispatch
        dargs = list(d.arguments)
        stack, prev, self.vout = dargs[0], dargs[1], dargs[2]
        k = 3
        state0 = {}
        for v in self.cross:
            state0[("c", v)] = dargs[k]
            k += 1
        for v in self.sacc:
            state0[("s", v)] = dargs[k]
            k += 1
        for key in self.argadj:
            state0[("a", *key)] = dargs[k]
            k += 1
        self.prev = prev
        b = Builder(self.region, d, loc, self.mi, set())
        empty = b.prim("null?", stack)
        pop = self.region.blocks.append()
        first = self.region.blocks.append()
        self._cond(b, empty, first, pop)
        # the entry's adjoint: the last one
        self._block_adjoint(self.entry, Builder(self.region, first, loc, self.mi, set(self.scal)),
                            None, None, dict(state0))
        b = Builder(self.region, pop, loc, self.mi, set())
        rec = b.prim("car", stack)
        rest = b.prim("cdr", stack)
        bid = b.prim("vector-ref", rec, b.int(0))
        others = self.inf.blocks[1:]
        for i, blk in enumerate(others):
            here = self.region.blocks.append()
            if i + 1 < len(others):
                nxt = self.region.blocks.append()
                self._cond(b, b.prim("%num=2", bid, b.int(self.ids[blk])), here, nxt)
                b = Builder(self.region, nxt, loc, self.mi, set())
            else:
                with ir.InsertionPoint(b.block), loc:
                    cf.BranchOp([], here)
            self._block_adjoint(blk, Builder(self.region, here, loc, self.mi, set()), rec, rest, dict(state0))

    def _cond(self, b: Builder, v: ir.Value, yes: ir.Block, no: ir.Block) -> None:
        with ir.InsertionPoint(b.block), b.loc:
            c = ir.Operation.create(ops.TRUTHY, results=[ir.IntegerType.get_signless(1)],
                                    operands=[v], loc=b.loc).result
            cf.CondBranchOp(c, [], [], yes, no)

    def _block_adjoint(self, blk: ir.Block, b: Builder, rec, rest, state: dict) -> None:
        """The adjoint of one record of ``blk`` (``rec`` None: the entry), then back to the
        dispatch (the entry: the result)."""
        inf = self.inf
        self.b = b
        vmap = {}
        for v, fv in self.fvmap.items():
            if self.def_block.get(v) is self.entry or v == self.self_arg:
                vmap[v] = fv
        if rec is not None:
            for i, v in enumerate(self.record[blk]):
                nv = b.prim("vector-ref", rec, b.int(i + 1))
                if self.fvmap[v] in self.scal:
                    b.scal.add(nv)
                vmap[v] = nv
            for v in self.consts[blk]:      # constants: made again
                vmap[v] = b.copy(self._const(v), []).results[0]
        for v in vmap:
            if v in self.scal or self.fvmap.get(v) in self.scal:
                b.scal.add(vmap[v])
        self.vmap = vmap
        self.state = state
        self.adj: dict[ir.Value, ir.Value] = {}
        self.maybe0: set = set()
        self.sparse: dict[ir.Value, list] = {}
        self._cur_block = blk
        here = self._here
        # carried adjoints of this block's values: their uses elsewhere are done
        for v in self.cross:
            if here(v):
                self.adj[v] = state[("c", v)]
                self.maybe0.add(self.adj[v])
                state[("c", v)] = b.int(0)
        ops_ = [o.operation for o in blk.operations]
        term = ops_[-1]
        # the terminator: the edge taken (prev) gives the passed values' adjoints
        if term.name == "func.return":
            v = term.operands[0]
            if v in inf.active:     # a return block's record is the first popped
                self.contribute(v, b.float(1.0) if self.top else self.g_in)
        else:
            edges = branch_edges(term)
            for succ, args in edges:
                for j, (a, v) in enumerate(zip(succ.arguments, args, strict=True)):
                    if a in inf.active and v in inf.active:
                        g = state[("a", succ, j)]
                        if len(edges) > 1:
                            g = b.select(b.prim("%num=2", self.prev, b.int(self.ids[succ])), g, b.int(0))
                        self.contribute(v, g, maybe0=True)
        for op in reversed(self.trace[blk]):
            g = self.cotangent(op.results[0])
            if g is None:
                continue
            self.b.loc = op.location
            if op.name == ops.PRIM:
                self.prim_vjp(op, g)
            else:
                self.call_vjp(op, g)
        b = self.b
        # this block's element-read accumulators: folded into the adjoint, reset
        for v in self.sacc:
            if here(v):
                self.contribute(v, state[("s", v)], maybe0=True)
                state[("s", v)] = b.int(0)
        if rec is None:
            self._finish()
            return
        for j, a in enumerate(blk.arguments):
            if a in inf.active:
                g = self.cotangent(a)
                state[("a", blk, j)] = b.int(0) if g is None else g
        b = self.b
        vals = [rest, b.int(self.ids[blk]), self.vout]
        vals += [state[("c", v)] for v in self.cross] + [state[("s", v)] for v in self.sacc]
        vals += [state[("a", *key)] for key in self.argadj]
        with ir.InsertionPoint(b.block), b.loc:
            cf.BranchOp(vals, self.dispatch)

    def _finish(self) -> None:
        b = self.b
        grads = []
        for x in list(self.entry.arguments)[1:]:
            gx = self.cotangent(x)
            fx = self.vmap[x]
            if gx is None:
                gx = b.float(0.0) if b.is_scalar(fx) else b.helper("zero-like", fx)
            grads.append(gx)
        rest = grads[0] if self.top else (b.prim("list", *grads) if grads else b.prim("list"))
        pair = b.prim("cons", self.vout, rest)
        with ir.InsertionPoint(b.block), b.loc:
            func.ReturnOp([pair])

    # ---- adjoint accumulation ---------------------------------------------------------------

    def contribute(self, v: ir.Value, c: ir.Value, maybe0: bool = False) -> None:
        """Add cotangent ``c`` (``maybe0``: perhaps the fixnum-0 'nothing yet') to ``v``'s:
        a carried one for a value of another block, else this block's."""
        key = ("c", v)
        if key in self.state and not self._here(v):
            self.state[key] = self.b.helper("adj-add", self.state[key], c)
            return
        if v not in self.adj:
            self.adj[v] = c
            if maybe0:
                self.maybe0.add(c)
            return
        old = self.adj[v]
        if old in self.maybe0 or maybe0:
            new = self.b.helper("adj-add", old, c)
            self.maybe0.add(new)
        else:
            new = self.b.prim("%add2", old, c)
        self.adj[v] = new

    def _here(self, v: ir.Value) -> bool:
        return self.def_block.get(v) is self._cur_block

    def cotangent(self, v: ir.Value) -> ir.Value | None:
        """``v``'s whole cotangent in this block, a real value (no 'nothing yet')."""
        reads = self.sparse.pop(v, None)
        b = self.b
        if reads:
            z = b.prim("zeros-like", self.vmap[v])
            for helper, g, idx in reads:
                z = b.helper(helper, z, g, *idx)
            self.contribute(v, z)
        g = self.adj.get(v)
        if g is not None and g in self.maybe0:
            g = b.helper("adj-val", g, self.vmap[v])
            self.adj[v] = g
        return g

    def prim_vjp(self, op, g: ir.Value) -> None:
        inf = self.inf
        b = self.b
        pname = attr_str(op, "name")
        src = op.operands[0]
        if self._is_read(op) and src in inf.active:
            idx = [self.vmap[v] for v in list(op.operands)[1:]]
            if ("s", src) in self.state and not self._here(src):
                acc = b.helper("adj-acc-start", self.state[("s", src)], self.vmap[src])
                self.state[("s", src)] = b.helper(SCATTER_ADD[attr_str(op, "name")], acc, g, *idx)
            else:
                self.sparse.setdefault(src, []).append((SCATTER_ADD[pname], g, idx))
            return
        need = [v in inf.active for v in op.operands]
        contrib = vjp_rule(pname)(b, [self.vmap[v] for v in op.operands], self.vmap[op.results[0]], g, need)
        self.b = b
        for v, c, n in zip(op.operands, contrib, need, strict=True):
            if c is not None and n:
                self.contribute(v, c)

    def call_vjp(self, op, g: ir.Value) -> None:
        """A call of a known procedure: its VJP procedure gives its arguments' adjoints."""
        call_adjoints(self, op, g, self.contribute)


def call_adjoints(sweep, op, g: ir.Value, add) -> None:
    """Emit the call of a known callee's VJP procedure for ``op`` (a call) with cotangent ``g``,
    and hand each active argument's adjoint to ``add`` (shared by both reverse sweeps)."""
    b = sweep.b
    callee = sweep.mi.callee_of(op.operands[0], sweep.self_arg, sweep.inf.sym)
    args = list(op.operands)[1:]
    vargs = [sweep.vmap[v] for v in args]
    kinds = tuple(b.is_scalar(v) for v in vargs)
    sym = sweep.vb.callee(callee.sym, kinds)
    captured = [sweep.vmap[v] for v in callee.captured] if callee.kind == "local" else []
    pair = b.call(b.closure(sym, captured), [*vargs, g])
    adjs = b.prim("cdr", pair)
    for i, v in enumerate(args):
        if v in sweep.inf.active:
            a = b.prim("car", adjs)
            if kinds[i]:
                b.scal.add(a)
            add(v, a)
        if i + 1 < len(args):
            adjs = b.prim("cdr", adjs)
