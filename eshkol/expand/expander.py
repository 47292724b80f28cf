"""The expander: syntax objects → core forms (eshkol.core.ast).

Hygiene follows the sets-of-scopes model (see ``scopes.py``): every binding form makes a scope
and adds it to its binders and region; every macro expansion adds a fresh introduction scope to
what the macro's template introduced. An identifier refers to the binding of its name whose
scope set is the largest subset of the identifier's own; with none, it is (in this order) a
global defined anywhere at top level, a core keyword, or a primitive; anything else is a
compile-time "unbound variable" error at its use. Identifiers with the ``CORE`` scope skip
user bindings and mean the keyword or builtin.

Handles the core special forms, the derived forms of LANGUAGE.md that are not macros (let*,
letrec, named let, cond, case, when, unless, and, or, do, quasiquote, internal defines,
optional parameters) and macros: ``define-syntax``/``let-syntax``/``letrec-syntax`` with
``syntax-rules`` (``syntax_rules.py``) and procedural ``defmacro``/``define-macro`` whose
bodies run at expansion time in the core-form interpreter (``interp.py``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from eshkol.core import ast as A
from eshkol.dialect.primitives import PRIMITIVES, Primitive
from eshkol.expand import syntax_rules as SR
from eshkol.expand import tensor_literal
from eshkol.expand.compat import is_keyword as compat_is_keyword
from eshkol.expand.compat import keyword_formals as compat_keyword_formals
from eshkol.expand.compat import self_evaluating as compat_self_evaluating
from eshkol.expand.compat import strip_annotation as compat_strip_annotation
from eshkol.expand.interp import Closure, Interp, MacroError
from eshkol.expand.quasiquote import expand_quasiquote
from eshkol.expand.scopes import CORE, add_scope, add_scopes, core_id, fresh_scope
from eshkol.expand.syntax_rules import SyntaxRules
from eshkol.syntax.datum import (
    NIL,
    UNSPECIFIED,
    Char,
    Pair,
    SBytevector,
    SList,
    SVector,
    Symbol,
    Syntax,
    Vector,
    syntax_to_datum,
)
from eshkol.syntax.diagnostics import EshkolError, Loc

MAX_DEPTH = 1000            # nested macro expansions before we call it runaway
MAX_EXPANSIONS = 2_000_000  # macro expansions in one program


def _name(s: Syntax) -> str | None:
    return s.e.name if isinstance(s.e, Symbol) else None


def _items(s: Syntax, what: str) -> list[Syntax]:
    """The elements of a proper list, or a diagnostic naming ``what`` was expected."""
    if not isinstance(s.e, SList) or s.e.tail is not None:
        raise EshkolError(s.loc, f"bad syntax: expected {what}")
    return s.e.items


def _ident(s: Syntax, what: str = "an identifier") -> str:
    n = _name(s)
    if n is None:
        raise EshkolError(s.loc, f"bad syntax: expected {what}")
    return n


class Macro:
    """A macro binding: a syntax-rules transformer or a procedural macro (a closure)."""

    __slots__ = ("name", "def_loc", "rules", "proc")

    def __init__(self, name: str, def_loc: Loc, rules: SyntaxRules | None = None,
                 proc: Any = None) -> None:
        self.name = name
        self.def_loc = def_loc
        self.rules = rules
        self.proc = proc


class _Core:
    """Resolution result of a ``CORE`` identifier."""


CORE_REF = _Core()

# Keywords of macro definitions (special forms of their own).
_DEFINERS = ("define-syntax", "defmacro", "define-macro")


class Expander:
    """Expands one program (a list of top-level syntax objects) to an ``A.Program``."""

    def __init__(self, unbound_ok: bool = False,
                 imports: dict[str, tuple[str, int]] | None = None, internal: bool = False) -> None:
        self.globals: set[str] = set()
        self.internal = internal   # the compiler's own source: the '%' primitives are visible
        self.imports = imports or {}  # names exported by libraries: name -> (library, slot)
        self.used_imports: dict[str, tuple[str, int]] = {}
        # name -> [(scope set, binding)] (bindings: A.Var or Macro), innermost last
        self.table: dict[str, list[tuple[frozenset, Any]]] = {}
        self.trail: list[str] = []
        self.meta = False          # expanding a procedural macro's body (run at expansion time)
        self.unbound_ok = unbound_ok
        self.free: set[str] = set()  # unbound names (unbound_ok mode)
        self.intro: dict[int, tuple[Macro, Loc, int, Loc]] = {}  # intro scope -> macro, use, depth, root use
        self.expansions = 0
        self.interp: Interp | None = None
        self.special: dict[str, Callable[[Syntax, list[Syntax]], A.Node]] = {
            "quote": self._quote, "quasiquote": self._quasiquote, "if": self._if,
            "define": self._define_misplaced, "set!": self._set, "lambda": self._lambda,
            "begin": self._begin, "let": self._let, "let*": self._let_star,
            "letrec": self._letrec, "letrec*": self._letrec, "cond": self._cond,
            "case": self._case, "when": self._when, "unless": self._unless, "and": self._and,
            "or": self._or, "do": self._do, "unquote": self._stray_unquote,
            "unquote-splicing": self._stray_unquote,
            "define-syntax": self._define_misplaced, "defmacro": self._define_misplaced,
            "define-macro": self._define_misplaced, "let-syntax": self._let_syntax,
            "letrec-syntax": self._let_syntax, "syntax-rules": self._misused,
            # control (the runtime side is runtime_c/control.c)
            "guard": self._guard, "parameterize": self._parameterize, "delay": self._delay,
            "delay-force": self._delay,
            "with-device": self._with_device,  # GPU tensors (runtime_c/cuda_tensor.c)
            "let-values": self._let_values, "let*-values": self._let_star_values,
            "receive": self._receive, "assert": self._assert, "case-lambda": self._case_lambda,
            # Modules are resolved by the driver before expansion (their names arrive as
            # imports); the forms themselves do nothing at run time.
            "require": self._module_form, "import": self._module_form, "provide": self._module_form,
            # XLA (eshkol/passes/xla_outline.py)
            "with-xla-jit": self._with_xla_jit,
        }
        # Definition forms that rewrite to (begin (define ...) ...), so that they work at top
        # level and in bodies alike.
        self.rewriters: dict[str, Callable[[Syntax], Syntax]] = {
            "define-values": self._rw_define_values,
            "define-record-type": self._rw_define_record_type,
        }
        for _kw in self.rewriters:
            self.special[_kw] = self._rewritten
        from eshkol.expand import compat  # the v1.x forms (match, extern, include, ...)

        compat.install(self)

    # ---- bindings -----------------------------------------------------------------------

    def bind(self, ident: Syntax, b: Any) -> None:
        name = ident.e.name
        self.table.setdefault(name, []).append((ident.scopes, b))
        self.trail.append(name)

    def unwind(self, mark: int) -> None:
        """Drop the bindings made since ``len(self.trail)`` was ``mark``."""
        trail, table = self.trail, self.table
        while len(trail) > mark:
            table[trail.pop()].pop()

    def resolve(self, ident: Syntax) -> Any:
        """The binding ``ident`` refers to: an A.Var, a Macro, CORE_REF, or None (free)."""
        scopes = ident.scopes
        if CORE in scopes:
            return CORE_REF
        cands = self.table.get(ident.e.name)
        if not cands:
            return None
        best, size = None, -1
        for sc, b in cands:
            if len(sc) >= size and sc <= scopes:  # later bindings win among equals
                best, size = b, len(sc)
        return best

    def free_id_eq(self, a: Syntax, b: Syntax) -> bool:
        """free-identifier=?: both refer to the same binding (or are both free, same name)."""
        ra, rb = self.resolve(a), self.resolve(b)
        if ra is CORE_REF:
            ra = None
        if rb is CORE_REF:
            rb = None
        if ra is None and rb is None:
            return a.e.name == b.e.name
        return ra is rb

    def _is_kw(self, s: Syntax, name: str) -> bool:
        """Whether ``s`` is the auxiliary keyword ``name`` (else, =>) — not lexically rebound."""
        return _name(s) == name and not isinstance(self.resolve(s), (A.Var, Macro))

    # ---- entry --------------------------------------------------------------------------

    def program(self, forms: list[Syntax]) -> A.Program:
        """Expand top-level forms; defines anywhere at top level are visible everywhere."""
        queue = list(reversed(forms))
        items: list[tuple[str, Syntax]] = []
        while queue:
            f = self._partial(queue.pop())
            head = self._head(f)
            if head == "begin":
                queue.extend(reversed(f.e.items[1:]))
            elif head == "define":
                self.globals.add(_ident(self._define_target(f), "a name to define"))
                items.append(("define", f))
            elif head in _DEFINERS:
                self._define_macro(f, top=True)
            elif head in ("let-syntax", "letrec-syntax"):
                queue.extend(reversed(self._splice_let_syntax(f)))
            else:
                items.append(("expr", f))
        body: list[A.Node] = []
        for kind, f in items:
            if kind == "define":
                target, value = self._define_parts(f)
                body.append(A.GSet(f.loc, target.e.name, value, define=True))
            else:
                body.append(self.expr(f))
        top = [f for _, f in items]
        if "main" in self.globals and not any(self._calls_main(f) for f in top) \
                and not any(_takes_arguments(f) for f in top):
            body.append(self._run_main(top[-1].loc if top else forms[-1].loc))
        imports = {n: v for n, v in self.used_imports.items() if n not in self.globals}
        prog = A.Program(body, sorted(self.globals))
        prog.imports = imports
        return prog

    def _calls_main(self, f: Syntax) -> bool:
        """Whether top-level form ``f`` is a call of ``main``."""
        return isinstance(f.e, SList) and bool(f.e.items) and _name(f.e.items[0]) == "main"

    @staticmethod
    def _run_main(loc: Loc) -> A.Node:
        # v1.x programs define a zero-argument `main` and expect it to run after the top-level
        # forms; an exact integer result is the exit status.
        r = A.Var("result")
        ref = A.LRef(loc, r)
        is_status = A.If(loc, A.Prim(loc, "integer?", [ref]), A.Prim(loc, "exact?", [ref]), A.Const(loc, False))
        return A.Let(loc, [r], [A.Call(loc, A.GRef(loc, "main"), [])],
                     A.If(loc, is_status, A.Prim(loc, "exit", [ref]), A.Const(loc, UNSPECIFIED)))

    def _define_target(self, f: Syntax) -> Syntax:
        """The identifier a (top-level or internal) ``define`` binds."""
        items = _items(f, "(define name value)")
        if len(items) < 2:
            raise EshkolError(f.loc, "bad syntax: define needs a name")
        target = items[1]
        while isinstance(target.e, SList) and target.e.items:  # (define ((f a) b) ...)
            target = target.e.items[0]
        _ident(target, "a name to define")
        return target

    # ---- macros -------------------------------------------------------------------------

    def _head(self, s: Syntax) -> str | Macro | None:
        """The keyword (core form name) or macro heading ``s``, else None (an application)."""
        e = s.e
        if not isinstance(e, SList) or not e.items:
            return None
        h = e.items[0]
        if not isinstance(h.e, Symbol):
            return None
        b = self.resolve(h)
        if b is CORE_REF:
            return h.e.name if h.e.name in self.special else None
        if b is not None:
            return b if isinstance(b, Macro) else None
        n = h.e.name
        if n in self.globals and not self.meta:
            return None
        return n if n in self.special else None

    def _partial(self, s: Syntax) -> Syntax:
        """Expand macro uses heading ``s`` until it is a core form or an application."""
        while True:
            m = self._head(s)
            if isinstance(m, Macro):
                s = self._expand_macro(m, s)
            elif isinstance(m, str) and m in self.rewriters:
                s = self.rewriters[m](s)
            else:
                return s

    def _parent(self, s: Syntax) -> tuple[Macro, Loc, int, Loc] | None:
        """The innermost expansion that produced the macro use ``s``, if any."""
        best = None
        intro = self.intro
        for sc in s.scopes | s.e.items[0].scopes:
            info = intro.get(sc)
            if info is not None and (best is None or info[2] > best[2]):
                best = info
        return best

    def _expand_macro(self, m: Macro, s: Syntax) -> Syntax:
        parent = self._parent(s)
        depth = parent[2] + 1 if parent else 1
        root = parent[3] if parent else s.loc  # the use in the user's code
        self.expansions += 1
        if depth > MAX_DEPTH or self.expansions > MAX_EXPANSIONS:
            limit = f"{MAX_DEPTH} nested" if depth > MAX_DEPTH else f"{MAX_EXPANSIONS}"
            err = EshkolError(root, f"expansion of macro '{m.name}' (defined at {m.def_loc}) does "
                                    f"not terminate (more than {limit} expansions)")
            err.noted = True
            raise err
        intro = fresh_scope()
        self.intro[intro] = (m, s.loc, depth, root)
        if m.rules is not None:
            return m.rules.expand(s, intro)
        return self._run_procedural(m, s, intro)

    def _run_procedural(self, m: Macro, s: Syntax, intro: int) -> Syntax:
        items = _items(s, f"a call of macro '{m.name}'")
        orig: dict[int, Syntax] = {}
        args = [self._to_datum(x, orig) for x in items[1:]]
        assert self.interp is not None
        try:
            result = self.interp.apply(m.proc, args)
        except MacroError as e:
            raise EshkolError(s.loc, f"error in macro '{m.name}' (defined at {m.def_loc}): {e}") from None
        except RecursionError:
            raise EshkolError(s.loc, f"macro '{m.name}' (defined at {m.def_loc}): recursion too deep") from None
        ctx = items[0].scopes
        budget = [5_000_000]
        return self._from_datum(result, s.loc, ctx, intro, orig, budget)

    def _to_datum(self, s: Syntax, orig: dict[int, Syntax]) -> Any:
        d = syntax_to_datum(s)
        # remember which pairs came from which syntax, so unchanged argument structure keeps
        # its locations and scopes in the result
        stack = [(d, s)]
        while stack:
            x, sx = stack.pop()
            if isinstance(x, Pair) and isinstance(sx.e, SList):
                orig[id(x)] = sx
                for it in sx.e.items:
                    stack.append((x.car, it))
                    x = x.cdr
                    if not isinstance(x, Pair):
                        break
        return d

    def _from_datum(self, d: Any, loc: Loc, ctx: frozenset, intro: int, orig: dict[int, Syntax],
                    budget: list[int]) -> Syntax:
        budget[0] -= 1
        if budget[0] < 0:
            raise EshkolError(loc, "macro result is too large (or circular)")
        if isinstance(d, Pair):
            o = orig.get(id(d))
            if o is not None and syntax_to_datum(o) == d:
                return o
            items = []
            while isinstance(d, Pair):
                items.append(self._from_datum(d.car, loc, ctx, intro, orig, budget))
                d = d.cdr
                budget[0] -= 1
                if budget[0] < 0:
                    raise EshkolError(loc, "macro result is too large (or circular)")
            tail = None if d is NIL else self._from_datum(d, loc, ctx, intro, orig, budget)
            return Syntax(SList(items, tail), loc, ctx | {intro})
        if d is NIL:
            return Syntax(SList([]), loc, ctx)
        if isinstance(d, Vector):
            return Syntax(SVector([self._from_datum(x, loc, ctx, intro, orig, budget) for x in d.items]), loc, ctx)
        if isinstance(d, Symbol):
            return Syntax(d, loc, ctx)
        if isinstance(d, Closure) or callable(d):
            raise EshkolError(loc, "a macro returned a procedure, which is not syntax")
        return Syntax(d, loc)

    def _define_macro(self, f: Syntax, top: bool) -> None:
        """Process define-syntax / defmacro / define-macro: bind the macro now."""
        items = _items(f, "a macro definition")
        kw = _name(items[0])
        if kw == "define-syntax":
            if len(items) != 3:
                raise EshkolError(f.loc, "bad syntax: (define-syntax name transformer)")
            name_id = items[1]
            _ident(name_id, "a macro name")
            self.bind(name_id, self._transformer(items[2], name_id.e.name, f.loc))
            return
        if kw == "defmacro":  # (defmacro name (params...) body...)
            if len(items) < 4:
                raise EshkolError(f.loc, "bad syntax: (defmacro name (params...) body...)")
            name_id, params, body = items[1], items[2], items[3:]
        else:  # (define-macro (name . params) body...)  or (define-macro name (lambda ...))
            if len(items) < 3:
                raise EshkolError(f.loc, "bad syntax: (define-macro (name . params) body...)")
            if isinstance(items[1].e, SList) and items[1].e.items:
                name_id = items[1].e.items[0]
                params = Syntax(SList(items[1].e.items[1:], items[1].e.tail), items[1].loc, items[1].scopes)
                body = items[2:]
            else:
                name_id = items[1]
                if len(items) != 3:
                    raise EshkolError(f.loc, "bad syntax: (define-macro name procedure)")
                params, body = None, [items[2]]
        name = _ident(name_id, "a macro name")
        if self.interp is None:
            self.interp = Interp()
            load_prelude(self.interp)
        saved_meta, self.meta = self.meta, True
        try:
            if params is None:
                node = self.expr(body[0])
            else:
                node = self._make_lambda(f, params, body, name)
        finally:
            self.meta = saved_meta
        try:
            proc = self.interp.eval(node, {})
        except MacroError as e:
            raise EshkolError(f.loc, f"error in the definition of macro '{name}': {e}") from None
        if not (isinstance(proc, Closure) or callable(proc)):
            raise EshkolError(f.loc, f"macro '{name}': transformer is not a procedure")
        self.bind(name_id, Macro(name, f.loc, proc=proc))

    def _transformer(self, spec: Syntax, name: str, def_loc: Loc) -> Macro:
        spec = self._partial(spec)
        if isinstance(spec.e, Symbol):
            b = self.resolve(spec)
            if isinstance(b, Macro):
                return b
        head = self._head(spec)
        if head == "syntax-rules":
            return Macro(name, def_loc, rules=SyntaxRules(spec, name, def_loc, self.free_id_eq))
        raise EshkolError(spec.loc, f"bad syntax: the transformer of macro '{name}' must be a "
                                    f"syntax-rules form (use define-macro for procedural macros)")

    def _syntax_bindings(self, f: Syntax) -> tuple[list[tuple[Syntax, Syntax]], list[Syntax]]:
        items = _items(f, "(let-syntax ((name transformer) ...) body...)")
        if len(items) < 2:
            raise EshkolError(f.loc, f"bad syntax: ({_name(items[0])} ((name transformer) ...) body...)")
        return self._bindings(items[1]), items[2:]

    def _bind_syntax(self, f: Syntax, sc: int) -> list[Syntax]:
        """Bind a let-syntax/letrec-syntax form's macros in scope ``sc``; its body forms."""
        binds, body = self._syntax_bindings(f)
        rec = _name(f.e.items[0]) == "letrec-syntax"
        macros = []
        for n, spec in binds:
            macros.append((add_scope(n, sc), add_scope(spec, sc) if rec else spec))
        if rec:
            # bind first (placeholders), so the transformers can refer to each other
            for n, _ in macros:
                self.bind(n, Macro(n.e.name, f.loc))
            for n, spec in macros:
                m = self._transformer(spec, n.e.name, f.loc)
                ph = self.resolve(n)
                ph.rules, ph.proc = m.rules, m.proc
        else:
            made = [(n, self._transformer(spec, n.e.name, f.loc)) for n, spec in macros]
            for n, m in made:
                self.bind(n, m)
        return add_scopes(body, sc)

    def _splice_let_syntax(self, f: Syntax) -> list[Syntax]:
        return self._bind_syntax(f, fresh_scope())

    def _let_syntax(self, s: Syntax, items: list[Syntax]) -> A.Node:
        mark = len(self.trail)
        sc = fresh_scope()
        body = self._bind_syntax(s, sc)
        node = self.body(s, body, sc)
        self.unwind(mark)
        return node

    def _misused(self, s: Syntax, items: list[Syntax]) -> A.Node:
        raise EshkolError(s.loc, f"bad syntax: misuse of keyword '{_name(items[0])}'")

    def _note(self, e: EshkolError, s: Syntax) -> None:
        """Add to ``e`` which macro expansion produced ``s`` (innermost), once."""
        if getattr(e, "noted", False):
            return
        best = None
        scopes = s.scopes
        if isinstance(s.e, SList) and s.e.items:
            scopes = scopes | s.e.items[0].scopes
        for sc in scopes:
            info = self.intro.get(sc)
            if info is not None and (best is None or info[2] > best[2]):
                best = info
        if best is None:
            return
        m, _, _, use = best
        e.message += f" (in the expansion of macro '{m.name}' at {use}, defined at {m.def_loc})"
        e.args = (e.message,)
        e.noted = True

    # ---- expressions --------------------------------------------------------------------

    def expr(self, s: Syntax) -> A.Node:
        """Expand one expression."""
        try:
            while True:
                e = s.e
                if isinstance(e, Symbol):
                    return self._ref(s)
                if isinstance(e, SList):
                    if not e.items:
                        raise EshkolError(s.loc, "empty application ()")
                    if e.tail is not None:
                        raise EshkolError(s.loc, "bad syntax: dotted list in expression")
                    head = self._head(s)
                    if isinstance(head, Macro):
                        s = self._expand_macro(head, s)
                        continue
                    if head is not None:
                        return self.special[head](s, e.items)
                    return self._application(s, e.items)
                if isinstance(e, SVector):
                    return self._tensor_literal(s)
                if isinstance(e, SBytevector):
                    return A.Const(s.loc, syntax_to_datum(s))
                if isinstance(e, (bool, int, float, str, Char, Fraction)):
                    return A.Const(s.loc, e)
                raise EshkolError(s.loc, f"cannot evaluate {type(e).__name__}")
        except EshkolError as err:
            if self.intro:
                self._note(err, s)
            raise

    def _tensor_literal(self, s: Syntax) -> A.Node:
        """Unquoted #(...): a float64 tensor of the evaluated elements (tensor_literal.py)."""
        shape, elems = tensor_literal.shape_and_elements(s)
        dims = A.Const(s.loc, Vector(list(shape)))
        consts = [tensor_literal.constant_value(x) for x in elems]
        if all(c is not None for c in consts):
            return A.Prim(s.loc, "%tensor-const", [dims, A.Const(s.loc, Vector(consts))])
        return A.Prim(s.loc, "%tensor-literal", [dims] + [self.expr(x) for x in elems])

    def _ref(self, s: Syntax) -> A.Node:
        name = s.e.name
        b = self.resolve(s)
        if isinstance(b, A.Var):
            return A.LRef(s.loc, b)
        if isinstance(b, Macro):
            raise EshkolError(s.loc, f"bad syntax: macro '{name}' (defined at {b.def_loc}) used as a variable")
        if b is None and name in self.globals and not self.meta:
            return A.GRef(s.loc, name)
        if name in self.special:
            raise EshkolError(s.loc, f"bad syntax: keyword '{name}' used as a variable")
        if self.meta:
            return A.GRef(s.loc, name)
        p = PRIMITIVES.get(name)
        if p is not None and self._visible(name, b):
            return A.PrimRef(s.loc, name)
        if name in self.imports and b is None:
            self.used_imports[name] = self.imports[name]
            return A.GRef(s.loc, name)
        if b is None and compat_self_evaluating(name):  # #:keyword, ?logic-var
            return A.Const(s.loc, s.e)
        if self.unbound_ok:
            self.free.add(name)
            return A.GRef(s.loc, name)
        raise EshkolError(s.loc, f"unbound variable: {name}")

    def _visible(self, name: str, b: Any) -> bool:
        """Whether primitive ``name`` may be named here: the internal ones ('%' names) only
        by core identifiers macros introduce, and in the compiler's own source."""
        return not name.startswith("%") or name == "%" or b is CORE_REF or self.internal

    def _application(self, s: Syntax, items: list[Syntax]) -> A.Node:
        fn = items[0]
        args = [self.expr(a) for a in items[1:]]
        n = _name(fn)
        if n is not None and not self.meta:
            b = self.resolve(fn)
            if b is CORE_REF or (b is None and n not in self.globals):
                p = PRIMITIVES.get(n)
                if p is not None and self._visible(n, b):
                    return self._prim_call(s.loc, p, args)
        return A.Call(s.loc, self.expr(fn), args)

    def _prim_call(self, loc: Loc, p: Primitive, args: list[A.Node]) -> A.Node:
        """A direct primitive call, reduced to binary forms where the registry says how."""
        if not p.accepts(len(args)):
            raise EshkolError(loc, f"{p.name}: wrong number of arguments "
                                   f"(expected {p.arity_text()}, got {len(args)})")
        if p.nary is None or len(args) == 2 and p.binary is None:
            return A.Prim(loc, p.name, args)
        if p.nary == "assoc":
            if not args:
                return A.Const(loc, p.identity)
            if len(args) == 1:  # keep the type check: (+ x) is x only for numbers
                return A.Prim(loc, p.binary, [A.Const(loc, p.identity), args[0]])
            acc = args[0]
            for a in args[1:]:
                acc = A.Prim(loc, p.binary, [acc, a])
            return acc
        if p.nary == "left":
            if len(args) == 1:
                if p.unary is None:  # (max x): check it is a number by comparing with itself
                    return A.Prim(loc, p.binary, [args[0], args[0]])
                return A.Prim(loc, p.unary, args)
            acc = args[0]
            for a in args[1:]:
                acc = A.Prim(loc, p.binary, [acc, a])
            return acc
        # chain: (< a b c) → (let ((t1 a) (t2 b) (t3 c)) (and (< t1 t2) (< t2 t3)))
        if len(args) == 1:
            return A.Prim(loc, p.binary, [args[0], args[0]])
        if len(args) == 2:
            return A.Prim(loc, p.binary, args)
        temps = [A.Var(f"t{i}") for i in range(len(args))]
        test: A.Node = A.Prim(loc, p.binary, [A.LRef(loc, temps[-2]), A.LRef(loc, temps[-1])])
        for i in range(len(args) - 3, -1, -1):
            cmp = A.Prim(loc, p.binary, [A.LRef(loc, temps[i]), A.LRef(loc, temps[i + 1])])
            test = A.If(loc, cmp, test, A.Const(loc, False))
        return A.Let(loc, temps, args, test)

    # ---- special forms ------------------------------------------------------------------

    def _quote(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) != 2:
            raise EshkolError(s.loc, "bad syntax: (quote datum)")
        return A.Const(s.loc, syntax_to_datum(items[1]))

    def _quasiquote(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) != 2:
            raise EshkolError(s.loc, "bad syntax: (quasiquote template)")
        return self.expr(expand_quasiquote(items[1]))

    def _stray_unquote(self, s: Syntax, items: list[Syntax]) -> A.Node:
        raise EshkolError(s.loc, f"{_name(items[0])} outside quasiquote")

    def _if(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) not in (3, 4):
            raise EshkolError(s.loc, "bad syntax: (if test then [else])")
        els = self.expr(items[3]) if len(items) == 4 else A.Const(s.loc, UNSPECIFIED)
        return A.If(s.loc, self.expr(items[1]), self.expr(items[2]), els)

    def _set(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) != 3:
            raise EshkolError(s.loc, "bad syntax: (set! name value)")
        name = _ident(items[1])
        value = self.expr(items[2])
        b = self.resolve(items[1])
        if isinstance(b, A.Var):
            b.assigned = True
            return A.LSet(s.loc, b, value)
        if isinstance(b, Macro):
            raise EshkolError(items[1].loc, f"bad syntax: cannot set! the macro '{name}'")
        if self.meta:
            raise EshkolError(items[1].loc, f"cannot set! '{name}' at expansion time")
        if b is None and name in self.globals:
            return A.GSet(s.loc, name, value)
        if name in PRIMITIVES:
            raise EshkolError(items[1].loc, f"cannot set! the builtin '{name}'; define it first")
        if b is None and name in self.imports:
            raise EshkolError(items[1].loc, f"cannot set! the library procedure '{name}'; define it first")
        if name in self.special:
            raise EshkolError(items[1].loc, f"bad syntax: cannot set! the keyword '{name}'")
        raise EshkolError(items[1].loc, f"unbound variable: {name}")

    def _define_misplaced(self, s: Syntax, items: list[Syntax]) -> A.Node:
        raise EshkolError(s.loc, f"{_name(items[0])} is only allowed at top level or at the start of a body")

    def _define_parts(self, s: Syntax) -> tuple[Syntax, A.Node]:
        """(target identifier, value expression) of a define form; curried defines nest lambdas."""
        items = _items(s, "(define name value)")
        target = items[1]
        if isinstance(target.e, SList):
            # (define (f . params) body...) ≡ (define f (lambda params body...))
            body = items[2:]
            while True:
                head = target.e.items[0]
                params = Syntax(SList(target.e.items[1:], target.e.tail), target.loc, target.scopes)
                if isinstance(head.e, SList):
                    lam = Syntax(SList([core_id("lambda", s), params, *body]), s.loc, s.scopes)
                    body, target = [lam], head
                    continue
                name = _ident(head, "a procedure name")
                return head, self._make_lambda(s, params, body, name)
        _ident(target, "a name to define")
        if len(items) == 5 and _name(items[2]) == ":":  # (define name : type value)
            items = [items[0], items[1], items[4]]
        if len(items) == 2:
            return target, A.Const(s.loc, UNSPECIFIED)
        if len(items) != 3:
            raise EshkolError(s.loc, "bad syntax: (define name value)")
        value = self.expr(items[2])
        if isinstance(value, A.Lambda) and value.name is None:
            value.name = target.e.name
        return target, value

    def _lambda(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (lambda params body...)")
        return self._make_lambda(s, items[1], items[2:], None)

    def _make_lambda(self, s: Syntax, params: Syntax, body: list[Syntax], name: str | None,
                     sc: int | None = None) -> A.Lambda:
        """``sc``: the scope already added to ``params`` and ``body`` (else a fresh one is)."""
        if not body:
            raise EshkolError(s.loc, "bad syntax: empty body")
        body = compat_strip_annotation(body)  # (lambda (x) : type body ...)
        if isinstance(params.e, SList) and any(compat_is_keyword(p) for p in params.e.items):
            params, body = compat_keyword_formals(params, body, s, _tmp)
            if sc is not None:
                params = add_scope(params, sc)
        mark = len(self.trail)
        if sc is None:
            sc = fresh_scope()
            params = add_scope(params, sc)
            body = add_scopes(body, sc)
        seen: set[tuple[str, frozenset]] = set()
        req: list[A.Var] = []
        opt: list[tuple[A.Var, A.Node]] = []
        rest: A.Var | None = None

        def bind(p: Syntax) -> A.Var:
            n = _ident(p, "a parameter name")
            if (n, p.scopes) in seen:
                raise EshkolError(p.loc, f"duplicate parameter '{n}'")
            seen.add((n, p.scopes))
            v = A.Var(n)
            self.bind(p, v)
            return v

        if isinstance(params.e, Symbol):
            rest = bind(params)
        elif isinstance(params.e, SList):
            for p in params.e.items:
                if isinstance(p.e, SList):
                    parts = _items(p, "(name default)")
                    if len(parts) == 3 and _name(parts[1]) == ":":  # (x : Type) annotation
                        if opt:
                            raise EshkolError(p.loc, "required parameter after optional ones")
                        req.append(bind(parts[0]))
                        req[-1].annotation = _name(parts[2])  # a hint for specialization
                        continue
                    if len(parts) != 2:
                        raise EshkolError(p.loc, "bad syntax: optional parameter is (name default)")
                    # Defaults see the parameters before them.
                    _ident(parts[0], "a parameter name")
                    default = self.expr(parts[1])
                    opt.append((bind(parts[0]), default))
                else:
                    if opt:
                        raise EshkolError(p.loc, "required parameter after optional ones")
                    req.append(bind(p))
            if params.e.tail is not None:
                rest = bind(params.e.tail)
        else:
            raise EshkolError(params.loc, "bad syntax: expected a parameter list")
        lam_body = self.body(s, body, sc)
        self.unwind(mark)
        return A.Lambda(s.loc, req, opt, rest, lam_body, name)

    def body(self, s: Syntax, forms: list[Syntax], sc: int | None = None) -> A.Node:
        """A body: internal definitions (letrec* semantics) followed by expressions.

        ``sc`` is the scope of the body's region when the caller already added one."""
        mark = len(self.trail)
        if sc is None:
            sc = fresh_scope()
            forms = add_scopes(forms, sc)
        queue = list(reversed(forms))
        defs: list[tuple[A.Var, Syntax]] = []
        exprs: list[Syntax] = []
        while queue:
            f = self._partial(queue.pop())
            head = self._head(f)
            if head == "begin" and (len(f.e.items) > 1 or queue):  # (begin) splices to nothing
                queue.extend(reversed(f.e.items[1:]))
                continue
            if head == "define" or head in _DEFINERS or head in ("let-syntax", "letrec-syntax"):
                if exprs:
                    raise EshkolError(f.loc, f"{head} after expressions in a body")
                if head == "define":
                    target = self._define_target(f)
                    v = A.Var(target.e.name)
                    self.bind(target, v)
                    defs.append((v, f))
                elif head in _DEFINERS:
                    self._define_macro(f, top=False)
                else:
                    queue.extend(reversed(self._bind_syntax(f, fresh_scope())))
                continue
            exprs.append(f)
        if not exprs:
            raise EshkolError(s.loc, "bad syntax: body has no expression after its defines")
        if not defs:
            node = self._seq(s.loc, [self.expr(f) for f in exprs])
            self.unwind(mark)
            return node
        vars_, inits = [], []
        for v, d in defs:
            _, value = self._define_parts(d)
            vars_.append(v)
            inits.append(value)
        body = self._seq(s.loc, [self.expr(f) for f in exprs])
        self.unwind(mark)
        return A.Letrec(s.loc, vars_, inits, body)

    def _seq(self, loc: Loc, nodes: list[A.Node]) -> A.Node:
        return nodes[0] if len(nodes) == 1 else A.Seq(loc, nodes)

    def _module_form(self, s: Syntax, items: list[Syntax]) -> A.Node:
        return A.Const(s.loc, UNSPECIFIED)

    def _begin(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) == 1:
            return A.Const(s.loc, UNSPECIFIED)
        return self._seq(s.loc, [self.expr(f) for f in items[1:]])

    def _bindings(self, b: Syntax) -> list[tuple[Syntax, Syntax]]:
        out = []
        for pair in _items(b, "a list of bindings"):
            parts = _items(pair, "a binding (name value)")
            if len(parts) == 4 and _name(parts[1]) == ":":  # (name : type value)
                parts = [parts[0], parts[3]]
            if len(parts) != 2:
                raise EshkolError(pair.loc, "bad syntax: expected a binding (name value)")
            _ident(parts[0])
            out.append((parts[0], parts[1]))
        return out

    def _let(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) >= 2 and isinstance(items[1].e, Symbol):
            return self._named_let(s, items)
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (let ((name value) ...) body...)")
        binds = self._bindings(items[1])
        inits = [self.expr(v) for _, v in binds]
        mark = len(self.trail)
        sc = fresh_scope()
        seen: set[tuple[str, frozenset]] = set()
        vars_ = []
        for n, _ in binds:
            n = add_scope(n, sc)
            key = (n.e.name, n.scopes)
            if key in seen:
                raise EshkolError(n.loc, f"duplicate binding '{n.e.name}'")
            seen.add(key)
            v = A.Var(n.e.name)
            self.bind(n, v)
            vars_.append(v)
        node = A.Let(s.loc, vars_, inits, self.body(s, add_scopes(items[2:], sc), sc))
        self.unwind(mark)
        return node

    def _named_let(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (let loop ((v init) ...) body) ≡ ((letrec ((loop (lambda (v ...) body))) loop) init ...)
        if len(items) < 4:
            raise EshkolError(s.loc, "bad syntax: (let name ((var init) ...) body...)")
        binds = self._bindings(items[2])
        inits = [self.expr(v) for _, v in binds]
        mark = len(self.trail)
        sc = fresh_scope()
        name_id = add_scope(items[1], sc)
        loop = A.Var(name_id.e.name)
        self.bind(name_id, loop)
        params = Syntax(SList([add_scope(n, sc) for n, _ in binds]), items[2].loc)
        lam = self._make_lambda(s, params, add_scopes(items[3:], sc), name_id.e.name, sc)
        self.unwind(mark)
        return A.Letrec(s.loc, [loop], [lam], A.Call(s.loc, A.LRef(s.loc, loop), inits))

    def _let_star(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (let* ((name value) ...) body...)")
        binds = self._bindings(items[1])
        if not binds:
            return self.body(s, items[2:])
        mark = len(self.trail)
        vars_, inits = [], []
        body = items[2:]
        rest = binds
        while rest:
            (n, v), rest = rest[0], rest[1:]
            inits.append(self.expr(v))
            sc = fresh_scope()
            n = add_scope(n, sc)
            var = A.Var(n.e.name)
            self.bind(n, var)
            vars_.append(var)
            rest = [(add_scope(a, sc), add_scope(b, sc)) for a, b in rest]
            body = add_scopes(body, sc)
        node = self.body(s, body, sc)
        self.unwind(mark)
        for var, init in reversed(list(zip(vars_, inits, strict=False))):
            node = A.Let(s.loc, [var], [init], node)
        return node

    def _letrec(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (letrec ((name value) ...) body...)")
        binds = self._bindings(items[1])
        mark = len(self.trail)
        sc = fresh_scope()
        vars_ = []
        for n, _ in binds:
            n = add_scope(n, sc)
            v = A.Var(n.e.name)
            self.bind(n, v)
            vars_.append(v)
        inits = []
        for n, v in binds:
            init = self.expr(add_scope(v, sc))
            if isinstance(init, A.Lambda) and init.name is None:
                init.name = n.e.name
            inits.append(init)
        node = A.Letrec(s.loc, vars_, inits, self.body(s, add_scopes(items[2:], sc), sc))
        self.unwind(mark)
        return node

    def _cond(self, s: Syntax, items: list[Syntax]) -> A.Node:
        clauses = items[1:]
        node: A.Node = A.Const(s.loc, UNSPECIFIED)
        for i in range(len(clauses) - 1, -1, -1):
            c = clauses[i]
            parts = _items(c, "a cond clause (test expr...)")
            if not parts:
                raise EshkolError(c.loc, "bad syntax: empty cond clause")
            if self._is_kw(parts[0], "else"):
                if i != len(clauses) - 1:
                    raise EshkolError(c.loc, "else clause must be last in cond")
                node = self._seq(c.loc, [self.expr(x) for x in parts[1:]]) if len(parts) > 1 \
                    else A.Const(c.loc, UNSPECIFIED)
                continue
            test = self.expr(parts[0])
            if len(parts) == 3 and self._is_kw(parts[1], "=>"):
                t = A.Var("t")
                call = A.Call(c.loc, self.expr(parts[2]), [A.LRef(c.loc, t)])
                node = A.Let(c.loc, [t], [test], A.If(c.loc, A.LRef(c.loc, t), call, node))
            elif len(parts) == 1:
                t = A.Var("t")
                node = A.Let(c.loc, [t], [test], A.If(c.loc, A.LRef(c.loc, t), A.LRef(c.loc, t), node))
            else:
                node = A.If(c.loc, test, self._seq(c.loc, [self.expr(x) for x in parts[1:]]), node)
        return node

    def _case(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) < 2:
            raise EshkolError(s.loc, "bad syntax: (case key clause...)")
        key = A.Var("key")
        node: A.Node = A.Const(s.loc, UNSPECIFIED)
        clauses = items[2:]
        for i in range(len(clauses) - 1, -1, -1):
            c = clauses[i]
            parts = _items(c, "a case clause ((datum...) expr...)")
            if len(parts) < 2:
                raise EshkolError(c.loc, "bad syntax: case clause needs expressions")
            if len(parts) == 3 and self._is_kw(parts[1], "=>"):
                result = A.Call(c.loc, self.expr(parts[2]), [A.LRef(c.loc, key)])
            else:
                result = self._seq(c.loc, [self.expr(x) for x in parts[1:]])
            if self._is_kw(parts[0], "else"):
                node = result
                continue
            data = [syntax_to_datum(d) for d in _items(parts[0], "a list of datums")]
            test: A.Node = A.Const(c.loc, False)
            for d in reversed(data):
                test = A.If(c.loc, A.Prim(c.loc, "eqv?", [A.LRef(c.loc, key), A.Const(c.loc, d)]),
                            A.Const(c.loc, True), test)
            node = A.If(c.loc, test, result, node)
        return A.Let(s.loc, [key], [self.expr(items[1])], node)

    def _when(self, s: Syntax, items: list[Syntax]) -> A.Node:
        return self._when_unless(s, items, True)

    def _unless(self, s: Syntax, items: list[Syntax]) -> A.Node:
        return self._when_unless(s, items, False)

    def _when_unless(self, s: Syntax, items: list[Syntax], when: bool) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, f"bad syntax: ({_name(items[0])} test body...)")
        body = self._seq(s.loc, [self.expr(x) for x in items[2:]])
        void = A.Const(s.loc, UNSPECIFIED)
        test = self.expr(items[1])
        return A.If(s.loc, test, body, void) if when else A.If(s.loc, test, void, body)

    def _and(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) == 1:
            return A.Const(s.loc, True)
        node = self.expr(items[-1])
        for x in reversed(items[1:-1]):
            node = A.If(s.loc, self.expr(x), node, A.Const(s.loc, False))
        return node

    def _or(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) == 1:
            return A.Const(s.loc, False)
        node = self.expr(items[-1])
        for x in reversed(items[1:-1]):
            t = A.Var("t")
            node = A.Let(s.loc, [t], [self.expr(x)],
                         A.If(s.loc, A.LRef(s.loc, t), A.LRef(s.loc, t), node))
        return node

    def _do(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (do ((v init step)...) (test res...) body...) → named-let loop
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (do ((var init step) ...) (test expr...) body...)")
        specs = []
        for spec in _items(items[1], "a list of (var init [step])"):
            parts = _items(spec, "(var init [step])")
            if len(parts) not in (2, 3):
                raise EshkolError(spec.loc, "bad syntax: (var init [step])")
            _ident(parts[0])
            specs.append((parts[0], parts[1], parts[2] if len(parts) == 3 else parts[0]))
        exit_parts = _items(items[2], "(test expr...)")
        if not exit_parts:
            raise EshkolError(items[2].loc, "bad syntax: do needs a test")
        inits = [self.expr(init) for _, init, _ in specs]
        mark = len(self.trail)
        sc = fresh_scope()
        loop = A.Var("do-loop")
        params = []
        for v, _, _ in specs:
            v = add_scope(v, sc)
            var = A.Var(v.e.name)
            self.bind(v, var)
            params.append(var)
        test = self.expr(add_scope(exit_parts[0], sc))
        result = self._seq(s.loc, [self.expr(add_scope(x, sc)) for x in exit_parts[1:]]) \
            if len(exit_parts) > 1 else A.Const(s.loc, UNSPECIFIED)
        again = A.Call(s.loc, A.LRef(s.loc, loop), [self.expr(add_scope(st, sc)) for _, _, st in specs])
        body_nodes = [self.expr(add_scope(x, sc)) for x in items[3:]]
        self.unwind(mark)
        loop_body = A.If(s.loc, test, result, self._seq(s.loc, body_nodes + [again]))
        lam = A.Lambda(s.loc, params, [], None, loop_body, "do-loop")
        return A.Letrec(s.loc, [loop], [lam], A.Call(s.loc, A.LRef(s.loc, loop), inits))

    # ---- control forms ------------------------------------------------------------------
    # Each is rewritten to syntax built from core identifiers (which may name the internal
    # '%' primitives of runtime_c/control.c) and the user's own pieces, then expanded.

    def _rewritten(self, s: Syntax, items: list[Syntax]) -> A.Node:
        return self.expr(self.rewriters[_name(items[0])](s))

    def _guard(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (guard (var clause...) body...) →
        # (%with-guard (lambda () body...)
        #              (lambda (var cont?) (cond clause... (else (%reraise var cont?)))))
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (guard (var clause...) body...)")
        spec = _items(items[1], "(var clause...)")
        if not spec:
            raise EshkolError(items[1].loc, "bad syntax: guard needs a variable")
        var = spec[0]
        _ident(var, "a variable name")
        clauses = list(spec[1:])
        for c in clauses:
            if not _items(c, "a guard clause (test expr...)"):
                raise EshkolError(c.loc, "bad syntax: empty guard clause")
        cont = _tmp("continuable", s)
        if not clauses or not self._is_kw(clauses[-1].e.items[0], "else"):
            clauses.append(_mk(s, core_id("else", s), _mk(s, core_id("%reraise", s), var, cont)))
        body = _mk(s, core_id("lambda", s), _mk(s), *items[2:])
        handler = _mk(s, core_id("lambda", s), _mk(s, var, cont), _mk(s, core_id("cond", s), *clauses))
        return self.expr(_mk(s, core_id("%with-guard", s), body, handler))

    def _parameterize(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (parameterize ((p v) ...) body...) → (%parameterize (list p...) (list v...) (lambda () body...))
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (parameterize ((param value) ...) body...)")
        params, values = [], []
        for b in _items(items[1], "a list of (parameter value)"):
            parts = _items(b, "(parameter value)")
            if len(parts) != 2:
                raise EshkolError(b.loc, "bad syntax: expected (parameter value)")
            params.append(parts[0])
            values.append(parts[1])
        return self.expr(_mk(s, core_id("%parameterize", s), _mk(s, core_id("list", s), *params),
                             _mk(s, core_id("list", s), *values),
                             _mk(s, core_id("lambda", s), _mk(s), *items[2:])))

    def _with_xla_jit(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (with-xla-jit body ...) → ((lambda () body ...)), the lambda named %with-xla-jit: the
        # cpu target runs the body as it is; the xla target compiles it as one XLA computation.
        if len(items) < 2:
            raise EshkolError(s.loc, "bad syntax: (with-xla-jit body ...)")
        return A.Call(s.loc, self._make_lambda(s, _mk(s), items[1:], "%with-xla-jit"), [])

    def _delay(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (delay e) → (%delay (lambda () e)); delay-force (alias make-promise-lazy) likewise
        if len(items) != 2:
            raise EshkolError(s.loc, f"bad syntax: ({_name(items[0])} expression)")
        prim = "%delay" if _name(items[0]) == "delay" else "%delay-force"
        return self.expr(_mk(s, core_id(prim, s), _mk(s, core_id("lambda", s), _mk(s), items[1])))

    def _with_device(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (with-device dev body...) → (%with-device dev (lambda () body...))
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (with-device 'cuda:0 body...)")
        return self.expr(_mk(s, core_id("%with-device", s), items[1],
                             _mk(s, core_id("lambda", s), _mk(s), *items[2:])))

    def _assert(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (assert e) → (let ((t e)) (if t t (%assert-fail 'e)))
        if len(items) != 2:
            raise EshkolError(s.loc, "bad syntax: (assert expression)")
        t = _tmp("t", s)
        fail = _mk(s, core_id("%assert-fail", s), _mk(s, core_id("quote", s), items[1]))
        return self.expr(_mk(s, core_id("let", s), _mk(s, _mk(s, t, items[1])),
                             _mk(s, core_id("if", s), t, t, fail)))

    @staticmethod
    def _formals(f: Syntax) -> tuple[list[Syntax], Syntax | None]:
        """The required identifiers and the rest identifier of a formals list."""
        if isinstance(f.e, Symbol):
            return [], f
        if not isinstance(f.e, SList):
            raise EshkolError(f.loc, "bad syntax: expected formals (a list of identifiers)")
        for x in f.e.items:
            _ident(x, "an identifier in formals")
        if f.e.tail is not None:
            _ident(f.e.tail, "an identifier in formals")
        return list(f.e.items), f.e.tail

    def _value_bindings(self, s: Syntax, formals: Syntax, src: Syntax) -> list[Syntax]:
        """(name init) bindings taking the values held by the temporary ``src`` apart."""
        req, rest = self._formals(formals)
        n = len(req) if rest is None else -len(req) - 1
        out = [_mk(s, x, _mk(s, core_id("%mv-ref", s), src, Syntax(i, s.loc), Syntax(n, s.loc)))
               for i, x in enumerate(req)]
        if rest is not None:
            out.append(_mk(s, rest, _mk(s, core_id("%mv-rest", s), src, Syntax(len(req), s.loc))))
        return out

    def _let_values(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (let-values ((formals e) ...) body...) →
        # (let ((t e) ...) (let ((x (%mv-ref t i n)) ...) body...))
        if len(items) < 3:
            raise EshkolError(s.loc, f"bad syntax: ({_name(items[0])} ((formals expr) ...) body...)")
        temps, inner = [], []
        for c in _items(items[1], "a list of (formals expression)"):
            parts = _items(c, "(formals expression)")
            if len(parts) != 2:
                raise EshkolError(c.loc, "bad syntax: expected (formals expression)")
            t = _tmp("vals", c)
            temps.append(_mk(c, t, parts[1]))
            inner.extend(self._value_bindings(c, parts[0], t))
        let = core_id("let", s)
        return self.expr(_mk(s, let, _mk(s, *temps), _mk(s, let, _mk(s, *inner), *items[2:])))

    def _let_star_values(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (let*-values ((formals expr) ...) body...)")
        clauses = _items(items[1], "a list of (formals expression)")
        if len(clauses) <= 1:
            return self.expr(_mk(s, core_id("let-values", s), items[1], *items[2:]))
        inner = _mk(s, core_id("let*-values", s), _mk(s, *clauses[1:]), *items[2:])
        return self.expr(_mk(s, core_id("let-values", s), _mk(s, clauses[0]), inner))

    def _receive(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (receive formals expr body...) → (let-values ((formals expr)) body...)
        if len(items) < 4:
            raise EshkolError(s.loc, "bad syntax: (receive formals expression body...)")
        return self.expr(_mk(s, core_id("let-values", s), _mk(s, _mk(s, items[1], items[2])), *items[3:]))

    def _case_lambda(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (case-lambda (formals body...) ...) → (%case-lambda '(min max ...) (lambda formals body...) ...)
        arities, lambdas = [], []
        for c in items[1:]:
            parts = _items(c, "a case-lambda clause (formals body...)")
            if len(parts) < 2:
                raise EshkolError(c.loc, "bad syntax: case-lambda clause needs a body")
            f = parts[0]
            if isinstance(f.e, Symbol):
                lo, hi = 0, -1
            elif isinstance(f.e, SList):
                req = sum(1 for x in f.e.items if not isinstance(x.e, SList))
                lo, hi = req, -1 if f.e.tail is not None else len(f.e.items)
            else:
                raise EshkolError(f.loc, "bad syntax: expected formals")
            arities += [Syntax(lo, c.loc), Syntax(hi, c.loc)]
            lambdas.append(_mk(c, core_id("lambda", c), *parts))
        table = _mk(s, core_id("quote", s), _mk(s, *arities))
        return self.expr(_mk(s, core_id("%case-lambda", s), table, *lambdas))

    def _rw_define_values(self, s: Syntax) -> Syntax:
        # (define-values formals e) → (begin (define t e) (define x (%mv-ref t i n)) ...)
        items = _items(s, "(define-values formals expression)")
        if len(items) != 3:
            raise EshkolError(s.loc, "bad syntax: (define-values formals expression)")
        self._dv_count = getattr(self, "_dv_count", 0) + 1
        t = _tmp(f"%define-values-{self._dv_count}", s)
        define = core_id("define", s)
        out = [_mk(s, define, t, items[2])]
        out += [_mk(s, define, *b.e.items) for b in self._value_bindings(s, items[1], t)]
        return _mk(s, core_id("begin", s), *out)

    def _rw_define_record_type(self, s: Syntax) -> Syntax:
        # (define-record-type type (ctor field...) pred (field accessor [modifier]) ...) →
        # (begin (define type (%make-rtd 'type '(field ...)))
        #        (define ctor (lambda (a ...) (%record type a-or-#f ...)))
        #        (define pred (lambda (x) (%record? x type)))
        #        (define accessor (lambda (x) (%record-ref x type i 'accessor)))
        #        (define modifier (lambda (x v) (%record-set! x type i v 'modifier))))
        items = _items(s, "(define-record-type type constructor predicate field...)")
        if len(items) < 4:
            raise EshkolError(s.loc, "bad syntax: (define-record-type type (constructor field...) "
                                     "predicate (field accessor [modifier])...)")
        type_id = items[1]
        if isinstance(type_id.e, SList) and type_id.e.items:
            type_id = type_id.e.items[0]
        _ident(type_id, "a record type name")
        fields: list[Syntax] = []
        procs: list[tuple[Syntax, int, bool]] = []  # (name, field index, modifier?)
        for spec in items[4:]:
            if isinstance(spec.e, Symbol):
                fields.append(spec)
                continue
            parts = _items(spec, "(field accessor [modifier])")
            if not parts or len(parts) > 3:
                raise EshkolError(spec.loc, "bad syntax: expected (field accessor [modifier])")
            _ident(parts[0], "a field name")
            if any(_name(f) == _name(parts[0]) for f in fields):
                raise EshkolError(parts[0].loc, f"duplicate field '{_name(parts[0])}'")
            for k, p in enumerate(parts[1:]):
                procs.append((p, len(fields), k == 1))
            fields.append(parts[0])
        index = {_name(f): i for i, f in enumerate(fields)}
        define, lam, quote = core_id("define", s), core_id("lambda", s), core_id("quote", s)
        out = [_mk(s, define, type_id, _mk(s, core_id("%make-rtd", s), _mk(s, quote, type_id),
                                           _mk(s, quote, _mk(s, *fields))))]
        ctor = items[2]
        if isinstance(ctor.e, Symbol):  # a bare name: every field, in order
            ctor = _mk(ctor, ctor, *fields)
        if isinstance(ctor.e, SList) and ctor.e.items:
            cparts = ctor.e.items
            name = _ident(cparts[0], "a constructor name")
            args = {}
            for a in cparts[1:]:
                n = _ident(a, "a field name")
                if n not in index:
                    raise EshkolError(a.loc, f"constructor {name}: '{n}' is not a field")
                args[n] = _tmp(n, a)
            vals = [args.get(_name(f), Syntax(False, s.loc)) for f in fields]
            out.append(_mk(s, define, cparts[0],
                           _mk(s, lam, _mk(s, *args.values()), _mk(s, core_id("%record", s), type_id, *vals))))
        elif ctor.e is not False:
            raise EshkolError(ctor.loc, "bad syntax: expected (constructor field...)")
        x, v = _tmp("obj", s), _tmp("value", s)
        pred = items[3]
        if pred.e is not False:
            _ident(pred, "a predicate name")
            out.append(_mk(s, define, pred, _mk(s, lam, _mk(s, x), _mk(s, core_id("%record?", s), x, type_id))))
        for p, i, modifier in procs:
            _ident(p, "an accessor name")
            who = _mk(s, quote, p)
            if modifier:
                body = _mk(s, core_id("%record-set!", s), x, type_id, Syntax(i, s.loc), v, who)
                out.append(_mk(s, define, p, _mk(s, lam, _mk(s, x, v), body)))
            else:
                body = _mk(s, core_id("%record-ref", s), x, type_id, Syntax(i, s.loc), who)
                out.append(_mk(s, define, p, _mk(s, lam, _mk(s, x), body)))
        return _mk(s, core_id("begin", s), *out)


def _takes_arguments(f: Syntax) -> bool:
    """Whether top-level form ``f`` defines ``main`` with required parameters (then it is not
    the v1.x entry point)."""
    items = f.e.items if isinstance(f.e, SList) else []
    if len(items) < 3 or _name(items[0]) != "define":
        return False
    target = items[1]
    if isinstance(target.e, SList) and target.e.items and _name(target.e.items[0]) == "main":
        return any(not isinstance(p.e, SList) for p in target.e.items[1:])
    if _name(target) == "main" and isinstance(items[2].e, SList) and items[2].e.items \
            and _name(items[2].e.items[0]) == "lambda" and len(items[2].e.items) > 1:
        ps = items[2].e.items[1].e
        return isinstance(ps, SList) and any(not isinstance(p.e, SList) for p in ps.items)
    return False


def _mk(at: Syntax, *items: Syntax) -> Syntax:
    """A list form built by the expander, located at ``at``."""
    return Syntax(SList(list(items)), at.loc)


def _tmp(name: str, at: Syntax) -> Syntax:
    """A fresh identifier that no user identifier can refer to (hygienic temporary)."""
    return Syntax(Symbol(name), at.loc, frozenset((fresh_scope(),)))


_STACK = 512 * 1024 * 1024


def _deep(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a thread with a large stack, so deep (macro) nesting ends in a diagnostic."""
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 60_000))
        try:
            result.append(fn())
        except RecursionError:
            error.append(EshkolError(None, "program nesting too deep to expand"))
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            error.append(e)
        finally:
            sys.setrecursionlimit(old)

    old_size = threading.stack_size()
    try:
        threading.stack_size(_STACK)
        t = threading.Thread(target=run, name="eshkol-expand")
        t.start()
    finally:
        threading.stack_size(old_size)
    t.join()
    if error:
        raise error[0]
    return result[0]


_PRELUDE: A.Program | None = None


def load_prelude(interp: Interp) -> None:
    """Give a macro interpreter the prelude's procedures (map, sort, iota, ...), so macro
    bodies can use the same library as programs; its own Python builtins take precedence."""
    global _PRELUDE
    if _PRELUDE is None:
        from eshkol.runtime.toolchain import stdlib_dir
        from eshkol.syntax.reader import read_syntax

        path = stdlib_dir() / "prelude.esk"
        _PRELUDE = Expander(unbound_ok=True).program(read_syntax(path.read_text(), str(path)))
    for node in _PRELUDE.body:
        if isinstance(node, A.GSet) and node.define and node.name not in interp.globals:
            interp.eval(node, {})


def expand_program(forms: list[Syntax], unbound_ok: bool = False,
                   imports: dict[str, tuple[str, int]] | None = None, internal: bool = False) -> A.Program:
    """Expand a program's top-level forms into core forms.

    ``imports`` are the names separately compiled libraries export (name → (library, slot)):
    visible unless the program defines them itself; the program's ``imports`` are those it
    uses. With ``unbound_ok`` unknown names are left as global references (for printing);
    ``internal`` (the compiler's own Eshkol source) makes the '%' primitives visible."""
    return _deep(lambda: Expander(unbound_ok, imports, internal).program(forms))


__all__ = ["Expander", "Macro", "expand_program", "SR"]
