"""Source locations and compile-time diagnostics (``file:line:col: error: ...`` with a caret)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Loc:
    """A position in a source file; lines and columns count from 1."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN = Loc("<unknown>", 0, 0)

# Source texts by file name, so that a diagnostic can show the offending line.
_SOURCES: dict[str, str] = {}


def register_source(file: str, text: str) -> None:
    """Remember ``text`` as the contents of ``file`` for caret lines in diagnostics."""
    _SOURCES[file] = text


class EshkolError(Exception):
    """A compile-time error in the user's program, reported as ``loc: error: message``."""

    def __init__(self, loc: Loc | None, message: str) -> None:
        super().__init__(message)
        self.loc = loc or UNKNOWN
        self.message = message

    def render(self) -> str:
        """The diagnostic text: location, message and, when the source is known, a caret line."""
        head = str(self)
        text = _SOURCES.get(self.loc.file)
        if text is None or self.loc.line < 1:
            return head
        lines = text.splitlines()
        if self.loc.line > len(lines):
            return head
        src = lines[self.loc.line - 1].expandtabs(1)
        return f"{head}\n{src}\n{' ' * (self.loc.col - 1)}^"

    def __str__(self) -> str:
        if self.loc.line < 1:  # no position: name the file when there is one
            where = "" if self.loc is UNKNOWN or self.loc.file == UNKNOWN.file else f"{self.loc.file}: "
            return f"{where}error: {self.message}"
        return f"{self.loc}: error: {self.message}"
