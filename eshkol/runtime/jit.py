"""Run compiled programs in this process: through MLIR's ExecutionEngine (JIT) or by loading
a cached shared object."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from eshkol.runtime.blas import configure_blas_env
from eshkol.runtime.kernel_cache import load_kernel_library
from eshkol.runtime.toolchain import runtime_dir, runtime_shared, tool

ENTRY = "esk_entry"


def _runtime() -> ctypes.CDLL:
    configure_blas_env()  # before the runtime's first matrix product reads it
    # RTLD_GLOBAL: JIT code and cached objects resolve runtime symbols against this copy.
    rt = ctypes.CDLL(str(runtime_shared()), mode=ctypes.RTLD_GLOBAL)
    load_kernel_library()  # generated tensor kernels, once built (lower/kernel_library.py)
    rt.esk_run.restype = ctypes.c_int
    rt.esk_run.argtypes = [ctypes.c_void_p]
    rt.esk_init.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    return rt


def _start(rt: ctypes.CDLL, entry: int, argv: list[str]) -> int:
    args = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
    rt.esk_init(len(argv), args)
    return rt.esk_run(entry)


def _load_libraries(paths: list[Path]) -> None:
    # RTLD_GLOBAL: the program's code finds the libraries' exported globals by name.
    for p in paths:
        ctypes.CDLL(str(p), mode=ctypes.RTLD_GLOBAL)


def jit_run(llvm_module, argv: list[str], opt_level: int, save_shared: Path | None = None,
            libraries: list[Path] = ()) -> int:
    """JIT-compile an LLVM-dialect module and run its entry; returns the exit status.

    With ``save_shared``, the JIT's object code is also linked into a shared object there
    (the compile cache), before the program runs (a program may end the process by ``exit``).
    """
    from mlir.execution_engine import ExecutionEngine

    rt = _runtime()
    _load_libraries(list(libraries))
    engine = ExecutionEngine(llvm_module, opt_level=opt_level,
                             shared_libs=[str(runtime_shared()), *map(str, libraries)])
    # raw_lookup gives the packed-interface wrapper; for a function of no arguments and no
    # result it ignores its argument, so it can be called as void(void).
    entry = engine.raw_lookup(ENTRY)
    if not entry:
        raise RuntimeError("internal error: JIT module has no entry")
    if save_shared is not None:
        # Write beside the target, then rename: a concurrent reader never sees a partial file.
        fd, tmp = tempfile.mkstemp(dir=save_shared.parent, suffix=".tmp")
        os.close(fd)
        obj = Path(tmp).with_suffix(".o")
        try:
            engine.dump_to_object_file(str(obj))
            link_shared(obj, Path(tmp))
            os.replace(tmp, save_shared)
        finally:
            obj.unlink(missing_ok=True)
            Path(tmp).unlink(missing_ok=True)
    return _start(rt, entry, argv)


def link_shared(obj: Path, out: Path) -> None:
    """Link an object file into a shared object that finds the runtime by rpath."""
    rt = runtime_dir()
    subprocess.run([tool("cc"), "-shared", "-o", str(out), str(obj), f"-L{rt}", "-leshkol_rt",
                    f"-Wl,-rpath,{rt}", "-Wl,-z,notext"], check=True, capture_output=True)


def run_shared(path: Path, argv: list[str], libraries: list[Path] = ()) -> int:
    """Run a program from a cached shared object (no MLIR, no LLVM)."""
    rt = _runtime()
    _load_libraries(list(libraries))
    lib = ctypes.CDLL(str(path))
    entry = ctypes.cast(getattr(lib, ENTRY), ctypes.c_void_p).value
    return _start(rt, entry, argv)


class Session:
    """A runtime that stays up across many compiled modules (the REPL): each module is
    JIT-compiled, linked into a shared object and loaded globally, so later modules can use
    its globals; errors are reported without ending the process."""

    def __init__(self, argv: list[str], libraries: list[Path]) -> None:
        self.rt = _runtime()
        self.rt.esk_run_catching.restype = ctypes.c_int
        self.rt.esk_run_catching.argtypes = [ctypes.c_void_p]
        _load_libraries(libraries)
        self.libraries = list(libraries)
        self.dir = Path(tempfile.mkdtemp(prefix="eshkol-repl-"))
        args = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
        self._argv = args  # keep alive: the runtime records it for command-line
        self.rt.esk_init(len(argv), args)

    def load_library(self, shared: Path) -> None:
        """Make a compiled library's globals visible to the modules that follow."""
        _load_libraries([shared])
        self.libraries.append(shared)

    def run_module(self, llvm_module, name: str, entry: str, opt_level: int) -> bool:
        """Compile and load ``llvm_module`` as ``name``, run ``entry``; False if it raised."""
        from mlir.execution_engine import ExecutionEngine

        engine = ExecutionEngine(llvm_module, opt_level=opt_level,
                                 shared_libs=[str(runtime_shared()), *map(str, self.libraries)])
        obj, so = self.dir / f"{name}.o", self.dir / f"{name}.so"
        # Materialise the code through its public entry first: dumping an engine that has
        # compiled nothing makes it look up wrappers of internal functions, and abort.
        if not engine.raw_lookup(entry):
            raise RuntimeError(f"internal error: JIT module has no {entry}")
        engine.dump_to_object_file(str(obj))
        link_shared(obj, so)
        lib = ctypes.CDLL(str(so), mode=ctypes.RTLD_GLOBAL)
        self.libraries.append(so)
        fn = ctypes.cast(getattr(lib, entry), ctypes.c_void_p).value
        return self.rt.esk_run_catching(fn) == 0

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
