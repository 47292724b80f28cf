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
