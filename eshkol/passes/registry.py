"""The pass registry: every Eshkol pass by its command-line name.

A pass is a function ``run(module_op: ir.Operation) -> None`` that rewrites the module in
place and raises ``EshkolError`` (a user error) or ``RuntimeError`` (a compiler bug) on
failure. ``eshkol-opt --help`` lists this table; pipelines (lower/pipelines.py) are lists of
these names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlir import ir

from eshkol.passes import dce, fold_constants, lower_to_llvm


@dataclass(frozen=True)
class PassInfo:
    """A registered pass."""

    name: str
    description: str
    run: Callable[[ir.Operation], None]


PASSES: dict[str, PassInfo] = {
    p.name: p
    for p in [
        PassInfo("eshkol-fold-constants", fold_constants.__doc__.splitlines()[0], fold_constants.run),
        PassInfo("eshkol-dce", dce.__doc__.splitlines()[0], dce.run),
        PassInfo("eshkol-to-llvm", lower_to_llvm.__doc__.splitlines()[0], lower_to_llvm.run),
    ]
}
