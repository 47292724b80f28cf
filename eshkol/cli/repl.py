"""``eshkol repl``: an interactive read-eval-print loop with line editing and history."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from eshkol.syntax.diagnostics import EshkolError

HISTORY = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "eshkol" / "history"


def _setup_line_editing() -> None:
    try:
        import readline
    except ImportError:  # no line editing on this Python: plain input still works
        return
    HISTORY.parent.mkdir(parents=True, exist_ok=True)
    try:
        readline.read_history_file(HISTORY)
    except OSError:
        pass
    readline.set_history_length(1000)
    import atexit

    atexit.register(lambda: _save_history(readline))


def _save_history(readline) -> None:
    try:
        readline.write_history_file(HISTORY)
    except OSError:
        pass


def _complete(text: str) -> bool:
    """Whether ``text`` holds whole forms (not an unterminated list or string)."""
    from eshkol.syntax.reader import read_syntax

    try:
        read_syntax(text, "<repl>")
    except EshkolError as e:
        return not e.message.startswith(("unterminated", "expected a datum"))
    return True


def run_repl(opt_level: int) -> int:
    """Read forms, evaluate them, print their values; errors are reported and the loop goes on."""
    from eshkol.driver import Options, Repl

    interactive = sys.stdin.isatty()
    if interactive:
        _setup_line_editing()
        print("Eshkol REPL. Ctrl-D exits.")
    repl = Repl(Options(opt_level))
    try:
        while True:
            try:
                text = input("> " if interactive else "")
                while not _complete(text):
                    text += "\n" + input(". " if interactive else "")
            except EOFError:
                break
            except KeyboardInterrupt:
                print()
                continue
            if not text.strip():
                continue
            try:
                repl.eval(text)
            except EshkolError as e:
                print(e.render(), file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        repl.close()
    if interactive:
        print()
    return 0
