"""Typed versions of numeric primitives, for the specializer (passes/specialize.py).

Types are strings: ``"i64"`` (a fixnum, unboxed), ``"f64"`` (a flonum), ``"i1"`` (a boolean),
``"value"`` (anything, boxed) and ``"bot"`` (no value reaches here yet). A rule says, for a
primitive and the types of its operands, the type of the result and how to compute it with
upstream ``arith``/``math`` ops; whenever the unboxed computation cannot give the generic
result (a fixnum overflow that needs a bignum, a square root of a negative number that is an
error) the rule calls ``e.guard(ok)``, and the specialized code leaves for the generic version
when ``ok`` is false. Every rule computes exactly what runtime_c/numbers.c computes for those
operand types (the exact-zero rules of mixed arithmetic included), so specializing never
changes what a program prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mlir import ir
from mlir.dialects import arith, math

from eshkol.dialect import ops

BOT, I64, F64, B1, VAL = "bot", "i64", "f64", "i1", "value"
NUMERIC = (I64, F64)


def join(a: str, b: str) -> str:
    """Least upper bound: two different known types meet at ``value``."""
    if a == BOT:
        return b
    if b == BOT or a == b:
        return a
    return VAL


class Emitter(Protocol):
    """What a rule needs from the rewriter: the insertion point is already set."""

    loc: ir.Location

    def guard(self, ok: ir.Value) -> None:
        """Require ``ok`` (i1): the specialized code leaves for the generic code unless it
        holds. Checked after the rule's ops, so those must be safe to run either way."""


Emit = Callable[[Emitter, list[ir.Value]], ir.Value]


@dataclass(frozen=True)
class Rule:
    """The typed form of one primitive at one tuple of operand types."""

    result: str
    emit: Emit
    guarded: bool = False   # may leave for the generic code (calls Emitter.guard)


def _i64() -> ir.Type:
    return ir.IntegerType.get_signless(64)


def _f64c(x: float) -> ir.Value:
    return arith.ConstantOp(ir.F64Type.get(), x).result


def _i64c(n: int) -> ir.Value:
    return arith.ConstantOp(_i64(), n).result


def _i1c(b: bool) -> ir.Value:
    return arith.ConstantOp(ir.IntegerType.get_signless(1), int(b)).result


def _tof(x: ir.Value) -> ir.Value:
    return arith.SIToFPOp(ir.F64Type.get(), x).result


def _fix(op: str) -> Emit:
    def emit(e: Emitter, a: list[ir.Value]) -> ir.Value:
        r, ov = ops.fixnum_arith(op, a[0], a[1], e.loc)
        e.guard(arith.XOrIOp(ov, _i1c(True)).result)
        return r
    return emit


_FLOAT_OPS = {"%add2": arith.AddFOp, "%sub2": arith.SubFOp, "%mul2": arith.MulFOp, "%div2": arith.DivFOp}


def _float(name: str) -> Emit:
    return lambda e, a: _FLOAT_OPS[name](a[0], a[1]).result


def _is_zero(x: ir.Value) -> ir.Value:
    return arith.CmpIOp(arith.CmpIPredicate.eq, x, _i64c(0)).result


def _mixed(name: str, int_first: bool) -> Emit:
    """+ and - of a fixnum and a flonum: an exact 0 is a true identity (numbers.c)."""
    def emit(e: Emitter, a: list[ir.Value]) -> ir.Value:
        i, f = (a[0], a[1]) if int_first else (a[1], a[0])
        fi = _tof(i)
        if name == "%add2":
            general = arith.AddFOp(fi, f).result if int_first else arith.AddFOp(f, fi).result
            at_zero = f
        elif int_first:  # (- i f): (- 0 f) is -f
            general = arith.SubFOp(fi, f).result
            at_zero = arith.NegFOp(f).result
        else:            # (- f i): (- f 0) is f
            general = arith.SubFOp(f, fi).result
            at_zero = f
        return arith.SelectOp(_is_zero(i), at_zero, general).result
    return emit


def _mixed_div(int_first: bool) -> Emit:
    def emit(e: Emitter, a: list[ir.Value]) -> ir.Value:
        x, y = (_tof(a[0]), a[1]) if int_first else (a[0], _tof(a[1]))
        return arith.DivFOp(x, y).result
    return emit


_ICMP = {"%num=2": arith.CmpIPredicate.eq, "%num<2": arith.CmpIPredicate.slt,
         "%num>2": arith.CmpIPredicate.sgt, "%num<=2": arith.CmpIPredicate.sle,
         "%num>=2": arith.CmpIPredicate.sge, "eq?": arith.CmpIPredicate.eq}
# Ordered predicates: a NaN compares false with everything, as in the runtime.
_FCMP = {"%num=2": arith.CmpFPredicate.OEQ, "%num<2": arith.CmpFPredicate.OLT,
         "%num>2": arith.CmpFPredicate.OGT, "%num<=2": arith.CmpFPredicate.OLE,
         "%num>=2": arith.CmpFPredicate.OGE}


def _int_div(name: str) -> Emit:
    """quotient/remainder/modulo of fixnums: a zero divisor (an error) and INT64_MIN / -1
    (a bignum, and a machine trap) leave for the generic code."""
    def emit(e: Emitter, a: list[ir.Value]) -> ir.Value:
        x, y = a
        nonzero = arith.CmpIOp(arith.CmpIPredicate.ne, y, _i64c(0)).result
        not_min = arith.CmpIOp(arith.CmpIPredicate.ne, x, _i64c(-(1 << 63))).result
        not_m1 = arith.CmpIOp(arith.CmpIPredicate.ne, y, _i64c(-1)).result
        ok = arith.AndIOp(nonzero, arith.OrIOp(not_min, not_m1).result).result
        e.guard(ok)
        y = arith.SelectOp(ok, y, _i64c(1)).result  # the division must not trap before the check
        if name == "quotient":
            return arith.DivSIOp(x, y).result
        r = arith.RemSIOp(x, y).result
        if name == "remainder":
            return r
        # modulo takes the divisor's sign: add y when r is nonzero and the signs differ.
        differ = arith.CmpIOp(arith.CmpIPredicate.slt, arith.XOrIOp(r, y).result, _i64c(0)).result
        r_nz = arith.CmpIOp(arith.CmpIPredicate.ne, r, _i64c(0)).result
        adjust = arith.AndIOp(differ, r_nz).result
        return arith.SelectOp(adjust, arith.AddIOp(r, y).result, r).result
    return emit


def _neg_int(e: Emitter, a: list[ir.Value]) -> ir.Value:
    return _fix("sub")(e, [_i64c(0), a[0]])


def _abs_int(e: Emitter, a: list[ir.Value]) -> ir.Value:
    x = a[0]
    neg = arith.CmpIOp(arith.CmpIPredicate.slt, x, _i64c(0)).result
    e.guard(arith.CmpIOp(arith.CmpIPredicate.ne, x, _i64c(-(1 << 63))).result)
    return arith.SelectOp(neg, arith.SubIOp(_i64c(0), x).result, x).result


def _not_negative(math_op) -> Emit:
    """sqrt and log of a negative flonum are errors (complex results): guard, then compute."""
    def emit(e: Emitter, a: list[ir.Value]) -> ir.Value:
        e.guard(arith.CmpFOp(arith.CmpFPredicate.UGE, a[0], _f64c(0.0)).result)
        return math_op(a[0]).result
    return emit


_FLOAT_UNARY = {"sin": math.SinOp, "cos": math.CosOp, "tan": math.TanOp, "exp": math.ExpOp,
                "atan": math.AtanOp, "floor": math.FloorOp, "ceiling": math.CeilOp,
                "round": math.RoundEvenOp, "truncate": math.TruncOp}


def _select_int(pred) -> Emit:
    def emit(e: Emitter, a: list[ir.Value]) -> ir.Value:
        c = arith.CmpIOp(pred, a[0], a[1]).result
        return arith.SelectOp(c, a[0], a[1]).result
    return emit


def rule_for(name: str, types: tuple[str, ...]) -> Rule | None:
    """The typed rule of primitive ``name`` at operand ``types``, or None (generic code)."""
    if name in ("%add2", "%sub2", "%mul2"):
        if types == (I64, I64):
            return Rule(I64, _fix({"%add2": "add", "%sub2": "sub", "%mul2": "mul"}[name]), True)
        if types == (F64, F64):
            return Rule(F64, _float(name))
        # (* 0 1.5) is the exact 0, so a mixed product is not always a flonum.
        if name != "%mul2" and types in ((I64, F64), (F64, I64)):
            return Rule(F64, _mixed(name, types[0] == I64))
        return None
    if name == "%div2":
        if types == (F64, F64):
            return Rule(F64, _float(name))
        if types in ((I64, F64), (F64, I64)):
            return Rule(F64, _mixed_div(types[0] == I64))
        return None
    if name in _FCMP or name == "eq?":
        if types == (I64, I64):
            pred = _ICMP[name]
            return Rule(B1, lambda e, a: arith.CmpIOp(pred, a[0], a[1]).result)
        if types == (F64, F64) and name in _FCMP:
            fpred = _FCMP[name]
            return Rule(B1, lambda e, a: arith.CmpFOp(fpred, a[0], a[1]).result)
        return None
    if name in ("quotient", "remainder", "modulo") and types == (I64, I64):
        return Rule(I64, _int_div(name), True)
    if name in ("%min2", "%max2") and types == (I64, I64):
        return Rule(I64, _select_int(arith.CmpIPredicate.slt if name == "%min2" else arith.CmpIPredicate.sgt))
    if len(types) != 1:
        return None
    (t,) = types
    if name in ("exact->inexact", "inexact"):
        if t == I64:
            return Rule(F64, lambda e, a: _tof(a[0]))
        if t == F64:
            return Rule(F64, lambda e, a: a[0])
    if t == I64:
        if name == "%neg":
            return Rule(I64, _neg_int, True)
        if name == "abs":
            return Rule(I64, _abs_int, True)
        if name == "square":
            return Rule(I64, lambda e, a: _fix("mul")(e, [a[0], a[0]]), True)
        if name in ("floor", "ceiling", "round", "truncate"):
            return Rule(I64, lambda e, a: a[0])
        if name in ("zero?", "positive?", "negative?"):
            pred = {"zero?": arith.CmpIPredicate.eq, "positive?": arith.CmpIPredicate.sgt,
                    "negative?": arith.CmpIPredicate.slt}[name]
            return Rule(B1, lambda e, a: arith.CmpIOp(pred, a[0], _i64c(0)).result)
        if name in ("even?", "odd?"):
            want = 0 if name == "even?" else 1
            return Rule(B1, lambda e, a: arith.CmpIOp(
                arith.CmpIPredicate.eq, arith.AndIOp(a[0], _i64c(1)).result, _i64c(want)).result)
    if t == F64:
        if name == "%neg":
            return Rule(F64, lambda e, a: arith.NegFOp(a[0]).result)
        if name == "abs":
            return Rule(F64, lambda e, a: math.AbsFOp(a[0]).result)
        if name == "square":
            return Rule(F64, lambda e, a: arith.MulFOp(a[0], a[0]).result)
        if name == "zero?":
            return Rule(B1, lambda e, a: arith.CmpFOp(arith.CmpFPredicate.OEQ, a[0], _f64c(0.0)).result)
        if name == "sqrt":
            return Rule(F64, _not_negative(math.SqrtOp), True)
        if name == "log":
            return Rule(F64, _not_negative(math.LogOp), True)
        if name in _FLOAT_UNARY:
            op = _FLOAT_UNARY[name]
            return Rule(F64, lambda e, a: op(a[0]).result)
    if name == "not":
        if t == B1:
            return Rule(B1, lambda e, a: arith.XOrIOp(a[0], _i1c(True)).result)
        if t in NUMERIC:
            return Rule(B1, lambda e, a: _i1c(False))
    return None


# Binary numeric primitives whose untyped operand is worth speculating to the type of the
# other (typed) operand: (< i n) with i a fixnum suggests n is one too.
HINTING = {"%add2", "%sub2", "%mul2", "%div2", "%num=2", "%num<2", "%num>2", "%num<=2",
           "%num>=2", "quotient", "remainder", "modulo", "%min2", "%max2"}

# Primitives with no effect but their result (and possibly an error): specialized code may
# run them again when it leaves for the generic version part-way through a block.
PURE_PRIMS = HINTING | {
    "+", "-", "*", "/", "=", "<", ">", "<=", ">=", "min", "max", "gcd", "lcm", "%gcd2", "%lcm2",
    "%neg", "%recip", "expt", "atan", "abs", "exact->inexact", "inexact", "inexact->exact", "exact",
    "floor", "ceiling", "round", "truncate", "sqrt", "exp", "log", "sin", "cos", "tan", "sinh",
    "cosh", "tanh", "asin", "acos", "square", "number?", "integer?", "exact?", "inexact?",
    "zero?", "positive?", "negative?", "odd?", "even?", "real?", "rational?", "exact-integer?",
    "nan?", "infinite?", "finite?", "numerator", "denominator", "number->string",
    "cons", "car", "cdr", "cadr", "cddr", "caar", "cdar", "caddr", "cdddr", "list", "append",
    "length", "reverse", "null?", "pair?", "list?", "list-ref", "list-tail", "memq", "memv",
    "member", "assq", "assv", "assoc", "eq?", "eqv?", "equal?", "not", "symbol?", "string?",
    "char?", "boolean?", "procedure?", "vector?", "string-length", "string-ref", "vector",
    "vector-ref", "vector-length", "char->integer", "integer->char",
}
