"""The numeric tower of compiled programs: bignums, exact rationals and doubles together.

Each test compiles one program of many ``(write ...)`` lines and compares every line with the
value Python computes (int, fractions.Fraction, float) printed the Scheme way; when Chez Scheme
is installed, the same expressions also run there and must print the same text. Literals beyond
int64 and rational literals are not compiled yet, so big values are built with arithmetic.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from eshkol.syntax.printer import write_string

PRELUDE = "(define (id x) x)\n(set! id (lambda (x) x))\n"
TEN30 = "(expt 10 30)"
BIG63 = "(* 4611686018427387904 2)"  # 2^63, one past the largest fixnum


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


def scheme_text(v: object) -> str:
    if isinstance(v, Fraction) and v.denominator == 1:
        v = v.numerator
    return write_string(v)


# (expression, expected value, also check against Chez)
CASES: list[tuple[str, object, bool]] = [
    # bignums
    ("(expt 2 100)", 2**100, True),
    ("(+ 9223372036854775807 1)", 2**63, True),
    ("(- -9223372036854775808 1)", -(2**63) - 1, True),
    ("(* 99999999999 99999999999)", 99999999999**2, True),
    ("(* 4611686018427387904 4)", 2**64, True),
    ("(- (* 4611686018427387904 4) (* 4611686018427387904 4))", 0, True),
    ("(- (+ 9223372036854775807 1) 1)", 2**63 - 1, True),
    ("(- -9223372036854775808)", 2**63, True),
    ("(abs -9223372036854775808)", 2**63, True),
    ("(quotient -9223372036854775808 -1)", 2**63, True),
    (f"(quotient {TEN30} 7)", 10**30 // 7, True),
    (f"(remainder (- {TEN30}) 7)", -(10**30 % 7), True),
    (f"(modulo (- {TEN30}) 7)", (-(10**30)) % 7, True),
    (f"(modulo {TEN30} (- (expt 3 40)))", 10**30 % -(3**40), True),
    ("(gcd (expt 2 70) (expt 6 30))", math.gcd(2**70, 6**30), True),
    ("(lcm (expt 2 70) (expt 6 30))", 2**70 * 6**30 // math.gcd(2**70, 6**30), True),
    ("(expt -3 41)", (-3) ** 41, True),
    ("(expt 7 -2)", Fraction(1, 49), True),
    ("(square (expt 2 40))", 2**80, False),
    (f"(* {TEN30} {TEN30})", 10**60, True),
    (f"(/ (* {TEN30} {TEN30}) {TEN30})", 10**30, True),
    (f"(< {TEN30} (+ {TEN30} 1))", True, True),
    (f"(= {BIG63} (+ 9223372036854775807 1))", True, True),
    (f"(= (+ {TEN30} 1) {TEN30})", False, True),
    (f"(> (- {TEN30}) -9223372036854775808)", False, True),
    (f"(odd? (+ 1 {TEN30}))", True, True),
    (f"(even? {TEN30})", True, True),
    (f"(exact? {TEN30})", True, True),
    (f"(integer? {TEN30})", True, True),
    (f"(exact-integer? {TEN30})", True, False),
    (f"(eqv? {TEN30} (expt 10 30))", True, True),
    (f"(equal? (list {TEN30}) (list (expt 10 30)))", True, True),
    (f"(max {TEN30} 1)", 10**30, True),
    (f"(min {TEN30} 1.0)", 1.0, True),
    (f"(max {TEN30} 1.0)", 1e30, True),
    (f"(number->string {TEN30})", str(10**30), True),
    ("(number->string (expt 2 100) 16)", format(2**100, "X"), True),
    (f"(exact->inexact {TEN30})", 1e30, True),
    ("(exact->inexact (+ (* 1234567890123 (expt 10 10)) 4567890123))", 1.2345678901234568e22, True),
    ("(exact->inexact (expt 10 400))", math.inf, True),
    ("(sqrt (expt 10 40))", 10**20, True),
    ("(sqrt (+ 1 (expt 10 40)))", 1e20, True),
    ("(log (expt 10 400))", 921.0340371976182, True),
    ("(string->number \"123456789012345678901234567890\")", 123456789012345678901234567890, True),
    ("(string->number \"-9223372036854775809\")", -(2**63) - 1, True),
    # rationals
    ("(/ 1 3)", Fraction(1, 3), True),
    ("(/ 6 4)", Fraction(3, 2), True),
    ("(/ 6 -4)", Fraction(-3, 2), True),
    ("(/ 6 3)", 2, True),
    ("(/ 3)", Fraction(1, 3), True),
    ("(+ (/ 1 2) (/ 1 3))", Fraction(5, 6), True),
    ("(- (/ 1 2) (/ 1 3))", Fraction(1, 6), True),
    ("(* (/ 2 3) 3)", 2, True),
    ("(/ (/ 1 2) (/ 1 4))", 2, True),
    ("(+ (/ 1 3) (/ 2 3))", 1, True),
    (f"(/ {TEN30} (expt 10 32))", Fraction(1, 100), True),
    (f"(/ 1 {TEN30})", Fraction(1, 10**30), True),
    ("(- (/ 1 3))", Fraction(-1, 3), True),
    ("(abs (/ -1 2))", Fraction(1, 2), True),
    ("(exact->inexact (/ 1 3))", 1 / 3, True),
    ("(inexact (/ 1 3))", 1 / 3, True),
    ("(exact->inexact (/ (expt 10 400) (+ 1 (expt 10 399))))", 10.0, True),
    ("(exact 0.1)", Fraction(0.1), True),
    ("(inexact->exact 0.1)", Fraction(3602879701896397, 36028797018963968), True),
    ("(exact 1.5)", Fraction(3, 2), True),
    ("(exact 1e20)", 10**20, True),
    ("(exact -0.0)", 0, True),
    ("(sqrt (/ 1 4))", Fraction(1, 2), True),
    ("(sqrt (/ 9 (expt 10 40)))", Fraction(3, 10**20), True),
    ("(sqrt (/ 1 3))", math.sqrt(1 / 3), True),
    ("(floor (/ -7 2))", -4, True),
    ("(ceiling (/ -7 2))", -3, True),
    ("(truncate (/ -7 2))", -3, True),
    ("(round (/ 5 2))", 2, True),
    ("(round (/ 7 2))", 4, True),
    ("(round (/ -5 2))", -2, True),
    ("(round (/ 8 3))", 3, True),
    ("(numerator (/ 6 4))", 3, True),
    ("(denominator (/ 6 4))", 2, True),
    ("(denominator 5)", 1, True),
    ("(numerator 0.5)", 1.0, True),
    ("(denominator 0.5)", 2.0, True),
    ("(expt (/ 1 2) 3)", Fraction(1, 8), True),
    ("(expt (/ 2 3) -3)", Fraction(27, 8), True),
    ("(expt 2 -2)", Fraction(1, 4), True),
    ("(< (/ 1 3) (/ 1 2))", True, True),
    ("(= (/ 1 2) (/ 2 4))", True, True),
    ("(= (/ 1 2) 0.5)", True, True),
    ("(< (/ 1 3) 0.3333333333333333)", False, True),
    ("(> (/ 1 3) 0.3333333333333333)", True, True),
    ("(max (/ 1 2) (/ 1 3))", Fraction(1, 2), True),
    ("(max (/ 1 2) 0.25)", 0.5, True),
    ("(+ (/ 1 2) 0.5)", 1.0, True),
    ("(* (/ 1 3) 3.0)", 1.0, True),
    ("(exact? (/ 1 2))", True, True),
    ("(integer? (/ 1 2))", False, True),
    ("(rational? (/ 1 2))", True, True),
    ("(rational? 1.5)", True, True),
    ("(rational? +inf.0)", False, True),
    ("(real? (/ 1 2))", True, True),
    ("(number? (/ 1 2))", True, True),
    ("(positive? (/ -1 2))", False, True),
    ("(negative? (/ -1 2))", True, True),
    ("(zero? (- (/ 1 2) (/ 2 4)))", True, True),
    ("(eqv? (/ 1 2) (/ 2 4))", True, True),
    ("(equal? (/ 1 2) (/ 2 4))", True, True),
    ("(eqv? 2 2.0)", False, True),
    ("(number->string (/ 1 3))", "1/3", True),
    ("(number->string (/ 1 3) 2)", "1/11", True),
    ("(string->number \"1/3\")", Fraction(1, 3), True),
    ("(string->number \"-6/4\")", Fraction(-3, 2), True),
    ("(string->number \"#e1.5\")", Fraction(3, 2), True),
    ("(string->number \"#e1.2e-3\")", Fraction(3, 2500), True),
    ("(string->number \"#i1/3\")", 1 / 3, True),
    ("(string->number \"#xff/2\")", Fraction(255, 2), True),
    ("(string->number \"1/0\")", False, True),
    # doubles and mixed exactness
    ("(expt 2.0 0.5)", math.sqrt(2.0), True),
    ("(expt 2 0.5)", 2**0.5, True),
    ("(expt 0 0)", 1, True),
    ("(expt 0.0 0)", 1, True),
    ("(expt 0 0.0)", 1.0, True),
    ("(expt 2.0 3)", 8.0, True),
    ("(sqrt 16)", 4, True),
    ("(sqrt 16.0)", 4.0, True),
    ("(sqrt 2)", math.sqrt(2), True),
    ("(* 0 1.5)", 0, True),
    ("(* 1.5 0)", 0, True),
    ("(+ 0 -0.0)", -0.0, True),
    ("(- 0 0.0)", -0.0, True),
    ("(- 0.0 0)", 0.0, True),
    ("(/ 1.0 0)", math.inf, True),
    ("(/ 1 0.0)", math.inf, True),
    ("(/ 0 2.5)", 0.0, True),
    ("(= 9007199254740993 9007199254740992.0)", False, True),
    ("(< 9007199254740992.0 9007199254740993)", True, True),
    ("(exact->inexact 9007199254740993)", 9007199254740992.0, True),
    ("(* 1.5 (expt 10 30))", 1.5 * 1e30, True),
    ("(exp 0)", 1, True),
    ("(exp (/ 1 2))", math.exp(0.5), True),
    ("(floor 2.5)", 2.0, True),
    ("(round 2.5)", 2.0, True),
    ("(round -3.5)", -4.0, True),
    ("(exact (floor 2.5))", 2, True),
    ("(number->string 255 16)", "FF", True),
    ("(number->string -255 2)", "-11111111", True),
    ("(number->string 1.5)", "1.5", True),
    ("(string->number \"#x1F\")", 31, True),
    ("(string->number \"ff\" 16)", 255, True),
    ("(string->number \"1e500\")", math.inf, True),
    ("(string->number \"+inf.0\")", math.inf, True),
    ("(string->number \".5\")", 0.5, True),
    ("(string->number \"1.\")", 1.0, True),
    ("(string->number \"abc\")", False, True),
    ("(string->number \"-\")", False, True),
    ("(string->number \"1/2/3\")", False, True),
    ("(nan? (string->number \"+nan.0\"))", True, True),
    ("(infinite? -inf.0)", True, True),
    ("(exact-integer? 5.0)", False, False),
]


def _run(cmd: list[str], source: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    prog = tmp_path / name
    prog.write_text(source)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([*cmd, str(prog)], capture_output=True, text=True, env=env, timeout=300)


def _program(exprs: list[str]) -> str:
    return PRELUDE + "".join(f"(write {e})\n(newline)\n" for e in exprs)


def _through_id(expr: str) -> str:
    """Wraps every numeric literal of expr in (id ...)."""
    return re.sub(r"(?<=[ (])([-+]?[0-9][0-9.e]*|[-+]inf\.0)(?=[ )])", r"(id \1)", expr)


@pytest.mark.parametrize("through_id", [False, True], ids=["direct", "via-procedure"])
def test_numeric_tower(tmp_path: Path, through_id: bool) -> None:
    exprs = [e for e, _, _ in CASES]
    if through_id:  # every operand arrives through a procedure: nothing is known at compile time
        exprs = [_through_id(e) for e in exprs]
    proc = _run([_eshkol(), "run"], _program(exprs), tmp_path, "tower.esk")
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.splitlines()
    want = [scheme_text(v) for _, v, _ in CASES]
    assert len(got) == len(want), (got, want)
    bad = [f"{e}: got {g}, expected {w}" for (e, _, _), g, w in zip(CASES, got, want, strict=True) if g != w]
    assert not bad, "\n".join(bad)


@pytest.mark.skipif(shutil.which("scheme") is None, reason="Chez Scheme not installed")
def test_numeric_tower_matches_chez(tmp_path: Path) -> None:
    exprs = [e for e, _, chez in CASES if chez]
    proc = _run(["scheme", "--script"], _program(exprs), tmp_path, "tower.ss")
    assert proc.returncode == 0, proc.stderr
    want = [scheme_text(v) for _, v, chez in CASES if chez]
    bad = [f"{e}: Chez prints {g}, expected {w}"
           for e, g, w in zip(exprs, proc.stdout.splitlines(), want, strict=True) if g != w]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("expr, message", [
    ("(sqrt -4)", "sqrt: negative argument -4 (complex numbers are not supported)"),
    ("(sqrt (- (expt 10 30)))", "sqrt: negative argument -1000000000000000000000000000000"),
    ("(/ 1 0)", "/: division by zero"),
    ("(/ (expt 10 30) 0)", "/: division by zero"),
    ("(quotient (expt 10 30) 0)", "quotient: division by zero"),
    ("(expt 0 -1)", "expt: division by zero"),
    ("(exact +inf.0)", "no exact representation"),
    ("(quotient (/ 1 2) 3)", "integer"),
])
def test_numeric_errors(tmp_path: Path, expr: str, message: str) -> None:
    proc = _run([_eshkol(), "run"], f'{PRELUDE}(display "before")\n(newline)\n(write {expr})\n',
                tmp_path, "err.esk")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout == "before\n"
    assert "error:" in proc.stderr and message in proc.stderr, proc.stderr
