"""Core forms: the small language the expander produces and the frontend emits as dialect ops.

Every derived form (let*, cond, case, do, named let, ...) is expanded into these nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from typing import Any

from eshkol.syntax.diagnostics import Loc

_ids = count()


@dataclass(eq=False)
class Var:
    """A lexical variable (one binding occurrence); identity is the binding."""

    name: str
    id: int = field(default_factory=lambda: next(_ids))
    assigned: bool = False  # target of set! (assignment conversion boxes it)
    annotation: str | None = None  # declared type of a parameter, (x : Float64)

    def __repr__(self) -> str:
        return f"{self.name}_{self.id}"


@dataclass(eq=False)
class Node:
    """Base of core forms."""

    loc: Loc


@dataclass(eq=False)
class Const(Node):
    """A self-evaluating or quoted datum."""

    value: Any


@dataclass(eq=False)
class LRef(Node):
    """Reference to a lexical variable."""

    var: Var


@dataclass(eq=False)
class GRef(Node):
    """Reference to a top-level (global) variable."""

    name: str


@dataclass(eq=False)
class PrimRef(Node):
    """A primitive used as a first-class procedure value."""

    name: str


@dataclass(eq=False)
class LSet(Node):
    """``set!`` of a lexical variable."""

    var: Var
    value: Node


@dataclass(eq=False)
class GSet(Node):
    """``set!`` of a global; ``define`` when ``define`` is true."""

    name: str
    value: Node
    define: bool = False


@dataclass(eq=False)
class Lambda(Node):
    """A procedure: required, optional (with default expressions) and rest parameters."""

    req: list[Var]
    opt: list[tuple[Var, Node]]
    rest: Var | None
    body: Node
    name: str | None = None
    free: list[Var] = field(default_factory=list)  # filled by core.closure.analyze


@dataclass(eq=False)
class If(Node):
    """Two-armed conditional (a one-armed ``if`` has a void else arm)."""

    test: Node
    then: Node
    else_: Node


@dataclass(eq=False)
class Seq(Node):
    """Evaluate in order; the value is the last one's."""

    body: list[Node]


@dataclass(eq=False)
class Let(Node):
    """Parallel binding of ``vars`` to ``inits``."""

    vars: list[Var]
    inits: list[Node]
    body: Node


@dataclass(eq=False)
class Letrec(Node):
    """``letrec*``: inits evaluated in order with all vars in scope."""

    vars: list[Var]
    inits: list[Node]
    body: Node


@dataclass(eq=False)
class Call(Node):
    """Application of a procedure value."""

    fn: Node
    args: list[Node]


@dataclass(eq=False)
class Prim(Node):
    """Application of a known primitive (looked up in the primitive registry)."""

    name: str
    args: list[Node]


@dataclass
class Program:
    """A whole program: top-level forms in order, the global names it defines, and the
    names it uses from separately compiled libraries (name → (library, slot))."""

    body: list[Node]
    globals: list[str]
    imports: dict[str, tuple[str, int]] = field(default_factory=dict)
