"""The autodiff pass (eshkol/passes/autodiff.py): calculus by transformation.

- hypothesis draws random compositions of the scalar builtins; each is differentiated by the
  transformed path (a top-level procedure, statically known) and by the runtime path (the same
  procedure through a reassigned global, which the pass must leave alone), with `derivative`
  (forward) and `gradient` (reverse: straight-line code); both are checked against central
  differences computed in Python, and against each other to ~1e-12; the pass's report says
  which path each call took;
- nesting: a transformed derivative inside a runtime one gives the right answer (no
  perturbation confusion);
- a 10^6-step loop: the transformed derivative agrees with the runtime one and with finite
  differences, and is much faster than the runtime one.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


ESHKOL, ESHKOL_OPT = _tool("eshkol"), _tool("eshkol-opt")
SETTINGS = settings(max_examples=2, deadline=None, derandomize=True, phases=[Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return dict(os.environ, XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache")))


def run(tmp_path: Path, env, text: str) -> str:
    prog = tmp_path / "prog.esk"
    prog.write_text(text, encoding="utf-8")
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def report(tmp_path: Path, env, text: str) -> list[str]:
    """The pass's report lines (file:line:col: form: path) for a program."""
    prog = tmp_path / "report.esk"
    prog.write_text(text, encoding="utf-8")
    proc = subprocess.run([ESHKOL_OPT, "--eshkol-autodiff-report", str(prog), "-o", os.devnull],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()


def floats(out: str) -> list[float]:
    return [float(s) for s in out.split()]


# ---- random compositions (every form smooth at the sampled points) --------------------------

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
    ("(let ((u {})) (* u (+ u 1.0)))", lambda a: a * (a + 1.0)),
]
BINARY = [
    ("(+ {} {})", lambda a, b: a + b), ("(- {} {})", lambda a, b: a - b),
    ("(* {} {})", lambda a, b: a * b),
    ("(/ {} (+ 1.5 (cos {})))", lambda a, b: a / (1.5 + math.cos(b))),
    ("(atan {} (+ 2.0 (sin {})))", lambda a, b: math.atan2(a, 2.0 + math.sin(b))),
    ("(expt (+ 1.5 (sin {})) (cos {}))", lambda a, b: (1.5 + math.sin(a)) ** math.cos(b)),
    ("(max (+ 3.0 {}) (- -3.0 {}))", lambda a, b: max(3.0 + a, -3.0 - b)),
    ("(min (+ 3.0 (sin {})) (- -3.0 (sin {})))", lambda a, b: min(3.0 + math.sin(a), -3.0 - math.sin(b))),
]


@st.composite
def expr(draw, depth: int = 4):
    """(Eshkol text, Python function of x)."""
    choice = draw(st.integers(0, 9)) if depth > 0 else 0
    if choice <= 1:
        if draw(st.booleans()):
            return "x", (lambda x: x)
        c = draw(st.sampled_from([0.5, 1.25, -0.75, 2.0, 3]))
        return repr(c), (lambda x, c=c: c)
    if choice <= 5:
        fmt, fn = draw(st.sampled_from(UNARY))
        t, f = draw(expr(depth - 1))
        return fmt.format(t), (lambda x, f=f, fn=fn: fn(f(x)))
    fmt, fn = draw(st.sampled_from(BINARY))
    ta, fa = draw(expr(depth - 1))
    tb, fb = draw(expr(depth - 1))
    return fmt.format(ta, tb), (lambda x, fa=fa, fb=fb, fn=fn: fn(fa(x), fb(x)))


def central_diff(f, x: float) -> float:
    h = 1e-5 * max(1.0, abs(x))
    return (f(x + h) - f(x - h)) / (2 * h)


def fd_close(got: float, fd: float) -> bool:
    return abs(got - fd) <= 1e-5 * max(1.0, abs(fd))


def same(a: float, b: float) -> bool:
    """The transformed and the runtime path agree (to rounding of a different order)."""
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))


@settings(SETTINGS, max_examples=1)  # one program of 30 random compositions
@given(st.lists(st.tuples(expr(), st.floats(-2.0, 2.0).map(lambda v: round(v, 6))), min_size=30, max_size=30))
def test_random_compositions_transformed_vs_runtime(tmp_path, env, cases):
    """Transformed derivative/gradient = runtime derivative/gradient = finite differences."""
    prog = ["(define (show x) (write x) (newline))"]
    for i, ((text, _), _x) in enumerate(cases):
        prog.append(f"(define (f{i} x) {text})")
        prog.append(f"(define r{i} #f)\n(set! r{i} f{i})")  # reassigned: not statically known
    for i, (_, x) in enumerate(cases):
        x = float(x)
        prog.append(f"(show (derivative f{i} {x!r})) (show (derivative r{i} {x!r}))")
        prog.append(f"(show (gradient f{i} {x!r})) (show (gradient r{i} {x!r}))")
    text = "\n".join(prog)
    got = floats(run(tmp_path, env, text))
    assert len(got) == 4 * len(cases)
    for i, ((src, fn), x) in enumerate(cases):
        fwd, fwd_rt, rev, rev_rt = got[4 * i: 4 * i + 4]
        fd = central_diff(fn, float(x))
        assert same(fwd, fwd_rt), (src, x, fwd, fwd_rt)
        assert same(rev, rev_rt), (src, x, rev, rev_rt)
        assert fd_close(fwd, fd), (src, x, fwd, fd)
        assert fd_close(rev, fd), (src, x, rev, fd)
    paths = [line.split(": ", 2)[2] for line in report(tmp_path, env, text)]
    # Per case: derivative f (forward), derivative r (runtime), gradient f, gradient r.
    assert len(paths) == 4 * len(cases)
    for i in range(len(cases)):
        d, d_rt, g, g_rt = paths[4 * i: 4 * i + 4]
        assert d == "transformed (forward)", (cases[i][0][0], d)
        assert g.startswith("transformed ("), (cases[i][0][0], g)
        assert d_rt.startswith("runtime: ") and g_rt.startswith("runtime: ")
    # straight-line bodies (everything drawn here but min/max's branches) take reverse mode
    assert any(paths[4 * i + 2] == "transformed (reverse)" for i in range(len(cases)))


NESTED = """
(define (show x) (write x) (newline))
(show (derivative (lambda (x) (* x (derivative (lambda (y) (* x y)) 2.0))) 1.0))
(show (gradient (lambda (x) (* x (gradient (lambda (y) (* x y)) 2.0))) 1.0))
(show (derivative (lambda (x) (* x (gradient (lambda (y) (* x y)) 2.0))) 1.0))
(show (derivative (lambda (a) (derivative (lambda (b) (* a b b)) a)) 3.0))
"""


def test_nested_no_perturbation_confusion(tmp_path, env):
    """An inner transformed derivative over a variable an outer runtime one perturbs."""
    # d/dx (x * x) = 2x at 1; d/da (2 a a) at a=3 is 4a = 12 (the inner derivative d/db a b^2
    # = 2ab is taken at b = a).
    assert floats(run(tmp_path, env, NESTED)) == [2.0, 2.0, 2.0, 12.0]
    lines = report(tmp_path, env, NESTED)
    inner = [line for line in lines if "transformed" in line]
    outer = [line for line in lines if "runtime" in line]
    assert len(inner) == 4 and len(outer) == 4, lines


LOOP = """
(define (f x)
  (let loop ((i 0) (acc x))
    (if (< i 1000000) (loop (+ i 1) (+ (* 0.5 (sin acc)) (* 0.25 x))) acc)))
(define rt #f)
(set! rt f)
(define (ms) (* 1000.0 (current-second)))
(define t0 (ms))
(define v (f 0.7))
(define t1 (ms))
(define d (derivative f 0.7))
(define t2 (ms))
(define d-rt (derivative rt 0.7))
(define t3 (ms))
(for-each (lambda (n) (write n) (newline)) (list v d d-rt (- t1 t0) (- t2 t1) (- t3 t2)))
"""


def _loop(x: float) -> float:
    acc = x
    for _ in range(1_000_000):
        acc = 0.5 * math.sin(acc) + 0.25 * x
    return acc


def test_million_step_loop(tmp_path, env):
    """The derivative of a 10^6-step loop: transformed = runtime = finite differences."""
    v, d, d_rt, t_f, t_d, t_rt = floats(run(tmp_path, env, LOOP))
    assert math.isclose(v, _loop(0.7), rel_tol=1e-12)
    assert same(d, d_rt)
    h = 1e-6
    assert abs(d - (_loop(0.7 + h) - _loop(0.7 - h)) / (2 * h)) < 1e-6
    # The times are printed, never asserted (benchmarks/autodiff_forward.py measures the ratio).
    print(f"function {t_f} ms, transformed derivative {t_d} ms, runtime duals {t_rt} ms")


# ---- tensor points: reverse mode by transformation vs jax.grad vs the runtime tape ------------

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def _tensors(out: str) -> list[list[float]]:
    """Each output line's numbers (a tensor prints as nested #(...))."""
    return [floats(line.replace("#(", " ").replace("(", " ").replace(")", " "))
            for line in out.strip().splitlines()]


def _lit(a) -> str:
    """An Eshkol tensor literal of numpy array ``a``."""
    if a.ndim == 0:
        return repr(float(a))
    if a.ndim == 1:
        return "#(" + " ".join(repr(float(v)) for v in a) + ")"
    return "#(" + " ".join(_lit(r)[1:] for r in a) + ")"


# (Eshkol format, jax function) of one tensor operand e, shape kept
T_UNARY = [
    ("(tensor-exp (tensor-tanh {}))", lambda e: jnp.exp(jnp.tanh(e))),
    ("(tensor-sin {})", jnp.sin), ("(tensor-cos {})", jnp.cos), ("(tensor-tanh {})", jnp.tanh),
    ("(tensor-square {})", jnp.square), ("(tensor-neg {})", jnp.negative),
    ("(tensor-sqrt (tensor-add (tensor-square {}) 1.0))", lambda e: jnp.sqrt(e * e + 1.0)),
    ("(tensor-log (tensor-add (tensor-square {}) 1.0))", lambda e: jnp.log(e * e + 1.0)),
    ("(tensor-abs (tensor-add {} 0.25))", lambda e: jnp.abs(e + 0.25)),
    ("(tensor-maximum {} 0.0)", lambda e: jnp.maximum(e, 0.0)),
    ("(sin {})", jnp.sin),
    ("(tensor-scale {} 0.75)", lambda e: e * 0.75),
    ("(reshape (transpose {}) R C)", None),            # filled per shape below
    ("(matmul {} Wsq)", None),
    ("(let ((u {})) (tensor-mul u (tensor-cos u)))", lambda e: e * jnp.cos(e)),
    ("(hf {})", lambda e: jnp.tanh(e * 0.7)),
    ("(tensor-div {} (tensor-add (tensor-square Crow) 1.5))", None),
]
T_BINARY = [
    ("(tensor-add {} {})", jnp.add), ("(tensor-sub {} {})", jnp.subtract),
    ("(tensor-mul {} {})", jnp.multiply), ("(* {} {})", jnp.multiply), ("(+ {} {})", jnp.add),
]
# broadcast partners of an operand of shape (R, C): their names in the program
PARTNERS = ["Crow", "Ccol", "Cvec", "2.5"]
TOPS = [
    ("(tensor-sum {})", jnp.sum), ("(tensor-mean {})", jnp.mean),
    ("(tensor-sum (tensor-mean {} 0))", lambda e: jnp.sum(jnp.mean(e, 0))),
    ("(tensor-sum (tensor-sum {} -1))", jnp.sum),
    ("(let ((e {})) (+ (tensor-sum e) (* 3.0 (tensor-get e 0 0)) (tensor-ref e 1)))",
     lambda e: jnp.sum(e) + 3.0 * e[0, 0] + e.reshape(-1)[1]),
    ("(let ((e {})) (if (> (tensor-sum e) 0.0) (tensor-mean (tensor-square e)) (sin (tensor-sum e))))",
     lambda e: jax.lax.cond(jnp.sum(e) > 0.0, lambda e: jnp.mean(e * e), lambda e: jnp.sin(jnp.sum(e)), e)),
]


def _shaped_op(fmt: str, env: dict):
    """The jax function of a T_UNARY entry that depends on the program's shapes/constants."""
    if "transpose" in fmt:
        r, c = env["shape"]
        return lambda e: jnp.reshape(jnp.transpose(e), (r, c))
    if "Wsq" in fmt:
        return lambda e: e @ env["Wsq"]
    return lambda e: e / (env["Crow"] ** 2 + 1.5)


@st.composite
def texpr(draw, env: dict, depth: int = 3):
    """(Eshkol text, jax function of x) of a tensor of x's shape."""
    k = draw(st.integers(0, 6)) if depth > 0 else 0
    if k == 0:
        return "x", (lambda x: x)
    if k <= 3:
        fmt, fn = draw(st.sampled_from(T_UNARY))
        t, f = draw(texpr(env, depth - 1))
        if fn is None:
            fn = _shaped_op(fmt, env)
        return fmt.format(t), (lambda x, f=f, fn=fn: fn(f(x)))
    fmt, fn = draw(st.sampled_from(T_BINARY))
    ta, fa = draw(texpr(env, depth - 1))
    if draw(st.booleans()):
        tb, fb = draw(texpr(env, depth - 1))
    else:
        name = draw(st.sampled_from(PARTNERS))
        v = env.get(name, 2.5)
        tb, fb = name, (lambda x, v=v: v)
    if draw(st.booleans()):
        ta, fa, tb, fb = tb, fb, ta, fa
    return fmt.format(ta, tb), (lambda x, fa=fa, fb=fb, fn=fn: fn(fa(x), fb(x)))


def _tensor_program(rng, shape, cases) -> tuple[str, list]:
    r, c = shape
    env = {"shape": shape, "Crow": rng.normal(size=(c,)), "Ccol": rng.normal(size=(r, 1)),
           "Cvec": rng.normal(size=(1, c)), "Wsq": rng.normal(size=(c, c)) * 0.5}
    return env


@settings(SETTINGS, max_examples=1)
@given(st.data())
def test_random_tensor_programs_vs_jax_and_runtime(tmp_path, env, data):
    """Gradients of random tensor programs (broadcasting, tensor math, matmul, reductions with
    and without an axis, element reads, let, if, a user procedure): the transformed path
    (reverse) against jax.grad and against the runtime tape, to 1e-10."""
    import numpy as np

    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    shape = (data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4)))
    tenv = _tensor_program(rng, shape, None)
    prog = ["(define (show x) (write x) (newline))", f"(define R {shape[0]}) (define C {shape[1]})",
            "(define (hf v) (tensor-tanh (tensor-scale v 0.7)))"]
    for name in ("Crow", "Ccol", "Cvec", "Wsq"):
        prog.append(f"(define {name} {_lit(tenv[name])})")
    cases = []
    for _ in range(16):
        body, f = data.draw(texpr(tenv))
        top, tf = data.draw(st.sampled_from(TOPS))
        x = rng.normal(size=shape)
        cases.append((top.format(body), (lambda x, f=f, tf=tf: tf(f(x))), x))
    for i, (text, _, x) in enumerate(cases):
        prog.append(f"(define (f{i} x) {text})")
        prog.append(f"(define r{i} #f)\n(set! r{i} f{i})")
        prog.append(f"(show (gradient f{i} {_lit(x)}))")
        prog.append(f"(show (gradient r{i} {_lit(x)}))")
        prog.append(f"(call-with-values (lambda () (value-and-grad f{i} {_lit(x)})) (lambda (v g) (show v) (show g)))")
    text = "\n".join(prog)
    lines = text.splitlines()
    got = _tensors(run(tmp_path, env, text))
    assert len(got) == 4 * len(cases)
    for i, (src, fn, x) in enumerate(cases):
        g, g_rt, v, g2 = got[4 * i: 4 * i + 4]
        want = np.asarray(jax.grad(fn)(jnp.asarray(x))).reshape(-1)
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12, err_msg=src)
        np.testing.assert_allclose(g, g_rt, rtol=1e-10, atol=1e-12, err_msg=src)
        np.testing.assert_allclose(g2, g, rtol=0, atol=0, err_msg=src)
        np.testing.assert_allclose(v, [float(fn(jnp.asarray(x)))], rtol=1e-12, err_msg=src)
    # the report's path per call, by the source line of the call
    by_line = {}
    for rep in report(tmp_path, env, text):
        where, _form, path = rep.split(": ", 2)
        by_line[lines[int(where.split(":")[-2]) - 1]] = path
    assert len(by_line) == 3 * len(cases)
    for line, path in by_line.items():
        want = "runtime: " if "(gradient r" in line else "transformed (reverse)"
        assert path.startswith(want), (line, path)


MLP = """
(define (show x) (write x) (newline))
(define X {X}) (define Y {Y}) (define W1 {W1}) (define b1 {b1}) (define b2 {b2})
(define (layer x W b) (tensor-tanh (tensor-add (matmul x W) b)))
(define (loss W2) (tensor-mean (tensor-square (tensor-sub (tensor-add (matmul (layer X W1 b1) W2) b2) Y))))
(define (loss-w1 W) (tensor-mean (tensor-square (tensor-sub (tensor-add (matmul (layer X W b1) {W2}) b2) Y))))
(define rt #f)
(set! rt loss)
(show (gradient loss {W2})) (show (gradient rt {W2})) (show (gradient loss-w1 W1))
"""


def test_tiny_mlp_vs_jax(tmp_path, env):
    """A tiny MLP loss (matmul, bias broadcast, tanh, mean; a layer procedure called, not
    inlined): transformed reverse mode = jax.grad = the runtime tape."""
    import numpy as np

    rng = np.random.default_rng(7)
    a = {"X": rng.normal(size=(5, 4)), "Y": rng.normal(size=(5, 3)), "W1": rng.normal(size=(4, 6)) * 0.5,
         "b1": rng.normal(size=(6,)), "W2": rng.normal(size=(6, 3)) * 0.5, "b2": rng.normal(size=(3,))}
    text = MLP.format(**{k: _lit(v) for k, v in a.items()})
    g, g_rt, g1 = _tensors(run(tmp_path, env, text))

    def loss(W1, W2):
        h = jnp.tanh(a["X"] @ W1 + a["b1"])
        return jnp.mean(jnp.square(h @ W2 + a["b2"] - a["Y"]))
    np.testing.assert_allclose(g, np.asarray(jax.grad(loss, 1)(a["W1"], a["W2"])).reshape(-1), rtol=1e-10)
    np.testing.assert_allclose(g, g_rt, rtol=1e-10)
    np.testing.assert_allclose(g1, np.asarray(jax.grad(loss, 0)(a["W1"], a["W2"])).reshape(-1), rtol=1e-10)
    paths = [line.split(": ", 2)[2] for line in report(tmp_path, env, text)]
    assert paths == ["transformed (reverse)", "runtime: the procedure is not statically known",
                     "transformed (reverse)"]


FALLBACK = """
(define (show x) (write x) (newline))
(define (sq v) (tensor-sum (tensor-mul v v)))
(define (looped v) (let loop ((i 0) (s 0.0)) (if (< i 3) (loop (+ i 1) (+ s (tensor-sum v))) s)))
(define (writes v) (let ((h (lambda () (tensor-scale v 2.0)))) (tensor-sum (h))))
(show (gradient sq (tensor-astype #(1.0 2.0) 'f32)))
(show (gradient looped #(1.0 2.0)))
(show (gradient writes #(1.0 2.0)))
(show (gradient sq #(1.0 2.0)))
(show (gradient (lambda (v) (* (vref v 0) (vref v 1))) #(2.0 3.0)))
"""


def test_tensor_fallbacks(tmp_path, env):
    """What cannot be proven keeps the runtime path, with the reason in the report; a float32
    point takes the runtime path at run time (the guard) with the same result."""
    out = _tensors(run(tmp_path, env, FALLBACK))
    assert out == [[2.0, 4.0], [3.0, 3.0], [2.0, 2.0], [2.0, 4.0], [3.0, 2.0]]
    paths = [line.split(": ", 2)[2] for line in report(tmp_path, env, FALLBACK)]
    assert paths[0] == paths[3] == "transformed (reverse)"
    # a loop: a flonum point takes forward mode, a tensor point reverse mode with a stack
    assert paths[1] == "transformed (reverse; a flonum point: forward)", paths[1]
    assert paths[2].startswith("runtime: ") and "closure" in paths[2], paths[2]
    assert paths[4] == "transformed (reverse)", paths[4]   # vref of a tensor: an element read



SLICES = """
(define (show x) (write x) (newline))
(define X {X})
(define (loss th)
  (let ((W (reshape (tensor-slice th 0 6) 3 2)) (b (tensor-slice th 6 -1)) (c (tensor-slice th -1 #f)))
    (tensor-sum (tensor-mul (tensor-tanh (tensor-add (matmul X W) b)) c))))
(define (corner m) (tensor-sum (tensor-mul (tensor-slice m '(0 1) '(2 3)) (tensor-slice m '(1 0) '(3 2)))))
(show (gradient loss {P}))
(show (gradient corner {M}))
(show (derivative (lambda (s) (tensor-sum (gradient loss (tensor-scale {P} s)))) 1.0))
"""


def test_slices_of_a_parameter_vector_vs_jax(tmp_path, env):
    """A flat parameter vector cut into weights by slices (negative and open bounds, and
    per-axis bounds of a matrix): the slices' cotangents accumulate into one tensor, as jax's;
    under a runtime derivative (dual numbers through the transformed gradient) the
    accumulation takes its tape-friendly way, with jax's second derivative."""
    import numpy as np

    rng = np.random.default_rng(3)
    X, P, M = rng.normal(size=(4, 3)), rng.normal(size=(9,)), rng.normal(size=(3, 3))
    text = SLICES.format(X=_lit(X), P=_lit(P), M=_lit(M))
    g, gc, d = _tensors(run(tmp_path, env, text))

    def loss(th):
        return jnp.sum(jnp.tanh(X @ th[0:6].reshape(3, 2) + th[6:-1]) * th[-1:])

    def corner(m):
        return jnp.sum(m[0:2, 1:3] * m[1:3, 0:2])
    np.testing.assert_allclose(g, np.asarray(jax.grad(loss)(P)), rtol=1e-12)
    np.testing.assert_allclose(gc, np.asarray(jax.grad(corner)(M)).reshape(-1), rtol=1e-12)
    dd = jax.grad(lambda s: jnp.sum(jax.grad(loss)(P * s)))(1.0)
    np.testing.assert_allclose(d, [float(dd)], rtol=1e-10)
    paths = [line.split(": ", 2)[2] for line in report(tmp_path, env, text)]
    assert paths[:2] == ["transformed (reverse)"] * 2, paths


# ---- reverse mode through loops (a stack of the loop blocks' values) ----------------------------

LOOPS = """
(define (show x) (write x) (newline))
(define W {W}) (define K 4)
(define (rnn x) (let loop ((i 0) (h x))
  (if (< i K) (loop (+ i 1) (tensor-tanh (tensor-add (matmul W h) (tensor-scale x 0.5))))
      (tensor-sum (tensor-square h)))))
(define (reads v) (let loop ((i 0) (s 0.0))
  (if (< i (tensor-size v)) (loop (+ i 1) (+ s (* (tensor-get v i) (sin (tensor-get v i))))) s)))
(define (branchy x) (do ((i 0 (+ i 1)) (h x (if (> (tensor-sum h) 0.0) (tensor-sin h) (tensor-mul h h))))
  ((= i 5) (tensor-mean h))))
(define (acc x n s) (if (= n 0) s (acc x (- n 1) (tensor-add (tensor-cos s) x))))
(define (tail x) (tensor-sum (acc x 3 x)))
(define (slices p) (let loop ((i 0) (s (tensor-sum (tensor-sin (tensor-slice (reshape p '(1 5)) '(0 1) '(1 4))))))
  (if (< i 3) (loop (+ i 1) (+ s (tensor-sum (tensor-square (tensor-slice p i (+ i 2)))))) s)))
(define fs (list rnn reads branchy tail slices))
(define rt #f)
(for-each (lambda (f) (set! rt f) (show (gradient rt X))) fs)
(show (gradient rnn X)) (show (gradient reads X)) (show (gradient branchy X)) (show (gradient tail X))
(show (gradient slices X))
(call-with-values (lambda () (value-and-grad rnn X)) (lambda (v g) (show v) (show g)))
"""


def test_reverse_through_loops_vs_jax_and_runtime(tmp_path, env):
    """Named let, do with a branch in the body, element reads summed in a loop, a
    self-tail-recursive callee: the gradient at a tensor point by the transformed reverse
    sweep (a stack) = jax.grad = the runtime tape."""
    import numpy as np

    rng = np.random.default_rng(11)
    W = rng.normal(size=(5, 5)) * 0.4
    X = rng.normal(size=(5,))
    text = LOOPS.format(W=_lit(W)).replace("(define K 4)", f"(define K 4) (define X {_lit(X)})")

    def rnn(x):
        h = x
        for _ in range(4):
            h = jnp.tanh(W @ h + 0.5 * x)
        return jnp.sum(h * h)

    def reads(v):
        return sum(v[i] * jnp.sin(v[i]) for i in range(v.shape[0]))

    def branchy(x):
        h = x
        for _ in range(5):
            h = jax.lax.cond(jnp.sum(h) > 0.0, jnp.sin, lambda h: h * h, h)
        return jnp.mean(h)

    def tail(x):
        s = x
        for _ in range(3):
            s = jnp.cos(s) + x
        return jnp.sum(s)

    def slices(p):
        s = jnp.sum(jnp.sin(p[1:4]))
        for i in range(3):
            s = s + jnp.sum(jnp.square(p[i:i + 2]))
        return s

    fns = [rnn, reads, branchy, tail, slices]
    n = len(fns)
    got = _tensors(run(tmp_path, env, text))
    assert len(got) == 2 * n + 2
    for i, fn in enumerate(fns):
        want = np.asarray(jax.grad(fn)(jnp.asarray(X)))
        np.testing.assert_allclose(got[n + i], want, rtol=1e-10, atol=1e-12, err_msg=fn.__name__)
        np.testing.assert_allclose(got[n + i], got[i], rtol=1e-10, atol=1e-12, err_msg=fn.__name__)
    np.testing.assert_allclose(got[2 * n], [float(rnn(jnp.asarray(X)))], rtol=1e-12)
    np.testing.assert_allclose(got[2 * n + 1], got[n], rtol=0, atol=0)
    lines = text.splitlines()
    by_line = {}
    for rep in report(tmp_path, env, text):
        where, _form, path = rep.split(": ", 2)
        by_line.setdefault(lines[int(where.split(":")[-2]) - 1], []).append(path)
    loop = "transformed (reverse; a flonum point: forward)"   # forward for a flonum point
    assert by_line["(for-each (lambda (f) (set! rt f) (show (gradient rt X))) fs)"][0].startswith("runtime: ")
    # tail's loop is in its callee: reverse all the way
    assert by_line["(show (gradient rnn X)) (show (gradient reads X)) (show (gradient branchy X)) "
                   "(show (gradient tail X))"] == [loop] * 3 + ["transformed (reverse)"], by_line
    assert by_line["(show (gradient slices X))"] == [loop], by_line
    assert by_line["(call-with-values (lambda () (value-and-grad rnn X)) (lambda (v g) (show v) (show g)))"] \
        == [loop], by_line


# ---- more tensor primitives: dot, pow, prod, where, comparisons, vref ----------------------------

MORE = """
(define (show x) (write x) (newline))
(define A {A}) (define X {X}) (define Z {Z})
(define (dot x) (+ (tensor-sum (tensor-sin (tensor-dot A x))) (* (tensor-dot x x) (tensor-dot 2.0 (vref x 1)))))
(define (pow x) (tensor-sum (tensor-add (tensor-add (tensor-pow x 3.0) (tensor-pow 1.5 x))
                                        (tensor-pow (tensor-exp x) (tensor-scale x 0.5)))))
(define (sel x)
  (+ (tensor-sum (tensor-where (tensor-gt x 0.0) (tensor-square x) (tensor-scale A 0.5)))
     (tensor-sum (tensor-mul (tensor-add (tensor-lt x 0.3) (tensor-ge x 0.5)) (tensor-sin x)))
     (tensor-sum (tensor-mul (tensor-le x 0.1) x))
     (tensor-sum (tensor-mul (tensor-add (tensor-eq x 0.0) (tensor-ne x 0.0)) (tensor-exp x)))
     (* (vref x 0) (sin (vref x 2)) (vref x 3))))
(define (prod x) (+ (* (tensor-prod x) (tensor-sum x)) (tensor-sum (tensor-sin (tensor-prod (reshape x '(2 3)) 1)))
                    (tensor-sum (tensor-prod (reshape x '(3 2)) 0))))
(define (all x) (+ (dot x) (pow x) (sel x)))
(define rt #f)
(set! rt all)
(show (gradient rt X))
(show (gradient all X)) (show (gradient prod X)) (show (gradient prod Z))
(show (derivative (lambda (s) (prod (tensor-add Z (tensor-scale X s)))) 0.0))
"""


def test_dot_pow_prod_where_compare_vref_vs_jax_and_runtime(tmp_path, env):
    """tensor-dot, tensor-pow (tensor and number bases/exponents), tensor-prod (all elements
    and along either axis, at a point with no zero and at one with one zero in some slices and
    two in another), tensor-where (a broadcast branch), the comparison masks (passive) and
    vref: every gradient transformed in reverse mode, = jax.grad and (tensor-prod aside: the
    runtime tape has no rule for it) = the runtime tape; a derivative at a flonum point through
    tensor-prod transformed in forward mode, = jax.grad."""
    import numpy as np

    rng = np.random.default_rng(5)
    A = rng.normal(size=(6, 6))
    X = rng.uniform(0.2, 1.5, size=(6,)) * np.array([1, -1, 1, 1, -1, 1])
    Z = np.array([0.0, 1.3, -0.7, 0.0, 0.0, 2.1])    # rows of (2 3): one zero, two zeros
    text = MORE.format(A=_lit(A), X=_lit(X), Z=_lit(Z))

    def dot(x):
        return jnp.sum(jnp.sin(jnp.dot(A, x))) + jnp.dot(x, x) * jnp.dot(2.0, x[1])

    def pow_(x):
        return jnp.sum(x ** 3.0 + 1.5 ** x + jnp.exp(x) ** (0.5 * x))

    def sel(x):
        return (jnp.sum(jnp.where(x > 0.0, x * x, 0.5 * A)) + jnp.sum(((x < 0.3) * 1.0 + (x >= 0.5)) * jnp.sin(x))
                + jnp.sum((x <= 0.1) * x) + jnp.sum(((x == 0.0) * 1.0 + (x != 0.0)) * jnp.exp(x))
                + x[0] * jnp.sin(x[2]) * x[3])

    def prod(x):
        return (jnp.prod(x) * jnp.sum(x) + jnp.sum(jnp.sin(jnp.prod(x.reshape(2, 3), 1)))
                + jnp.sum(jnp.prod(x.reshape(3, 2), 0)))

    got = _tensors(run(tmp_path, env, text))
    assert len(got) == 5

    def f(x, p, q):   # one jit of all three gradients: eager jax costs seconds
        return dot(x) + pow_(x) + sel(x) + prod(p) + prod(q)
    want = [np.asarray(w) for w in jax.jit(jax.grad(f, (0, 1, 2)))(*map(jnp.asarray, (X, X, Z)))]
    for i, name in enumerate(["dot+pow+sel", "prod", "prod at zeros"]):
        np.testing.assert_allclose(got[1 + i], want[i], rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(got[1], got[0], rtol=1e-10, atol=1e-12)
    # forward mode (a flonum point) through tensor-prod, starting at the zeros of Z
    want = jax.jit(jax.grad(lambda s: prod(Z + s * X)))(0.0)
    np.testing.assert_allclose(got[4], [float(want)], rtol=1e-10, err_msg="prod forward")
    reps = [line.split(": ", 2) for line in report(tmp_path, env, text)]   # file:line:col, form, path
    paths = [path for _w, _f, path in sorted(reps, key=lambda r: [int(k) for k in r[0].rsplit(":", 2)[1:]])]
    assert paths[0].startswith("runtime: "), paths
    assert paths[1:] == ["transformed (reverse)"] * 3 + ["transformed (forward)"], paths
