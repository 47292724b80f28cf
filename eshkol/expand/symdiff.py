"""Compile-time symbolic differentiation: ``(diff expr var)`` of Eshkol v1.x.

``derivative(expr, var)`` differentiates an S-expression datum (numbers, symbols and calls of
``+ - * / expt pow sqrt exp log sin cos tan`` and friends) with respect to the symbol ``var``,
and ``simplify`` folds constants and drops neutral terms, so ``(diff (* x x) x)`` gives
``(* 2 x)`` and ``(diff (* 3 x) x)`` gives ``3``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from eshkol.syntax.datum import NIL, Pair, Symbol, from_list, iter_list


class DiffError(Exception):
    """An expression ``diff`` cannot differentiate."""


def _s(name: str) -> Symbol:
    return Symbol(name)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float, Fraction)) and not isinstance(x, bool)


def _call(op: str, *args: Any) -> Any:
    return from_list([_s(op), *args])


def _parts(e: Any) -> tuple[str, list[Any]]:
    items = list(iter_list(e))
    if not items or not isinstance(items[0], Symbol):
        raise DiffError("cannot differentiate a call of a non-symbol")
    return items[0].name, items[1:]


def _has(e: Any, var: Symbol) -> bool:
    if e is var:
        return True
    if isinstance(e, Pair):
        return any(_has(x, var) for x in iter_list(e))
    return False


# ---- simplification ---------------------------------------------------------------------------


def _num(x: Any) -> Any:
    if isinstance(x, Fraction) and x.denominator == 1:
        return int(x)
    return x


def add(*terms: Any) -> Any:
    """Simplified sum: constants folded, zeros dropped, x + x = (* 2 x)."""
    flat: list[Any] = []
    for t in terms:
        if isinstance(t, Pair) and t.car is _s("+"):
            flat.extend(iter_list(t.cdr))
        else:
            flat.append(t)
    const = sum((t for t in flat if _is_num(t)), 0)
    rest: list[tuple[Any, Any]] = []  # (coefficient, term)
    for t in flat:
        if _is_num(t):
            continue
        c, base = _coef(t)
        for i, (c2, b2) in enumerate(rest):
            if b2 == base:
                rest[i] = (c2 + c, b2)
                break
        else:
            rest.append((c, base))
    out = [mul(c, b) for c, b in rest if c != 0]
    if const != 0 or not out:
        out.append(_num(const))
    return out[0] if len(out) == 1 else _call("+", *out)


def _coef(t: Any) -> tuple[Any, Any]:
    """(coefficient, rest) of a term (* c x) or x."""
    if isinstance(t, Pair) and t.car is _s("*"):
        items = list(iter_list(t.cdr))
        if len(items) >= 2 and _is_num(items[0]):
            rest = items[1] if len(items) == 2 else _call("*", *items[1:])
            return items[0], rest
    return 1, t


def mul(*factors: Any) -> Any:
    """Simplified product: constants folded to the front, ones dropped, zero absorbs."""
    flat: list[Any] = []
    for f in factors:
        if isinstance(f, Pair) and f.car is _s("*"):
            flat.extend(iter_list(f.cdr))
        else:
            flat.append(f)
    const: Any = 1
    rest = []
    for f in flat:
        if _is_num(f):
            const = const * f
        else:
            rest.append(f)
    const = _num(const)
    if const == 0:
        return 0
    # x * x -> (expt x 2)
    merged: list[Any] = []
    for f in rest:
        base, k = _power(f)
        for i, m in enumerate(merged):
            b2, k2 = _power(m)
            if b2 == base and _is_num(k) and _is_num(k2):
                merged[i] = expt(base, _num(k + k2))
                break
        else:
            merged.append(f)
    merged = [m for m in merged if m != 1]
    if not merged:
        return const
    if const != 1:
        merged.insert(0, const)
    return merged[0] if len(merged) == 1 else _call("*", *merged)


def _power(f: Any) -> tuple[Any, Any]:
    if isinstance(f, Pair) and f.car in (_s("expt"), _s("pow")):
        items = list(iter_list(f.cdr))
        if len(items) == 2:
            return items[0], items[1]
    return f, 1


def sub(a: Any, b: Any) -> Any:
    if _is_num(b):
        return add(a, _num(-b))
    if b == 0:
        return a
    return add(a, mul(-1, b))


def div(a: Any, b: Any) -> Any:
    if a == 0:
        return 0
    if b == 1:
        return a
    if _is_num(a) and _is_num(b) and b != 0:
        return _num(Fraction(a) / Fraction(b)) if not isinstance(a, float) and not isinstance(b, float) else a / b
    return _call("/", a, b)


def expt(b: Any, k: Any) -> Any:
    if k == 0:
        return 1
    if k == 1:
        return b
    if _is_num(b) and isinstance(k, int) and not isinstance(b, float):
        return _num(Fraction(b) ** k)
    return _call("expt", b, k)


def neg(a: Any) -> Any:
    return mul(-1, a)


# ---- differentiation ------------------------------------------------------------------------

_UNARY = {
    # f(u) -> f'(u) as a function of u
    "sin": lambda u: _call("cos", u),
    "cos": lambda u: neg(_call("sin", u)),
    "tan": lambda u: div(1, expt(_call("cos", u), 2)),
    "exp": lambda u: _call("exp", u),
    "log": lambda u: div(1, u),
    "sqrt": lambda u: div(1, mul(2, _call("sqrt", u))),
    "sinh": lambda u: _call("cosh", u),
    "cosh": lambda u: _call("sinh", u),
    "tanh": lambda u: sub(1, expt(_call("tanh", u), 2)),
    "asin": lambda u: div(1, _call("sqrt", sub(1, expt(u, 2)))),
    "acos": lambda u: neg(div(1, _call("sqrt", sub(1, expt(u, 2))))),
    "atan": lambda u: div(1, add(1, expt(u, 2))),
    "square": lambda u: mul(2, u),
    "abs": lambda u: div(u, _call("abs", u)),
}


def derivative(e: Any, var: Symbol) -> Any:
    """d e / d var, simplified."""
    if _is_num(e):
        return 0
    if isinstance(e, Symbol):
        return 1 if e is var else 0
    if not isinstance(e, Pair):
        raise DiffError("cannot differentiate a non-numeric constant")
    op, args = _parts(e)
    if not _has(e, var):
        return 0
    d = [derivative(a, var) for a in args]
    if op == "+":
        return add(*d)
    if op == "-":
        if len(args) == 1:
            return neg(d[0])
        out = d[0]
        for x in d[1:]:
            out = sub(out, x)
        return out
    if op == "*":
        if not args:
            return 0
        terms = []
        for i in range(len(args)):
            terms.append(mul(*[d[j] if j == i else args[j] for j in range(len(args))]))
        return add(*terms)
    if op == "/":
        if len(args) == 1:
            return div(neg(d[0]), expt(args[0], 2))
        u = args[0] if len(args) == 2 else args[0]
        v = args[1] if len(args) == 2 else _call("*", *args[1:])
        dv = d[1] if len(args) == 2 else derivative(v, var)
        return div(sub(mul(d[0], v), mul(u, dv)), expt(simplify(v), 2))
    if op in ("expt", "pow"):
        if len(args) != 2:
            raise DiffError(f"{op} takes two arguments")
        b, k = args
        if not _has(k, var):
            return mul(k, expt(b, sub(k, 1) if not _is_num(k) else _num(k - 1)), d[0])
        # d(b^k) = b^k (k' log b + k b'/b)
        return mul(expt(b, k), add(mul(d[1], _call("log", b)), div(mul(k, d[0]), b)))
    if op in _UNARY and len(args) == 1:
        return mul(_UNARY[op](simplify(args[0])), d[0])
    raise DiffError(f"cannot differentiate '{op}'")


def simplify(e: Any) -> Any:
    """Bottom-up simplification of an expression datum."""
    if not isinstance(e, Pair):
        return e
    try:
        op, args = _parts(e)
    except DiffError:
        return e
    args = [simplify(a) for a in args]
    if op == "+":
        return add(*args)
    if op == "*":
        return mul(*args)
    if op == "-" and len(args) == 2:
        return sub(*args)
    if op == "-" and len(args) == 1:
        return neg(args[0])
    if op == "/" and len(args) == 2:
        return div(*args)
    if op in ("expt", "pow") and len(args) == 2:
        return expt(*args)
    return from_list([_s(op), *args])


def diff(expr: Any, var: Any) -> Any:
    """The simplified symbolic derivative of datum ``expr`` with respect to symbol ``var``."""
    if not isinstance(var, Symbol):
        raise DiffError("the variable must be a symbol")
    return derivative(expr, var)


__all__ = ["DiffError", "diff", "simplify", "NIL"]
