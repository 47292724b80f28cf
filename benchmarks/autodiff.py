"""Reverse-mode autodiff of an MLP loss: Eshkol's ``value-and-grad`` against ``jax.value_and_grad``
under ``jax.jit`` on CPU, measured in the same run (issue #7).

The loss is a 2-hidden-layer MLP, batch 256, widths 784-512-512-10, relu activations and a
mean-squared-error loss, in float64 and float32.  Eshkol differentiates with respect to one
flat parameter vector (``gradient`` / ``value-and-grad`` take one point, LANGUAGE.md
"Calculus"), sliced and reshaped into the weight matrices and bias vectors inside the loss;
jax differentiates with respect to the tuple of the same six weight tensors.  Inputs are the
same deterministic formulas in both (sines of a ramp), so the gradients can be compared
elementwise: the script fails (exit 1) when the relative error ||g_eshkol - g_jax|| / ||g_jax||
exceeds 1e-6 (f64) or 1e-3 (f32).

Each peer times inside its own process, after ``--warmup`` calls, the median of ``--reps``
calls (Eshkol with ``current-jiffy``, so compiling and start-up are excluded; jax with
``block_until_ready``); the peers run one after the other ``--rounds`` times and the table
shows the median over rounds.  Both run pinned to the same ``--threads`` cores with that thread count
(ESHKOL_NUM_THREADS / OPENBLAS_NUM_THREADS for Eshkol and its BLAS; XLA sizes its pools
from the CPUs it may use); the settings are printed.  Targets: jax/eshkol >= 1.0x for
value-and-grad, and Eshkol's value-and-grad time / its forward time <= 3.

Run as ``.venv/bin/python benchmarks/autodiff.py [--reps N] [--warmup N] [--rounds N]
[--threads N] [--dtypes f64 f32] [--eshkol-blas LIB]``; the machine should be otherwise idle.

Measured (2026-11-29, medians of 3 rounds, both pinned to 2 CPUs, the driver's default BLAS,
numpy's bundled OpenBLAS 0.3.31): on an idle 16-core Xeon (the same programs built with
``eshkol build``, jax 0.11.2 on CPU) value-and-grad f64 13.1 ms vs jax 14.7 ms (1.12x), f32
5.9 vs 6.2 ms (1.04x), Eshkol v&g/fwd 2.4 and 2.3; numpy doing only the 8 GEMMs takes 12.6 /
4.6 ms there, so the tape's own overhead is 0.5 / 1.3 ms.  On the shared 2-vCPU AMD dev box
(load 3-5 from other jobs) numpy's OpenBLAS with 2 threads is erratic (numpy's own 256x784x512
product: 5.6 ms on 1 thread, 12-21 ms on 2) and Eshkol measured 0.3-0.7x there; with
``--eshkol-blas libopenblas.so.0`` (the system's OpenBLAS 0.3.21) 1.16x (f64) and 1.08x (f32).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

B, D, H, O = 256, 784, 512, 10
SHAPES = [(D, H), (H,), (H, H), (H,), (H, O), (O,)]
TOL = {"f64": 1e-6, "f32": 1e-3}

# Deterministic inputs, the same formula on both sides (computed in f64, then cast).
X_FORMULA = (0.37, 0.1)      # X = sin(0.37 k + 0.1), k the flat index
Y_FORMULA = (0.91, 0.0)      # Y = sin(0.91 k)
THETA_FORMULA = (1.3, 0.5)   # theta = 0.05 sin(1.3 k + 0.5)
THETA_SCALE = 0.05

ESHKOL = """
(define B {B}) (define D {D}) (define H {H}) (define O {O})
(define DT '{dt})
(define o1 (* D H)) (define o2 (+ o1 H)) (define o3 (+ o2 (* H H))) (define o4 (+ o3 H))
(define o5 (+ o4 (* H O))) (define P (+ o5 O))
(define (ramp-sin n a b) (tensor-sin (tensor-add (tensor-scale (arange n) a) b)))
(define X (tensor-astype (reshape (ramp-sin (* B D) {xa} {xb}) B D) DT))
(define Y (tensor-astype (reshape (ramp-sin (* B O) {ya} {yb}) B O) DT))
(define theta (tensor-astype (tensor-scale (ramp-sin P {ta} {tb}) {ts}) DT))
(define (relu z) (tensor-maximum z 0.0))
(define (loss th)
  (let* ((W1 (reshape (tensor-slice th 0 o1) D H))
         (b1 (tensor-slice th o1 o2))
         (W2 (reshape (tensor-slice th o2 o3) H H))
         (b2 (tensor-slice th o3 o4))
         (W3 (reshape (tensor-slice th o4 o5) H O))
         (b3 (tensor-slice th o5 P))
         (h1 (relu (tensor-add (matmul X W1) b1)))
         (h2 (relu (tensor-add (matmul h1 W2) b2)))
         (d (tensor-sub (tensor-add (matmul h2 W3) b3) Y)))
    (tensor-mean (tensor-mul d d))))
(define (seconds) (/ (current-jiffy) (exact->inexact (jiffies-per-second))))
(define (median xs)
  (let ((v (list->vector (sort xs <)))) (vector-ref v (quotient (vector-length v) 2))))
(define (time-it thunk)
  (let warm ((i 0)) (when (< i {warmup}) (thunk) (warm (+ i 1))))
  (let loop ((i 0) (acc '()))
    (if (= i {reps})
        (median acc)
        (let ((t0 (seconds))) (thunk) (loop (+ i 1) (cons (- (seconds) t0) acc))))))
(define (report name x) (display name) (display " ") (display x) (newline))
(report "fwd" (time-it (lambda () (loss theta))))
(report "vg" (time-it (lambda () (value-and-grad loss theta))))
(define-values (v g) (value-and-grad loss theta))
(report "loss" v)
(report "dtype" (tensor-dtype g))
(when {check}
  (call-with-output-file "{out}"
    (lambda (p)
      (let loop ((xs (tensor->list g)))
        (when (pair? xs) (write (car xs) p) (newline p) (loop (cdr xs)))))))
"""

JAX = """
import sys, time
import numpy as np
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
B, D, H, O = {B}, {D}, {H}, {O}
dt = jnp.{npdt}
def ramp_sin(n, a, b):
    return np.sin(np.arange(n, dtype=np.float64) * a + b)
X = jnp.asarray(ramp_sin(B * D, {xa}, {xb}).reshape(B, D), dt)
Y = jnp.asarray(ramp_sin(B * O, {ya}, {yb}).reshape(B, O), dt)
shapes = {shapes}
theta = (ramp_sin(sum(int(np.prod(s)) for s in shapes), {ta}, {tb}) * {ts})
params, off = [], 0
for s in shapes:
    n = int(np.prod(s))
    params.append(jnp.asarray(theta[off:off + n].reshape(s), dt))
    off += n
params = tuple(params)
def loss(p):
    W1, b1, W2, b2, W3, b3 = p
    h1 = jax.nn.relu(X @ W1 + b1)
    h2 = jax.nn.relu(h1 @ W2 + b2)
    d = h2 @ W3 + b3 - Y
    return jnp.mean(d * d)
fwd = jax.jit(loss)
vg = jax.jit(jax.value_and_grad(loss))
def time_it(f):
    for _ in range({warmup}):
        jax.block_until_ready(f(params))
    ts = []
    for _ in range({reps}):
        t0 = time.perf_counter(); jax.block_until_ready(f(params)); ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]
print("fwd", time_it(fwd))
print("vg", time_it(vg))
v, g = vg(params)
print("loss", float(v))
if {check}:
    np.save("{out}", np.concatenate([np.asarray(x, np.float64).ravel() for x in g]))
"""


def _eshkol_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("eshkol")
    return [str(exe)] if exe.exists() else ["eshkol"]


def thread_env(threads: int) -> dict[str, str]:
    """The same thread count for both peers: Eshkol's kernels and its BLAS, XLA's CPU pools."""
    return {
        "ESHKOL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        # XLA sizes its CPU pools from the CPUs the process may use: the pinning below.
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true",
    }


def esk_env(args: argparse.Namespace) -> dict[str, str]:
    """Eshkol-only settings: report the BLAS it loads; --eshkol-blas picks one."""
    env = {"ESHKOL_BLAS_VERBOSE": "1"}
    if args.eshkol_blas:
        env["ESHKOL_BLAS"] = args.eshkol_blas
    return env


def pinned(cmd: list[str], threads: int) -> list[str]:
    """cmd restricted to the first `threads` CPUs this process may use (taskset), if any."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    if len(cpus) < threads or not shutil.which("taskset"):
        return cmd
    return ["taskset", "-c", ",".join(map(str, cpus))] + cmd


def parse(out: str) -> dict[str, str]:
    """The `name value` lines a peer prints."""
    res = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            res[parts[0]] = parts[1].strip()
    return res


def run(cmd: list[str], env: dict[str, str], threads: int) -> dict[str, str]:
    """The `name value` lines of a pinned run (plus `blas`, the library Eshkol loaded)."""
    proc = subprocess.run(pinned(cmd, threads), capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    res = parse(proc.stdout)
    for line in proc.stderr.splitlines():
        if line.startswith("eshkol: BLAS "):
            res["blas"] = line[len("eshkol: BLAS "):]
    return res


def fill(template: str, **kw: object) -> str:
    common = dict(B=B, D=D, H=H, O=O, xa=X_FORMULA[0], xb=X_FORMULA[1], ya=Y_FORMULA[0],
                  yb=Y_FORMULA[1], ta=THETA_FORMULA[0], tb=THETA_FORMULA[1], ts=THETA_SCALE)
    return template.format(**common, **kw)


def bench(dt: str, args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> dict:
    """Timings of both peers (median over interleaved rounds) and the gradients' relative
    error (from the first round) for one dtype."""
    esk_out, jax_out = tmp / f"grad_{dt}.txt", tmp / f"grad_{dt}.npy"
    times: dict[str, list[float]] = {k: [] for k in ("ef", "ev", "jf", "jv")}
    for rnd in range(args.rounds):
        check = rnd == 0
        src = tmp / f"mlp_{dt}_{int(check)}.esk"
        src.write_text(fill(ESHKOL, dt=dt, warmup=args.warmup, reps=args.reps, out=esk_out,
                            check="#t" if check else "#f"))
        e = run(_eshkol_cmd() + ["run", str(src)], {**env, **esk_env(args)}, args.threads)
        j = run([sys.executable, "-c", fill(JAX, npdt="float64" if dt == "f64" else "float32",
                                            shapes=SHAPES, warmup=args.warmup, reps=args.reps,
                                            out=jax_out, check=check)], env, args.threads)
        if check:
            first = (e, j)
        for key, d, name in (("ef", e, "fwd"), ("ev", e, "vg"), ("jf", j, "fwd"), ("jv", j, "vg")):
            times[key].append(float(d[name]))
    e, j = first
    ge = np.loadtxt(esk_out, dtype=np.float64)
    gj = np.load(jax_out)
    if ge.shape != gj.shape:
        raise RuntimeError(f"gradient sizes differ: eshkol {ge.shape}, jax {gj.shape}")
    rel = float(np.linalg.norm(ge - gj) / np.linalg.norm(gj))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"e": e, "j": j, "rel": rel, "loss_e": float(e["loss"]), "loss_j": float(j["loss"]),
            **med}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=10,
                    help="calls before timing (the tensor pool reaches its steady state)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved runs of both peers; the table shows their median")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eshkol-blas", default="",
                    help="ESHKOL_BLAS for the Eshkol peer (default: the driver's choice, "
                         "numpy's bundled OpenBLAS)")
    ap.add_argument("--dtypes", nargs="+", default=["f64", "f32"], choices=["f64", "f32"])
    args = ap.parse_args()
    env = thread_env(args.threads)
    print(f"MLP {D}-{H}-{H}-{O}, batch {B}, relu, MSE loss; median of {args.reps} calls after "
          f"{args.warmup} warm-up calls, median over {args.rounds} interleaved rounds")
    print("threads: " + " ".join(f"{k}={v!r}" for k, v in env.items())
          + f" (both pinned to {args.threads} CPUs)")
    print(f"{'':5} {'eshkol fwd':>11} {'eshkol v&g':>11} {'jax fwd':>9} {'jax v&g':>9} "
          f"{'jax/eshkol':>11} {'esk v&g/fwd':>12} {'jax v&g/fwd':>12} {'grad rel err':>13}")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for dt in args.dtypes:
            r = bench(dt, args, Path(tmp), env)
            ef, ev, jf, jv = r["ef"], r["ev"], r["jf"], r["jv"]
            print(f"{dt:5} {ef * 1e3:9.2f}ms {ev * 1e3:9.2f}ms {jf * 1e3:7.2f}ms "
                  f"{jv * 1e3:7.2f}ms {jv / ev:10.2f}x {ev / ef:12.2f} {jv / jf:12.2f} "
                  f"{r['rel']:13.2e}")
            if r["e"].get("dtype") != dt:
                failed.append(f"{dt}: Eshkol's gradient has dtype {r['e'].get('dtype')}")
            if not r["rel"] <= TOL[dt]:
                failed.append(f"{dt}: gradients disagree, relative error {r['rel']:.3e} > "
                              f"{TOL[dt]:g} (losses eshkol {r['loss_e']!r}, jax {r['loss_j']!r})")
            print(f"      eshkol BLAS: {r['e'].get('blas', 'none (own kernel)')}")
    print("targets: jax/eshkol >= 1.0x, eshkol v&g/fwd <= 3")
    if failed:
        print("FAILED:\n  " + "\n  ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
