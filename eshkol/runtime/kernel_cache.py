"""Where the generated kernel library lives, and loading it with the runtime.

Kept apart from lower/kernel_library.py (which builds it with MLIR) so that a cached run
loads the library without importing MLIR.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from eshkol.lower.cpu import host_features
from eshkol.runtime.cache import cache_dir
from eshkol.runtime.toolchain import version_stamp


def library_path() -> Path:
    """The shared object for this toolchain and host (it may not exist yet)."""
    return cache_dir() / f"kernels-{version_stamp()}-{host_features().key()}.so"


def object_path() -> Path:
    """The same kernels as a PIC object, linked into executables by ``eshkol build``."""
    return library_path().with_suffix(".o")


_loaded: list[ctypes.CDLL] = []


def load_kernel_library() -> bool:
    """Load the library if it has been built (its constructor registers the kernels with the
    runtime, which must be loaded first); False when there is none yet."""
    if _loaded:
        return True
    p = library_path()
    if not p.exists():
        return False
    _loaded.append(ctypes.CDLL(str(p), mode=ctypes.RTLD_GLOBAL))
    return True
