"""The XLA target: StableHLO generation (eshkol/lower/stablehlo*.py), outlining
(eshkol/passes/xla_outline.py) and the run-time driver (eshkol/runtime/xla.py).

Oracles: numpy for the generated StableHLO run through jax's client, and the cpu target for
whole programs (the same program printing the same numbers). Tolerances: XLA's CPU backend
sums in its own order (tree-shaped reductions, blocked dot products) while the runtime sums
pairwise like numpy, so reductions and matrix products agree to rounding, not bit for bit;
inputs of reductions are positive (no cancellation), so a relative 1e-12 is meaningful.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")

from eshkol.expand.expander import expand_program  # noqa: E402
from eshkol.lower.stablehlo import ArgSpec, TType, XlaError, region_module  # noqa: E402
from eshkol.passes.xla_outline import outline_program  # noqa: E402
from eshkol.runtime.xla import Backend  # noqa: E402
from eshkol.syntax.diagnostics import EshkolError  # noqa: E402
from eshkol.syntax.reader import read_syntax  # noqa: E402

BIN = Path(sys.executable).parent
ESHKOL = str(BIN / "eshkol")
TRANSLATE = str(BIN / "eshkol-translate")
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"
RTOL = 1e-12
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

_BACKEND: Backend | None = None


def backend() -> Backend:
    global _BACKEND
    if _BACKEND is None:
        _BACKEND = Backend()
    return _BACKEND


def xla_eval(expr: str, **inputs: np.ndarray | float) -> np.ndarray:
    """Evaluate the Eshkol expression ``expr`` (free names: ``inputs``) through StableHLO."""
    program = expand_program(read_syntax(f"(with-xla-jit {expr})", "t.esk"), unbound_ok=True)
    (region,) = outline_program(program, auto=False)
    specs, args = [], []
    for name in region.free:
        v = inputs[name]
        if isinstance(v, np.ndarray):
            specs.append(ArgSpec(TType({"float64": "f64", "float32": "f32", "int64": "i64"}[v.dtype.name],
                                       v.shape)))
            args.append(v)
        else:
            specs.append(ArgSpec(TType("f64" if isinstance(v, float) else "i64"), True))
            args.append(np.array(v))
    text, _ = region_module(region, specs)
    exe = backend().compile(text)
    return np.asarray(exe.execute(jax.device_put(args))[0])


# ---- shapes and values ----------------------------------------------------------------------

dims = st.integers(0, 4)
shapes = st.lists(dims, min_size=0, max_size=3).map(tuple)


@st.composite
def broadcastable(draw):
    """Two shapes that broadcast (numpy rules), with size-1 and size-0 dimensions."""
    out = draw(st.lists(st.integers(0, 4), min_size=0, max_size=3))
    def variant():
        k = draw(st.integers(0, len(out)))
        return tuple(1 if draw(st.booleans()) else d for d in out[len(out) - k:])
    return variant(), variant()


def values(shape, lo=-3.0, hi=3.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, shape)


BINARY = {"tensor-add": np.add, "tensor-sub": np.subtract, "tensor-mul": np.multiply,
          "tensor-div": np.divide, "+": np.add, "-": np.subtract, "*": np.multiply,
          "tensor-maximum": np.maximum, "tensor-minimum": np.minimum}
UNARY = {"exp": (np.exp, -3, 3), "tensor-exp": (np.exp, -3, 3), "log": (np.log, 0.1, 5),
         "sqrt": (np.sqrt, 0, 5), "sin": (np.sin, -3, 3), "cos": (np.cos, -3, 3),
         "tanh": (np.tanh, -3, 3), "tensor-neg": (np.negative, -3, 3), "abs": (np.abs, -3, 3),
         "sinh": (np.sinh, -3, 3), "cosh": (np.cosh, -3, 3), "asin": (np.arcsin, -1, 1),
         "acos": (np.arccos, -1, 1), "atan": (np.arctan, -3, 3), "square": (np.square, -3, 3)}


@SETTINGS
@given(broadcastable(), st.sampled_from(sorted(BINARY)), st.integers(0, 2**16))
def test_elementwise_binary_matches_numpy(shapes2, op, seed):
    a, b = values(shapes2[0], seed=seed), values(shapes2[1], 0.5, 3.0, seed=seed + 1)
    got = xla_eval(f"({op} a b)", a=a, b=b)
    np.testing.assert_allclose(got, BINARY[op](a, b), rtol=RTOL)


@SETTINGS
@given(shapes, st.sampled_from(sorted(UNARY)), st.integers(0, 2**16))
def test_elementwise_unary_matches_numpy(shape, op, seed):
    fn, lo, hi = UNARY[op]
    a = values(shape, lo, hi, seed)
    np.testing.assert_allclose(xla_eval(f"({op} a)", a=a), fn(a), rtol=RTOL, atol=1e-15)


def test_scalars_are_weakly_typed():
    a32 = np.arange(4, dtype=np.float32)
    got = xla_eval("(* 2 (tensor-add a 0.5))", a=a32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, 2 * (a32 + np.float32(0.5)))
    i = np.arange(4, dtype=np.int64)
    assert xla_eval("(+ i 1)", i=i).dtype == np.int64
    assert xla_eval("(/ i 2)", i=i).dtype == np.float64  # true division, like numpy
    assert xla_eval("(+ i 0.5)", i=i).dtype == np.float64
    np.testing.assert_array_equal(xla_eval("(tensor-add x s)", x=np.ones(3), s=2.5), np.full(3, 3.5))


REDUCE = {"tensor-sum": np.sum, "tensor-mean": np.mean, "tensor-max": np.max, "tensor-min": np.min,
          "tensor-prod": np.prod, "tensor-variance": np.var, "tensor-std": np.std,
          "tensor-argmax": np.argmax, "tensor-argmin": np.argmin}


@SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), st.sampled_from(sorted(REDUCE)),
       st.data())
def test_reductions_match_numpy(shape, op, data):
    a = values(shape, 0.5, 2.0, data.draw(st.integers(0, 2**16)))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    expr = f"({op} a)" if axis is None else f"({op} a {axis})"
    want = REDUCE[op](a) if axis is None else REDUCE[op](a, axis=axis)
    np.testing.assert_allclose(xla_eval(expr, a=a), want, rtol=RTOL)


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 6), st.integers(1, 6), st.sampled_from(["mm", "mv", "vm", "vv"]),
       st.integers(0, 2**16))
def test_matmul_matches_numpy(m, k, n, form, seed):
    a = values((m, k) if form[0] == "m" else (k,), 0.5, 2.0, seed)
    b = values((k, n) if form[1] == "m" else (k,), 0.5, 2.0, seed + 1)
    np.testing.assert_allclose(xla_eval("(matmul a b)", a=a, b=b), np.matmul(a, b), rtol=RTOL)


def test_batched_matmul_dot_outer_transpose_reshape():
    a, b = values((2, 3, 4)), values((2, 4, 5), seed=1)
    np.testing.assert_allclose(xla_eval("(matmul a b)", a=a, b=b), a @ b, rtol=RTOL)
    u, v = values(3), values(4, seed=2)
    np.testing.assert_allclose(xla_eval("(outer u v)", u=u, v=v), np.outer(u, v), rtol=RTOL)
    np.testing.assert_allclose(xla_eval("(tensor-dot u u)", u=u), u @ u, rtol=RTOL)
    np.testing.assert_array_equal(xla_eval("(transpose a)", a=a), a.T)
    np.testing.assert_array_equal(xla_eval("(transpose a 0 2)", a=a), np.swapaxes(a, 0, 2))
    np.testing.assert_array_equal(xla_eval("(reshape a 4 -1)", a=a), a.reshape(4, -1))
    np.testing.assert_array_equal(xla_eval("(reshape a '(6 4))", a=a), a.reshape(6, 4))
    np.testing.assert_array_equal(xla_eval("(flatten a)", a=a), a.reshape(-1))
    m = values((3, 3))
    np.testing.assert_allclose(xla_eval("(trace m)", m=m), np.trace(m), rtol=RTOL)
    np.testing.assert_allclose(xla_eval("(norm m)", m=m), np.linalg.norm(m), rtol=RTOL)


def test_creation_literals_lets_and_inlined_procedures():
    np.testing.assert_array_equal(xla_eval("(zeros 2 3)"), np.zeros((2, 3)))
    np.testing.assert_array_equal(xla_eval("(ones 2 'f32)"), np.ones(2, np.float32))
    np.testing.assert_array_equal(xla_eval("(eye 3)"), np.eye(3))
    np.testing.assert_array_equal(xla_eval("(arange 2 9 3)"), np.arange(2.0, 9.0, 3.0))
    np.testing.assert_allclose(xla_eval("(linspace 0 1 7)"), np.linspace(0, 1, 7), rtol=RTOL)
    np.testing.assert_array_equal(xla_eval("#((1 2) (3 4))"), [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(xla_eval("#((1 s) (3 4))", s=7.5), [[1.0, 7.5], [3.0, 4.0]])
    x = values((2, 2))
    got = xla_eval("(let* ((y (tensor-mul x x)) (z (tensor-add y 1))) (define w (sqrt z)) (tensor-sum w 0))", x=x)
    np.testing.assert_allclose(got, np.sqrt(x * x + 1).sum(0), rtol=RTOL)


def test_user_procedures_are_inlined():
    src = """(define W #((1.0 2.0) (3.0 4.0)))
             (define (layer x) (tanh (matmul x W)))
             (define (model x) (tensor-sum (layer (layer x)) 1))
             (display (with-xla-jit (model #((0.1 0.2)))))"""
    program = expand_program(read_syntax(src, "t.esk"), unbound_ok=True)
    regions = outline_program(program, auto=False)
    (region,) = regions
    assert region.free == ["W"] and set(region.functions) == {"model", "layer"}
    text, result = region_module(region, [ArgSpec(TType("f64", (2, 2)))])
    assert text.count("stablehlo.dot_general") == 2 and result.type == TType("f64", (1,))
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = np.asarray(backend().compile(text).execute(jax.device_put([w]))[0])
    np.testing.assert_allclose(got, np.tanh(np.tanh(np.array([[0.1, 0.2]]) @ w) @ w).sum(1), rtol=RTOL)


def test_shape_errors_name_the_operation_and_shapes():
    with pytest.raises(XlaError, match=r"matmul: shape mismatch: \(2 3\) and \(2 3\)"):
        xla_eval("(matmul a a)", a=np.ones((2, 3)))
    with pytest.raises(XlaError, match=r"do not broadcast"):
        xla_eval("(tensor-add a b)", a=np.ones(3), b=np.ones(4))


@pytest.mark.parametrize("body, construct", [
    ('(display x)', "display"), ('(begin (set! x 1) x)', "set!"), ('(string-append "a" "b")', "string-append"),
    ("(if (> x 0) x (- x))", "conditional"), ("(car x)", "car"), ("(foo x)", "a call of foo"),
])
def test_non_tensor_construct_in_with_xla_jit_is_an_error(body, construct):
    src = f"(define x (zeros 2))\n(define (f)\n  (with-xla-jit (tensor-add x 1)\n    {body}))\n"
    program = expand_program(read_syntax(src, "e.esk"), unbound_ok=True)
    with pytest.raises(EshkolError) as e:
        outline_program(program)
    assert construct in e.value.message and "with-xla-jit" in e.value.message
    assert e.value.loc.file == "e.esk" and e.value.loc.line == 4 and e.value.loc.col >= 5


def test_auto_mode_outlines_maximal_tensor_expressions_only():
    src = """(define A (ones 2 2))
             (define n (+ 1 2))
             (display (tensor-add (matmul A A) (car (list A))))
             (display (tensor-shape (tensor-mul A A)))"""
    program = expand_program(read_syntax(src, "t.esk"), unbound_ok=True)
    regions = outline_program(program)
    # (+ 1 2) has no tensor operation; (ones 2 2) is creation only; (car ...) is hoisted.
    assert [len(r.free) for r in regions] == [2, 1]


# ---- whole programs: cpu and xla targets --------------------------------------------------------

@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache")))


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


def numbers(text: str) -> list[np.ndarray]:
    """Each printed line as an array (tensors print as nested #(...) vectors)."""
    out = []
    for line in text.strip().splitlines():
        s = re.sub(r"\)\s*\(", "),(", line.replace("#(", "(")).replace(" ", ",")
        out.append(np.array(eval(s.replace("(", "[").replace(")", "]"), {}), dtype=float))
    return out


def esk_tensor(a: np.ndarray) -> str:
    if a.ndim == 0:
        return repr(float(a))
    if a.ndim == 1:
        return "#(" + " ".join(repr(float(x)) for x in a) + ")"
    return "#(" + " ".join(esk_tensor(r)[1:] for r in a) + ")"


CASES = ["(tensor-add a b)", "(tensor-mul a (tensor-exp b))", "(- (* 2.0 a) (/ b 3))",
         "(tensor-sum (matmul a (transpose b)))", "(tensor-mean (tanh a) 0)", "(tensor-max a 1)",
         "(sqrt (tensor-add (tensor-mul a a) b))", "(matmul (transpose a) b)", "(tensor-std b)",
         "(tensor-sum (tensor-mul a b) 1)", "(sin (cos a))", "(tensor-argmax a)"]


@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 2**16))
def test_same_numbers_on_cpu_and_xla(env, m, n, seed):
    """Generated programs: every case printed by the cpu target and the xla target."""
    a, b = values((m, n), 0.5, 2.0, seed), values((m, n), 0.5, 2.0, seed + 1)
    lines = [f"(define a {esk_tensor(a)})", f"(define b {esk_tensor(b)})"]
    lines += [f"(write {c}) (newline)" for c in CASES]
    prog = Path(env["XDG_CACHE_HOME"]) / f"gen_{m}_{n}_{seed}.esk"
    prog.write_text("\n".join(lines) + "\n")
    cpu = run([ESHKOL, "run", str(prog)], env)
    xla = run([ESHKOL, "run", "--target=xla", str(prog)], env)
    assert cpu.returncode == 0, cpu.stderr
    assert xla.returncode == 0, xla.stderr
    for case, want, got in zip(CASES, numbers(cpu.stdout), numbers(xla.stdout), strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, err_msg=case)


def test_example_07_on_xla_prints_the_expected_output(env):
    src = EXAMPLES / "07_tensors.esk"
    if not src.exists():
        pytest.skip("shared examples not found")
    p = run([ESHKOL, "run", "--target=xla", str(src)], env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (EXAMPLES / "07_tensors.out").read_text()
    # Every tensor expression of the program ran through XLA.
    p = run([TRANSLATE, "--target=stablehlo", str(src)], env)
    assert p.returncode == 0 and p.stdout.count("func.func") >= 10


def test_with_xla_jit_programs(env, tmp_path):
    prog = tmp_path / "w.esk"
    prog.write_text("""
(define W #((1.0 2.0) (3.0 4.0)))
(define (step x) (with-xla-jit (let ((h (tanh (matmul x W)))) (tensor-sum h 1))))
(display (step #((0.5 0.25)))) (newline)
(display (step (ones 3 2))) (newline)
(display (guard (e ((error-object? e) (error-object-message e))) (step (ones 3 3)))) (newline)
(display (guard (e ((error-object? e) (error-object-message e))) (step 'oops))) (newline)
(define (g n) (with-xla-jit (tensor-sum (zeros n 2))))
(display (list (g 3) (g 4))) (newline)
""")
    want = [np.tanh(np.array([[0.5, 0.25]]) @ [[1, 2], [3, 4]]).sum(1),
            np.tanh(np.ones((3, 2)) @ [[1, 2], [3, 4]]).sum(1)]
    for target, copy in (("cpu", ""), ("xla", ""), ("xla", "1")):
        # ESHKOL_XLA_COPY: tensors are copied to and from XLA, as with a GPU backend.
        p = run([ESHKOL, "run", f"--target={target}", str(prog)], dict(env, ESHKOL_XLA_COPY=copy))
        assert p.returncode == 0, p.stderr
        out = p.stdout.splitlines()
        for w, line in zip(want, out, strict=False):
            np.testing.assert_allclose(numbers(line)[0], w, rtol=RTOL)
        assert "(3 3)" in out[2]
        assert out[4] == "(0.0 0.0)"
    assert "oops" in out[3] or "tensor" in out[3]


def test_non_tensor_construct_error_from_the_command_line(env, tmp_path):
    prog = tmp_path / "bad.esk"
    prog.write_text('(define x (ones 2))\n(with-xla-jit\n  (tensor-add x x)\n  (display "hi"))\n')
    p = run([ESHKOL, "run", "--target=xla", str(prog)], env)
    assert p.returncode == 1
    assert f"{prog}:4:3: error: with-xla-jit: display" in p.stderr
    p = run([TRANSLATE, "--target=stablehlo", str(prog)], env)
    assert p.returncode == 1 and f"{prog}:4:3:" in p.stderr
    p = run([ESHKOL, "run", str(prog)], env)  # the cpu target just runs the body
    assert p.returncode == 0 and p.stdout == "hi"


def test_executables_are_cached_on_disk(env, tmp_path):
    prog = tmp_path / "c.esk"
    prog.write_text("(display (tensor-sum (matmul (ones 3 4) (ones 4 5))))\n")
    cache = Path(env["XDG_CACHE_HOME"]) / "eshkol" / "xla"

    def entries() -> set[Path]:
        return set(cache.iterdir()) if cache.exists() else set()

    before = entries()
    p = run([ESHKOL, "run", "--target=xla", str(prog)], env)
    assert p.returncode == 0 and p.stdout == "60.0", p.stderr
    first = entries()
    assert first - before  # the executable was stored
    p = run([ESHKOL, "run", "--target=xla", str(prog)], env)
    assert p.returncode == 0 and p.stdout == "60.0", p.stderr
    assert entries() == first  # and found again: nothing new compiled


def test_regions_fall_back_to_cpu_code_for_ad_values_and_unsupported_inputs(env, tmp_path):
    """Gradients through regions (AD values are inputs: the region's cpu code runs), and a
    region XLA cannot compile for its inputs (the 1-norm) runs on the cpu instead."""
    prog = tmp_path / "fb.esk"
    prog.write_text("""
(define (f w) (tensor-sum (tensor-mul w w)))
(display (gradient f #(1.0 2.0 3.0))) (newline)
(define (g w) (with-xla-jit (tensor-sum (tensor-mul w w))))
(display (gradient g #(1.0 2.0 3.0))) (newline)
(display (norm (tensor-mul #(3.0 -4.0) 1.0) 1)) (newline)
(display (tensor-add (list 1.0 2.0) #(1.0 1.0))) (newline)
""")
    want = "#(2.0 4.0 6.0)\n#(2.0 4.0 6.0)\n7.0\n#(2.0 3.0)\n"
    for target in ("cpu", "xla"):
        p = run([ESHKOL, "run", f"--target={target}", str(prog)], env)
        assert (p.returncode, p.stdout) == (0, want), p.stderr


def test_evaluation_order_is_kept_around_regions(env, tmp_path):
    """An argument with side effects is not moved before the region (x is read first)."""
    prog = tmp_path / "order.esk"
    prog.write_text("""
(define x #(1.0 2.0))
(define (bump!) (set! x (tensor-mul x 10.0)) 1.0)
(display (tensor-add (tensor-mul x x) (bump!))) (newline)
(display (tensor-add (tensor-mul x x) (car (list 3.0)))) (newline)
""")
    for target in ("cpu", "xla"):
        p = run([ESHKOL, "run", f"--target={target}", str(prog)], env)
        assert (p.returncode, p.stdout) == (0, "#(2.0 5.0)\n#(103.0 403.0)\n"), p.stderr
    p = run([TRANSLATE, "--target=stablehlo", str(prog)], env)
    assert "region 1 at" in p.stdout and "x is known only at run time" in p.stdout  # x is assigned


def test_reused_memory_and_mutated_tensors_give_fresh_results(env, tmp_path):
    """The driver recognises a tensor seen before by its header and buffer address: a new
    tensor in the memory of a dead one (the pool reuses buffers), or a tensor changed in place
    between calls, must give the numbers of its current contents, as the cpu target does."""
    prog = tmp_path / "reuse.esk"
    prog.write_text("""
(define (f a) (tensor-sum (tensor-mul a a)))
;; garbage between the calls, so that collections recycle the dead tensors' memory
(define (churn n) (let loop ((k 0) (l '())) (if (= k n) (length l) (loop (+ k 1) (cons k l)))))
(define (go i acc)
  (if (= i 40)
      (reverse acc)
      (begin (churn 600000) (go (+ i 1) (cons (f (tensor-scale (ones (if (even? i) 4096 1024)) i)) acc)))))
(display (go 0 '())) (newline)
(define t (ones 4096))
(define (h i acc)
  (if (= i 5) (reverse acc) (begin (tensor-set! t 7 (* 1.0 i)) (h (+ i 1) (cons (f t) acc)))))
(display (h 0 '())) (newline)
""")
    outs = {}
    for target in ("cpu", "xla"):
        p = run([ESHKOL, "run", f"--target={target}", str(prog)], env)
        assert p.returncode == 0, p.stderr
        outs[target] = p.stdout
    first = [(4096.0 if i % 2 == 0 else 1024.0) * i * i for i in range(40)]
    second = [4095.0 + i * i for i in range(5)]
    assert outs["xla"] == outs["cpu"]
    np.testing.assert_array_equal(numbers(outs["xla"])[0], first)
    np.testing.assert_array_equal(numbers(outs["xla"])[1], second)


def test_regions_with_many_inputs(env, tmp_path):
    """A region of 50 tensors and a number: its call key outgrows the runtime's frame (the
    driver then reads it from the heap); each call, repeated, gives the cpu target's numbers."""
    names = [f"t{i}" for i in range(50)]
    prog = tmp_path / "many.esk"
    prog.write_text("".join(f"(define {n} (tensor-scale (ones 3) {i + 1}.0))\n" for i, n in enumerate(names))
                    + "(define (f s) (tensor-scale (tensor-add " + " ".join(names[:2]) + ") s))\n"
                    + "(define (g s) (with-xla-jit (tensor-mul (+ "
                    + " ".join(f"(tensor-mul {n} s)" for n in names) + ") s)))\n"
                    + "(display (list (g 1.0) (g 2.0) (g 2.0) (f 0.5))) (newline)\n")
    outs = {}
    for target in ("cpu", "xla"):
        p = run([ESHKOL, "run", f"--target={target}", str(prog)], env)
        assert p.returncode == 0, p.stderr
        outs[target] = p.stdout
    assert outs["xla"] == outs["cpu"]
    total = sum(range(1, 51))
    assert outs["xla"] == f"(#({total}.0 {total}.0 {total}.0) " + f"#({4 * total}.0 {4 * total}.0 {4 * total}.0) " * 2 \
        + "#(1.5 1.5 1.5))\n"
