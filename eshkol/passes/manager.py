"""Run pass pipelines written mlir-opt style, mixing Eshkol passes with upstream ones.

``builtin.module(eshkol-fold-constants,canonicalize,eshkol-to-llvm)``: names found in our
registry run as Python passes inside an MLIR PassManager; anything else goes to MLIR's own
pipeline parser, so upstream passes keep their usual syntax and options.
"""

from __future__ import annotations

from mlir import ir, passmanager

from eshkol.lower.pipelines import PIPELINES
from eshkol.passes.registry import PASSES
from eshkol.syntax.diagnostics import EshkolError


def split_pipeline(text: str) -> list[str]:
    """Top-level elements of a pipeline string (anchor ``builtin.module(...)`` removed)."""
    text = text.strip()
    if text.startswith("builtin.module(") and text.endswith(")"):
        text = text[len("builtin.module("):-1]
    items, depth, cur = [], 0, []
    for ch in text:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        items.append("".join(cur).strip())
    return items


def _python_pass(info):
    def run(op: ir.Operation, pass_) -> None:
        try:
            info.run(op)
        except EshkolError:
            raise
        except Exception:  # report and stop the pipeline; the caller turns this into an error
            pass_.signal_pass_failure()
            raise
    run.__name__ = info.name.replace("-", "_")
    return run


def run_pipeline(module: ir.Module, passes: list[str]) -> None:
    """Run ``passes`` (names, possibly with upstream options) on ``module`` in place."""
    pm = passmanager.PassManager("builtin.module")
    expanded: list[str] = []
    for p in passes:  # named pipelines may appear anywhere a pass may
        expanded.extend(PIPELINES.get(p, [p]))
    if "eshkol-lower-stablehlo" in expanded:
        # Its output holds stablehlo ops in generic form (no stablehlo dialect in these
        # bindings); the flag cannot change once the pass manager runs.
        module.context.allow_unregistered_dialects = True
    for p in expanded:
        info = PASSES.get(p)
        if info is not None:
            pm.add(_python_pass(info), name=info.name, argument=info.name, description=info.description)
        else:
            try:
                pm.add(p)
            except ValueError as e:
                raise EshkolError(None, f"unknown pass or bad pass options: '{p}' ({e})") from None
    pm.run(module.operation)
