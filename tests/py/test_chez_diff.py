"""Differential tests: Eshkol against Chez Scheme (``scheme --script``).

Every program in ``tests/diff/*.scm`` is plain Scheme accepted by both Chez 9.5 and Eshkol; both
must exit 0 and print exactly the same stdout. Programs named in ``KNOWN_DIFFERENCES`` are small
reproducers of places where Eshkol currently differs (xfail, strict).

Chez 9.5 lacks the R7RS form of ``define-record-type``, so a small shim (``CHEZ_PRELUDE``) is
prepended to every program before Chez runs it; Eshkol always runs the file unchanged.

The hypothesis tests generate random arithmetic and list expressions, put them all in one
program, and compare the two implementations line by line (one compile per example keeps it cheap).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
DIFF_DIR = ROOT / "tests" / "diff"
PROGRAMS = sorted(DIFF_DIR.glob("*.scm"))
ESHKOL = Path(sys.executable).with_name("eshkol")
CHEZ = shutil.which("scheme")

needs_chez = pytest.mark.skipif(CHEZ is None,
                                reason="Chez Scheme (`scheme`) is not on PATH; differential tests need it")

# Programs where Eshkol differs from Chez (reproducers kept out of the passing set).
# (boolean=?, symbol=?, cadddr, exact-integer-sqrt and multi-vector vector-map came with the
# v1.x standard library, and apply with more than 1024 arguments with its own buffer: their
# known_* programs now pass like the others.)
KNOWN_DIFFERENCES: dict[str, str] = {}

CHEZ_PRELUDE = """
(define-syntax define-record-type
  (syntax-rules ()
    ((_ type (ctor field ...) pred spec ...)
     (begin
       (define rtd (make-record-type-descriptor 'type #f #f #f #f
                     (vector (list 'mutable (car 'spec)) ...)))
       (define ctor (record-constructor (make-record-constructor-descriptor rtd #f #f)))
       (define pred (record-predicate rtd))
       (%r7-accessors rtd 0 spec ...)))))
(define-syntax %r7-accessors
  (syntax-rules ()
    ((_ rtd i) (begin))
    ((_ rtd i (f acc) rest ...)
     (begin (define acc (record-accessor rtd i)) (%r7-accessors rtd (+ i 1) rest ...)))
    ((_ rtd i (f acc mod) rest ...)
     (begin (define acc (record-accessor rtd i)) (define mod (record-mutator rtd i))
            (%r7-accessors rtd (+ i 1) rest ...)))))
"""

TIMEOUT = 120


def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=str(cache))


def run_eshkol(path: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ESHKOL), "run", str(path)], capture_output=True, text=True,
                          env=_env(cache), timeout=TIMEOUT)


def run_chez(path: Path, work: Path) -> subprocess.CompletedProcess:
    shimmed = work / ("chez_" + path.name)
    shimmed.write_text(CHEZ_PRELUDE + "\n" + path.read_text())
    return subprocess.run([CHEZ, "--script", str(shimmed)], capture_output=True, text=True,
                          env=_env(work / "chez-cache"), timeout=TIMEOUT)


@pytest.fixture(scope="module")
def all_results(tmp_path_factory) -> dict[str, tuple]:
    """Run every program under both implementations, two at a time (the machine has 2 cores)."""
    if CHEZ is None:
        return {}
    work = tmp_path_factory.mktemp("chezdiff")
    cache = work / "cache"

    def one(path: Path):
        return path.stem, (run_eshkol(path, cache), run_chez(path, work))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, PROGRAMS))


def _params():
    for p in PROGRAMS:
        marks = [needs_chez]
        if p.stem in KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(reason=KNOWN_DIFFERENCES[p.stem], strict=True))
        yield pytest.param(p, id=p.stem, marks=marks)


def test_enough_programs():
    assert len(PROGRAMS) - len(KNOWN_DIFFERENCES) >= 60
    assert all((DIFF_DIR / f"{k}.scm").exists() for k in KNOWN_DIFFERENCES)


@pytest.mark.parametrize("path", list(_params()))
def test_program_matches_chez(path: Path, all_results) -> None:
    esh, chez = all_results[path.stem]
    assert chez.returncode == 0, f"Chez failed on {path.name}:\n{chez.stderr}"
    assert esh.returncode == 0, f"Eshkol failed on {path.name}:\n{esh.stderr}"
    assert esh.stdout == chez.stdout


# ---------------------------------------------------------------- generated programs

LIMIT = 2**400


def _exact_literal(rng: random.Random) -> tuple[str, Fraction]:
    kind = rng.randrange(4)
    if kind == 0:
        n = rng.randint(-20, 20)
    elif kind == 1:
        n = rng.randint(-(2**62), 2**62)
    elif kind == 2:
        n = rng.randint(-(2**200), 2**200)
    else:
        num, den = rng.randint(-50, 50), rng.randint(1, 30)
        v = Fraction(num, den)
        return (str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"), v
    return str(n), Fraction(n)


def _exact_expr(rng: random.Random, depth: int) -> tuple[str, Fraction]:
    if depth <= 0 or rng.random() < 0.25:
        return _exact_literal(rng)
    for _ in range(3):  # few retries: each one recurses, so many would blow up exponentially
        op = rng.choice(["+", "-", "*", "/", "quotient", "remainder", "modulo", "expt", "neg", "abs"])
        a, av = _exact_expr(rng, depth - 1)
        if op in ("neg", "abs"):
            return (f"(- {a})", -av) if op == "neg" else (f"(abs {a})", abs(av))
        if op == "expt":
            k = rng.randint(0, 4)
            if abs(av) > 2**90:
                continue
            return f"(expt {a} {k})", av**k
        b, bv = _exact_expr(rng, depth - 1)
        if op == "+":
            v = av + bv
        elif op == "-":
            v = av - bv
        elif op == "*":
            v = av * bv
        elif op == "/":
            if bv == 0:
                continue
            v = av / bv
        else:
            if av.denominator != 1 or bv.denominator != 1 or bv == 0:
                continue
            x, y = av.numerator, bv.numerator
            q = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)
            v = Fraction({"quotient": q, "remainder": x - q * y, "modulo": x % y}[op])
        if abs(v.numerator) > LIMIT or v.denominator > LIMIT:
            continue
        return f"({op} {a} {b})", v
    return _exact_literal(rng)


def _float_expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        r = rng.random()
        if r < 0.5:
            return repr(rng.choice([0.5, 1.5, -2.25, 0.1, 3.0, 100.0, -0.125, 7.75, 1e10, 2.5e-3]))
        e, v = _exact_expr(rng, 2)
        if abs(v) > 10**300:
            return "1.0"
        return f"(exact->inexact {e})"
    op = rng.choice(["+", "-", "*"])
    return f"({op} {_float_expr(rng, depth - 1)} {_float_expr(rng, depth - 1)})"


def arith_case(rng: random.Random) -> str:
    if rng.random() < 0.75:
        return _exact_expr(rng, 4)[0]
    return _float_expr(rng, 3)


SYMS = ["a", "b", "c", "foo", "x"]


def _q(v) -> str:
    if isinstance(v, list):
        return "(" + " ".join(_q(x) for x in v) + ")"
    return str(v)


def _list_lit(rng: random.Random, numeric: bool) -> list:
    n = rng.randint(0, 6)
    if numeric:
        return [rng.randint(-100, 100) for _ in range(n)]
    return [rng.choice([rng.randint(-9, 9), rng.choice(SYMS), [rng.randint(0, 9)]]) for _ in range(n)]


def _list_expr(rng: random.Random, depth: int, numeric: bool) -> tuple[str, list]:
    """An expression evaluating to a proper list (numbers only when ``numeric``)."""
    if depth <= 0 or rng.random() < 0.3:
        v = _list_lit(rng, numeric)
        return f"'{_q(v)}", v
    for _ in range(3):  # few retries: each one recurses, so many would blow up exponentially
        op = rng.choice(["cdr", "cons", "append", "reverse", "list-tail", "map1", "map2", "list"])
        a, av = _list_expr(rng, depth - 1, numeric)
        if op == "cdr":
            if not av:
                continue
            return f"(cdr {a})", av[1:]
        if op == "cons":
            x = rng.randint(-9, 9)
            return f"(cons {x} {a})", [x] + av
        if op == "append":
            b, bv = _list_expr(rng, depth - 1, numeric)
            return f"(append {a} {b})", av + bv
        if op == "reverse":
            return f"(reverse {a})", av[::-1]
        if op == "list-tail":
            k = rng.randint(0, len(av))
            return f"(list-tail {a} {k})", av[k:]
        if op == "list":
            return f"(list (length {a}) {len(av)})", [len(av), len(av)]
        if not numeric:
            continue
        if op == "map1":
            m = rng.randint(-3, 3)
            return f"(map (lambda (x) (+ (* x {m}) 1)) {a})", [x * m + 1 for x in av]
        b, bv = _list_expr(rng, depth - 1, numeric)
        n = min(len(av), len(bv))
        return (f"(map (lambda (x y) (- x y)) (list-head* {a} {n}) (list-head* {b} {n}))",
                [x - y for x, y in zip(av[:n], bv[:n], strict=True)])
    v = _list_lit(rng, numeric)
    return f"'{_q(v)}", v


def list_case(rng: random.Random) -> str:
    numeric = rng.random() < 0.6
    e, v = _list_expr(rng, 3, numeric)
    r = rng.random()
    if r < 0.15:
        return f"(length {e})"
    if r < 0.3 and v:
        return f"(car {e})"
    if r < 0.4 and numeric:
        return f"(apply + {e})"
    return e


LIST_HEAD = "(define (list-head* l n) (if (= n 0) '() (cons (car l) (list-head* (cdr l) (- n 1)))))\n"


def _compare_generated(cases: list[str], tmp_path: Path) -> None:
    src = LIST_HEAD + "".join(f"(write {c}) (newline)\n" for c in cases)
    prog = tmp_path / "gen.scm"
    prog.write_text(src)
    esh = run_eshkol(prog, tmp_path / "cache")
    chez = run_chez(prog, tmp_path)
    assert chez.returncode == 0, chez.stderr
    assert esh.returncode == 0, esh.stderr
    e_lines, c_lines = esh.stdout.splitlines(), chez.stdout.splitlines()
    assert len(c_lines) == len(cases)
    for case, e, c in zip(cases, e_lines, c_lines, strict=False):  # lengths checked below
        assert e == c, f"(write {case}) -> eshkol {e!r}, chez {c!r}"
    assert len(e_lines) == len(c_lines)


GEN_SETTINGS = settings(max_examples=4, deadline=None, database=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                               HealthCheck.data_too_large])


@needs_chez
@GEN_SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_generated_arith_and_lists_match_chez(seed: int, tmp_path_factory) -> None:
    # A seeded PRNG rather than hypothesis's own random stream: generation stays bounded and
    # a failure is reproduced from the seed alone.
    rng = random.Random(seed)
    tmp_path = tmp_path_factory.mktemp("gen")
    cases = [arith_case(rng) for _ in range(60)] + [list_case(rng) for _ in range(60)]
    _compare_generated(cases, tmp_path)
