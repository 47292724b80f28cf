"""Builtins of Eshkol v1.x (COMPAT.md sections A and B) that are neither tensor nor calculus
operations: the internal entries behind the v1.x special forms (``extern``, keyword
parameters, ``with-region``) and the v1.x procedures implemented in C (runtime_c/compat*.c).

Entries here are registered after the core ones, so a name declared again replaces the core
entry (used where v1.x accepts more arguments than R7RS does)."""

from __future__ import annotations

from eshkol.dialect.primitives import prim

# ---- internal entries of special forms (eshkol/expand/compat.py) -----------------------------
prim("%ffi-proc", "ffi_proc", 4)
prim("%ffi-var", "ffi_var", 2)
prim("%kw-parse", "kw_parse", 3)
prim("%with-region", "with_region", 2)
