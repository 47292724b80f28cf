"""Scopes and scope sets (the sets-of-scopes model of hygiene).

A scope is a fresh integer. Every syntax object carries a ``frozenset`` of scopes; each binding
form makes a new scope and adds it to the binders and the region they cover, and every macro
expansion adds a fresh introduction scope to the pieces its template introduced. An identifier
refers to the binding (same name) whose scope set is the largest subset of its own.

``CORE`` marks identifiers the expander itself introduces (quasiquote's ``cons``/``list``/
``append``, the ``lambda`` of curried defines): they always mean the core form or builtin,
whatever the user has bound under those names.
"""

from __future__ import annotations

from itertools import count

from eshkol.syntax.datum import SList, SVector, Symbol, Syntax

_next = count(1)

CORE = 0  # the scope of core keywords and builtins


def fresh_scope() -> int:
    """A new scope."""
    return next(_next)


_with: dict[tuple[frozenset, int], frozenset] = {}


def add_scope(s: Syntax, sc: int) -> Syntax:
    """``s`` with scope ``sc`` added to every identifier in it (a copy; atoms are shared).

    Only identifiers' scopes take part in binding; lists keep theirs (the introduction
    scopes that say which expansion made them)."""
    e = s.e
    t = type(e)
    if t is Symbol:
        key = (s.scopes, sc)
        new = _with.get(key)
        if new is None:
            if len(_with) > 100_000:
                _with.clear()
            new = _with[key] = s.scopes | {sc}
        return Syntax(e, s.loc, new)
    if t is SList:
        tail = add_scope(e.tail, sc) if e.tail is not None else None
        return Syntax(SList([add_scope(x, sc) for x in e.items], tail), s.loc, s.scopes)
    if t is SVector:
        return Syntax(SVector([add_scope(x, sc) for x in e.items]), s.loc, s.scopes)
    return s


def add_scopes(forms: list[Syntax], sc: int) -> list[Syntax]:
    """``add_scope`` over a list."""
    return [add_scope(f, sc) for f in forms]


def core_id(name: str, at: Syntax) -> Syntax:
    """An identifier that always refers to the core form or builtin ``name``."""
    return Syntax(Symbol(name), at.loc, frozenset((CORE,)))
