"""Source text → eshkol-dialect module (reader, expander, core analyses, emission)."""

from __future__ import annotations

from collections.abc import Callable

from mlir import ir

from eshkol.core import ast as A
from eshkol.expand.expander import expand_program
from eshkol.frontend.emit import emit_module
from eshkol.syntax.reader import read_syntax


def source_to_module(text: str, file: str, library: str | None = None,
                     imports: dict[str, tuple[str, int]] | None = None,
                     transform: Callable[[A.Program], None] | None = None,
                     internal: bool = False) -> tuple[ir.Module, A.Program]:
    """The eshkol-dialect module of a program (call inside a dialect context), and its core
    program. ``library`` compiles it as that library; ``imports`` are names other libraries
    export (name → (library, slot)), visible unless the program defines them itself;
    ``transform`` rewrites the core program before emission (e.g. XLA outlining);
    ``internal``: the compiler's own source, which may call the '%' primitives."""
    forms = read_syntax(text, file)
    program = expand_program(forms, imports=imports or {}, internal=internal)
    if transform is not None:
        transform(program)
    module = emit_module(program, library=library)
    if not module.operation.verify():
        raise RuntimeError("internal error: emitted module does not verify")
    return module, program
