"""Fused tensor chains (passes/fuse_tensors.py → lower/to_linalg.py → lower/cpu.py) and the
generated kernel library, against the unfused runtime and numpy.

Each property test draws many random chains (random shapes including size-0/1 dimensions,
f64 and f32, scalar operands, broadcasts that must take the guard's fallback) into ONE
generated program, runs it once and compares every case: the fused result, the same chain
with fusion blocked (each intermediate passed through a procedure call), and numpy.
Seeded and bounded (derandomized, a few programs per test).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


ESHKOL = _eshkol()
SETTINGS = settings(max_examples=3, deadline=None, derandomize=True, phases=[Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One compile cache for the module: the kernel library is built once."""
    return dict(os.environ, XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache")))


def run(tmp_path: Path, env, text: str, extra_env: dict | None = None) -> str:
    prog = tmp_path / "prog.esk"
    prog.write_text(text)
    p = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True,
                       env={**env, **(extra_env or {})}, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def parse_lines(out: str) -> list[np.ndarray]:
    """Each output line: a number or a printed (nested) list of numbers, flattened."""
    special = {"+nan.0": np.nan, "-nan.0": np.nan, "+inf.0": np.inf, "-inf.0": -np.inf}
    return [np.array([special[t] if t in special else float(t)
                      for t in re.findall(r"[^\s()]+", line)], dtype=np.float64)
            for line in out.strip().splitlines()]


# ---- the compiler side: what fuses -------------------------------------------------------------

def _fused_exprs(src: str) -> list[str]:
    from mlir import ir

    from eshkol.driver import dialect_module, run_passes

    ctx, module = dialect_module(src, "t.esk")
    run_passes(ctx, module, ["eshkol-fuse-tensors"])
    found = []
    with ctx:
        def visit(op):
            if op.name == "eshkol.tensor_fused":
                found.append(ir.StringAttr(op.attributes["expr"]).value + "|" +
                             ir.StringAttr(op.attributes["kinds"]).value)
            return ir.WalkResult.ADVANCE
        module.operation.walk(visit)
    return found


def test_chains_fuse_and_shared_values_stay():
    src = """
(define (f a b c) (tensor-add (tensor-mul a b) (tensor-exp c)))
(define (g x) (tensor-sum (tensor-exp (tensor-sub x (tensor-max x)))))
(define (h x) (let ((e (tensor-exp x))) (tensor-add e (tensor-mul e 2.0))))
(define (single x) (tensor-exp x))
(define (effects x) (let ((t (tensor-exp x))) (display 1) (tensor-add t x)))
"""
    assert _fused_exprs(src) == [
        "(tensor-add (tensor-mul $0 $1) (tensor-exp $2))|ttt",
        "(tensor-sum (tensor-exp (tensor-sub $0 $1)))|ts",
        "(tensor-add $0 (tensor-mul $0 $1))|ts",
    ]


# ---- numbers: fused = unfused = numpy ----------------------------------------------------------

UNARY = {"tensor-exp": np.exp, "tensor-neg": np.negative, "tensor-abs": np.abs,
         "tensor-square": np.square}
BINARY = {"tensor-add": np.add, "tensor-sub": np.subtract, "tensor-mul": np.multiply,
          "tensor-div": np.divide}


@st.composite
def chains(draw, depth=3):
    """(expression tree, ...) over leaves 'a' 'b' 'c' and numeric constants."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.integers(0, 4)) == 0:
            return ("const", draw(st.sampled_from([0.5, 2.0, -1.25, 3.0])))
        return ("var", draw(st.sampled_from("abc")))
    if draw(st.booleans()):
        return (draw(st.sampled_from(sorted(UNARY))), draw(chains(depth - 1)))
    return (draw(st.sampled_from(sorted(BINARY))), draw(chains(depth - 1)), draw(chains(depth - 1)))


def _has_var(e) -> bool:
    return e[0] == "var" or (e[0] != "const" and any(_has_var(k) for k in e[1:]))


def _esk(e, blocked: bool) -> str:
    if e[0] == "var":
        return e[1]
    if e[0] == "const":
        return repr(e[1])
    inner = " ".join(_esk(k, blocked) for k in e[1:])
    s = f"({e[0]} {inner})"
    return f"(id {s})" if blocked else s


def _np(e, env, dt):
    if e[0] == "var":
        return env[e[1]]
    if e[0] == "const":
        return dt(e[1])
    args = [_np(k, env, dt) for k in e[1:]]
    f = UNARY.get(e[0]) or BINARY[e[0]]
    with np.errstate(all="ignore"):
        return f(*args)


def _literal(x: np.ndarray, dtype: str) -> str:
    data = " ".join(repr(float(v)) for v in x.ravel())
    return f"(tensor '({' '.join(map(str, x.shape))}) '({data}) '{dtype})"


@st.composite
def cases(draw):
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    if draw(st.integers(0, 4)) == 0:
        shape = (draw(st.integers(100, 3000)),)  # past the library's small-size cutoff
    dtype = draw(st.sampled_from(["f64", "f32"]))
    e = draw(chains())
    if not _has_var(e) or e[0] in ("var", "const"):
        e = ("tensor-add", e, ("var", "a"))
    reduce = draw(st.sampled_from([None, None, "tensor-sum", "tensor-max"])) if dtype == "f64" else None
    # A broadcast operand (b has a size-1 leading dim) must take the unfused path.
    bcast = len(shape) >= 2 and draw(st.integers(0, 5)) == 0
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, dtype, e, reduce, bcast, seed


def _program_and_expected(cs):
    lines = ["(define (id x) x)"]
    expected = []
    for i, (shape, dtype, e, reduce, bcast, seed) in enumerate(cs):
        r = np.random.default_rng(seed)
        npdt = np.float64 if dtype == "f64" else np.float32
        vals = {k: (r.random(shape) * 2 - 0.5).astype(npdt) for k in "abc"}
        if bcast:
            vals["b"] = vals["b"][:1]
        fused = _esk(e, False)
        blocked = _esk(e, True)
        if reduce:
            if 0 in shape and reduce == "tensor-max":
                reduce = "tensor-sum"
            fused, blocked = f"({reduce} {fused})", f"({reduce} (id {blocked}))"
        lets = " ".join(f"({k} {_literal(v, dtype)})" for k, v in vals.items())
        lines.append(f"(define (case{i} a b c) {fused})")
        show = "(lambda (v) (if (number? v) v (tensor->list v)))"
        lines.append(f"(let ({lets}) (display ({show} (case{i} a b c))) (newline)"
                     f" (display ({show} {blocked})) (newline))")
        want = _np(e, vals, npdt)
        want = np.broadcast_to(np.asarray(want, dtype=npdt), np.broadcast_shapes(*(v.shape for v in vals.values())))
        if reduce == "tensor-sum":
            want = np.sum(want.astype(np.float64))
        elif reduce == "tensor-max":
            want = np.max(want.astype(np.float64))
        expected.append((np.asarray(want, dtype=np.float64).ravel(), dtype, reduce))
    return "\n".join(lines) + "\n", expected


def _close(got, want, dtype, reduce):
    rtol = 1e-6 if dtype == "f32" else (1e-12 if reduce else 1e-14)
    atol = 1e-6 if dtype == "f32" else 1e-12
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * (1 + np.abs(want).max(initial=0)),
                               equal_nan=True)


@SETTINGS
@given(st.lists(cases(), min_size=12, max_size=12))
def test_fused_equal_unfused_and_numpy(tmp_path, env, cs):
    text, expected = _program_and_expected(cs)
    out = parse_lines(run(tmp_path, env, text))
    assert len(out) == 2 * len(expected)
    for k, (want, dtype, reduce) in enumerate(expected):
        fused, unfused = out[2 * k], out[2 * k + 1]
        _close(fused, unfused, dtype, reduce)
        _close(fused, want, dtype, reduce)


def test_softmax_large_on_threads(tmp_path, env):
    """Past the parallel threshold (the kernel threads split the elements and reductions)."""
    n = 300_001
    x = np.random.default_rng(3).random(n)
    np.save(tmp_path / "x.npy", x)
    text = f"""
(define x (arange {n}))
(define (softmax x)
  (let* ((m (tensor-max x)) (s (tensor-sum (tensor-exp (tensor-sub x m)))))
    (tensor-div (tensor-exp (tensor-sub x m)) s)))
(define y (softmax (tensor-scale x 1e-5)))
(display (tensor-sum y)) (newline)
(display (tensor-ref y 0)) (newline)
(display (tensor-ref y {n - 1})) (newline)
(display (tensor-sum (tensor-exp (tensor-scale x 1e-5)))) (newline)
"""
    got = [float(v) for v in run(tmp_path, env, text).split()]
    xs = np.arange(n) * 1e-5
    e = np.exp(xs - xs.max())
    want = [1.0, e[0] / e.sum(), e[-1] / e.sum(), np.exp(xs).sum()]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_mlir_matmul_kernel(tmp_path, env, dtype):
    """ESHKOL_MATMUL=mlir runs the generated block kernel where the shape fits (else the usual
    path); its products equal the default path's (OpenBLAS, an independent implementation)."""
    shapes = [(128, 256, 256), (64, 512, 512), (70, 256, 256)]   # the last does not fit
    lines = ["(random-seed! 11)"]
    for (m, n, k) in shapes:
        lines.append(f"(let ((c (matmul (rand {m} {k} '{dtype}) (rand {k} {n} '{dtype}))))"
                     f" (display (tensor->list c)) (newline))")
    text = "\n".join(lines) + "\n"
    mlir = parse_lines(run(tmp_path, env, text, {"ESHKOL_MATMUL": "mlir"}))
    blas = parse_lines(run(tmp_path, env, text))
    assert [len(x) for x in mlir] == [m * n for (m, n, _) in shapes]
    for got, want in zip(mlir, blas, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == "f64" else 1e-5)


def test_kernel_threads_many_small_parallel_jobs(tmp_path, env):
    """Thousands of jobs just past the parallel threshold: no lost or torn chunks (a worker
    must be done with a job before its caller returns), and the same sums every time."""
    text = """
(define a (rand 50000)) (define b (rand 50000))
(define (f a b) (tensor-add (tensor-mul a b) (tensor-exp b)))
(define (g x) (tensor-sum (tensor-exp (tensor-sub x 0.5))))
(define want (tensor-sum (f a b)))
(define want2 (g a))
(let loop ((i 0) (bad 0))
  (if (< i 1500)
      (loop (+ i 1) (+ bad (if (and (= (tensor-sum (f a b)) want) (= (g a) want2)) 0 1)))
      (begin (display bad) (newline))))
"""
    assert run(tmp_path, env, text, {"ESHKOL_NUM_THREADS": "2"}).split() == ["0"]
