"""``syntax-rules`` transformers: pattern matching and template transcription on syntax objects.

Complete R7RS syntax-rules: literals, ``_``, nested ellipses, an ellipsis after any pattern
element (followed by more elements and a dotted tail), dotted and vector patterns, a custom
ellipsis ``(syntax-rules ::: (lits) ...)``, ``(... ...)`` escapes in templates, and templates
with several ellipses in a row (``x ... ...`` flattens). Hygiene: every identifier the template
introduces gets the expansion's introduction scope; pattern variables are replaced by the
use-site syntax unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from eshkol.syntax.datum import SList, SVector, Symbol, Syntax, syntax_to_datum
from eshkol.syntax.diagnostics import EshkolError, Loc

# Patterns:  ("var", name) ("any",) ("lit", id) ("const", datum)
#            ("list", before, ell, after, tail)   ell: pattern or None; tail: pattern or None
#            ("vec", before, ell, after)
# Templates: ("var", name) ("id", syntax) ("const", syntax)
#            ("list", [(template, n_ellipses)], tail) ("vec", [(template, n_ellipses)])


_plus_memo: dict[tuple[frozenset, int], frozenset] = {}


def _plus(scopes: frozenset, sc: int) -> frozenset:
    key = (scopes, sc)
    r = _plus_memo.get(key)
    if r is None:
        if len(_plus_memo) > 100_000:
            _plus_memo.clear()
        r = _plus_memo[key] = scopes | {sc}
    return r


class _Multi(list):
    """The matches of a pattern variable under an ellipsis (one per repetition)."""


def _flat(s: Syntax) -> tuple[list[Syntax], Syntax | None]:
    """Items and tail of a list syntax, with ``(a . (b c))`` normalised to ``(a b c)``."""
    items = list(s.e.items)
    tail = s.e.tail
    while tail is not None and isinstance(tail.e, SList):
        items.extend(tail.e.items)
        tail = tail.e.tail
    return items, tail


def _same_const(a: Any, b: Any) -> bool:
    if type(a) is not type(b) and not (isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction))
                                      and type(a) is not bool and type(b) is not bool):
        return False
    return a == b


class SyntaxRules:
    """One syntax-rules transformer."""

    def __init__(self, spec: Syntax, name: str, def_loc: Loc,
                 literal_eq: Callable[[Syntax, Syntax], bool]) -> None:
        self.name = name
        self.def_loc = def_loc
        self.literal_eq = literal_eq
        items = spec.e.items if isinstance(spec.e, SList) and spec.e.tail is None else None
        if items is None or len(items) < 2:
            raise EshkolError(spec.loc, "bad syntax: (syntax-rules (literal ...) (pattern template) ...)")
        rest = items[1:]
        self.ellipsis = "..."
        if isinstance(rest[0].e, Symbol):  # custom ellipsis
            self.ellipsis = rest[0].e.name
            rest = rest[1:]
        if not rest or not isinstance(rest[0].e, SList) or rest[0].e.tail is not None:
            raise EshkolError(spec.loc, "bad syntax: syntax-rules needs a list of literals")
        self.literals: dict[str, Syntax] = {}
        for lit in rest[0].e.items:
            if not isinstance(lit.e, Symbol):
                raise EshkolError(lit.loc, "bad syntax: a syntax-rules literal must be an identifier")
            self.literals[lit.e.name] = lit
        self.rules: list[tuple[tuple, tuple, Syntax]] = []
        for rule in rest[1:]:
            if not isinstance(rule.e, SList) or rule.e.tail is not None or len(rule.e.items) != 2:
                raise EshkolError(rule.loc, "bad syntax: a syntax-rules rule is (pattern template)")
            pat_s, tmpl_s = rule.e.items
            depths: dict[str, int] = {}
            if isinstance(pat_s.e, SList):  # the keyword position is ignored
                items_, tail = _flat(pat_s)
                if not items_:
                    raise EshkolError(pat_s.loc, "bad syntax: empty syntax-rules pattern")
                pat = self._list_pattern(pat_s, items_[1:], tail, 0, depths)
            else:
                pat = ("any",)
            tmpl = self._template(tmpl_s, depths, 0, True)
            self.rules.append((pat, tmpl, rule))

    # ---- patterns ---------------------------------------------------------------------------

    def _is_ell(self, s: Syntax) -> bool:
        return isinstance(s.e, Symbol) and s.e.name == self.ellipsis and self.ellipsis not in self.literals

    def _pattern(self, s: Syntax, depth: int, depths: dict[str, int]) -> tuple:
        e = s.e
        if isinstance(e, Symbol):
            n = e.name
            if n in self.literals:
                return ("lit", s)
            if self._is_ell(s):
                raise EshkolError(s.loc, f"bad ellipsis: '{n}' must follow a pattern element")
            if n == "_":
                return ("any",)
            if n in depths:
                raise EshkolError(s.loc, f"duplicate pattern variable '{n}' in macro '{self.name}'")
            depths[n] = depth
            return ("var", n)
        if isinstance(e, SList):
            items, tail = _flat(s)
            return self._list_pattern(s, items, tail, depth, depths)
        if isinstance(e, SVector):
            _, before, ell, after, _ = self._list_pattern(s, list(e.items), None, depth, depths)
            return ("vec", before, ell, after)
        return ("const", syntax_to_datum(s))

    def _list_pattern(self, s: Syntax, items: list[Syntax], tail: Syntax | None, depth: int,
                      depths: dict[str, int]) -> tuple:
        before: list[tuple] = []
        after: list[tuple] = []
        ell = None
        i = 0
        while i < len(items):
            x = items[i]
            if i + 1 < len(items) and self._is_ell(items[i + 1]):
                if ell is not None:
                    raise EshkolError(items[i + 1].loc, "bad ellipsis: more than one ellipsis in a list pattern")
                ell = self._pattern(x, depth + 1, depths)
                i += 2
                continue
            (after if ell is not None else before).append(self._pattern(x, depth, depths))
            i += 1
        if tail is not None and self._is_ell(tail):
            raise EshkolError(tail.loc, "bad ellipsis: '...' cannot be a dotted tail")
        tp = self._pattern(tail, depth, depths) if tail is not None else None
        return ("list", before, ell, after, tp)

    def match(self, p: tuple, s: Syntax, b: dict[str, Any]) -> bool:
        kind = p[0]
        if kind == "var":
            b[p[1]] = s
            return True
        if kind == "any":
            return True
        if kind == "lit":
            return isinstance(s.e, Symbol) and self.literal_eq(s, p[1])
        if kind == "const":
            return not isinstance(s.e, (SList, SVector, Symbol)) and _same_const(syntax_to_datum(s), p[1])
        if kind == "list":
            if not isinstance(s.e, SList):
                return False
            items, tail = _flat(s)
            return self._match_seq(p[1], p[2], p[3], p[4], items, tail, s, b)
        if kind == "vec":
            if not isinstance(s.e, SVector):
                return False
            return self._match_seq(p[1], p[2], p[3], None, list(s.e.items), None, s, b)
        raise AssertionError(kind)

    def _match_seq(self, before, ell, after, tp, items, tail, s, b) -> bool:
        nb, na = len(before), len(after)
        if len(items) < nb + na:
            return False
        if ell is None and tp is None and (len(items) != nb + na or tail is not None):
            return False
        for p, x in zip(before, items, strict=False):
            if not self.match(p, x, b):
                return False
        if ell is not None:
            rest_end = len(items) - na
            reps = items[nb:rest_end]
            subs = []
            for x in reps:
                sb: dict[str, Any] = {}
                if not self.match(ell, x, sb):
                    return False
                subs.append(sb)
            for v in self._vars(ell):
                b[v] = _Multi(sb[v] for sb in subs)
            for p, x in zip(after, items[rest_end:], strict=False):
                if not self.match(p, x, b):
                    return False
            if tp is None:
                return tail is None
            return self.match(tp, tail if tail is not None else Syntax(SList([]), s.loc, s.scopes), b)
        # no ellipsis: `after` is empty; a tail pattern takes what is left
        if tp is None:
            return True
        rest = items[nb:]
        if rest:
            rest_s = Syntax(SList(rest, tail), rest[0].loc, s.scopes)
        else:
            rest_s = tail if tail is not None else Syntax(SList([]), s.loc, s.scopes)
        return self.match(tp, rest_s, b)

    def _vars(self, p: tuple) -> list[str]:
        kind = p[0]
        if kind == "var":
            return [p[1]]
        if kind == "list":
            out = [v for x in p[1] for v in self._vars(x)]
            if p[2] is not None:
                out += self._vars(p[2])
            out += [v for x in p[3] for v in self._vars(x)]
            if p[4] is not None:
                out += self._vars(p[4])
            return out
        if kind == "vec":
            out = [v for x in p[1] for v in self._vars(x)]
            if p[2] is not None:
                out += self._vars(p[2])
            return out + [v for x in p[3] for v in self._vars(x)]
        return []

    # ---- templates --------------------------------------------------------------------------

    def _template(self, s: Syntax, depths: dict[str, int], depth: int, ell_on: bool) -> tuple:
        e = s.e
        if isinstance(e, Symbol):
            n = e.name
            if n in depths:
                if depths[n] > depth:
                    raise EshkolError(s.loc, f"bad ellipsis depth: pattern variable '{n}' needs "
                                             f"{depths[n]} ellipsis(es) in the template of macro "
                                             f"'{self.name}', has {depth}")
                return ("var", n)
            if ell_on and n == self.ellipsis:
                raise EshkolError(s.loc, f"bad ellipsis: '{n}' in a template must follow an element")
            return ("id", s)
        if isinstance(e, SList):
            items, tail = _flat(s)
            if ell_on and items and isinstance(items[0].e, Symbol) and items[0].e.name == self.ellipsis:
                # (... template): the ellipsis is literal inside
                if len(items) != 2 or tail is not None:
                    raise EshkolError(s.loc, "bad ellipsis escape: expected (... template)")
                return self._template(items[1], depths, depth, False)
            elems = self._elems(items, depths, depth, ell_on, s)
            if tail is not None and ell_on and isinstance(tail.e, Symbol) and tail.e.name == self.ellipsis:
                raise EshkolError(tail.loc, "bad ellipsis: '...' cannot be a dotted tail")
            tt = self._template(tail, depths, depth, ell_on) if tail is not None else None
            return ("list", elems, tt, s)
        if isinstance(e, SVector):
            return ("vec", self._elems(list(e.items), depths, depth, ell_on, s), s)
        return ("const", s)

    def _elems(self, items, depths, depth, ell_on, s) -> list[tuple[tuple, int]]:
        out: list[tuple[tuple, int]] = []
        i = 0
        while i < len(items):
            x = items[i]
            k = 0
            while ell_on and i + 1 + k < len(items) and isinstance(items[i + 1 + k].e, Symbol) \
                    and items[i + 1 + k].e.name == self.ellipsis:
                k += 1
            t = self._template(x, depths, depth + k, ell_on)
            if k:
                vs = [v for v in self._tvars(t) if depths[v] > depth]
                if not vs:
                    raise EshkolError(items[i + 1].loc, f"bad ellipsis: no pattern variable with an "
                                                        f"ellipsis before '{self.ellipsis}' in macro '{self.name}'")
            out.append((t, k))
            i += 1 + k
        return out

    def _tvars(self, t: tuple) -> list[str]:
        kind = t[0]
        if kind == "var":
            return [t[1]]
        if kind == "list":
            out = [v for x, _ in t[1] for v in self._tvars(x)]
            return out + (self._tvars(t[2]) if t[2] is not None else [])
        if kind == "vec":
            return [v for x, _ in t[1] for v in self._tvars(x)]
        return []

    def transcribe(self, t: tuple, b: dict[str, Any], intro: int, use: Syntax) -> Syntax:
        kind = t[0]
        if kind == "var":
            v = b[t[1]]
            if isinstance(v, _Multi):
                raise EshkolError(use.loc, f"bad ellipsis depth: pattern variable '{t[1]}' of macro "
                                           f"'{self.name}' used without enough ellipses")
            return v
        if kind == "id":
            s = t[1]
            return Syntax(s.e, s.loc, _plus(s.scopes, intro))
        if kind == "const":
            return t[1]
        if kind == "list":
            items = self._seq(t[1], b, intro, use)
            tail = self.transcribe(t[2], b, intro, use) if t[2] is not None else None
            if tail is not None and isinstance(tail.e, SList):  # (a ... . rest) with rest a list
                items = items + list(tail.e.items)
                tail = tail.e.tail
            src = t[3]
            return Syntax(SList(items, tail), src.loc, _plus(src.scopes, intro))
        if kind == "vec":
            src = t[2]
            return Syntax(SVector(self._seq(t[1], b, intro, use)), src.loc, _plus(src.scopes, intro))
        raise AssertionError(kind)

    def _seq(self, elems, b, intro, use) -> list[Syntax]:
        out: list[Syntax] = []
        for t, k in elems:
            if k == 0:
                out.append(self.transcribe(t, b, intro, use))
            else:
                out.extend(self._repeat(t, k, b, intro, use))
        return out

    def _repeat(self, t: tuple, k: int, b: dict[str, Any], intro: int, use: Syntax) -> list[Syntax]:
        if k == 0:
            return [self.transcribe(t, b, intro, use)]
        vs = [v for v in dict.fromkeys(self._tvars(t)) if isinstance(b.get(v), _Multi)]
        if not vs:
            raise EshkolError(use.loc, f"bad ellipsis depth in the template of macro '{self.name}'")
        n = len(b[vs[0]])
        for v in vs[1:]:
            if len(b[v]) != n:
                raise EshkolError(use.loc, f"macro '{self.name}' (defined at {self.def_loc}): pattern "
                                           f"variables '{vs[0]}' and '{v}' matched sequences of "
                                           f"different lengths ({n} and {len(b[v])})")
        out: list[Syntax] = []
        for i in range(n):
            b2 = dict(b)
            for v in vs:
                b2[v] = b[v][i]
            out.extend(self._repeat(t, k - 1, b2, intro, use))
        return out

    # ---- use --------------------------------------------------------------------------------

    def expand(self, use: Syntax, intro: int) -> Syntax:
        """The expansion of ``use`` (a form headed by this macro's keyword)."""
        if isinstance(use.e, SList):
            items, tail = _flat(use)
            for pat, tmpl, _ in self.rules:
                b: dict[str, Any] = {}
                if pat[0] == "any" or self._match_seq(pat[1], pat[2], pat[3], pat[4], items[1:], tail, use, b):
                    return self.transcribe(tmpl, b, intro, use)
        raise EshkolError(use.loc, f"no rule of macro '{self.name}' (defined at {self.def_loc}) "
                                   f"matches this use")
