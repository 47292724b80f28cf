"""The v1.x neural-network builtins (stdlib/builtins/nn_*.esk) against numpy on random inputs.

One Eshkol program evaluates every case (a single compile and run keeps this fast); each case
prints its result flattened to one line, which is compared with a numpy reference written out
here from the documented definitions (softmax, losses, cross-correlation, pooling, layer norm,
one Adam step).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

RNG = np.random.default_rng(20240518)


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


def _lit(a: np.ndarray) -> str:
    """An Eshkol tensor literal with every float64 bit kept (repr round-trips)."""
    if a.ndim == 0:
        return repr(float(a))
    return "#(" + " ".join(_lit(x) for x in a) + ")"


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _corr2d(x: np.ndarray, k: np.ndarray, s: int, p: int) -> np.ndarray:
    x = np.pad(x, p)
    kh, kw = k.shape
    oh, ow = (x.shape[0] - kh) // s + 1, (x.shape[1] - kw) // s + 1
    return np.array([[np.sum(x[i * s:i * s + kh, j * s:j * s + kw] * k) for j in range(ow)]
                     for i in range(oh)])


def _pool(x: np.ndarray, k: int, s: int, p: int, f: Callable, fill: float) -> np.ndarray:
    x = np.pad(x, p, constant_values=fill)
    o = (x.shape[0] - k) // s + 1
    return np.array([[f(x[i * s:i * s + k, j * s:j * s + k]) for j in range(o)] for i in range(o)])


def _cases() -> list[tuple[str, str, np.ndarray]]:
    """(name, Eshkol expression, numpy expected value)."""
    x = RNG.normal(size=(3, 5)) * 3
    sig = 1 / (1 + np.exp(-x))
    sp = np.log1p(np.exp(x))
    p = RNG.uniform(0.05, 0.95, size=8)
    t = (RNG.uniform(size=8) > 0.5).astype(float)
    a, b = RNG.normal(size=(4, 6)), RNG.normal(size=(4, 6))
    logits = RNG.normal(size=(5, 4)) * 2
    labels = RNG.integers(0, 4, size=5)
    ls = logits - logits.max(1, keepdims=True)
    ls = ls - np.log(np.exp(ls).sum(1, keepdims=True))
    img, ker = RNG.normal(size=(7, 6)), RNG.normal(size=(3, 2))
    pimg = RNG.normal(size=(6, 6))
    ln_x, g, bt = RNG.normal(size=(4, 5)), RNG.normal(size=5), RNG.normal(size=5)
    mu, var = ln_x.mean(-1, keepdims=True), ln_x.var(-1, keepdims=True)
    par, grad = RNG.normal(size=6), RNG.normal(size=6)
    m0, v0 = RNG.uniform(size=6) * 0.1, RNG.uniform(size=6) * 0.01
    m1 = 0.9 * m0 + 0.1 * grad
    v1 = 0.999 * v0 + 0.001 * grad * grad
    step = 3
    adam = par - 0.05 * (m1 / (1 - 0.9 ** step)) / (np.sqrt(v1 / (1 - 0.999 ** step)) + 1e-8)
    return [
        ("relu", f"(relu {_lit(x)})", np.maximum(x, 0)),
        ("leaky-relu", f"(leaky-relu {_lit(x)} 0.1)", np.where(x > 0, x, 0.1 * x)),
        ("sigmoid", f"(sigmoid {_lit(x)})", sig),
        ("silu", f"(silu {_lit(x)})", x * sig),
        ("softplus", f"(softplus {_lit(x)})", sp),
        ("mish", f"(mish {_lit(x)})", x * np.tanh(sp)),
        ("gelu", f"(gelu {_lit(x)})",
         0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
        ("elu", f"(elu {_lit(x)} 0.7)", np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
        ("softmax", f"(softmax {_lit(x)})", _softmax(x)),
        ("softmax-axis-0", f"(softmax {_lit(x)} 0)", _softmax(x, 0)),
        ("mse-loss", f"(mse-loss {_lit(a)} {_lit(b)})", np.mean((a - b) ** 2)),
        ("mae-loss", f"(mae-loss {_lit(a)} {_lit(b)})", np.mean(np.abs(a - b))),
        ("huber-loss", f"(huber-loss {_lit(a)} {_lit(b)} 0.8)",
         np.mean(np.where(np.abs(a - b) <= 0.8, 0.5 * (a - b) ** 2, 0.8 * (np.abs(a - b) - 0.4)))),
        ("bce-loss", f"(bce-loss {_lit(p)} {_lit(t)})",
         -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))),
        ("cross-entropy-loss", f"(cross-entropy-loss {_lit(logits)} {_lit(labels.astype(float))})",
         -np.mean(ls[np.arange(5), labels])),
        ("conv2d", f"(conv2d {_lit(img)} {_lit(ker)} 1)", _corr2d(img, ker, 1, 0)),
        ("conv2d-stride-pad", f"(conv2d {_lit(img)} {_lit(ker)} 2 1)", _corr2d(img, ker, 2, 1)),
        ("max-pool2d", f"(max-pool2d {_lit(pimg)} 2 2)", _pool(pimg, 2, 2, 0, np.max, -np.inf)),
        ("max-pool2d-pad", f"(max-pool2d {_lit(pimg)} 3 2 1)", _pool(pimg, 3, 2, 1, np.max, -np.inf)),
        ("avg-pool2d", f"(avg-pool2d {_lit(pimg)} 3 1)", _pool(pimg, 3, 1, 0, np.mean, 0.0)),
        ("layer-norm", f"(layer-norm {_lit(ln_x)} {_lit(g)} {_lit(bt)} 1e-5)",
         (ln_x - mu) / np.sqrt(var + 1e-5) * g + bt),
        ("adam-step",
         f"(let ((p {_lit(par)}) (m {_lit(m0)}) (v {_lit(v0)})) "
         f"(adam-step p {_lit(grad)} 0.05 m v {step}) p)", adam),
    ]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name → (Eshkol's values, numpy's values), flattened."""
    cases = _cases()
    lines = ["(define (show name v)",
             "  (display name) (display \" \")",
             "  (display (if (number? v) (list v) (tensor->list (flatten v)))) (newline))"]
    lines += [f'(show "{name}" {expr})' for name, expr, _ in cases]
    folder = tmp_path_factory.mktemp("nn")
    (folder / "nn.esk").write_text("\n".join(lines) + "\n")
    env = dict(os.environ)
    env.setdefault("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "compat-shared-cache"))
    r = subprocess.run([_eshkol(), "run", "nn.esk"], capture_output=True, text=True, cwd=folder,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = {}
    for line in r.stdout.splitlines():
        name, _, values = line.partition(" ")
        got[name] = np.array([float(v) for v in values.strip("()").split()])
    return {name: (got[name], np.ravel(expected)) for name, _, expected in cases}


@pytest.mark.parametrize("name", [c[0] for c in _cases()])
def test_matches_numpy(name: str, results: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    got, expected = results[name]
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
