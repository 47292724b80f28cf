"""Datums (the values `quote` produces and `read` returns) and syntax objects.

Plain datums use Python values where they fit: ``int`` (exact integers), ``fractions.Fraction``
(exact non-integer rationals), ``float`` (inexact reals), ``bool``, ``str`` (strings). The
classes below cover the rest. Syntax objects wrap a datum with its source location; the reader
produces them and the expander consumes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from eshkol.syntax.diagnostics import Loc


class Symbol:
    """An interned symbol: ``Symbol('x') is Symbol('x')``."""

    __slots__ = ("name",)
    _table: ClassVar[dict[str, Symbol]] = {}

    def __new__(cls, name: str) -> Self:
        sym = cls._table.get(name)
        if sym is None:
            sym = super().__new__(cls)
            sym.name = name
            cls._table[name] = sym
        return sym

    def __repr__(self) -> str:
        return f"Symbol({self.name!r})"

    def __reduce__(self):  # pickling keeps interning
        return (Symbol, (self.name,))


@dataclass(frozen=True, slots=True)
class Char:
    """A character (one Unicode code point)."""

    value: str


class Nil:
    """The empty list; use the singleton ``NIL``."""

    _inst: Nil | None = None

    def __new__(cls) -> Self:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "NIL"

    def __reduce__(self):
        return (Nil, ())


NIL = Nil()


class Unspecified:
    """The value of forms with no useful value (printed as nothing by display)."""

    _inst: Unspecified | None = None

    def __new__(cls) -> Self:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst


UNSPECIFIED = Unspecified()


class Eof:
    """The end-of-file object."""

    _inst: Eof | None = None

    def __new__(cls) -> Self:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst


EOF = Eof()


@dataclass(eq=True, slots=True)
class Pair:
    """A mutable pair."""

    car: Any
    cdr: Any


@dataclass(eq=True, slots=True)
class Vector:
    """A Scheme vector (the datum of a quoted ``#(...)``)."""

    items: list[Any] = field(default_factory=list)


@dataclass(eq=True, slots=True)
class Bytevector:
    """A bytevector ``#u8(...)``."""

    data: bytes = b""


def from_list(items: list[Any], tail: Any = NIL) -> Any:
    """Build a (possibly improper) list datum from Python items."""
    out = tail
    for x in reversed(items):
        out = Pair(x, out)
    return out


def iter_list(d: Any) -> Iterator[Any]:
    """Iterate over the elements of a proper list datum (stops at the first non-pair)."""
    while isinstance(d, Pair):
        yield d.car
        d = d.cdr


# ---- syntax objects -----------------------------------------------------------------------


@dataclass(slots=True)
class Syntax:
    """A datum read from source, with its location.

    ``e`` is an atom (a plain datum other than a pair or vector), a ``SList`` or a ``SVector``.
    ``scopes`` is reserved for the hygienic expander (sets of scopes).
    """

    e: Any
    loc: Loc
    scopes: frozenset = frozenset()

    def __repr__(self) -> str:
        return f"Syntax({self.e!r}@{self.loc})"


@dataclass(slots=True)
class SList:
    """A parenthesised list of syntax objects; ``tail`` is set for a dotted list."""

    items: list[Syntax]
    tail: Syntax | None = None


@dataclass(slots=True)
class SVector:
    """``#(...)`` in source; the expander decides whether it is a tensor or a constant vector."""

    items: list[Syntax]


@dataclass(slots=True)
class SBytevector:
    """``#u8(...)`` in source."""

    data: bytes


def syntax_to_datum(s: Syntax) -> Any:
    """Strip locations: the plain datum that ``quote`` of this syntax denotes."""
    e = s.e
    if isinstance(e, SList):
        tail = syntax_to_datum(e.tail) if e.tail is not None else NIL
        return from_list([syntax_to_datum(x) for x in e.items], tail)
    if isinstance(e, SVector):
        return Vector([syntax_to_datum(x) for x in e.items])
    if isinstance(e, SBytevector):
        return Bytevector(e.data)
    return e


def datum_to_syntax(d: Any, loc: Loc) -> Syntax:
    """Wrap a plain datum as syntax, every part located at ``loc``."""
    if isinstance(d, Pair):
        items = []
        while isinstance(d, Pair):
            items.append(datum_to_syntax(d.car, loc))
            d = d.cdr
        tail = None if d is NIL else datum_to_syntax(d, loc)
        return Syntax(SList(items, tail), loc)
    if isinstance(d, Vector):
        return Syntax(SVector([datum_to_syntax(x, loc) for x in d.items]), loc)
    if isinstance(d, Bytevector):
        return Syntax(SBytevector(d.data), loc)
    return Syntax(d, loc)
