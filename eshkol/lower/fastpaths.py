"""Inline fast paths for hot primitives, as LLVM-dialect functions the optimizer inlines.

The text uses ``!v`` for the value type (an alias the lowering defines). Each takes
``(loc, a, b)`` like the C primitive it shortcuts and falls back to that C function
(``esk_prim_<cname>``) whenever the operands are not the common case, so semantics (and
errors) live in one place: the runtime.
"""

from __future__ import annotations

from eshkol.lower.abi import PAIR_CAR, PAIR_CDR, T_BOOL, T_FIXNUM, T_FLONUM, T_NIL, T_PAIR, T_VECTOR, T_VOID

# esk_vector: header (type, flags), len, items.
VECTOR_FLAGS, VECTOR_LEN, VECTOR_ITEMS = 4, 8, 16

_HEAD = "llvm.func internal @esk_fast_{name}(%loc: !llvm.ptr, {params}) -> !v " \
        "attributes {{always_inline}} {{\n"

# Split the operands into tags and payloads (shared prologue of binary paths).
_SPLIT2 = """  %ta = llvm.extractvalue %a[0] : !v
  %pa = llvm.extractvalue %a[1] : !v
  %tb = llvm.extractvalue %b[0] : !v
  %pb = llvm.extractvalue %b[1] : !v
"""

_SLOW2 = """^slow:
  %r = llvm.call @esk_prim_{cname}(%loc, %ta, %pa, %tb, %pb) : (!llvm.ptr, i64, i64, i64, i64) -> !v
  llvm.return %r : !v
}}
"""


def _both(tag: int, label_yes: str, label_no: str) -> str:
    return f"""  %want{tag} = llvm.mlir.constant({tag} : i64) : i64
  %a{tag} = llvm.icmp "eq" %ta, %want{tag} : i64
  %b{tag} = llvm.icmp "eq" %tb, %want{tag} : i64
  %both{tag} = llvm.and %a{tag}, %b{tag} : i1
  llvm.cond_br %both{tag}, ^{label_yes}, ^{label_no}
"""


def _arith(name: str, cname: str, intr: str, fop: str) -> str:
    return (_HEAD.format(name=name, params="%a: !v, %b: !v") + _SPLIT2 + _both(T_FIXNUM, "fix", "notfix")
            + f"""^fix:
  %o = "llvm.intr.{intr}.with.overflow"(%pa, %pb) : (i64, i64) -> !llvm.struct<(i64, i1)>
  %s = llvm.extractvalue %o[0] : !llvm.struct<(i64, i1)>
  %ov = llvm.extractvalue %o[1] : !llvm.struct<(i64, i1)>
  llvm.cond_br %ov, ^slow, ^fixok
^fixok:
  %u = llvm.mlir.undef : !v
  %tf = llvm.mlir.constant({T_FIXNUM} : i64) : i64
  %r1 = llvm.insertvalue %tf, %u[0] : !v
  %r2 = llvm.insertvalue %s, %r1[1] : !v
  llvm.return %r2 : !v
^notfix:
""" + _both(T_FLONUM, "flo", "slow") + f"""^flo:
  %fa = llvm.bitcast %pa : i64 to f64
  %fb = llvm.bitcast %pb : i64 to f64
  %fr = llvm.{fop} %fa, %fb : f64
  %fi = llvm.bitcast %fr : f64 to i64
  %u2 = llvm.mlir.undef : !v
  %tl = llvm.mlir.constant({T_FLONUM} : i64) : i64
  %q1 = llvm.insertvalue %tl, %u2[0] : !v
  %q2 = llvm.insertvalue %fi, %q1[1] : !v
  llvm.return %q2 : !v
""" + _SLOW2.format(cname=cname))


def _bool_result(pred_name: str) -> str:
    return f"""  %z = llvm.zext {pred_name} : i1 to i64
  %u = llvm.mlir.undef : !v
  %tb0 = llvm.mlir.constant({T_BOOL} : i64) : i64
  %r1 = llvm.insertvalue %tb0, %u[0] : !v
  %r2 = llvm.insertvalue %z, %r1[1] : !v
  llvm.return %r2 : !v
"""


def _compare(name: str, cname: str, ipred: str, fpred: str) -> str:
    return (_HEAD.format(name=name, params="%a: !v, %b: !v") + _SPLIT2 + _both(T_FIXNUM, "fix", "notfix")
            + f"""^fix:
  %c = llvm.icmp "{ipred}" %pa, %pb : i64
  llvm.br ^done(%c : i1)
^notfix:
""" + _both(T_FLONUM, "flo", "slow") + f"""^flo:
  %fa = llvm.bitcast %pa : i64 to f64
  %fb = llvm.bitcast %pb : i64 to f64
  %fc = llvm.fcmp "{fpred}" %fa, %fb : f64
  llvm.br ^done(%fc : i1)
^done(%res: i1):
""" + _bool_result("%res") + _SLOW2.format(cname=cname))


def _field(name: str, cname: str, offset: int) -> str:
    return _HEAD.format(name=name, params="%a: !v") + f"""  %ta = llvm.extractvalue %a[0] : !v
  %pa = llvm.extractvalue %a[1] : !v
  %tp = llvm.mlir.constant({T_PAIR} : i64) : i64
  %ok = llvm.icmp "eq" %ta, %tp : i64
  llvm.cond_br %ok, ^fast, ^slow
^fast:
  %p = llvm.inttoptr %pa : i64 to !llvm.ptr
  %f = llvm.getelementptr %p[{offset}] : (!llvm.ptr) -> !llvm.ptr, i8
  %v = llvm.load %f : !llvm.ptr -> !v
  llvm.return %v : !v
^slow:
  %r = llvm.call @esk_prim_{cname}(%loc, %ta, %pa) : (!llvm.ptr, i64, i64) -> !v
  llvm.return %r : !v
}}
"""


def _eq() -> str:
    return _HEAD.format(name="eq", params="%a: !v, %b: !v") + _SPLIT2 + """  %t = llvm.icmp "eq" %ta, %tb : i64
  %p = llvm.icmp "eq" %pa, %pb : i64
  %c = llvm.and %t, %p : i1
""" + _bool_result("%c") + "}\n"


def _not() -> str:
    return _HEAD.format(name="not", params="%a: !v") + f"""  %ta = llvm.extractvalue %a[0] : !v
  %pa = llvm.extractvalue %a[1] : !v
  %tb = llvm.mlir.constant({T_BOOL} : i64) : i64
  %zero = llvm.mlir.constant(0 : i64) : i64
  %isb = llvm.icmp "eq" %ta, %tb : i64
  %isz = llvm.icmp "eq" %pa, %zero : i64
  %c = llvm.and %isb, %isz : i1
""" + _bool_result("%c") + "}\n"


def _tag_is(name: str, tag: int) -> str:
    """A type predicate that only looks at the tag (never an error, no runtime call)."""
    return _HEAD.format(name=name, params="%a: !v") + f"""  %ta = llvm.extractvalue %a[0] : !v
  %want = llvm.mlir.constant({tag} : i64) : i64
  %c = llvm.icmp "eq" %ta, %want : i64
""" + _bool_result("%c") + "}\n"


def _vector_check(label_ok: str) -> str:
    """Branch to ``label_ok`` when %a is a vector and %b a fixnum index in its bounds."""
    return f"""  %tv = llvm.mlir.constant({T_VECTOR} : i64) : i64
  %isv = llvm.icmp "eq" %ta, %tv : i64
  %tf = llvm.mlir.constant({T_FIXNUM} : i64) : i64
  %isf = llvm.icmp "eq" %tb, %tf : i64
  %both = llvm.and %isv, %isf : i1
  llvm.cond_br %both, ^bounds, ^slow
^bounds:
  %p = llvm.inttoptr %pa : i64 to !llvm.ptr
  %lenp = llvm.getelementptr %p[{VECTOR_LEN}] : (!llvm.ptr) -> !llvm.ptr, i8
  %len = llvm.load %lenp : !llvm.ptr -> i64
  %inb = llvm.icmp "ult" %pb, %len : i64
  llvm.cond_br %inb, ^{label_ok}, ^slow
"""


def _vector_ref() -> str:
    return (_HEAD.format(name="vector_ref", params="%a: !v, %b: !v") + _SPLIT2 + _vector_check("fast")
            + f"""^fast:
  %itp = llvm.getelementptr %p[{VECTOR_ITEMS}] : (!llvm.ptr) -> !llvm.ptr, i8
  %items = llvm.load %itp : !llvm.ptr -> !llvm.ptr
  %e = llvm.getelementptr %items[%pb] : (!llvm.ptr, i64) -> !llvm.ptr, !v
  %v = llvm.load %e : !llvm.ptr -> !v
  llvm.return %v : !v
""" + _SLOW2.format(cname="vector_ref"))


def _vector_set() -> str:
    # The C primitive takes (loc, argc, argv): the slow path builds the argument array.
    return (_HEAD.format(name="vector_set", params="%a: !v, %b: !v, %c: !v") + _SPLIT2
            + _vector_check("mutable") + f"""^mutable:
  %flp = llvm.getelementptr %p[{VECTOR_FLAGS}] : (!llvm.ptr) -> !llvm.ptr, i8
  %fl = llvm.load %flp : !llvm.ptr -> i32
  %one = llvm.mlir.constant(1 : i32) : i32
  %imm = llvm.and %fl, %one : i32
  %zero = llvm.mlir.constant(0 : i32) : i32
  %ok = llvm.icmp "eq" %imm, %zero : i32
  llvm.cond_br %ok, ^fast, ^slow
^fast:
  %itp = llvm.getelementptr %p[{VECTOR_ITEMS}] : (!llvm.ptr) -> !llvm.ptr, i8
  %items = llvm.load %itp : !llvm.ptr -> !llvm.ptr
  %e = llvm.getelementptr %items[%pb] : (!llvm.ptr, i64) -> !llvm.ptr, !v
  llvm.store %c, %e : !v, !llvm.ptr
  %void = llvm.mlir.constant([{T_VOID}, 0]) : !v
  llvm.return %void : !v
^slow:
  %n = llvm.mlir.constant(3 : i64) : i64
  %argv = llvm.alloca %n x !v : (i64) -> !llvm.ptr
  llvm.store %a, %argv : !v, !llvm.ptr
  %a1 = llvm.getelementptr %argv[1] : (!llvm.ptr) -> !llvm.ptr, !v
  llvm.store %b, %a1 : !v, !llvm.ptr
  %a2 = llvm.getelementptr %argv[2] : (!llvm.ptr) -> !llvm.ptr, !v
  llvm.store %c, %a2 : !v, !llvm.ptr
  %r = llvm.call @esk_prim_vector_set(%loc, %n, %argv) : (!llvm.ptr, i64, !llvm.ptr) -> !v
  llvm.return %r : !v
}}
""")


def _div_flonum() -> str:
    """Flonum / flonum inline; everything else (exact quotients, errors) in the runtime."""
    return (_HEAD.format(name="div2", params="%a: !v, %b: !v") + _SPLIT2 + _both(T_FLONUM, "flo", "slow")
            + f"""^flo:
  %fa = llvm.bitcast %pa : i64 to f64
  %fb = llvm.bitcast %pb : i64 to f64
  %fr = llvm.fdiv %fa, %fb : f64
  %fi = llvm.bitcast %fr : f64 to i64
  %u = llvm.mlir.undef : !v
  %tl = llvm.mlir.constant({T_FLONUM} : i64) : i64
  %q1 = llvm.insertvalue %tl, %u[0] : !v
  %q2 = llvm.insertvalue %fi, %q1[1] : !v
  llvm.return %q2 : !v
""" + _SLOW2.format(cname="div2"))


def _cons() -> str:
    """Pop a pair from the runtime's batch of free pairs (esk_pair_batch, value.c); the C
    function refills an empty batch from the collector."""
    return """llvm.mlir.global external @esk_pair_batch() {addr_space = 0 : i32} : !llvm.ptr
""" + _HEAD.format(name="cons", params="%a: !v, %b: !v") + f"""  %bp = llvm.mlir.addressof @esk_pair_batch : !llvm.ptr
  %q = llvm.load %bp : !llvm.ptr -> !llvm.ptr
  %z = llvm.mlir.zero : !llvm.ptr
  %empty = llvm.icmp "eq" %q, %z : !llvm.ptr
  llvm.cond_br %empty, ^slow, ^fast
^fast:
  %next = llvm.load %q : !llvm.ptr -> !llvm.ptr
  llvm.store %next, %bp : !llvm.ptr, !llvm.ptr
  %carp = llvm.getelementptr %q[{PAIR_CAR}] : (!llvm.ptr) -> !llvm.ptr, i8
  llvm.store %a, %carp : !v, !llvm.ptr
  %cdrp = llvm.getelementptr %q[{PAIR_CDR}] : (!llvm.ptr) -> !llvm.ptr, i8
  llvm.store %b, %cdrp : !v, !llvm.ptr
  %pi = llvm.ptrtoint %q : !llvm.ptr to i64
  %u = llvm.mlir.undef : !v
  %tp = llvm.mlir.constant({T_PAIR} : i64) : i64
  %r1 = llvm.insertvalue %tp, %u[0] : !v
  %r2 = llvm.insertvalue %pi, %r1[1] : !v
  llvm.return %r2 : !v
^slow:
""" + _SPLIT2 + _SLOW2.format(cname="cons").replace("^slow:\n", "")


FAST_PATHS: dict[str, str] = {
    "add2": _arith("add2", "add2", "sadd", "fadd"),
    "sub2": _arith("sub2", "sub2", "ssub", "fsub"),
    "mul2": _arith("mul2", "mul2", "smul", "fmul"),
    "num_eq2": _compare("num_eq2", "num_eq2", "eq", "oeq"),
    "num_lt2": _compare("num_lt2", "num_lt2", "slt", "olt"),
    "num_gt2": _compare("num_gt2", "num_gt2", "sgt", "ogt"),
    "num_le2": _compare("num_le2", "num_le2", "sle", "ole"),
    "num_ge2": _compare("num_ge2", "num_ge2", "sge", "oge"),
    "car": _field("car", "car", PAIR_CAR),
    "cdr": _field("cdr", "cdr", PAIR_CDR),
    "eq": _eq(),
    "not": _not(),
    "vector_ref": _vector_ref(),
    "vector_set": _vector_set(),
    "div2": _div_flonum(),
    "cons": _cons(),
    "is_null": _tag_is("is_null", T_NIL),
    "is_pair": _tag_is("is_pair", T_PAIR),
}
