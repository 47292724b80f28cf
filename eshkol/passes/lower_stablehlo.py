"""Outline tensor chains to StableHLO functions, called through XLA (%xla-call).

The dialect-level form of the XLA target. A *chain* is a tree of ``eshkol.prim`` ops with a
``'stablehlo'`` rule (eshkol/lower/stablehlo_rules.py) in one block, each inner result used
once (by its parent), with at least one tensor computation (elementwise, reduction, matmul,
shape...); scalar-only subtrees stay Scheme arithmetic. Its leaves are numeric or symbol
constants (compiled in) and inputs. Each chain becomes

    %id  = eshkol.const_int N
    %f   = eshkol.make_closure(inputs) {callee = @"%xla-fallback.hloN"}   // the original ops
    %r   = eshkol.prim(%id, %f, inputs) {name = "%xla-call"}

plus ``func.func @regionN`` in the nested ``module @esk_xla``: its StableHLO (generic form,
from the same rules as ``--target=xla``'s tracer) when every input's dtype and shape is
known from the IR (tensor literals, creation calls with constant arguments, globals defined
once from such values, other chains), else a declaration on ``!eshkol.value`` (traced at run
time, per input signature). Either way the function carries the chain as an expression
(``eshkol.xla_expr``), from which ``take_regions`` rebuilds the regions that the XLA driver
(eshkol/runtime/xla.py) compiles when ``%xla-call`` runs; without a driver, or for inputs
XLA cannot take, the fallback closure runs the original primitives.

Chains whose first op and root have effectful ops between them are cut there (moving the
ops would reorder effects); chains that fail to trace with known shapes are left alone (the
CPU code then reports the error at its source location).
"""

from __future__ import annotations

import re

from mlir import ir
from mlir.dialects import func

from eshkol.core import ast as A
from eshkol.dialect import ops
from eshkol.dialect.primitives import PRIMITIVES, Primitive
from eshkol.lower.stablehlo import ArgSpec, NeedStatic, TType, XlaError, region_function, result_spec
from eshkol.passes.fuse_tensors import _MOVABLE_PAST
from eshkol.passes.xla_outline import _COMPUTE_KINDS, XLA_CALL, Region
from eshkol.syntax.datum import Symbol
from eshkol.syntax.diagnostics import Loc

XLA_MODULE = "esk_xla"
ATTR_REGION = "eshkol.xla_region"  # i64: the region id %xla-call passes to the driver
ATTR_EXPR = "eshkol.xla_expr"      # the chain: (prim arg ...), $i for input i, numbers, 'symbols
FALLBACK = "%xla-fallback"
_CONSTS = {ops.CONST_INT, ops.CONST_FLOAT, ops.CONST_SYMBOL}


# ---- small helpers -----------------------------------------------------------------------------

def _prim_name(op: ir.Operation | None) -> str | None:
    if op is None or op.name != ops.PRIM:
        return None
    return ir.StringAttr(op.attributes["name"]).value


def _rule_prim(op: ir.Operation | None) -> Primitive | None:
    p = PRIMITIVES.get(_prim_name(op) or "")
    return p if p is not None and "stablehlo" in p.rules else None


def _defining(v: ir.Value) -> ir.Operation | None:
    owner = v.owner
    if isinstance(owner, ir.Block):
        return None
    return owner.operation if hasattr(owner, "operation") else owner


def _loc(location: ir.Location) -> Loc:
    """The source location of an op (``Loc('?', 0, 0)`` when it has none)."""
    m = re.match(r'loc\("(.*)":(\d+):(\d+)\)', str(location))
    return Loc(m.group(1), int(m.group(2)), int(m.group(3))) if m else Loc("?", 0, 0)


def _const_value(op: ir.Operation):
    """The number or symbol of a constant op (Symbol for symbols)."""
    if op.name == ops.CONST_INT:
        return ir.IntegerAttr(op.attributes["value"]).value
    if op.name == ops.CONST_FLOAT:
        return ir.FloatAttr(op.attributes["value"]).value
    return Symbol(ir.StringAttr(op.attributes["value"]).value)


def _numeric_const(v: ir.Value) -> bool:
    d = _defining(v)
    return d is not None and d.name in (ops.CONST_INT, ops.CONST_FLOAT)


def quoted_lists(module: ir.Operation) -> dict[str, tuple]:
    """The quoted lists of numbers (``'(2 3)``: globals defined once, from cons cells of
    constants) by global name."""
    sets: dict[str, list[ir.Operation]] = {}

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == ops.GLOBAL_SET:
            sets.setdefault(ir.FlatSymbolRefAttr(op.attributes["name"]).value, []).append(op)
        return ir.WalkResult.ADVANCE

    module.walk(visit)
    out: dict[str, tuple] = {}
    for name, defs in sets.items():
        if not name.startswith("%quote.") or len(defs) != 1:
            continue
        items, v = [], defs[0].operands[0]
        while _prim_name(_defining(v)) == "cons" and _numeric_const(_defining(v).operands[0]):
            items.append(_const_value(_defining(_defining(v).operands[0])))
            v = _defining(v).operands[1]
        d = _defining(v)
        if d is not None and d.name == ops.CONST_IMM and ir.StringAttr(d.attributes["kind"]).value == "nil":
            out[name] = tuple(items)
    return out


def _static_list(op: ir.Operation | None, quotes: dict[str, tuple]) -> tuple | None:
    """The numbers of a compile-time list (dimensions): ``(list n ...)`` of numeric
    constants, or a quoted list."""
    if _prim_name(op) == "list" and all(_numeric_const(v) for v in op.operands):
        return tuple(_const_value(_defining(v)) for v in op.operands)
    if op is not None and op.name == ops.GLOBAL_REF:
        return quotes.get(ir.FlatSymbolRefAttr(op.attributes["name"]).value)
    return None


# ---- chains ----------------------------------------------------------------------------------------

class Chain:
    """One tree of primitives to outline: its ops (block order), root, inputs, the constant
    leaves compiled in (ops cloned into the fallback) and the region body (core forms)."""

    def __init__(self, block: ir.Block, pos: dict, floor: int, quotes: dict[str, tuple]) -> None:
        self.block = block
        self.quotes = quotes
        self.pos = pos
        self.floor = floor  # ops at or before this position stay outside (effects between)
        self.ops: list[ir.Operation] = []
        self.inputs: list[ir.Value] = []
        self.vars: list[A.Var] = []
        self.static: list[ir.Operation] = []
        self.aliases: list[tuple[ir.Value, int]] = []  # other reads of an input's global
        self.root: ir.Operation | None = None
        self.body: A.Node | None = None

    def _joins(self, v: ir.Value) -> ir.Operation | None:
        """The op defining ``v`` when it can be part of this chain."""
        d = _defining(v)
        if d is None or _rule_prim(d) is None or d.block != self.block or self.pos[d] <= self.floor:
            return None
        if len(list(v.uses)) != 1:
            return None
        return d if self.has_tensor(d) else None

    def has_tensor(self, op: ir.Operation) -> bool:
        """Whether the subtree at ``op`` computes with a tensor primitive."""
        if _rule_prim(op).kind is not None:
            return True
        return any(self._joins(v) is not None for v in op.operands)

    def build(self, op: ir.Operation) -> A.Node:
        self.ops.append(op)
        loc = _loc(op.location)
        args = []
        for v in op.operands:
            d = self._joins(v)
            args.append(self.build(d) if d is not None else self._leaf(v, loc))
        return A.Prim(loc, _prim_name(op), args)

    def _leaf(self, v: ir.Value, loc: Loc) -> A.Node:
        d = _defining(v)
        if d is not None and d.name in _CONSTS:
            self._keep(d)
            return A.Const(loc, _const_value(d))
        items = _static_list(d, self.quotes)
        if items is not None:
            for x in d.operands:
                self._keep(_defining(x))
            self._keep(d)
            return A.Prim(loc, "list", [A.Const(loc, x) for x in items])
        for i, x in enumerate(self.inputs):
            if x == v:
                return A.LRef(loc, self.vars[i])
            if self._same_global(d, _defining(x)):
                self.aliases.append((v, i))
                return A.LRef(loc, self.vars[i])
        self.inputs.append(v)
        self.vars.append(A.Var(_input_name(d, len(self.vars))))
        return A.LRef(loc, self.vars[-1])

    def _same_global(self, a: ir.Operation | None, b: ir.Operation | None) -> bool:
        """Two reads of one global with nothing between them that could assign it."""
        if a is None or b is None or a.name != ops.GLOBAL_REF or b.name != ops.GLOBAL_REF \
                or a.block != self.block or b.block != self.block \
                or a.attributes["name"] != b.attributes["name"]:
            return False
        lo, hi = sorted((self.pos[a], self.pos[b]))
        return all(o.operation.name in _MOVABLE_PAST or o.operation in self.ops
                   for o in list(self.block.operations)[lo:hi])

    def _keep(self, op: ir.Operation) -> None:
        if op not in self.static:
            self.static.append(op)

    def effects_inside(self) -> int | None:
        """The position of the last op between the chain's first op and its root that is
        neither part of it nor free of effects (None when there is none)."""
        ops_in = set(self.ops) | set(self.static)  # the constant lists are allocations only
        first = min(self.pos[o] for o in self.ops)
        bad = [self.pos[o.operation] for o in self.block.operations
               if first < self.pos[o.operation] < self.pos[self.root]
               and o.operation not in ops_in and o.operation.name not in _MOVABLE_PAST]
        return max(bad) if bad else None

    def worth(self) -> bool:
        return any(PRIMITIVES[_prim_name(o)].kind in _COMPUTE_KINDS for o in self.ops)

    def region(self, rid: int) -> Region:
        return Region(rid, _loc(self.root.location), self.body, list(self.vars), {})


def _input_name(op: ir.Operation | None, i: int) -> str:
    if op is not None and op.name == ops.GLOBAL_REF:
        return ir.FlatSymbolRefAttr(op.attributes["name"]).value
    return f"in{i}"


def chain_at(root: ir.Operation, block: ir.Block, pos: dict, quotes: dict[str, tuple]) -> Chain:
    """The largest chain rooted at ``root`` whose ops are contiguous up to effect-free ops."""
    floor = -1
    while True:
        ch = Chain(block, pos, floor, quotes)
        ch.root = root
        ch.body = ch.build(root)
        cut = ch.effects_inside()
        if cut is None:
            ch.ops.sort(key=pos.__getitem__)
            return ch
        floor = cut


def find_chains(fn: ir.Operation, quotes: dict[str, tuple]) -> list[Chain]:
    """The chains worth outlining in function ``fn``."""
    out: list[Chain] = []
    for block in fn.regions[0].blocks:
        order = [o.operation for o in block.operations]
        pos = {o: i for i, o in enumerate(order)}
        claimed: set = set()
        found: list[Chain] = []
        for op in reversed(order):  # a root comes after its operands
            if op in claimed or _rule_prim(op) is None:
                continue
            ch = Chain(block, pos, -1, quotes)
            if not ch.has_tensor(op):
                continue
            ch = chain_at(op, block, pos, quotes)
            claimed.update(ch.ops)
            if ch.worth():
                found.append(ch)
        out.extend(reversed(found))  # in source order
    return out


# ---- static types of inputs ------------------------------------------------------------------------

class StaticTypes:
    """Dtypes and shapes of values known from the IR alone (see the module docstring)."""

    def __init__(self, module: ir.Operation, quotes: dict[str, tuple]) -> None:
        self.quotes = quotes
        self.defs: dict[str, list[ir.Operation]] = {}
        self.memo: dict = {}
        self.results: dict[int, ArgSpec] = {}  # of chains already outlined, by region id

        def visit(op: ir.Operation) -> ir.WalkResult:
            if op.name == ops.GLOBAL_SET:
                self.defs.setdefault(ir.FlatSymbolRefAttr(op.attributes["name"]).value, []).append(op)
            return ir.WalkResult.ADVANCE

        module.walk(visit)

    def _defined_once(self, name: str) -> ir.Value | None:
        sets = self.defs.get(name, [])
        if len(sets) == 1 and ir.StringAttr(sets[0].attributes["kind"]).value == "define":
            return sets[0].operands[0]
        return None

    def spec(self, v: ir.Value) -> ArgSpec | None:
        d = _defining(v)
        if d is None:
            return None
        if d in self.memo:
            return self.memo[d]
        self.memo[d] = None  # a global defined from itself: unknown
        self.memo[d] = out = self._spec(d)
        return out

    def _spec(self, d: ir.Operation) -> ArgSpec | None:
        if d.name in (ops.CONST_INT, ops.CONST_FLOAT):
            x = _const_value(d)
            return ArgSpec(TType("i64" if isinstance(x, int) else "f64"), True, x)
        if d.name == ops.GLOBAL_REF:
            value = self._defined_once(ir.FlatSymbolRefAttr(d.attributes["name"]).value)
            return None if value is None else self.spec(value)
        name = _prim_name(d)
        if name == "%tensor-const":
            dims = self._dims(d.operands[0])
            return None if dims is None else ArgSpec(TType("f64", dims))
        if name == XLA_CALL:
            rid = _defining(d.operands[0])
            return self.results.get(_const_value(rid)) if rid is not None and rid.name == ops.CONST_INT else None
        if _rule_prim(d) is None:
            return None
        ch = Chain(d.block, {o.operation: i for i, o in enumerate(d.block.operations)}, -1, self.quotes)
        ch.root = d
        ch.body = ch.build(d)
        return self.region_spec(ch.region(-1), ch.inputs)

    def _dims(self, v: ir.Value) -> tuple[int, ...] | None:
        """A quoted vector of integers (a tensor literal's dimensions)."""
        d = _defining(v)
        if d is not None and d.name == ops.GLOBAL_REF:
            v = self._defined_once(ir.FlatSymbolRefAttr(d.attributes["name"]).value)
            d = _defining(v) if v is not None else None
        if _prim_name(d) != "vector":
            return None
        items = [_defining(x) for x in d.operands]
        if not all(x is not None and x.name == ops.CONST_INT for x in items):
            return None
        return tuple(_const_value(x) for x in items)

    def specs(self, inputs: list[ir.Value]) -> list[ArgSpec] | None:
        out = [self.spec(v) for v in inputs]
        return None if any(s is None for s in out) else out

    def region_spec(self, region: Region, inputs: list[ir.Value]) -> ArgSpec | None:
        """The result type of ``region`` on ``inputs``, when it is known."""
        specs = self.specs(inputs)
        return None if specs is None else result_spec(region, specs)


# ---- expressions as text (the region's body in the IR) ---------------------------------------------

def expr_text(node: A.Node, inputs: list[A.Var]) -> str:
    """``node`` as an S-expression: (prim arg ...), $i for input i, numbers, 'symbols."""
    if isinstance(node, A.Prim):
        return "(" + " ".join([node.name] + [expr_text(a, inputs) for a in node.args]) + ")"
    if isinstance(node, A.LRef):
        return f"${inputs.index(node.var)}"
    if isinstance(node.value, Symbol):
        return "'" + node.value.name
    return repr(node.value)


def parse_expr(text: str, loc: Loc) -> tuple[A.Node, list[A.Var]]:
    """The inverse of ``expr_text``: (body, one variable per input)."""
    tokens = re.findall(r"\(|\)|[^\s()]+", text)
    inputs: dict[int, A.Var] = {}

    def read(i: int) -> tuple[A.Node, int]:
        t = tokens[i]
        if t == "(":
            name, i, args = tokens[i + 1], i + 2, []
            while tokens[i] != ")":
                a, i = read(i)
                args.append(a)
            return A.Prim(loc, name, args), i + 1
        if t.startswith("$"):
            k = int(t[1:])
            return A.LRef(loc, inputs.setdefault(k, A.Var(f"in{k}"))), i + 1
        if t.startswith("'"):
            return A.Const(loc, Symbol(t[1:])), i + 1
        return A.Const(loc, int(t) if re.fullmatch(r"-?\d+", t) else float(t)), i + 1

    body, _ = read(0)
    return body, [inputs[k] for k in sorted(inputs)]


# ---- the rewrite -------------------------------------------------------------------------------------

def _create(name: str, operands: list[ir.Value], attrs: dict, loc: ir.Location) -> ir.Value:
    return ir.Operation.create(name, results=[ops.value_type()], operands=operands,
                               attributes=attrs, loc=loc).result


def _fallback(module: ir.Operation, ch: Chain, name: str) -> ir.Operation:
    """Move the chain's ops into a thunk ``name`` over its inputs (closure slots)."""
    vt = ops.value_type()
    i64 = ir.IntegerType.get_signless(64)
    with ir.InsertionPoint(module.regions[0].blocks[0]), ch.root.location:
        fn = func.FuncOp(name, ir.FunctionType.get([vt], [vt]))
        fn.attributes[ops.ATTR_NAME] = ir.StringAttr.get(FALLBACK)
        fn.attributes[ops.ATTR_NREQ] = ir.IntegerAttr.get(i64, 0)
        fn.attributes[ops.ATTR_NOPT] = ir.IntegerAttr.get(i64, 0)
        fn.attributes[ops.ATTR_REST] = ir.BoolAttr.get(False)
        block = fn.add_entry_block()
    mapping: dict = {}
    with ir.InsertionPoint(block):
        for i, v in enumerate(ch.inputs):
            mapping[v] = _create(ops.CLOSURE_REF, [block.arguments[0]], {"index": ir.IntegerAttr.get(i64, i)},
                                 ch.root.location)
        for v, i in ch.aliases:
            mapping[v] = mapping[ch.inputs[i]]
        for op in ch.static:  # constants first, then the lists built from them
            copy = op.clone()
            for j, v in enumerate(copy.operands):
                copy.operands[j] = mapping.get(v, v)
            mapping[op.result] = copy.result
    for op in ch.ops:
        block.append(op)
        for j, v in enumerate(op.operands):
            if v in mapping:
                op.operands[j] = mapping[v]
    with ir.InsertionPoint(block), ch.root.location:
        func.ReturnOp([ch.root.result])
    for op in reversed(ch.static):  # now unused where they were
        if not list(op.result.uses):
            op.erase()
    return fn.operation


def _outline(module: ir.Operation, ch: Chain, rid: int) -> ir.Operation:
    name = f"{FALLBACK}.hlo{rid}"
    loc = ch.root.location
    i64 = ir.IntegerType.get_signless(64)
    with ir.InsertionPoint(ch.root):
        idv = _create(ops.CONST_INT, [], {"value": ir.IntegerAttr.get(i64, rid)}, loc)
        clo = _create(ops.MAKE_CLOSURE, list(ch.inputs), {"callee": ir.FlatSymbolRefAttr.get(name)}, loc)
        call = _create(ops.PRIM, [idv, clo, *ch.inputs], {"name": ir.StringAttr.get(XLA_CALL)}, loc)
    ch.root.result.replace_all_uses_with(call)
    return _fallback(module, ch, name)


def _function_text(ch: Chain, region: Region, specs: list[ArgSpec] | None) -> str | None:
    """``func.func @regionN``: StableHLO for ``specs``, or a declaration when they are
    unknown (or the trace needs a value known only at run time); None when the chain cannot
    run on XLA with these (known) types."""
    loc = _loc(ch.root.location)
    where = f' loc("{loc.file}":{loc.line}:{loc.col})' if loc.line > 0 else ""
    if specs is not None:
        try:
            text, _ = region_function(region, specs, name=f"region{region.id}")
            return text + where
        except NeedStatic:
            pass
        except XlaError:
            return None
    args = ", ".join(["!eshkol.value"] * len(ch.inputs))
    return f"  func.func private @region{region.id}({args}) -> !eshkol.value{where}"


def _xla_module(module: ir.Operation) -> ir.Operation | None:
    for op in module.regions[0].blocks[0].operations:
        if op.operation.name == "builtin.module" and "sym_name" in op.attributes and \
                ir.StringAttr(op.attributes["sym_name"]).value == XLA_MODULE:
            return op.operation
    return None


def _next_id(module: ir.Operation) -> int:
    """One past the largest region id in use (regions outlined from the AST, earlier runs)."""
    ids = [-1]

    def visit(op: ir.Operation) -> ir.WalkResult:
        if _prim_name(op) == XLA_CALL:
            d = _defining(op.operands[0])
            if d is not None and d.name == ops.CONST_INT:
                ids.append(_const_value(d))
        return ir.WalkResult.ADVANCE

    module.walk(visit)
    return max(ids) + 1


def _is_fallback(fn: ir.Operation) -> bool:
    return ops.ATTR_NAME in fn.attributes and ir.StringAttr(fn.attributes[ops.ATTR_NAME]).value == FALLBACK


def run(module: ir.Operation) -> None:
    """Outline every chain of every function (fallback thunks excepted) to XLA."""
    from eshkol.lower import stablehlo_rules

    stablehlo_rules.attach()
    quotes = quoted_lists(module)
    types = StaticTypes(module, quotes)
    rid = _next_id(module)
    todo: list[tuple[Chain, Region, str]] = []
    for fn in list(module.regions[0].blocks[0].operations):
        fn = fn.operation
        if fn.name != "func.func" or _is_fallback(fn) or not fn.regions[0].blocks:
            continue
        for ch in find_chains(fn, quotes):
            region = ch.region(rid)
            specs = types.specs(ch.inputs)
            text = _function_text(ch, region, specs)
            if text is None:
                continue
            result = types.region_spec(region, ch.inputs) if specs is not None else None
            if result is not None:
                types.results[rid] = result
            todo.append((ch, region, text))
            rid += 1
    if not todo:
        return
    parsed = ir.Module.parse("module {\n module @" + XLA_MODULE + " {\n" +
                             "\n".join(t for _, _, t in todo) + "\n }\n}")
    new = parsed.body.operations[0].operation
    for f, (_, region, _) in zip(new.regions[0].blocks[0].operations, todo, strict=True):
        f.attributes[ATTR_REGION] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), region.id)
        f.attributes[ATTR_EXPR] = ir.StringAttr.get(expr_text(region.body, region.free))
    existing = _xla_module(module)
    if existing is None:
        module.regions[0].blocks[0].append(new)
    else:
        for f in list(new.regions[0].blocks[0].operations):
            existing.regions[0].blocks[0].append(f.operation)
    # Last first: a chain's inputs may be results of earlier chains, which are replaced by
    # their %xla-call (all uses, the later chain's new ops included) when those are outlined.
    fallbacks = [_outline(module, ch, region.id) for ch, region, _ in reversed(todo)]
    for fn in reversed(fallbacks):  # in region order, after everything else
        module.regions[0].blocks[0].append(fn)


# ---- for the driver ------------------------------------------------------------------------------------

def take_regions(module: ir.Operation, regions: list) -> None:
    """Move the regions of ``module``'s ``@esk_xla`` into ``regions`` (index = region id, as
    the XLA driver looks them up) and remove the nested module (the CPU pipeline lowers
    every nested module)."""
    xla = _xla_module(module)
    if xla is None:
        return
    for f in xla.regions[0].blocks[0].operations:
        rid = ir.IntegerAttr(f.attributes[ATTR_REGION]).value
        loc = _loc(f.location)
        body, inputs = parse_expr(ir.StringAttr(f.attributes[ATTR_EXPR]).value, loc)
        while len(regions) <= rid:
            regions.append(None)
        if regions[rid] is not None:
            raise RuntimeError(f"internal error: XLA region {rid} defined twice")
        regions[rid] = Region(rid, loc, body, inputs, {})
    xla.erase()


def standalone(fn_text: str) -> str:
    """A jax-ready module (``main``) of one ``@regionN`` function's printed text."""
    text = re.sub(r"func\.func (public |private )?@region\d+", "func.func public @main", fn_text, count=1)
    text = re.sub(r"attributes \{eshkol\.xla[^{}]*\}", "", text, count=1)
    return ("module @eshkol_xla attributes {mhlo.num_partitions = 1 : i32, "
            "mhlo.num_replicas = 1 : i32} {\n" + text + "\n}\n")
