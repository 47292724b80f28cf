"""Specialize procedures to unboxed fixnum/flonum code, with direct calls of typed clones.

Type inference over each function's SSA values (lattice bot < i64 | f64 | i1 < value, see
spec_rules.py) is seeded by constants, by the parameter types of a clone and by speculation;
values it proves to be fixnums, flonums or booleans are kept unboxed (``i64``/``f64``/``i1``)
and numeric primitives on them become ``arith``/``math`` ops, so a numeric loop becomes a loop
over machine integers and doubles that neither calls the runtime nor allocates.

Guards. Where the typed computation may not give the generic result (a fixnum overflow, whose
exact result is a bignum; a speculated type that turns out wrong) the code leaves for a
generic copy of the function: the *deopt* boxes the live values and jumps to the generic copy
of the current segment, which recomputes from there with the ordinary primitives. Segments
are the function's blocks cut after each effectful operation that is followed by a guard, so
what runs again in the generic copy has no effects. The generic copy is kept in closed form
(every value a segment uses arrives as a block argument), so any segment can be entered.

Speculation. A boxed value that meets a typed one in arithmetic or a comparison (``(< i n)``
with ``i`` a fixnum) is assumed to have that type: a tag check right after its definition
(or at function entry, for a parameter) guards the assumption.

Clones. A call whose callee is known (a closure built in the same function, the procedure
itself, or a global defined once as a procedure and never assigned) with the right number of
arguments calls a clone of the callee specialized to the argument types, ``f__i64_f64``,
created once per signature and called directly with unboxed arguments (no argument buffer,
no arity check). Only procedures that make no tail calls (their own tail calls became
loops) are cloned: a clone's signature differs from the uniform one, so it could not make
proper (``musttail``) tail calls; and a tail call of such a clone may be a plain call, since
no chain of tail calls can continue through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlir import ir
from mlir.dialects import arith, cf, func

from eshkol.dialect import ops
from eshkol.passes.cfg import edge_bindings, reverse_postorder
from eshkol.passes.spec_rules import B1, BOT, F64, HINTING, I64, PURE_PRIMS, VAL, join, rule_for

# Declared parameter types (LANGUAGE.md) that specialization uses.
DECLARED = {"Float64": F64, "Float": F64, "Real": F64, "Double": F64,
            "Int64": I64, "Int": I64, "Integer": I64, "Fixnum": I64}

MAX_CLONES_PER_FUNCTION = 8
MAX_CLONES = 400
MAX_ROUNDS = 4

# Ops with no effects besides their result (they may be re-run after a deopt).
PURE_OPS = {ops.CONST_INT, ops.CONST_FLOAT, ops.CONST_IMM, ops.CONST_EXACT, ops.CONST_STRING,
            ops.CONST_SYMBOL, ops.GLOBAL_REF, ops.MAKE_CLOSURE, ops.CLOSURE_REF, ops.BOX, ops.UNBOX,
            ops.PRIM_REF, ops.TRUTHY, ops.IS_DEFAULT}
TERMINATORS = {"cf.br", "cf.cond_br", "func.return"}


def _type_str(t: ir.Type) -> str:
    s = str(t)
    return {"i64": I64, "f64": F64, "i1": B1}.get(s, VAL)


def _mlir_type(t: str) -> ir.Type:
    if t == I64:
        return ir.IntegerType.get_signless(64)
    if t == F64:
        return ir.F64Type.get()
    if t == B1:
        return ir.IntegerType.get_signless(1)
    return ops.value_type()


@dataclass
class Callee:
    """A func.func that implements an Eshkol procedure, as calls see it."""

    sym: str
    nreq: int
    direct_ok: bool     # only required parameters, no tail calls


@dataclass
class Analysis:
    """Types of one function's values under given parameter types and speculations."""

    types: dict[ir.Value, str] = field(default_factory=dict)
    # ops whose typed rule may leave for the generic code, and speculated op results
    guarded_ops: set = field(default_factory=set)
    spec: dict[ir.Value, str] = field(default_factory=dict)     # value → speculated type
    hints: dict[ir.Value, set] = field(default_factory=dict)    # value → types met
    conflicts: set = field(default_factory=set)  # speculated block args given another type


class ModuleSpecializer:
    """Specializes every function of a module and makes the clones its calls ask for."""

    def __init__(self, module: ir.Operation) -> None:
        self.module = module
        self.body = module.regions[0].blocks[0]
        self.funcs: dict[str, ir.Operation] = {}
        self.callees: dict[str, Callee] = {}
        for op in self.body.operations:
            if op.operation.name == "func.func":
                sym = ir.StringAttr(op.attributes["sym_name"]).value
                self.funcs[sym] = op.operation
                if ops.ATTR_NREQ in op.attributes:
                    nreq = ir.IntegerAttr(op.attributes[ops.ATTR_NREQ]).value
                    nopt = ir.IntegerAttr(op.attributes[ops.ATTR_NOPT]).value
                    rest = ir.BoolAttr(op.attributes[ops.ATTR_REST]).value
                    # A clone has its own signature, so it cannot make proper (musttail) tail
                    # calls of other procedures: only procedures without tail calls (their
                    # own became loops) are cloned.
                    self.callees[sym] = Callee(sym, nreq, nopt == 0 and not rest and not _makes_tail_calls(op))
        self.stable = self._stable_globals()
        self.clones: dict[tuple[str, tuple[str, ...]], str] = {}
        self.clone_count: dict[str, int] = {}
        self.todo: list[tuple[str, tuple[str, ...], str]] = []
        self.replaced: list[tuple[ir.Operation, ir.Operation]] = []

    def _stable_globals(self) -> dict[str, str]:
        """Globals defined once, as a closure of a known function, and never assigned."""
        sets: dict[str, list] = {}
        for fn in self.funcs.values():
            for block in fn.regions[0].blocks:
                for op in block.operations:
                    if op.operation.name == ops.GLOBAL_SET:
                        name = ir.FlatSymbolRefAttr(op.attributes["name"]).value
                        sets.setdefault(name, []).append(op.operation)
        out = {}
        for name, setters in sets.items():
            if len(setters) != 1 or ops.attr_str(setters[0], "kind") != "define":
                continue
            maker = ops.owner_op(setters[0].operands[0])
            if maker is not None and maker.name == ops.MAKE_CLOSURE:
                out[name] = ir.FlatSymbolRefAttr(maker.attributes["callee"]).value
        return out

    def clone_for(self, sym: str, sig: tuple[str, ...]) -> str | None:
        """The clone of ``sym`` for argument types ``sig`` (made on first request)."""
        key = (sym, sig)
        name = self.clones.get(key)
        if name is not None:
            return name
        if self.clone_count.get(sym, 0) >= MAX_CLONES_PER_FUNCTION or len(self.clones) >= MAX_CLONES:
            return None
        self.clone_count[sym] = self.clone_count.get(sym, 0) + 1
        name = f"{sym}__{'_'.join(t if t != VAL else 'v' for t in sig) or 'void'}"
        self.clones[key] = name
        self.todo.append((sym, sig, name))
        return name

    def run(self) -> None:
        originals = list(self.funcs.items())
        for sym, fn in originals:
            entry = list(fn.regions[0].blocks)[0]
            types = tuple(_type_str(a.type) for a in entry.arguments)
            new = FunctionSpecializer(self, fn, sym, types, clone_name=None).specialize()
            if new is not None:
                self.replaced.append((fn, new))
        while self.todo:
            sym, sig, name = self.todo.pop()
            fn = self.funcs[sym]
            FunctionSpecializer(self, fn, sym, (VAL,) + sig, clone_name=name).specialize(force=True)
        for old, new in self.replaced:
            sym = ir.StringAttr(old.attributes["sym_name"]).value
            old.erase()
            new.attributes["sym_name"] = ir.StringAttr.get(sym)


def _makes_tail_calls(fn) -> bool:
    for block in fn.regions[0].blocks:
        for op in block.operations:
            if op.operation.name == ops.TAIL_CALL:
                return True
    return False


class FunctionSpecializer:
    """Inference and rewriting of one function (or of one clone of it)."""

    def __init__(self, ms: ModuleSpecializer, fn: ir.Operation, sym: str,
                 entry_types: tuple[str, ...], clone_name: str | None) -> None:
        self.ms = ms
        self.fn = fn
        self.sym = sym
        self.entry_types = entry_types
        self.clone_name = clone_name
        self.blocks = reverse_postorder(list(fn.regions[0].blocks)[0])
        self.is_proc = ops.ATTR_NREQ in fn.attributes
        self.self_arg = self.blocks[0].arguments[0] if self.is_proc else None
        self.changes = 0

    # ---- inference ---------------------------------------------------------------------------

    def infer(self, spec: dict[ir.Value, str]) -> Analysis:
        """Optimistic fixpoint of value types (speculated values take their ``spec`` type)."""
        an = Analysis(spec=dict(spec))
        T = an.types
        entry = self.blocks[0]
        for a, t in zip(entry.arguments, self.entry_types, strict=True):
            T[a] = spec.get(a, t)
        for b in self.blocks[1:]:
            for a in b.arguments:
                T[a] = spec.get(a, BOT if _type_str(a.type) == VAL else _type_str(a.type))
        changed = True
        while changed:
            changed = False
            for b in self.blocks:
                for op in b.operations:
                    op = op.operation
                    name = op.name
                    if name in ("cf.br", "cf.cond_br"):
                        for arg, v in edge_bindings(op):
                            if arg in an.spec:  # converted (with a check) on the edge
                                if T.get(v) == VAL:
                                    an.guarded_ops.add(op)
                                elif T.get(v, BOT) not in (BOT, an.spec[arg]):
                                    an.conflicts.add(arg)
                                continue
                            t = join(T[arg], T.get(v, BOT))
                            if t != T[arg]:
                                T[arg] = t
                                changed = True
                        continue
                    if not op.results:
                        continue
                    for r, t in zip(op.results, self._result_types(op, T, an), strict=True):
                        if r in an.spec and t == VAL:
                            t = an.spec[r]
                            an.guarded_ops.add(op)
                        if T.get(r) != t:
                            T[r] = t
                            changed = True
        return an

    def _result_types(self, op, T: dict, an: Analysis) -> list[str]:
        name = op.name
        if name == ops.CONST_INT:
            return [I64]
        if name == ops.CONST_FLOAT:
            return [F64]
        if name == ops.PRIM:
            pname = ops.attr_str(op, "name")
            types = tuple(T.get(v, BOT) for v in op.operands)
            if BOT in types:
                return [BOT]
            rule = rule_for(pname, types)
            if pname in HINTING and len(types) == 2:
                for v, t, other in ((op.operands[0], types[0], types[1]), (op.operands[1], types[1], types[0])):
                    if t == VAL and other in (I64, F64):
                        an.hints.setdefault(v, set()).add(other)
            if rule is not None:
                if rule.guarded:
                    an.guarded_ops.add(op)
                return [rule.result]
            return [VAL]
        return [_type_str(r.type) for r in op.results]

    def _speculable(self, v: ir.Value) -> bool:
        """Values whose type may be guessed: parameters and results of ops that are not
        constants or tail calls (a guard cannot sit between a tail call and its return)."""
        o = ops.owner_op(v)
        if o is None:  # a block argument (a parameter, or a loop variable)
            return self.self_arg is None or v != self.self_arg
        return o.name not in (ops.CONST_INT, ops.CONST_FLOAT, ops.CONST_IMM, ops.CONST_STRING,
                              ops.CONST_SYMBOL, ops.CONST_EXACT, ops.TAIL_CALL, ops.MAKE_CLOSURE,
                              ops.PRIM_REF) and o.name not in TERMINATORS

    def _declared(self) -> dict[ir.Value, str]:
        """Parameters declared (x : Float64) or (n : Int64): speculated to be so."""
        out: dict[ir.Value, str] = {}
        if ops.ATTR_PARAM_TYPES not in self.fn.attributes:
            return out
        params = list(self.blocks[0].arguments)[1:]
        for a, decl in zip(params, ir.ArrayAttr(self.fn.attributes[ops.ATTR_PARAM_TYPES]), strict=False):
            t = DECLARED.get(ir.StringAttr(decl).value)
            if t is not None and self.entry_types[params.index(a) + 1] == VAL:
                out[a] = t
        return out

    def analyze(self) -> Analysis:
        """Inference rounds: hints from one round become speculations of the next."""
        spec = self._declared()
        banned: set = set()
        an = self.infer(spec)
        for _ in range(MAX_ROUNDS):
            if an.conflicts:  # a loop variable also gets values of another type: not speculated
                banned |= an.conflicts
                spec = {v: t for v, t in spec.items() if v not in banned}
                an = self.infer(spec)
                continue
            new = dict(spec)
            for v, ts in an.hints.items():
                if len(ts) == 1 and v not in spec and v not in banned and self._speculable(v) \
                        and an.types.get(v) == VAL:
                    new[v] = next(iter(ts))
            if new == spec:
                break
            spec = new
            an = self.infer(spec)
        while an.conflicts:
            banned |= an.conflicts
            spec = {v: t for v, t in spec.items() if v not in banned}
            an = self.infer(spec)
        return an

    # ---- rewriting ----------------------------------------------------------------------------

    def specialize(self, force: bool = False) -> ir.Operation | None:
        """Build the specialized function (a new func.func after the original); None when
        specializing would change nothing (the original stays)."""
        an = self.analyze()
        rw = Rewriter(self, an)
        new = rw.build()
        if rw.changes == 0 and not force:
            new.erase()
            return None
        return new


class Rewriter:
    """Builds the new function: entry, specialized blocks, deopt exits, generic segments."""

    def __init__(self, fs: FunctionSpecializer, an: Analysis) -> None:
        self.fs = fs
        self.ms = fs.ms
        self.an = an
        self.T = an.types
        self.changes = 0
        self.loc = ir.Location.unknown()
        self.smap: dict[ir.Value, ir.Value] = {}   # original → specialized (typed per T)
        self.sraw: dict[ir.Value, ir.Value] = {}   # original → its boxed form, when made
        self.sblocks: dict[ir.Block, ir.Block] = {}
        self.cur: ir.Block | None = None
        self.cur_seg: tuple | None = None
        self.segments: dict[ir.Block, list[tuple[int, int]]] = {}
        self.gblocks: dict[tuple, ir.Block] = {}
        self.live_in: dict[tuple, list[ir.Value]] = {}
        self.deopt_sites: list[tuple[ir.Block, tuple]] = []

    # ---- function skeleton --------------------------------------------------------------------

    def build(self) -> ir.Operation:
        fs = self.fs
        fn = fs.fn
        entry = fs.blocks[0]
        vt = ops.value_type()
        if fs.clone_name is not None:
            inputs = [_mlir_type(t) for t in fs.entry_types]
            name = fs.clone_name
        else:
            inputs = [a.type for a in entry.arguments]
            name = fs.sym + ".spec"
        where = ir.InsertionPoint(self.ms.body) if fs.clone_name is not None else ir.InsertionPoint(fn)
        with where, fn.location:
            new = func.FuncOp(name, ir.FunctionType.get(inputs, [vt]))
        for attr in _attr_names(fn):
            if attr not in ("sym_name", "function_type"):
                new.attributes[attr] = fn.attributes[attr]
        if fs.clone_name is not None:
            new.attributes[ops.ATTR_DIRECT] = ir.UnitAttr.get()
            for a in (ops.ATTR_NREQ, ops.ATTR_NOPT, ops.ATTR_REST):
                if a in new.attributes:
                    del new.attributes[a]
        self.new = new
        self.new_sig = tuple(inputs)
        e = new.add_entry_block()
        self.eblock = e
        self._segment()
        for b in fs.blocks:
            types = [] if b == entry else [_mlir_type(self.T[a]) for a in b.arguments]
            self.sblocks[b] = new.body.blocks.append(*types)
        # Entry: parameters (checked and unboxed where speculated), then the first block.
        self.cur = e
        self.cur_seg = (entry, 0)
        for orig, arg in zip(entry.arguments, e.arguments, strict=True):
            t = self.T[orig]
            have = _type_str(arg.type)
            if t == have or t == BOT:
                self.smap[orig] = arg
            else:
                self.sraw[orig] = arg
                self.smap[orig] = self.guarded_unbox(arg, t)
        with ir.InsertionPoint(self.cur), self.loc:
            cf.BranchOp([], self.sblocks[entry])
        for b in fs.blocks:
            self.copy_block(b)
        if self.deopt_sites:
            self.build_generic()
        # Definitions before uses, for the text lowering: the specialized blocks in reverse
        # postorder, then the deopt exits, then the generic copy (closed form: any order).
        deopts = [d for d, _ in self.deopt_sites]
        for b in reverse_postorder(e, stop=set(deopts)) + deopts + list(self.gblocks.values()):
            b.append_to(new.body)
        return new.operation

    # ---- segments and liveness of the generic copy -----------------------------------------

    def _segment(self) -> None:
        """Cut each block after effectful ops that a later guard of the block follows."""
        for b in self.fs.blocks:
            opl = [o.operation for o in b.operations]
            guard_at = set()
            for i, op in enumerate(opl):
                if op in self.an.guarded_ops:
                    # a speculated result of an effectful op is checked after it
                    guard_at.add(i if _is_pure(op) else i + 1)
            cuts = sorted({i + 1 for i, op in enumerate(opl)
                           if not _is_pure(op) and any(p > i for p in guard_at)})
            bounds = [0] + [c for c in cuts if 0 < c < len(opl)] + [len(opl)]
            self.segments[b] = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]

    def seg_of(self, b: ir.Block, index: int) -> tuple:
        for k, (s, e) in enumerate(self.segments[b]):
            if s <= index < e:
                return (b, k)
        return (b, len(self.segments[b]) - 1)

    def _liveness(self) -> None:
        segs = [(b, k) for b in self.fs.blocks for k in range(len(self.segments[b]))]
        uses: dict[tuple, set] = {}
        defs: dict[tuple, set] = {}
        succ: dict[tuple, list] = {}
        for b in self.fs.blocks:
            opl = [o.operation for o in b.operations]
            for k, (s, e) in enumerate(self.segments[b]):
                d = set(b.arguments) if k == 0 else set()
                u = set()
                for op in opl[s:e]:
                    for v in op.operands:
                        if v not in d:
                            u.add(v)
                    d.update(op.results)
                uses[(b, k)] = u
                defs[(b, k)] = d
                if k + 1 < len(self.segments[b]):
                    succ[(b, k)] = [(b, k + 1)]
                else:
                    term = opl[-1]
                    succ[(b, k)] = [(s_, 0) for s_ in term.successors]
        live = {s: set() for s in segs}
        changed = True
        while changed:
            changed = False
            for s in reversed(segs):
                out = set()
                for t in succ[s]:
                    out |= live[t]
                new = uses[s] | (out - defs[s])
                if new != live[s]:
                    live[s] = new
                    changed = True
        order = {}
        for b in self.fs.blocks:
            for a in b.arguments:
                order[a] = len(order)
            for op in b.operations:
                for r in op.operation.results:
                    order[r] = len(order)
        self.live_in = {s: sorted(v, key=lambda x: order[x]) for s, v in live.items()}
        self.succ = succ

    def build_generic(self) -> None:
        """The generic copy in closed form, then the deopt exits that enter it."""
        self._liveness()
        # Only the segments a deopt can reach.
        reach = [seg for _, seg in self.deopt_sites]
        needed = set(reach)
        while reach:
            for t in self.succ[reach.pop()]:
                if t not in needed:
                    needed.add(t)
                    reach.append(t)
        for b in self.fs.blocks:
            for k in range(len(self.segments[b])):
                if (b, k) in needed:
                    args = (list(b.arguments) if k == 0 else []) + self.live_in[(b, k)]
                    self.gblocks[(b, k)] = self.new.body.blocks.append(*[a.type for a in args])
        for b in self.fs.blocks:
            opl = [o.operation for o in b.operations]
            for k, (s, e) in enumerate(self.segments[b]):
                if (b, k) not in needed:
                    continue
                gb = self.gblocks[(b, k)]
                args = (list(b.arguments) if k == 0 else []) + self.live_in[(b, k)]
                gmap = dict(zip(args, gb.arguments, strict=True))
                with ir.InsertionPoint(gb):
                    for op in opl[s:e]:
                        if op.name in ("cf.br", "cf.cond_br"):
                            self._generic_branch(op, gmap)
                        else:
                            new = _copy_op(op, [gmap[v] for v in op.operands])
                            gmap.update(zip(op.results, new.results, strict=True))
                    if k + 1 < len(self.segments[b]):
                        nxt = (b, k + 1)
                        with op.location:
                            cf.BranchOp([gmap[v] for v in self.live_in[nxt]], self.gblocks[nxt])
        for dblock, seg in self.deopt_sites:
            b, k = seg
            args = (list(b.arguments) if k == 0 else []) + self.live_in[seg]
            with ir.InsertionPoint(dblock), self.loc:
                vals = [self.boxed_for_deopt(a, dblock) for a in args]
                cf.BranchOp(vals, self.gblocks[seg])

    def _generic_branch(self, op, gmap: dict) -> None:
        with op.location:
            if op.name == "cf.br":
                dest = op.successors[0]
                vals = [gmap[v] for v in op.operands] + [gmap[v] for v in self.live_in[(dest, 0)]]
                cf.BranchOp(vals, self.gblocks[(dest, 0)])
                return
            view = op.opview
            t, f = op.successors[0], op.successors[1]
            tv = [gmap[v] for v in view.trueDestOperands] + [gmap[v] for v in self.live_in[(t, 0)]]
            fv = [gmap[v] for v in view.falseDestOperands] + [gmap[v] for v in self.live_in[(f, 0)]]
            cf.CondBranchOp(gmap[view.condition], tv, fv, self.gblocks[(t, 0)], self.gblocks[(f, 0)])

    def boxed_for_deopt(self, v: ir.Value, where: ir.Block) -> ir.Value:
        """The generic (boxed, or raw i1) form of original value ``v`` in the specialized code."""
        if _type_str(v.type) == B1:
            return self.smap[v]
        if v in self.sraw:
            return self.sraw[v]
        s = self.smap[v]
        return s if _type_str(s.type) == VAL else ops.box_scalar(s, self.loc)

    # ---- specialized copy ----------------------------------------------------------------------

    def guarded_unbox(self, v: ir.Value, t: str) -> ir.Value:
        """``v`` (a value) as ``t``, after a tag check that deopts when it fails."""
        with ir.InsertionPoint(self.cur), self.loc:
            ok = ops.has_tag(v, "fixnum" if t == I64 else "flonum", self.loc)
            self._guard_at(ok)
        with ir.InsertionPoint(self.cur), self.loc:
            return ops.unbox_scalar(v, t, self.loc)

    def _guard_at(self, ok: ir.Value) -> None:
        cont = self.new.body.blocks.append()
        dblock = self.new.body.blocks.append()
        cf.CondBranchOp(ok, [], [], cont, dblock)
        self.deopt_sites.append((dblock, self.cur_seg))
        self.cur = cont

    def as_type(self, v: ir.Value, t: str) -> ir.Value:
        """Original value ``v``'s specialized form, converted to ``t`` (at self.cur)."""
        if t == BOT:
            t = VAL
        s = self.smap[v]
        have = _type_str(s.type)
        if have == t:
            return s
        if t == VAL:
            if v in self.sraw:
                return self.sraw[v]
            with ir.InsertionPoint(self.cur), self.loc:
                return ops.box_scalar(s, self.loc)
        if have == VAL:
            return self.guarded_unbox(s, t)
        raise RuntimeError(f"internal error: specializer cannot convert {have} to {t}")

    def copy_block(self, b: ir.Block) -> None:
        fs = self.fs
        sb = self.sblocks[b]
        self.cur = sb
        if b != fs.blocks[0]:
            for orig, a in zip(b.arguments, sb.arguments, strict=True):
                self.smap[orig] = a
        opl = [o.operation for o in b.operations]
        for i, op in enumerate(opl):
            self.cur_seg = self.seg_of(b, i)
            self.loc = op.location
            self.copy_op(op)
            for r in op.results:
                if r in self.an.spec and self.T.get(r) == self.an.spec[r] and _type_str(self.smap[r].type) == VAL:
                    # Speculated result: check after the op (after an effectful op, the check
                    # belongs to the next segment, which starts right here).
                    if not _is_pure(op):
                        self.cur_seg = self.seg_of(b, i + 1)
                    self.sraw[r] = self.smap[r]
                    self.smap[r] = self.guarded_unbox(self.smap[r], self.an.spec[r])
                    self.changes += 1

    def copy_op(self, op) -> None:
        name = op.name
        T = self.T
        if name == ops.CONST_INT:
            with ir.InsertionPoint(self.cur), self.loc:
                value = ir.IntegerAttr(op.attributes["value"]).value
                self.smap[op.results[0]] = arith.ConstantOp(_mlir_type(I64), value).result
            return
        if name == ops.CONST_FLOAT:
            with ir.InsertionPoint(self.cur), self.loc:
                value = ir.FloatAttr(op.attributes["value"]).value
                self.smap[op.results[0]] = arith.ConstantOp(_mlir_type(F64), value).result
            return
        if name == ops.PRIM:
            pname = ops.attr_str(op, "name")
            types = tuple(T.get(v, BOT) for v in op.operands)
            rule = rule_for(pname, types) if BOT not in types else None
            if rule is not None:
                args = [self.smap[v] for v in op.operands]
                emitter = _RuleEmitter(self.loc)
                with ir.InsertionPoint(self.cur), self.loc:
                    r = rule.emit(emitter, args)
                    if emitter.guards:
                        ok = emitter.guards[0]
                        for g in emitter.guards[1:]:
                            ok = arith.AndIOp(ok, g).result
                        self._guard_at(ok)
                self.smap[op.results[0]] = r
                self.changes += 1
                return
        if name == ops.TRUTHY:
            t = T.get(op.operands[0])
            if t == B1:
                self.smap[op.results[0]] = self.smap[op.operands[0]]
                return
            if t in (I64, F64):
                with ir.InsertionPoint(self.cur), self.loc:
                    self.smap[op.results[0]] = arith.ConstantOp(ir.IntegerType.get_signless(1), 1).result
                return
        if name in (ops.CALL, ops.TAIL_CALL) and self.direct_call(op):
            return
        if name == "cf.br":
            dest = op.successors[0]
            vals = [self.as_type(v, T[a]) for v, a in zip(op.operands, dest.arguments, strict=True)]
            with ir.InsertionPoint(self.cur), self.loc:
                cf.BranchOp(vals, self.sblocks[dest])
            return
        if name == "cf.cond_br":
            view = op.opview
            t, f = op.successors[0], op.successors[1]
            tv = [self.as_type(v, T[a]) for v, a in zip(view.trueDestOperands, t.arguments, strict=True)]
            fv = [self.as_type(v, T[a]) for v, a in zip(view.falseDestOperands, f.arguments, strict=True)]
            cond = self.smap[view.condition]
            with ir.InsertionPoint(self.cur), self.loc:
                cf.CondBranchOp(cond, tv, fv, self.sblocks[t], self.sblocks[f])
            return
        # Generic op: boxed operands.
        operands = [self.as_type(v, VAL) if _type_str(v.type) == VAL else self.smap[v] for v in op.operands]
        with ir.InsertionPoint(self.cur):
            new = _copy_op(op, operands)
        for r, n in zip(op.results, new.results, strict=True):
            self.smap[r] = n

    # ---- calls -----------------------------------------------------------------------------

    def known_callee(self, callee: ir.Value) -> Callee | None:
        fs = self.fs
        sym = None
        o = ops.owner_op(callee)
        if o is None:
            if fs.is_proc and callee == fs.self_arg:
                sym = fs.sym
        elif o.name == ops.MAKE_CLOSURE:
            sym = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
        elif o.name == ops.GLOBAL_REF:
            sym = self.ms.stable.get(ir.FlatSymbolRefAttr(o.attributes["name"]).value)
        return self.ms.callees.get(sym) if sym is not None else None

    def direct_call(self, op) -> bool:
        """Call a typed clone directly when the callee is known; False to leave it generic."""
        callee = self.known_callee(op.operands[0])
        args = list(op.operands)[1:]
        if callee is None or not callee.direct_ok or callee.nreq != len(args):
            return False
        sig = tuple(t if t in (I64, F64) else VAL for t in (self.T.get(a, VAL) for a in args))
        name = self.ms.clone_for(callee.sym, sig)
        if name is None:
            return False
        self_v = self.as_type(op.operands[0], VAL)
        vals = [self.as_type(a, t) for a, t in zip(args, sig, strict=True)]
        # In tail position too: the clone makes no tail calls, so a chain of tail calls cannot
        # grow the stack through this plain call.
        with ir.InsertionPoint(self.cur), self.loc:
            call = func.CallOp([ops.value_type()], ir.FlatSymbolRefAttr.get(name), [self_v] + vals)
        self.smap[op.results[0]] = call.result
        self.changes += 1
        return True


class _RuleEmitter:
    """The Emitter a typed rule sees: it collects the rule's guards (checked after it)."""

    def __init__(self, loc: ir.Location) -> None:
        self.loc = loc
        self.guards: list[ir.Value] = []

    def guard(self, ok: ir.Value) -> None:
        self.guards.append(ok)


def _is_pure(op) -> bool:
    name = op.name
    if name in PURE_OPS:
        return True
    if name == ops.PRIM:
        return ops.attr_str(op, "name") in PURE_PRIMS
    return False


def _attr_names(op) -> list[str]:
    return [a if isinstance(a, str) else a.name for a in op.attributes]


def _copy_op(op, operands: list[ir.Value]) -> ir.Operation:
    """A copy of ``op`` at the current insertion point with new operands."""
    attrs = {a: op.attributes[a] for a in _attr_names(op)}
    return ir.Operation.create(op.name, results=[r.type for r in op.results], operands=operands,
                               attributes=attrs, loc=op.location)


def run(module: ir.Operation) -> None:
    """Specialize the module's functions and add the typed clones their calls use."""
    with ir.Location.unknown():
        ModuleSpecializer(module).run()
