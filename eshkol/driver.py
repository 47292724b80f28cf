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


def dialect_module(text: str, file: str):
    """(context, eshkol-dialect module) of a program."""
    from eshkol.dialect.ops import make_context
    from eshkol.frontend.compile import source_to_module

    ctx = make_context()
    with ctx:
        return ctx, source_to_module(text, file)


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


def llvm_module(text: str, file: str, options: Options):
    """(context, LLVM-dialect module) of a program through the CPU pipeline."""
    from eshkol.lower.pipelines import PIPELINES

    ctx, module = dialect_module(text, file)
    run_passes(ctx, module, PIPELINES["eshkol-cpu"])
    return ctx, module


def run_program(path: str, args: list[str], options: Options, verbose: bool = False) -> int:
    """``eshkol run``: from the cache when possible, else compile, cache and JIT."""
    text = read_source(path)
    key = cache.cache_key(text, path, options.key())
    entry = cache.entry_path(key)
    argv = [path, *args]
    if entry.exists():
        if verbose:
            print(f"eshkol: cache hit {entry}", file=sys.stderr)
        from eshkol.runtime.jit import run_shared

        return run_shared(entry, argv)
    if verbose:
        print(f"eshkol: cache miss; compiling into {entry}", file=sys.stderr)
    ctx, module = llvm_module(text, path, options)
    from eshkol.runtime.jit import jit_run

    with ctx:
        return jit_run(module, argv, options.opt_level, save_shared=entry)


def build_program(path: str, out: str, options: Options) -> None:
    """``eshkol build``: a native executable."""
    from mlir import ir

    from eshkol.runtime.aot import MAIN, build_executable

    ctx, module = llvm_module(read_source(path), path, options)
    with ctx:
        main = ir.Module.parse(MAIN)  # keep alive while its ops move
        for op in list(main.body.operations)[1:]:  # skip the esk_entry declaration
            module.body.append(op)
        build_executable(str(module), Path(out), options.opt_level)


def translate(path: str, target: str, options: Options) -> str:
    """``eshkol-translate``: the program (``.esk`` or ``.mlir``) as eshkol dialect or LLVM IR."""
    from eshkol.lower.pipelines import PIPELINES

    text = read_source(path)
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
