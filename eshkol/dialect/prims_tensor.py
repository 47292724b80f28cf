"""Tensor primitives (runtime_c/tensor.c): creation, inspection, elementwise, linear algebra,
reductions.  Declared with `prim(...)` like the core entries, with a `kind` for the passes."""

from __future__ import annotations

from eshkol.dialect.primitives import prim  # noqa: F401
