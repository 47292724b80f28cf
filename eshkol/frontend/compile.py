"""Source text → eshkol-dialect module (reader, expander, core analyses, emission)."""

from __future__ import annotations

from mlir import ir

from eshkol.expand.expander import expand_program
from eshkol.frontend.emit import emit_module
from eshkol.syntax.reader import read_syntax


def source_to_module(text: str, file: str) -> ir.Module:
    """The eshkol-dialect module of a program (call inside a dialect context)."""
    forms = read_syntax(text, file)
    program = expand_program(forms)
    module = emit_module(program)
    if not module.operation.verify():
        raise RuntimeError("internal error: emitted module does not verify")
    return module
