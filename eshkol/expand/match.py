"""``match`` and ``let-match`` (Eshkol v1.x pattern matching), rewritten to core syntax.

Patterns: ``_`` (anything), an identifier (binds), a literal (number, string, char, boolean,
``'datum``: compared with ``equal?``), ``()``, ``(list p ...)`` (a list of exactly those
elements, an optional ``. rest`` pattern or a final ``p ...`` matching the remaining
elements as a list), ``(cons p q)``, ``(? pred)`` and ``(? pred p)`` (pred holds; then p
matches the same value), ``(and p ...)``, ``(or p ...)`` (no bindings), ``(not p)``,
``(vector p ...)``, and ``(quasiquote ...)`` templates of constants. A plain parenthesised
list of patterns ``(p ...)`` is a list pattern too.

Each clause becomes a test whose failure calls the next clause's thunk, so the code is
linear in the size of the patterns. ``match`` with no matching clause yields the
unspecified value; ``let-match`` raises an error.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from eshkol.expand.scopes import core_id
from eshkol.syntax.datum import Char, SList, Symbol, Syntax
from eshkol.syntax.diagnostics import EshkolError

Mk = Callable[..., Syntax]


class MatchCompiler:
    """Builds the syntax of one match: ``mk(at, *items)`` makes a list form, ``tmp(name,
    at)`` a fresh hygienic identifier, ``is_kw(s, name)`` tests an auxiliary keyword."""

    def __init__(self, mk: Mk, tmp: Callable[[str, Syntax], Syntax],
                 is_kw: Callable[[Syntax, str], bool]) -> None:
        self.mk, self.tmp, self.is_kw = mk, tmp, is_kw

    def core(self, name: str, at: Syntax) -> Syntax:
        return core_id(name, at)

    def call(self, at: Syntax, fn: str, *args: Syntax) -> Syntax:
        return self.mk(at, self.core(fn, at), *args)

    def let1(self, at: Syntax, var: Syntax, init: Syntax, body: Syntax) -> Syntax:
        return self.mk(at, self.core("let", at), self.mk(at, self.mk(at, var, init)), body)

    def if_(self, at: Syntax, test: Syntax, yes: Syntax, no: Syntax) -> Syntax:
        return self.mk(at, self.core("if", at), test, yes, no)

    # ---- patterns --------------------------------------------------------------------------

    def pattern(self, p: Syntax, v: Syntax, ok: Syntax, fail: Syntax) -> Syntax:
        """Syntax that runs ``ok`` with the pattern's variables bound when the value of the
        identifier ``v`` matches ``p``, else ``fail`` (a small expression: a thunk call)."""
        e = p.e
        if isinstance(e, Symbol):
            if e.name == "_" or self.is_kw(p, "_"):
                return ok
            if e.name == "...":
                raise EshkolError(p.loc, "bad pattern: misplaced '...'")
            return self.let1(p, p, v, ok)
        if isinstance(e, (bool, int, float, str, Char, Fraction)):
            return self.if_(p, self.call(p, "equal?", v, p), ok, fail)
        if isinstance(e, SList):
            if not e.items:
                if e.tail is not None:
                    return self.pattern(e.tail, v, ok, fail)
                return self.if_(p, self.call(p, "null?", v), ok, fail)
            head = e.items[0]
            hn = head.e.name if isinstance(head.e, Symbol) else None
            args = e.items[1:]
            if hn == "quote" and len(args) == 1:
                return self.if_(p, self.call(p, "equal?", v, p), ok, fail)
            if hn == "quasiquote" and len(args) == 1:
                return self.if_(p, self.call(p, "equal?", v, p), ok, fail)
            if hn == "list" and e.tail is None:
                return self.list_pattern(p, args, None, v, ok, fail)
            if hn == "cons" and len(args) == 2 and e.tail is None:
                return self.list_pattern(p, [args[0]], args[1], v, ok, fail)
            if hn in ("list*", "cons*") and args and e.tail is None:
                return self.list_pattern(p, args[:-1], args[-1], v, ok, fail)
            if hn == "?" and args and e.tail is None:
                inner = ok
                for q in reversed(args[1:]):
                    inner = self.pattern(q, v, inner, fail)
                return self.if_(p, self.mk(p, args[0], v), inner, fail)
            if hn == "and" and e.tail is None:
                inner = ok
                for q in reversed(args):
                    inner = self.pattern(q, v, inner, fail)
                return inner
            if hn == "or" and e.tail is None:
                t = Syntax(True, p.loc)
                test = Syntax(False, p.loc)
                for q in reversed(args):
                    test = self.if_(q, self.pattern(q, v, t, Syntax(False, q.loc)), t, test)
                return self.if_(p, test, ok, fail)
            if hn == "not" and len(args) == 1 and e.tail is None:
                t = Syntax(True, p.loc)
                return self.if_(p, self.pattern(args[0], v, t, Syntax(False, p.loc)), fail, ok)
            if hn == "vector" and e.tail is None:
                lst = self.tmp("vlist", p)
                body = self.list_pattern(p, args, None, lst, ok, fail)
                return self.if_(p, self.call(p, "vector?", v),
                                self.let1(p, lst, self.call(p, "vector->list", v), body), fail)
            # (p ...): a list pattern without the `list` keyword
            return self.list_pattern(p, e.items, e.tail, v, ok, fail)
        raise EshkolError(p.loc, "bad pattern")

    def list_pattern(self, at: Syntax, items: list[Syntax], tail: Syntax | None, v: Syntax,
                     ok: Syntax, fail: Syntax) -> Syntax:
        """Elements ``items`` then ``tail`` (None: the empty list)."""
        if not items:
            if tail is None:
                return self.if_(at, self.call(at, "null?", v), ok, fail)
            return self.pattern(tail, v, ok, fail)
        if len(items) == 2 and tail is None and isinstance(items[1].e, Symbol) and items[1].e.name == "...":
            return self.ellipsis(at, items[0], v, ok, fail)
        a, d = self.tmp("car", at), self.tmp("cdr", at)
        rest = self.list_pattern(at, items[1:], tail, d, ok, fail)
        inner = self.pattern(items[0], a, rest, fail)
        return self.if_(at, self.call(at, "pair?", v),
                        self.let1(at, a, self.call(at, "car", v),
                                  self.let1(at, d, self.call(at, "cdr", v), inner)),
                        fail)

    def ellipsis(self, at: Syntax, p: Syntax, v: Syntax, ok: Syntax, fail: Syntax) -> Syntax:
        """``p ...`` at the end of a list: every element matches ``p``; a variable pattern
        binds the whole list, ``_`` accepts any list, others only test."""
        if isinstance(p.e, Symbol) and p.e.name != "_":
            return self.if_(at, self.call(at, "list?", v), self.let1(at, p, v, ok), fail)
        x, loop, lst = self.tmp("x", at), self.tmp("loop", at), self.tmp("l", at)
        t, f = Syntax(True, at.loc), Syntax(False, at.loc)
        # (let loop ((l v)) (if (null? l) #t (let ((x (car l))) <p: (loop (cdr l)) / #f>)))
        again = self.mk(at, loop, self.call(at, "cdr", lst))
        step = self.let1(at, x, self.call(at, "car", lst), self.pattern(p, x, again, f))
        walk = self.mk(at, self.core("let", at), loop, self.mk(at, self.mk(at, lst, v)),
                       self.if_(at, self.call(at, "null?", lst), t, step))
        test = self.mk(at, self.core("and", at), self.call(at, "list?", v), walk)
        return self.if_(at, test, ok, fail)

    # ---- forms ------------------------------------------------------------------------------

    def match(self, s: Syntax, subject: Syntax, clauses: list[Syntax], on_fail: Syntax) -> Syntax:
        """(let ((v subject)) (let ((f1 (lambda () <clause 2...>))) <clause 1 or (f1)>))."""
        v = self.tmp("subject", s)
        node = on_fail
        for c in reversed(clauses):
            if not (isinstance(c.e, SList) and c.e.tail is None and len(c.e.items) >= 2):
                raise EshkolError(c.loc, "bad syntax: match clause is (pattern body ...)")
            pat, body = c.e.items[0], c.e.items[1:]
            fk = self.tmp("next", c)
            fail = self.mk(c, fk)
            ok = self.mk(c, self.core("let", c), self.mk(c), *body)
            test = self.pattern(pat, v, ok, fail)
            thunk = self.mk(c, self.core("lambda", c), self.mk(c), node)
            node = self.let1(c, fk, thunk, test)
        return self.let1(s, v, subject, node)

    def let_match(self, s: Syntax, bindings: list[Syntax], body: list[Syntax]) -> Syntax:
        """Each (pattern expr) must match, else an error; the body sees every binding."""
        node = self.mk(s, self.core("let", s), self.mk(s), *body)
        for b in reversed(bindings):
            if not (isinstance(b.e, SList) and b.e.tail is None and len(b.e.items) == 2):
                raise EshkolError(b.loc, "bad syntax: let-match binding is (pattern expr)")
            pat, expr = b.e.items
            v = self.tmp("value", b)
            err = self.call(b, "error", Syntax("let-match: value does not match pattern", b.loc), v)
            node = self.let1(b, v, expr, self.pattern(pat, v, node, err))
        return node
