"""The compile cache: compiled programs keyed by source, options and toolchain version.

Entries live under ``$XDG_CACHE_HOME/eshkol`` (``~/.cache/eshkol`` by default) as shared
objects; a hit loads one with ctypes and never imports MLIR or runs LLVM.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from eshkol.lower.cpu import host_features
from eshkol.runtime.toolchain import version_stamp


def cache_dir() -> Path:
    """The cache folder (created on demand)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = Path(base) / "eshkol"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_key(source: str, file: str, options: str) -> str:
    """Hash of everything that determines the compiled code (locations embed the file name)."""
    h = hashlib.sha256()
    # Tensor kernels are compiled for this host's SIMD features (lower/cpu.py).
    for part in (version_stamp(), host_features().key(), options, file, source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def entry_path(key: str) -> Path:
    """Where the shared object for ``key`` lives (it may not exist yet)."""
    return cache_dir() / f"{key}.so"
