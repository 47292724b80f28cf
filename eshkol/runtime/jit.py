"""Run compiled programs in this process: through MLIR's ExecutionEngine (JIT) or by loading
a cached shared object."""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from pathlib import Path

from eshkol.runtime.toolchain import runtime_dir, runtime_shared, tool

ENTRY = "esk_entry"


def _runtime() -> ctypes.CDLL:
    # RTLD_GLOBAL: JIT code and cached objects resolve runtime symbols against this copy.
    rt = ctypes.CDLL(str(runtime_shared()), mode=ctypes.RTLD_GLOBAL)
    rt.esk_run.restype = ctypes.c_int
    rt.esk_run.argtypes = [ctypes.c_void_p]
    rt.esk_init.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    return rt


def _start(rt: ctypes.CDLL, entry: int, argv: list[str]) -> int:
    args = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
    rt.esk_init(len(argv), args)
    return rt.esk_run(entry)


def jit_run(llvm_module, argv: list[str], opt_level: int, save_shared: Path | None = None) -> int:
    """JIT-compile an LLVM-dialect module and run its entry; returns the exit status.

    With ``save_shared``, the JIT's object code is also linked into a shared object there
    (the compile cache), before the program runs (a program may end the process by ``exit``).
    """
    from mlir.execution_engine import ExecutionEngine

    rt = _runtime()
    engine = ExecutionEngine(llvm_module, opt_level=opt_level, shared_libs=[str(runtime_shared())])
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


def run_shared(path: Path, argv: list[str]) -> int:
    """Run a program from a cached shared object (no MLIR, no LLVM)."""
    rt = _runtime()
    lib = ctypes.CDLL(str(path))
    entry = ctypes.cast(getattr(lib, ENTRY), ctypes.c_void_p).value
    return _start(rt, entry, argv)
