"""The XLA target against jax.jit: the same model function, run by ``eshkol run --target=xla``
and by ``jax.jit``, on the same data; prints both times and the ratio.
Target: Eshkol's time ≤ 1.1x jax's.

Models: a 2-layer MLP forward pass (batch 256, 784-512-10, tanh) in f64 and f32, and an
elementwise chain ``a*b + exp(c)`` over 10^7 f64 elements. Also printed, outside the target:
the cost of one call of a trivial region (``x + x`` on two elements), the driver's overhead.
Both peers are measured the same way: a fresh process computes a checksum of the result, makes
one untimed batch of calls (warm-up), then times ``--batches`` batches of ``--calls`` calls and
reports its best batch's time per call. The Eshkol program times itself with ``current-jiffy``,
so each call goes through the XLA driver's callback, argument checks and result wrapping (the
overhead being measured);
jax's process calls the jitted function on device-resident arguments and waits for each result.
A fresh process for jax too, because a long-lived one runs XLA's calls measurably faster (its
allocator and caches are warm: ~15% on the f64 MLP here), which would compare two different
things. Both sides run alternately ``--rounds`` times and keep their best, because a shared
machine's load changes over seconds; ``--warm-jax`` also reports jax.jit timed in this
(long-lived) process. The checksums of the two results are compared.

Run as ``.venv/bin/python benchmarks/tensors_xla.py [--calls N] [--batches K] [--rounds R]
[--warm-jax]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 1.1
ESHKOL = str(Path(sys.executable).parent / "eshkol")

# Deterministic data both sides compute: sin of 0, 1, 2, ... scaled.
PRELUDE = """
(define (data r c s dtype) (tensor-astype (tensor-scale (sin (reshape (arange (* r c)) r c)) s) dtype))
(define (time-calls thunk calls batches)
  (let warm ((i 0)) (when (< i calls) (thunk) (warm (+ i 1))))
  (let loop ((b 0) (best #f))
    (if (= b batches)
        best
        (let ((t0 (current-jiffy)))
          (let run ((i 0)) (when (< i calls) (thunk) (run (+ i 1))))
          (let ((dt (/ (exact->inexact (- (current-jiffy) t0)) (jiffies-per-second) calls)))
            (loop (+ b 1) (if (or (not best) (< dt best)) dt best)))))))
"""

MLP = PRELUDE + """
(define X (data 256 784 1.0 '{dtype}))
(define W1 (data 784 512 0.05 '{dtype}))
(define b1 (data 1 512 0.1 '{dtype}))
(define W2 (data 512 10 0.05 '{dtype}))
(define b2 (data 1 10 0.1 '{dtype}))
(define (mlp x) (tensor-add (matmul (tanh (tensor-add (matmul x W1) b1)) W2) b2))
(display (tensor-sum (mlp X))) (newline)
(display (time-calls (lambda () (mlp X)) {calls} {batches})) (newline)
"""

CHAIN = PRELUDE + """
(define a (data 1 10000000 1.0 'f64))
(define b (data 1 10000000 0.5 'f64))
(define c (data 1 10000000 0.25 'f64))
(define (chain a b c) (tensor-add (tensor-mul a b) (tensor-exp c)))
(display (tensor-sum (chain a b c))) (newline)
(display (time-calls (lambda () (chain a b c)) {calls} {batches})) (newline)
"""


TINY = PRELUDE + """
(define x #(1.0 2.0))
(define (tiny x) (tensor-add x x))
(display (tensor-sum (tiny x))) (newline)
(display (time-calls (lambda () (tiny x)) {calls} {batches})) (newline)
"""


def data(r: int, c: int, s: float, dtype) -> np.ndarray:
    return (np.sin(np.arange(r * c, dtype=np.float64).reshape(r, c)) * s).astype(dtype)


def jax_case(name: str, dtype):
    """(jitted function, device arguments) of a model."""
    import jax
    import jax.numpy as jnp

    if name == "tiny":
        return jax.jit(lambda x: x + x), [jax.device_put(np.array([1.0, 2.0]))]
    if name == "chain":
        args = [data(1, 10_000_000, s, np.float64) for s in (1.0, 0.5, 0.25)]
        fn = jax.jit(lambda a, b, c: a * b + jnp.exp(c))
    else:
        args = [data(256, 784, 1.0, dtype), data(784, 512, 0.05, dtype), data(1, 512, 0.1, dtype),
                data(512, 10, 0.05, dtype), data(1, 10, 0.1, dtype)]
        fn = jax.jit(lambda x, w1, b1, w2, b2: jnp.tanh(x @ w1 + b1) @ w2 + b2)
    return fn, [jax.device_put(a) for a in args]


def time_jax(fn, args, calls: int, batches: int) -> tuple[float, float]:
    """(checksum, best per-call seconds over batches), after one untimed batch."""
    checksum = float(np.asarray(fn(*args)).sum())
    for _ in range(calls):
        fn(*args).block_until_ready()
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(*args).block_until_ready()
        best = min(best, (time.perf_counter() - t0) / calls)
    return checksum, best


def time_jax_fresh(model: str, dtype, calls: int, batches: int, env: dict[str, str]) -> tuple[float, float]:
    """time_jax in a fresh process, as the Eshkol program runs in one."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import numpy as np; "
            "import jax; jax.config.update('jax_enable_x64', True); import tensors_xla as t; "
            f"fn, args = t.jax_case({model!r}, np.{np.dtype(dtype).name}); "
            f"print(*t.time_jax(fn, args, {calls}, {batches}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"jax failed:\n{p.stderr}")
    checksum, per_call = p.stdout.split()
    return float(checksum), float(per_call)


def program_path(label: str) -> Path:
    """A fixed place for a case's program, so its compilation stays cached between runs."""
    folder = Path(tempfile.gettempdir()) / "eshkol-bench-xla"
    folder.mkdir(exist_ok=True)
    return folder / (label.replace(" ", "_") + ".esk")


def time_eshkol(label: str, source: str, env: dict[str, str]) -> tuple[float, float]:
    path = program_path(label)
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    p = subprocess.run([ESHKOL, "run", "--target=xla", str(path)], capture_output=True, text=True,
                       env=env, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"eshkol failed:\n{p.stderr}")
    checksum, per_call = p.stdout.split()
    return float(checksum), float(per_call)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20, help="calls per timed batch")
    ap.add_argument("--batches", type=int, default=5, help="timed batches (the best is kept)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating eshkol/jax rounds")
    ap.add_argument("--warm-jax", action="store_true",
                    help="also time jax.jit in this long-lived process (not the target's peer)")
    a = ap.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    env = dict(os.environ)
    print(f"jax {jax.__version__} on {jax.default_backend()}; {os.cpu_count()} cores")
    cases = [("mlp f64", MLP.format(dtype="f64", calls=a.calls, batches=a.batches), "mlp", np.float64),
             ("mlp f32", MLP.format(dtype="f32", calls=a.calls, batches=a.batches), "mlp", np.float32),
             ("chain 1e7 f64", CHAIN.format(calls=max(1, a.calls // 4), batches=a.batches), "chain", np.float64),
             ("call overhead", TINY.format(calls=100 * a.calls, batches=a.batches), "tiny", np.float64)]
    worst = 0.0
    for label, source, model, dtype in cases:
        calls = {"chain": max(1, a.calls // 4), "tiny": 100 * a.calls}.get(model, a.calls)
        best_e = best_j = float("inf")
        for _ in range(a.rounds):
            sum_e, t_e = time_eshkol(label, source, env)
            sum_j, t_j = time_jax_fresh(model, dtype, calls, a.batches, env)
            best_e, best_j = min(best_e, t_e), min(best_j, t_j)
        rtol = 1e-4 if dtype == np.float32 else 1e-9
        agree = abs(sum_e - sum_j) <= rtol * max(1.0, abs(sum_j))
        ratio = best_e / best_j
        if model == "tiny":
            print(f"{label:14s} eshkol --target=xla {best_e * 1e6:6.1f} us   jax.jit {best_j * 1e6:6.1f} us   "
                  f"(not a target)")
            continue
        worst = max(worst, ratio)
        warm = ""
        if a.warm_jax:
            fn, args = jax_case(model, dtype)
            warm = f"   (jax.jit in this process {time_jax(fn, args, calls, a.batches)[1] * 1e3:8.3f} ms)"
        print(f"{label:14s} eshkol --target=xla {best_e * 1e3:8.3f} ms   jax.jit {best_j * 1e3:8.3f} ms   "
              f"ratio {ratio:5.2f}x   checksums {'agree' if agree else f'DIFFER ({sum_e} vs {sum_j})'}{warm}")
    print(f"worst ratio {worst:.3f}x (target <= {TARGET}x): {'met' if worst <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
