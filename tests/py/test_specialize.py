"""Specialized numeric code (passes/specialize.py) against Chez Scheme.

Random loops inside procedures mix fixnum, flonum and exact arithmetic: the specializer keeps
loop variables unboxed, speculates on parameters, and must leave for the generic code exactly
when a fixnum overflows, a speculated type is wrong, or a divisor is zero. Each generated
procedure is called with arguments of several kinds (small and near-overflow fixnums, flonums,
rationals, bignums), so both the typed path and every deopt are exercised; all results go in
one program, compared line by line with Chez (the oracle). A seeded PRNG keeps it reproducible.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ESHKOL = Path(sys.executable).with_name("eshkol")
CHEZ = shutil.which("scheme")

pytestmark = pytest.mark.skipif(CHEZ is None, reason="Chez Scheme (`scheme`) is not on PATH")

ARGS = ["0", "1", "-7", "12345", "4611686018427387903", "-4611686018427387904", "9223372036854775807",
        "2.5", "-0.0", "1e300", "1/3", "-5/7", "123456789012345678901234567890"]


def _expr(rng: random.Random, names: list[str], depth: int) -> str:
    """A numeric expression over ``names`` (no division by a variable: no errors)."""
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(names + ["1", "2", "3", "-1", "0.5", "1.5", "2.0"])
    op = rng.choice(["+", "-", "*", "+", "*", "max", "min", "abs", "exact->inexact", "quotient",
                     "remainder", "modulo"])
    if op in ("abs", "exact->inexact"):
        return f"({op} {_expr(rng, names, depth - 1)})"
    if op in ("quotient", "remainder", "modulo"):
        # integer operands only: a constant non-zero divisor, the dividend rounded
        return f"({op} (round-int {_expr(rng, names, depth - 1)}) {rng.choice(['3', '-7', '10'])})"
    return f"({op} {_expr(rng, names, depth - 1)} {_expr(rng, names, depth - 1)})"


def _procedure(rng: random.Random, k: int) -> str:
    n = rng.choice([3, 10, 70])
    step_x = _expr(rng, ["x", "y", "i"], 2)
    step_y = _expr(rng, ["x", "y", "i"], 2)
    test = rng.choice(["(< i n)", "(not (= i n))", "(<= (+ i 1) n)"])
    return (f"(define (p{k} a b n)\n"
            f"  (let loop ((i 0) (x a) (y b))\n"
            f"    (if {test} (loop (+ i 1) (clamp {step_x}) (clamp {step_y})) (list x y))))\n"
            f"(define (run{k}) (for-each (lambda (a) (show (p{k} a (- a 1) {n}))) args))\n")


# Flonums are compared as their exact values (and the sign of zero): the printers may choose
# different shortest digit strings for the same double.
PRELUDE = f"""
(define (num v) (if (and (inexact? v) (= v v) (< (abs v) 1e308)) (list 'fl (exact v) (eqv? v -0.0)) v))
(define (show x) (write (map num x)) (newline))
(define args (list {' '.join(ARGS)}))
;; keep magnitudes bounded (exact stays exact, huge flonums fold back) so loops stay cheap
(define (clamp v) (if (and (exact? v) (> (abs v) (expt 10 40))) (quotient (numerator v) 1000000007)
                      (if (and (inexact? v) (> (abs v) 1e200)) (/ v 1e100) v)))
(define (round-int v) (if (exact? v) (if (integer? v) v (numerator v)) (exact (round (if (> (abs v) 1e15) 0.0 v)))))
"""


def _program(seed: int, count: int) -> str:
    rng = random.Random(seed)
    procs = [_procedure(rng, k) for k in range(count)]
    calls = "".join(f"(run{k})\n" for k in range(count))
    return PRELUDE + "".join(procs) + calls


@pytest.mark.parametrize("seed", [1, 2])
def test_specialized_loops_match_chez(seed: int, tmp_path: Path) -> None:
    src = tmp_path / "spec.scm"
    src.write_text(_program(seed, 25))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    esh = subprocess.run([str(ESHKOL), "run", str(src)], capture_output=True, text=True, env=env,
                         timeout=600)
    chez = subprocess.run([CHEZ, "--script", str(src)], capture_output=True, text=True, timeout=600)
    assert chez.returncode == 0, chez.stderr
    assert esh.returncode == 0, esh.stderr
    e_lines, c_lines = esh.stdout.splitlines(), chez.stdout.splitlines()
    assert len(e_lines) == len(c_lines) == 25 * len(ARGS)
    for k, (e, c) in enumerate(zip(e_lines, c_lines, strict=True)):
        assert e == c, f"call {k} (procedure p{k // len(ARGS)}, argument {ARGS[k % len(ARGS)]}): eshkol {e}, chez {c}"
