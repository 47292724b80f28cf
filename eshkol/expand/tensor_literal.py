"""Unquoted ``#(...)``: a float64 tensor literal whose elements are evaluated (LANGUAGE.md).

``#(1 2 3)`` has shape (3); nested rows make higher ranks: ``#((1 2) (3 4))`` and
``#(#(1 2) #(3 4))`` are 2x2. A row is an inner ``#(...)`` or a parenthesised list whose first
element is not an identifier (a number, a list or a vector); a list headed by an identifier is an
expression (``#((f x) 2)`` calls ``f``). Rows of one level must all have the same shape; ragged
nesting is a compile-time error at the offending row.

The expander turns the literal into ``(%tensor-const #(dims) #(x ...))`` when every element is a
numeric constant (one constant vector, whatever the size) and otherwise into
``(%tensor-literal #(dims) e ...)``; both make a fresh tensor each time they are evaluated.
Quoted vectors (``'#(a b)``) and quasiquoted ones never get here: they stay Scheme vectors.
"""

from __future__ import annotations

from fractions import Fraction

from eshkol.syntax.datum import SList, SVector, Symbol, Syntax
from eshkol.syntax.diagnostics import EshkolError

MAX_RANK = 8  # ESK_TENSOR_MAX_RANK in runtime_c/include/eshkol_rt.h


def _is_row(s: Syntax) -> bool:
    e = s.e
    if isinstance(e, SVector):
        return True
    if isinstance(e, SList) and e.tail is None:
        return not e.items or not isinstance(e.items[0].e, Symbol)
    return False


def _shape(s: Syntax, depth: int) -> tuple[int, ...]:
    if depth >= MAX_RANK:
        raise EshkolError(s.loc, f"tensor literal: more than {MAX_RANK} dimensions")
    items = s.e.items
    if not items:
        return (0,)
    rows = [_is_row(x) for x in items]
    if not any(rows):
        return (len(items),)
    if not all(rows):
        bad = items[rows.index(False) if rows[0] else rows.index(True)]
        hint = ""
        if isinstance(bad.e, SList) and bad.e.items:  # a call among rows: say how to write a row
            hint = "; a list starting with an identifier is an expression, write a row as #(...)"
        raise EshkolError(bad.loc, f"tensor literal: ragged nesting (rows mixed with elements){hint}")
    first = _shape(items[0], depth + 1)
    for x in items[1:]:
        sh = _shape(x, depth + 1)
        if sh != first:
            raise EshkolError(x.loc, "tensor literal: ragged nesting (a row of shape "
                                     f"{_text(sh)} after one of shape {_text(first)})")
    return (len(items),) + first


def _text(shape: tuple[int, ...]) -> str:
    return "(" + " ".join(map(str, shape)) + ")"


def _leaves(s: Syntax, out: list[Syntax]) -> None:
    for x in s.e.items:
        if _is_row(x):
            _leaves(x, out)
        else:
            out.append(x)


def shape_and_elements(s: Syntax) -> tuple[tuple[int, ...], list[Syntax]]:
    """The shape of tensor literal ``s`` and its element expressions in row-major order."""
    shape = _shape(s, 0)
    leaves: list[Syntax] = []
    _leaves(s, leaves)
    return shape, leaves


def constant_value(s: Syntax) -> float | None:
    """The element's value as a double when it is a numeric constant, else None."""
    e = s.e
    if isinstance(e, bool) or not isinstance(e, (int, float, Fraction)):
        return None
    try:
        return float(e)
    except OverflowError:
        return float("inf") if e > 0 else float("-inf")
