"""XLA outlining: find the tensor regions of a program and replace each by a call of XLA.

A pass on core forms (between expansion and emission), used by the xla target. A *region* is
an expression of the tensor subset (see ``eshkol.lower.stablehlo``): primitives that have a
``'stablehlo'`` rule, numbers and tensor literals, ``let``/internal ``define`` of
intermediates, and calls of the program's own procedures whose bodies are in the subset (they
are inlined when the region is traced). The region's free variables (lexical or global) are
its inputs. Each region becomes ``(%xla-call ID fallback input ...)``; at run time the driver traces
the region for the inputs' dtypes and shapes, compiles it with XLA and runs it
(``eshkol.runtime.xla``).

Which expressions: every ``(with-xla-jit body ...)`` (the expander makes it an immediately
applied lambda named ``%with-xla-jit``), whose body must be entirely in the subset (anything
else is an error naming the construct and its location); and, in ``auto`` mode, every maximal
subset expression that computes something with a tensor primitive. In auto mode, arguments of
a region's outer primitive calls that are not in the subset but have no side effects
(``(tensor-add x (car l))``) are evaluated first, in order, and passed in like free variables;
an argument that may have side effects (a procedure call) ends the region there instead, so
that evaluation order is kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eshkol.core import ast as A
from eshkol.core.closure import stable_procedures
from eshkol.dialect.primitives import PRIMITIVES
from eshkol.syntax.diagnostics import EshkolError, Loc

WITH_XLA_JIT = "%with-xla-jit"   # the name the expander gives a with-xla-jit body's lambda
XLA_CALL = "%xla-call"
# The expander's forms of an unquoted #(...) (eshkol/expand/tensor_literal.py):
# (%tensor-const #(dims) #(x ...)) and (%tensor-literal #(dims) e ...).
TENSOR_CONST = "%tensor-const"
TENSOR_LITERAL = "%tensor-literal"
LITERAL_PRIMS = {TENSOR_CONST, TENSOR_LITERAL}
# Kinds of tensor primitive that make an expression worth running on XLA (creation alone is not).
_COMPUTE_KINDS = {"elementwise", "reduce", "matmul", "linalg", "shape", "contract", "index"}


@dataclass
class Region:
    """One outlined expression: its body (core forms), its inputs (``Var`` for lexical
    variables, ``str`` for globals, ``A.Var`` of a hoisted argument too), and the program's
    procedures it may inline."""

    id: int
    loc: Loc
    body: A.Node
    free: list[Any]
    functions: dict[str, A.Lambda]
    explicit: bool = False
    # Free variables a rule needed as compile-time values (an axis, a dimension): the region
    # is specialised on their values as well as on the inputs' shapes (filled at run time).
    static: set[int] = field(default_factory=set)


def _shape_of(node: A.Node) -> tuple[int, ...]:
    return tuple(int(d) for d in node.value.items)


def literal_array(node: A.Prim) -> np.ndarray:
    """The data of a constant tensor literal ``(%tensor-const #(dims) #(x ...))`` (f64)."""
    return np.array([float(x) for x in node.args[1].value.items], dtype=np.float64).reshape(
        _shape_of(node.args[0]))


def literal_elements(node: A.Prim) -> tuple[tuple[int, ...], list[A.Node]]:
    """(shape, element expressions) of ``(%tensor-literal #(dims) e ...)``."""
    return _shape_of(node.args[0]), list(node.args[1:])


class _NotSubset(Exception):
    def __init__(self, node: A.Node, what: str) -> None:
        super().__init__(what)
        self.node = node
        self.what = what


def _describe(node: A.Node) -> str:
    from eshkol.lower.stablehlo import callee_name, construct_name, display_name

    if isinstance(node, A.Prim):
        return f"{display_name(node.name)} (not a tensor operation)"
    if isinstance(node, A.Call):
        return f"a call of {callee_name(node.fn)} (not a tensor procedure of this program)"
    if isinstance(node, A.Const):
        return f"the constant {node.value!r}"
    return construct_name(node)


class Outliner:
    """Finds regions in one program (see the module docstring)."""

    def __init__(self, program: A.Program, auto: bool) -> None:
        import eshkol.lower.stablehlo_rules  # noqa: F401  (registers the 'stablehlo' rules)

        self.program = program
        self.auto = auto
        self.regions: list[Region] = []
        stable = stable_procedures(program)
        self.functions: dict[str, A.Lambda] = {}
        for node in program.body:
            for g in _top_defines(node):
                if g.name in stable and isinstance(g.value, A.Lambda):
                    # A copy: the procedure's own body is rewritten (it may hold regions), and
                    # inlining needs the original.
                    self.functions[g.name] = copy.deepcopy(g.value)
        self._fn_ok: dict[str, bool] = {}

    # ---- the subset ---------------------------------------------------------------------

    def check(self, node: A.Node, bound: set, active: tuple[str, ...] = ()) -> bool:
        """Raise _NotSubset for the first construct of ``node`` outside the subset; return
        whether it computes with a tensor primitive. ``bound``: variables bound inside."""
        from eshkol.lower.stablehlo import static_constant

        if static_constant(node) is not None:
            return False
        if isinstance(node, A.Const):
            raise _NotSubset(node, _describe(node))
        if isinstance(node, (A.LRef, A.GRef)):
            if isinstance(node, A.GRef) and node.name in self.functions:
                raise _NotSubset(node, f"the procedure {node.name} used as a value")
            return False
        if isinstance(node, A.Prim):
            if node.name == TENSOR_CONST:
                return False
            if node.name == TENSOR_LITERAL:
                return any([self.check(a, bound, active) for a in node.args[1:]])
            p = PRIMITIVES.get(node.name)
            if p is None or "stablehlo" not in p.rules:
                raise _NotSubset(node, _describe(node))
            worth = p.kind in _COMPUTE_KINDS
            return any([self.check(a, bound, active) for a in node.args]) or worth
        if isinstance(node, (A.Let, A.Letrec)):
            if any(isinstance(i, A.Lambda) for i in node.inits):
                raise _NotSubset(node, "a local procedure (lambda)")
            inner = bound | set(node.vars)
            w = [self.check(i, inner if isinstance(node, A.Letrec) else bound, active) for i in node.inits]
            return self.check(node.body, inner, active) or any(w)
        if isinstance(node, A.Seq):
            return any([self.check(x, bound, active) for x in node.body])
        if isinstance(node, A.Call):
            fn = node.fn
            if isinstance(fn, A.Lambda) and not fn.opt and fn.rest is None and fn.name != WITH_XLA_JIT \
                    and len(fn.req) == len(node.args):
                w = [self.check(a, bound, active) for a in node.args]
                return self.check(fn.body, bound | set(fn.req), active) or any(w)
            if isinstance(fn, A.GRef) and fn.name in self.functions:
                lam = self.functions[fn.name]
                if lam.opt or lam.rest is not None or len(lam.req) != len(node.args):
                    raise _NotSubset(node, f"a call of {fn.name} with {len(node.args)} arguments")
                if fn.name in active:
                    raise _NotSubset(node, f"a recursive call of {fn.name}")
                w = [self.check(a, bound, active) for a in node.args]
                return self._fn_worth(fn.name, lam, active) or any(w)
            raise _NotSubset(node, _describe(node))
        raise _NotSubset(node, _describe(node))

    def _fn_worth(self, name: str, lam: A.Lambda, active: tuple[str, ...]) -> bool:
        if name not in self._fn_ok:
            self._fn_ok[name] = self.check(lam.body, set(lam.req), active + (name,))
        return self._fn_ok[name]

    def in_subset(self, node: A.Node) -> bool | None:
        """None when ``node`` is outside the subset, else whether it is worth outlining."""
        try:
            return self.check(node, set())
        except _NotSubset:
            return None

    # ---- rewriting ------------------------------------------------------------------------

    def run(self) -> list[Region]:
        self.program.body = [self.rewrite(n) for n in self.program.body]
        return self.regions

    def rewrite(self, node: A.Node) -> A.Node:
        """``node`` with its regions replaced by XLA calls."""
        if isinstance(node, A.Call) and isinstance(node.fn, A.Lambda) and node.fn.name == WITH_XLA_JIT:
            try:
                self.check(node.fn.body, set())
            except _NotSubset as e:
                raise EshkolError(e.node.loc, f"with-xla-jit: {e.what} cannot run on XLA") from None
            return self.outline(node.fn.body, node.loc, explicit=True, fallback=node.fn)
        if self.auto and not isinstance(node, (A.Const, A.LRef, A.GRef, A.Lambda)):
            hoisted: list[tuple[A.Var, A.Node]] = []
            body = self._spine(node, hoisted)
            if body is not None:
                call = self.outline(body, node.loc, explicit=False)
                if not hoisted:
                    return call
                # Hoisted arguments are evaluated first, in order, then the region runs.
                out: A.Node = call
                for var, init in reversed(hoisted):
                    out = A.Let(node.loc, [var], [self.rewrite(init)], out)
                return out
        _map_children(node, self.rewrite)
        return node

    def _spine(self, node: A.Node, hoisted: list) -> A.Node | None:
        """``node`` as a worthwhile region (with non-subset arguments of its outer primitive
        calls replaced by fresh variables, recorded in ``hoisted``), or None."""
        worth = self.in_subset(node)
        if worth is not None:
            return node if worth else None
        if not isinstance(node, A.Prim) or node.name in LITERAL_PRIMS:
            return None
        p = PRIMITIVES.get(node.name)
        if p is None or "stablehlo" not in p.rules:
            return None
        mark = len(hoisted)
        args, any_worth = [], p.kind in _COMPUTE_KINDS
        for a in node.args:
            w = self.in_subset(a)
            if w is not None:
                args.append(a)
                any_worth = any_worth or w
                continue
            sub = self._spine(a, hoisted) if isinstance(a, A.Prim) else None
            if sub is not None:
                args.append(sub)
                any_worth = True
            elif _pure(a):
                v = A.Var("%xla-arg")
                hoisted.append((v, a))
                args.append(A.LRef(a.loc, v))
            else:  # evaluating it first could reorder side effects: no region here
                del hoisted[mark:]
                return None
        if not any_worth:
            del hoisted[mark:]
            return None
        return A.Prim(node.loc, node.name, args)

    def outline(self, body: A.Node, loc: Loc, explicit: bool, fallback: A.Lambda | None = None) -> A.Node:
        """``(%xla-call ID fallback input ...)`` for the region ``body``. The fallback is a
        thunk of the original code, which the runtime calls instead of XLA when an input is
        an AD value (differentiation happens on the cpu target), and, for regions found
        automatically, when XLA cannot take the inputs (the cpu target's error then)."""
        free = free_inputs(body, self.functions)
        functions = {n: self.functions[n] for n in called_functions(body, self.functions)}
        region = Region(len(self.regions), loc, body, free, functions, explicit)
        self.regions.append(region)
        if fallback is None:
            fallback = A.Lambda(loc, [], [], None, body, name="%xla-fallback")
        args: list[A.Node] = [A.Const(loc, region.id), fallback]
        args += [A.GRef(loc, r) if isinstance(r, str) else A.LRef(loc, r) for r in free]
        return A.Prim(loc, XLA_CALL, args)


# Primitives without side effects (besides those with a stablehlo rule), whose calls may be
# evaluated before a region instead of in their place among its arguments.
_PURE_KINDS = {"inspect", "index"}
_PURE = {"car", "cdr", "cadr", "cddr", "caar", "cdar", "caddr", "cdddr", "list", "vector", "length",
         "list-ref", "list-tail", "vector-ref", "vector-length", "cons", "not", "eq?", "eqv?", "equal?",
         "quotient", "remainder", "modulo", "floor", "ceiling", "round", "truncate", "exact", "inexact->exact"}


def _pure(node: A.Node) -> bool:
    """Whether evaluating ``node`` has no side effects (so it may move before a region)."""
    if isinstance(node, (A.Const, A.LRef, A.GRef)):
        return True
    if isinstance(node, A.Prim):
        p = PRIMITIVES.get(node.name)
        ok = p is not None and (node.name in _PURE or p.kind in _PURE_KINDS or "stablehlo" in p.rules)
        return ok and all(_pure(a) for a in node.args)
    return False


def _top_defines(node: A.Node) -> list[A.GSet]:
    if isinstance(node, A.GSet) and node.define:
        return [node]
    if isinstance(node, A.Seq):
        return [g for n in node.body for g in _top_defines(n)]
    return []


def _map_children(node: A.Node, fn) -> None:
    """Replace each child expression c of ``node`` by fn(c), in place."""
    if isinstance(node, (A.LSet, A.GSet)):
        node.value = fn(node.value)
    elif isinstance(node, A.If):
        node.test, node.then, node.else_ = fn(node.test), fn(node.then), fn(node.else_)
    elif isinstance(node, A.Seq):
        node.body = [fn(n) for n in node.body]
    elif isinstance(node, A.Call):
        node.fn = fn(node.fn)
        node.args = [fn(a) for a in node.args]
    elif isinstance(node, A.Prim):
        node.args = [fn(a) for a in node.args]
    elif isinstance(node, (A.Let, A.Letrec)):
        node.inits = [fn(i) for i in node.inits]
        node.body = fn(node.body)
    elif isinstance(node, A.Lambda):
        node.opt = [(v, fn(d)) for v, d in node.opt]
        node.body = fn(node.body)


def _walk(node: A.Node, visit) -> None:
    visit(node)
    kids: list[A.Node] = []
    _map_children(node, lambda c: (kids.append(c), c)[1])
    for k in kids:
        _walk(k, visit)


def called_functions(body: A.Node, functions: dict[str, A.Lambda]) -> list[str]:
    """The program procedures ``body`` calls, directly or through each other."""
    seen: list[str] = []

    def visit(n: A.Node) -> None:
        if isinstance(n, A.Call) and isinstance(n.fn, A.GRef) and n.fn.name in functions \
                and n.fn.name not in seen:
            seen.append(n.fn.name)
            _walk(functions[n.fn.name].body, visit)

    _walk(body, visit)
    return seen


def free_inputs(body: A.Node, functions: dict[str, A.Lambda]) -> list[Any]:
    """The inputs of a region: free lexical variables and globals (not the inlined
    procedures' names), in order of first use, including those of inlined bodies."""
    out: list[Any] = []

    def go(n: A.Node, bound: set) -> None:
        if isinstance(n, A.LRef):
            if n.var not in bound and n.var not in out:
                out.append(n.var)
        elif isinstance(n, A.GRef):
            if n.name not in functions and n.name not in out:
                out.append(n.name)
        elif isinstance(n, (A.Let, A.Letrec)):
            inner = bound | set(n.vars)
            for i in n.inits:
                go(i, inner if isinstance(n, A.Letrec) else bound)
            go(n.body, inner)
        elif isinstance(n, A.Lambda):
            go(n.body, bound | set(n.req))
        elif isinstance(n, A.Call) and isinstance(n.fn, A.GRef) and n.fn.name in functions:
            for a in n.args:
                go(a, bound)
            if n.fn.name not in visiting:
                visiting.add(n.fn.name)
                lam = functions[n.fn.name]
                go(lam.body, set(lam.req))
        else:
            kids: list[A.Node] = []
            _map_children(n, lambda c: (kids.append(c), c)[1])
            for k in kids:
                go(k, bound)

    visiting: set[str] = set()
    go(body, set())
    return out


def outline_program(program: A.Program, auto: bool = True) -> list[Region]:
    """Replace the regions of ``program`` (in place) by XLA calls; returns the regions."""
    return Outliner(program, auto).run()
