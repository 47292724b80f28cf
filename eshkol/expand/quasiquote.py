"""Quasiquote: rewrite ``(quasiquote t)`` into list-building code, as syntax objects.

The ``cons``/``list``/``append``/``list->vector``/``quote`` it introduces are core identifiers
(scope ``CORE``): they mean the builtins even where the user has rebound those names.
"""

from __future__ import annotations

from eshkol.expand.scopes import core_id
from eshkol.syntax.datum import SList, SVector, Symbol, Syntax

QQ, UNQ, UNQS = Symbol("quasiquote"), Symbol("unquote"), Symbol("unquote-splicing")


def _sym(name: str, at: Syntax) -> Syntax:
    return Syntax(Symbol(name), at.loc)


def _call(name: str, at: Syntax, *args: Syntax) -> Syntax:
    return Syntax(SList([core_id(name, at), *args]), at.loc)


def _quote(x: Syntax) -> Syntax:
    return _call("quote", x, x)


def _tagged(s: Syntax, tag: Symbol) -> Syntax | None:
    """The operand of ``(tag x)`` if ``s`` is that form."""
    e = s.e
    if isinstance(e, SList) and e.tail is None and len(e.items) == 2 and e.items[0].e is tag:
        return e.items[1]
    return None


def expand_quasiquote(template: Syntax, depth: int = 1) -> Syntax:
    """Code (as syntax) that builds the value of ``template`` under ``depth`` quasiquotes."""
    e = template.e
    inner = _tagged(template, UNQ)
    if inner is not None:
        if depth == 1:
            return inner
        return _call("list", template, _quote(_sym("unquote", template)),
                     expand_quasiquote(inner, depth - 1))
    inner = _tagged(template, QQ)
    if inner is not None:
        return _call("list", template, _quote(_sym("quasiquote", template)),
                     expand_quasiquote(inner, depth + 1))
    if isinstance(e, SVector):
        as_list = Syntax(SList(e.items), template.loc)
        return _call("list->vector", template, expand_quasiquote(as_list, depth))
    if not isinstance(e, SList):
        return _quote(template)
    # Build from the tail backwards so that splices become `append`.
    out = expand_quasiquote(e.tail, depth) if e.tail is not None else _quote(Syntax(SList([]), template.loc))
    for item in reversed(e.items):
        spliced = _tagged(item, UNQS)
        if spliced is not None and depth == 1:
            out = _call("append", item, spliced, out)
        elif spliced is not None:
            piece = _call("list", item, _quote(_sym("unquote-splicing", item)),
                          expand_quasiquote(spliced, depth - 1))
            out = _call("cons", item, piece, out)
        else:
            out = _call("cons", item, expand_quasiquote(item, depth), out)
    return out
