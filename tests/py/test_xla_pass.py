"""eshkol-lower-stablehlo (eshkol/passes/lower_stablehlo.py): the StableHLO it emits runs.

The program's tensors are random literals; each ``@regionN`` function of the pass's nested
``@esk_xla`` module is compiled alone by XLA (jax's client, as eshkol/runtime/xla.py does)
and run on the values of the globals its ``%xla-call`` passes in, and the result is compared
with numpy computing the same expression. Tolerance: XLA's CPU backend sums and contracts in
its own order, so results agree to rounding (inputs of reductions are positive).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from mlir import ir  # noqa: E402

from eshkol.dialect import ops  # noqa: E402
from eshkol.driver import dialect_module, run_passes  # noqa: E402
from eshkol.passes.lower_stablehlo import ATTR_REGION, XLA_MODULE, standalone, take_regions  # noqa: E402
from eshkol.runtime.xla import Backend  # noqa: E402

RTOL = 1e-12


def literal(a: np.ndarray) -> str:
    """An Eshkol tensor literal of ``a`` (repr keeps every bit of a float64)."""
    if a.ndim == 1:
        return "(" + " ".join(repr(float(x)) for x in a) + ")"
    return "(" + " ".join(literal(r) for r in a) + ")"


def inputs_by_region(module: ir.Module) -> dict[int, list[str]]:
    """Region id → the globals its %xla-call passes (in parameter order)."""
    out: dict[int, list[str]] = {}

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == ops.PRIM and ir.StringAttr(op.attributes["name"]).value == "%xla-call":
            rid = ir.IntegerAttr(op.operands[0].owner.attributes["value"]).value
            out[rid] = [ir.FlatSymbolRefAttr(a.owner.attributes["name"]).value for a in op.operands[2:]]
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return out


def test_emitted_stablehlo_runs_on_xla_and_matches_numpy(tmp_path):
    rng = np.random.default_rng(7)
    env = {"X": rng.uniform(0.5, 2.0, (4, 3)), "W": rng.uniform(-1.0, 1.0, (3, 5)),
           "b": rng.uniform(-1.0, 1.0, 5), "c": rng.uniform(0.5, 2.0, 3)}
    want = {  # numpy, expression by expression of the program below
        0: lambda X, W, b: np.maximum(X @ W + b, 0.0),
        1: lambda X: (X * X).sum(axis=1),
        2: lambda X: np.exp(X * 0.5).mean(axis=0),
        3: lambda X, c: 2 * (X + np.broadcast_to(c.reshape(1, 3), (4, 3))),
        4: lambda X, c: np.tanh(X / c).max(axis=1),
    }
    src = "\n".join(f"(define {k} #{literal(v)})" for k, v in env.items()) + """
(display (tensor-maximum (tensor-add (matmul X W) b) 0.0))
(display (tensor-sum (tensor-mul X X) 1))
(display (tensor-mean (tensor-exp (tensor-scale X 0.5)) 0))
(display (* 2 (tensor-add X (tensor-broadcast (reshape c 1 3) '(4 3)))))
(display (tensor-max (tensor-tanh (tensor-div X c)) 1))
"""
    path = tmp_path / "p.esk"
    path.write_text(src)
    ctx, module = dialect_module(src, str(path))
    run_passes(ctx, module, ["eshkol-lower-stablehlo"])
    backend = Backend()
    with ctx:
        args_of = inputs_by_region(module)
        nested = [op for op in module.body.operations if op.operation.name == "builtin.module"]
        assert len(nested) == 1 and ir.StringAttr(nested[0].attributes["sym_name"]).value == XLA_MODULE
        funcs = list(nested[0].regions[0].blocks[0].operations)
        assert sorted(ir.IntegerAttr(f.attributes[ATTR_REGION]).value for f in funcs) == sorted(want)
        for f in funcs:
            rid = ir.IntegerAttr(f.attributes[ATTR_REGION]).value
            text = standalone(str(f))
            assert "stablehlo." in text, text  # every shape is known: a body, not a declaration
            names = args_of[rid]
            exe = backend.compile(text)
            got = np.asarray(exe.execute(jax.device_put([env[n] for n in names]))[0])
            np.testing.assert_allclose(got, want[rid](*(env[n] for n in names)), rtol=RTOL,
                                       err_msg=f"region {rid}: {text}")
        # The driver's view: regions rebuilt from the IR, the nested module removed.
        regions: list = []
        take_regions(module.operation, regions)
        assert [r.id for r in regions] == sorted(want)
        assert not any(op.operation.name == "builtin.module" for op in module.body.operations)
