"""Special forms of Eshkol v1.x (COMPAT.md section A) that the core expander does not have.

``install(expander)`` adds them to an ``Expander``: modules (``define-library``, ``export``,
``include``, ``include-ci``, ``load``), type annotations (``:``, ``the``, ``define-type``,
``forall``), ``match``/``let-match`` (match.py), ``with-region``, the C FFI (``extern``,
``extern-var``), ``cond-expand``, compile-time ``diff``/``differentiate`` (symdiff.py),
``syntax-error`` and the ownership annotations (``owned move borrow shared weak-ref``), which
are no-ops here because every object is garbage collected.

Two helpers serve edits in expander.py: ``keyword_formals`` (``#:name var`` parameters) and
``strip_annotation`` (``: type`` after a parameter list).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eshkol.core import ast as A
from eshkol.expand import modules, tensor_literal
from eshkol.expand.match import MatchCompiler
from eshkol.expand.scopes import add_scope, core_id
from eshkol.expand.symdiff import DiffError, diff
from eshkol.syntax.datum import UNSPECIFIED, SList, Symbol, Syntax, Vector, syntax_to_datum
from eshkol.syntax.diagnostics import EshkolError

if TYPE_CHECKING:
    from eshkol.expand.expander import Expander


def _name(s: Syntax) -> str | None:
    return s.e.name if isinstance(s.e, Symbol) else None


def _mk(at: Syntax, *items: Syntax) -> Syntax:
    return Syntax(SList(list(items)), at.loc)


def _begin(s: Syntax, forms: list[Syntax]) -> Syntax:
    return _mk(s, core_id("begin", s), *forms)


def is_keyword(s: Syntax) -> bool:
    """``#:name``: a keyword (read as a symbol whose name starts with ``#:``)."""
    return isinstance(s.e, Symbol) and s.e.name.startswith("#:") and len(s.e.name) > 2


def self_evaluating(name: str) -> bool:
    """Keywords ``#:k`` and logic variables ``?x`` evaluate to themselves (as symbols)."""
    return (name.startswith("#:") and len(name) > 2) or (name.startswith("?") and len(name) > 1)


def strip_annotation(body: list[Syntax]) -> list[Syntax]:
    """A body without a leading ``: type`` (return type of a typed lambda or define)."""
    if len(body) >= 3 and _name(body[0]) == ":":
        return body[2:]
    return body


def with_scopes(stx: Syntax, scopes: frozenset) -> Syntax:
    """``stx`` with every scope of ``scopes`` added (included text is as if written here)."""
    for sc in sorted(scopes):
        stx = add_scope(stx, sc)
    return stx


# ---- keyword parameters ------------------------------------------------------------------------


def keyword_formals(params: Syntax, body: list[Syntax], s: Syntax, tmp) -> tuple[Syntax, list[Syntax]]:
    """``(x #:k k ...)`` → a rest parameter and a body that takes the keyword arguments apart:
    ``(lambda args (let* ((v (%kw-parse args npos '(#:k ...))) (x (vector-ref v 0)) ...) body))``.
    v1.x keyword parameters are required; they may be passed in any order."""
    items = params.e.items
    positional: list[Syntax] = []
    keywords: list[tuple[Syntax, Syntax]] = []
    i = 0
    while i < len(items):
        p = items[i]
        if is_keyword(p):
            if i + 1 >= len(items):
                raise EshkolError(p.loc, f"keyword parameter {p.e.name} needs a variable after it")
            var = items[i + 1]
            if isinstance(var.e, SList) and var.e.items:  # (k : type)
                var = var.e.items[0]
            if not isinstance(var.e, Symbol):
                raise EshkolError(var.loc, "bad syntax: expected a parameter name")
            keywords.append((p, var))
            i += 2
            continue
        if keywords:
            raise EshkolError(p.loc, "positional parameters must come before keyword parameters")
        if isinstance(p.e, SList) and p.e.items:
            p = p.e.items[0]
        positional.append(p)
        i += 1
    args, parsed = tmp("args", s), tmp("kwargs", s)
    quote = core_id("quote", s)
    binds = [_mk(s, parsed, _mk(s, core_id("%kw-parse", s), args, Syntax(len(positional), s.loc),
                                _mk(s, quote, _mk(s, *[k for k, _ in keywords]))))]
    for j, var in enumerate(positional + [v for _, v in keywords]):
        binds.append(_mk(s, var, _mk(s, core_id("vector-ref", s), parsed, Syntax(j, s.loc))))
    let = _mk(s, core_id("let*", s), _mk(s, *binds), *strip_annotation(body))
    return args, [let]


# ---- the forms ----------------------------------------------------------------------------------


class CompatForms:
    """The v1.x special forms, bound to one expander."""

    def __init__(self, ex: Expander) -> None:
        from eshkol.expand.expander import _tmp

        self.ex = ex
        self.tmp = _tmp
        self.matcher = MatchCompiler(_mk, _tmp, ex._is_kw)

    def install(self) -> None:
        ex = self.ex
        rewriters = {
            "define-library": self.rw_define_library, "include": self.rw_include,
            "include-ci": self.rw_include, "load": self.rw_load,
            "include-library-declarations": self.rw_include,
            ":": self.rw_declaration, "define-type": self.rw_declaration,
            "extern": self.rw_extern, "extern-var": self.rw_extern_var,
            "cond-expand": self.rw_cond_expand,
        }
        for kw, fn in rewriters.items():
            ex.rewriters[kw] = fn
            ex.special[kw] = ex._rewritten
        ex.special.update({
            "export": ex._module_form, "match": self.match, "let-match": self.let_match,
            "with-region": self.with_region, "the": self.the, "diff": self.diff,
            "differentiate": self.diff, "syntax-error": self.syntax_error,
            "owned": self.passthrough, "move": self.passthrough, "borrow": self.passthrough,
            "shared": self.passthrough, "weak-ref": self.passthrough, "forall": self.forall,
            "future": self.future, "matrix": self.matrix,
        })

    # -- modules -------------------------------------------------------------------------------

    def rw_define_library(self, s: Syntax) -> Syntax:
        # (define-library (name ...) decl ...) → (begin decl ...): export/import are module
        # forms (resolved by the driver), begin and include splice.
        items = s.e.items
        if len(items) < 2:
            raise EshkolError(s.loc, "bad syntax: (define-library (name ...) declaration ...)")
        return _begin(s, items[2:])

    def _file_forms(self, s: Syntax, load: bool) -> Syntax:
        items = s.e.items
        kw = items[0]
        forms: list[Syntax] = []
        for a in items[1:]:
            if not isinstance(a.e, str):
                raise EshkolError(a.loc, f"bad syntax: ({_name(kw)} \"file\" ...)")
            path = modules.include_file(a.e, a.loc, load=load)
            forms += [with_scopes(f, kw.scopes) for f in modules.read_file_forms(path, a.loc)]
        return _begin(s, forms)

    def rw_include(self, s: Syntax) -> Syntax:
        return self._file_forms(s, load=False)

    def rw_load(self, s: Syntax) -> Syntax:
        return self._file_forms(s, load=True)

    # -- types ---------------------------------------------------------------------------------

    def rw_declaration(self, s: Syntax) -> Syntax:
        # (: name type) and (define-type Name type): compile-time only.
        return _begin(s, [])

    def the(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) != 3:
            raise EshkolError(s.loc, "bad syntax: (the type expression)")
        return self.ex.expr(items[2])

    def forall(self, s: Syntax, items: list[Syntax]) -> A.Node:
        return A.Const(s.loc, UNSPECIFIED)

    def passthrough(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (owned e) (move e) (borrow e [body ...]) (shared e) (weak-ref e): the value of e (or
        # of the body); memory is collected, so ownership needs no code.
        if len(items) < 2:
            raise EshkolError(s.loc, f"bad syntax: ({_name(items[0])} expression)")
        return self.ex._seq(s.loc, [self.ex.expr(x) for x in items[1:]])

    def future(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (future e): e is evaluated now (programs run on one thread) and its value is kept in
        # an already forced promise, so (force f) returns it, as with a finished future.
        if len(items) != 2:
            raise EshkolError(s.loc, "bad syntax: (future expression)")
        return self.ex.expr(_mk(s, core_id("make-promise", s), items[1]))

    # -- pattern matching ---------------------------------------------------------------------------

    def match(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) < 2:
            raise EshkolError(s.loc, "bad syntax: (match expression (pattern body ...) ...)")
        void = _mk(s, core_id("if", s), Syntax(False, s.loc), Syntax(False, s.loc))
        return self.ex.expr(self.matcher.match(s, items[1], items[2:], void))

    def let_match(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) < 3 or not isinstance(items[1].e, SList):
            raise EshkolError(s.loc, "bad syntax: (let-match ((pattern expr) ...) body ...)")
        return self.ex.expr(self.matcher.let_match(s, items[1].e.items, items[2:]))

    # -- tensors -------------------------------------------------------------------------------

    def matrix(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (matrix rows cols e ...): a rows x cols float64 tensor of the evaluated elements in
        # row-major order; v1.x requires literal dimensions, so the count is checked here.
        dims = items[1:3]
        if len(dims) < 2 or any(isinstance(d.e, bool) or not isinstance(d.e, int) or d.e < 0
                                for d in dims):
            raise EshkolError(s.loc, "bad syntax: (matrix rows cols element ...) with literal "
                                     "non-negative integer rows and cols")
        rows, cols = dims[0].e, dims[1].e
        elems = items[3:]
        if len(elems) != rows * cols:
            raise EshkolError(s.loc, f"matrix: {rows} x {cols} needs {rows * cols} elements, "
                                     f"got {len(elems)}")
        shape = A.Const(s.loc, Vector([rows, cols]))
        consts = [tensor_literal.constant_value(x) for x in elems]
        if all(c is not None for c in consts):
            return A.Prim(s.loc, "%tensor-const", [shape, A.Const(s.loc, Vector(consts))])
        return A.Prim(s.loc, "%tensor-literal", [shape] + [self.ex.expr(x) for x in elems])

    # -- regions -------------------------------------------------------------------------------

    def with_region(self, s: Syntax, items: list[Syntax]) -> A.Node:
        # (with-region [name] [size-hint] body ...) → (%with-region size (lambda () body ...))
        body = items[1:]
        size = Syntax(0, s.loc)
        if len(body) > 1 and (isinstance(body[0].e, str) or _is_quoted_symbol(body[0])
                              or (isinstance(body[0].e, Symbol) and len(body) > 2
                                  and isinstance(body[1].e, int))):
            body = body[1:]  # the region's name (documentation only)
        if len(body) > 1 and isinstance(body[0].e, int) and not isinstance(body[0].e, bool):
            size, body = body[0], body[1:]
        if not body:
            raise EshkolError(s.loc, "bad syntax: (with-region [name [size]] body ...)")
        thunk = _mk(s, core_id("lambda", s), _mk(s), *body)
        return self.ex.expr(_mk(s, core_id("%with-region", s), size, thunk))

    # -- FFI -----------------------------------------------------------------------------------

    def rw_extern(self, s: Syntax) -> Syntax:
        # (extern ret cname type ...) or (extern ret name :real cname type ...), types maybe in
        # one list; `...` marks a variadic C function. Defines name as a procedure calling C.
        items = s.e.items[1:]
        if len(items) < 2:
            raise EshkolError(s.loc, "bad syntax: (extern return-type c-name param-type ...)")
        ret = _ctype(items[0])
        name_id = items[1]
        if not isinstance(name_id.e, Symbol):
            raise EshkolError(name_id.loc, "bad syntax: extern needs a function name")
        rest = items[2:]
        cname = name_id.e.name
        if len(rest) >= 2 and _name(rest[0]) == ":real":
            cname = _name(rest[1]) or (rest[1].e if isinstance(rest[1].e, str) else None)
            if cname is None:
                raise EshkolError(rest[1].loc, "bad syntax: expected the C function's name")
            rest = rest[2:]
        if len(rest) == 1 and isinstance(rest[0].e, SList):
            rest = rest[0].e.items
        params: list[str] = []
        variadic = False
        for t in rest:
            if _name(t) == "...":
                variadic = True
            else:
                ct = _ctype(t)
                if ct != "void":
                    params.append(ct)
        quote = core_id("quote", s)
        sig = _mk(s, quote, _mk(s, *[Syntax(Symbol(p), s.loc) for p in params]))
        proc = _mk(s, core_id("%ffi-proc", s), Syntax(cname, s.loc), _mk(s, quote, Syntax(Symbol(ret), s.loc)),
                   sig, Syntax(variadic, s.loc))
        return _mk(s, core_id("define", s), name_id, proc)

    def rw_extern_var(self, s: Syntax) -> Syntax:
        # (extern-var type name [:real cname]): the C global's value when defined.
        items = s.e.items[1:]
        if len(items) < 2 or not isinstance(items[1].e, Symbol):
            raise EshkolError(s.loc, "bad syntax: (extern-var type name)")
        cname = items[1].e.name
        if len(items) >= 4 and _name(items[2]) == ":real":
            cname = _name(items[3]) or cname
        read = _mk(s, core_id("%ffi-var", s), Syntax(cname, s.loc),
                   _mk(s, core_id("quote", s), Syntax(Symbol(_ctype(items[0])), s.loc)))
        return _mk(s, core_id("define", s), items[1], read)

    # -- cond-expand ----------------------------------------------------------------------------

    def rw_cond_expand(self, s: Syntax) -> Syntax:
        for clause in s.e.items[1:]:
            if not (isinstance(clause.e, SList) and clause.e.items):
                raise EshkolError(clause.loc, "bad syntax: cond-expand clause is (requirement body ...)")
            req = clause.e.items[0]
            if self.ex._is_kw(req, "else") or self._feature(req):
                return _begin(s, clause.e.items[1:])
        return _begin(s, [])

    def _feature(self, r: Syntax) -> bool:
        if isinstance(r.e, Symbol):
            return r.e.name in features()
        if isinstance(r.e, SList) and r.e.items:
            head, args = _name(r.e.items[0]), r.e.items[1:]
            if head == "and":
                return all(self._feature(a) for a in args)
            if head == "or":
                return any(self._feature(a) for a in args)
            if head == "not" and len(args) == 1:
                return not self._feature(args[0])
            if head == "library" and len(args) == 1:
                return _library_exists(args[0])
        raise EshkolError(r.loc, "bad syntax: cond-expand feature requirement")

    # -- compile time ---------------------------------------------------------------------------

    def diff(self, s: Syntax, items: list[Syntax]) -> A.Node:
        if len(items) != 3:
            raise EshkolError(s.loc, f"bad syntax: ({_name(items[0])} expression variable)")
        expr, var = items[1], items[2]
        for x in (expr, var):
            if isinstance(x.e, SList) and x.e.items and _name(x.e.items[0]) in ("quote", "quasiquote"):
                raise EshkolError(x.loc, f"{_name(items[0])}: arguments are written unquoted, "
                                         f"e.g. (diff (* x x) x)")
        try:
            return A.Const(s.loc, diff(syntax_to_datum(expr), syntax_to_datum(var)))
        except DiffError as e:
            raise EshkolError(s.loc, f"{_name(items[0])}: {e}") from None

    def syntax_error(self, s: Syntax, items: list[Syntax]) -> A.Node:
        from eshkol.syntax.printer import write_string as write_datum

        if len(items) < 2:
            raise EshkolError(s.loc, "syntax-error")
        msg = items[1].e if isinstance(items[1].e, str) else write_datum(syntax_to_datum(items[1]))
        extra = " ".join(write_datum(syntax_to_datum(x)) for x in items[2:])
        raise EshkolError(s.loc, f"{msg} {extra}".strip())


def _is_quoted_symbol(s: Syntax) -> bool:
    e = s.e
    return (isinstance(e, SList) and len(e.items) == 2 and _name(e.items[0]) == "quote"
            and isinstance(e.items[1].e, Symbol))


# C type names accepted by extern, normalised to the runtime's signature codes.
_CTYPES = {
    "void": "void", "int": "int32", "int32": "int32", "i32": "int32", "int32_t": "int32",
    "unsigned": "uint32", "uint": "uint32", "uint32": "uint32", "u32": "uint32", "uint32_t": "uint32",
    "long": "int64", "int64": "int64", "i64": "int64", "int64_t": "int64", "size_t": "int64",
    "uint64": "int64", "u64": "int64", "uint64_t": "int64", "ssize_t": "int64", "integer": "int64",
    "short": "int16", "int16": "int16", "int16_t": "int16",
    "char": "char", "int8": "int8", "i8": "int8", "uint8": "uint8", "u8": "uint8", "byte": "uint8",
    "bool": "bool", "boolean": "bool",
    "double": "double", "float64": "double", "f64": "double", "real": "double", "number": "double",
    "float": "float", "float32": "float", "f32": "float",
    "char*": "string", "string": "string", "const-char*": "string", "cstring": "string",
    "void*": "pointer", "ptr": "pointer", "pointer": "pointer", "int*": "pointer",
    "double*": "pointer", "float*": "pointer",
}


def _ctype(t: Syntax) -> str:
    name = _name(t)
    if name is None and isinstance(t.e, SList) and t.e.items:
        parts = [_name(x) or "" for x in t.e.items]
        name = "-".join(parts) if parts[0] == "const" else parts[0] + "*" if parts[-1] == "*" else None
    if name is None:
        raise EshkolError(t.loc, "bad syntax: expected a C type name")
    if name.startswith("const-") and name not in _CTYPES:
        name = name[6:]
    if name not in _CTYPES:
        if name.endswith("*"):
            return "pointer"
        raise EshkolError(t.loc, f"extern: unknown C type '{name}' "
                                 f"(known: {', '.join(sorted(set(_CTYPES)))})")
    return _CTYPES[name]


def features() -> set[str]:
    """cond-expand features that hold (COMPAT.md: r7rs eshkol eshkol-1.1 ieee-float ratios
    exact-complex + the OS and architecture)."""
    out = {"r7rs", "eshkol", "eshkol-1.1", "eshkol-2", "ieee-float", "ratios", "full-unicode",
           "exact-closed"}
    if sys.platform.startswith("linux"):
        out |= {"linux", "unix", "posix"}
    elif sys.platform == "darwin":
        out |= {"macosx", "darwin", "unix", "posix"}
    m = platform.machine().lower()
    if m in ("x86_64", "amd64"):
        out |= {"x86-64", "x86_64"}
    elif m in ("aarch64", "arm64"):
        out |= {"aarch64", "arm64"}
    return out


def _library_exists(spec: Syntax) -> bool:
    try:
        sp = modules.parse_spec(spec, Path.cwd())
    except EshkolError:
        return False
    if sp is None:
        return True
    try:
        modules.find_module(sp, Path(spec.loc.file).resolve().parent)
        return True
    except EshkolError:
        return False


def install(ex: Expander) -> None:
    """Add the v1.x forms to expander ``ex``."""
    CompatForms(ex).install()
