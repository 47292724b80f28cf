"""Ahead-of-time builds: LLVM dialect → LLVM IR → object file (llc) → executable.

The executable links the static runtime (and the collector statically where libgc.a exists),
so it runs without Python or MLIR.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from eshkol.runtime.toolchain import runtime_static, tool

# The C entry point of an executable: initialise the runtime, run the program's top level.
# (esk_entry is declared so that the snippet parses on its own; the module defines it.)
MAIN = """
llvm.func @esk_entry()
llvm.func @esk_init(i32, !llvm.ptr)
llvm.func @esk_run(!llvm.ptr) -> i32
llvm.func @main(%argc: i32, %argv: !llvm.ptr) -> i32 {
  llvm.call @esk_init(%argc, %argv) : (i32, !llvm.ptr) -> ()
  %f = llvm.mlir.addressof @esk_entry : !llvm.ptr
  %r = llvm.call @esk_run(%f) : (!llvm.ptr) -> i32
  llvm.return %r : i32
}
"""


def _run(cmd: list[str], what: str, stdin: str | None = None) -> str:
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"internal error: {what} failed: {p.stderr.strip()[:2000]}")
    return p.stdout


def translate_to_llvm_ir(llvm_dialect_text: str) -> str:
    """LLVM IR text of an LLVM-dialect module (mlir-translate)."""
    return _run([tool("mlir-translate"), "--mlir-to-llvmir"], "mlir-translate", llvm_dialect_text)


def optimize_llvm_ir(ir_text: str, opt_level: int) -> str:
    """LLVM IR after LLVM's standard pipeline at ``opt_level`` (unchanged at 0)."""
    if opt_level == 0:
        return ir_text
    return _run([tool("opt"), f"-O{opt_level}", "-S"], "opt", ir_text)


_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib")


def _static_link_args() -> list[str]:
    """The runtime's libraries (Boehm GC, GMP): their static archives when present, so that
    executables run without them installed; else the shared libraries."""
    args = []
    for lib in ("gc", "gmp"):
        found = next((Path(d, f"lib{lib}.a") for d in _LIB_DIRS if Path(d, f"lib{lib}.a").exists()), None)
        args.append(str(found) if found else f"-l{lib}")
    return args


def compile_object(llvm_dialect_text: str, obj: Path, opt_level: int) -> None:
    """A position-independent object file from an LLVM-dialect module (opt, then llc)."""
    ir_text = optimize_llvm_ir(translate_to_llvm_ir(llvm_dialect_text), opt_level)
    with tempfile.TemporaryDirectory() as tmp:
        ll = Path(tmp, "prog.ll")
        ll.write_text(ir_text)
        _run([tool("llc"), f"-O{opt_level}", "-filetype=obj", "-relocation-model=pic", str(ll),
              "-o", str(obj)], "llc")


def build_executable(llvm_dialect_text: str, out: Path, opt_level: int,
                     libraries: list[Path] = ()) -> None:
    """Compile and link an executable from an LLVM-dialect module that includes ``MAIN``,
    with the object files of the libraries it imports."""
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp, "prog.o")
        compile_object(llvm_dialect_text, obj, opt_level)
        _run([tool("cc"), "-o", str(out), str(obj), *map(str, libraries), str(runtime_static()), *_static_link_args(),
              "-lm", "-lpthread", "-ldl"], "linking")
