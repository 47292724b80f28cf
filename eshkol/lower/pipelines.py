"""Named pipelines: each is a list of registered passes, read top to bottom.

    eshkol-optimize   eshkol dialect → eshkol dialect (folding, dead code)
    eshkol-to-llvm    eshkol dialect → LLVM dialect + runtime calls
    eshkol-cpu        the whole CPU path: optimize, then lower
"""

from __future__ import annotations

PIPELINES: dict[str, list[str]] = {
    "eshkol-optimize": ["eshkol-fold-constants", "eshkol-dce"],
    "eshkol-cpu": ["eshkol-fold-constants", "eshkol-dce", "eshkol-to-llvm"],
}

DESCRIPTIONS = {
    "eshkol-optimize": "optimize the eshkol dialect (fold constants, remove dead code)",
    "eshkol-cpu": "the CPU path: optimize, then lower to the LLVM dialect",
}
