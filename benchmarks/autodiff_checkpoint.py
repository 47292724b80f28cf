"""Memory saved by ``checkpoint-segment`` in reverse mode (the runtime tape).

The gradient of a deep chain of large elementwise tensor layers is computed three ways in
built executables: the forward pass alone, ``gradient`` storing every layer on the tape, and
``gradient`` with the chain cut into ``checkpoint-segment``s (the tape keeps only each
segment's output; the backward pass recomputes a segment's layers when it reaches it).  The
table shows peak resident memory (ru_maxrss of each child), the tape's share above the
forward pass, and wall time; the two gradients must be identical.

Run as ``.venv/bin/python benchmarks/autodiff_checkpoint.py [--n ELEMENTS] [--layers L]
[--segment S]``.
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
(define n {n})
(define layers {layers})
(define segment {segment})
(define (layer y) (tensor-tanh (tensor-add (tensor-scale y 1.01) 0.01)))
(define (block y k) (if (= k 0) y (block (layer y) (- k 1))))
;; MODE: 0 forward only, 1 gradient storing every layer, 2 gradient with checkpoints
(define (chain y k)
  (cond ((= k 0) y)
        ((= {mode} 2)
         (chain (checkpoint-segment (lambda () (block y (min segment k)))) (- k (min segment k))))
        (else (chain (layer y) (- k 1)))))
(define (loss x) (tensor-sum (chain x layers)))
(define x0 (tensor-scale (ones n) 0.5))
(if (= {mode} 0)
    (display (loss x0))
    (let ((g (gradient loss x0)))
      (display (list (tensor-sum g) (tensor-get g 0) (tensor-get g (- n 1))))))
(newline)
"""


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


def run_child(exe: Path) -> tuple[str, float, float]:
    """Output, peak RSS in MiB and wall seconds of one run (a fresh child per run, so that
    RUSAGE_CHILDREN's maximum is this child's: each run is in its own helper process)."""
    code = ("import resource,subprocess,sys,time;t=time.perf_counter();"
            "p=subprocess.run([sys.argv[1]],capture_output=True,text=True);"
            "w=time.perf_counter()-t;"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, w);"
            "sys.stdout.write(p.stdout);sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", code, str(exe)], capture_output=True, text=True,
                          check=True)
    first, _, out = proc.stdout.partition("\n")
    kib, wall = first.split()
    return out.strip(), int(kib) / 1024, float(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 19, help="elements per tensor (float64)")
    ap.add_argument("--layers", type=int, default=48)
    ap.add_argument("--segment", type=int, default=8, help="layers per checkpoint segment")
    ap.add_argument("--eshkol", default=_eshkol())
    a = ap.parse_args()
    env = dict(os.environ)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("XDG_CACHE_HOME", str(Path(tmp) / "cache"))
        for mode, name in [(0, "forward only"), (1, "gradient, full tape"),
                           (2, f"gradient, checkpoint every {a.segment}")]:
            src = Path(tmp) / f"mode{mode}.esk"
            src.write_text(PROGRAM.format(n=a.n, layers=a.layers, segment=a.segment, mode=mode))
            exe = Path(tmp) / f"mode{mode}"
            subprocess.run([a.eshkol, "build", str(src), "-o", str(exe)], check=True, env=env)
            results[mode] = (name, *run_child(exe))
    mib = a.n * 8 / 2**20
    print(f"chain of {a.layers} layers (3 tensor ops each) on {a.n} float64 elements "
          f"({mib:.1f} MiB per tensor)")
    print(f"{'':32} {'peak RSS MiB':>13} {'tape MiB':>10} {'seconds':>8}")
    base = results[0][2]
    for mode in (0, 1, 2):
        name, out, rss, wall = results[mode]
        tape = "" if mode == 0 else f"{rss - base:10.0f}"
        print(f"{name:32} {rss:13.0f} {tape:>10} {wall:8.2f}")
    full, ckpt = results[1][2] - base, results[2][2] - base
    print(f"tape memory saved by checkpoint-segment: {full - ckpt:.0f} MiB "
          f"({full / max(ckpt, 1e-9):.1f}x less)")
    same = results[1][1] == results[2][1]
    print(f"gradients identical: {same} ({results[1][1]})")
    if not same:
        print(f"  checkpointed: {results[2][1]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
