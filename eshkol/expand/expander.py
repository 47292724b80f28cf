"""The expander: syntax objects → core forms (eshkol.core.ast).

Handles the core special forms and the derived forms of LANGUAGE.md that are not macros
(let*, letrec, named let, cond, case, when, unless, and, or, do, quasiquote, internal
defines, optional parameters). A name resolves, innermost first, to a lexical variable, a
global defined anywhere in the program, or a primitive; anything else is a compile-time
"unbound variable" error at its use.
"""

from __future__ import annotations

from collections.abc import Callable

from eshkol.core import ast as A
from eshkol.dialect.primitives import PRIMITIVES, Primitive
from eshkol.expand.quasiquote import expand_quasiquote
from eshkol.syntax.datum import (
    UNSPECIFIED,
    Char,
    SBytevector,
    SList,
    SVector,
    Symbol,
    Syntax,
    syntax_to_datum,
)
from eshkol.syntax.diagnostics import EshkolError, Loc

Env = dict[str, A.Var]  # one scope; environments are lists of scopes, innermost last


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


class Expander:
    """Expands one program (a list of top-level syntax objects) to an ``A.Program``."""

    def __init__(self) -> None:
        self.globals: set[str] = set()
        self.special: dict[str, Callable[[Syntax, list[Syntax], list[Env]], A.Node]] = {
            "quote": self._quote, "quasiquote": self._quasiquote, "if": self._if,
            "define": self._define_misplaced, "set!": self._set, "lambda": self._lambda,
            "begin": self._begin, "let": self._let, "let*": self._let_star,
            "letrec": self._letrec, "letrec*": self._letrec, "cond": self._cond,
            "case": self._case, "when": self._when, "unless": self._unless, "and": self._and,
            "or": self._or, "do": self._do, "unquote": self._stray_unquote,
            "unquote-splicing": self._stray_unquote,
        }

    # ---- entry --------------------------------------------------------------------------

    def program(self, forms: list[Syntax]) -> A.Program:
        """Expand top-level forms; defines anywhere at top level are visible everywhere."""
        forms = self._flatten_begins(forms)
        for f in forms:
            target = self._define_target(f)
            if target is not None:
                self.globals.add(target)
        body = [self._toplevel(f) for f in forms]
        if "main" in self.globals and not any(self._calls_main(f) for f in forms):
            body.append(self._run_main(forms[-1].loc))
        return A.Program(body, sorted(self.globals))

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

    def _flatten_begins(self, forms: list[Syntax]) -> list[Syntax]:
        out: list[Syntax] = []
        for f in forms:
            if self._head(f, []) == "begin" and isinstance(f.e, SList):
                out.extend(self._flatten_begins(f.e.items[1:]))
            else:
                out.append(f)
        return out

    def _define_target(self, f: Syntax) -> str | None:
        """The name a (top-level or internal) ``define`` binds, else None."""
        if self._head(f, []) != "define":
            return None
        items = _items(f, "(define name value)")
        if len(items) < 2:
            raise EshkolError(f.loc, "bad syntax: define needs a name")
        target = items[1]
        while isinstance(target.e, SList) and target.e.items:  # (define ((f a) b) ...)
            target = target.e.items[0]
        return _ident(target, "a name to define")

    def _toplevel(self, f: Syntax) -> A.Node:
        if self._head(f, []) == "define":
            name, value = self._define_parts(f, [])
            return A.GSet(f.loc, name, value, define=True)
        return self.expr(f, [])

    # ---- expressions --------------------------------------------------------------------

    def _lookup(self, name: str, env: list[Env]) -> A.Var | None:
        for scope in reversed(env):
            v = scope.get(name)
            if v is not None:
                return v
        return None

    def _head(self, s: Syntax, env: list[Env]) -> str | None:
        """The special-form keyword heading ``s``, unless shadowed by a lexical binding."""
        if isinstance(s.e, SList) and s.e.items:
            n = _name(s.e.items[0])
            if n is not None and self._lookup(n, env) is None and n not in self.globals:
                return n
        return None

    def expr(self, s: Syntax, env: list[Env]) -> A.Node:
        """Expand one expression."""
        e = s.e
        if isinstance(e, Symbol):
            return self._ref(s, env)
        if isinstance(e, SList):
            if not e.items:
                raise EshkolError(s.loc, "empty application ()")
            if e.tail is not None:
                raise EshkolError(s.loc, "bad syntax: dotted list in expression")
            head = self._head(s, env)
            if head in self.special:
                return self.special[head](s, e.items, env)
            return self._application(s, e.items, env)
        if isinstance(e, SVector):
            raise EshkolError(s.loc, "tensor literal #(...) needs the tensor runtime, which is not "
                                     "implemented yet; quote it for a constant vector")
        if isinstance(e, SBytevector):
            return A.Const(s.loc, syntax_to_datum(s))
        if isinstance(e, (bool, int, float, str, Char)) or type(e).__name__ == "Fraction":
            return A.Const(s.loc, e)
        raise EshkolError(s.loc, f"cannot evaluate {type(e).__name__}")

    def _ref(self, s: Syntax, env: list[Env]) -> A.Node:
        name = s.e.name
        var = self._lookup(name, env)
        if var is not None:
            return A.LRef(s.loc, var)
        if name in self.globals:
            return A.GRef(s.loc, name)
        if name in self.special:
            raise EshkolError(s.loc, f"bad syntax: keyword '{name}' used as a variable")
        p = PRIMITIVES.get(name)
        if p is not None and not name.startswith("%"):
            return A.PrimRef(s.loc, name)
        raise EshkolError(s.loc, f"unbound variable: {name}")

    def _application(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        fn = items[0]
        args = [self.expr(a, env) for a in items[1:]]
        n = _name(fn)
        if n is not None and self._lookup(n, env) is None and n not in self.globals:
            p = PRIMITIVES.get(n)
            if p is not None and not n.startswith("%"):
                return self._prim_call(s.loc, p, args)
        return A.Call(s.loc, self.expr(fn, env), args)

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

    def _quote(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) != 2:
            raise EshkolError(s.loc, "bad syntax: (quote datum)")
        return A.Const(s.loc, syntax_to_datum(items[1]))

    def _quasiquote(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) != 2:
            raise EshkolError(s.loc, "bad syntax: (quasiquote template)")
        return self.expr(expand_quasiquote(items[1]), env)

    def _stray_unquote(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        raise EshkolError(s.loc, f"{_name(items[0])} outside quasiquote")

    def _if(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) not in (3, 4):
            raise EshkolError(s.loc, "bad syntax: (if test then [else])")
        els = self.expr(items[3], env) if len(items) == 4 else A.Const(s.loc, UNSPECIFIED)
        return A.If(s.loc, self.expr(items[1], env), self.expr(items[2], env), els)

    def _set(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) != 3:
            raise EshkolError(s.loc, "bad syntax: (set! name value)")
        name = _ident(items[1])
        value = self.expr(items[2], env)
        var = self._lookup(name, env)
        if var is not None:
            var.assigned = True
            return A.LSet(s.loc, var, value)
        if name in self.globals:
            return A.GSet(s.loc, name, value)
        if name in PRIMITIVES:
            raise EshkolError(items[1].loc, f"cannot set! the builtin '{name}'; define it first")
        raise EshkolError(items[1].loc, f"unbound variable: {name}")

    def _define_misplaced(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        raise EshkolError(s.loc, "define is only allowed at top level or at the start of a body")

    def _define_parts(self, s: Syntax, env: list[Env]) -> tuple[str, A.Node]:
        """(name, value expression) of a define form; curried defines nest lambdas."""
        items = _items(s, "(define name value)")
        target = items[1]
        if isinstance(target.e, SList):
            # (define (f . params) body...) ≡ (define f (lambda params body...))
            body = items[2:]
            while True:
                head, params = target.e.items[0], Syntax(SList(target.e.items[1:], target.e.tail), target.loc)
                if isinstance(head.e, SList):
                    lam = Syntax(SList([Syntax(Symbol("lambda"), s.loc), params, *body]), s.loc)
                    body, target = [lam], head
                    continue
                name = _ident(head, "a procedure name")
                return name, self._make_lambda(s, params, body, env, name)
        name = _ident(target, "a name to define")
        if len(items) == 2:
            return name, A.Const(s.loc, UNSPECIFIED)
        if len(items) != 3:
            raise EshkolError(s.loc, "bad syntax: (define name value)")
        value = self.expr(items[2], env)
        if isinstance(value, A.Lambda) and value.name is None:
            value.name = name
        return name, value

    def _lambda(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (lambda params body...)")
        return self._make_lambda(s, items[1], items[2:], env, None)

    def _make_lambda(self, s: Syntax, params: Syntax, body: list[Syntax], env: list[Env],
                     name: str | None) -> A.Lambda:
        if not body:
            raise EshkolError(s.loc, "bad syntax: empty body")
        scope: Env = {}
        req: list[A.Var] = []
        opt: list[tuple[A.Var, A.Node]] = []
        rest: A.Var | None = None

        def bind(p: Syntax) -> A.Var:
            n = _ident(p, "a parameter name")
            if n in scope:
                raise EshkolError(p.loc, f"duplicate parameter '{n}'")
            v = A.Var(n)
            scope[n] = v
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
                        continue
                    if len(parts) != 2:
                        raise EshkolError(p.loc, "bad syntax: optional parameter is (name default)")
                    # Defaults see the parameters before them.
                    default = self.expr(parts[1], env + [dict(scope)])
                    opt.append((bind(parts[0]), default))
                else:
                    if opt:
                        raise EshkolError(p.loc, "required parameter after optional ones")
                    req.append(bind(p))
            if params.e.tail is not None:
                rest = bind(params.e.tail)
        else:
            raise EshkolError(params.loc, "bad syntax: expected a parameter list")
        lam_body = self.body(s, body, env + [scope])
        return A.Lambda(s.loc, req, opt, rest, lam_body, name)

    def body(self, s: Syntax, forms: list[Syntax], env: list[Env]) -> A.Node:
        """A body: internal defines (letrec* semantics) followed by expressions."""
        forms = self._flatten_body_begins(forms, env)
        defs: list[Syntax] = []
        i = 0
        while i < len(forms) and self._head(forms[i], env) == "define":
            defs.append(forms[i])
            i += 1
        exprs = forms[i:]
        for f in exprs:
            if self._head(f, env) == "define":
                raise EshkolError(f.loc, "define after expressions in a body")
        if not exprs:
            raise EshkolError(s.loc, "bad syntax: body has no expression after its defines")
        if not defs:
            return self._seq(s.loc, [self.expr(f, env) for f in exprs])
        scope: Env = {}
        for d in defs:
            n = self._define_target(d)
            assert n is not None
            scope[n] = A.Var(n)
        inner = env + [scope]
        vars_, inits = [], []
        for d in defs:
            n, value = self._define_parts(d, inner)
            vars_.append(scope[n])
            inits.append(value)
        body = self._seq(s.loc, [self.expr(f, inner) for f in exprs])
        return A.Letrec(s.loc, vars_, inits, body)

    def _flatten_body_begins(self, forms: list[Syntax], env: list[Env]) -> list[Syntax]:
        out: list[Syntax] = []
        for f in forms:
            if self._head(f, env) == "begin" and isinstance(f.e, SList):
                inner = f.e.items[1:]
                if any(self._head(x, env) == "define" for x in inner):
                    out.extend(self._flatten_body_begins(inner, env))
                    continue
            out.append(f)
        return out

    def _seq(self, loc: Loc, nodes: list[A.Node]) -> A.Node:
        return nodes[0] if len(nodes) == 1 else A.Seq(loc, nodes)

    def _begin(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) == 1:
            return A.Const(s.loc, UNSPECIFIED)
        return self._seq(s.loc, [self.expr(f, env) for f in items[1:]])

    def _bindings(self, b: Syntax) -> list[tuple[Syntax, Syntax]]:
        out = []
        for pair in _items(b, "a list of bindings"):
            parts = _items(pair, "a binding (name value)")
            if len(parts) != 2:
                raise EshkolError(pair.loc, "bad syntax: expected a binding (name value)")
            _ident(parts[0])
            out.append((parts[0], parts[1]))
        return out

    def _let(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) >= 2 and isinstance(items[1].e, Symbol):
            return self._named_let(s, items, env)
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (let ((name value) ...) body...)")
        binds = self._bindings(items[1])
        inits = [self.expr(v, env) for _, v in binds]
        scope: Env = {}
        vars_ = []
        for n, _ in binds:
            if n.e.name in scope:
                raise EshkolError(n.loc, f"duplicate binding '{n.e.name}'")
            scope[n.e.name] = A.Var(n.e.name)
            vars_.append(scope[n.e.name])
        return A.Let(s.loc, vars_, inits, self.body(s, items[2:], env + [scope]))

    def _named_let(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        # (let loop ((v init) ...) body) ≡ ((letrec ((loop (lambda (v ...) body))) loop) init ...)
        if len(items) < 4:
            raise EshkolError(s.loc, "bad syntax: (let name ((var init) ...) body...)")
        name = items[1].e.name
        binds = self._bindings(items[2])
        inits = [self.expr(v, env) for _, v in binds]
        loop = A.Var(name)
        params = Syntax(SList([n for n, _ in binds]), items[2].loc)
        lam = self._make_lambda(s, params, items[3:], env + [{name: loop}], name)
        return A.Letrec(s.loc, [loop], [lam], A.Call(s.loc, A.LRef(s.loc, loop), inits))

    def _let_star(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (let* ((name value) ...) body...)")
        binds = self._bindings(items[1])
        if not binds:
            return self.body(s, items[2:], env + [{}])
        vars_, inits, scopes = [], [], list(env)
        for n, v in binds:
            inits.append(self.expr(v, scopes))
            var = A.Var(n.e.name)
            vars_.append(var)
            scopes = scopes + [{n.e.name: var}]
        node = self.body(s, items[2:], scopes)
        for var, init in reversed(list(zip(vars_, inits, strict=False))):
            node = A.Let(s.loc, [var], [init], node)
        return node

    def _letrec(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (letrec ((name value) ...) body...)")
        binds = self._bindings(items[1])
        scope: Env = {n.e.name: A.Var(n.e.name) for n, _ in binds}
        inner = env + [scope]
        inits = []
        for n, v in binds:
            init = self.expr(v, inner)
            if isinstance(init, A.Lambda) and init.name is None:
                init.name = n.e.name
            inits.append(init)
        return A.Letrec(s.loc, [scope[n.e.name] for n, _ in binds], inits,
                        self.body(s, items[2:], inner))

    def _cond(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        clauses = items[1:]
        node: A.Node = A.Const(s.loc, UNSPECIFIED)
        for i in range(len(clauses) - 1, -1, -1):
            c = clauses[i]
            parts = _items(c, "a cond clause (test expr...)")
            if not parts:
                raise EshkolError(c.loc, "bad syntax: empty cond clause")
            if _name(parts[0]) == "else" and self._lookup("else", env) is None:
                if i != len(clauses) - 1:
                    raise EshkolError(c.loc, "else clause must be last in cond")
                node = self._seq(c.loc, [self.expr(x, env) for x in parts[1:]]) if len(parts) > 1 \
                    else A.Const(c.loc, UNSPECIFIED)
                continue
            test = self.expr(parts[0], env)
            if len(parts) == 3 and _name(parts[1]) == "=>":
                t = A.Var("t")
                call = A.Call(c.loc, self.expr(parts[2], env), [A.LRef(c.loc, t)])
                node = A.Let(c.loc, [t], [test], A.If(c.loc, A.LRef(c.loc, t), call, node))
            elif len(parts) == 1:
                t = A.Var("t")
                node = A.Let(c.loc, [t], [test], A.If(c.loc, A.LRef(c.loc, t), A.LRef(c.loc, t), node))
            else:
                node = A.If(c.loc, test, self._seq(c.loc, [self.expr(x, env) for x in parts[1:]]), node)
        return node

    def _case(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
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
            if len(parts) == 3 and _name(parts[1]) == "=>":
                result = A.Call(c.loc, self.expr(parts[2], env), [A.LRef(c.loc, key)])
            else:
                result = self._seq(c.loc, [self.expr(x, env) for x in parts[1:]])
            if _name(parts[0]) == "else":
                node = result
                continue
            data = [syntax_to_datum(d) for d in _items(parts[0], "a list of datums")]
            test: A.Node = A.Const(c.loc, False)
            for d in reversed(data):
                test = A.If(c.loc, A.Prim(c.loc, "eqv?", [A.LRef(c.loc, key), A.Const(c.loc, d)]),
                            A.Const(c.loc, True), test)
            node = A.If(c.loc, test, result, node)
        return A.Let(s.loc, [key], [self.expr(items[1], env)], node)

    def _when(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        return self._when_unless(s, items, env, True)

    def _unless(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        return self._when_unless(s, items, env, False)

    def _when_unless(self, s: Syntax, items: list[Syntax], env: list[Env], when: bool) -> A.Node:
        if len(items) < 3:
            raise EshkolError(s.loc, f"bad syntax: ({_name(items[0])} test body...)")
        body = self._seq(s.loc, [self.expr(x, env) for x in items[2:]])
        void = A.Const(s.loc, UNSPECIFIED)
        test = self.expr(items[1], env)
        return A.If(s.loc, test, body, void) if when else A.If(s.loc, test, void, body)

    def _and(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) == 1:
            return A.Const(s.loc, True)
        node = self.expr(items[-1], env)
        for x in reversed(items[1:-1]):
            node = A.If(s.loc, self.expr(x, env), node, A.Const(s.loc, False))
        return node

    def _or(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        if len(items) == 1:
            return A.Const(s.loc, False)
        node = self.expr(items[-1], env)
        for x in reversed(items[1:-1]):
            t = A.Var("t")
            node = A.Let(s.loc, [t], [self.expr(x, env)],
                         A.If(s.loc, A.LRef(s.loc, t), A.LRef(s.loc, t), node))
        return node

    def _do(self, s: Syntax, items: list[Syntax], env: list[Env]) -> A.Node:
        # (do ((v init step)...) (test res...) body...) → named-let loop
        if len(items) < 3:
            raise EshkolError(s.loc, "bad syntax: (do ((var init step) ...) (test expr...) body...)")
        specs = []
        for spec in _items(items[1], "a list of (var init [step])"):
            parts = _items(spec, "(var init [step])")
            if len(parts) not in (2, 3):
                raise EshkolError(spec.loc, "bad syntax: (var init [step])")
            specs.append((parts[0], parts[1], parts[2] if len(parts) == 3 else parts[0]))
        exit_parts = _items(items[2], "(test expr...)")
        if not exit_parts:
            raise EshkolError(items[2].loc, "bad syntax: do needs a test")
        loop = A.Var("do-loop")
        scope: Env = {}
        params = []
        for v, _, _ in specs:
            var = A.Var(_ident(v))
            scope[v.e.name] = var
            params.append(var)
        inner = env + [scope]
        test = self.expr(exit_parts[0], inner)
        result = self._seq(s.loc, [self.expr(x, inner) for x in exit_parts[1:]]) \
            if len(exit_parts) > 1 else A.Const(s.loc, UNSPECIFIED)
        again = A.Call(s.loc, A.LRef(s.loc, loop), [self.expr(st, inner) for _, _, st in specs])
        body_nodes = [self.expr(x, inner) for x in items[3:]]
        loop_body = A.If(s.loc, test, result, self._seq(s.loc, body_nodes + [again]))
        lam = A.Lambda(s.loc, params, [], None, loop_body, "do-loop")
        inits = [self.expr(init, env) for _, init, _ in specs]
        return A.Letrec(s.loc, [loop], [lam], A.Call(s.loc, A.LRef(s.loc, loop), inits))


def expand_program(forms: list[Syntax]) -> A.Program:
    """Expand a program's top-level forms into core forms."""
    return Expander().program(forms)
