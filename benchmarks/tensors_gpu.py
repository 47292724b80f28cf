"""GPU tensors: Eshkol (--target=cuda executables) against CuPy, in the same run.

    python benchmarks/tensors_gpu.py --build DIR      # here: compile the programs (needs MLIR)
    python benchmarks/tensors_gpu.py --bin DIR        # on the GPU machine: run them and CuPy

The programs (benchmarks/gpu/*.esk) are built with ``eshkol build --target=cuda``; they carry
their kernels as PTX and call the CUDA driver and cuBLAS through runtime_c/cuda_shim.c, so the
GPU machine needs neither MLIR nor Eshkol. Measured: the elementwise chain a*b + exp(c) over
2^28 elements (f64 and f32; Eshkol fuses it into one kernel, CuPy's expression runs three, and
``cupy.fuse`` is shown too) with its achieved bandwidth against the H200's 4.8 TB/s,
8192 x 8192 matrix products (f32, f64; both through cuBLAS), and (for information) reductions
over 2^28 elements: a sum, and a fused sum of a product. Times are medians of synchronized
runs after warm-up. Ratio = CuPy time / Eshkol time (>= 1: Eshkol as fast or faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROGRAMS = ("chain", "matmul", "reduce")
PEAK_BW = 4.8e12  # bytes/s: the H200's HBM3e, by the datasheet


def build(out: Path) -> None:
    """Compile the benchmark programs for the cuda target into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    eshkol = Path(sys.executable).with_name("eshkol")
    for name in PROGRAMS:
        exe = out / name
        subprocess.run([str(eshkol), "build", "--target=cuda", "-O2", str(HERE / "gpu" / f"{name}.esk"),
                        "-o", str(exe)], check=True)
        print(f"built {exe}")


def run_eshkol(exe: Path, *args: object) -> tuple[float, float]:
    """(median seconds, checksum) printed by a benchmark program."""
    p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{exe.name} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    fields = p.stdout.split()
    return float(fields[3]), float(fields[4])


def cupy_median(cp, fn, iters: int) -> float:
    fn()
    fn()
    cp.cuda.Device().synchronize()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        cp.cuda.Device().synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


_FUSED = {}


def fused_chain(cp):
    """CuPy's own fusion of the chain (cupy.fuse needs a named function)."""
    if "f" not in _FUSED:
        def chain(x, y, z):
            return x * y + cp.exp(z)
        _FUSED["f"] = cp.fuse(chain)
    return _FUSED["f"]


def bench_chain(cp, bindir: Path, n: int, dt: str, iters: int) -> list[str]:
    t_e, checksum = run_eshkol(bindir / "chain", n, dt, iters)
    dtype = cp.float64 if dt == "f64" else cp.float32
    a = cp.linspace(0.0, 1.0, n, dtype=cp.float64).astype(dtype)
    b = cp.linspace(1.0, 2.0, n, dtype=cp.float64).astype(dtype)
    c = cp.linspace(-1.0, 1.0, n, dtype=cp.float64).astype(dtype)
    t_c = cupy_median(cp, lambda: a * b + cp.exp(c), iters)
    t_f = cupy_median(cp, lambda: fused_chain(cp)(a, b, c), iters)
    ref = float((a * b + cp.exp(c)).astype(cp.float64).sum())
    rel = abs(checksum - ref) / abs(ref)
    tol = 1e-9 if dt == "f64" else 1e-4
    bytes_moved = 4 * n * a.itemsize  # three inputs read, one output written
    bw = bytes_moved / t_e
    ok = "ok" if rel < tol else f"MISMATCH (rel {rel:.1e})"
    a = b = c = None  # noqa: F841 (frees the device memory before the next benchmark)
    cp.get_default_memory_pool().free_all_blocks()
    return [f"chain a*b+exp(c) {dt} 2^{n.bit_length() - 1}",
            f"{t_e * 1e3:8.3f}", f"{t_c * 1e3:8.3f}", f"{t_c / t_e:5.2f}x",
            f"{t_f * 1e3:8.3f} ({t_f / t_e:4.2f}x)",
            f"{bw / 1e12:.2f} TB/s = {bw / PEAK_BW:.0%} of 4.8", ok]


def bench_matmul(cp, bindir: Path, n: int, dt: str, iters: int) -> list[str]:
    t_e, checksum = run_eshkol(bindir / "matmul", n, dt, iters)
    dtype = cp.float64 if dt == "f64" else cp.float32
    rs = cp.random.RandomState(42)
    A = rs.random_sample((n, n), dtype=cp.float64).astype(dtype)
    B = rs.random_sample((n, n), dtype=cp.float64).astype(dtype)
    t_c = cupy_median(cp, lambda: A @ B, iters)
    flops = 2.0 * n**3
    ref = n * (n * n) * 0.5  # sum(ones @ linspace(0, 1, n*n)) = n * sum(linspace)
    rel = abs(checksum - ref) / ref
    ok = "ok" if rel < (1e-9 if dt == "f64" else 1e-3) else f"MISMATCH (rel {rel:.1e})"
    A = B = None  # noqa: F841
    cp.get_default_memory_pool().free_all_blocks()
    return [f"matmul {dt} {n}", f"{t_e * 1e3:8.3f}", f"{t_c * 1e3:8.3f}", f"{t_c / t_e:5.2f}x",
            "-", f"{flops / t_e / 1e12:.1f} TFLOP/s", ok]


def bench_reduce(cp, bindir: Path, n: int, dt: str, iters: int) -> list[list[str]]:
    """tensor-sum, and the fused (tensor-sum (tensor-mul a b)), against CuPy's sum and (a*b).sum()."""
    exe = bindir / "reduce"
    p = subprocess.run([str(exe), str(n), dt, str(iters)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"reduce failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    f = p.stdout.split()
    t_sum, s_sum, t_dot, s_dot = float(f[3]), float(f[4]), float(f[5]), float(f[6])
    dtype = cp.float64 if dt == "f64" else cp.float32
    a = cp.linspace(0.0, 1.0, n, dtype=cp.float64).astype(dtype)
    b = cp.linspace(1.0, 2.0, n, dtype=cp.float64).astype(dtype)
    c_sum = cupy_median(cp, lambda: float(a.sum()), iters)
    c_dot = cupy_median(cp, lambda: float((a * b).sum()), iters)
    tol = 1e-9 if dt == "f64" else 1e-4
    rows = []
    for label, t_e, t_c, got, ref, arrays in [
            ("sum(a)", t_sum, c_sum, s_sum, float(a.astype(cp.float64).sum()), 1),
            ("sum(a*b) fused", t_dot, c_dot, s_dot, float((a.astype(cp.float64) * b).sum()), 2)]:
        rel = abs(got - ref) / abs(ref)
        bw = arrays * n * a.itemsize / t_e
        rows.append([f"reduce {label} {dt} 2^{n.bit_length() - 1}", f"{t_e * 1e3:8.3f}", f"{t_c * 1e3:8.3f}",
                     f"{t_c / t_e:5.2f}x", "-", f"{bw / 1e12:.2f} TB/s = {bw / PEAK_BW:.0%} of 4.8",
                     "ok" if rel < tol else f"MISMATCH (rel {rel:.1e})"])
    a = b = None  # noqa: F841
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def run(bindir: Path, quick: bool) -> None:
    import cupy as cp

    dev = cp.cuda.runtime.getDeviceProperties(0)
    print(f"GPU: {dev['name'].decode()}, CuPy {cp.__version__}")
    n_chain = 1 << (20 if quick else 28)
    n_mm = 1024 if quick else 8192
    iters = 5 if quick else 20
    rows = [["benchmark", "eshkol ms", "cupy ms", "ratio", "cupy.fuse ms (ratio)", "achieved", "check"]]
    for dt in ("f64", "f32"):
        rows.append(bench_chain(cp, bindir, n_chain, dt, iters))
    for dt in ("f32", "f64"):
        rows.append(bench_matmul(cp, bindir, n_mm, dt, 10 if not quick else 3))
    for dt in ("f64", "f32"):
        rows.extend(bench_reduce(cp, bindir, n_chain, dt, iters))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    print("ratio = CuPy time / Eshkol time (>= 0.9 is the target)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, help="compile the benchmark programs into this folder")
    ap.add_argument("--bin", type=Path, default=Path(os.environ.get("ESHKOL_GPU_BIN", HERE.parent / "build" / "gpu")),
                    help="folder of built programs to run (default build/gpu or $ESHKOL_GPU_BIN)")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = ap.parse_args()
    if args.build:
        build(args.build)
        return
    run(args.bin, args.quick)


if __name__ == "__main__":
    main()
