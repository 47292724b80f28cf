"""Primitives of the XLA target (runtime_c/xla_bridge.c).

``(%xla-call ID input ...)`` runs outlined tensor region ID (eshkol/passes/xla_outline.py) on
its inputs through the XLA driver that ``eshkol run --target=xla`` installs
(eshkol/runtime/xla.py); without one it raises a catchable error.
"""

from __future__ import annotations

from eshkol.dialect.primitives import prim

prim("%xla-call", "xla_call", 1, None, kind="xla")
