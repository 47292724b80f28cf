"""What the autodiff pass may transform: known callees, activity, differentiability.

A procedure can be differentiated by transformation when every operation that sees a value
depending on its parameters (an *active* value) is a primitive with a JVP rule, a comparison
or predicate (its result is passive), a branch, a return, or a call of another such known
procedure (the procedure itself, a global defined once and never assigned, a closure made in
the same function over passive values). Operations on passive values are copied unchanged:
the transformed procedure runs the body once, as the runtime's dual numbers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlir import ir

from eshkol.dialect import ops
from eshkol.dialect.ops import attr_str, owner_op
from eshkol.passes.autodiff_rules import PASSIVE_RESULT, jvp_rule, vjp_rule
from eshkol.passes.cfg import edge_bindings, reverse_postorder, successors

# Reverse mode follows each path through the procedure's branches separately (the adjoint
# sweep of a path reads that path's forward values): a bound on the paths keeps code small.
MAX_PATHS = 32


@dataclass
class FnInfo:
    """A procedure as the transformation sees it."""

    sym: str
    fn: ir.Operation
    nreq: int
    plain: bool                 # only required parameters
    blocks: list = field(default_factory=list)
    active: set = field(default_factory=set)
    reason: str | None = None   # why forward mode cannot transform it (None: it can)
    vjp_reason: str | None = None  # why reverse mode cannot (None: it can)
    straight: bool = False      # one block, no calls with active arguments
    loops: bool = False         # has a loop: reverse mode keeps a stack (autodiff_vjp_loop.py)


@dataclass
class Callee:
    """A statically known procedure at a call: its symbol and how to rebuild its closure."""

    sym: str
    kind: str                   # 'self', 'global' or 'local'
    captured: list = field(default_factory=list)  # a local closure's captured values


class ModuleInfo:
    """Functions and stable globals of a module, and the differentiability of procedures."""

    def __init__(self, module: ir.Operation) -> None:
        self.body = module.regions[0].blocks[0]
        self.funcs: dict[str, ir.Operation] = {}
        for op in self.body.operations:
            if op.operation.name == "func.func":
                self.funcs[attr_str(op, "sym_name")] = op.operation
        self.stable = self._stable_globals()
        self.infos: dict[str, FnInfo] = {}

    def _stable_globals(self) -> dict[str, str]:
        """Globals defined once as a closure with no captured values, never assigned."""
        sets: dict[str, list] = {}
        for fn in self.funcs.values():
            for block in fn.regions[0].blocks:
                for op in block.operations:
                    if op.operation.name == ops.GLOBAL_SET:
                        name = ir.FlatSymbolRefAttr(op.attributes["name"]).value
                        sets.setdefault(name, []).append(op.operation)
        out = {}
        for name, setters in sets.items():
            if len(setters) != 1 or attr_str(setters[0], "kind") != "define":
                continue
            maker = owner_op(setters[0].operands[0])
            if maker is not None and maker.name == ops.MAKE_CLOSURE and not len(maker.operands):
                out[name] = ir.FlatSymbolRefAttr(maker.attributes["callee"]).value
        return out

    def callee_of(self, v: ir.Value, self_arg: ir.Value | None, self_sym: str | None) -> Callee | None:
        """The known procedure that ``v`` is, if any."""
        o = owner_op(v)
        if o is None:
            if self_arg is not None and v == self_arg:
                return Callee(self_sym, "self")
            return None
        if o.name == ops.MAKE_CLOSURE:
            return Callee(ir.FlatSymbolRefAttr(o.attributes["callee"]).value, "local", list(o.operands))
        if o.name == ops.GLOBAL_REF:
            sym = self.stable.get(ir.FlatSymbolRefAttr(o.attributes["name"]).value)
            return Callee(sym, "global") if sym is not None else None
        return None

    def info(self, sym: str) -> FnInfo:
        """The analysis of procedure ``sym`` (its callees analysed too)."""
        got = self.infos.get(sym)
        if got is not None:
            return got
        fn = self.funcs.get(sym)
        if fn is None or ops.ATTR_NREQ not in fn.attributes:
            inf = FnInfo(sym, fn, 0, False, reason="not a procedure of this module")
            self.infos[sym] = inf
            return inf
        nreq = ir.IntegerAttr(fn.attributes[ops.ATTR_NREQ]).value
        plain = ir.IntegerAttr(fn.attributes[ops.ATTR_NOPT]).value == 0 and \
            not ir.BoolAttr(fn.attributes[ops.ATTR_REST]).value
        inf = FnInfo(sym, fn, nreq, plain)
        self.infos[sym] = inf      # optimistic for recursion: a cycle is differentiable
        if not plain:
            inf.reason = inf.vjp_reason = f"'{self.name_of(sym)}' has optional or rest parameters"
            return inf
        inf.blocks = reverse_postorder(list(fn.regions[0].blocks)[0])
        inf.active = self._activity(inf)
        inf.reason = self._check(inf, "jvp")
        inf.vjp_reason = self._paths_reason(inf) or self._check(inf, "vjp")
        inf.straight = inf.reason is None and len(inf.blocks) == 1 and self._no_active_calls(inf)
        return inf

    def name_of(self, sym: str) -> str:
        """A procedure's print name (its symbol when anonymous)."""
        fn = self.funcs.get(sym)
        if fn is not None and ops.ATTR_NAME in fn.attributes:
            n = attr_str(fn, ops.ATTR_NAME)
            if n:
                return n
        return "lambda"

    def _activity(self, inf: FnInfo) -> set:
        """Values that depend on the parameters through differentiable operations."""
        entry = inf.blocks[0]
        active = set(list(entry.arguments)[1:])
        self_arg = entry.arguments[0]
        changed = True
        while changed:
            changed = False
            for b in inf.blocks:
                for op in b.operations:
                    op = op.operation
                    name = op.name
                    if name in ("cf.br", "cf.cond_br"):
                        for a, v in edge_bindings(op):
                            if v in active and a not in active:
                                active.add(a)
                                changed = True
                        continue
                    if not any(v in active for v in op.operands):
                        continue
                    res_active = False
                    if name == ops.PRIM:
                        res_active = attr_str(op, "name") not in PASSIVE_RESULT
                    elif name in (ops.CALL, ops.TAIL_CALL):
                        res_active = self.callee_of(op.operands[0], self_arg, inf.sym) is not None
                    for r in op.results:
                        if res_active and r not in active:
                            active.add(r)
                            changed = True
        return active

    def _paths_reason(self, inf: FnInfo) -> str | None:
        """Why reverse mode cannot follow ``inf``'s control flow (None: it can). Loop-free
        code is followed path by path (at most MAX_PATHS); code with a loop by a stack of the
        blocks' values (``inf.loops`` set)."""
        npaths: dict[ir.Block, int] = {}
        for b in reversed(inf.blocks):       # successors first (acyclic: postorder)
            succ = successors(b)
            if len(succ) == 2 and succ[0] == succ[1]:
                return f"a branch with one target twice (in '{self.name_of(inf.sym)}')"
            if any(s not in npaths for s in succ):
                inf.loops = True
                continue
            npaths[b] = max(1, sum(npaths[s] for s in succ))
        if not inf.loops and npaths[inf.blocks[0]] > MAX_PATHS:
            return f"more than {MAX_PATHS} paths through the branches of '{self.name_of(inf.sym)}'"
        return None

    def _check(self, inf: FnInfo, key: str) -> str | None:
        """Why ``inf`` cannot be differentiated by transformation in mode ``key`` ('jvp' or
        'vjp'; None: it can)."""
        has_rule = jvp_rule if key == "jvp" else vjp_rule
        self_arg = inf.blocks[0].arguments[0]
        for b in inf.blocks:
            for op in b.operations:
                op = op.operation
                name = op.name
                act = [v in inf.active for v in op.operands]
                if not any(act) or name in ("cf.br", "cf.cond_br", "func.return", ops.TRUTHY):
                    continue
                if name == ops.PRIM:
                    pname = attr_str(op, "name")
                    if pname in PASSIVE_RESULT or has_rule(pname) is not None:
                        continue
                    return f"'{pname}' has no derivative rule (in '{self.name_of(inf.sym)}')"
                if name in (ops.CALL, ops.TAIL_CALL):
                    if act[0]:
                        return "calls a procedure computed from the point"
                    callee = self.callee_of(op.operands[0], self_arg, inf.sym)
                    if callee is None:
                        return f"calls an unknown procedure with the point (in '{self.name_of(inf.sym)}')"
                    if callee.kind == "local" and any(v in inf.active for v in callee.captured):
                        return "calls a closure over the point"
                    if key == "vjp" and callee.kind == "self" and self._uses_closure(inf):
                        return f"a recursive closure (in '{self.name_of(inf.sym)}')"
                    sub = self.info(callee.sym)
                    why = sub.reason if key == "jvp" else sub.vjp_reason
                    if why is not None:
                        return why
                    if sub.nreq != len(op.operands) - 1:
                        return f"calls '{self.name_of(callee.sym)}' with the wrong number of arguments"
                    continue
                if name in (ops.MAKE_CLOSURE, ops.BOX, ops.SET_BOX, ops.CLOSURE_SET):
                    return f"a closure or box holds the point (in '{self.name_of(inf.sym)}')"
                if name == ops.GLOBAL_SET:
                    return "assigns the point to a global"
                return f"operation {name} on the point"
        return None

    def _uses_closure(self, inf: FnInfo) -> bool:
        return any(op.operation.name == ops.CLOSURE_REF for b in inf.blocks for op in b.operations)

    def _no_active_calls(self, inf: FnInfo) -> bool:
        for op in inf.blocks[0].operations:
            op = op.operation
            if op.name in (ops.CALL, ops.TAIL_CALL) and any(v in inf.active for v in op.operands):
                return False
        return True


def vjp_ready(inf: FnInfo) -> bool:
    """Whether reverse mode applies: one point, code whose active operations all have VJPs
    (known callees included)."""
    return inf.vjp_reason is None and inf.nreq == 1
