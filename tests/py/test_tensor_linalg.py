"""Linear algebra and extended tensor operations (runtime_c/tensor_linalg.c, gemm.c, blas.c,
tensor_extra.c, tensor_einsum.c, tensor_decomp.c) against numpy.

Each test writes ONE Eshkol program holding many cases (random shapes and values drawn by a
seeded generator or hypothesis), runs it once, and compares every printed result with numpy.
Matrix products run three ways: with the BLAS the driver finds (numpy's OpenBLAS), with no
BLAS (the runtime's own AVX2 kernel) and with the portable C micro-kernel, so each path is
checked on the same cases.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


ESHKOL = _eshkol()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return dict(os.environ, XDG_CACHE_HOME=str(cache))


# ---- program text and output parsing ----------------------------------------------------------

def num(x: float) -> str:
    """A Scheme literal for the double x."""
    if np.isnan(x):
        return "+nan.0"
    if np.isinf(x):
        return "+inf.0" if x > 0 else "-inf.0"
    return repr(float(x))


def lit(a: np.ndarray) -> str:
    """An Eshkol expression building a tensor equal to a (f64, f32 or i64).  The elements
    travel as one string read at run time: a quoted list of thousands of numbers would make
    the program slow to compile."""
    dims = " ".join(str(d) for d in a.shape)
    if a.dtype == np.int64:
        data, dt = " ".join(str(int(x)) for x in a.ravel()), " 'i64"
    else:
        data = " ".join(num(x) for x in a.astype(np.float64).ravel())
        dt = " 'f32" if a.dtype == np.float32 else ""
    return f"(tensor '({dims}) (read (open-input-string \"({data})\")){dt})"


_TOKEN = re.compile(r"#\(|\(|\)|[^\s()]+")


def parse(text: str):
    """A printed result: a number, or a nested list for a tensor (#(...) / (...))."""
    toks = _TOKEN.findall(text)
    pos = 0

    def atom(t: str):
        if t in ("+nan.0", "-nan.0"):
            return float("nan")
        if t == "+inf.0":
            return float("inf")
        if t == "-inf.0":
            return float("-inf")
        if t in ("#t", "#f"):
            return t == "#t"
        return float(t)

    def item():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t in ("(", "#("):
            out = []
            while toks[pos] != ")":
                out.append(item())
            pos += 1
            return out
        return atom(t)

    value = item()
    assert pos == len(toks), text
    return value


def run(tmp_path: Path, env: dict, body: list[str], extra_env: dict | None = None) -> list[str]:
    """Run a program whose top-level forms each print one line; return the lines."""
    prog = tmp_path / "prog.esk"
    prog.write_text("\n".join(body) + "\n", encoding="utf-8")
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True,
                          env=dict(env, **(extra_env or {})), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def show(expr: str) -> str:
    return f"(begin (write {expr}) (newline))"


def close(got, want: np.ndarray, rtol: float, atol: float = 0.0) -> bool:
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    if w.size == 0:
        return g.size == 0
    if g.shape != w.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
    return bool(np.allclose(g, w, rtol=rtol, atol=atol * scale, equal_nan=True))


# The three matrix-product paths (BLAS through the driver's default, own AVX2, portable C).
PATHS = {"blas": {}, "own": {"ESHKOL_BLAS": "none"},
         "generic": {"ESHKOL_BLAS": "none", "ESHKOL_GEMM_KERNEL": "generic"}}


def check_cases(tmp_path, env, cases, paths=("blas",)):
    """cases: (expression, expected array/number, rtol, atol).  Runs the program once per path."""
    body = [show(expr) for expr, *_ in cases]
    for p in paths:
        out = run(tmp_path, env, body, PATHS[p])
        assert len(out) == len(cases), out
        bad = []
        for (expr, want, rtol, atol), line in zip(cases, out, strict=True):
            got = parse(line)
            if not close(got, np.asarray(want), rtol, atol):
                bad.append(f"[{p}] {expr[:200]}\n  got  {line[:300]}\n  want {np.asarray(want).tolist()!s:.300}")
        assert not bad, "\n".join(bad[:10])


# ---- matmul -------------------------------------------------------------------------------------

def matmul_cases(rng: np.random.Generator, dtype, n_cases: int):
    cases = []
    tol = (1e-11, 1e-12) if dtype == np.float64 else (2e-4, 2e-5)
    for _ in range(n_cases):
        kind = rng.integers(0, 7)
        m, k, n = (int(x) for x in rng.integers(0, 40, size=3))
        if rng.random() < 0.15:  # a few large enough for the BLAS / threaded paths
            m, k, n = (int(x) for x in rng.integers(40, 100, size=3))
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        if kind == 0:  # 2-D x 2-D
            cases.append((f"(matmul {lit(a)} {lit(b)})", a @ b, *tol))
        elif kind == 1:  # 1-D x 2-D
            v = rng.standard_normal(k).astype(dtype)
            cases.append((f"(matmul {lit(v)} {lit(b)})", v @ b, *tol))
        elif kind == 2:  # 2-D x 1-D
            v = rng.standard_normal(k).astype(dtype)
            cases.append((f"(matmul {lit(a)} {lit(v)})", a @ v, *tol))
        elif kind == 3:  # transposed operands (strided views inside the kernel / BLAS flags)
            at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
            cases.append((f"(matmul (transpose {lit(at)}) (transpose {lit(bt)}))", a @ b, *tol))
        elif kind == 4:  # batched with broadcasting
            bsz = int(rng.integers(1, 4))
            a3 = rng.standard_normal((bsz, min(m, 12), min(k, 12))).astype(dtype)
            b3 = rng.standard_normal((1, min(k, 12), min(n, 12))).astype(dtype)
            cases.append((f"(matmul {lit(a3)} {lit(b3)})", a3 @ b3, *tol))
        elif kind == 5:  # batched x matrix
            a3 = rng.standard_normal((2, min(m, 9), min(k, 9))).astype(dtype)
            b2 = rng.standard_normal((min(k, 9), min(n, 9))).astype(dtype)
            cases.append((f"(matmul {lit(a3)} {lit(b2)})", a3 @ b2, *tol))
        else:  # tensor-matmul alias, tall-skinny
            a2 = rng.standard_normal((m + 50, 3)).astype(dtype)
            b2 = rng.standard_normal((3, n)).astype(dtype)
            cases.append((f"(tensor-matmul {lit(a2)} {lit(b2)})", a2 @ b2, *tol))
    return cases


@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_matmul_f64_random_shapes(tmp_path, env, seed):
    rng = np.random.default_rng(seed)
    check_cases(tmp_path, env, matmul_cases(rng, np.float64, 40), paths=("blas", "own", "generic"))


@settings(max_examples=1, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_matmul_f32_random_shapes(tmp_path, env, seed):
    rng = np.random.default_rng(seed)
    check_cases(tmp_path, env, matmul_cases(rng, np.float32, 30), paths=("blas", "own", "generic"))


def test_matmul_large_and_threads(tmp_path, env):
    """Sizes that use the blocked kernel's several K/M blocks and two threads, and the BLAS."""
    rng = np.random.default_rng(7)
    cases = []
    for m, k, n in [(260, 200, 170), (70, 300, 20), (400, 30, 12)]:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        cases.append((f"(matmul {lit(a)} {lit(b)})", a @ b, 1e-10, 1e-12))
    body = [show(e) for e, *_ in cases]
    for extra in ({}, {"ESHKOL_BLAS": "none", "ESHKOL_NUM_THREADS": "2"},
                  {"ESHKOL_BLAS": "none", "ESHKOL_NUM_THREADS": "1"}):
        out = run(tmp_path, env, body, extra)
        for (expr, want, rtol, atol), line in zip(cases, out, strict=True):
            assert close(parse(line), want, rtol, atol), (extra, expr[:80])


def test_matmul_integer_and_mixed(tmp_path, env):
    rng = np.random.default_rng(3)
    a = rng.integers(-50, 50, (5, 7)).astype(np.int64)
    b = rng.integers(-50, 50, (7, 4)).astype(np.int64)
    f = rng.standard_normal((7, 4))
    out = run(tmp_path, env, [show(f"(matmul {lit(a)} {lit(b)})"),
                              show(f"(tensor-dtype (matmul {lit(a)} {lit(b)}))"),
                              show(f"(matmul {lit(a)} {lit(f)})"),
                              show(f"(tensor-dtype (matmul {lit(a.astype(np.float32))} {lit(f)}))"),
                              show("(matmul #((1 2) (3 4)) #((5 6) (7 8)))")])
    assert parse(out[0]) == (a @ b).tolist()
    assert out[1] == "i64"
    assert close(parse(out[2]), a @ f, 1e-12)
    assert out[3] == "f64"
    assert parse(out[4]) == [[19.0, 22.0], [43.0, 50.0]]


# ---- dot, outer, transpose, trace, norm ---------------------------------------------------------

def test_products_and_shapes(tmp_path, env):
    rng = np.random.default_rng(11)
    cases = []
    for n in (0, 1, 3, 17, 100):
        x, y = rng.standard_normal(n), rng.standard_normal(n)
        cases.append((f"(tensor-dot {lit(x)} {lit(y)})", np.dot(x, y), 1e-12, 1e-14))
        cases.append((f"(matmul {lit(x)} {lit(y)})", x @ y, 1e-12, 1e-14))
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3))
    cases.append((f"(tensor-dot {lit(a)} {lit(b)})", np.dot(a, b), 1e-12, 0))
    a3, b3 = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4, 2))
    cases.append((f"(tensor-dot {lit(a3)} {lit(b3)})", np.dot(a3, b3), 1e-12, 1e-14))
    cases.append((f"(tensor-dot 2.5 {lit(a)})", 2.5 * a, 1e-15, 0))
    u, v = rng.standard_normal(5), rng.standard_normal((2, 3))
    cases.append((f"(outer {lit(u)} {lit(v)})", np.outer(u, v), 1e-15, 0))
    for shape in [(3, 5), (1, 4), (0, 3), (2, 3, 4)]:
        t = rng.standard_normal(shape)
        cases.append((f"(transpose {lit(t)})", t.T, 0, 0))
    t4 = rng.standard_normal((2, 3, 4, 5))
    cases.append((f"(transpose {lit(t4)} 1 3)", np.swapaxes(t4, 1, 3), 0, 0))
    cases.append((f"(transpose {lit(t4)} 0 -1)", np.swapaxes(t4, 0, -1), 0, 0))
    cases.append((f"(tensor-transpose {lit(a)})", a.T, 0, 0))
    for shape in [(4, 4), (3, 5), (6, 2)]:
        m = rng.standard_normal(shape)
        cases.append((f"(trace {lit(m)})", np.trace(m), 1e-13, 1e-14))
    w = rng.standard_normal((4, 5))
    cases += [(f"(norm {lit(w)})", np.linalg.norm(w), 1e-13, 0),
              (f"(norm {lit(w.ravel())} 1)", np.linalg.norm(w.ravel(), 1), 1e-13, 0),
              (f"(norm {lit(w.ravel())} +inf.0)", np.linalg.norm(w.ravel(), np.inf), 0, 0),
              (f"(norm {lit(w.ravel())} 3)", np.linalg.norm(w.ravel(), 3), 1e-13, 0),
              (f"(norm {lit(w)} 'fro)", np.linalg.norm(w, "fro"), 1e-13, 0),
              ("(norm #(3 4))", 5.0, 0, 0),
              # no overflow or underflow of the squares (numpy's norm gives inf and 0 here)
              ("(norm #(1e200 1e200))", math.hypot(1e200, 1e200), 1e-15, 0),
              ("(norm #(1e-200 1e-200))", math.hypot(1e-200, 1e-200), 1e-15, 0)]
    check_cases(tmp_path, env, cases)


# ---- det, inv, solve -----------------------------------------------------------------------------

@settings(max_examples=1, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 24), min_size=12, max_size=12))
def test_det_inv_solve(tmp_path, env, sizes):
    rng = np.random.default_rng(sum(sizes))
    cases = []
    for n in sizes:
        a = rng.standard_normal((n, n)) + n * np.eye(n)  # well conditioned
        b1, b2 = rng.standard_normal(n), rng.standard_normal((n, 3))
        cases.append((f"(det {lit(a)})", np.linalg.det(a), 1e-9, 0))
        cases.append((f"(inv {lit(a)})", np.linalg.inv(a), 1e-9, 1e-12))
        cases.append((f"(solve {lit(a)} {lit(b1)})", np.linalg.solve(a, b1), 1e-9, 1e-12))
        cases.append((f"(solve {lit(a)} {lit(b2)})", np.linalg.solve(a, b2), 1e-9, 1e-12))
    p = np.array([[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0]])  # needs pivoting
    cases += [(f"(det {lit(p)})", np.linalg.det(p), 1e-12, 0),
              (f"(tensor-det {lit(p)})", np.linalg.det(p), 1e-12, 0),
              (f"(tensor-inverse {lit(p)})", np.linalg.inv(p), 1e-12, 1e-15),
              (f"(linear-solve {lit(p)} #(1 2 3))", np.linalg.solve(p, [1, 2, 3]), 1e-12, 1e-15),
              ("(det #((1 2) (2 4)))", 0.0, 0, 0)]
    check_cases(tmp_path, env, cases)


def test_lu_blocked_sizes(tmp_path, env):
    """Sizes past the LU panel width (48) and the BLAS threshold: the blocked factorization
    and solves, with the BLAS and with the own kernel for the trailing updates."""
    rng = np.random.default_rng(23)
    cases = []
    for n in (49, 97, 130):
        a = rng.standard_normal((n, n)) + 0.5 * n * np.eye(n)
        a[[0, n - 1]] = a[[n - 1, 0]]  # force row exchanges
        b = rng.standard_normal((n, 2))
        cases.append((f"(det {lit(a)})", np.linalg.det(a), 1e-9, 0))
        cases.append((f"(inv {lit(a)})", np.linalg.inv(a), 1e-9, 1e-12))
        cases.append((f"(solve {lit(a)} {lit(b)})", np.linalg.solve(a, b), 1e-9, 1e-12))
    check_cases(tmp_path, env, cases, paths=("blas", "own"))


# ---- errors ----------------------------------------------------------------------------------------

ERRORS = [
    ("(matmul #((1 2) (3 4)) #((1 2 3) (4 5 6) (7 8 9)))", "matmul: shape mismatch (2 2) x (3 3)"),
    ("(matmul #(1 2 3) #(1 2))", "matmul: shape mismatch (3) x (2)"),
    ("(matmul (zeros 2 3 4) (zeros 3 4 5))", "matmul: shape mismatch (2 3 4) x (3 4 5)"),
    ("(matmul 'a #(1))", "matmul: expected tensor"),
    ("(tensor-dot #(1 2) #(1 2 3))", "tensor-dot: shape mismatch (2) x (3)"),
    ("(inv #((1 2) (2 4)))", "inv: singular matrix"),
    ("(solve #((0 0) (0 0)) #(1 2))", "solve: singular matrix"),
    ("(solve #((1 0) (0 1)) #(1 2 3))", "solve: shape mismatch (2 2) x (3)"),
    ("(det #(1 2 3))", "det: expected a square matrix"),
    ("(inv #((1 2 3) (4 5 6)))", "inv: expected a square matrix"),
    ("(trace #(1 2))", "trace: expected a matrix (rank 2)"),
    ("(transpose #((1 2)) 0 2)", "transpose: axis 2 out of range"),
    ("(norm #(1 2) 'bad)", "norm: expected order"),
    ("(tensor-cholesky #((1 2) (2 1)))", "tensor-cholesky: matrix is not positive definite"),
    ("(tensor-lstsq #((1 2) (2 4) (3 6)) #(1 2 3))", "tensor-lstsq: matrix is rank deficient"),
    ("(tensor-concat #((1 2)) #((1 2 3)))", "tensor-concat: shape mismatch"),
    ("(tensor-split #(1 2 3) 2)", "tensor-split: axis of length 3 does not split into 2"),
    ("(tensor-gather #(1 2 3) #(3))", "tensor-gather: index 3 out of range"),
    ('(einsum "ij,jk->ik" #((1 2)) #((1 2)))', "einsum: index 'j' has sizes 2 and 1"),
    ('(einsum "ij->k" #((1 2)))', "einsum: output index 'k' is not an input index"),
    ("(tensor-add #(1 2) (tensor-where #(1 0 1) #(1 2) #(3 4)))", "tensor-where: shapes"),
    ("(tensor-broadcast #(1 2 3) '(2 2))", "tensor-broadcast: shape (3) does not broadcast"),
    ("(tensor-topk #(1 2) 3)", "tensor-topk: k must be an exact integer between 0 and 2"),
    ("(tensor-scatter! (zeros 2) #(2) 1)", "tensor-scatter!: index 2 out of range"),
    ("(tensor-scatter! (zeros 2 2) #(0) #(1 2 3))", "tensor-scatter!: shape mismatch"),
    ("(squeeze (zeros 2 1) 0)", "squeeze: axis 0 has size 2, not 1"),
    ("(pad #((1)) '(1))", "pad: expected 2 pad widths, got 1"),
    ("(tensor-lu (zeros 2 3))", "tensor-lu: expected a square matrix"),
    ("(tensor-qr #(1 2))", "tensor-qr: expected a matrix (rank 2)"),
    ("(tensor-eig #((1 2) (3 4)))", "tensor-eig: only symmetric matrices are supported"),
    ('(einsum "ij" #(1 2))', "einsum: operand 1 has shape (2)"),
]


def test_errors_are_catchable(tmp_path, env):
    lines = ["(define (try thunk)",
             "  (display (guard (e ((error-object? e) (error-object-message e)) (#t 'raised))",
             "             (thunk) 'no-error))",
             "  (newline))"]
    lines += [f"(try (lambda () {expr}))" for expr, _ in ERRORS]
    out = run(tmp_path, env, lines)
    assert len(out) == len(ERRORS), out
    bad = [(e, w, g) for (e, w), g in zip(ERRORS, out, strict=True) if w not in g]
    assert not bad, "\n".join(f"{e}: wanted {w!r}, got {g!r}" for e, w, g in bad)


def test_uncaught_shape_error_reports_location(tmp_path, env):
    prog = tmp_path / "bad.esk"
    prog.write_text("(define a (zeros 2 2))\n(display (matmul a (zeros 3 3)))\n")
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1
    assert f"{prog}:2:10: error: matmul: shape mismatch (2 2) x (3 3)" in proc.stderr


# ---- extended operations ---------------------------------------------------------------------------

def test_comparisons_where_broadcast(tmp_path, env):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 3, (3, 4)).astype(np.float64)
    b = rng.integers(0, 3, (4,)).astype(np.float64)
    c = rng.integers(0, 3, (3, 1)).astype(np.float64)
    cases = [(f"(tensor-eq {lit(a)} {lit(b)})", (a == b).astype(float), 0, 0),
             (f"(tensor-lt {lit(a)} {lit(c)})", (a < c).astype(float), 0, 0),
             (f"(tensor-gt {lit(a)} 1)", (a > 1).astype(float), 0, 0),
             (f"(tensor-le {lit(b)} {lit(c)})", (b <= c).astype(float), 0, 0),
             (f"(tensor-ge {lit(a)} {lit(a)})", (a >= a).astype(float), 0, 0),
             (f"(tensor-ne {lit(a)} {lit(b)})", (a != b).astype(float), 0, 0),
             # contiguous f64 against a flonum or a same-shape tensor: the one-loop fast path
             (f"(tensor-le {lit(a)} 1.0)", (a <= 1).astype(float), 0, 0),
             (f"(tensor-lt {lit(a)} 1.5)", (a < 1.5).astype(float), 0, 0),
             (f"(tensor-eq {lit(a)} 2.0)", (a == 2).astype(float), 0, 0),
             (f"(tensor-ge {lit(a)} 1.0)", (a >= 1).astype(float), 0, 0),
             (f"(tensor-gt {lit(a)} (tensor-sub {lit(a)} 1.0))", (a > a - 1).astype(float), 0, 0),
             (f"(tensor-ne {lit(a)} (tensor-scale {lit(a)} 2.0))", (a != 2 * a).astype(float), 0, 0),
             (f"(tensor-lt (transpose {lit(a)}) 1.5)", (a.T < 1.5).astype(float), 0, 0),
             (f"(tensor-where (tensor-gt {lit(a)} 1) {lit(a)} {lit(c)})", np.where(a > 1, a, c), 0, 0),
             (f"(tensor-where {lit(b)} 1.5 -1)", np.where(b != 0, 1.5, -1.0), 0, 0),
             (f"(tensor-broadcast {lit(c)} '(2 3 5))", np.broadcast_to(c, (2, 3, 5)), 0, 0),
             (f"(tensor-broadcast {lit(b)} (list 3 4))", np.broadcast_to(b, (3, 4)), 0, 0)]
    check_cases(tmp_path, env, cases)


def test_join_split_slice_gather(tmp_path, env):
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    c = rng.standard_normal((2, 5))
    t = rng.standard_normal((4, 6, 5))
    cases = [(f"(tensor-concat {lit(a)} {lit(b)})", np.concatenate([a, b]), 0, 0),
             (f"(tensor-concat (list {lit(a)} {lit(b)}) 0)", np.concatenate([a, b]), 0, 0),
             (f"(tensor-concat {lit(a)} {lit(c)} 1)", np.concatenate([a, c], 1), 0, 0),
             (f"(tensor-concat 1 {lit(a)} {lit(c)})", np.concatenate([a, c], 1), 0, 0),
             (f"(tensor-concat {lit(a)} {lit(c)} -1)", np.concatenate([a, c], -1), 0, 0),
             (f"(tensor-stack {lit(a)} {lit(a * 2)})", np.stack([a, a * 2]), 0, 0),
             (f"(tensor-stack (list {lit(a)} {lit(a)} {lit(a)}) 2)", np.stack([a, a, a], 2), 0, 0),
             (f"(tensor-stack 1 {lit(a)} {lit(a)})", np.stack([a, a], 1), 0, 0),
             (f"(tensor-slice {lit(t)} 1 3)", t[1:3], 0, 0),
             (f"(tensor-slice {lit(t)} '(1 2 0) '(3 -1 4))", t[1:3, 2:-1, 0:4], 0, 0),
             (f"(tensor-slice {lit(t)} '(0 #f 2) '(#f 4))", t[:, :4, 2:], 0, 0),
             (f"(tensor-slice {lit(t)} -2)", t[-2:], 0, 0),
             (f"(tensor-gather {lit(t)} #(3 0 0))", np.take(t, [3, 0, 0], 0), 0, 0),
             (f"(tensor-gather {lit(t)} '(1 -1) 2)", np.take(t, [1, -1], 2), 0, 0),
             (f"(tensor-gather {lit(t)} #((0 1) (2 3)) 1)", np.take(t, [[0, 1], [2, 3]], 1), 0, 0)]
    body = [show(e) for e, *_ in cases]
    for axis_case in [(f"(tensor-split {lit(t)} 2 1)", np.split(t, 2, 1)),
                      (f"(tensor-split {lit(t)} '(1 3))", np.split(t, [1, 3])),
                      (f"(tensor-split {lit(t)} '(2 2 9) 2)", np.split(t, [2, 2, 9], 2))]:
        body.append(f"(for-each (lambda (p) (write p) (newline)) {axis_case[0]})")
    out = run(tmp_path, env, body)
    for (expr, want, *_), line in zip(cases, out[:len(cases)], strict=True):
        assert close(parse(line), want, 0), expr[:100]
    rest = out[len(cases):]
    expect = [p for _, parts in [(None, np.split(t, 2, 1)), (None, np.split(t, [1, 3])),
                                 (None, np.split(t, [2, 2, 9], 2))] for p in parts]
    assert len(rest) == len(expect)
    for line, want in zip(rest, expect, strict=True):
        if want.size == 0:
            continue  # empty parts print as #() of any shape
        assert close(parse(line), want, 0)


def test_einsum(tmp_path, env):
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    c = rng.standard_normal((3, 5))
    x, y = rng.standard_normal(5), rng.standard_normal(5)
    p, q = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 5, 3))
    s = rng.standard_normal((4, 4))
    specs = [("ij,jk->ik", (a, b)), ("i,i->", (x, y)), ("ij->ji", (a,)), ("bij,bjk->bik", (p, q)),
             ("ij,kj->ik", (a, c)), ("i,j->ij", (x, y)), ("ij,jk", (a, b)), ("ii->", (s,)),
             ("ii->i", (s,)), ("ij->", (a,)), ("ij->j", (a,)), ("ij,jk,kl->il", (a, b, c)),
             ("bij,bjk->bki", (p, q)), ("ij,ij->ij", (a, a)), ("ik,jk->ij", (a, a))]
    cases = []
    for spec, ops in specs:
        args = " ".join(lit(o) for o in ops)
        cases.append((f'(einsum "{spec}" {args})', np.einsum(spec, *ops), 1e-12, 1e-14))
    check_cases(tmp_path, env, cases)


def test_decompositions(tmp_path, env):
    rng = np.random.default_rng(17)
    lines, checks = [], []
    for n in (1, 3, 8):
        m = rng.standard_normal((n, n))
        spd = m @ m.T + n * np.eye(n)
        lines.append(show(f"(tensor-cholesky {lit(spd)})"))
        checks.append(("chol", spd))
    for shape in [(5, 3), (3, 5), (4, 4)]:
        a = rng.standard_normal(shape)
        lines.append(show(f"(tensor-qr {lit(a)})"))
        checks.append(("qr", a))
        lines.append(show(f"(tensor-svd {lit(a)})"))
        checks.append(("svd", a))
    for shape in [(6, 3), (3, 6)]:
        a, b = rng.standard_normal(shape), rng.standard_normal(shape[0])
        lines.append(show(f"(tensor-lstsq {lit(a)} {lit(b)})"))
        checks.append(("lstsq", (a, b)))
    m = rng.standard_normal((5, 5))
    sym = m + m.T
    lines.append(show(f"(tensor-eig {lit(sym)})"))
    checks.append(("eig", sym))
    out = run(tmp_path, env, lines)
    for (kind, data), line in zip(checks, out, strict=True):
        got = parse(line)
        if kind == "chol":
            assert close(got, np.linalg.cholesky(data), 1e-12, 1e-14)
        elif kind == "qr":
            qn, rn = np.linalg.qr(data)
            assert close(got[0], qn, 1e-10, 1e-12) and close(got[1], rn, 1e-10, 1e-12)
        elif kind == "svd":
            u, s, v = (np.asarray(x) for x in got)
            assert close(s, np.linalg.svd(data, compute_uv=False), 1e-12, 1e-14)
            assert close(u @ np.diag(s) @ v.T, data, 1e-12, 1e-13)
            assert close(u.T @ u, np.eye(u.shape[1]), 0, 1e-12)
            assert close(v.T @ v, np.eye(v.shape[1]), 0, 1e-12)
        elif kind == "lstsq":
            a, b = data
            assert close(got, np.linalg.lstsq(a, b, rcond=None)[0], 1e-10, 1e-12)
        else:
            w, vecs = np.linalg.eigh(data)
            assert close(got[0], w, 1e-12, 1e-13)
            gv = np.asarray(got[1])
            assert close(np.abs(gv.T @ vecs), np.eye(5), 0, 1e-10)  # same vectors up to sign


def test_large_products_use_the_bundled_blas(tmp_path, env):
    """Through the driver, a large product loads numpy's OpenBLAS (ESHKOL_BLAS set by
    eshkol/runtime/blas.py); ESHKOL_BLAS=none keeps the own kernel."""
    from eshkol.runtime.blas import numpy_openblas

    lib = numpy_openblas()
    if lib is None:
        pytest.skip("numpy wheel without a bundled OpenBLAS")
    prog = tmp_path / "big.esk"
    prog.write_text("(display (tensor-sum (matmul (ones 64 64) (ones 64 64))))\n")
    clean = {k: v for k, v in env.items() if k != "ESHKOL_BLAS"}
    for extra, want in (({}, f"eshkol: BLAS {lib}"), ({"ESHKOL_BLAS": "none"}, None)):
        proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True,
                              env=dict(clean, ESHKOL_BLAS_VERBOSE="1", **extra), timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "262144.0"
        if want:
            assert want in proc.stderr
        else:
            assert "eshkol: BLAS" not in proc.stderr


def test_topk_scatter_squeeze_tile_pad_lu(tmp_path, env):
    rng = np.random.default_rng(29)
    x = rng.integers(0, 6, (4, 7)).astype(np.float64)  # ties on purpose
    z = rng.standard_normal((5, 3))
    v = rng.standard_normal((2, 3))
    a = rng.standard_normal((6, 6))
    lines = [show(f"(tensor-topk {lit(x)} 3)"), show(f"(tensor-topk {lit(x)} 2 0)"),
             show(f"(tensor-scatter! {lit(z)} #(4 1) {lit(v)})"),
             show(f"(tensor-scatter! {lit(z)} '(-1) 2.5 1)"),
             show(f"(squeeze {lit(rng.standard_normal((1, 3, 1, 2)))})"),
             show(f"(tile {lit(v)} '(2 1 3))"), show(f"(pad {lit(v)} '((1 2) (0 3)) -1)"),
             show(f"(tensor-lu {lit(a)})")]
    out = run(tmp_path, env, lines)

    def topk(arr, k, axis):  # descending, ties by lower index (stable sort of the negation)
        order = np.argsort(-arr, axis=axis, kind="stable")
        idx = np.take(order, range(k), axis=axis)
        return np.take_along_axis(arr, idx, axis), idx

    for line, (k, axis) in zip(out[:2], [(3, -1), (2, 0)], strict=True):
        got = parse(line)
        want_v, want_i = topk(x, k, axis)
        assert close(got[0], want_v, 0) and close(got[1], want_i, 0), line
    z1 = z.copy()
    z1[[4, 1]] = v
    assert close(parse(out[2]), z1, 0)
    z2 = z.copy()
    z2[:, -1] = 2.5
    assert close(parse(out[3]), z2, 0)
    assert np.asarray(parse(out[4])).shape == (3, 2)
    assert close(parse(out[5]), np.tile(v, (2, 1, 3)), 0)
    assert close(parse(out[6]), np.pad(v, ((1, 2), (0, 3)), constant_values=-1), 0)
    lu, perm, sign = parse(out[7])
    lu = np.asarray(lu)
    lower, upper = np.tril(lu, -1) + np.eye(6), np.triu(lu)
    assert close(lower @ upper, a[np.asarray(perm, dtype=int)], 1e-12, 1e-13)
    assert sign == round(np.linalg.det(np.eye(6)[np.asarray(perm, dtype=int)]))  # parity of P
