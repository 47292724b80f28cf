"""The REPL end to end: definitions persist between inputs, values print with `write`,
multi-line input is joined, and errors are reported without ending the session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ESHKOL = str(Path(sys.executable).with_name("eshkol"))


def _repl(stdin: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_STATE_HOME=str(tmp_path / "state"))
    return subprocess.run([ESHKOL, "repl"], input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_repl_session(tmp_path: Path) -> None:
    p = _repl('(define x 5)\n(+ x 1)\n(define (sq y)\n  (* y y))\n(map sq (list 1 2 x))\n'
              '(car 5)\n"still alive"\n(sq 12)\n(if #f #f)\n', tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["6", "(1 4 25)", '"still alive"', "144"]
    assert "<repl 5>:1:1: error: car: expected pair, got 5" in p.stderr


def test_repl_compile_errors_do_not_end_the_session(tmp_path: Path) -> None:
    p = _repl("(display undefined-thing)\n(+ 1 2)\n", tmp_path)
    assert p.returncode == 0
    assert "unbound variable: undefined-thing" in p.stderr
    assert p.stdout.strip() == "3"


def test_eshkol_without_arguments_starts_the_repl(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_STATE_HOME=str(tmp_path / "state"))
    p = subprocess.run([ESHKOL], input="(* 6 7)\n", capture_output=True, text=True, env=env, timeout=300)
    assert p.stdout.strip() == "42"
