"""Matrix multiply on the CPU: Eshkol's ``matmul`` against numpy (OpenBLAS), in the same run.

Cases (issue #6): f64 1024 and 2048 with 1 and 2 threads, f32 2048 with 1 and 2 threads;
target >= 0.9x numpy.  Peers:

- ``numpy``: ``a @ b`` (its bundled OpenBLAS; threads from OPENBLAS_NUM_THREADS);
- ``eshkol``: ``(matmul a b)`` through ``eshkol run`` as users run it: the runtime loads the
  optimized BLAS the driver finds (numpy's bundled OpenBLAS here; runtime_c/blas.c);
- ``eshkol-own``: the same program with ESHKOL_BLAS=none, i.e. the runtime's own blocked
  AVX2/FMA kernel (runtime_c/gemm.c), what a machine without any BLAS gets.

Each peer times the product inside its own process after a warm-up call (Eshkol with
``current-jiffy`` around each call, so start-up, compilation and BLAS loading are excluded)
and reports the best of ``--reps`` calls; peers run interleaved for ``--rounds`` rounds and
the table shows the best round and the ratio numpy/peer (>= 1: the peer is as fast as numpy).

Run as ``.venv/bin/python benchmarks/matmul_cpu.py [--reps N] [--rounds N] [--quick]``.  The
machine should be otherwise idle; with other load, every column is noisy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET = 0.9

ESK = """
(define (best-of thunk reps)
  (thunk)
  (let loop ((i 0) (best 1e300))
    (if (= i reps)
        best
        (let ((t0 (current-jiffy)))
          (thunk)
          (let ((dt (/ (- (current-jiffy) t0) (exact->inexact (jiffies-per-second)))))
            (loop (+ i 1) (min best dt)))))))
(define a (rand N N 'DT))
(define b (rand N N 'DT))
(display (best-of (lambda () (matmul a b)) REPS))
(newline)
"""

NUMPY = """
import time, numpy as np
r = np.random.default_rng(0)
a, b = r.random((N, N)).astype("DT"), r.random((N, N)).astype("DT")
a @ b
best = 1e300
for _ in range(REPS):
    t0 = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t0)
print(best)
"""

DTYPES = {"f64": "float64", "f32": "float32"}


def eshkol_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("eshkol")
    return [str(exe)] if exe.exists() else ["eshkol"]


def fill(src: str, n: int, dt: str, reps: int) -> str:
    return src.replace("REPS", str(reps)).replace("N", str(n)).replace("DT", dt)


def run_eshkol(n: int, dt: str, threads: int, reps: int, workdir: Path, extra: dict) -> float:
    path = workdir / f"matmul_{dt}_{n}_{reps}.esk"
    path.write_text(fill(ESK, n, dt, reps))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads),
           "ESHKOL_NUM_THREADS": str(threads), **extra}
    out = subprocess.run(eshkol_cmd() + ["run", str(path)], capture_output=True, text=True,
                         env=env, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"eshkol failed: {out.stderr.strip()[-2000:]}")
    return float(out.stdout.split()[-1])


def run_numpy(n: int, dt: str, threads: int, reps: int) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", fill(NUMPY, n, DTYPES[dt], reps)],
                         capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"numpy failed: {out.stderr.strip()[-2000:]}")
    return float(out.stdout.split()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="timed calls per process (best kept)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
    ap.add_argument("--quick", action="store_true", help="1024 only (a fast smoke run)")
    ap.add_argument("--no-own", action="store_true", help="skip the ESHKOL_BLAS=none peer")
    args = ap.parse_args()
    cases = [("f64", 1024, 1), ("f64", 1024, 2), ("f64", 2048, 1), ("f64", 2048, 2),
             ("f32", 2048, 1), ("f32", 2048, 2)]
    if args.quick:
        cases = [c for c in cases if c[1] == 1024]
    peers = ["numpy", "eshkol"] + ([] if args.no_own else ["eshkol-own"])
    print(f"{'case':<22}" + "".join(f"{p:>13}" for p in peers) +
          "".join(f"{'np/' + p:>16}" for p in peers[1:]))
    worst = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for dt, n, threads in cases:
            reps = args.reps if n <= 1024 else max(2, args.reps // 2)
            best = {p: float("inf") for p in peers}
            for _ in range(args.rounds):
                best["numpy"] = min(best["numpy"], run_numpy(n, dt, threads, reps))
                best["eshkol"] = min(best["eshkol"], run_eshkol(n, dt, threads, reps, work, {}))
                if "eshkol-own" in best:
                    best["eshkol-own"] = min(best["eshkol-own"], run_eshkol(
                        n, dt, threads, reps, work, {"ESHKOL_BLAS": "none"}))
            ratios = [best["numpy"] / best[p] for p in peers[1:]]
            worst = min(worst, ratios[0])
            gflops = {p: 2 * n**3 / best[p] / 1e9 for p in peers}
            print(f"{f'{dt} {n} {threads} thread(s)':<22}" +
                  "".join(f"{best[p] * 1e3:8.1f} ms  " for p in peers) +
                  "".join(f"{r:15.2f}x" for r in ratios) +
                  "   (GFLOP/s " + ", ".join(f"{p} {gflops[p]:.0f}" for p in peers) + ")")
    verdict = "meets" if worst >= TARGET else "misses"
    print(f"worst eshkol/numpy speed ratio {worst:.2f}x: {verdict} the target >= {TARGET}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
