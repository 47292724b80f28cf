"""Scheme micro-benchmarks: ``eshkol run`` (cached), an ``eshkol build`` executable, and Chez Scheme.

Each case is a (name, source) pair in ``CASES``; the same program text is run by all three, the
outputs must agree, and the table shows the median of ``--runs`` wall-clock runs and the ratio
eshkol/chez against the target (<= 3x). Add cases (tak, nqueens, ...) by appending to ``CASES``.

Run as ``.venv/bin/python benchmarks/scheme.py [--eshkol PATH] [--runs N] [CASE ...]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 3.0

CASES: list[tuple[str, str]] = [
    ("fib30", """
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(display (fib 30))
(newline)
"""),
    ("float-loop-1e7", """
(display (let loop ((i 0) (x 0.0))
           (if (= i 10000000) x (loop (+ i 1) (+ (* x 0.999999) 1.0)))))
(newline)
"""),
    ("tak", """
(define (tak x y z) (if (not (< y x)) z (tak (tak (- x 1) y z) (tak (- y 1) z x) (tak (- z 1) x y))))
(display (tak 24 16 8))
(newline)
"""),
    ("nqueens-10", """
(define (ok? row dist placed)
  (or (null? placed)
      (and (not (= (car placed) (+ row dist)))
           (not (= (car placed) (- row dist)))
           (ok? row (+ dist 1) (cdr placed)))))
(define (try-it x y z)
  (if (null? x)
      (if (null? y) 1 0)
      (+ (if (ok? (car x) 1 z) (try-it (append (cdr x) y) '() (cons (car x) z)) 0)
         (try-it (cdr x) (cons (car x) y) z))))
(define (iota1 n) (let loop ((i n) (l '())) (if (= i 0) l (loop (- i 1) (cons i l)))))
(display (try-it (iota1 10) '() '()))
(newline)
"""),
    ("mandelbrot", """
(define (mandel-count size)
  (let rows ((y 0) (total 0))
    (if (= y size)
        total
        (rows (+ y 1)
              (let cols ((x 0) (total total))
                (if (= x size)
                    total
                    (let ((cr (- (/ (* 2.0 x) size) 1.5)) (ci (- (/ (* 2.0 y) size) 1.0)))
                      (let iter ((zr 0.0) (zi 0.0) (i 0))
                        (cond ((= i 50) (cols (+ x 1) (+ total 1)))
                              ((> (+ (* zr zr) (* zi zi)) 4.0) (cols (+ x 1) total))
                              (else (iter (+ (- (* zr zr) (* zi zi)) cr) (+ (* 2.0 zr zi) ci) (+ i 1))))))))))))
(display (mandel-count 400))
(newline)
"""),
    ("alloc-lists-1e6", """
(define (build n acc) (if (= n 0) acc (build (- n 1) (cons n acc))))
(define (go i) (if (= i 0) 'done (begin (build 100 '()) (go (- i 1)))))
(display (go 1000000))
(newline)
"""),
]


def find_eshkol(explicit: str | None) -> str:
    if explicit:
        return explicit
    here = Path(sys.executable).parent / "eshkol"
    if here.exists():
        return str(here)
    found = shutil.which("eshkol")
    if found:
        return found
    sys.exit("eshkol tool not found: run with the venv's python or pass --eshkol")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return dt, proc.stdout


def measure(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, str]:
    times, outs = [], set()
    for _ in range(runs):
        dt, out = run(cmd, env)
        times.append(dt)
        outs.add(out)
    if len(outs) != 1:
        raise RuntimeError(f"{' '.join(cmd)} printed different outputs across runs: {outs}")
    return statistics.median(times), outs.pop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eshkol", help="path of the eshkol tool")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("cases", nargs="*", help="case names to run (default: all)")
    args = ap.parse_args()
    eshkol = find_eshkol(args.eshkol)
    chez = shutil.which("scheme")
    cases = [c for c in CASES if not args.cases or c[0] in args.cases]
    if not cases:
        sys.exit(f"no such case; known: {', '.join(n for n, _ in CASES)}")
    if chez is None:
        print("note: `scheme` (Chez Scheme) not found on PATH; skipping the Chez columns")

    rows = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="eshkol-bench-") as tmp:
        env = dict(os.environ, XDG_CACHE_HOME=str(Path(tmp) / "cache"))
        for name, src in cases:
            esk = Path(tmp) / f"{name}.esk"
            ss = Path(tmp) / f"{name}.ss"
            exe = Path(tmp) / name
            esk.write_text(src)
            ss.write_text(src)
            run([eshkol, "run", str(esk)], env)  # warm-up: fills the compile cache
            t_run, out_run = measure([eshkol, "run", str(esk)], env, args.runs)
            run([eshkol, "build", str(esk), "-o", str(exe)], env)
            t_exe, out_exe = measure([str(exe)], env, args.runs)
            t_chez = out_chez = None
            if chez is not None:
                t_chez, out_chez = measure([chez, "--script", str(ss)], env, args.runs)
            outs = {out_run, out_exe} | ({out_chez} if out_chez is not None else set())
            same = len(outs) == 1
            failures += not same
            rows.append((name, t_run, t_exe, t_chez, same, out_run.strip(), out_exe.strip(),
                         None if out_chez is None else out_chez.strip()))

    print(f"eshkol vs Chez Scheme: median of {args.runs} runs, wall clock seconds; target eshkol/chez "
          f"<= {TARGET_RATIO:g}x")
    hdr = f"{'case':<16} {'run':>7} {'build':>7}"
    if chez:
        hdr += f" {'chez':>7} {'run/chez':>9} {'build/chez':>11} {'ok':>4}"
    print(hdr + "  output")
    for name, t_run, t_exe, t_chez, same, o_run, o_exe, o_chez in rows:
        line = f"{name:<16} {t_run:7.3f} {t_exe:7.3f}"
        if chez:
            r1, r2 = t_run / t_chez, t_exe / t_chez
            ok = "yes" if max(r1, r2) <= TARGET_RATIO else "NO"
            line += f" {t_chez:7.3f} {r1:8.2f}x {r2:10.2f}x {ok:>4}"
        line += f"  {o_run if same else 'MISMATCH'}"
        print(line)
        if not same:
            print(f"  outputs differ: run={o_run!r} build={o_exe!r} chez={o_chez!r}")
    if failures:
        sys.exit(f"{failures} case(s) printed different outputs")


if __name__ == "__main__":
    main()
