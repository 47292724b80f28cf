"""Startup latency of ``eshkol run``: cold (empty compile cache), cached, and ``python3 -c pass``.

Run as ``.venv/bin/python benchmarks/startup.py`` (the ``eshkol`` tool is found next to
``sys.executable``) or pass ``--eshkol PATH``.
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

HELLO = '(display "hello, world")\n(newline)\n'
TARGET_CACHED = 0.3
TARGET_COLD = 1.5


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


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--eshkol", help="path of the eshkol tool")
    ap.add_argument("-n", "--runs", type=int, default=5, help="runs per measurement (median)")
    args = ap.parse_args()
    eshkol = find_eshkol(args.eshkol)

    cold: list[float] = []
    cached: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory(prefix="eshkol-startup-") as tmp:
        prog = Path(tmp) / "hello.esk"
        prog.write_text(HELLO)
        cmd = [eshkol, "run", str(prog)]
        for i in range(args.runs):
            cache = Path(tmp) / f"cache{i}"
            cache.mkdir()
            env = dict(os.environ, XDG_CACHE_HOME=str(cache))
            cold.append(timed(cmd, env))  # empty cache: a full compile
            cached.append(timed(cmd, env))  # same cache: a hit
            bare.append(timed(["python3", "-c", "pass"], dict(os.environ)))

    base = statistics.median(bare)
    rows = [
        ("cold run (empty cache)", statistics.median(cold), TARGET_COLD),
        ("cached run", statistics.median(cached), TARGET_CACHED),
        ("python3 -c pass", base, None),
    ]
    print(f"eshkol startup: {eshkol}  (median of {args.runs} runs, wall clock)")
    print(f"python3 on PATH: {shutil.which('python3')}")
    print(f"{'measurement':<24} {'seconds':>8} {'target':>8} {'vs python':>10} {'ok':>4}")
    for name, t, target in rows:
        tgt = f"<={target:.1f}" if target is not None else "-"
        ok = ("yes" if t <= target else "NO") if target is not None else "-"
        print(f"{name:<24} {t:8.3f} {tgt:>8} {t / base:9.1f}x {ok:>4}")


if __name__ == "__main__":
    main()
