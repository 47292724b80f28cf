"""Robustness: random input must never crash the compiler.

Random bytes, token soups and random well-formed programs go through ``eshkol run``: the exit
status is 0 or 1 and a failure is a diagnostic (``error:``), never a traceback, an internal
compiler error or a crash. The in-process frontend (reader + expander) is checked on many more
token soups: only ``EshkolError`` may escape it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eshkol.expand.expander import expand_program
from eshkol.syntax.diagnostics import EshkolError
from eshkol.syntax.reader import read_syntax

SUBPROCESS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CRASH_MARKERS = ("Traceback", "internal compiler error", "Segmentation", "LLVM ERROR", "Assertion")
_counter = itertools.count()


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


ESHKOL = _eshkol()


def assert_no_crash(tmp_path: Path, source: str) -> None:
    prog = tmp_path / f"rand{next(_counter)}.esk"
    prog.write_text(source, encoding="utf-8")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, env=env, timeout=20)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode in (0, 1), f"exit {proc.returncode} for:\n{source}\n{stderr}"
    if proc.returncode == 1:
        assert "error:" in stderr, f"no diagnostic for:\n{source}\n{stderr}"
    for marker in CRASH_MARKERS:
        assert marker not in stderr, f"{marker!r} for:\n{source}\n{stderr}"


# ---- strategies ---------------------------------------------------------------------------------

random_text = st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace"))

TOKENS = [
    "(", "(", "(", ")", ")", ")", "[", "]", "'", "`", ",", ",@", ".", "#(", "#t", "#f", "#true",
    "#\\a", "#\\space", "#\\x41", '"str"', '"a\\nb"', '"\\x41;"', '"', "0", "42", "-7", "1.5", "-0.0",
    "1e400", "1/3", "#x1F", "#e1.5", "#i3", "+inf.0", "+nan.0", "9223372036854775808", "x", "y", "f",
    "|odd sym|", "define", "lambda", "if", "let", "let*", "letrec", "set!", "begin", "quote",
    "quasiquote", "unquote", "cond", "case", "else", "=>", "and", "or", "when", "unless", "do",
    "car", "cdr", "cons", "+", "-", "*", "/", "display", "newline", "list", "vector-ref", "#;",
    "#|", "|#", "; comment\n", "\n", "#\\", "#", "\\", "λ", "...",
]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)

# A small grammar of well-formed programs.
SYMBOLS = ["x", "y", "z", "f", "g", "lst"]
atoms = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats(allow_nan=False).map(lambda v: repr(v).replace("inf", "+inf.0").replace("++", "+")
                                   .replace("-+", "-")),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["#t", "#f", "'()", "#\\a"]),
)


def _forms(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    sym = st.sampled_from(SYMBOLS)
    args = st.lists(children, max_size=4).map(" ".join)
    return st.one_of(
        st.tuples(st.sampled_from(["car", "+", "display", "list", "cdr", "cons", "*", "-"]), args).map(
            lambda t: f"({t[0]} {t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"(if {t[0]} {t[1]} {t[2]})"),
        st.tuples(sym, children, children).map(lambda t: f"(let (({t[0]} {t[1]})) {t[2]})"),
        st.tuples(st.lists(sym, max_size=3, unique=True), children).map(
            lambda t: f"(lambda ({' '.join(t[0])}) {t[1]})"),
        st.tuples(st.lists(sym, max_size=3, unique=True), children, args).map(
            lambda t: f"((lambda ({' '.join(t[0])}) {t[1]}) {t[2]})"),
        st.tuples(sym, children).map(lambda t: f"(set! {t[0]} {t[1]})"),
        st.tuples(children, children).map(lambda t: f"(begin {t[0]} {t[1]})"),
        children.map(lambda c: f"'{c}"),
        st.lists(children, max_size=3).map(lambda cs: f"'({' '.join(cs)})"),
    )


expressions = st.recursive(atoms, _forms, max_leaves=12)
toplevel = st.one_of(
    expressions,
    st.tuples(st.sampled_from(SYMBOLS), expressions).map(lambda t: f"(define {t[0]} {t[1]})"),
    st.tuples(st.sampled_from(SYMBOLS), st.lists(st.sampled_from(SYMBOLS), max_size=3, unique=True),
              expressions).map(lambda t: f"(define ({t[0]} {' '.join(t[1])}) {t[2]})"),
    expressions.map(lambda e: f"(display {e})"),
)
# Half the programs first define every symbol, so that fewer stop at "unbound variable".
PRELUDE = "".join(f"(define {s} '({i} {i}))\n" for i, s in enumerate(SYMBOLS))
programs = st.tuples(st.booleans(), st.lists(toplevel, min_size=1, max_size=6)).map(
    lambda t: (PRELUDE if t[0] else "") + "\n".join(t[1]))


# ---- tests through the whole toolchain ---------------------------------------------------------

@SUBPROCESS
@given(random_text)
def test_random_bytes_do_not_crash(tmp_path: Path, text: str) -> None:
    assert_no_crash(tmp_path, text)


@SUBPROCESS
@given(token_soup)
def test_token_soup_does_not_crash(tmp_path: Path, text: str) -> None:
    assert_no_crash(tmp_path, text)


@SUBPROCESS
@given(programs)
def test_random_programs_do_not_crash(tmp_path: Path, text: str) -> None:
    assert_no_crash(tmp_path, text)


# ---- the in-process frontend -------------------------------------------------------------------

def frontend(text: str) -> None:
    try:
        expand_program(read_syntax(text, "<soup>"))
    except EshkolError:
        pass


@settings(max_examples=300, deadline=None)
@given(token_soup)
def test_frontend_token_soup_raises_only_eshkol_error(text: str) -> None:
    frontend(text)


@settings(max_examples=300, deadline=None)
@given(programs)
def test_frontend_programs_raise_only_eshkol_error(text: str) -> None:
    frontend(text)


@settings(max_examples=100, deadline=None)
@given(random_text)
def test_frontend_random_text_raises_only_eshkol_error(text: str) -> None:
    frontend(text)
