"""Which optimized BLAS the C runtime loads (runtime_c/blas.c reads ``$ESHKOL_BLAS``).

numpy's wheels bundle OpenBLAS (``numpy.libs/libscipy_openblas64_*.so``); pointing the runtime
at it gives Eshkol programs run through the driver the same BLAS numpy uses, with no system
package.  numpy is located by a plain scan of ``sys.path`` (well under a millisecond; importing
numpy or even ``importlib.util.find_spec`` would cost milliseconds of startup on every run).
A user's own ``ESHKOL_BLAS`` (a path, or ``none``) is left alone.
"""

from __future__ import annotations

import os
import sys


def numpy_openblas() -> str | None:
    """Path of the OpenBLAS bundled with an installed numpy wheel, if any."""
    for entry in sys.path:
        libs = os.path.join(entry or ".", "numpy.libs")
        if not os.path.isdir(libs):
            continue
        names = sorted(os.listdir(libs))
        for prefix in ("libscipy_openblas", "libopenblas"):
            for name in names:
                if name.startswith(prefix) and ".so" in name:
                    return os.path.join(libs, name)
    return None


def configure_blas_env() -> None:
    """Set ``ESHKOL_BLAS`` to numpy's OpenBLAS unless the user chose one."""
    if os.environ.get("ESHKOL_BLAS"):
        return
    path = numpy_openblas()
    if path:
        os.environ["ESHKOL_BLAS"] = path
