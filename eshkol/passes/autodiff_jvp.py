"""Forward mode by transformation: the JVP procedure of a differentiable procedure.

For ``f`` with parameters ``x1..xn`` the JVP procedure ``f__jvp`` takes ``x1 dx1 .. xn dxn``
and returns the pair ``(primal . tangent)``. Its body is ``f``'s, with a tangent computed next
to every active value (autodiff_rules.py), an extra block argument for the tangent of every
active block argument (loops carry their tangents), and calls of known procedures turned into
calls of their own JVP procedures. Tangents that are statically zero are not computed.
It is an ordinary Eshkol procedure (same closure layout as ``f``), so the specializer clones
and unboxes it like any other.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import cf, func

from eshkol.dialect import ops
from eshkol.dialect.ops import attr_str
from eshkol.passes.autodiff_analysis import FnInfo, ModuleInfo
from eshkol.passes.autodiff_helpers import helper_symbol
from eshkol.passes.autodiff_rules import PASSIVE_RESULT, jvp_rule, number_result
from eshkol.passes.cfg import branch_edges


class Builder:
    """Emits generic ops at the end of ``block`` (rules may split it with ``select``)."""

    def __init__(self, region: ir.Region, block: ir.Block, loc: ir.Location,
                 mi: ModuleInfo | None = None, scal: set | None = None) -> None:
        self.region = region
        self.block = block
        self.loc = loc
        self.mi = mi
        # Values known to be numbers (not tensors): their adjoints need no un-broadcasting.
        self.scal: set = set() if scal is None else scal

    def _op(self, name: str, operands: list, attrs: dict | None = None) -> ir.Value:
        with ir.InsertionPoint(self.block):
            return ir.Operation.create(name, results=[ops.value_type()], operands=operands,
                                       attributes=attrs or {}, loc=self.loc).result

    def is_scalar(self, v: ir.Value) -> bool:
        """Whether ``v`` is statically a number (never a tensor)."""
        return v in self.scal

    def prim(self, name: str, *args: ir.Value) -> ir.Value:
        """Apply primitive ``name``."""
        r = self._op(ops.PRIM, list(args), {"name": ir.StringAttr.get(name)})
        if number_result(name, args, self.scal):
            self.scal.add(r)
        return r

    def helper(self, name: str, *args: ir.Value) -> ir.Value:
        """Call the autodiff helper procedure ``name`` (autodiff_helpers.py)."""
        sym = helper_symbol(self.mi.body, self.mi.funcs, name)
        return self.call(self.closure(sym, []), list(args))

    def int(self, n: int) -> ir.Value:
        """A fixnum constant."""
        r = self._op(ops.CONST_INT, [], {"value": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), n)})
        self.scal.add(r)
        return r

    def float(self, x: float) -> ir.Value:
        """A flonum constant."""
        r = self._op(ops.CONST_FLOAT, [], {"value": ir.FloatAttr.get_f64(x)})
        self.scal.add(r)
        return r

    def call(self, fn: ir.Value, args: list, tail: bool = False) -> ir.Value:
        """Call procedure ``fn``."""
        return self._op(ops.TAIL_CALL if tail else ops.CALL, [fn, *args])

    def closure(self, sym: str, captured: list) -> ir.Value:
        """A closure of function ``sym``."""
        return self._op(ops.MAKE_CLOSURE, captured, {"callee": ir.FlatSymbolRefAttr.get(sym)})

    def select(self, cond: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value:
        """``a`` when ``cond`` is true, else ``b`` (a branch to a new block)."""
        with ir.InsertionPoint(self.block):
            c = ir.Operation.create(ops.TRUTHY, results=[ir.IntegerType.get_signless(1)],
                                    operands=[cond], loc=self.loc).result
        join = self.region.blocks.append(ops.value_type())
        with ir.InsertionPoint(self.block), self.loc:
            cf.CondBranchOp(c, [a], [b], join, join)
        self.block = join
        return join.arguments[0]

    def copy(self, op, operands: list) -> ir.Operation:
        """A copy of ``op`` (no successors) with new operands."""
        attrs = {(a if isinstance(a, str) else a.name): op.attributes[a if isinstance(a, str) else a.name]
                 for a in op.attributes}
        with ir.InsertionPoint(self.block):
            new = ir.Operation.create(op.name, results=[r.type for r in op.results], operands=operands,
                                      attributes=attrs, loc=op.location)
        if op.name in (ops.CONST_INT, ops.CONST_FLOAT) or (
                op.name == ops.PRIM and number_result(attr_str(op, "name"), operands, self.scal)):
            self.scal.add(new.results[0])
        return new


def new_procedure(mi: ModuleInfo, inf: FnInfo, name: str, nparams: int) -> func.FuncOp:
    """An empty Eshkol procedure ``name`` of ``nparams`` required parameters, after ``inf``'s."""
    vt = ops.value_type()
    with ir.InsertionPoint(mi.body), inf.fn.location:
        new = func.FuncOp(name, ir.FunctionType.get([vt] * (nparams + 1), [vt]))
    new.attributes[ops.ATTR_NAME] = ir.StringAttr.get(mi.name_of(inf.sym))
    new.attributes[ops.ATTR_NREQ] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), nparams)
    new.attributes[ops.ATTR_NOPT] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0)
    new.attributes[ops.ATTR_REST] = ir.BoolAttr.get(False)
    mi.funcs[name] = new.operation
    return new


class JVPBuilder:
    """Builds ``f__jvp`` for one procedure (and, through ``ensure``, for its callees)."""

    def __init__(self, mi: ModuleInfo, made: dict[str, str]) -> None:
        self.mi = mi
        self.made = made    # procedure symbol → its JVP symbol

    def ensure(self, sym: str) -> str:
        """The JVP procedure of ``sym`` (built on first request)."""
        got = self.made.get(sym)
        if got is not None:
            return got
        name = f"{sym}__jvp"
        self.made[sym] = name
        _JVPFunction(self, self.mi.info(sym), name).build()
        return name


class _JVPFunction:
    def __init__(self, jb: JVPBuilder, inf: FnInfo, name: str) -> None:
        self.jb = jb
        self.inf = inf
        self.name = name
        self.vmap: dict[ir.Value, ir.Value] = {}
        self.tan: dict[ir.Value, ir.Value | None] = {}
        self.pairs: dict[ir.Value, ir.Value] = {}   # tail-call results: already (primal . tangent)

    def build(self) -> None:
        inf = self.inf
        new = new_procedure(self.jb.mi, inf, self.name, 2 * inf.nreq)
        entry = new.add_entry_block()
        region = new.body
        self.region = region
        self.nblocks: dict[ir.Block, ir.Block] = {inf.blocks[0]: entry}
        for b in inf.blocks[1:]:
            n_act = sum(1 for a in b.arguments if a in inf.active)
            self.nblocks[b] = region.blocks.append(*([ops.value_type()] * (len(b.arguments) + n_act)))
        old_entry = inf.blocks[0]
        self.self_arg = old_entry.arguments[0]
        self.vmap[old_entry.arguments[0]] = entry.arguments[0]
        for i, a in enumerate(list(old_entry.arguments)[1:]):
            self.vmap[a] = entry.arguments[1 + 2 * i]
            self.tan[a] = entry.arguments[2 + 2 * i]
        for b in inf.blocks[1:]:
            nb = self.nblocks[b]
            k = len(b.arguments)
            for a, na in zip(b.arguments, list(nb.arguments)[:k], strict=True):
                self.vmap[a] = na
            extra = iter(list(nb.arguments)[k:])
            for a in b.arguments:
                if a in inf.active:
                    self.tan[a] = next(extra)
        # The guard passes flonum points and seeds: the entry's parameters are numbers.
        scal = set(list(entry.arguments)[1:])
        for b in inf.blocks:
            self.bld = Builder(region, self.nblocks[b], ir.Location.unknown(), self.jb.mi, scal)
            for op in b.operations:
                self.bld.loc = op.location
                self.emit(op.operation)

    def t(self, v: ir.Value) -> ir.Value | None:
        return self.tan.get(v)

    def t_or_zero(self, v: ir.Value) -> ir.Value:
        t = self.tan.get(v)
        return self.bld.float(0.0) if t is None else t

    def emit(self, op) -> None:
        name = op.name
        inf = self.inf
        b = self.bld
        active_in = any(v in inf.active for v in op.operands)
        if name == ops.PRIM and active_in:
            pname = attr_str(op, "name")
            new = b.copy(op, [self.vmap[v] for v in op.operands])
            self.vmap[op.results[0]] = new.results[0]
            if pname not in PASSIVE_RESULT:
                rule = jvp_rule(pname)
                self.tan[op.results[0]] = rule(b, [self.vmap[v] for v in op.operands], new.results[0],
                                               [self.t(v) for v in op.operands])
            return
        if name in (ops.CALL, ops.TAIL_CALL) and active_in:
            self.emit_call(op)
            return
        if name == ops.TAIL_CALL:  # passive: a plain call, its result paired at the return
            self.vmap[op.results[0]] = b.call(self.vmap[op.operands[0]],
                                              [self.vmap[v] for v in list(op.operands)[1:]])
            return
        if name == "func.return":
            v = op.operands[0]
            if v in self.pairs:
                r = self.pairs[v]
            else:
                r = b.prim("cons", self.vmap[v], self.t_or_zero(v))
            with ir.InsertionPoint(b.block), op.location:
                func.ReturnOp([r])
            return
        if name in ("cf.br", "cf.cond_br"):
            edges = []
            for succ, args in branch_edges(op):
                vals = [self.vmap[v] for v in args]
                vals += [self.t_or_zero(v) for v, a in zip(args, succ.arguments, strict=True)
                         if a in inf.active]
                edges.append((self.nblocks[succ], vals))
            with ir.InsertionPoint(b.block), op.location:
                if name == "cf.br":
                    cf.BranchOp(edges[0][1], edges[0][0])
                else:
                    cond = self.vmap[op.opview.condition]
                    cf.CondBranchOp(cond, edges[0][1], edges[1][1], edges[0][0], edges[1][0])
            return
        new = b.copy(op, [self.vmap[v] for v in op.operands])
        for r, n in zip(op.results, new.results, strict=True):
            self.vmap[r] = n

    def emit_call(self, op) -> None:
        """A call of a known procedure with an active argument: a call of its JVP."""
        b = self.bld
        callee = self.jb.mi.callee_of(op.operands[0], self.self_arg, self.inf.sym)
        if callee.kind == "self":
            fn = self.vmap[self.self_arg]
        else:
            sym = self.jb.ensure(callee.sym)
            fn = b.closure(sym, [self.vmap[v] for v in callee.captured])
        args = []
        for v in list(op.operands)[1:]:
            args += [self.vmap[v], self.t_or_zero(v)]
        if op.name == ops.TAIL_CALL:
            # The pair the callee returns is this procedure's result too: still a tail call.
            self.pairs[op.results[0]] = b.call(fn, args, tail=True)
            return
        pair = b.call(fn, args)
        self.vmap[op.results[0]] = b.prim("car", pair)
        self.tan[op.results[0]] = b.prim("cdr", pair)
