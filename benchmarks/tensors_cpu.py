"""CPU tensor benchmarks: Eshkol against numpy and jax.jit, all measured in the same run.

Cases (issue #6): the fused chain ``(tensor-add (tensor-mul a b) (tensor-exp c))`` and a
softmax-like ``exp(x - max) / sum`` over 10^7 float64 (targets: >= 3x numpy, >= 1.0x jax.jit);
f64 matmul 1024 and 2048 with 1 and 2 threads and f32 matmul 2048 (target >= 0.9x numpy's
OpenBLAS). Each peer times the operation inside its own process after a warm-up (Eshkol with
``current-jiffy`` around each call, so compiling and start-up are excluded) and reports the
median of ``--reps`` calls; the peers of a case run one after another, ``--rounds`` times
interleaved, and the table shows the median over rounds and the ratio peer/eshkol (> 1: Eshkol
is faster). Eshkol's matmul also runs with ESHKOL_MATMUL=mlir (the generated MLIR kernel
instead of the BLAS) for comparison.

Run as ``.venv/bin/python benchmarks/tensors_cpu.py [--rounds N] [--reps N] [CASE ...]``; the
machine should be otherwise idle (its other load shows up as noise in every column).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

TIMER = """
(define (median xs)
  (let ((v (list->vector (sort xs <))))
    (vector-ref v (quotient (vector-length v) 2))))
(define (time-it thunk reps)
  (thunk)
  (let loop ((i 0) (acc '()))
    (if (= i reps)
        (median acc)
        (let ((t0 (current-jiffy)))
          (thunk)
          (loop (+ i 1) (cons (/ (- (current-jiffy) t0) (exact->inexact (jiffies-per-second)))
                              acc))))))
"""

CHAIN_ESK = """
(define n 10000000)
(define a (rand n)) (define b (rand n)) (define c (rand n))
(define (chain a b c) (tensor-add (tensor-mul a b) (tensor-exp c)))
(display (time-it (lambda () (chain a b c)) REPS)) (newline)
"""

SOFTMAX_ESK = """
(define n 10000000)
(define x (rand n))
(define (softmax x)
  (let* ((m (tensor-max x))
         (s (tensor-sum (tensor-exp (tensor-sub x m)))))
    (tensor-div (tensor-exp (tensor-sub x m)) s)))
(display (time-it (lambda () (softmax x)) REPS)) (newline)
"""

MATMUL_ESK = """
(define a (rand N N DT)) (define b (rand N N DT))
(display (time-it (lambda () (matmul a b)) REPS)) (newline)
"""

PY_TIMER = """
import statistics, sys, time
def time_it(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]
"""

NUMPY = {
    "chain": """
import numpy as np
r = np.random.default_rng(0); a, b, c = r.random(10**7), r.random(10**7), r.random(10**7)
print(time_it(lambda: a * b + np.exp(c), REPS))
""",
    "softmax": """
import numpy as np
x = np.random.default_rng(0).random(10**7)
def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()
print(time_it(lambda: softmax(x), REPS))
""",
    "matmul": """
import numpy as np
r = np.random.default_rng(0); a, b = r.random((N, N)).astype(DT), r.random((N, N)).astype(DT)
print(time_it(lambda: a @ b, REPS))
""",
}

JAX = {
    "chain": """
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import numpy as np
r = np.random.default_rng(0); a, b, c = (jnp.asarray(r.random(10**7)) for _ in range(3))
f = jax.jit(lambda a, b, c: a * b + jnp.exp(c))
print(time_it(lambda: f(a, b, c).block_until_ready(), REPS))
""",
    "softmax": """
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import numpy as np
x = jnp.asarray(np.random.default_rng(0).random(10**7))
@jax.jit
def softmax(x):
    e = jnp.exp(x - x.max())
    return e / e.sum()
print(time_it(lambda: softmax(x).block_until_ready(), REPS))
""",
}


def _eshkol_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("eshkol")
    return [str(exe)] if exe.exists() else ["eshkol"]


def run_eshkol(src: str, env: dict[str, str], workdir: Path) -> float:
    """Seconds per call printed by an Eshkol program (cached compile; timing is inside)."""
    path = workdir / f"bench_{abs(hash(src)) % 10**8}.esk"
    path.write_text(TIMER + src)
    out = subprocess.run(_eshkol_cmd() + ["run", str(path)], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"eshkol failed: {out.stderr.strip()[-2000:]}")
    return float(out.stdout.split()[-1])


def run_python(src: str, env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", PY_TIMER + src], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"python peer failed: {out.stderr.strip()[-2000:]}")
    return float(out.stdout.split()[-1])


def have_jax() -> bool:
    return subprocess.run([sys.executable, "-c", "import jax"], capture_output=True).returncode == 0


def cases(reps: int) -> list[tuple[str, float, dict]]:
    """(name, target ratio, {peer: thunk}) for every case."""
    out = []
    jax_ok = have_jax()
    for name, esk in (("chain", CHAIN_ESK), ("softmax", SOFTMAX_ESK)):
        esk = esk.replace("REPS", str(reps))
        peers = {
            "eshkol": lambda d, esk=esk: run_eshkol(esk, {}, d),
            "eshkol-1thr": lambda d, esk=esk: run_eshkol(esk, {"ESHKOL_NUM_THREADS": "1"}, d),
            "numpy": lambda d, n=name: run_python(NUMPY[n].replace("REPS", str(reps)), {}),
        }
        if jax_ok:
            peers["jax.jit"] = lambda d, n=name: run_python(JAX[n].replace("REPS", str(reps)), {})
        out.append((f"{name} 1e7 f64", 3.0, peers))
    for n, dt, threads in ((1024, "f64", 1), (1024, "f64", 2), (2048, "f64", 1), (2048, "f64", 2),
                           (2048, "f32", 2)):
        esk = MATMUL_ESK.replace("REPS", str(max(3, reps // 2))).replace("N", str(n)) \
            .replace("DT", "'" + dt)
        env = {"ESHKOL_NUM_THREADS": str(threads)}
        npsrc = NUMPY["matmul"].replace("REPS", str(max(3, reps // 2))).replace("N", str(n)) \
            .replace("DT", "np.float64" if dt == "f64" else "np.float32")
        peers = {
            "eshkol": lambda d, esk=esk, env=env: run_eshkol(esk, env, d),
            "eshkol-mlir": lambda d, esk=esk, env=env: run_eshkol(esk, {**env, "ESHKOL_MATMUL": "mlir"}, d),
            "numpy": lambda d, src=npsrc, t=threads: run_python(src, {"OPENBLAS_NUM_THREADS": str(t)}),
        }
        out.append((f"matmul {n} {dt} {threads}thr", 0.9, peers))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("only", nargs="*", help="substrings of case names to run")
    args = ap.parse_args()
    if not have_jax():
        print("note: jax is not installed; the jax.jit column is skipped (pip install jax)")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, target, peers in cases(args.reps):
            if args.only and not any(s in name for s in args.only):
                continue
            times: dict[str, list[float]] = {p: [] for p in peers}
            for _ in range(args.rounds):
                for p, thunk in peers.items():
                    times[p].append(thunk(d))
            med = {p: statistics.median(ts) for p, ts in times.items()}
            base = med["eshkol"]
            cols = "  ".join(f"{p} {1e3 * t:8.2f} ms ({t / base:5.2f}x)" for p, t in med.items())
            ok = all(med[p] / base >= (target if p == "numpy" else 1.0 if p == "jax.jit" else 0)
                     for p in med if p in ("numpy", "jax.jit"))
            goal = f"target numpy/eshkol >= {target}" + (" and jax/eshkol >= 1.0" if "jax.jit" in med else "")
            print(f"{name:22s} {cols}   [{goal}: {'met' if ok else 'NOT met'}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
