"""Exact (fixnum, bignum, rational) and double arithmetic of compiled programs, checked against
Python's int, fractions.Fraction and float.

Compiling is slow (~0.5 s a program), so each hypothesis example draws ~50 cases, emits one
program that ``write``s every result on its own line, runs it once with ``eshkol run`` and
compares each line with Python's result printed the Scheme way. Every case is emitted twice:
with literal operands (which the compiler may fold) and with operands passed through a global
procedure that is ``set!`` (so the operation happens at run time).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eshkol.syntax.printer import format_double, write_string

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_counter = itertools.count()


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


ESHKOL = _eshkol()

PRELUDE = "(define (id x) x)\n(set! id (lambda (x) x))\n"


def lit(x: int | float | Fraction) -> str:
    """Source text for a value; exact values beyond int64 and non-integral rationals are not
    literals yet, so they are built at run time from fixnums."""
    if isinstance(x, float):
        return format_double(x)
    if isinstance(x, Fraction):
        return f"(/ {lit(x.numerator)} {lit(x.denominator)})" if x.denominator != 1 else lit(x.numerator)
    if INT64_MIN <= x <= INT64_MAX:
        return str(x)
    hi, lo = divmod(x, 2**62)
    return f"(+ (* {lit(hi)} {2**62}) {lo})"


def exact(x: int | Fraction) -> int | Fraction:
    """A Python exact value normalised the Scheme way (an integral Fraction is an int)."""
    return x.numerator if isinstance(x, Fraction) and x.denominator == 1 else x


def emit(cases: list[tuple[str, int | float, int | float]]) -> str:
    lines = [PRELUDE]
    for op, a, b in cases:
        lines.append(f"(write ({op} {lit(a)} {lit(b)}))\n(newline)\n")
        lines.append(f"(write ({op} (id {lit(a)}) (id {lit(b)})))\n(newline)\n")
    return "".join(lines)


def run_program(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    prog = tmp_path / f"arith{next(_counter)}.esk"
    prog.write_text(source)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True, env=env, timeout=120)


# ---- Python models of the Scheme operations ----------------------------------------------------

def quotient(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def remainder(a: int, b: int) -> int:
    return a - b * quotient(a, b)


def fdiv(a: float, b: float) -> float:
    with np.errstate(all="ignore"):
        return float(np.float64(a) / np.float64(b))


FIX_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "quotient": quotient,
    "remainder": remainder,
    "modulo": lambda a, b: a % b,  # Python's % has the sign of the divisor, like modulo
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
}
DIVISIONS = {"quotient", "remainder", "modulo"}
FLO_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": fdiv,
    "<": lambda a, b: a < b,
}


def expected_fix(op: str, a: int, b: int) -> int | bool:
    return FIX_OPS[op](a, b)


RAT_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    "max": max,
    "min": min,
}


def expected_rat(op: str, a: Fraction, b: Fraction) -> int | Fraction | bool:
    r = RAT_OPS[op](Fraction(a), Fraction(b))
    return r if isinstance(r, bool) else exact(r)


def expected_float(op: str, a: int | float, b: int | float) -> float | bool:
    if op in ("<", "=", ">"):
        return FIX_OPS[op](a, b)  # Python compares int and float exactly, as Scheme does
    return FLO_OPS[op](float(a), float(b))


def check(tmp_path: Path, cases: list, expected: list) -> None:
    proc = run_program(tmp_path, emit(cases))
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.splitlines()
    want = [write_string(exact(e) if isinstance(e, Fraction) else e) for e in expected for _ in range(2)]
    assert len(got) == len(want), (got, want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        op, a, b = cases[i // 2]
        how = "literals" if i % 2 == 0 else "run time"
        assert g == w, f"({op} {lit(a)} {lit(b)}) [{how}]: got {g}, expected {w}"


# ---- strategies ---------------------------------------------------------------------------------

fixnums = st.one_of(
    st.integers(-100, 100),
    st.integers(-(2**31), 2**31),
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([0, 1, -1, INT64_MIN, INT64_MAX, 2**62, -(2**62), 2**32, -(2**32)]),
)
doubles = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.1, 5e-324, -5e-324, 2.2250738585072014e-308,
                     1.7976931348623157e308, -1.7976931348623157e308, 1e-300, 1e300, 9007199254740993.0]),
)


@st.composite
def fix_case(draw):
    op = draw(st.sampled_from(sorted(FIX_OPS)))
    a, b = draw(fixnums), draw(fixnums)
    if op in DIVISIONS and b == 0:
        b = draw(st.integers(1, 1000))
    return op, a, b


@st.composite
def flo_case(draw):
    op = draw(st.sampled_from(sorted(FLO_OPS)))
    return op, draw(doubles), draw(doubles)


# Mixed cases avoid an exact 0 operand: R7RS lets (* 0 1.5) be exact 0 (Chez) or 0.0.
nonzero_fixnums = st.one_of(st.integers(-1000, 1000), st.integers(-(2**62), 2**62)).filter(lambda n: n != 0)


@st.composite
def mixed_case(draw):
    op = draw(st.sampled_from(["+", "-", "*", "/", "<", "=", ">"]))
    i, x = draw(nonzero_fixnums), draw(doubles)
    return (op, i, x) if draw(st.booleans()) else (op, x, i)


# ---- tests --------------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(fix_case(), min_size=40, max_size=60))
def test_fixnum_ops(tmp_path: Path, cases: list) -> None:
    # Results beyond int64 are bignums: exact arithmetic never wraps or errors.
    check(tmp_path, cases, [expected_fix(*c) for c in cases])


@SETTINGS
@given(st.lists(flo_case(), min_size=40, max_size=60))
def test_double_ops(tmp_path: Path, cases: list) -> None:
    check(tmp_path, cases, [expected_float(*c) for c in cases])


@SETTINGS
@given(st.lists(mixed_case(), min_size=40, max_size=60))
def test_mixed_ops(tmp_path: Path, cases: list) -> None:
    check(tmp_path, cases, [expected_float(*c) for c in cases])


@st.composite
def overflow_case(draw):
    op = draw(st.sampled_from(["+", "-", "*", "quotient"]))
    if op == "quotient":
        return op, INT64_MIN, -1
    # Magnitudes above 2**62, so that no result lands exactly on INT64_MIN (which fits).
    big = st.integers(2**62 + 1, INT64_MAX)
    a = draw(big) * draw(st.sampled_from([1, -1]))
    if op == "*":
        b = draw(st.integers(2, 2**40)) * draw(st.sampled_from([1, -1]))
    elif op == "+":
        b = draw(big) * (1 if a > 0 else -1)
    else:
        b = draw(big) * (-1 if a > 0 else 1)
    assert not INT64_MIN <= expected_fix(op, a, b) <= INT64_MAX
    return op, a, b


@SETTINGS
@given(st.lists(overflow_case(), min_size=20, max_size=30))
def test_fixnum_overflow_gives_bignums(tmp_path: Path, cases: list) -> None:
    check(tmp_path, cases, [expected_fix(*c) for c in cases])


@pytest.mark.parametrize("expr, want", [("(- (id -9223372036854775808))", 2**63),
                                        ("(abs (id -9223372036854775808))", 2**63),
                                        ("(- (id 9223372036854775807) -1)", 2**63),
                                        ("(* (id 4611686018427387904) 4)", 2**64)])
def test_fixnum_negation_overflow_gives_bignums(tmp_path: Path, expr: str, want: int) -> None:
    proc = run_program(tmp_path, f"{PRELUDE}(write {expr})\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == str(want)


# Big operands: beyond int64 in both directions, so bignum paths and their normalisation back
# to fixnums are exercised.
bigs = st.one_of(fixnums, st.integers(-(2**200), 2**200),
                 st.sampled_from([2**63, -(2**63) - 1, 2**64, -(2**64), 10**30, -(10**30)]))


@st.composite
def big_case(draw):
    op = draw(st.sampled_from(sorted(FIX_OPS)))
    a, b = draw(bigs), draw(bigs)
    if op in DIVISIONS and b == 0:
        b = draw(st.integers(1, 2**100))
    return op, a, b


@SETTINGS
@given(st.lists(big_case(), min_size=40, max_size=60))
def test_bignum_ops(tmp_path: Path, cases: list) -> None:
    check(tmp_path, cases, [expected_fix(*c) for c in cases])


rationals = st.one_of(
    st.fractions(max_denominator=1000),
    st.builds(Fraction, st.integers(-(2**80), 2**80), st.integers(1, 2**70)),
    st.integers(-100, 100).map(Fraction),
)


@st.composite
def rat_case(draw):
    op = draw(st.sampled_from(sorted(RAT_OPS)))
    a, b = draw(rationals), draw(rationals)
    if op == "/" and b == 0:
        b = Fraction(1, 3)
    return op, exact(a), exact(b)


@SETTINGS
@given(st.lists(rat_case(), min_size=40, max_size=60))
def test_rational_ops(tmp_path: Path, cases: list) -> None:
    check(tmp_path, cases, [expected_rat(*c) for c in cases])


@SETTINGS
@given(st.lists(st.one_of(rationals, bigs.map(Fraction)), min_size=30, max_size=40))
def test_exact_to_inexact_is_correctly_rounded(tmp_path: Path, values: list) -> None:
    # float(Fraction) and float(int) round to nearest, ties to even, like exact->inexact.
    values = [exact(v) for v in values if abs(v) < 2**1000]
    src = PRELUDE + "".join(f"(write (exact->inexact {lit(v)}))\n(newline)\n" for v in values)
    proc = run_program(tmp_path, src)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [format_double(float(v)) for v in values]
