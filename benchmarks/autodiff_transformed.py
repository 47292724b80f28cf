"""MLP loss gradient: reverse mode by transformation vs the runtime tape vs jax (issue #7).

The loss is benchmarks/autodiff.py's MLP (batch 256, 784-512-512-10, relu, mean squared error,
float64), differentiated with respect to the first weight matrix W1 (one tensor point: the
transformed path takes tensor points; the flat-parameter version slices the point with
``tensor-slice``, which has no VJP rule in the pass yet and so keeps the runtime path).
``gradient`` of the global ``loss`` takes the transformed path; the same procedure through a
reassigned global (``rt``) is not statically known and takes the runtime tape. jax: ``jax.grad``
under ``jax.jit`` with respect to W1. The script checks the three gradients agree (1e-10
relative) and prints the median times (ms).

Run as ``.venv/bin/python benchmarks/autodiff_transformed.py [--reps N]``.
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

import numpy as np

B, D, H, O = 256, 784, 512, 10

PROGRAM = """
(define (ramp-sin n a b) (tensor-sin (tensor-add (tensor-scale (arange n) a) b)))
(define X (reshape (ramp-sin (* {B} {D}) 0.37 0.1) {B} {D}))
(define Y (reshape (ramp-sin (* {B} {O}) 0.91 0.0) {B} {O}))
(define (param n a b rows cols) (reshape (tensor-scale (ramp-sin n a b) 0.05) rows cols))
(define W1 (param (* {D} {H}) 1.3 0.5 {D} {H}))
(define W2 (param (* {H} {H}) 1.7 0.2 {H} {H}))
(define W3 (param (* {H} {O}) 1.1 0.3 {H} {O}))
(define b1 (tensor-scale (ramp-sin {H} 0.3 0.0) 0.01))
(define b2 (tensor-scale (ramp-sin {H} 0.5 0.0) 0.01))
(define b3 (tensor-scale (ramp-sin {O} 0.7 0.0) 0.01))
(define (relu z) (tensor-maximum z 0.0))
(define (loss W)
  (let* ((h1 (relu (tensor-add (matmul X W) b1)))
         (h2 (relu (tensor-add (matmul h1 W2) b2)))
         (d (tensor-sub (tensor-add (matmul h2 W3) b3) Y)))
    (tensor-mean (tensor-mul d d))))
(define rt #f)
(set! rt loss)
(define (seconds) (/ (current-jiffy) (exact->inexact (jiffies-per-second))))
(define (median xs)
  (let ((v (list->vector (sort xs <)))) (vector-ref v (quotient (vector-length v) 2))))
(define (time-it thunk)
  (thunk)
  (let loop ((i 0) (acc '()))
    (if (= i {reps})
        (median acc)
        (let ((t0 (seconds))) (thunk) (loop (+ i 1) (cons (- (seconds) t0) acc))))))
(define (report name x) (display name) (display " ") (display (* 1000.0 x)) (newline))
(report "forward" (time-it (lambda () (loss W1))))
(report "transformed" (time-it (lambda () (gradient loss W1))))
(report "runtime" (time-it (lambda () (gradient rt W1))))
(define g (gradient loss W1))
(define g-rt (gradient rt W1))
(display "checksum ") (write (tensor-sum (tensor-mul g (reshape (ramp-sin (* {D} {H}) 0.11 0.0) {D} {H})))) (newline)
(display "maxdiff ") (write (tensor-max (tensor-abs (tensor-sub g g-rt)))) (newline)
(display "maxabs ") (write (tensor-max (tensor-abs g))) (newline)
"""


def ramp_sin(n: int, a: float, b: float) -> np.ndarray:
    return np.sin(np.arange(n, dtype=np.float64) * a + b)


def jax_side(reps: int) -> tuple[float, float]:
    """jax.jit(jax.grad) time (ms) and the same checksum."""
    import jax
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    X = ramp_sin(B * D, 0.37, 0.1).reshape(B, D)
    Y = ramp_sin(B * O, 0.91, 0.0).reshape(B, O)
    W1 = (ramp_sin(D * H, 1.3, 0.5) * 0.05).reshape(D, H)
    W2 = (ramp_sin(H * H, 1.7, 0.2) * 0.05).reshape(H, H)
    W3 = (ramp_sin(H * O, 1.1, 0.3) * 0.05).reshape(H, O)
    b1, b2, b3 = (ramp_sin(H, 0.3, 0.0) * 0.01, ramp_sin(H, 0.5, 0.0) * 0.01, ramp_sin(O, 0.7, 0.0) * 0.01)

    def loss(W):
        h1 = jnp.maximum(X @ W + b1, 0.0)
        h2 = jnp.maximum(h1 @ W2 + b2, 0.0)
        d = h2 @ W3 + b3 - Y
        return jnp.mean(d * d)
    g = jax.jit(jax.grad(loss))
    g(W1).block_until_ready()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        g(W1).block_until_ready()
        ts.append(time.perf_counter() - t0)
    chk = float(np.sum(np.asarray(g(W1)) * ramp_sin(D * H, 0.11, 0.0).reshape(D, H)))
    return 1000 * statistics.median(ts), chk


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    eshkol = str(Path(sys.executable).parent / "eshkol")
    if not Path(eshkol).exists():
        eshkol = shutil.which("eshkol") or "eshkol"
    with tempfile.TemporaryDirectory() as d:
        prog = Path(d) / "mlp_grad.esk"
        prog.write_text(PROGRAM.format(B=B, D=D, H=H, O=O, reps=args.reps), encoding="utf-8")
        out = subprocess.run([eshkol, "run", str(prog)], capture_output=True, text=True,
                             env=dict(os.environ))
        if out.returncode:
            sys.exit(out.stderr[-2000:])
        out = out.stdout
    res = dict(line.split(" ", 1) for line in out.strip().splitlines())
    t_jax, chk_jax = jax_side(args.reps)
    chk = float(res["checksum"])
    print(f"MLP loss gradient wrt W1, batch {B}, {D}-{H}-{H}-{O}, f64, median of {args.reps} (ms)")
    print(f"  forward alone            {float(res['forward']):9.2f}")
    print(f"  transformed (reverse)    {float(res['transformed']):9.2f}")
    print(f"  runtime tape             {float(res['runtime']):9.2f}")
    print(f"  jax.jit(jax.grad)        {t_jax:9.2f}")
    print(f"  max |g - g_runtime| = {res['maxdiff']} (max |g| = {res['maxabs']}); "
          f"checksum {chk!r} vs jax {chk_jax!r}")
    ok = abs(chk - chk_jax) <= 1e-10 * max(1.0, abs(chk_jax)) and float(res["maxdiff"]) <= 1e-10 * float(res["maxabs"])
    print("gradients agree" if ok else "GRADIENTS DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
