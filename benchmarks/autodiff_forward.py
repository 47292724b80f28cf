"""Forward mode by transformation vs the function alone vs runtime dual numbers.

A scalar function with an N-step loop (default 10^6) is timed inside one program: the
function alone, ``derivative`` of it through the autodiff pass (the procedure is a known
top-level one: its JVP procedure runs, unboxed by the specializer), and ``derivative`` of the
same procedure through a reassigned global (the pass leaves it to the runtime's dual
numbers). Each is the best of a few repetitions; the derivatives must agree. The issue's
goal: the transformed derivative within 2x of the function alone.

Run as ``.venv/bin/python benchmarks/autodiff_forward.py [--n STEPS] [--reps R]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROGRAM = """
(define (f x)
  (let loop ((i 0) (acc x))
    (if (< i {n}) (loop (+ i 1) (+ (* 0.5 (sin acc)) (* 0.25 x))) acc)))
(define rt #f)
(set! rt f)
(define (ms) (* 1000.0 (current-second)))
(define (best thunk)
  (let loop ((k 0) (b 1e300) (v 0))
    (if (= k {reps}) (cons b v)
        (let* ((t0 (ms)) (r (thunk)) (t (- (ms) t0)))
          (loop (+ k 1) (min b t) r)))))
(define a (best (lambda () (f 0.7))))
(define b (best (lambda () (derivative f 0.7))))
(define c (best (lambda () (derivative rt 0.7))))
(for-each (lambda (p) (write (car p)) (display " ") (write (cdr p)) (newline)) (list a b c))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    here = Path(sys.executable).parent / "eshkol"
    eshkol = str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")
    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "bench.esk"
        prog.write_text(PROGRAM.format(n=args.n, reps=args.reps))
        out = subprocess.run([eshkol, "run", str(prog)], capture_output=True, text=True,
                             env=dict(os.environ), check=True).stdout.split("\n")
    (t_f, v), (t_d, d), (t_rt, d_rt) = [(float(a), float(b)) for a, b in (line.split() for line in out[:3])]
    assert d == d_rt or abs(d - d_rt) <= 1e-12 * max(1.0, abs(d)), (d, d_rt)
    print(f"{args.n}-step loop, best of {args.reps}; f(0.7) = {v!r}, f'(0.7) = {d!r}")
    print(f"{'function alone':<34} {t_f:9.2f} ms   1.00x")
    print(f"{'derivative, transformed (JVP)':<34} {t_d:9.2f} ms   {t_d / t_f:.2f}x")
    print(f"{'derivative, runtime dual numbers':<34} {t_rt:9.2f} ms   {t_rt / t_f:.2f}x")
    print(f"transformed / function = {t_d / t_f:.2f} (goal <= 2); runtime / transformed = {t_rt / t_d:.1f}")


if __name__ == "__main__":
    main()
