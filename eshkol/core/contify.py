"""Loops: letrec-bound procedures that can be compiled as blocks of the enclosing function.

A named let or ``do`` expands to ``(letrec ((loop (lambda (v ...) body))) (loop init ...))``.
When ``loop`` is only ever called — never used as a value, never assigned — with the right
number of arguments, and every call is in tail position (of the letrec's body or of the loop's
own body) and not inside another lambda, the procedure needs no closure: the frontend emits its
body as a loop header block of the function it appears in, each call is a jump to the header,
and the loop's free variables are the enclosing function's own values.
"""

from __future__ import annotations

from eshkol.core import ast as A


def loop_lambda(node: A.Letrec) -> A.Lambda | None:
    """The lambda of a letrec that is a loop (see the module doc), else None."""
    if len(node.vars) != 1 or not isinstance(node.inits[0], A.Lambda):
        return None
    var, lam = node.vars[0], node.inits[0]
    if var.assigned or lam.opt or lam.rest is not None:
        return None
    n = len(lam.req)
    if _tail_calls_only(lam.body, var, n, True) and _tail_calls_only(node.body, var, n, True):
        return lam
    return None


def _tail_calls_only(node: A.Node, var: A.Var, nargs: int, tail: bool) -> bool:
    """Whether every use of ``var`` in ``node`` is a call with ``nargs`` arguments in tail
    position (``tail``: whether ``node`` itself is)."""
    if isinstance(node, A.LRef):
        return node.var is not var
    if isinstance(node, (A.Const, A.GRef, A.PrimRef)):
        return True
    if isinstance(node, A.Call):
        args_ok = all(_tail_calls_only(a, var, nargs, False) for a in node.args)
        if isinstance(node.fn, A.LRef) and node.fn.var is var:
            return tail and len(node.args) == nargs and args_ok
        return args_ok and _tail_calls_only(node.fn, var, nargs, False)
    if isinstance(node, A.Prim):
        return all(_tail_calls_only(a, var, nargs, False) for a in node.args)
    if isinstance(node, A.If):
        return (_tail_calls_only(node.test, var, nargs, False)
                and _tail_calls_only(node.then, var, nargs, tail)
                and _tail_calls_only(node.else_, var, nargs, tail))
    if isinstance(node, A.Seq):
        return (all(_tail_calls_only(x, var, nargs, False) for x in node.body[:-1])
                and _tail_calls_only(node.body[-1], var, nargs, tail))
    if isinstance(node, (A.Let, A.Letrec)):
        return (all(_tail_calls_only(i, var, nargs, False) for i in node.inits)
                and _tail_calls_only(node.body, var, nargs, tail))
    if isinstance(node, A.Lambda):  # a call from another procedure is not a jump
        return (_tail_calls_only(node.body, var, nargs, False)
                and all(_tail_calls_only(d, var, nargs, False) for _, d in node.opt))
    if isinstance(node, A.LSet):
        return node.var is not var and _tail_calls_only(node.value, var, nargs, False)
    if isinstance(node, A.GSet):
        return _tail_calls_only(node.value, var, nargs, False)
    return False
