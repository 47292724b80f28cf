"""Macros: the plain-Scheme macro programs of tests/lit/macros (those marked ``; CHEZ:``) print
what Chez Scheme prints; in-process checks of hygiene, syntax-rules corners, procedural macros,
diagnostics and the expansion speed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eshkol.core.print import print_program
from eshkol.expand.expander import expand_program
from eshkol.syntax.diagnostics import EshkolError
from eshkol.syntax.reader import read_syntax

ROOT = Path(__file__).resolve().parents[2]
MACROS = ROOT / "tests" / "lit" / "macros"
CHEZ = shutil.which("scheme")
CHEZ_PROGRAMS = sorted(p for p in MACROS.glob("*.esk") if "; CHEZ:" in p.read_text())


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


def expanded(text: str, file: str = "t.esk") -> str:
    return print_program(expand_program(read_syntax(text, file), unbound_ok=True))


def error_of(text: str, file: str = "t.esk") -> str:
    with pytest.raises(EshkolError) as info:
        expand_program(read_syntax(text, file))
    return str(info.value)


def test_enough_macro_programs() -> None:
    assert len(list(MACROS.glob("*.esk"))) >= 40
    assert len(CHEZ_PROGRAMS) >= 25


@pytest.mark.skipif(CHEZ is None, reason="Chez Scheme (scheme) is not installed")
@pytest.mark.parametrize("path", CHEZ_PROGRAMS, ids=lambda p: p.stem)
def test_same_output_as_chez(tmp_path: Path, path: Path) -> None:
    ss = tmp_path / (path.stem + ".ss")
    ss.write_text(path.read_text())
    want = subprocess.run([CHEZ, "--script", str(ss)], capture_output=True, text=True, timeout=60)
    assert want.returncode == 0, want.stderr
    got = subprocess.run([_eshkol(), "run", str(path)], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout


def test_hygiene_in_expanded_output() -> None:
    out = expanded("(define-syntax swap! (syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp)))))\n"
                   "(define tmp 1) (define y 2) (swap! tmp y)")
    assert "(let ((tmp.1 tmp))" in out and "(set! y tmp.1)" in out


def test_user_rebinding_of_list_does_not_break_quasiquote() -> None:
    out = expanded("(define (list . xs) 'mine) (define x 1) `(a ,x)")
    assert "(cons 'a (cons x '()))" in out


def test_macro_if_is_core_if_under_user_binding() -> None:
    out = expanded("(define-syntax m (syntax-rules () ((_ a) (if a 1 2))))\n(define (f if) (m if))")
    assert "(lambda (if)" in out and " ".join(out.split()).find("(if if 1 2)") >= 0


def test_custom_ellipsis_and_escape() -> None:
    out = expanded("(define-syntax m (syntax-rules ::: () ((_ x :::) '((x ...) :::))))\n(m a b)")
    assert "'((a ...) (b ...))" in out


def test_define_layer_expands() -> None:
    out = expanded("""(defmacro define-layer (name inputs outputs)
  `(begin
     (define ,(symbol-append name '-weights) (random-tensor ,inputs ,outputs))
     (define ,(symbol-append name '-bias) (zeros ,outputs))
     (define (,name x)
       (+ (matmul x ,(symbol-append name '-weights)) ,(symbol-append name '-bias)))))
(define-layer hidden 784 256)""")
    assert "(define hidden-weights (random-tensor 784 256))" in out
    assert "(define hidden-bias (zeros 256))" in out
    assert "(%add2 (matmul x hidden-weights) hidden-bias)" in out


def test_gensym_is_fresh() -> None:
    out = expanded("(define-macro (m) (list 'quote (list (gensym) (gensym))))\n(m)")
    a, b = out.strip().strip("'()").split()
    assert a != b


def test_no_match_names_use_and_definition() -> None:
    msg = error_of("(define-syntax swap! (syntax-rules () ((_ a b) (list a b))))\n(swap! 1)", "f.esk")
    assert msg == "f.esk:2:1: error: no rule of macro 'swap!' (defined at f.esk:1:1) matches this use"


def test_runaway_expansion_is_an_error() -> None:
    msg = error_of("(define-syntax f (syntax-rules () ((_ x) (+ 1 (f (x x))))))\n(f 1)")
    assert "does not terminate" in msg


def test_unbound_inside_expansion_names_the_use() -> None:
    msg = error_of("(define-syntax m (syntax-rules () ((_) (nope))))\n(define x 1)\n(m)", "f.esk")
    assert "unbound variable: nope" in msg and "at f.esk:3:1" in msg and "defined at f.esk:1:1" in msg


def test_bad_ellipsis_depth() -> None:
    assert "bad ellipsis depth" in error_of("(define-syntax m (syntax-rules () ((_ (a ...) ...) (list a ...))))")
