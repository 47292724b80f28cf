"""The CUDA target (issue #6 part 3).

Everywhere: every kernel's PTX (the runtime's set and fused chains) assembles with ``ptxas``
for sm_90 and sm_80 (skipped with a message without ptxas); GPU options are checked before
they reach LLVM; without a GPU the GPU builtins raise a catchable error. Marked ``gpu``: a
program built with --target=cuda runs on the GPU and every result matches numpy. On a GPU
machine without MLIR, point ESHKOL_GPU_ARTIFACTS at a folder holding the prebuilt programs
(``python tests/py/test_cuda.py --build DIR`` makes them; benchmarks/gpu_device_run.sh uses it).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "cuda"
HAVE_MLIR = importlib.util.find_spec("mlir") is not None
PTXAS = shutil.which("ptxas") or next(
    (p for p in ("/usr/local/cuda/bin/ptxas",) if os.path.exists(p)), None)
BIN = Path(sys.executable).parent

needs_mlir = pytest.mark.skipif(not HAVE_MLIR, reason="needs the MLIR Python bindings")
needs_ptxas = pytest.mark.skipif(PTXAS is None, reason="ptxas not found (CUDA toolkit): PTX not validated")


def gpu_present() -> bool:
    """A CUDA driver with at least one device."""
    try:
        cu = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    n = ctypes.c_int(0)
    return cu.cuInit(0) == 0 and cu.cuDeviceGetCount(ctypes.byref(n)) == 0 and n.value > 0


needs_gpu = pytest.mark.skipif(not gpu_present(), reason="no CUDA GPU here")

# Fused chains as passes/fuse_tensors.py writes them: (expr, kinds).
SAMPLE_CHAINS = [
    ("(tensor-add (tensor-mul $0 $1) (tensor-exp $2))", "ttt"),
    ("(tensor-sum (tensor-mul $0 $0))", "t"),
    ("(tensor-max (tensor-sub $0 $1))", "ts"),
    ("(tensor-min (tensor-div $0 $1))", "tt"),
    ("(tensor-sqrt (tensor-add (tensor-square $0) $1))", "ts"),
]


# ---- PTX -------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["sm_90", "sm_80"])
def gpu_module(request, tmp_path_factory):
    from eshkol.lower import cuda

    os.environ.setdefault("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    target = cuda.gpu_target(request.param)
    return cuda.compile_kernels(cuda.program_kernels(SAMPLE_CHAINS), target)


def _ptxas(chip: str, files: list[Path]) -> tuple[int, str]:
    p = subprocess.run([PTXAS, f"-arch={chip}", *map(str, files), "-o", os.devnull],
                       capture_output=True, text=True)
    return p.returncode, p.stderr


@needs_mlir
@needs_ptxas
def test_every_kernel_assembles_with_ptxas(gpu_module, tmp_path):
    """Each kernel's PTX is accepted by ptxas for the chip it was made for."""
    chip = gpu_module.target.chip
    files = []
    for k in gpu_module.kernels:
        assert f".target {chip}" in k.ptx and f".entry {k.entry}(" in k.ptx
        f = tmp_path / f"{k.name}.ptx"
        f.write_text(k.ptx)
        files.append(f)
    # ptxas takes several files at once, but crashes on long lists: batches, and a failing
    # batch again file by file so that the report names the kernel.
    batches = [files[i:i + 12] for i in range(0, len(files), 12)]
    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda b: _ptxas(chip, b), batches))
    bad = []
    for batch, (rc, _) in zip(batches, results, strict=True):
        if rc != 0:
            for f in batch:
                rc1, err = _ptxas(chip, [f])
                if rc1 != 0:
                    bad.append(f"{f.stem}: {err.strip()[:300]}")
    assert not bad, "\n".join(bad)
    kinds = {k.name.split("_")[0] for k in gpu_module.kernels}
    assert {"ew", "red", "redax", "fill", "cast", "fused0", "fusedr1"} <= kinds | {
        k.name.rsplit("_", 1)[0] for k in gpu_module.kernels}


@needs_mlir
def test_manifest_maps_every_parameter(gpu_module):
    """Kernel parameters come from host argument slots or constants, all accounted for."""
    k = next(k for k in gpu_module.kernels if k.name == "ew_add_tt_f64")
    slots = sorted(int(p[1:]) for p, _ in k.params if p.startswith("a"))
    assert slots == list(range(15))  # three rank-1 memrefs of five slots each
    assert ("c256", 8) in k.params and k.block == 256
    s = next(k for k in gpu_module.kernels if k.name == "ew_mul_ts_f32")
    assert ("a5", 4) in s.params  # the f32 scalar: a 4-byte parameter
    manifest, blob = gpu_module.blob()
    assert len(manifest.splitlines()) == len(gpu_module.kernels)
    first = manifest.splitlines()[0].split()
    assert blob[int(first[3]):int(first[3]) + int(first[4])] == gpu_module.kernels[0].ptx


# ---- options ---------------------------------------------------------------------------------

@needs_mlir
def test_gpu_options_are_checked():
    from eshkol.lower.cuda import gpu_target
    from eshkol.syntax.diagnostics import EshkolError

    assert gpu_target().chip == "sm_90" and gpu_target().features == "+ptx80"
    assert gpu_target("sm_80").features == "+ptx80"
    assert gpu_target("sm_90", "+ptx87").features == "+ptx87"
    for chip, feat, msg in [("sm_12", None, "unsupported GPU chip 'sm_12'"),
                            ("sm_90", "+ptx70", "too old for sm_90: use +ptx80"),
                            ("sm_90", "ptx80", "bad GPU features"),
                            ("sm_90", "+ptx99", "newer than this compiler writes")]:
        with pytest.raises(EshkolError, match=re.escape(msg)):
            gpu_target(chip, feat)


@needs_mlir
def test_translate_rejects_a_bad_chip_cleanly(tmp_path):
    src = tmp_path / "p.esk"
    src.write_text("(display (gpu-ones 2))\n")
    p = subprocess.run([str(BIN / "eshkol-translate"), "--target=cuda", "--gpu-chip=sm_90",
                        "--gpu-features=+ptx60", str(src)], capture_output=True, text=True)
    assert p.returncode == 1
    assert "error: PTX ISA 6.0 is too old for sm_90: use +ptx80 or newer" in p.stderr
    assert "LLVM ERROR" not in p.stderr and "Traceback" not in p.stderr


def _program(name: str, tmp_path: Path, text: str | None = None) -> Path:
    """The program ``name`` built for the cuda target: from $ESHKOL_GPU_ARTIFACTS (GPU
    machines without MLIR), else compiled now from tests/py/cuda/<name>.esk (or ``text``)."""
    art = os.environ.get("ESHKOL_GPU_ARTIFACTS")
    if art and (Path(art) / name).exists():
        return Path(art) / name
    if not HAVE_MLIR:
        pytest.skip("no prebuilt GPU programs ($ESHKOL_GPU_ARTIFACTS) and no MLIR to build them")
    src = PROGRAMS / f"{name}.esk"
    if text is not None:
        src = tmp_path / f"{name}.esk"
        src.write_text(text)
    exe = tmp_path / name
    subprocess.run([str(BIN / "eshkol"), "build", "--target=cuda", str(src), "-o", str(exe)],
                   check=True, capture_output=True)
    return exe


# ---- without a GPU -----------------------------------------------------------------------------



def _check_no_gpu_run(exe: Path, env: dict[str, str], driver: str) -> None:
    p = subprocess.run([str(exe)], capture_output=True, text=True, env={**os.environ, **env})
    msg = f"cuda: no CUDA driver found ({driver})"
    assert p.stdout.splitlines() == ["#f", msg, msg, "#((2.0 1.0) (4.0 3.0))"], p.stderr
    assert p.returncode == 1
    assert f"nogpu.esk:7:1: error: {msg}" in p.stderr


def test_without_a_gpu_the_builtins_raise_a_catchable_error(tmp_path):
    """gpu-available? is #f; the builtins raise an error object naming the missing driver (a
    handler catches it; uncaught, it reports the location and exits 1); gpu-matmul of host
    tensors is matmul. ESHKOL_LIBCUDA naming a missing library acts as a machine without one,
    so this runs on GPU machines too."""
    exe = _program("nogpu", tmp_path)
    missing = str(tmp_path / "no-such-libcuda.so.1")
    _check_no_gpu_run(exe, {"ESHKOL_LIBCUDA": missing}, missing)
    if not gpu_present():
        _check_no_gpu_run(exe, {}, "libcuda.so.1")


# ---- on a GPU ----------------------------------------------------------------------------------



def _parse(text: str):
    """A printed value: a tensor (nested #(...)) as an array, a number, or the text."""
    t = text.strip()
    if t.startswith("#("):
        return np.array(eval(re.sub(r"\s+", ",", t[1:].replace("(", "[").replace(")", "]"))))
    try:
        return float(t)
    except ValueError:
        return t


def _expected() -> dict[str, object]:
    h = np.arange(12.0).reshape(3, 4)
    f32 = np.float32
    return {
        "device": "cuda:0", "roundtrip": h, "add": h + h, "sub-scalar": h - 1.5, "rsub": 10 - h,
        "mul": h * h, "div": h / 4, "pow": h ** 2, "max2": np.maximum(h, 5.0),
        "exp": np.exp(h / 10), "log": np.log(h + 1), "sin": np.sin(h), "tanh": np.tanh(h / 5),
        "sqrt": np.sqrt(h), "neg": -h, "abs": np.abs(h - 6),
        "bcast-row": h + np.array([1.0, 2, 3, 4]), "bcast-col": h + np.array([[10.0], [20], [30]]),
        "bcast-one": h + 100, "transpose-add": 2 * h.T, "transpose-exp": np.exp(h.T / 10),
        "sum": h.sum(), "sum0": h.sum(0), "sum1": h.sum(1), "mean": h.mean(), "mean1": h.mean(1),
        "max": h.max(), "min0": h.min(0), "prod": 24.0, "var": h.var(), "argmax": 11.0,
        "big-sum": 1000003.0, "big-max": 299999.0, "get": 11.0, "get-row": h[1],
        "matmul": h @ h.T, "matmul-f32": (h.astype(f32) @ h.T.astype(f32)),
        "matvec": h @ np.array([1.0, 0, 0, 1]), "gpu-matmul-host": h @ h.T,
        "f32-add": h.astype(f32) + f32(0.5), "f32-dtype": "f32", "f32-sum": 66.0,
        "mixed-dtype": 2 * h, "fused": h * h + np.exp(-h),
        "fused-f32": (h * h + np.exp(-h)).astype(f32), "fused-sum": (h * h).sum(),
        "zeros": np.zeros((2, 3)), "ones": np.ones((2, 2)), "with-device": "cuda:0",
        "with-device-val": 2 * np.ones((2, 3)), "after-with-device": "cpu", "to-device": "cuda:0",
        "to-device-val": np.ones((2, 2)), "to-host": "cpu", "mixed-devices": "error",
        "shape-error": "error", "i64": np.array([[1.0, 2], [3, 4]]), "done": "ok",
    }


@pytest.mark.gpu
@needs_gpu
def test_gpu_operations_match_numpy(tmp_path):
    exe = _program("gpu_ops", tmp_path)
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    got = {}
    for line in p.stdout.splitlines():
        label, _, value = line.partition(" ")
        got[label] = _parse(value)
    want = _expected()
    assert set(got) == set(want), sorted(set(got) ^ set(want))
    for label, w in want.items():
        g = got[label]
        if isinstance(w, str):
            assert g == w, label
        else:
            rtol = 2e-6 if "f32" in label else 1e-12
            np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-12, err_msg=label)


def _check_robust(exe: Path, env: dict[str, str]) -> None:
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    lines = p.stdout.splitlines()
    assert p.returncode == 0, f"crashed after: {lines[-1] if lines else '(nothing)'}\n{p.stderr[-2000:]}"
    assert lines[-1] == "done"
    results = [line.partition(" => ")[2] for line in lines[:-1]]
    assert all(r == "ok" or r.startswith("err") for r in results), lines
    failed = [line for line, r in zip(lines, results, strict=False) if r != "ok"]
    print(f"{len(results) - len(failed)} of {len(results)} calls worked; raised:", *failed, sep="\n  ")


TRANSFERS = """#((2.0 5.0) (1.0 3.0))
5.0
#((2.0 5.0) (7.0 8.0))
#((2.0 5.0) (9.0 9.0))
(cuda:0 #(1.0 1.0 1.0))
(cpu #(1.0 1.0 1.0))
cuda:0
#(1.0 2.0)
#((9.0 9.0))
((2.0 5.0) (9.0 9.0))
"""


@pytest.fixture(scope="module")
def fake_libcuda(tmp_path_factory) -> Path:
    """tests/py/cuda/fake_libcuda.c built: a driver whose device memory faults on host access."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the stand-in CUDA driver")
    lib = tmp_path_factory.mktemp("fakecuda") / "libfakecuda.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(PROGRAMS / "fake_libcuda.c")],
                   check=True)
    return lib


def test_tensor_builtins_never_crash_on_cuda_tensors(tmp_path, fake_libcuda):
    """With a stand-in driver (device memory the host cannot touch, kernels that do nothing)
    every tensor builtin on CUDA tensors works or raises an error object: a host path that
    read device memory would crash here as on a GPU."""
    _check_robust(_program("gpu_robust", tmp_path), {"ESHKOL_LIBCUDA": str(fake_libcuda)})


def test_transfers_with_a_stand_in_driver(tmp_path, fake_libcuda):
    """Copies, element reads and writes (views too), in-place moves and with-device keep the
    data (the stand-in driver copies for real)."""
    exe = _program("transfers", tmp_path)
    p = subprocess.run([str(exe)], capture_output=True, text=True,
                       env={**os.environ, "ESHKOL_LIBCUDA": str(fake_libcuda)})
    assert p.returncode == 0, p.stderr
    assert p.stdout == TRANSFERS


@pytest.mark.gpu
@needs_gpu
def test_every_tensor_builtin_survives_gpu_tensors(tmp_path):
    """Each tensor builtin on CUDA tensors works or raises an error object: never a crash."""
    _check_robust(_program("gpu_robust", tmp_path), {})


@pytest.mark.gpu
@needs_gpu
def test_transfers_on_the_gpu(tmp_path):
    p = subprocess.run([str(_program("transfers", tmp_path))], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout == TRANSFERS


# ---- gradients on every target (issue #7) -----------------------------------------------------

def _gradient_oracle() -> dict[str, object]:
    """What tests/py/cuda/gradients.esk prints, computed by jax (float64)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def data(r, c, s):
        return jnp.sin(jnp.arange(r * c, dtype=jnp.float64).reshape(r, c)) * s

    X, W1, b1, W2, Y = data(8, 5, 1.0), data(5, 6, 0.3), data(1, 6, 0.1), data(6, 3, 0.3), data(8, 3, 0.5)

    def mlp_loss(w1):
        d = jnp.tanh(X @ w1 + b1) @ W2 - Y
        return jnp.mean(d * d)

    def cube_sum(v):
        return jnp.sum(v * v * v)

    def sq(w):
        return jnp.sum(w * w)

    v14 = data(1, 4, 1.0)
    elementwise = jax.jacfwd(lambda v: v * jnp.sin(v))(v14.ravel())
    return {
        "scalar-derivative": jax.grad(lambda x: jnp.sin(x) * jnp.exp(x))(0.7),
        "mlp-loss": mlp_loss(W1), "mlp-grad": jax.grad(mlp_loss)(W1),
        "vg-value": sq(W2), "vg-grad": jax.grad(sq)(W2),
        "softplus-grad": jax.grad(lambda v: jnp.sum(jnp.log(jnp.exp(v) + 1.0)))(data(1, 7, 2.0)),
        "get-grad": jax.grad(lambda v: v[0, 1] * v[1, 2])(data(2, 3, 1.0)),
        "jacobian": elementwise,
        "hessian": jax.hessian(lambda v: cube_sum(v))(data(1, 3, 1.0).ravel()),
    }


def _check_gradients(stdout: str, where: str) -> None:
    want = _gradient_oracle()
    got = {}
    for line in stdout.splitlines():
        label, _, value = line.partition(" ")
        got[label] = _parse(value)
    assert set(got) == set(want), (where, sorted(set(got) ^ set(want)))
    for label, w in want.items():
        np.testing.assert_allclose(np.asarray(got[label]).reshape(np.shape(w)), np.asarray(w),
                                   rtol=1e-10, atol=1e-13, err_msg=f"{label} on {where}")


@needs_mlir
@pytest.mark.parametrize("target", ["cpu", "xla"])
def test_gradients_match_jax_on_cpu_and_xla(target):
    """The same gradient program (scalar derivative, MLP gradient, value-and-grad, element
    reads, jacobian, hessian) gives jax's numbers on the cpu and xla targets."""
    if target == "xla":
        pytest.importorskip("jax")
    p = subprocess.run([str(BIN / "eshkol"), "run", f"--target={target}", str(PROGRAMS / "gradients.esk")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    _check_gradients(p.stdout, target)


@pytest.mark.gpu
@needs_gpu
def test_gradients_on_the_gpu(tmp_path):
    """The same program built for cuda, its tensors on cuda:0: jax's numbers again."""
    p = subprocess.run([str(_program("gradients", tmp_path)), "cuda:0"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    _check_gradients(p.stdout, "cuda")


@pytest.mark.gpu
@needs_gpu
def test_nn_builtins_on_cuda_tensors_match_host(tmp_path):
    """The v1.x nn builtins (issue #8) on CUDA tensors give the host results."""
    p = subprocess.run([str(_program("nn_ops", tmp_path))], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.splitlines()
    assert lines[-1] == "done"
    diffs = {name: float(d) for name, d in (line.split() for line in lines[:-1])}
    assert len(diffs) == 18
    bad = {n: d for n, d in diffs.items() if not d <= 1e-12}
    assert not bad, bad


def build_artifacts(out: Path) -> None:
    """Compile the GPU test programs into ``out`` (for a GPU machine without MLIR)."""
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(PROGRAMS.glob("*.esk")):
        subprocess.run([str(BIN / "eshkol"), "build", "--target=cuda", str(src), "-o",
                        str(out / src.stem)], check=True)
        print(f"built {out / src.stem}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build_artifacts(Path(sys.argv[2]))
    else:
        print("usage: python tests/py/test_cuda.py --build DIR")
        sys.exit(2)
