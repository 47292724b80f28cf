"""Closure and assignment conversion, as analyses on core forms.

``analyze`` fills ``Lambda.free`` (the lexical variables a procedure captures, in a fixed
order) and marks letrec-bound procedures that refer to themselves, so the frontend can use the
closure's own ``self`` instead of a captured slot. Assignment conversion is the rule that every
variable with ``Var.assigned`` lives in a box (set by the expander on ``set!``); the frontend
boxes at the binding and unboxes at each use.
"""

from __future__ import annotations

from eshkol.core import ast as A


def analyze(program: A.Program) -> None:
    """Annotate every Lambda in ``program`` with its free variables."""
    for node in program.body:
        _free(node, {})


def _free(node: A.Node, self_of: dict[int, A.Var]) -> set[A.Var]:
    """Free lexical variables of ``node``; fills Lambda.free on the way."""
    if isinstance(node, A.LRef):
        return {node.var}
    if isinstance(node, (A.Const, A.GRef, A.PrimRef)):
        return set()
    if isinstance(node, A.LSet):
        return {node.var} | _free(node.value, self_of)
    if isinstance(node, A.GSet):
        return _free(node.value, self_of)
    if isinstance(node, A.If):
        return _free(node.test, self_of) | _free(node.then, self_of) | _free(node.else_, self_of)
    if isinstance(node, A.Seq):
        return set().union(*(_free(n, self_of) for n in node.body))
    if isinstance(node, (A.Call, A.Prim)):
        out = _free(node.fn, self_of) if isinstance(node, A.Call) else set()
        return out.union(*(_free(a, self_of) for a in node.args))
    if isinstance(node, A.Let):
        inner = _free(node.body, self_of) - set(node.vars)
        return inner.union(*(_free(i, self_of) for i in node.inits))
    if isinstance(node, A.Letrec):
        out = _free(node.body, self_of)
        for _v, i in zip(node.vars, node.inits, strict=False):
            out |= _free(i, self_of)
        return out - set(node.vars)
    if isinstance(node, A.Lambda):
        bound = set(node.req) | {v for v, _ in node.opt} | ({node.rest} if node.rest else set())
        inner = _free(node.body, self_of)
        for _, default in node.opt:
            inner |= _free(default, self_of)
        free = inner - bound
        node.free = sorted(free, key=lambda v: v.id)
        return free
    raise TypeError(f"unknown core node {type(node).__name__}")


def letrec_knot(node: A.Letrec) -> bool:
    """Whether a letrec can be built as closures that capture each other directly.

    True when every init is a lambda and no bound variable is assigned; otherwise the
    frontend falls back to boxes (letrec* semantics with inits in order).
    """
    return all(isinstance(i, A.Lambda) for i in node.inits) and not any(v.assigned for v in node.vars)


def stable_procedures(program: A.Program) -> set[str]:
    """Globals defined exactly once, at top level, as a lambda, and never assigned: inside its
    own body such a name always denotes the procedure being run."""
    defines: dict[str, int] = {}
    lambdas: set[str] = set()
    assigned: set[str] = set()

    def walk(node: A.Node) -> None:
        if isinstance(node, A.GSet):
            if node.define:
                defines[node.name] = defines.get(node.name, 0) + 1
                if isinstance(node.value, A.Lambda):
                    lambdas.add(node.name)
            else:
                assigned.add(node.name)
        for child in _children(node):
            walk(child)

    for node in program.body:
        walk(node)
    return {n for n in lambdas if defines[n] == 1 and n not in assigned}


def _children(node: A.Node) -> list[A.Node]:
    if isinstance(node, (A.LSet, A.GSet)):
        return [node.value]
    if isinstance(node, A.If):
        return [node.test, node.then, node.else_]
    if isinstance(node, A.Seq):
        return node.body
    if isinstance(node, A.Call):
        return [node.fn, *node.args]
    if isinstance(node, A.Prim):
        return node.args
    if isinstance(node, (A.Let, A.Letrec)):
        return [*node.inits, node.body]
    if isinstance(node, A.Lambda):
        return [d for _, d in node.opt] + [node.body]
    return []


def tail_calls_self(node: A.Node, var: A.Var | None, name: str | None) -> bool:
    """Whether ``node`` (a procedure body) calls the procedure itself in tail position, named
    by the letrec variable ``var`` or the global ``name``."""
    if isinstance(node, A.Call):
        fn = node.fn
        return (var is not None and isinstance(fn, A.LRef) and fn.var is var) or \
            (name is not None and isinstance(fn, A.GRef) and fn.name == name)
    if isinstance(node, A.If):
        return tail_calls_self(node.then, var, name) or tail_calls_self(node.else_, var, name)
    if isinstance(node, A.Seq):
        return tail_calls_self(node.body[-1], var, name)
    if isinstance(node, (A.Let, A.Letrec)):
        return tail_calls_self(node.body, var, name)
    return False
