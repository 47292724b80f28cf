"""The compiler driver: source → eshkol dialect → pipeline → LLVM, then JIT, cache or build.

The command-line tools call these functions; each stage below lives in its own package.
MLIR is imported lazily so that a cache hit never pays for it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from eshkol.runtime import cache
from eshkol.syntax.diagnostics import EshkolError, Loc


@dataclass(frozen=True)
class Options:
    """What determines the compiled code (part of the cache key)."""

    opt_level: int = 2

    def key(self) -> str:
        return f"O{self.opt_level}"


def read_source(path: str) -> str:
    """The text of a source file, or a diagnostic naming it."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace") if path != "-" else sys.stdin.read()
    except OSError as e:
        raise EshkolError(Loc(path, 0, 0), f"cannot read {path}: {e.strerror}") from None


def dialect_module(text: str, file: str, library: str | None = None,
                   imports: dict[str, tuple[str, int]] | None = None):
    """(context, eshkol-dialect module) of a program (or of ``library``); a program imports the
    implicit libraries unless ``imports`` says otherwise."""
    if library is None and imports is None:
        imports = _imports(_libraries())
    ctx, module, _ = _compile_source(text, file, library, imports)
    return ctx, module


def _compile_source(text: str, file: str, library: str | None, imports):
    from eshkol.dialect.ops import make_context
    from eshkol.frontend.compile import source_to_module

    ctx = make_context()
    with ctx:
        module, program = source_to_module(text, file, library, imports)
    return ctx, module, program


def parse_mlir(text: str, file: str):
    """(context, module) parsed from MLIR text in any dialect we load."""
    from mlir import ir

    from eshkol.dialect.ops import make_context

    ctx = make_context()
    with ctx:
        try:
            return ctx, ir.Module.parse(text)
        except ir.MLIRError as e:
            raise EshkolError(Loc(file, 0, 0), f"invalid MLIR: {e}") from None


def run_passes(ctx, module, passes: list[str]) -> None:
    """Run pass names (ours or upstream) on ``module``."""
    from eshkol.passes.manager import run_pipeline

    with ctx:
        run_pipeline(module, passes)


@dataclass(frozen=True)
class Library:
    """A compiled stdlib library: shared object (JIT, cached runs), PIC object (executables)
    and the slot of each name it exports."""

    name: str
    key: str
    shared: Path
    obj: Path
    exports: dict[str, int]

    def imports(self) -> dict[str, tuple[str, int]]:
        return {n: (self.name, i) for n, i in self.exports.items()}


# Every program sees the prelude (LANGUAGE.md's list, string and vector library).
IMPLICIT_LIBRARIES = ("prelude",)


def library(name: str) -> Library:
    """The compiled library ``name`` from the stdlib, compiled once and then cached."""
    import json

    from eshkol.runtime.toolchain import stdlib_dir

    src = stdlib_dir() / f"{name}.esk"
    text = read_source(str(src))
    key = cache.cache_key(text, f"<library {name}>", "lib-O2")
    base = cache.cache_dir() / f"lib-{name}-{key}"
    lib = Library(name, key, base.with_suffix(".so"), base.with_suffix(".o"), {})
    table = base.with_suffix(".json")
    if not (lib.shared.exists() and lib.obj.exists() and table.exists()):
        _build_library(lib, text, str(src), table)
    return Library(name, key, lib.shared, lib.obj, json.loads(table.read_text()))


def _build_library(lib: Library, text: str, file: str, table: Path) -> None:
    import json
    import os

    from eshkol.lower.pipelines import PIPELINES
    from eshkol.runtime.aot import compile_object
    from eshkol.runtime.jit import link_shared

    ctx, module, program = _compile_source(text, file, lib.name, None)
    run_passes(ctx, module, PIPELINES["eshkol-cpu"])
    with ctx:
        llvm_text = str(module)
    # Write beside the targets, then rename: a concurrent run never sees half a library.
    tmp = lib.obj.with_suffix(f".{os.getpid()}.tmp")
    compile_object(llvm_text, tmp.with_suffix(".o"), opt_level=2)
    link_shared(tmp.with_suffix(".o"), tmp.with_suffix(".so"))
    # Names starting with % are the library's own helpers, not exported.
    exports = {n: i for i, n in enumerate(program.globals) if not n.startswith("%")}
    table.with_suffix(f".{os.getpid()}.json").write_text(json.dumps(exports))
    os.replace(tmp.with_suffix(".o"), lib.obj)
    os.replace(tmp.with_suffix(".so"), lib.shared)
    os.replace(table.with_suffix(f".{os.getpid()}.json"), table)


def _libraries() -> list[Library]:
    return [library(n) for n in IMPLICIT_LIBRARIES]


def _imports(libs: list[Library]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for lib in libs:
        out.update(lib.imports())
    return out


def llvm_module(text: str, file: str, options: Options, libs: list[Library] | None = None):
    """(context, LLVM-dialect module) of a program through the CPU pipeline."""
    from eshkol.lower.pipelines import PIPELINES

    libs = _libraries() if libs is None else libs
    ctx, module = dialect_module(text, file, imports=_imports(libs))
    run_passes(ctx, module, PIPELINES["eshkol-cpu"])
    return ctx, module


def run_program(path: str, args: list[str], options: Options, verbose: bool = False) -> int:
    """``eshkol run``: from the cache when possible, else compile, cache and JIT."""
    text = read_source(path)
    libs = _libraries()
    # The program's code has the libraries' slot numbers built in: their keys are part of its key.
    key = cache.cache_key(text, path, options.key() + "".join(f":{lib.key}" for lib in libs))
    entry = cache.entry_path(key)
    argv = [path, *args]
    shared = [lib.shared for lib in libs]
    if entry.exists():
        if verbose:
            print(f"eshkol: cache hit {entry}", file=sys.stderr)
        from eshkol.runtime.jit import run_shared

        return run_shared(entry, argv, shared)
    if verbose:
        print(f"eshkol: cache miss; compiling into {entry}", file=sys.stderr)
    ctx, module = llvm_module(text, path, options, libs)
    from eshkol.runtime.jit import jit_run

    with ctx:
        return jit_run(module, argv, options.opt_level, save_shared=entry, libraries=shared)


def build_program(path: str, out: str, options: Options) -> None:
    """``eshkol build``: a native executable."""
    from mlir import ir

    from eshkol.runtime.aot import MAIN, build_executable

    libs = _libraries()
    ctx, module = llvm_module(read_source(path), path, options, libs)
    with ctx:
        main = ir.Module.parse(MAIN)  # keep alive while its ops move
        for op in list(main.body.operations)[1:]:  # skip the esk_entry declaration
            module.body.append(op)
        build_executable(str(module), Path(out), options.opt_level, [lib.obj for lib in libs])


def translate(path: str, target: str, options: Options) -> str:
    """``eshkol-translate``: the program (``.esk`` or ``.mlir``) as eshkol dialect or LLVM IR."""
    from eshkol.lower.pipelines import PIPELINES

    text = read_source(path)
    if target == "expanded":
        from eshkol.core.print import print_program
        from eshkol.expand.expander import expand_program
        from eshkol.syntax.reader import read_syntax

        return print_program(expand_program(read_syntax(text, path), unbound_ok=True))
    if path.endswith(".mlir"):
        ctx, module = parse_mlir(text, path)
    else:
        ctx, module = dialect_module(text, path)
    if target == "eshkol":
        with ctx:
            return str(module)
    is_llvm = all(op.operation.name.startswith("llvm.") for op in module.body.operations)
    if not is_llvm:
        run_passes(ctx, module, PIPELINES["eshkol-cpu"])
    from eshkol.runtime.aot import optimize_llvm_ir, translate_to_llvm_ir

    with ctx:
        return optimize_llvm_ir(translate_to_llvm_ir(str(module)), options.opt_level)


# Heads of top-level forms whose value the REPL does not print.
_DEFINING = {"define", "define-syntax", "defmacro", "define-macro", "define-record-type",
             "define-values"}


class Repl:
    """Evaluates REPL inputs: each input is compiled as a library of its own, importing the
    prelude and every earlier input, so definitions persist; values of expressions are
    printed with ``write``."""

    def __init__(self, options: Options) -> None:
        from eshkol.runtime.jit import Session

        libs = _libraries()
        self.options = options
        self.imports = _imports(libs)
        self.session = Session(["eshkol"], [lib.shared for lib in libs])
        self.count = 0

    def eval(self, text: str) -> bool:
        """Evaluate one input; False if it failed (the error has been printed)."""
        from eshkol.lower.pipelines import PIPELINES
        from eshkol.lower.to_llvm import library_entry
        from eshkol.syntax.datum import SList, Symbol
        from eshkol.syntax.reader import read_syntax

        self.count += 1
        name = f"repl{self.count}"
        file = f"<repl {self.count}>"
        forms = read_syntax(text, file)
        if not forms:
            return True
        last = forms[-1]
        head = last.e.items[0].e if isinstance(last.e, SList) and last.e.items else None
        if not (isinstance(head, Symbol) and head.name in _DEFINING):
            forms[-1] = _print_value(last)
        ctx, module, program = _compile_forms(forms, name, self.imports)
        run_passes(ctx, module, PIPELINES["eshkol-cpu"])
        with ctx:
            ok = self.session.run_module(module, name, library_entry(name), self.options.opt_level)
        for i, g in enumerate(program.globals):
            if not g.startswith("%"):
                self.imports[g] = (name, i)
        return ok

    def close(self) -> None:
        self.session.close()


def _print_value(form):
    """``(let ((v form)) (if (eq? v (if #f #f)) v (begin (write v) (newline))))``."""
    from eshkol.syntax.datum import SList, Symbol, Syntax

    loc = form.loc

    def s(x):
        if isinstance(x, list):
            return Syntax(SList([s(i) for i in x]), loc)
        if isinstance(x, str):
            return Syntax(Symbol(x), loc)
        return x if isinstance(x, Syntax) else Syntax(x, loc)

    v = "%repl-value"
    return s(["let", [[v, form]],
              ["if", ["eq?", v, ["if", False, False]], v, ["begin", ["write", v], ["newline"]]]])


def _compile_forms(forms, library: str, imports):
    from eshkol.dialect.ops import make_context
    from eshkol.expand.expander import expand_program
    from eshkol.frontend.emit import emit_module

    ctx = make_context()
    with ctx:
        program = expand_program(forms, imports=imports)
        module = emit_module(program, library=library)
    return ctx, module, program
