"""The module system of Eshkol v1.x (COMPAT.md section 4), on separately compiled libraries.

A module is a source file; ``(require core.list.transform)`` names the file
``core/list/transform.esk``, found by searching, in order: the folder of the requiring file,
the current folder, the ``-I`` folders, the folders of ``$ESHKOL_PATH`` and the bundled
library (``stdlib/``). R7RS ``(import (a b))`` and ``(define-library (a b) ...)`` use the same
files and search; ``only``/``except``/``rename``/``prefix`` filter and rename what a library
exports. ``(import (scheme base))`` means the standard library; other ``(scheme ...)`` and
``(srfi ...)`` libraries are built in.

This module only *resolves*: it finds the import specifications of a source (following
``include`` and ``load``, whose files are spliced in by the expander), locates module files,
computes a library's export table (``provide``/``export``, re-exports included) and the names
a source sees. The driver compiles and caches each module as a library.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eshkol.syntax.datum import SList, Symbol, Syntax
from eshkol.syntax.diagnostics import EshkolError, Loc

# Folders given with -I (the CLI sets them before compiling).
INCLUDE_DIRS: list[Path] = []
# Whether programs get the implicit `(require stdlib)` (off with --no-stdlib).
IMPLICIT_STDLIB = True

STDLIB = "stdlib"          # the implicit module: stdlib/stdlib.esk
EXTENSIONS = (".esk", ".sld", ".scm")

# A name the implicit libraries see: (library name, slot).
Slot = tuple[str, int]


def set_include_dirs(dirs: Iterable[str]) -> None:
    """Folders searched after the requiring file's folder and the current folder."""
    INCLUDE_DIRS[:] = [Path(d).resolve() for d in dirs]


def set_implicit_stdlib(on: bool) -> None:
    """Whether programs import the standard library without naming it."""
    global IMPLICIT_STDLIB
    IMPLICIT_STDLIB = on


def stdlib_dir() -> Path:
    from eshkol.runtime.toolchain import stdlib_dir as d

    return d()


def search_path(here: Path) -> list[Path]:
    """Folders searched for a module required from a file in ``here``, in order."""
    env = [Path(p) for p in os.environ.get("ESHKOL_PATH", "").split(os.pathsep) if p]
    out: list[Path] = []
    for d in [here, Path.cwd(), *INCLUDE_DIRS, *env, stdlib_dir()]:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return out


def is_bundled(path: Path) -> bool:
    """Whether ``path`` is a module of the bundled standard library."""
    try:
        path.resolve().relative_to(stdlib_dir().resolve())
        return True
    except ValueError:
        return False


# ---- import specifications -----------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One module named by require/import: ``name`` is a relative path without extension
    (``core/list/transform``); ``mods`` are the import modifiers, innermost first:
    ('only', names) ('except', names) ('rename', ((old, new), ...)) ('prefix', p)."""

    name: str
    loc: Loc
    mods: tuple[tuple[str, Any], ...] = ()
    path: Path | None = None  # an explicit file ("x.esk" strings)


_MODIFIERS = ("only", "except", "rename", "prefix")


def _sym(s: Syntax) -> str | None:
    return s.e.name if isinstance(s.e, Symbol) else None


def parse_spec(s: Syntax, here: Path) -> Spec | None:
    """The module a require/import spec names, or None for a built-in R7RS library.

    Accepts ``core.list`` (dotted), ``"file.esk"``, ``(core list)``, ``'nn`` and the R7RS
    modifiers around any of them."""
    e = s.e
    if isinstance(e, Symbol):
        return Spec(e.name.replace(".", "/"), s.loc)
    if isinstance(e, str):
        if e.endswith(EXTENSIONS) or "/" in e:
            p = Path(e)
            if not p.is_absolute():
                cands = [here / p, Path.cwd() / p]
                p = next((c for c in cands if c.exists()), cands[0])
            name = e
            for ext in EXTENSIONS:
                name = name.removesuffix(ext)
            return Spec(name, s.loc, path=p)
        return Spec(e.replace(".", "/"), s.loc)
    if isinstance(e, SList) and e.tail is None and e.items:
        head = _sym(e.items[0])
        if head == "quote" and len(e.items) == 2:
            return parse_spec(e.items[1], here)
        if head in _MODIFIERS and len(e.items) >= 2 and isinstance(e.items[1].e, SList):
            inner = parse_spec(e.items[1], here)
            if inner is None:
                return None
            return _with_modifier(inner, head, e.items[2:], s)
        parts = [_sym(x) if _sym(x) is not None else x.e for x in e.items]
        if all(isinstance(p, (str, int)) for p in parts):
            parts = [str(p) for p in parts]
            if parts[0] == "scheme":
                return Spec(STDLIB, s.loc) if parts[1:] == ["base"] else None
            if parts[0] == "srfi":
                return None
            return Spec("/".join(parts), s.loc)
    raise EshkolError(s.loc, "bad module name in require/import")


def _with_modifier(inner: Spec, kind: str, args: list[Syntax], at: Syntax) -> Spec:
    if kind in ("only", "except"):
        names = tuple(_need_sym(a) for a in args)
        mod: tuple[str, Any] = (kind, names)
    elif kind == "rename":
        pairs = []
        for a in args:
            if not (isinstance(a.e, SList) and len(a.e.items) == 2):
                raise EshkolError(a.loc, "bad syntax: rename expects (old new) pairs")
            pairs.append((_need_sym(a.e.items[0]), _need_sym(a.e.items[1])))
        mod = (kind, tuple(pairs))
    else:
        if len(args) != 1:
            raise EshkolError(at.loc, "bad syntax: (prefix import-set prefix)")
        mod = (kind, _need_sym(args[0]))
    return Spec(inner.name, inner.loc, inner.mods + (mod,), inner.path)


def _need_sym(s: Syntax) -> str:
    n = _sym(s)
    if n is None:
        raise EshkolError(s.loc, "bad syntax: expected an identifier")
    return n


# ---- walking a source -------------------------------------------------------------------------

_MODULE_FORMS = ("require", "import")


def include_file(name: str, loc: Loc, load: bool = False) -> Path:
    """The file an ``include`` (relative to the including file first) or ``load`` (relative
    to the current folder first) names; a located error when it does not exist."""
    p = Path(name)
    if p.is_absolute():
        cands = [p]
    else:
        here = Path(loc.file).resolve().parent if loc.file and not loc.file.startswith("<") else Path.cwd()
        cands = [Path.cwd() / p, here / p] if load else [here / p, Path.cwd() / p]
        cands += [d / p for d in INCLUDE_DIRS]
    for c in cands:
        if c.is_file():
            return c
    raise EshkolError(loc, f"cannot find file '{name}' to {'load' if load else 'include'} "
                           f"(looked in {', '.join(str(c.parent) for c in cands)})")


def read_file_forms(path: Path, loc: Loc) -> list[Syntax]:
    """The forms of an included/loaded file."""
    from eshkol.syntax.reader import read_syntax

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise EshkolError(loc, f"cannot read {path}: {e.strerror}") from None
    return read_syntax(text, str(path))


@dataclass
class SourceInfo:
    """What a source needs from the module system: its import specs in order, and the
    files it includes (their text is part of what the compiled code depends on)."""

    specs: list[Spec]
    included: list[Path]

    def stamp(self) -> str:
        """A digest of the included files' contents (for the compile cache key)."""
        if not self.included:
            return ""
        h = hashlib.sha256()
        for p in self.included:
            h.update(str(p).encode())
            try:
                h.update(p.read_bytes())
            except OSError:
                pass
        return ":inc" + h.hexdigest()[:16]


def source_info(forms: list[Syntax], file: str) -> SourceInfo:
    """Walk top-level forms (into ``begin``, ``define-library`` and included files) for
    the modules they require or import."""
    info = SourceInfo([], [])
    here = Path(file).resolve().parent if file not in ("-", "") and not file.startswith("<") else Path.cwd()
    seen: set[Path] = set()

    def walk(fs: list[Syntax], here: Path, depth: int) -> None:
        for f in fs:
            if not (isinstance(f.e, SList) and f.e.items):
                continue
            head = _sym(f.e.items[0])
            args = f.e.items[1:]
            if head in _MODULE_FORMS:
                for a in args:
                    sp = parse_spec(a, here)
                    if sp is not None:
                        info.specs.append(sp)
            elif head in ("begin", "define-library"):
                walk(args, here, depth)
            elif head in ("include", "include-ci", "load", "include-library-declarations"):
                if depth > 50:
                    raise EshkolError(f.loc, "files include each other too deeply")
                for a in args:
                    if isinstance(a.e, str):
                        p = include_file(a.e, a.loc, load=head == "load").resolve()
                        if p not in seen:
                            seen.add(p)
                            info.included.append(p)
                        walk(read_file_forms(p, a.loc), p.parent, depth + 1)
            elif head == "cond-expand":
                for clause in args:
                    if isinstance(clause.e, SList):
                        walk(clause.e.items[1:], here, depth)

    walk(forms, here, 0)
    return info


def find_module(spec: Spec, here: Path, bundled: bool = False) -> Path:
    """The file of module ``spec``; a located error naming every place searched. Modules of
    the bundled library (``bundled``) only look in the bundled library, so a user's file of
    the same name cannot replace a piece of the standard library."""
    if spec.path is not None:
        if spec.path.is_file():
            return spec.path
        raise EshkolError(spec.loc, f"cannot find module file '{spec.path}'")
    tried = []
    for d in [stdlib_dir()] if bundled else search_path(here):
        for ext in EXTENSIONS:
            p = d / f"{spec.name}{ext}"
            if p.is_file():
                return p
        tried.append(str(d / f"{spec.name}.esk"))
    dotted = spec.name.replace("/", ".")
    raise EshkolError(spec.loc, f"cannot find module '{dotted}' (searched: {', '.join(tried)})")


# ---- exports and visible names ----------------------------------------------------------------


def declared_exports(forms: list[Syntax]) -> list[tuple[str, str]] | None:
    """(internal, external) names of the ``provide``/``export`` forms of a module (also
    inside ``define-library`` and ``begin``), or None when it has none (export everything)."""
    out: list[tuple[str, str]] = []
    found = False

    def walk(fs: list[Syntax]) -> None:
        nonlocal found
        for f in fs:
            if not (isinstance(f.e, SList) and f.e.items):
                continue
            head = _sym(f.e.items[0])
            if head in ("provide", "export"):
                found = True
                for a in f.e.items[1:]:
                    n = _sym(a)
                    if n is not None:
                        out.append((n, n))
                    elif (isinstance(a.e, SList) and len(a.e.items) == 3
                          and _sym(a.e.items[0]) == "rename"):
                        out.append((_need_sym(a.e.items[1]), _need_sym(a.e.items[2])))
                    else:
                        raise EshkolError(a.loc, f"bad syntax in {head}: expected a name")
            elif head in ("begin", "define-library"):
                walk(f.e.items[1:])

    walk(forms)
    return out if found else None


def export_table(forms: list[Syntax], globals_: list[str],
                 visible: dict[str, Slot]) -> dict[str, int | list]:
    """A library's export table: name → its own slot, or [library, slot] for a name it
    re-exports from a library it imports. Without provide/export: every global whose name
    does not start with '%'. Provided names that are neither (builtins, macros) are skipped."""
    slots = {n: i for i, n in enumerate(globals_)}
    declared = declared_exports(forms)
    if declared is None:
        return {n: i for n, i in slots.items() if not n.startswith("%")}
    out: dict[str, int | list] = {}
    for internal, external in declared:
        if internal in slots:
            out[external] = slots[internal]
        elif internal in visible:
            lib, slot = visible[internal]
            out[external] = [lib, slot]
    return out


def apply_modifiers(names: dict[str, Slot], mods: tuple[tuple[str, Any], ...], loc: Loc,
                    module: str) -> dict[str, Slot]:
    """What an import set with modifiers makes visible from a library's ``names``."""
    for kind, arg in mods:
        if kind == "only":
            missing = [n for n in arg if n not in names]
            if missing:
                raise EshkolError(loc, f"module '{module}' does not export {', '.join(missing)}")
            names = {n: names[n] for n in arg}
        elif kind == "except":
            names = {n: v for n, v in names.items() if n not in arg}
        elif kind == "rename":
            table = dict(arg)
            missing = [o for o in table if o not in names]
            if missing:
                raise EshkolError(loc, f"module '{module}' does not export {', '.join(missing)}")
            names = {table.get(n, n): v for n, v in names.items()}
        else:
            names = {arg + n: v for n, v in names.items()}
    return names
