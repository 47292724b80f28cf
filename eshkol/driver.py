"""The compiler driver: source → eshkol dialect → pipeline → LLVM, then JIT, cache or build.

The command-line tools call these functions; each stage below lives in its own package.
MLIR is imported lazily so that a cache hit never pays for it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from eshkol.runtime import cache
from eshkol.syntax.diagnostics import EshkolError, Loc


@dataclass(frozen=True)
class Options:
    """What determines the compiled code (part of the cache key)."""

    opt_level: int = 2
    target: str = "cpu"  # where tensor code runs: cpu, or xla (regions through XLA), or cuda
    gpu_chip: str | None = None      # cuda: the PTX's chip (default sm_90) and PTX ISA version
    gpu_features: str | None = None

    def key(self) -> str:
        gpu = f"-{self.gpu_chip}{self.gpu_features}" if self.target == "cuda" else ""
        return f"O{self.opt_level}" + ("" if self.target == "cpu" else f"-{self.target}") + gpu


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
        imports = _resolve(text, file)[1]
    ctx, module, _ = _compile_source(text, file, library, imports)
    return ctx, module


def _compile_source(text: str, file: str, library: str | None, imports, transform=None):
    from eshkol.dialect.ops import make_context
    from eshkol.frontend.compile import source_to_module

    ctx = make_context()
    with ctx:
        module, program = source_to_module(text, file, library, imports, transform)
    return ctx, module, program


def parse_mlir(text: str, file: str):
    """(context, module) parsed from MLIR text in any dialect we load."""
    from mlir import ir

    from eshkol.dialect.ops import make_context

    ctx = make_context()
    # eshkol-lower-stablehlo's output: stablehlo ops in generic form (no such dialect here).
    ctx.allow_unregistered_dialects = '"stablehlo.' in text
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
    """A compiled library (the prelude, a stdlib module, a user module): shared object (JIT,
    cached runs), PIC object (executables), the slot of each name it exports (or
    [library, slot] for a name it re-exports), the libraries it imports (loaded before it)
    and the names its own source sees (eshkol/expand/modules.py)."""

    name: str
    key: str
    shared: Path
    obj: Path
    exports: dict[str, int | list]
    deps: tuple[Library, ...] = ()
    source: Path | None = None
    visible: dict = field(default_factory=dict, compare=False, hash=False)
    uses: tuple[str, ...] = ()  # names of the libraries its code refers to

    def used_deps(self) -> list[Library]:
        """The imported libraries its code uses: only these are built and loaded with it (a
        user module imports the whole implicit stdlib but uses a few of its modules)."""
        return [d for d in self.deps if d.name in self.uses]

    def imports(self) -> dict[str, tuple[str, int]]:
        return {n: (self.name, i) if isinstance(i, int) else (i[0], i[1])
                for n, i in self.exports.items()}

    def ensure_built(self) -> None:
        """Compile the library (and what it imports) unless the cache has it: only programs
        that use a library pay for compiling it, once."""
        for d in self.used_deps():
            d.ensure_built()
        if not (self.shared.exists() and self.obj.exists()):
            assert self.source is not None
            text, lib = read_source(str(self.source)), self
            if not lib.visible and lib.name != PRELUDE:  # recorded by an earlier run
                lib = replace(lib, visible=_resolve(text, str(self.source), (), "bundled")[1])
            _build_library(lib, text, str(self.source))


PRELUDE = "prelude"

# Libraries already resolved in this process: (source, size, mtime, search settings) → Library.
_LIBRARIES: dict[tuple, Library] = {}


def library(name: str, path: Path | None = None, loading: tuple[str, ...] = ()) -> Library:
    """The compiled library ``name`` (source ``path``, default the stdlib's), compiled once
    with the libraries it requires and then cached."""
    import json

    from eshkol.expand import modules
    from eshkol.runtime.toolchain import stdlib_dir

    src = path or stdlib_dir() / f"{name}.esk"
    if str(src) in loading:
        raise EshkolError(Loc(str(src), 0, 0), "modules require each other in a cycle: "
                                               + " -> ".join(loading + (str(src),)))
    try:
        st = src.stat()
        memo = (str(src.resolve()), st.st_size, st.st_mtime_ns, tuple(modules.INCLUDE_DIRS),
                modules.IMPLICIT_STDLIB, __import__("os").environ.get("ESHKOL_PATH", ""))
    except OSError:
        memo = None
    if memo is not None and memo in _LIBRARIES:
        return _LIBRARIES[memo]
    kind = "prelude" if name == PRELUDE else "bundled" if modules.is_bundled(src) else "user"
    resolved = _resolution(name, src, memo, kind, loading) if kind != "user" else None
    if resolved is not None:
        _LIBRARIES[memo] = resolved
        return resolved
    text = read_source(str(src))
    deps, visible, info = _resolve(text, str(src), loading + (str(src),), kind)
    key = cache.cache_key(text, f"<library {name} {src}>",
                          "lib-O2" + info.stamp() + "".join(f":{d.key}" for d in deps))
    # Unique symbol names: two modules may share a name (a user's utils.esk, the stdlib's).
    lib_name = name if name == PRELUDE else f"{name}.{key[:8]}"
    base = f"lib-{name.replace('/', '-')}-{key}"
    folder = cache.cache_dir()
    lib = Library(lib_name, key, folder / f"{base}.so", folder / f"{base}.o", {}, deps, src, visible)
    table = folder / f"{base}.json"
    if not table.exists():
        _write_exports(lib, text, str(src), table)
    data = json.loads(table.read_text())
    lib = Library(lib_name, key, lib.shared, lib.obj, data["exports"], deps, src, visible,
                  tuple(data["uses"]))
    if memo is not None:
        _LIBRARIES[memo] = lib
        if kind != "user" and not info.included:
            _save_resolution(memo, lib)
    return lib


# A bundled library's resolution (its dependencies, cache key, export table) is kept on disk,
# keyed by the source's path, size and mtime, the search settings and the compiler's version:
# a run then reads one small file per library instead of reading and parsing the ~60 stdlib
# sources to find what each requires (~0.2 s of every run). User modules are always resolved:
# what their requires find depends on the working folder and on files that may appear.


def _resolution_file(memo: tuple) -> Path:
    import hashlib

    from eshkol.runtime.toolchain import version_stamp

    digest = hashlib.sha256(repr((memo, version_stamp())).encode()).hexdigest()[:24]
    return cache.cache_dir() / f"resolve-{digest}.json"


def _save_resolution(memo: tuple, lib: Library) -> None:
    import json
    import os

    record = {"name": lib.name, "key": lib.key, "shared": str(lib.shared), "obj": str(lib.obj),
              "exports": lib.exports, "uses": list(lib.uses),
              "deps": [[d.name.rsplit(".", 1)[0] if d.name != PRELUDE else PRELUDE, str(d.source), d.key]
                       for d in lib.deps]}
    path = _resolution_file(memo)
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache: resolve every time


def _resolution(name: str, src: Path, memo: tuple | None, kind: str,
                loading: tuple[str, ...]) -> Library | None:
    """The library as recorded by an earlier run, if that record is still right (every
    dependency resolves to the key recorded with it). Its ``visible`` names are left empty:
    only compiling it needs them (Library.ensure_built resolves it again then)."""
    import json

    if memo is None:
        return None
    try:
        record = json.loads(_resolution_file(memo).read_text())
    except (OSError, ValueError):
        return None
    deps = []
    for dep_name, dep_src, dep_key in record["deps"]:
        dep = library(dep_name, None if dep_name == PRELUDE else Path(dep_src), loading + (str(src),))
        if dep.key != dep_key:
            return None
        deps.append(dep)
    return Library(record["name"], record["key"], Path(record["shared"]), Path(record["obj"]),
                   record["exports"], tuple(deps), src, {}, tuple(record["uses"]))


def _write_exports(lib: Library, text: str, file: str, table: Path) -> None:
    """The export table (name → slot) from expanding the library: what programs need to be
    compiled against it, without compiling it."""
    import json
    import os

    from eshkol.expand.expander import expand_program
    from eshkol.expand.modules import export_table
    from eshkol.syntax.reader import read_syntax

    forms = read_syntax(text, file)
    program = expand_program(forms, imports=lib.visible)
    # Names starting with % are the library's own helpers, not exported. Slots follow the
    # order of Program.globals, which is also the order the lowering numbers them in.
    exports = export_table(forms, program.globals, lib.visible)
    uses = sorted({name for name, _ in program.imports.values()})
    tmp = Path(f"{table}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"exports": exports, "uses": uses}))
    os.replace(tmp, table)


def _resolve(text: str, file: str, loading: tuple[str, ...] = (), kind: str = "program"):
    """(libraries a source imports, each after its own dependencies, without repeats; the
    names it sees → (library, slot); its SourceInfo). ``kind``: 'program', 'user' (a user
    module), 'bundled' (a stdlib module) or 'prelude'. Programs and user modules import the
    prelude and the standard library implicitly, stdlib modules only the prelude."""
    from eshkol.expand import modules
    from eshkol.syntax.reader import read_syntax

    ordered: dict[str, Library] = {}
    visible: dict[str, tuple[str, int]] = {}

    def add(lib: Library) -> None:
        for d in lib.deps:
            add(d)
        ordered.setdefault(lib.key, lib)

    implicit_keys: set[str] = set()  # the implicit libraries and what they load

    def see_all(lib: Library, done: set[str]) -> None:
        # A plain require sees the module and what it loads (v1.x splices modules inline),
        # except the implicit libraries, which were seen first: seeing them again would undo
        # what the source imported since (a module's own implicit stdlib is not news).
        if lib.key in done or lib.key in implicit_keys:
            return
        done.add(lib.key)
        for d in lib.deps:
            see_all(d, done)
        visible.update(lib.imports())

    implicit: list[Library] = []
    if kind != "prelude":
        implicit.append(library(PRELUDE, loading=loading))
    if kind in ("program", "user") and modules.IMPLICIT_STDLIB:
        implicit.append(library(modules.STDLIB, loading=loading))
    for lib in implicit:
        add(lib)
        see_all(lib, set())
    implicit_keys.update(ordered)
    info = modules.source_info(read_syntax(text, file), file)
    here = Path(file).resolve().parent if file not in ("-", "") and not file.startswith("<") else Path.cwd()
    for spec in info.specs:
        if spec.name == modules.STDLIB and spec.path is None and any(
                lib.name.startswith(modules.STDLIB + ".") for lib in implicit):
            continue  # (require stdlib) is already implied
        lib = library(spec.name, modules.find_module(spec, here, kind == "bundled"), loading)
        add(lib)
        if spec.mods:
            visible.update(modules.apply_modifiers(lib.imports(), spec.mods, spec.loc,
                                                   spec.name.replace("/", ".")))
        else:
            see_all(lib, set())
    return tuple(ordered.values()), visible, info


def _dependencies(text: str, file: str, loading: tuple[str, ...] = (),
                  is_prelude: bool = False) -> tuple[Library, ...]:
    """The libraries a source imports, each after its own dependencies, without repeats: the
    prelude (unless this is the prelude), the standard library and every module it requires."""
    return _resolve(text, file, loading, "prelude" if is_prelude else "program")[0]


def _build_library(lib: Library, text: str, file: str) -> None:
    import os

    from eshkol.expand.modules import export_table
    from eshkol.lower.pipelines import PIPELINES
    from eshkol.runtime.aot import compile_object
    from eshkol.runtime.jit import link_shared
    from eshkol.syntax.reader import read_syntax

    ctx, module, program = _compile_source(text, file, lib.name, lib.visible)
    run_passes(ctx, module, PIPELINES["eshkol-cpu"])
    with ctx:
        llvm_text = str(module)
    if export_table(read_syntax(text, file), program.globals, lib.visible) != lib.exports:
        raise RuntimeError(f"internal error: library {lib.name} compiled differently from its export table")
    # Write beside the targets, then rename: a concurrent run never sees half a library.
    tmp = f".{os.getpid()}.tmp"
    obj, shared = Path(str(lib.obj) + tmp), Path(str(lib.shared) + tmp)
    compile_object(llvm_text, obj, opt_level=2)
    link_shared(obj, shared)
    os.replace(obj, lib.obj)
    os.replace(shared, lib.shared)


def _imports(libs: list[Library]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for lib in libs:  # later libraries win, as later definitions would
        out.update(lib.imports())
    return out


def llvm_module(text: str, file: str, options: Options, libs: list[Library],
                visible: dict[str, tuple[str, int]] | None = None, regions: list | None = None):
    """(context, LLVM-dialect module, the libraries its code uses, built) of a program
    through the CPU pipeline; ``visible``: the imported names it sees (default: all that
    ``libs`` export). For the xla target its tensor regions are outlined into ``regions``."""
    transform = None
    if options.target == "xla":
        from eshkol.passes.xla_outline import outline_program

        def transform(program):
            regions.extend(outline_program(program))
    ctx, module, program = _compile_source(text, file, None, _imports(libs) if visible is None else visible,
                                           transform)
    if options.target == "xla" and regions is not None:  # chains the AST outlining left (passes/lower_stablehlo.py)
        from eshkol.passes.lower_stablehlo import take_regions

        run_passes(ctx, module, ["eshkol-lower-stablehlo"])
        with ctx:
            take_regions(module.operation, regions)
    run_passes(ctx, module, _target_pipeline(ctx, module, options))
    needed = _needed(libs, {lib for lib, _ in program.imports.values()})
    for lib in needed:
        lib.ensure_built()
    from eshkol.lower import kernel_library

    with ctx:
        if kernel_library.uses_tensors(module):  # build the runtime's kernels once
            kernel_library.ensure_built()
    return ctx, module, needed


def _target_pipeline(ctx, module, options: Options) -> list[str]:
    """The pipeline of ``options.target``; for cuda the GPU options are checked and recorded
    on the module (eshkol-cuda-kernels reads them)."""
    from eshkol.lower.pipelines import PIPELINES

    if options.target != "cuda":
        return PIPELINES["eshkol-cpu"]
    from eshkol.lower.cuda import set_target

    with ctx:
        set_target(module, options.gpu_chip, options.gpu_features)
    return PIPELINES["eshkol-cuda"]


def _needed(libs: list[Library], used: set[str]) -> list[Library]:
    """The libraries among ``libs`` that the names in ``used`` come from, with their own
    dependencies, in load order."""
    keep: set[str] = set()

    def mark(lib: Library) -> None:
        if lib.key not in keep:
            keep.add(lib.key)
            for d in lib.used_deps():
                mark(d)

    for lib in libs:
        if lib.name in used:
            mark(lib)
    return [lib for lib in libs if lib.key in keep]


def run_program(path: str, args: list[str], options: Options, verbose: bool = False) -> int:
    """``eshkol run``: from the cache when possible, else compile, cache and JIT."""
    text = read_source(path)
    deps, visible, info = _resolve(text, path)
    libs = list(deps)
    # The program's code has the libraries' slot numbers built in: their keys are part of its
    # key, and so is the text of the files it includes.
    key = cache.cache_key(text, path, options.key() + info.stamp() + "".join(f":{lib.key}" for lib in libs))
    entry = cache.entry_path(key)
    # The libraries the compiled code uses, written before the entry itself (see below).
    uses = entry.with_name(entry.name + ".libs")
    # xla: the program's tensor regions, which the XLA driver compiles when they run.
    xla_regions = entry.with_name(entry.name + ".xla") if options.target == "xla" else None
    argv = [path, *args]
    if xla_regions is not None:
        from eshkol.runtime import xla
    if entry.exists() and uses.exists() and (xla_regions is None or xla_regions.exists()):
        if verbose:
            print(f"eshkol: cache hit {entry}", file=sys.stderr)
        from eshkol.runtime.jit import run_shared

        if xla_regions is not None:
            xla.install(xla.load_regions(xla_regions))
        return run_shared(entry, argv, [Path(p) for p in uses.read_text().split("\n") if p])
    if verbose:
        print(f"eshkol: cache miss; compiling into {entry}", file=sys.stderr)
    regions: list = []
    ctx, module, needed = llvm_module(text, path, options, libs, visible, regions)
    from eshkol.runtime.jit import jit_run

    if xla_regions is not None:
        xla.save_regions(xla_regions, regions)
        xla.install(regions)
    shared = [lib.shared for lib in needed]
    uses.write_text("".join(f"{p}\n" for p in shared))
    with ctx:
        return jit_run(module, argv, options.opt_level, save_shared=entry, libraries=shared)


def build_program(path: str, out: str, options: Options) -> None:
    """``eshkol build``: a native executable."""
    from mlir import ir

    from eshkol.runtime.aot import MAIN, build_executable

    text = read_source(path)
    deps, visible, _ = _resolve(text, path)
    ctx, module, needed = llvm_module(text, path, options, list(deps), visible)
    with ctx:
        main = ir.Module.parse(MAIN)  # keep alive while its ops move
        for op in list(main.body.operations)[1:]:  # skip the esk_entry declaration
            module.body.append(op)
        from eshkol.runtime.kernel_cache import object_path

        kernels = [object_path()] if object_path().exists() else []  # its constructor registers
        build_executable(str(module), Path(out), options.opt_level, [lib.obj for lib in needed] + kernels)


def translate(path: str, target: str, options: Options) -> str:
    """``eshkol-translate``: the program (``.esk`` or ``.mlir``) as eshkol dialect or LLVM IR."""
    from eshkol.lower.pipelines import PIPELINES

    text = read_source(path)
    if target == "expanded":
        from eshkol.core.print import print_program
        from eshkol.expand.expander import expand_program
        from eshkol.syntax.reader import read_syntax

        return print_program(expand_program(read_syntax(text, path), unbound_ok=True))
    if target == "stablehlo":
        from eshkol.expand.expander import expand_program
        from eshkol.lower.stablehlo_translate import translate_program
        from eshkol.syntax.reader import read_syntax

        return translate_program(expand_program(read_syntax(text, path), unbound_ok=True), path)
    if path.endswith(".mlir"):
        ctx, module = parse_mlir(text, path)
    else:
        ctx, module = dialect_module(text, path)
    if target == "eshkol":
        with ctx:
            return str(module)
    if target == "cuda":
        return _translate_cuda(ctx, module, options)
    is_llvm = all(op.operation.name.startswith("llvm.") for op in module.body.operations)
    if not is_llvm:
        run_passes(ctx, module, PIPELINES["eshkol-cpu"])
    from eshkol.runtime.aot import optimize_llvm_ir, translate_to_llvm_ir

    with ctx:
        return optimize_llvm_ir(translate_to_llvm_ir(str(module)), options.opt_level)


def _translate_cuda(ctx, module, options: Options) -> str:
    """The GPU module (PTX of the kernels the program's operations launch) and the host code."""
    from eshkol.lower import cuda
    from eshkol.runtime.aot import optimize_llvm_ir, translate_to_llvm_ir

    with ctx:
        used = cuda.used_kernels(module)
    pipeline = _target_pipeline(ctx, module, Options(options.opt_level, "cuda", options.gpu_chip,
                                                     options.gpu_features))
    run_passes(ctx, module, pipeline[:-1])  # up to eshkol-cuda-host, which consumes the GPU module
    with ctx:
        gpu_text = cuda.describe(cuda.module_gpu(module), used)
    run_passes(ctx, module, pipeline[-1:])
    with ctx:
        host = optimize_llvm_ir(translate_to_llvm_ir(str(module)), options.opt_level)
    return gpu_text + "\n; ==== host code (LLVM IR): calls runtime_c/cuda_shim.c ====\n" + host


# Heads of top-level forms whose value the REPL does not print.
_DEFINING = {"define", "define-syntax", "defmacro", "define-macro", "define-record-type",
             "define-values"}


class Repl:
    """Evaluates REPL inputs: each input is compiled as a library of its own, importing the
    prelude and every earlier input, so definitions persist; values of expressions are
    printed with ``write``."""

    def __init__(self, options: Options) -> None:
        from eshkol.runtime.jit import Session

        libs = list(_dependencies("", "<repl>"))
        for lib in libs:  # a session will use them: compile now rather than mid-input
            lib.ensure_built()
        self.options = options
        self.imports = _imports(libs)
        self.loaded = {lib.key for lib in libs}
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
        for lib in _dependencies(text, file):  # modules this input requires
            if lib.key not in self.loaded:
                self.loaded.add(lib.key)
                lib.ensure_built()
                self.session.load_library(lib.shared)
                self.imports.update(lib.imports())
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
