"""Tensor runtime (runtime_c/tensor*.c) against numpy.

Each property test draws many cases (random shapes with broadcasting and size-0/1 dimensions,
random values) into ONE generated Eshkol program, runs it once, parses what it printed and
compares every case with numpy. Seeded and bounded: a few programs per test.
Also: error cases (catchable, naming shapes/indices), dtypes, views, the COMPAT vector
procedures on tensors, and the memory bound of the buffer pool.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


ESHKOL = _eshkol()
# Derandomized and without shrinking: every example compiles a program (about a second).
SETTINGS = settings(max_examples=3, deadline=None, derandomize=True, phases=[Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])
CASES_PER_PROGRAM = 60


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return dict(os.environ, XDG_CACHE_HOME=str(cache))


def run_program(tmp_path: Path, env, text: str, *, name: str = "prog.esk") -> str:
    prog = tmp_path / name
    prog.write_text(text, encoding="utf-8")
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# ---- reading printed values back ------------------------------------------------------------

_TOKEN = re.compile(r"#\(|\(|\)|[^\s()]+")


def _atom(tok: str) -> float:
    if tok in ("+nan.0", "-nan.0"):
        return math.nan
    if tok == "+inf.0":
        return math.inf
    if tok == "-inf.0":
        return -math.inf
    return float(tok)


def parse_value(text: str):
    """A printed number or tensor (#(...) nested rows) as a float or nested Python lists."""
    toks = _TOKEN.findall(text)
    pos = 0

    def item():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t in ("#(", "("):
            out = []
            while toks[pos] != ")":
                out.append(item())
            pos += 1
            return out
        return _atom(t)

    v = item()
    assert pos == len(toks), text
    return v


def as_array(printed: str, shape_text: str) -> np.ndarray:
    """The printed tensor with the printed shape (needed for empty tensors)."""
    shape = tuple(int(x) for x in shape_text.strip("()").split())
    v = parse_value(printed)
    if not isinstance(v, list):
        return np.array(v).reshape(shape)
    return np.array(v, dtype=np.float64).reshape(shape)


# ---- emitting Eshkol values ------------------------------------------------------------------

def num(x: float) -> str:
    if math.isnan(x):
        return "+nan.0"
    if math.isinf(x):
        return "+inf.0" if x > 0 else "-inf.0"
    r = repr(float(x))
    return r if ("." in r or "e" in r) else r + ".0"


def tensor_expr(a: np.ndarray) -> str:
    """An expression making a float64 tensor equal to a (any shape, including 0-d and empty)."""
    shape = " ".join(str(d) for d in a.shape)
    data = " ".join(num(x) for x in a.ravel())
    return f"(tensor '({shape}) '({data}))"


PRELUDE = """(define (show-t r)
  (if (tensor? r)
      (begin (display (tensor-shape r)) (display " ") (display r))
      (begin (display "scalar ") (display r)))
  (newline))
"""


def parse_results(out: str) -> list[np.ndarray | float]:
    res = []
    for line in out.splitlines():
        head, _, rest = line.partition(" ") if line.startswith("scalar") else line.partition(") ")
        if head == "scalar":
            res.append(parse_value(rest))
        else:
            res.append(as_array(rest, head + ")"))
    return res


def assert_close(got, want, case: str, rtol=1e-12, atol=0.0) -> None:
    want = np.asarray(want, dtype=np.float64)
    if isinstance(got, float):
        assert want.shape == (), f"{case}: got a number, want shape {want.shape}"
        got = np.array(got)
    assert got.shape == want.shape, f"{case}: shape {got.shape} != {want.shape}"
    ok = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    assert ok.all(), f"{case}:\n got {got}\nwant {want}"


# ---- strategies ----------------------------------------------------------------------------

def values(shape, lo=-10.0, hi=10.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False, width=64))


@st.composite
def binary_case(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    min_side=0, max_side=4)).input_shapes
    a = draw(values(shapes[0]))
    b = draw(values(shapes[1]))
    return a, b


BINARY = {
    "tensor-add": np.add, "tensor-sub": np.subtract, "tensor-mul": np.multiply,
    "tensor-div": np.divide, "tensor-maximum": np.maximum, "tensor-minimum": np.minimum,
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
}

UNARY = {
    "tensor-neg": np.negative, "tensor-abs": np.abs, "tensor-sqrt": np.sqrt,
    "tensor-exp": np.exp, "tensor-log": np.log, "tensor-sin": np.sin, "tensor-cos": np.cos,
    "tensor-tanh": np.tanh, "tensor-square": np.square,
    "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs, "-": np.negative, "sin": np.sin,
    "cos": np.cos, "tan": np.tan, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "tanh": np.tanh, "square": np.square, "log": np.log,
}

REDUCE = {
    "tensor-sum": np.sum, "tensor-mean": np.mean, "tensor-max": np.max, "tensor-min": np.min,
    "tensor-prod": np.prod, "tensor-variance": np.var, "tensor-std": np.std,
    "tensor-argmax": np.argmax, "tensor-argmin": np.argmin,
}
NEEDS_ELEMENTS = {"tensor-max", "tensor-min", "tensor-argmax", "tensor-argmin"}


@contextlib.contextmanager
def _np_quiet():
    """numpy without its warnings (empty means, overflow): the values are what is compared."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ---- elementwise ---------------------------------------------------------------------------

@SETTINGS
@given(st.data())
def test_binary_broadcasting_vs_numpy(tmp_path_factory, env, data):
    tmp = tmp_path_factory.mktemp("bin")
    cases = []
    for i in range(CASES_PER_PROGRAM):
        op = list(BINARY)[i % len(BINARY)]
        a, b = data.draw(binary_case())
        if op in ("tensor-div", "/"):
            b = np.where(b == 0, 1.5, b)
        cases.append((op, a, b))
    text = PRELUDE + "".join(f"(show-t ({op} {tensor_expr(a)} {tensor_expr(b)}))\n"
                             for op, a, b in cases)
    got = parse_results(run_program(tmp, env, text))
    assert len(got) == len(cases)
    with _np_quiet():
        for (op, a, b), g in zip(cases, got, strict=True):
            assert_close(g, BINARY[op](a, b), f"({op} {a.shape} {b.shape})")


@SETTINGS
@given(st.data())
def test_scalar_broadcasting_vs_numpy(tmp_path_factory, env, data):
    tmp = tmp_path_factory.mktemp("scal")
    cases = []
    for i in range(CASES_PER_PROGRAM):
        shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        a = data.draw(values(shape))
        k = data.draw(st.floats(-5, 5, allow_nan=False).filter(lambda x: x != 0))
        form, fn = [
            (f"(tensor-scale {{a}} {num(k)})", lambda a, k=k: a * k),
            (f"(+ {{a}} {num(k)})", lambda a, k=k: a + k),
            (f"(- {num(k)} {{a}})", lambda a, k=k: k - a),
            (f"(* {num(k)} {{a}})", lambda a, k=k: k * a),
            (f"(/ {{a}} {num(k)})", lambda a, k=k: a / k),
            (f"(tensor-sub {{a}} {num(k)})", lambda a, k=k: a - k),
            (f"(tensor-add {num(k)} {{a}})", lambda a, k=k: k + a),
            ("(tensor-pow (tensor-abs {a}) 1.5)", lambda a: np.abs(a) ** 1.5),
            ("(expt {a} 2)", lambda a: a ** 2),
        ][i % 9]
        with _np_quiet():
            cases.append((form.format(a=tensor_expr(a)), fn(a)))
    text = PRELUDE + "".join(f"(show-t {form})\n" for form, _ in cases)
    got = parse_results(run_program(tmp, env, text))
    for (form, want), g in zip(cases, got, strict=True):
        assert_close(g, want, form[:60])


@SETTINGS
@given(st.data())
def test_unary_vs_numpy(tmp_path_factory, env, data):
    tmp = tmp_path_factory.mktemp("un")
    cases = []
    for i in range(CASES_PER_PROGRAM):
        op = list(UNARY)[i % len(UNARY)]
        shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
        lo, hi = (0.01, 20.0) if op in ("tensor-log", "log", "tensor-sqrt", "sqrt") else (-5.0, 5.0)
        cases.append((op, data.draw(values(shape, lo, hi))))
    text = PRELUDE + "".join(f"(show-t ({op} {tensor_expr(a)}))\n" for op, a in cases)
    got = parse_results(run_program(tmp, env, text))
    with _np_quiet():
        for (op, a), g in zip(cases, got, strict=True):
            assert_close(g, UNARY[op](a), f"({op} {a.shape})", rtol=1e-14, atol=1e-300)


# ---- reductions ----------------------------------------------------------------------------

@SETTINGS
@given(st.data())
def test_reductions_vs_numpy(tmp_path_factory, env, data):
    tmp = tmp_path_factory.mktemp("red")
    cases = []
    for i in range(CASES_PER_PROGRAM * 2):
        op = list(REDUCE)[i % len(REDUCE)]
        min_side = 1 if op in NEEDS_ELEMENTS else 0
        shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=min_side, max_side=5))
        lo, hi = (-2.0, 2.0) if op == "tensor-prod" else (-100.0, 100.0)
        a = data.draw(values(shape, lo, hi))
        axis = data.draw(st.none() | st.integers(-a.ndim, a.ndim - 1)) if a.ndim else None
        cases.append((op, a, axis))
    text = PRELUDE + "".join(
        f"(show-t ({op} {tensor_expr(a)}{'' if axis is None else f' {axis}'}))\n" for op, a, axis in cases)
    got = parse_results(run_program(tmp, env, text))
    with _np_quiet():
        for (op, a, axis), g in zip(cases, got, strict=True):
            want = REDUCE[op](a) if axis is None else REDUCE[op](a, axis=axis)
            # Summation order differs from numpy's in places: tolerance scaled by magnitudes.
            scale = np.sum(np.abs(a)) if a.size else 0.0
            atol = 1e-13 * scale if op not in ("tensor-prod",) else 0.0
            assert_close(g, want, f"({op} {a.shape} axis={axis})", rtol=1e-11, atol=atol)


def test_pairwise_sum_is_accurate(tmp_path, env):
    """10^6 copies of 0.1 sum to within a few ulps (naive summation drifts by ~1e-6)."""
    out = run_program(tmp_path, env, "(display (tensor-sum (make-tensor '(1000000) 0.1)))")
    assert abs(float(out) - 100000.0) < 1e-8


# ---- int64 and float32 ----------------------------------------------------------------------

def test_int64_exact_and_float32(tmp_path, env):
    big = 2**62 + 1
    text = PRELUDE + f"""
(define a (tensor '(3) '({big} 2 -3) 'i64))
(show-t a)
(show-t (tensor-dtype a))
(show-t (tensor-add a 1))
(show-t (tensor-mul a a))
(show-t (tensor-sum a))
(show-t (tensor-dtype (tensor-add a 1.5)))
(show-t (tensor-dtype (tensor-div a 2)))
(show-t (tensor-get a 0))
(define f (tensor-astype #(0.1 0.2 1e30) 'f32))
(show-t (tensor-dtype f))
(show-t f)
(show-t (tensor-dtype (tensor-add f 1)))
(show-t (tensor-dtype (tensor-add f #(1.0 2.0 3.0))))
(show-t (tensor-dtype (zeros 2 2 'f32)))
(show-t (tensor-dtype (arange 3 'i64)))
(show-t (tensor-argmax a))
(show-t (tensor-max (tensor '(2 2) '(1 5 7 2) 'i64) 0))
"""
    lines = run_program(tmp_path, env, text).splitlines()
    a = np.array([big, 2, -3], dtype=np.int64)
    assert lines[0] == f"(3) #({big} 2 -3)"
    assert lines[1] == "scalar i64"
    assert lines[2] == f"(3) #({big + 1} 3 -2)"
    assert lines[3] == f"(3) #({int((a * a)[0])} 4 9)"  # wraps like numpy
    assert lines[4] == f"scalar {int(a.sum())}"
    assert lines[5:7] == ["scalar f64", "scalar f64"]
    assert lines[7] == f"scalar {big}"
    assert lines[8] == "scalar f32"
    assert lines[9] == "(3) #(0.1 0.2 1e30)"
    assert lines[10:14] == ["scalar f32", "scalar f64", "scalar f32", "scalar i64"]
    assert lines[14] == "scalar 0"
    assert lines[15] == "(2) #(7 5)"


# ---- creation, views, COMPAT procedures ------------------------------------------------------

def test_creation_and_views(tmp_path, env):
    text = """
(display (arange 5)) (newline)
(display (arange 1 2 0.25)) (newline)
(display (arange 5 1 -2)) (newline)
(display (linspace -1 1 5)) (newline)
(display (eye 3)) (newline)
(display (make-tensor '(2 2) 7)) (newline)
(display (ones-like (zeros 2 3))) (newline)
(display (tensor 2 3 1 2 3 4 5 6)) (newline)
(display (tensor '((1 2) (3 4)))) (newline)
(display (list->tensor '((1 2 3) (4 5 6)))) (newline)
(display (tensor->list (eye 2))) (newline)
(display (tensor-data #((1 2) (3 4)))) (newline)
(define m (reshape (arange 6) 2 3))
(define row (tensor-get m 1))
(tensor-set! row 0 100)
(display m) (newline)
(define r2 (vector-ref m 0))
(vector-set! r2 2 -1)
(display m) (newline)
(display (list (vector-length m) (tensor-size m) (tensor-rank m) (tensor-shape (flatten m)))) (newline)
(display (car #(9 8 7))) (display " ") (display (cdr #(9 8 7))) (newline)
(display (car #((1 2) (3 4)))) (display " ") (display (cdr #((1 2) (3 4)))) (newline)
(display (list (equal? (eye 2) #((1 0) (0 1))) (equal? (eye 2) (eye 3)) (equal? #(1 2) (vector 1.0 2.0)))) (newline)
(define z (zeros 2 3))
(tensor-set! z 1 #(1 2 3))
(tensor-set! z 0 5)
(display z) (newline)
(display (tensor-ref #((1 2) (3 4)) 2)) (display (tensor-ref #((1 2) (3 4)) 1 1)) (newline)
(display (vref #(4 5 6) 2)) (display (vref (vector 'a 'b) 1)) (newline)
(random-seed! 7)
(define r1 (rand 3))
(random-seed! 7)
(display (equal? r1 (rand 3))) (newline)
(define n (randn 10000))
(display (and (< (abs (tensor-mean n)) 0.05) (< (abs (- (tensor-std n) 1.0)) 0.05))) (newline)
(define u (random-tensor 1000))
(display (and (>= (tensor-min u) 0.0) (< (tensor-max u) 1.0))) (newline)
(display (tensor-fill (zeros 2) 3)) (newline)
(define acc (zeros 3))
(tensor-add! acc #(1 2 3))
(tensor-scale! acc 2)
(tensor-axpy! acc 0.5 #(2 2 2))
(tensor-axpy! 1 #(1 1 1) acc)
(display acc) (newline)
(display (tensor-apply (lambda (x) (+ x 1)) #((1 2) (3 4)))) (newline)
(display (sin #(0.0))) (display (tensor? #(1))) (display (tensor? (vector 1))) (newline)
(write #(1.5 -0.0 1e100)) (newline)
(display (zeros 0 2)) (display (zeros 2 0 2)) (newline)
"""
    out = run_program(tmp_path, env, text).splitlines()
    assert out == [
        "#(0.0 1.0 2.0 3.0 4.0)",
        "#(1.0 1.25 1.5 1.75)",
        "#(5.0 3.0)",
        "#(-1.0 -0.5 0.0 0.5 1.0)",
        "#((1.0 0.0 0.0) (0.0 1.0 0.0) (0.0 0.0 1.0))",
        "#((7.0 7.0) (7.0 7.0))",
        "#((1.0 1.0 1.0) (1.0 1.0 1.0))",
        "#((1.0 2.0 3.0) (4.0 5.0 6.0))",
        "#((1.0 2.0) (3.0 4.0))",
        "#((1.0 2.0 3.0) (4.0 5.0 6.0))",
        "((1.0 0.0) (0.0 1.0))",
        "#(1.0 2.0 3.0 4.0)",
        "#((0.0 1.0 2.0) (100.0 4.0 5.0))",
        "#((0.0 1.0 -1.0) (100.0 4.0 5.0))",
        "(6 6 2 (6))",
        "9.0 #(8.0 7.0)",
        "#(1.0 2.0) #((3.0 4.0))",
        "(#t #f #f)",
        "#((5.0 5.0 5.0) (1.0 2.0 3.0))",
        "3.04.0",
        "6.0b",
        "#t",
        "#t",
        "#t",
        "#(3.0 3.0)",
        "#(4.0 6.0 8.0)",
        "#((2.0 3.0) (4.0 5.0))",
        "#(0.0)#t#f",
        "#(1.5 -0.0 1e100)",
        "#()#(() ())",
    ]


# ---- errors --------------------------------------------------------------------------------

ERROR_CASES = [
    ("(tensor-add (ones 2 2) (ones 3 3))", "tensor-add: shape mismatch: (2 2) and (3 3)"),
    ("(+ (ones 2 3) (ones 4))", "+: shape mismatch: (2 3) and (4)"),
    ("(tensor-mul #(1 2) #(1 2 3))", "tensor-mul: shape mismatch: (2) and (3)"),
    ("(tensor-add! (ones 2) (ones 2 2))", "tensor-add!: shape mismatch: (2) and (2 2)"),
    ("(tensor-get (zeros 2 3) 1 3)", "tensor-get: index 3 out of range for dimension 1 of size 3"),
    ("(tensor-get (zeros 2 3) -1 0)", "tensor-get: index -1 out of range"),
    ("(tensor-get (zeros 2 3) 0 0 0)", "tensor-get: 3 indices for a tensor of shape (2 3)"),
    ("(tensor-set! (zeros 2) 5 1.0)", "tensor-set!: index 5 out of range"),
    ("(tensor-set! (zeros 2) 0 'x)", "tensor-set!: expected real number"),
    ("(tensor-ref (zeros 2 2) 4)", "tensor-ref: index 4 out of range"),
    ("(vector-ref #(1 2) 2)", "vector-ref: index 2 out of range"),
    ("(vector-set! #(1 2) 7 0)", "vector-set!: index 7 out of range"),
    ("(tensor-astype (ones 2) 'f16)", "unknown tensor dtype"),
    ("(zeros 2 3 'complex)", "unknown tensor dtype"),
    ("(reshape (arange 6) 4)", "reshape: cannot reshape a tensor of shape (6) into shape (4)"),
    ("(tensor-sum (ones 2 2) 2)", "tensor-sum: axis 2 out of range for a tensor of rank 2"),
    ("(tensor-max (zeros 0))", "tensor-max: empty tensor"),
    ("(tensor-argmin (zeros 3 0) 1)", "tensor-argmin: reduction along an empty axis"),
    ("(tensor-sum 'a)", "tensor-sum: expected tensor"),
    ("(tensor-add \"s\" #(1))", "tensor-add: expected tensor or number"),
    ("(+ #(1 2) \"s\")", "expected number"),
    ("(zeros -1)", "zeros: expected non-negative exact integer"),
    ("(tensor '(2 2) '(1 2 3))", "tensor: shape (2 2) needs 4 elements, got 3"),
    ("(tensor '((1 2) (3)))", "ragged"),
    ("(list->tensor '(1 a))", "list->tensor: expected real number"),
    ("(tensor-apply (lambda (x) 'no) #(1))", "tensor-apply: expected real number result"),
    ("(let ((x 'sym)) #(1 x))", "tensor literal: expected real number"),
    ("(zeros 1 1 1 1 1 1 1 1 1)", "zeros: at most 8 dimensions"),
    ("(arange 0 1 0)", "arange: step must be a non-zero"),
    ("(car (zeros 0))", "car: empty tensor"),
    ("(tensor-shape 5)", "tensor-shape: expected tensor"),
    ("(eye 2 3 4)", "eye: expected (eye n [m] [dtype])"),
]


def test_errors_are_catchable(tmp_path, env):
    lines = ["(define (try thunk)",
             "  (display (guard (e ((error-object? e) (error-object-message e)) (#t 'raised))",
             "             (thunk) 'no-error))",
             "  (newline))"]
    lines += [f"(try (lambda () {expr}))" for expr, _ in ERROR_CASES]
    out = run_program(tmp_path, env, "\n".join(lines) + "\n").splitlines()
    assert len(out) == len(ERROR_CASES), out
    bad = [(e, w, g) for (e, w), g in zip(ERROR_CASES, out, strict=True) if w not in g]
    assert not bad, "\n".join(f"{e}: wanted {w!r}, got {g!r}" for e, w, g in bad)


def test_uncaught_error_has_location(tmp_path, env):
    prog = tmp_path / "bad.esk"
    prog.write_text("(define a (ones 2 2))\n(display (tensor-sub a (ones 3)))\n", encoding="utf-8")
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert f"{prog}:2:10: error: tensor-sub: shape mismatch: (2 2) and (3)" in proc.stderr


def test_ragged_literal_is_a_compile_error(tmp_path, env):
    prog = tmp_path / "ragged.esk"
    prog.write_text("(display 1)\n(define t #((1 2) (3 4 5)))\n", encoding="utf-8")
    proc = subprocess.run([ESHKOL, "run", str(prog)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""  # nothing ran: a compile-time error
    assert f"{prog}:2:19: error: tensor literal: ragged nesting" in proc.stderr


# ---- memory: the buffer pool ----------------------------------------------------------------

def _max_rss_mb_of_built(tmp_path: Path, env, source: str) -> tuple[float, str]:
    prog = tmp_path / "mem.esk"
    prog.write_text(source, encoding="utf-8")
    exe = tmp_path / "mem"
    b = subprocess.run([ESHKOL, "build", str(prog), "-o", str(exe)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert b.returncode == 0, b.stderr
    # ru_maxrss of a child counts the pages it had before exec, i.e. a copy of whoever forked
    # it: forked from this pytest process (1.5 GB after the whole suite) it would measure pytest.
    # A fresh small interpreter forks the program and reports the program's own peak.
    p = subprocess.run([sys.executable, "-c", _MEASURE, str(exe)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    rss, _, out = p.stdout.partition("\n")
    return float(rss), out


_MEASURE = """
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True)
if p.returncode:
    sys.exit(p.stderr.decode())
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)  # KiB on Linux
sys.stdout.write(p.stdout.decode())
"""


LOOP = """(define (go i acc)
  (if (= i {n}) acc
      (let ((t (make-tensor '(1000 1000) 1.0)))   ; 8 MB, dropped each iteration
        (go (+ i 1) (+ acc (tensor-ref (tensor-add t 1.0) 7))))))
(display (go 0 0)) (newline)
"""


def test_dropped_tensors_are_recycled(tmp_path, env):
    """300 iterations making two 8 MB tensors each (4.8 GB in all) stay far below 300 MB."""
    rss, out = _max_rss_mb_of_built(tmp_path, env, LOOP.format(n=300))
    assert out.strip() == "600.0"
    assert rss < 300, f"max resident {rss:.0f} MB"


@pytest.mark.slow
def test_ten_thousand_8mb_tensors_under_300mb(tmp_path, env):
    """The issue's bound: 10^4 iterations that make and drop 8 MB tensors, under 300 MB."""
    rss, out = _max_rss_mb_of_built(tmp_path, env, LOOP.format(n=10000))
    assert out.strip() == "20000.0"
    assert rss < 300, f"max resident {rss:.0f} MB"
