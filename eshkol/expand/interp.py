"""An interpreter of core forms (eshkol.core.ast) for procedural macros run at expansion time.

Values are plain datums (eshkol.syntax.datum): ``Pair``/``NIL`` lists, interned ``Symbol``s,
Python numbers, strings, booleans, ``Char``, ``Vector``; procedures are ``Closure``s or Python
callables. Tail calls run in a loop, so a macro's loops do not grow the Python stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from itertools import count
from typing import Any

from eshkol.core import ast as A
from eshkol.syntax.datum import NIL, UNSPECIFIED, Char, Pair, Symbol, Vector, from_list
from eshkol.syntax.diagnostics import EshkolError, Loc
from eshkol.syntax.printer import display_string, write_string


class MacroError(Exception):
    """A run-time error in a procedural macro (reported as an EshkolError at the use)."""


class Closure:
    __slots__ = ("lam", "env")

    def __init__(self, lam: A.Lambda, env: dict) -> None:
        self.lam = lam
        self.env = env


class _Box:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v


def _is_num(x: Any) -> bool:
    return type(x) in (int, float, Fraction)


def _num(x: Any, who: str) -> Any:
    if not _is_num(x):
        raise MacroError(f"{who}: expected number, got {write_string(x)}")
    return x


def _list(x: Any, who: str) -> list[Any]:
    out = []
    while isinstance(x, Pair):
        out.append(x.car)
        x = x.cdr
    if x is not NIL:
        raise MacroError(f"{who}: expected a list")
    return out


def _pair(x: Any, who: str) -> Pair:
    if not isinstance(x, Pair):
        raise MacroError(f"{who}: expected pair, got {write_string(x)}")
    return x


def _eqv(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if type(a) in (int, float, Fraction, Char, str) and type(a) is not str:
        return a == b
    return False


def _equal(a: Any, b: Any) -> bool:
    while True:
        if _eqv(a, b):
            return True
        if isinstance(a, Pair) and isinstance(b, Pair):
            if not _equal(a.car, b.car):
                return False
            a, b = a.cdr, b.cdr
            continue
        if type(a) is not type(b):
            return False
        if isinstance(a, str):
            return a == b
        if isinstance(a, Vector):
            return len(a.items) == len(b.items) and all(_equal(x, y) for x, y in zip(a.items, b.items, strict=False))
        return False


_gensyms = count()


def gensym(prefix: Any = "g") -> Symbol:
    """A symbol whose name no other symbol read or made so far has."""
    p = prefix.name if isinstance(prefix, Symbol) else str(prefix)
    while True:
        name = f"{p}{next(_gensyms)}"
        if name not in Symbol._table:
            return Symbol(name)


def _fold(op: Callable, ident: Any, who: str) -> Callable:
    def f(*xs: Any) -> Any:
        acc = ident
        for x in xs:
            acc = op(acc, _num(x, who))
        return acc
    return f


def _sub(*xs: Any) -> Any:
    if not xs:
        raise MacroError("-: wrong number of arguments")
    if len(xs) == 1:
        return -_num(xs[0], "-")
    acc = _num(xs[0], "-")
    for x in xs[1:]:
        acc = acc - _num(x, "-")
    return acc


def _div(*xs: Any) -> Any:
    if not xs:
        raise MacroError("/: wrong number of arguments")
    vals = [_num(x, "/") for x in xs]
    if len(vals) == 1:
        vals = [1, *vals]
    acc = vals[0]
    for x in vals[1:]:
        if x == 0 and not isinstance(x, float) and not isinstance(acc, float):
            raise MacroError("/: division by zero")
        if isinstance(acc, float) or isinstance(x, float):
            acc = acc / x if x != 0 else math.copysign(math.inf, acc) if acc else math.nan
        else:
            acc = Fraction(acc, x)
            if acc.denominator == 1:
                acc = acc.numerator
    return acc


def _chain(op: Callable, who: str) -> Callable:
    def f(*xs: Any) -> bool:
        vals = [_num(x, who) for x in xs]
        return all(op(a, b) for a, b in zip(vals, vals[1:], strict=False))
    return f


def _append(*xs: Any) -> Any:
    if not xs:
        return NIL
    out = xs[-1]
    for x in reversed(xs[:-1]):
        out = from_list(_list(x, "append"), out)
    return out


def _symbol_append(*xs: Any) -> Symbol:
    parts = []
    for x in xs:
        if not isinstance(x, Symbol):
            raise MacroError(f"symbol-append: expected symbol, got {write_string(x)}")
        parts.append(x.name)
    return Symbol("".join(parts))


def _quotient(a, b):
    if b == 0:
        raise MacroError("quotient: division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _number_to_string(x: Any, radix: int = 10) -> str:
    return display_string(x) if radix == 10 else format(x, {2: "b", 8: "o", 16: "x"}[radix])


def _string_to_number(s: str, radix: int = 10) -> Any:
    from eshkol.syntax.reader import parse_number
    try:
        v = parse_number(s) if radix == 10 else int(s, radix)
    except Exception:
        return False
    return False if v is None else v


def _cxr(path: str) -> Callable:
    def f(x: Any) -> Any:
        for c in reversed(path):
            p = _pair(x, f"c{path}r")
            x = p.car if c == "a" else p.cdr
        return x
    return f


def _list_tail(x, k):
    for _ in range(k):
        x = _pair(x, "list-tail").cdr
    return x


def _assoc(eq):
    def f(key, alist):
        for p in _list(alist, "assoc"):
            if isinstance(p, Pair) and eq(key, p.car):
                return p
        return False
    return f


def _member(eq):
    def f(key, lst):
        while isinstance(lst, Pair):
            if eq(key, lst.car):
                return lst
            lst = lst.cdr
        return False
    return f


class Interp:
    """Evaluates core forms; globals are the builtins plus whatever ``define`` adds."""

    def __init__(self) -> None:
        self.globals: dict[str, Any] = dict(self._builtins())
        self.steps = 0

    def _builtins(self) -> dict[str, Any]:
        ap = self.apply
        b: dict[str, Any] = {
            "cons": lambda a, d: Pair(a, d),
            "car": lambda p: _pair(p, "car").car, "cdr": lambda p: _pair(p, "cdr").cdr,
            "set-car!": lambda p, v: setattr(_pair(p, "set-car!"), "car", v) or UNSPECIFIED,
            "set-cdr!": lambda p, v: setattr(_pair(p, "set-cdr!"), "cdr", v) or UNSPECIFIED,
            "list": lambda *xs: from_list(list(xs)), "append": _append,
            "reverse": lambda x: from_list(_list(x, "reverse")[::-1]),
            "length": lambda x: len(_list(x, "length")),
            "list-ref": lambda x, k: _list(x, "list-ref")[k], "list-tail": _list_tail,
            "list-copy": lambda x: from_list(_list(x, "list-copy")),
            "last-pair": lambda x: _last_pair(x),
            "map": lambda f, *ls: from_list([ap(f, list(xs)) for xs in _zip(ls, "map")]),
            "for-each": lambda f, *ls: [ap(f, list(xs)) for xs in _zip(ls, "for-each")] and UNSPECIFIED,
            "filter": lambda f, x: from_list([y for y in _list(x, "filter") if ap(f, [y]) is not False]),
            "fold-left": lambda f, init, x: _fold_left(ap, f, init, x),
            "fold-right": lambda f, init, x: _fold_right(ap, f, init, x),
            "apply": lambda f, *args: ap(f, list(args[:-1]) + _list(args[-1], "apply")),
            "memq": _member(lambda a, b: a is b), "memv": _member(_eqv), "member": _member(_equal),
            "assq": _assoc(lambda a, b: a is b), "assv": _assoc(_eqv), "assoc": _assoc(_equal),
            "iota": lambda n, start=0, step=1: from_list([start + i * step for i in range(n)]),
            "symbol->string": lambda s: s.name, "string->symbol": lambda s: Symbol(s),
            "string-append": lambda *xs: "".join(xs), "symbol-append": _symbol_append,
            "gensym": gensym, "generate-temporary": gensym,
            "string-length": len, "string-ref": lambda s, k: Char(s[k]),
            "substring": lambda s, a, b=None: s[a:b], "string=?": lambda a, b: a == b,
            "string<?": lambda a, b: a < b, "string->list": lambda s: from_list([Char(c) for c in s]),
            "list->string": lambda x: "".join(c.value for c in _list(x, "list->string")),
            "string-upcase": str.upper, "string-downcase": str.lower,
            "number->string": _number_to_string, "string->number": _string_to_number,
            "string": lambda *cs: "".join(c.value for c in cs),
            "+": _fold(lambda a, b: a + b, 0, "+"), "*": _fold(lambda a, b: a * b, 1, "*"),
            "-": _sub, "/": _div,
            "=": _chain(lambda a, b: a == b, "="), "<": _chain(lambda a, b: a < b, "<"),
            ">": _chain(lambda a, b: a > b, ">"), "<=": _chain(lambda a, b: a <= b, "<="),
            ">=": _chain(lambda a, b: a >= b, ">="),
            "min": lambda *xs: min(_num(x, "min") for x in xs), "max": lambda *xs: max(_num(x, "max") for x in xs),
            "abs": lambda x: abs(_num(x, "abs")), "quotient": _quotient,
            "remainder": lambda a, b: a - b * _quotient(a, b), "modulo": lambda a, b: a % b,
            "expt": lambda a, b: a ** b, "sqrt": _sqrt,
            "exact->inexact": float, "inexact": float,
            "exact": lambda x: int(x) if float(x).is_integer() else Fraction(x),
            "inexact->exact": lambda x: int(x) if float(x).is_integer() else Fraction(x),
            "floor": lambda x: math.floor(x) if not isinstance(x, float) else float(math.floor(x)),
            "zero?": lambda x: _num(x, "zero?") == 0, "positive?": lambda x: _num(x, "positive?") > 0,
            "negative?": lambda x: _num(x, "negative?") < 0,
            "odd?": lambda x: x % 2 == 1, "even?": lambda x: x % 2 == 0,
            "eq?": lambda a, b: a is b or (_eqv(a, b) and type(a) in (int, Char)),
            "eqv?": _eqv, "equal?": _equal, "not": lambda x: x is False,
            "null?": lambda x: x is NIL, "pair?": lambda x: isinstance(x, Pair),
            "list?": lambda x: _is_list(x), "symbol?": lambda x: isinstance(x, Symbol),
            "string?": lambda x: isinstance(x, str), "number?": _is_num,
            "integer?": lambda x: type(x) is int or (type(x) is float and x.is_integer()),
            "boolean?": lambda x: isinstance(x, bool), "char?": lambda x: isinstance(x, Char),
            "vector?": lambda x: isinstance(x, Vector),
            "procedure?": lambda x: isinstance(x, Closure) or callable(x),
            "vector": lambda *xs: Vector(list(xs)), "vector-ref": lambda v, k: v.items[k],
            "vector-length": lambda v: len(v.items), "vector->list": lambda v: from_list(list(v.items)),
            "list->vector": lambda x: Vector(_list(x, "list->vector")),
            "make-vector": lambda n, fill=0: Vector([fill] * n),
            "vector-set!": lambda v, k, x: v.items.__setitem__(k, x) or UNSPECIFIED,
            "error": _error, "void": lambda *xs: UNSPECIFIED,
        }
        for alias, name in (("%add2", "+"), ("%sub2", "-"), ("%mul2", "*"), ("%div2", "/"),
                            ("%num=2", "="), ("%num<2", "<"), ("%num>2", ">"), ("%num<=2", "<="),
                            ("%num>=2", ">="), ("%min2", "min"), ("%max2", "max")):
            b[alias] = b[name]
        b["%neg"] = lambda x: -_num(x, "-")
        b["%recip"] = lambda x: _div(1, x)
        for path in ("aa", "ad", "da", "dd", "aaa", "aad", "ada", "add", "daa", "dad", "dda", "ddd", "addd"):
            b[f"c{path}r"] = _cxr(path)
        return b

    # ---- evaluation -------------------------------------------------------------------------

    def apply(self, f: Any, args: list[Any]) -> Any:
        if isinstance(f, Closure):
            node, env = self._enter(f, args, None)
            return self.eval(node, env)
        if callable(f):
            return self._call_py(f, args)
        raise MacroError(f"attempt to call a non-procedure: {write_string(f)}")

    @staticmethod
    def _call_py(f: Callable, args: list[Any]) -> Any:
        try:
            return f(*args)
        except MacroError:
            raise
        except RecursionError:
            raise
        except (TypeError, IndexError, KeyError, AttributeError, ValueError, ZeroDivisionError,
                OverflowError) as e:
            name = getattr(f, "__name__", "builtin")
            raise MacroError(f"{name}: bad arguments ({e})") from None

    def _enter(self, f: Closure, args: list[Any], loc: Loc | None) -> tuple[A.Node, dict]:
        lam = f.lam
        env = dict(f.env)
        n = len(args)
        nreq, nopt = len(lam.req), len(lam.opt)
        if n < nreq or (lam.rest is None and n > nreq + nopt):
            raise MacroError(f"{lam.name or 'procedure'}: wrong number of arguments (got {n})")
        for v, a in zip(lam.req, args, strict=False):
            env[v] = _Box(a) if v.assigned else a
        i = nreq
        for v, default in lam.opt:
            val = args[i] if i < n else self.eval(default, env)
            env[v] = _Box(val) if v.assigned else val
            i += 1
        if lam.rest is not None:
            r = from_list(list(args[i:]))
            env[lam.rest] = _Box(r) if lam.rest.assigned else r
        return lam.body, env

    def eval(self, node: A.Node, env: dict) -> Any:
        while True:
            self.steps += 1
            if self.steps > 50_000_000:
                raise MacroError("macro ran too long (50M steps)")
            t = type(node)
            if t is A.Const:
                return node.value
            if t is A.LRef:
                v = env[node.var]
                return v.v if type(v) is _Box else v
            if t is A.GRef or t is A.PrimRef:
                try:
                    return self.globals[node.name]
                except KeyError:
                    raise EshkolError(node.loc, f"'{node.name}' is not available at expansion time") from None
            if t is A.If:
                node = node.then if self.eval(node.test, env) is not False else node.else_
                continue
            if t is A.Seq:
                for x in node.body[:-1]:
                    self.eval(x, env)
                node = node.body[-1]
                continue
            if t is A.Lambda:
                return Closure(node, env)
            if t is A.Let:
                vals = [self.eval(x, env) for x in node.inits]
                env = dict(env)
                for v, x in zip(node.vars, vals, strict=False):
                    env[v] = _Box(x) if v.assigned else x
                node = node.body
                continue
            if t is A.Letrec:
                env = dict(env)
                for v in node.vars:
                    env[v] = _Box(UNSPECIFIED)
                for v, x in zip(node.vars, node.inits, strict=False):
                    env[v].v = self.eval(x, env)
                for v in node.vars:  # unbox the ones never assigned (closures share `env`)
                    if not v.assigned:
                        env[v] = env[v].v
                node = node.body
                continue
            if t is A.LSet:
                box = env[node.var]
                box.v = self.eval(node.value, env)
                return UNSPECIFIED
            if t is A.GSet:
                self.globals[node.name] = self.eval(node.value, env)
                return UNSPECIFIED
            if t is A.Call or t is A.Prim:
                f = self.eval(node.fn, env) if t is A.Call else self.globals.get(node.name)
                if f is None:
                    raise EshkolError(node.loc, f"'{node.name}' is not available at expansion time")
                args = [self.eval(x, env) for x in node.args]
                if isinstance(f, Closure):
                    node, env = self._enter(f, args, node.loc)
                    continue
                if callable(f):
                    return self._call_py(f, args)
                raise MacroError(f"attempt to call a non-procedure: {write_string(f)}")
            raise MacroError(f"cannot evaluate {t.__name__} at expansion time")


def _zip(ls, who):
    return zip(*[_list(x, who) for x in ls], strict=False)


def _sqrt(x):
    if type(x) is int and x >= 0 and math.isqrt(x) ** 2 == x:
        return math.isqrt(x)
    return math.sqrt(x)


def _last_pair(x):
    while isinstance(x, Pair) and isinstance(x.cdr, Pair):
        x = x.cdr
    return x


def _is_list(x):
    while isinstance(x, Pair):
        x = x.cdr
    return x is NIL


def _fold_left(ap, f, init, x):
    for y in _list(x, "fold-left"):
        init = ap(f, [init, y])
    return init


def _fold_right(ap, f, init, x):
    for y in reversed(_list(x, "fold-right")):
        init = ap(f, [y, init])
    return init


def _error(msg, *irritants):
    text = msg if isinstance(msg, str) else write_string(msg)
    raise MacroError(" ".join([text, *(write_string(i) for i in irritants)]))
