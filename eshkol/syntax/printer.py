"""The printer: plain datums → the text ``display`` and ``write`` produce (LANGUAGE.md).

Floats print in Chez Scheme's style (shortest round-trip digits, positional for
1e-3 <= |x| < 1e10, else scientific like ``1e21``); ``write`` output reads back with
``eshkol.syntax.reader`` to an equal datum.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any

from eshkol.syntax.datum import (
    EOF,
    NIL,
    UNSPECIFIED,
    Bytevector,
    Char,
    Pair,
    Symbol,
    Vector,
)
from eshkol.syntax.reader import _ATOM, BadNumber, parse_number

__all__ = ["display_string", "format_double", "format_int", "write_string"]


def _shortest_digits(x: float) -> tuple[str, int]:
    """The fewest significant digits that read back as ``x`` (positive, finite), and the
    decimal exponent of the first one.

    Like repr, but an exact tie at the last digit rounds away from zero, as Chez Scheme (and our
    C printer) do: 1768713742655377.25 prints as 1.7687137426553773e15, not ...772e15."""
    with localcontext(Context(prec=1100)):  # exact: a double has at most 767 significant digits
        exact = Decimal(x)
        e10 = exact.adjusted()
        scaled = exact.scaleb(-e10)  # 1 <= scaled < 10
        for n in range(1, 18):
            q = scaled.quantize(Decimal(1).scaleb(1 - n), ROUND_HALF_UP)
            e = e10
            if q >= 10:  # rounding carried into a new leading digit
                q, e = q / 10, e10 + 1
            if float(q.scaleb(e)) == x:
                return str(q).replace(".", "").rstrip("0") or "0", e
    raise AssertionError("17 significant digits always round-trip")


def format_double(x: float) -> str:
    """A float as Chez Scheme prints it: ``1.0 0.001 9.99e-4 1e10 -0.0 +inf.0 +nan.0``."""
    if math.isnan(x):
        return "+nan.0"
    if math.isinf(x):
        return "+inf.0" if x > 0 else "-inf.0"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0.0"
    digits, e10 = _shortest_digits(abs(x))
    if -3 <= e10 < 10:
        if e10 >= 0:
            int_part = digits[: e10 + 1].ljust(e10 + 1, "0")
            frac_part = digits[e10 + 1 :] or "0"
            return f"{sign}{int_part}.{frac_part}"
        return f"{sign}0.{'0' * (-e10 - 1)}{digits}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{e10}"


def format_int(n: int) -> str:
    """``str(n)`` for integers of any size (CPython refuses beyond 4300 digits)."""
    try:
        return str(n)
    except ValueError:
        pass
    if n < 0:
        return "-" + format_int(-n)
    k = max(1, int(n.bit_length() * 0.30103) // 2)
    hi, lo = divmod(n, 10**k)
    return format_int(hi) + format_int(lo).rjust(k, "0")


_CHAR_WRITE_NAMES = {" ": "space", "\n": "newline", "\t": "tab", "\0": "nul"}
_STRING_WRITE_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _write_char(c: str) -> str:
    name = _CHAR_WRITE_NAMES.get(c)
    if name is not None:
        return "#\\" + name
    if c.isprintable() and not c.isspace():
        return "#\\" + c
    return f"#\\x{ord(c):x}"


def _escape(s: str, quote: str) -> str:
    """Escape the body of a string (quote ``"``) or ``|symbol|`` (quote ``|``)."""
    out = []
    for c in s:
        esc = _STRING_WRITE_ESCAPES.get(c)
        if esc is not None and (c != '"' or quote == '"'):
            out.append(esc)
        elif c == quote:
            out.append("\\" + c)
        elif c.isprintable() or c == " ":
            out.append(c)
        else:
            out.append(f"\\x{ord(c):x};")
    return "".join(out)


@lru_cache(maxsize=4096)
def _write_symbol(name: str) -> str:
    """The symbol's name, in bars when it would otherwise read back as something else."""
    plain = (
        name != "."
        and (not name.startswith("#") or (name.startswith("#:") and len(name) > 2))
        and _ATOM.fullmatch(name) is not None
        and all(c.isprintable() for c in name)
    )
    if plain:
        try:
            plain = parse_number(name) is None
        except BadNumber:
            plain = False  # `1/0` is a read error, so it needs bars
    return name if plain else "|" + _escape(name, "|") + "|"


def _atom(d: Any, write: bool) -> str:
    """The printed form of anything but a pair or vector."""
    t = type(d)
    if t is bool:
        return "#t" if d else "#f"
    if t is int:
        return format_int(d)
    if t is float:
        return format_double(d)
    if t is str:
        return '"' + _escape(d, '"') + '"' if write else d
    if t is Symbol:
        return _write_symbol(d.name) if write else d.name
    if t is Char:
        return _write_char(d.value) if write else d.value
    if t is Fraction:
        return f"{format_int(d.numerator)}/{format_int(d.denominator)}"
    if d is NIL:
        return "()"
    if d is UNSPECIFIED:
        return ""
    if d is EOF:
        return "#<eof>"
    if t is Bytevector:
        return "#u8(" + " ".join(str(b) for b in d.data) + ")"
    if isinstance(d, bool):
        return "#t" if d else "#f"
    if isinstance(d, int):
        return format_int(int(d))
    if isinstance(d, float):
        return format_double(float(d))
    return f"#<{t.__name__}>"


class _Raw(str):
    """Literal output text on the printer's work stack (as opposed to a Scheme string datum)."""


_OPEN, _CLOSE, _SPACE, _DOT, _VOPEN = _Raw("("), _Raw(")"), _Raw(" "), _Raw(" . "), _Raw("#(")


def _print(d: Any, write: bool) -> str:
    """Print without recursion so that deeply nested data cannot overflow the stack."""
    out: list[str] = []
    work: list[Any] = [d]
    while work:
        x = work.pop()
        t = type(x)
        if t is _Raw:
            out.append(x)
        elif t is Pair:
            items = []
            while type(x) is Pair:
                items.append(x.car)
                x = x.cdr
            work.append(_CLOSE)
            if x is not NIL:
                work.append(x)
                work.append(_DOT)
            for k in range(len(items) - 1, -1, -1):
                work.append(items[k])
                if k:
                    work.append(_SPACE)
            work.append(_OPEN)
        elif t is Vector:
            work.append(_CLOSE)
            items = x.items
            for k in range(len(items) - 1, -1, -1):
                work.append(items[k])
                if k:
                    work.append(_SPACE)
            work.append(_VOPEN)
        else:
            out.append(_atom(x, write))
    return "".join(out)


def write_string(d: Any) -> str:
    """What ``write`` prints for datum ``d``: strings, chars and odd symbols quoted."""
    return _print(d, True)


def display_string(d: Any) -> str:
    """What ``display`` prints for datum ``d``: strings and chars raw."""
    return _print(d, False)
