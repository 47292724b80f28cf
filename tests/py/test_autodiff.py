"""Automatic differentiation (runtime_c/ad*.c): the calculus procedures against independent
oracles.

- hypothesis draws random compositions of the scalar builtins; `derivative` (forward mode)
  and `gradient` (reverse mode) are checked against central finite differences computed in
  Python, many cases batched into one program per example;
- nested derivatives (second and third order, every mix of forward and reverse) against
  jax, and against hand-computed values when jax is missing;
- tensor gradients (matmul forms, broadcasting, reductions with axes, indexing, literals,
  linear algebra) against jax.grad, jacobians against jax.jacfwd, Hessians against
  jax.hessian, on random shapes;
- error cases: non-differentiable builtins and non-scalar results are catchable errors naming
  the operation; `checkpoint-segment` gives the same gradients; `eshkol build` prints the same.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

try:  # jax is an optional oracle (installed with the XLA target)
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
except Exception:  # noqa: BLE001 - any import failure means "no jax"
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="jax is not installed (import jax failed)")


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


ESHKOL = _eshkol()
SETTINGS = settings(max_examples=3, deadline=None, derandomize=True, phases=[Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return dict(os.environ, XDG_CACHE_HOME=str(cache))


def run(tmp_path: Path, env, text: str, *, ok: bool = True) -> subprocess.CompletedProcess:
    prog = tmp_path / "prog.esk"
    prog.write_text(text, encoding="utf-8")
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True, env=env,
                          timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# ---- reading printed numbers and tensors back -------------------------------------------------

_TOKEN = re.compile(r"#\(|\(|\)|[^\s()]+")


def _atom(tok: str) -> float:
    special = {"+nan.0": math.nan, "-nan.0": math.nan, "+inf.0": math.inf, "-inf.0": -math.inf}
    if tok in special:
        return special[tok]
    return float(Fraction(tok)) if "/" in tok else float(tok)


def parse(line: str):
    """A printed number, #(...) tensor (nested) or list, as a float or numpy array."""
    toks = _TOKEN.findall(line)
    pos = 0

    def value():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t in ("#(", "("):
            items = []
            while toks[pos] != ")":
                items.append(value())
            pos += 1
            return items
        return _atom(t)

    v = value()
    return np.array(v, dtype=float) if isinstance(v, list) else v


def lines_of(out: str) -> list:
    return [parse(s) for s in out.strip().splitlines()]


def close(got, want, rtol=1e-6, atol=1e-8) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def lit(a) -> str:
    """An Eshkol tensor literal (or number) for a numpy array."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return repr(float(a))
    return "#(" + " ".join(lit(x) if a.ndim > 1 else repr(float(x)) for x in a) + ")"


# ---- random scalar compositions ------------------------------------------------------------
# Each node renders as Eshkol text and as a Python function of the variables; every form keeps
# its arguments inside the builtin's smooth domain (no kinks or poles at sampled points).

UNARY = [
    ("(sin {})", math.sin), ("(cos {})", math.cos), ("(tanh {})", math.tanh),
    ("(atan {})", math.atan), ("(square {})", lambda a: a * a), ("(- {})", lambda a: -a),
    ("(exp (sin {}))", lambda a: math.exp(math.sin(a))),
    ("(log (+ 1.0 (square {})))", lambda a: math.log(1 + a * a)),
    ("(sqrt (+ 1.0 (* {0} {0})))", lambda a: math.sqrt(1 + a * a)),
    ("(asin (* 0.5 (tanh {})))", lambda a: math.asin(0.5 * math.tanh(a))),
    ("(acos (* 0.5 (tanh {})))", lambda a: math.acos(0.5 * math.tanh(a))),
    ("(sinh (sin {}))", lambda a: math.sinh(math.sin(a))),
    ("(cosh (sin {}))", lambda a: math.cosh(math.sin(a))),
    ("(tan (* 0.5 (sin {})))", lambda a: math.tan(0.5 * math.sin(a))),
    ("(abs (+ 2.5 (sin {})))", lambda a: abs(2.5 + math.sin(a))),
    ("(expt {} 3)", lambda a: a ** 3),
    ("(exact->inexact {})", lambda a: a),
]
BINARY = [
    ("(+ {} {})", lambda a, b: a + b), ("(- {} {})", lambda a, b: a - b),
    ("(* {} {})", lambda a, b: a * b),
    ("(/ {} (+ 1.5 (cos {})))", lambda a, b: a / (1.5 + math.cos(b))),
    ("(atan {} (+ 2.0 (sin {})))", lambda a, b: math.atan2(a, 2.0 + math.sin(b))),
    ("(expt (+ 1.5 (sin {})) (cos {}))", lambda a, b: (1.5 + math.sin(a)) ** math.cos(b)),
    ("(* 0.5 {} {})", lambda a, b: 0.5 * a * b),
]


@st.composite
def expr(draw, names: tuple[str, ...], depth: int = 4):
    """(text, python function of a dict of variables)."""
    choice = draw(st.integers(0, 9)) if depth > 0 else 0
    if choice <= 1:
        if draw(st.booleans()):
            v = draw(st.sampled_from(names))
            return v, (lambda env, v=v: env[v])
        c = draw(st.sampled_from([0.5, 1.25, -0.75, 2.0, 3]))
        return repr(c), (lambda env, c=c: c)
    if choice <= 5:
        fmt, fn = draw(st.sampled_from(UNARY))
        t, f = draw(expr(names, depth - 1))
        return fmt.format(t), (lambda env, f=f, fn=fn: fn(f(env)))
    fmt, fn = draw(st.sampled_from(BINARY))
    ta, fa = draw(expr(names, depth - 1))
    tb, fb = draw(expr(names, depth - 1))
    return fmt.format(ta, tb), (lambda env, fa=fa, fb=fb, fn=fn: fn(fa(env), fb(env)))


def central_diff(f, x: float) -> float:
    h = 1e-5 * max(1.0, abs(x))
    return (f(x + h) - f(x - h)) / (2 * h)


def fd_close(got: float, fd: float) -> bool:
    return abs(got - fd) <= 1e-5 * max(1.0, abs(fd))


@SETTINGS
@given(st.lists(st.tuples(expr(("x",)), st.floats(-2.0, 2.0)), min_size=40, max_size=40))
def test_random_scalar_compositions_vs_finite_differences(tmp_path, env, cases):
    """derivative (forward) and gradient (reverse) of random compositions match central
    differences; the value is f's."""
    prog = ["(define (show x) (write x) (newline))"]
    for i, ((text, _), x) in enumerate(cases):
        prog.append(f"(define (f{i} x) {text})")
        prog.append(f"(show (f{i} {x!r})) (show (derivative f{i} {x!r})) (show (gradient f{i} {x!r}))")
    got = lines_of(run(tmp_path, env, "\n".join(prog)).stdout)
    assert len(got) == 3 * len(cases)
    for i, ((text, fn), x) in enumerate(cases):
        f = lambda t, fn=fn: fn({"x": t})  # noqa: E731
        value, fwd, rev = got[3 * i: 3 * i + 3]
        fd = central_diff(f, x)
        assert math.isclose(value, f(x), rel_tol=1e-9, abs_tol=1e-12), (text, x)
        assert fd_close(fwd, fd), (text, x, fwd, fd)
        assert fd_close(rev, fd), (text, x, rev, fd)


@SETTINGS
@given(st.lists(st.tuples(expr(("x", "y", "z"), depth=3),
                          st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3)),
                min_size=25, max_size=25))
def test_random_multivariate_gradients_vs_finite_differences(tmp_path, env, cases):
    """gradient of f: R^3 -> R at a tensor point, and the jacobian row and directional
    derivative (forward mode), against central differences per component."""
    prog = ["(define (show x) (write x) (newline))"]
    for i, ((text, _), p) in enumerate(cases):
        prog.append(f"(define (f{i} v) (let ((x (vref v 0)) (y (vref v 1)) (z (vref v 2))) {text}))")
        pt = lit(p)
        prog.append(f"(show (gradient f{i} {pt})) (show (jacobian f{i} {pt})) "
                    f"(show (directional-derivative f{i} {pt} #(1.0 -2.0 0.5)))")
    got = lines_of(run(tmp_path, env, "\n".join(prog)).stdout)
    for i, ((text, fn), p) in enumerate(cases):
        grad, jac, dd = got[3 * i: 3 * i + 3]
        fd = []
        for k in range(3):
            def g(t, k=k, p=p, fn=fn):
                q = list(p)
                q[k] = t
                return fn(dict(zip("xyz", q, strict=True)))
            fd.append(central_diff(g, p[k]))
        assert all(fd_close(a, b) for a, b in zip(grad, fd, strict=True)), (text, p, grad, fd)
        assert jac.shape == (1, 3) and np.allclose(jac[0], grad, rtol=1e-12, atol=1e-12)
        assert fd_close(dd, fd[0] - 2 * fd[1] + 0.5 * fd[2]), (text, p)


# ---- nesting ---------------------------------------------------------------------------------

# (eshkol text of f in x, jax function, x): derivatives up to third order.
NESTED = [
    ("(* (sin x) (exp (* 0.5 x)))", lambda x: jnp.sin(x) * jnp.exp(0.5 * x), 0.7),
    ("(/ (tanh x) (+ 2.0 (cos x)))", lambda x: jnp.tanh(x) / (2.0 + jnp.cos(x)), -0.4),
    ("(expt (+ 2.0 (sin x)) (cos x))", lambda x: (2.0 + jnp.sin(x)) ** jnp.cos(x), 1.3),
    ("(atan (* x x) (+ 1.5 x))", lambda x: jnp.arctan2(x * x, 1.5 + x), 0.9),
    ("(log (+ 1.0 (* x x x x)))", lambda x: jnp.log(1.0 + x ** 4), 0.8),
]


@needs_jax
def test_nested_second_and_third_order_vs_jax(tmp_path, env):
    """Every way of taking 2nd and 3rd derivatives (nested derivative, derivative-n, taylor,
    gradient of gradient, derivative of gradient, gradient of derivative, hessian) agrees with
    jax."""
    prog = ["(define (show x) (write x) (newline))"]
    for i, (text, _, x) in enumerate(NESTED):
        prog += [
            f"(define (f{i} x) {text})",
            f"(show (derivative (lambda (a) (derivative f{i} a)) {x}))",
            f"(show (derivative-n f{i} {x} 2))",
            f"(show (gradient (lambda (a) (gradient f{i} a)) {x}))",
            f"(show (derivative (lambda (a) (gradient f{i} a)) {x}))",
            f"(show (gradient (lambda (a) (derivative f{i} a)) {x}))",
            f"(show (hessian f{i} {x}))",
            f"(show (derivative (lambda (a) (derivative (lambda (b) (derivative f{i} b)) a)) {x}))",
            f"(show (derivative-n f{i} {x} 3))",
            f"(show (gradient (lambda (a) (derivative (lambda (b) (gradient f{i} b)) a)) {x}))",
            f"(show (list-ref (taylor f{i} {x} 3) 3))",
        ]
    got = lines_of(run(tmp_path, env, "\n".join(prog)).stdout)
    for i, (text, jf, x) in enumerate(NESTED):
        d2 = float(jax.grad(jax.grad(jf))(x))
        d3 = float(jax.grad(jax.grad(jax.grad(jf)))(x))
        row = got[10 * i: 10 * i + 10]
        for k in range(5):
            assert math.isclose(row[k], d2, rel_tol=1e-9, abs_tol=1e-12), (text, k, row[k], d2)
        assert close(row[5], [[d2]], rtol=1e-9)
        for k in range(6, 9):
            assert math.isclose(row[k], d3, rel_tol=1e-9, abs_tol=1e-12), (text, k, row[k], d3)
        assert math.isclose(row[9], d3 / 6, rel_tol=1e-9, abs_tol=1e-12)


def test_no_perturbation_confusion(tmp_path, env):
    """The classic: d/dx (x * d/dy (x*y) at y=2) at x=1 is 2, in every mode combination."""
    prog = """
(define (show x) (write x) (newline))
(show (derivative (lambda (x) (* x (derivative (lambda (y) (* x y)) 2.0))) 1.0))
(show (gradient (lambda (x) (* x (gradient (lambda (y) (* x y)) 2.0))) 1.0))
(show (derivative (lambda (x) (* x (gradient (lambda (y) (* x y)) 2.0))) 1.0))
(show (gradient (lambda (x) (* x (derivative (lambda (y) (* x y)) 2.0))) 1.0))
(define (d f) (lambda (x) (derivative f x)))
(show ((d (lambda (x) (* x ((d (lambda (y) (* x y))) 2.0)))) 1.0))
(show (derivative (lambda (x) (derivative (lambda (y) (+ x y)) 1.0)) 3.0))
"""
    assert lines_of(run(tmp_path, env, prog).stdout) == [2.0, 2.0, 2.0, 2.0, 2.0, 0.0]


def test_exact_points_give_exact_results(tmp_path, env):
    """Rational functions at exact points differentiate exactly (COMPAT: derivative)."""
    prog = """
(define (show x) (write x) (newline))
(show (derivative (lambda (x) (* x x x)) 2))
(show (derivative (lambda (x) (/ 1 x)) 2))
(show (derivative-n (lambda (x) (* x x x x)) 1/2 2))
(show (taylor (lambda (x) (* x x x)) 1 3))
(show (gradient (lambda (x) (* 3 x x)) 5))
(show (derivative (lambda (x) 7) 1))
(show (derivative (lambda (x) 7) 1.0))
"""
    assert run(tmp_path, env, prog).stdout.split("\n")[:7] == [
        "12", "-1/4", "3", "(1 3 3 1)", "30", "0", "0.0"]


# ---- tensors against jax ---------------------------------------------------------------------

def _rand(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.uniform(-1.5, 1.5, size=shape).round(3)


def _tensor_cases(seed: int):
    """(eshkol loss text over p, jax loss over p, point): p is the differentiated tensor, the
    other operands are constants baked in."""
    rng = np.random.default_rng(seed)
    cases = []
    m, k, n = rng.integers(1, 5, size=3)
    A, B, b, c = _rand(rng, (m, k)), _rand(rng, (k, n)), _rand(rng, (k,)), _rand(rng, (m,))
    cases += [
        (f"(tensor-sum (tensor-sin (matmul p {lit(B)})))", lambda p: jnp.sum(jnp.sin(p @ B)), A),
        (f"(tensor-sum (tensor-sin (matmul {lit(A)} p)))", lambda p: jnp.sum(jnp.sin(A @ p)), B),
        (f"(tensor-sum (tensor-exp (matmul {lit(A)} p)))", lambda p: jnp.sum(jnp.exp(A @ p)), b),
        (f"(tensor-sum (tensor-tanh (matmul p {lit(A)})))", lambda p: jnp.sum(jnp.tanh(p @ A)), c),
        ("(tensor-dot p (tensor-sin p))", lambda p: jnp.dot(p, jnp.sin(p)), b),
        ("(tensor-sum (matmul p (transpose p)))", lambda p: jnp.sum(p @ p.T), A),
        (f"(tensor-sum (tensor-square (outer p {lit(c)})))", lambda p: jnp.sum(jnp.outer(p, c) ** 2), b),
    ]
    # broadcasting, both ways round
    for sa, sb in [((m, 1), (1, n)), ((n,), (m, n)), ((m, n), ()), ((1, n), (m, 1))]:
        X, Y = _rand(rng, sa), _rand(rng, sb) + 3.0
        cases += [
            (f"(tensor-sum (tensor-tanh (tensor-add (tensor-mul p {lit(Y)}) (tensor-div p {lit(Y)}))))",
             lambda p, Y=Y: jnp.sum(jnp.tanh(p * Y + p / Y)), X),
            (f"(tensor-sum (tensor-sin (tensor-sub {lit(X)} (tensor-div {lit(X)} p))))",
             lambda p, X=X: jnp.sum(jnp.sin(X - X / p)), Y),
            ("(tensor-sum (tensor-pow p 2.0))", lambda p: jnp.sum(p ** 2.0), Y),
        ]
    # reductions with axes
    M = _rand(rng, (m, n))
    cases += [
        ("(tensor-sum (tensor-square (tensor-sum (tensor-exp p) 0)))",
         lambda p: jnp.sum(jnp.sum(jnp.exp(p), 0) ** 2), M),
        ("(tensor-sum (tensor-square (tensor-mean (tensor-sin p) 1)))",
         lambda p: jnp.sum(jnp.mean(jnp.sin(p), 1) ** 2), M),
        ("(tensor-mean (tensor-mul p p))", lambda p: jnp.mean(p * p), M),
        ("(tensor-sum (tensor-max (tensor-sin p) 1))", lambda p: jnp.sum(jnp.max(jnp.sin(p), 1)), M),
        ("(tensor-min (tensor-cos p))", lambda p: jnp.min(jnp.cos(p)), M),
        ("(* (tensor-get p 0 0) (tensor-sum (tensor-tanh p)))",
         lambda p: p[0, 0] * jnp.sum(jnp.tanh(p)), M),
        ("(tensor-sum (tensor-square (reshape (transpose p) -1)))", lambda p: jnp.sum(p.T.reshape(-1) ** 2), M),
        ("(tensor-sum (tensor-apply p (lambda (e) (* e (sin e)))))", lambda p: jnp.sum(p * jnp.sin(p)), M),
        ("(tensor-sum (tensor-square (tensor-get p 0)))", lambda p: jnp.sum(p[0] ** 2), M),
    ]
    # data movement (slices, gathers, joins, where) and the recomposed statistics
    cases += [
        ("(tensor-sum (tensor-square (tensor-slice p 0 1)))", lambda p: jnp.sum(p[0:1] ** 2), M),
        (f"(tensor-sum (tensor-sin (tensor-gather p #(0 {m - 1} 0) 0)))",
         lambda p: jnp.sum(jnp.sin(jnp.take(p, jnp.array([0, m - 1, 0]), axis=0))), M),
        ("(tensor-sum (tensor-exp (tensor-concat p (tensor-square p))))",
         lambda p: jnp.sum(jnp.exp(jnp.concatenate([p, p ** 2]))), M),
        ("(tensor-sum (tensor-sin (tensor-stack p (tensor-tanh p))))",
         lambda p: jnp.sum(jnp.sin(jnp.stack([p, jnp.tanh(p)]))), M),
        ("(tensor-sum (tensor-where (tensor-gt p 0.0) (tensor-square p) (tensor-sin p)))",
         lambda p: jnp.sum(jnp.where(p > 0, p ** 2, jnp.sin(p))), M),
        ("(tensor-variance p)", lambda p: jnp.var(p), M),
        ("(tensor-sum (tensor-std p 1))", lambda p: jnp.sum(jnp.std(p, 1)), M),
        ("(apply + (map (lambda (e) (* e e e)) (tensor->list (flatten p))))",
         lambda p: jnp.sum(p ** 3), M),
    ]
    S = _rand(rng, (3, 3)) + 3 * np.eye(3)
    cases += [
        ("(det p)", lambda p: jnp.linalg.det(p), S),
        ("(tensor-sum (inv p))", lambda p: jnp.sum(jnp.linalg.inv(p)), S),
        (f"(tensor-sum (tensor-sin (solve p {lit(S[0])})))", lambda p: jnp.sum(jnp.sin(jnp.linalg.solve(p, S[0]))), S),
        (f"(tensor-sum (solve {lit(S)} p))", lambda p: jnp.sum(jnp.linalg.solve(S, p)), S[1]),
        ("(norm p)", lambda p: jnp.linalg.norm(p), S[2]),
        ("(trace (matmul p p))", lambda p: jnp.trace(p @ p), S),
    ]
    return cases


@needs_jax
@pytest.mark.parametrize("seed", [1, 2])
def test_tensor_gradients_vs_jax_grad(tmp_path, env, seed):
    """gradient of tensor losses (matmul forms, broadcasting, reductions, indexing, linear
    algebra) equals jax.grad on random shapes; value-and-grad's value is the loss."""
    cases = _tensor_cases(seed)
    prog = ["(define (show x) (write x) (newline))"]
    for text, _, point in cases:
        prog.append(f"(call-with-values (lambda () (value-and-grad (lambda (p) {text}) {lit(point)}))"
                    " (lambda (v g) (show v) (show g)))")
    got = lines_of(run(tmp_path, env, "\n".join(prog)).stdout)
    assert len(got) == 2 * len(cases)
    for i, (text, jf, point) in enumerate(cases):
        x = jnp.asarray(point, dtype=jnp.float64)
        want_v, want_g = float(jf(x)), np.asarray(jax.grad(jf)(x))
        assert math.isclose(got[2 * i], want_v, rel_tol=1e-9, abs_tol=1e-12), text
        assert close(got[2 * i + 1], want_g, rtol=1e-7, atol=1e-10), (text, got[2 * i + 1], want_g)


MLP_ESK = """
(define (ramp-sin n a b) (tensor-sin (tensor-add (tensor-scale (arange n) a) b)))
(define (mlp-loss X Y D H O)
  (let* ((o1 (* D H)) (o2 (+ o1 H)) (o3 (+ o2 (* H O))) (P (+ o3 O)))
    (lambda (th)
      (let* ((W1 (reshape (tensor-slice th 0 o1) D H))
             (b1 (tensor-slice th o1 o2))
             (W2 (reshape (tensor-slice th o2 o3) H O))
             (b2 (tensor-slice th o3 P))
             (h (tensor-minimum 2.0 (tensor-maximum (tensor-add (matmul X W1) b1) 0.0)))
             (d (tensor-sub (tensor-add (matmul h W2) b2) Y)))
        (+ (tensor-mean (tensor-mul d d)) (* 0.01 (tensor-sum (tensor-mul th th))))))))
"""


def _ramp_sin(n: int, a: float, b: float) -> np.ndarray:
    """The test data of MLP_ESK's ramp-sin: the same formula on both sides (no big literals,
    which are slow to compile)."""
    return np.sin(np.arange(n, dtype=np.float64) * a + b)


def _mlp_jax(th, X, Y, d: int, h: int, o: int):
    o1, o2, o3 = d * h, d * h + h, d * h + h + h * o
    W1, b1 = th[:o1].reshape(d, h), th[o1:o2]
    W2, b2 = th[o2:o3].reshape(h, o), th[o3:]
    hid = jnp.minimum(2.0, jnp.maximum(X @ W1 + b1, 0.0))
    r = hid @ W2 + b2 - Y
    return jnp.mean(r * r) + 0.01 * jnp.sum(th * th)


@needs_jax
def test_mlp_gradient_vs_jax_f64_f32(tmp_path, env):
    """value-and-grad of an MLP loss over one flat parameter vector (slices reshaped into
    weights, matmul, bias broadcast, relu and a clamp against numbers, MSE plus a penalty that
    reads the vector again) equals jax's, in f64 and in f32 (the gradient stays f32), on a
    small shape and one large enough for the BLAS: the reverse-mode fast paths of ad_fast.c."""
    cases = [(b, d, h, o, dt) for b, d, h, o in [(3, 4, 5, 2), (40, 64, 64, 3)]
             for dt in ("f64", "f32")]
    prog = [MLP_ESK, "(define (show x) (write x) (newline))"]
    for b, d, h, o, dt in cases:
        p = d * h + h + h * o + o
        prog.append(f"""
(let* ((c (lambda (t) (tensor-astype t '{dt})))
       (X (c (reshape (ramp-sin {b * d} 0.37 0.1) {b} {d})))
       (Y (c (reshape (ramp-sin {b * o} 0.91 0.0) {b} {o})))
       (th (c (tensor-scale (ramp-sin {p} 1.3 0.5) 0.3))))
  (call-with-values (lambda () (value-and-grad (mlp-loss X Y {d} {h} {o}) th))
    (lambda (v g) (show v) (show (tensor-dtype g)) (show g))))""")
    out = run(tmp_path, env, "\n".join(prog)).stdout.strip().splitlines()
    assert len(out) == 3 * len(cases)
    for i, (b, d, h, o, dt) in enumerate(cases):
        jdt = jnp.float64 if dt == "f64" else jnp.float32
        X = jnp.asarray(_ramp_sin(b * d, 0.37, 0.1).reshape(b, d), jdt)
        Y = jnp.asarray(_ramp_sin(b * o, 0.91, 0.0).reshape(b, o), jdt)
        th = jnp.asarray(_ramp_sin(d * h + h + h * o + o, 1.3, 0.5) * 0.3, jdt)
        want_v, want_g = jax.jit(jax.value_and_grad(_mlp_jax), static_argnums=(3, 4, 5))(
            th, X, Y, d, h, o)
        got_v, got_g = parse(out[3 * i]), parse(out[3 * i + 2])
        tol = 1e-10 if dt == "f64" else 1e-4
        what = (b, d, h, o, dt)
        assert out[3 * i + 1] == dt, what
        assert math.isclose(got_v, float(want_v), rel_tol=tol), what
        want_g = np.asarray(want_g, dtype=float)
        assert got_g.shape == want_g.shape, what
        assert np.linalg.norm(got_g - want_g) <= tol * np.linalg.norm(want_g), what


@needs_jax
def test_jacobian_hessian_vs_jax(tmp_path, env):
    """jacobian = jax.jacfwd, hessian = jax.hessian, laplacian = trace, divergence = trace of the
    Jacobian, curl from the Jacobian, for vector functions built from tensor ops."""
    rng = np.random.default_rng(7)
    v = _rand(rng, (3,))
    W = _rand(rng, (3, 3))
    F = (f"(lambda (p) (tensor-tanh (matmul {lit(W)} (tensor-mul p p))))",
         lambda p: jnp.tanh(W @ (p * p)))
    f = (f"(lambda (p) (tensor-sum (tensor-sin (tensor-mul p (matmul {lit(W)} p)))))",
         lambda p: jnp.sum(jnp.sin(p * (W @ p))))
    prog = f"""
(define (show x) (write x) (newline))
(show (jacobian {F[0]} {lit(v)}))
(show (hessian {f[0]} {lit(v)}))
(show (laplacian {f[0]} {lit(v)}))
(show (divergence {F[0]} {lit(v)}))
(show (curl {F[0]} {lit(v)}))
(show (jacobian (lambda (p) (gradient {f[0]} p)) {lit(v)}))
"""
    got = lines_of(run(tmp_path, env, prog).stdout)
    x = jnp.asarray(v)
    J = np.asarray(jax.jacfwd(F[1])(x))
    H = np.asarray(jax.hessian(f[1])(x))
    curl = [J[2, 1] - J[1, 2], J[0, 2] - J[2, 0], J[1, 0] - J[0, 1]]
    assert close(got[0], J, rtol=1e-9)
    assert close(got[1], H, rtol=1e-9)
    assert math.isclose(got[2], np.trace(H), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(got[3], np.trace(J), rel_tol=1e-9, abs_tol=1e-12)
    assert close(got[4], curl, rtol=1e-9, atol=1e-12)
    assert close(got[5], H, rtol=1e-9)


def test_tensor_gradients_vs_finite_differences(tmp_path, env):
    """Without jax: the gradient of a small MLP loss (matmul, broadcasting bias, tanh, mean)
    against central differences of the same loss evaluated by Eshkol itself."""
    rng = np.random.default_rng(3)
    X, W1, b1, w2 = _rand(rng, (5, 3)), _rand(rng, (3, 4)), _rand(rng, (4,)), _rand(rng, (4,))
    loss = (f"(lambda (w) (tensor-mean (tensor-square (matmul (tensor-tanh (tensor-add "
            f"(matmul {lit(X)} w) {lit(b1)})) {lit(w2)}))))")
    h = 1e-6
    lines = ["(define (show x) (write x) (newline))", f"(define L {loss})",
             f"(show (gradient L {lit(W1)}))"]
    for idx in np.ndindex(W1.shape):
        for s in (h, -h):
            Wp = W1.copy()
            Wp[idx] += s
            lines.append(f"(show (L {lit(Wp)}))")
    got = lines_of(run(tmp_path, env, "\n".join(lines)).stdout)
    fd = np.array([(got[1 + 2 * i] - got[2 + 2 * i]) / (2 * h) for i in range(W1.size)])
    assert close(got[0].ravel(), fd, rtol=1e-5, atol=1e-7)


# ---- points, forms, errors ---------------------------------------------------------------------

def test_points_and_one_argument_forms(tmp_path, env):
    """Points may be tensors, Scheme vectors, lists or numbers; one-argument forms return
    procedures; extra gradient arguments are packed into one point."""
    prog = """
(define (show x) (write x) (newline))
(define (g v) (+ (* (vref v 0) (vref v 0)) (* 3.0 (vref v 0) (vref v 1))))
(show (gradient g #(1.0 2.0)))
(show (gradient g '#(1.0 2.0)))
(show (gradient g (list 1.0 2.0)))
(show ((gradient g) #(1.0 2.0)))
(show (gradient g 1.0 2.0))
(show ((derivative (lambda (x) (* x x))) 3.0))
(show ((D (lambda (x) (* x x))) 4.0))
(show ((hessian g) #(1.0 2.0)))
(show (hessian (lambda (x) (* x x x)) 2.0))
(show (derivative (lambda (x) (list x (* x x))) 3.0))
(show (derivative (lambda (v) (tensor-mul v v)) #(1.0 2.0)))
(show (gradient (lambda (v) 5.0) #(1.0 2.0)))
(show (jacobian (lambda (v) (vector (* 2.0 (vref v 0)) (vref v 1))) #(1.0 2.0)))
(show (gradient (lambda (v) (tensor-dot #((vref v 1) (vref v 0)) v)) #(1.0 2.0)))
(show (gradient (lambda (v) (+ (car v) (* 2.0 (vector-ref (cdr v) 0)))) #(1.0 2.0 3.0)))
"""
    out = run(tmp_path, env, prog).stdout.splitlines()
    assert out == ["#(8.0 3.0)"] * 5 + ["6.0", "8.0", "#((2.0 3.0) (3.0 0.0))", "#((12.0))",
                                         "(1.0 6.0)", "#(2.0 4.0)", "#(0.0 0.0)",
                                         "#((2.0 0.0) (0.0 1.0))", "#(4.0 2.0)", "#(1.0 2.0 0.0)"]


def test_control_flow_and_closures(tmp_path, env):
    """Differentiation through if, named let loops, recursion, closures and higher-order
    procedures (map, fold over lists of dual numbers)."""
    prog = """
(define (show x) (write x) (newline))
(define (pow x n) (if (= n 0) 1.0 (* x (pow x (- n 1)))))
(show (derivative (lambda (x) (pow x 5)) 2.0))
(show (gradient (lambda (x) (let loop ((i 0) (acc x)) (if (= i 3) acc (loop (+ i 1) (sin acc))))) 0.5))
(show (derivative (lambda (x) (if (< x 0) (- x) (* x x))) -3.0))
(show (derivative (lambda (x) (fold-left + 0 (map (lambda (k) (* k x x)) '(1 2 3)))) 1.0))
(define (make-scaler k) (lambda (x) (* k x)))
(show (gradient (lambda (k) ((make-scaler k) 4.0)) 2.0))
(show (derivative (lambda (x) (max (* 2.0 x) (* x x))) 3.0))
(show (derivative (lambda (x) (min (* 2.0 x) (* x x))) 3.0))
(show (derivative (lambda (x) (abs x)) -2.0))
"""
    out = lines_of(run(tmp_path, env, prog).stdout)
    s = math.sin
    want_loop = math.cos(s(s(0.5))) * math.cos(s(0.5)) * math.cos(0.5)
    assert out[0] == 80.0 and math.isclose(out[1], want_loop, rel_tol=1e-12)
    assert out[2:] == [-1.0, 12.0, 4.0, 6.0, 2.0, -1.0]


ERRORS = [
    ("(derivative (lambda (x) (floor x)) 1.0)", "floor: cannot differentiate"),
    ("(gradient (lambda (x) (round x)) 1.0)", "round: cannot differentiate"),
    ("(derivative (lambda (x) (string-append \"a\" x)) 1.0)", "string-append: cannot differentiate"),
    ("(gradient (lambda (v) (tensor-mul v v)) #(1.0 2.0))",
     "gradient: function must return a scalar, got #(1.0 4.0)"),
    ("(gradient (lambda (v) \"s\") 1.0)", "gradient: function must return a scalar, got \"s\""),
    ("(value-and-grad (lambda (v) (list v)) 1.0)", "value-and-grad: function must return a scalar"),
    ("(derivative 5 1.0)", "derivative: expected procedure"),
    ("(curl (lambda (v) v) #(1.0 2.0 3.0 4.0))", "curl: the point must have 2 or 3 components"),
    ("(gradient (lambda (v) (tensor-set! v 0 1.0)) #(1.0))", "tensor-set!: cannot differentiate"),
]


@pytest.mark.parametrize("expr_text,message", ERRORS)
def test_errors_are_catchable_and_name_the_operation(tmp_path, env, expr_text, message):
    prog = f"""(display (guard (e ((error-object? e) (error-object-message e))) {expr_text}))
(newline)
{expr_text}
"""
    proc = run(tmp_path, env, prog, ok=False)
    assert proc.stdout.startswith(message), proc.stdout
    assert proc.returncode == 1
    assert re.search(r"prog\.esk:3:\d+: error: " + re.escape(message), proc.stderr), proc.stderr


def test_checkpoint_segment_same_gradients(tmp_path, env):
    """checkpoint-segment changes memory, not results: gradients, Hessians (forward over
    reverse through a recomputed segment) and nested segments match the plain program."""
    body = """(let* ((a (tensor-tanh (tensor-scale v 2.0)))
         (b (SEG (tensor-exp (tensor-mul a a))))
         (c (SEG (tensor-sum (tensor-mul (SEG (tensor-sin b)) v)))))
    (* c c))"""
    plain = body.replace("(SEG ", "(begin ")
    ckpt = body.replace("(SEG ", "(checkpoint-segment-expr ")
    prog = f"""
(define (show x) (write x) (newline))
(define-syntax checkpoint-segment-expr
  (syntax-rules () ((_ e) (checkpoint-segment (lambda () e)))))
(define (f v) {plain})
(define (g v) {ckpt})
(show (gradient f #(0.1 0.2 0.3)))
(show (gradient g #(0.1 0.2 0.3)))
(show (hessian f #(0.1 0.2)))
(show (hessian g #(0.1 0.2)))
(show (checkpoint-segment (lambda () 42)))
"""
    got = lines_of(run(tmp_path, env, prog).stdout)
    assert close(got[0], got[1], rtol=1e-14) and close(got[2], got[3], rtol=1e-12)
    assert got[4] == 42.0


def test_build_prints_the_same(tmp_path, env):
    """An AD program built with `eshkol build` prints what `eshkol run` prints."""
    src = tmp_path / "ad.esk"
    src.write_text("""
(define (f x) (* x (sin x)))
(write (list (derivative f 1.0) (gradient f 1.0) (derivative-n f 1.0 2)))
(newline)
(write (hessian (lambda (v) (tensor-sum (tensor-mul v (tensor-mul v v)))) #(1.0 2.0)))
(newline)
""")
    ran = subprocess.run([ESHKOL, "run", str(src)], capture_output=True, text=True, env=env,
                         timeout=300)
    exe = tmp_path / "ad.exe"
    subprocess.run([ESHKOL, "build", str(src), "-o", str(exe)], check=True, env=env, timeout=300)
    built = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and built.returncode == 0
    assert built.stdout == ran.stdout
    d1 = math.sin(1) + math.cos(1)
    assert ran.stdout.startswith(f"({d1!r} {d1!r} ")


def test_random_seeded_scalar_programs_agree_between_modes(tmp_path, env):
    """A plain seeded-PRNG sweep (no hypothesis): for 60 random compositions of two variables
    the forward-mode jacobian row equals the reverse-mode gradient to rounding."""
    rnd = random.Random(11)
    cases = [_draw_with(rnd, ("x", "y")) for _ in range(60)]
    prog = ["(define (show x) (write x) (newline))"]
    for i, text in enumerate(cases):
        prog.append(f"(define (f{i} v) (let ((x (vref v 0)) (y (vref v 1))) {text}))")
        prog.append(f"(show (gradient f{i} #(0.3 -0.7))) (show (jacobian f{i} #(0.3 -0.7)))")
    got = lines_of(run(tmp_path, env, "\n".join(prog)).stdout)
    for i, text in enumerate(cases):
        assert close(got[2 * i + 1][0], got[2 * i], rtol=1e-12, atol=1e-14), text


def _draw_with(rnd: random.Random, names, depth: int = 4) -> str:
    """Text of a random composition from a plain PRNG (the same grammar as `expr`)."""
    choice = rnd.randint(0, 9) if depth > 0 else 0
    if choice <= 1:
        return rnd.choice(names) if rnd.random() < 0.6 else repr(rnd.choice([0.5, -1.25, 2.0, 3]))
    if choice <= 5:
        return rnd.choice(UNARY)[0].format(_draw_with(rnd, names, depth - 1))
    return rnd.choice(BINARY)[0].format(_draw_with(rnd, names, depth - 1),
                                        _draw_with(rnd, names, depth - 1))


def test_gpu_tensors_never_crash_with_a_stand_in_driver(tmp_path, env):
    """Gradients, Jacobians, Hessians, checkpoints on CUDA tensors with the stand-in driver
    (device memory the host cannot touch; kernels do nothing, so values are meaningless):
    every call works or raises an error object, none crashes (the AD kernels copy to the host
    and put their results back on the device)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the stand-in CUDA driver")
    here = Path(__file__).parent
    lib = tmp_path / "libfakecuda.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(here / "cuda" / "fake_libcuda.c")],
                   check=True)
    exe = tmp_path / "gpu_robust"
    subprocess.run([ESHKOL, "build", "--target=cuda", str(here / "autodiff" / "gpu_robust.esk"),
                    "-o", str(exe)], check=True, capture_output=True, env=env, timeout=600)
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                       env={**env, "ESHKOL_LIBCUDA": str(lib)})
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and lines[-1] == "done", (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    for line in lines[:-1]:
        assert line.endswith("=> ok") or "=> err " in line, line
    assert sum(line.endswith("=> ok") for line in lines) >= 12
