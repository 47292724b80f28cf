"""JVP and VJP rules of the scalar primitives, registered in the primitive registry.

``@rule("jvp", name)``: ``jvp(b, p, r, d) -> tangent | None`` with ``p`` the primal operands,
``r`` the primal result, ``d`` the operands' tangents (None: statically zero).
``@rule("vjp", name)``: ``vjp(b, p, r, g, need) -> [cotangent | None per operand]`` with ``g``
the result's cotangent and ``need[i]`` whether operand ``i`` wants one.

Rules build generic ``eshkol.prim`` ops through the builder ``b`` (passes/autodiff_jvp.py), so
the transformed code computes exactly what the runtime rules compute (runtime_c/ad_rules.c,
whose formulas these mirror): exactness, tensors and run-time dual numbers flowing in from an
enclosing runtime derivative all behave as in the runtime; the specializer then unboxes the
flonum code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mlir import ir

from eshkol.dialect.primitives import PRIMITIVES, rule


class Builder(Protocol):
    """What a rule needs: emit a primitive, a constant, a two-way choice."""

    def prim(self, name: str, *args: ir.Value) -> ir.Value: ...
    def int(self, n: int) -> ir.Value: ...
    def float(self, x: float) -> ir.Value: ...
    def select(self, cond: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value: ...
    def is_scalar(self, v: ir.Value) -> bool: ...
    def helper(self, name: str, *args: ir.Value) -> ir.Value: ...


# ---- helpers ----------------------------------------------------------------------------------

def _mul(b: Builder, x: ir.Value | None, y: ir.Value) -> ir.Value | None:
    return None if x is None else b.prim("%mul2", x, y)


def _add(b: Builder, x: ir.Value | None, y: ir.Value | None) -> ir.Value | None:
    if x is None:
        return y
    if y is None:
        return x
    return b.prim("%add2", x, y)


def _zero_or(b: Builder, x: ir.Value | None) -> ir.Value:
    return b.float(0.0) if x is None else x


def fit(b: Builder, c: ir.Value | None, like: ir.Value, p: list) -> ir.Value | None:
    """Cotangent ``c`` of an operand ``like`` of a broadcasting operation on ``p``: summed
    down to ``like``'s shape, unless every operand is statically a number."""
    if c is None or all(b.is_scalar(v) for v in p) or (b.is_scalar(c) and b.is_scalar(like)):
        return c
    return b.helper("unbroadcast", c, like)


# ---- unary: x * f'(p), the same product for tangents (x = d) and cotangents (x = g) -----------

TimesDeriv = Callable[[Builder, ir.Value, ir.Value, ir.Value], ir.Value]


UNARY_TIMES: dict[str, TimesDeriv] = {}   # primitive -> its x * f'(p), for tensor twins


def unary(name: str, times_deriv: TimesDeriv) -> None:
    """Register the JVP and VJP of a one-operand primitive from x * f'(p)."""
    UNARY_TIMES[name] = times_deriv
    @rule("jvp", name)
    def jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
        return None if d[0] is None else times_deriv(b, d[0], p[0], r)

    @rule("vjp", name)
    def vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
        return [times_deriv(b, g, p[0], r)]


def _one_minus_sq_sqrt(b: Builder, p: ir.Value) -> ir.Value:
    return b.prim("sqrt", b.prim("%sub2", b.int(1), b.prim("square", p)))


def _abs_times(b: Builder, x: ir.Value, p: ir.Value, r: ir.Value) -> ir.Value:
    # x * sign(p): the derivative 0 at 0, as the runtime's sign rule.
    if not b.is_scalar(p):  # maybe a tensor: elementwise sign
        return b.prim("%mul2", x, b.helper("sign", p))
    neg = b.select(b.prim("negative?", p), b.prim("%neg", x), b.prim("%mul2", x, b.float(0.0)))
    return b.select(b.prim("positive?", p), x, neg)


unary("%neg", lambda b, x, p, r: b.prim("%neg", x))
unary("%recip", lambda b, x, p, r: b.prim("%neg", b.prim("%mul2", x, b.prim("%mul2", r, r))))
unary("exp", lambda b, x, p, r: b.prim("%mul2", x, r))
unary("sin", lambda b, x, p, r: b.prim("%mul2", x, b.prim("cos", p)))
unary("cos", lambda b, x, p, r: b.prim("%neg", b.prim("%mul2", x, b.prim("sin", p))))
unary("tan", lambda b, x, p, r: b.prim("%mul2", x, b.prim("%add2", b.int(1), b.prim("square", r))))
unary("sqrt", lambda b, x, p, r: b.prim("%div2", x, b.prim("%mul2", b.int(2), r)))
unary("abs", _abs_times)
unary("asin", lambda b, x, p, r: b.prim("%div2", x, _one_minus_sq_sqrt(b, p)))
unary("acos", lambda b, x, p, r: b.prim("%neg", b.prim("%div2", x, _one_minus_sq_sqrt(b, p))))
unary("sinh", lambda b, x, p, r: b.prim("%mul2", x, b.prim("cosh", p)))
unary("cosh", lambda b, x, p, r: b.prim("%mul2", x, b.prim("sinh", p)))
unary("tanh", lambda b, x, p, r: b.prim("%mul2", x, b.prim("%sub2", b.int(1), b.prim("square", r))))
unary("square", lambda b, x, p, r: b.prim("%mul2", x, b.prim("%mul2", b.int(2), p)))
for _n in ("exact->inexact", "inexact"):
    unary(_n, lambda b, x, p, r: b.prim("exact->inexact", x))


# ---- log and atan: one operand, or two ----------------------------------------------------------

@rule("jvp", "log")
def _log_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    return None if d[0] is None else b.prim("%div2", d[0], p[0])


@rule("vjp", "log")
def _log_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [b.prim("%div2", g, p[0])]


def _atan2_den(b: Builder, p: list) -> ir.Value:
    return b.prim("%add2", b.prim("square", p[0]), b.prim("square", p[1]))


@rule("jvp", "atan")
def _atan_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    if len(p) == 1:
        if d[0] is None:
            return None
        return b.prim("%div2", d[0], b.prim("%add2", b.int(1), b.prim("square", p[0])))
    # atan(y, x): (x dy - y dx) / (x^2 + y^2)
    num = _mul(b, d[0], p[1])
    if d[1] is not None:
        t = b.prim("%mul2", p[0], d[1])
        num = b.prim("%neg", t) if num is None else b.prim("%sub2", num, t)
    return None if num is None else b.prim("%div2", num, _atan2_den(b, p))


@rule("vjp", "atan")
def _atan_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    if len(p) == 1:
        return [b.prim("%div2", g, b.prim("%add2", b.int(1), b.prim("square", p[0])))]
    gd = b.prim("%div2", g, _atan2_den(b, p))
    return [fit(b, b.prim("%mul2", gd, p[1]), p[0], p) if need[0] else None,
            fit(b, b.prim("%neg", b.prim("%mul2", gd, p[0])), p[1], p) if need[1] else None]


# ---- binary arithmetic --------------------------------------------------------------------------

@rule("jvp", "%add2")
def _add_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    return _add(b, d[0], d[1])


@rule("vjp", "%add2")
def _add_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [fit(b, g, p[0], p) if need[0] else None, fit(b, g, p[1], p) if need[1] else None]


@rule("jvp", "%sub2")
def _sub_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    if d[1] is None:
        return d[0]
    if d[0] is None:
        return b.prim("%neg", d[1])
    return b.prim("%sub2", d[0], d[1])


@rule("vjp", "%sub2")
def _sub_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [fit(b, g, p[0], p) if need[0] else None,
            fit(b, b.prim("%neg", g), p[1], p) if need[1] else None]


@rule("jvp", "%mul2")
def mul_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    # d(ab) = da b + a db
    right = None if d[1] is None else b.prim("%mul2", p[0], d[1])
    return _add(b, _mul(b, d[0], p[1]), right)


@rule("vjp", "%mul2")
def _mul_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [fit(b, b.prim("%mul2", g, p[1]), p[0], p) if need[0] else None,
            fit(b, b.prim("%mul2", p[0], g), p[1], p) if need[1] else None]


@rule("jvp", "%div2")
def div_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    # d(a/b) = (da - r db) / b
    if d[1] is None:
        return b.prim("%div2", d[0], p[1])
    rdb = b.prim("%mul2", r, d[1])
    num = b.prim("%neg", rdb) if d[0] is None else b.prim("%sub2", d[0], rdb)
    return b.prim("%div2", num, p[1])


@rule("vjp", "%div2")
def _div_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    gb = b.prim("%div2", g, p[1])
    return [fit(b, gb, p[0], p) if need[0] else None,
            fit(b, b.prim("%neg", b.prim("%mul2", gb, r)), p[1], p) if need[1] else None]


def _expt_da(b: Builder, p: list) -> ir.Value:
    # b a^(b-1): exact for an exact exponent, as the runtime's rule
    return b.prim("%mul2", p[1], b.prim("expt", p[0], b.prim("%sub2", p[1], b.int(1))))


@rule("jvp", "expt")
def expt_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    t = None if d[0] is None else b.prim("%mul2", d[0], _expt_da(b, p))
    if d[1] is not None:
        t = _add(b, t, b.prim("%mul2", d[1], b.prim("%mul2", r, b.prim("log", p[0]))))
    return t


@rule("vjp", "expt")
def expt_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [fit(b, b.prim("%mul2", g, _expt_da(b, p)), p[0], p) if need[0] else None,
            fit(b, b.prim("%mul2", g, b.prim("%mul2", r, b.prim("log", p[0]))), p[1], p) if need[1] else None]


def _minmax(first_test: str) -> None:
    """min/max take the derivative of the chosen operand, the first on ties (ad_rules.c)."""
    name = "%min2" if first_test == "%num<=2" else "%max2"

    @rule("jvp", name)
    def jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
        if d[0] is None and d[1] is None:
            return None
        return b.select(b.prim(first_test, p[0], p[1]), _zero_or(b, d[0]), _zero_or(b, d[1]))

    @rule("vjp", name)
    def vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
        if not all(b.is_scalar(v) for v in p):
            return pick_vjp(b, p, g, need, name == "%max2")
        first = b.prim(first_test, p[0], p[1])
        zero = b.float(0.0)
        return [b.select(first, g, zero) if need[0] else None,
                b.select(first, zero, g) if need[1] else None]


def pick_vjp(b: Builder, p: list, g: ir.Value, need: list, is_max: bool) -> list:
    """max/min cotangents when an operand may be a tensor: a 1/0 mask of the first operand's
    picks (ties included), the rest to the second, each summed to its operand's shape."""
    m = b.helper("pick-first", p[0], p[1], b.int(1 if is_max else 0))
    return [b.helper("unbroadcast", b.prim("%mul2", g, m), p[0]) if need[0] else None,
            b.helper("unbroadcast", b.prim("%mul2", g, b.prim("%sub2", b.int(1), m)), p[1]) if need[1] else None]


_minmax("%num<=2")
_minmax("%num>=2")

# Primitives whose result carries no derivative even when an operand does (comparisons and
# predicates): they may take active operands, and their results are passive.
PASSIVE_RESULT = frozenset({
    "%num=2", "%num<2", "%num>2", "%num<=2", "%num>=2", "zero?", "positive?", "negative?",
    "number?", "real?", "integer?", "rational?", "exact?", "inexact?", "nan?", "infinite?",
    "finite?", "exact-integer?", "eq?", "eqv?", "equal?", "not",
    # tensor inspection and comparison masks
    "tensor?", "tensor-shape", "tensor-rank", "tensor-size", "tensor-length", "tensor-dtype",
    "tensor-device", "tensor-eq", "tensor-ne", "tensor-lt", "tensor-gt", "tensor-le", "tensor-ge",
    "tensor-argmax", "tensor-argmin",
})


# Reductions over all elements: a number, whatever the operand.
_FULL_REDUCTIONS = frozenset({"tensor-sum", "tensor-mean", "tensor-max", "tensor-min", "tensor-prod"})


def number_result(name: str, operands: list, scalars: set) -> bool:
    """Whether ``(name operands...)`` is statically a number (``scalars``: operands known to
    be numbers)."""
    if name in _FULL_REDUCTIONS:
        return len(operands) == 1
    return scalar_prim(name) and all(a in scalars for a in operands)


def scalar_prim(name: str) -> bool:
    """A scalar builtin with a derivative rule or a passive result: numbers in, a number out."""
    p = PRIMITIVES.get(name)
    return p is not None and p.kind is None and ("jvp" in p.rules or name in PASSIVE_RESULT)


def jvp_rule(name: str) -> Callable | None:
    """The JVP rule of primitive ``name``, if it has one."""
    p = PRIMITIVES.get(name)
    return None if p is None else p.rules.get("jvp")


def vjp_rule(name: str) -> Callable | None:
    """The VJP rule of primitive ``name``, if it has one."""
    p = PRIMITIVES.get(name)
    return None if p is None else p.rules.get("vjp")


# The tensor primitives' rules register themselves on import (a module of their own).
from eshkol.passes import autodiff_rules_tensor  # noqa: E402,F401
