"""Typed builders for the eshkol dialect: the only module that spells eshkol op names.

Builders insert at the current ``ir.InsertionPoint`` and take an ``ir.Location``; ops print in
generic form (the dialect is defined in IRDL, eshkol.irdl.mlir).
"""

from __future__ import annotations

import sys
import types
from importlib import resources

from mlir import ir
from mlir.dialects import irdl

from eshkol.syntax.diagnostics import Loc

# The bindings look for a Python module `mlir.dialects.<namespace>` (with OpView classes)
# every time they wrap an op of a dialect, and a failed import is not remembered: without
# this stand-in, each eshkol op costs a search of sys.path (measured: 2.4 s → 1.0 s for a
# 600-form program).
sys.modules.setdefault("mlir.dialects.eshkol", types.ModuleType("mlir.dialects.eshkol"))

# Op names, for passes that match on them (they compare against these, never spell them).
CONST_INT = "eshkol.const_int"
CONST_FLOAT = "eshkol.const_float"
CONST_IMM = "eshkol.const_imm"
CONST_EXACT = "eshkol.const_exact"
CONST_STRING = "eshkol.const_string"
CONST_SYMBOL = "eshkol.const_symbol"
GLOBAL = "eshkol.global"
EXTERN_GLOBAL = "eshkol.extern_global"
GLOBAL_REF = "eshkol.global_ref"
GLOBAL_SET = "eshkol.global_set"
MAKE_CLOSURE = "eshkol.make_closure"
CLOSURE_REF = "eshkol.closure_ref"
CLOSURE_SET = "eshkol.closure_set"
BOX = "eshkol.box"
UNBOX = "eshkol.unbox"
SET_BOX = "eshkol.set_box"
CALL = "eshkol.call"
TAIL_CALL = "eshkol.tail_call"
PRIM = "eshkol.prim"
PRIM_REF = "eshkol.prim_ref"
TRUTHY = "eshkol.truthy"
IS_DEFAULT = "eshkol.is_default"
TENSOR_FUSED = "eshkol.tensor_fused"

# Function attributes on func.func ops that implement Eshkol procedures.
ATTR_NAME = "eshkol.name"      # the procedure's print name (string)
ATTR_NREQ = "eshkol.nreq"      # required parameters (i64)
ATTR_NOPT = "eshkol.nopt"      # optional parameters (i64)
ATTR_REST = "eshkol.rest"      # has a rest parameter (bool)
ATTR_ENTRY = "eshkol.entry"    # unit: the module's entry (start-up, then the top level)
ATTR_LIBRARY = "eshkol.library"  # string, on the module: compiled as this library
ATTR_TOPLEVEL = "eshkol.toplevel"  # unit: a chunk of top-level forms

IMM_KINDS = ("bool", "char", "nil", "void", "default")


def attr_str(op, name: str) -> str:
    """The string attribute ``name`` of ``op``."""
    return ir.StringAttr(op.attributes[name]).value


def owner_op(v: ir.Value):
    """The op defining ``v``, or None for a block argument."""
    o = v.owner
    return None if isinstance(o, ir.Block) else o


def make_context() -> ir.Context:
    """A context with the eshkol dialect (and the upstream dialects) loaded."""
    ctx = ir.Context()
    ctx.allow_unregistered_dialects = False
    text = resources.files("eshkol.dialect").joinpath("eshkol.irdl.mlir").read_text()
    with ctx, ir.Location.unknown():
        irdl.load_dialects(ir.Module.parse(text))
    return ctx


_VALUE_TYPES: dict[ir.Context, ir.Type] = {}


def value_type() -> ir.Type:
    """``!eshkol.value`` in the current context."""
    ctx = ir.Context.current
    t = _VALUE_TYPES.get(ctx)
    if t is None:
        t = _VALUE_TYPES[ctx] = ir.Type.parse("!eshkol.value")
    return t


def location(loc: Loc | None) -> ir.Location:
    """An MLIR file location for a source location."""
    if loc is None or loc.line < 1:
        return ir.Location.unknown()
    return ir.Location.file(loc.file, loc.line, loc.col)


def _op(name: str, loc: Loc | None, operands: list[ir.Value] = (), attrs: dict | None = None,
        result: bool = True, result_type: ir.Type | None = None) -> ir.Operation:
    results = [result_type or value_type()] if result else []
    return ir.Operation.create(name, results=results, operands=list(operands),
                               attributes=attrs or {}, loc=location(loc))


def _i64(n: int) -> ir.Attribute:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), n)


def _str(s: str) -> ir.Attribute:
    return ir.StringAttr.get(s)


def _sym(s: str) -> ir.Attribute:
    return ir.FlatSymbolRefAttr.get(s)


def const_int(n: int, loc: Loc | None = None) -> ir.Value:
    """A fixnum constant (``n`` must fit in 64 bits)."""
    return _op(CONST_INT, loc, attrs={"value": _i64(n)}).result


def const_float(x: float, loc: Loc | None = None) -> ir.Value:
    """A flonum constant."""
    return _op(CONST_FLOAT, loc, attrs={"value": ir.FloatAttr.get_f64(x)}).result


def const_imm(kind: str, value: int = 0, loc: Loc | None = None) -> ir.Value:
    """A boolean, character or special immediate (see IMM_KINDS)."""
    assert kind in IMM_KINDS, kind
    return _op(CONST_IMM, loc, attrs={"kind": _str(kind), "value": _i64(value)}).result


def const_exact(text: str, loc: Loc | None = None) -> ir.Value:
    """A bignum or exact rational, written "n" or "n/d"."""
    return _op(CONST_EXACT, loc, attrs={"value": _str(text)}).result


def const_string(s: str, loc: Loc | None = None) -> ir.Value:
    """A literal (immutable) string."""
    return _op(CONST_STRING, loc, attrs={"value": _str(s)}).result


def const_symbol(name: str, loc: Loc | None = None) -> ir.Value:
    """An interned symbol."""
    return _op(CONST_SYMBOL, loc, attrs={"value": _str(name)}).result


def global_decl(sym: str, loc: Loc | None = None) -> ir.Operation:
    """Declare the top-level variable ``sym`` (at module level)."""
    return _op(GLOBAL, loc, attrs={"sym_name": _str(sym)}, result=False)


def extern_global_decl(sym: str, library: str, index: int) -> ir.Operation:
    """Declare ``sym`` as slot ``index`` of separately compiled ``library`` (module level)."""
    return _op(EXTERN_GLOBAL, None, attrs={"sym_name": _str(sym), "library": _str(library),
                                           "index": _i64(index)}, result=False)


def global_ref(sym: str, loc: Loc | None = None) -> ir.Value:
    """Read a global; an error at run time if it is still undefined."""
    return _op(GLOBAL_REF, loc, attrs={"name": _sym(sym)}).result


def global_set(sym: str, value: ir.Value, define: bool, loc: Loc | None = None) -> ir.Operation:
    """``define`` (define=True) or ``set!`` of a global."""
    return _op(GLOBAL_SET, loc, [value], {"name": _sym(sym), "kind": _str("define" if define else "set")},
               result=False)


def make_closure(callee: str, captured: list[ir.Value], loc: Loc | None = None) -> ir.Value:
    """A closure of function ``callee`` capturing ``captured``."""
    return _op(MAKE_CLOSURE, loc, captured, {"callee": _sym(callee)}).result


def closure_ref(self_value: ir.Value, index: int, loc: Loc | None = None) -> ir.Value:
    """Captured value ``index`` of closure ``self_value``."""
    return _op(CLOSURE_REF, loc, [self_value], {"index": _i64(index)}).result


def closure_set(closure: ir.Value, index: int, value: ir.Value, loc: Loc | None = None) -> ir.Operation:
    """Store captured slot ``index`` (to tie letrec knots)."""
    return _op(CLOSURE_SET, loc, [closure, value], {"index": _i64(index)}, result=False)


def box(value: ir.Value, loc: Loc | None = None) -> ir.Value:
    """A fresh mutable box holding ``value``."""
    return _op(BOX, loc, [value]).result


def unbox(b: ir.Value, loc: Loc | None = None) -> ir.Value:
    """The contents of box ``b``."""
    return _op(UNBOX, loc, [b]).result


def set_box(b: ir.Value, value: ir.Value, loc: Loc | None = None) -> ir.Operation:
    """Store into box ``b``."""
    return _op(SET_BOX, loc, [b, value], result=False)


def call(fn: ir.Value, args: list[ir.Value], loc: Loc | None = None, tail: bool = False) -> ir.Value:
    """Call procedure ``fn``; a tail call must be followed by returning its result."""
    return _op(TAIL_CALL if tail else CALL, loc, [fn, *args]).result


def prim(name: str, args: list[ir.Value], loc: Loc | None = None) -> ir.Value:
    """Apply registry primitive ``name``."""
    return _op(PRIM, loc, args, {"name": _str(name)}).result


def prim_ref(name: str, loc: Loc | None = None) -> ir.Value:
    """Primitive ``name`` as a procedure value."""
    return _op(PRIM_REF, loc, attrs={"name": _str(name)}).result


def truthy(v: ir.Value, loc: Loc | None = None) -> ir.Value:
    """i1: whether ``v`` is anything but #f."""
    return _op(TRUTHY, loc, [v], result_type=ir.IntegerType.get_signless(1)).result


def is_default(v: ir.Value, loc: Loc | None = None) -> ir.Value:
    """i1: whether optional parameter value ``v`` was left out by the caller."""
    return _op(IS_DEFAULT, loc, [v], result_type=ir.IntegerType.get_signless(1)).result


def tensor_fused(expr: str, kinds: str, kernel: str, args: list[ir.Value],
                 loc: ir.Location) -> ir.Value:
    """A fused tensor chain (see eshkol.irdl.mlir) at the location of the chain's root;
    'default' when its guard declines."""
    return ir.Operation.create(TENSOR_FUSED, results=[value_type()], operands=list(args),
                               attributes={"expr": _str(expr), "kinds": _str(kinds),
                                           "kernel": _str(kernel)}, loc=loc).result


# ---- unboxed scalars (passes/specialize.py) ---------------------------------------------------
BOX_FIXNUM = "eshkol.box_fixnum"
BOX_FLONUM = "eshkol.box_flonum"
BOX_BOOL = "eshkol.box_bool"
UNBOX_FIXNUM = "eshkol.unbox_fixnum"
UNBOX_FLONUM = "eshkol.unbox_flonum"
HAS_TAG = "eshkol.has_tag"
FIXNUM_ARITH = "eshkol.fixnum_arith"

# Function attributes of specialized clones (called directly, with unboxed parameters).
ATTR_DIRECT = "eshkol.direct"    # unit: parameters are (self, args...) as typed; no argc/argv
ATTR_PARAM_TYPES = "eshkol.param_types"  # [string]: declared types of the required parameters


def box_scalar(v: ir.Value, loc: ir.Location) -> ir.Value:
    """``v`` (i64 fixnum, f64 flonum or i1 boolean) as a value."""
    name = {"i64": BOX_FIXNUM, "f64": BOX_FLONUM, "i1": BOX_BOOL}[str(v.type)]
    return ir.Operation.create(name, results=[value_type()], operands=[v], loc=loc).result


def unbox_scalar(v: ir.Value, ty: str, loc: ir.Location) -> ir.Value:
    """The payload of value ``v`` as ``ty`` ("i64" or "f64"); the caller checked the tag."""
    name, t = (UNBOX_FIXNUM, ir.IntegerType.get_signless(64)) if ty == "i64" else \
        (UNBOX_FLONUM, ir.F64Type.get())
    return ir.Operation.create(name, results=[t], operands=[v], loc=loc).result


def has_tag(v: ir.Value, tag: str, loc: ir.Location) -> ir.Value:
    """i1: whether ``v`` is a fixnum (``tag`` "fixnum"), a flonum ("flonum") or a tensor
    ("tensor"; not a run-time dual number or tape node over one)."""
    return ir.Operation.create(HAS_TAG, results=[ir.IntegerType.get_signless(1)], operands=[v],
                               attributes={"tag": _str(tag)}, loc=loc).result


def fixnum_arith(op: str, a: ir.Value, b: ir.Value, loc: ir.Location) -> tuple[ir.Value, ir.Value]:
    """(i64 result, i1 overflow) of fixnum ``op`` ("add", "sub", "mul")."""
    o = ir.Operation.create(FIXNUM_ARITH, results=[a.type, ir.IntegerType.get_signless(1)],
                            operands=[a, b], attributes={"op": _str(op)}, loc=loc)
    return o.results[0], o.results[1]
