"""JVP and VJP rules of the tensor primitives (registered in the primitive registry).

Same conventions as autodiff_rules.py. The rules build calls of the tensor builtins and of the
shape helpers of autodiff_helpers.py (un-broadcasting, putting a reduced axis back, matmul's
transposed products, one-hot scatter of element reads); their formulas mirror the runtime's
(runtime_c/ad_tensor.c, ad_fast.c). Elementwise operations broadcast numpy-style, so each
operand's cotangent is summed down to the operand's shape.
"""

from __future__ import annotations

from mlir import ir

from eshkol.dialect.primitives import rule
from eshkol.dialect.prims_tensor import ELEMENTWISE_UNARY
from eshkol.passes.autodiff_rules import UNARY_TIMES, Builder, div_jvp, expt_jvp, expt_vjp, mul_jvp, pick_vjp, unary

# ---- elementwise unary: the scalar formula, elementwise ---------------------------------------

_SCALAR_OF = {"neg": "%neg", "abs": "abs", "sqrt": "sqrt", "exp": "exp", "sin": "sin", "cos": "cos",
              "tan": "tan", "tanh": "tanh", "square": "square"}
for _t, _op in ELEMENTWISE_UNARY.items():
    if _op in _SCALAR_OF:
        unary(_t, UNARY_TIMES[_SCALAR_OF[_op]])
unary("tensor-log", lambda b, x, p, r: b.prim("%div2", x, p))


# ---- elementwise binary, broadcasting ------------------------------------------------------------

def _ub(b: Builder, c: ir.Value, like: ir.Value) -> ir.Value:
    return b.helper("unbroadcast", c, like)


@rule("jvp", "tensor-add")
def _add_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    if d[0] is None or d[1] is None:
        return d[0] if d[1] is None else d[1]
    return b.prim("%add2", d[0], d[1])


@rule("vjp", "tensor-add")
def _add_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [_ub(b, g, p[0]) if need[0] else None, _ub(b, g, p[1]) if need[1] else None]


@rule("jvp", "tensor-sub")
def _sub_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    if d[1] is None:
        return d[0]
    return b.prim("%neg", d[1]) if d[0] is None else b.prim("%sub2", d[0], d[1])


@rule("vjp", "tensor-sub")
def _sub_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [_ub(b, g, p[0]) if need[0] else None,
            _ub(b, b.prim("%neg", g), p[1]) if need[1] else None]


rule("jvp", "tensor-mul", "tensor-scale")(mul_jvp)  # tangents need no un-broadcasting


@rule("vjp", "tensor-mul", "tensor-scale")
def _mul_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [_ub(b, b.prim("%mul2", g, p[1]), p[0]) if need[0] else None,
            _ub(b, b.prim("%mul2", p[0], g), p[1]) if need[1] else None]


rule("jvp", "tensor-div")(div_jvp)


@rule("vjp", "tensor-div")
def _div_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    gb = b.prim("%div2", g, p[1])
    return [_ub(b, gb, p[0]) if need[0] else None,
            _ub(b, b.prim("%neg", b.prim("%mul2", gb, r)), p[1]) if need[1] else None]


@rule("vjp", "tensor-maximum")
def _max_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return pick_vjp(b, p, g, need, True)


@rule("vjp", "tensor-minimum")
def _min_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return pick_vjp(b, p, g, need, False)


# tensor-pow: expt's rules (b a^(b-1); r log a for the exponent), the cotangents summed down to
# each operand's shape (either operand may be a number or a tensor).
rule("jvp", "tensor-pow")(expt_jvp)
rule("vjp", "tensor-pow")(expt_vjp)


@rule("jvp", "tensor-where")
def _where_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    # the condition only selects: the chosen branch's tangent (zero for a passive branch)
    if d[1] is None and d[2] is None:
        return None
    zero = b.float(0.0)
    return b.prim("tensor-where", p[0], zero if d[1] is None else d[1], zero if d[2] is None else d[2])


@rule("vjp", "tensor-where")
def _where_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    # no cotangent through the condition; g routed to the branch each element took (a where,
    # not a 0/1 mask product, so an inf or nan in g stays out of the other branch), then
    # summed down to the branch's shape
    zero = b.float(0.0)
    return [None,
            _ub(b, b.prim("tensor-where", p[0], g, zero), p[1]) if need[1] else None,
            _ub(b, b.prim("tensor-where", p[0], zero, g), p[2]) if need[2] else None]


# ---- reductions: the cotangent spread back over the reduced elements ----------------------------

@rule("jvp", "tensor-sum", "tensor-mean")
def _reduce_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    # linear: the same reduction of the tangent (the axis is passive)
    return None if d[0] is None else b.prim(_name_of(r), d[0], *p[1:])


@rule("vjp", "tensor-sum")
def _sum_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [b.helper("sum-vjp", g, *p), *([None] * (len(p) - 1))]


@rule("vjp", "tensor-mean")
def _mean_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [b.helper("mean-vjp", g, *p), *([None] * (len(p) - 1))]


@rule("jvp", "tensor-prod")
def _prod_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    # the tangent weighted by the VJP's per-element weights (its cotangent of a one), reduced
    if d[0] is None:
        return None
    one = b.float(1.0) if len(p) == 1 else b.prim("ones-like", r)
    return b.prim("tensor-sum", b.prim("%mul2", b.helper("prod-vjp", one, *p), d[0]), *p[1:])


@rule("vjp", "tensor-prod")
def _prod_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    # the product of the other elements (exact where elements are zero: no division by them)
    return [b.helper("prod-vjp", g, *p), *([None] * (len(p) - 1))]


# ---- matmul and tensor-dot ----------------------------------------------------------------------

def _product_rules(names: tuple[str, ...], prim: str, da: str, db: str) -> None:
    """The rules of a bilinear product: each operand's tangent through the same product; the
    cotangents from shape helpers (autodiff_helpers.py) ``da`` and ``db``."""

    @rule("jvp", *names)
    def jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
        left = None if d[0] is None else b.prim(prim, d[0], p[1])
        right = None if d[1] is None else b.prim(prim, p[0], d[1])
        if left is None or right is None:
            return left if right is None else right
        return b.prim("%add2", left, right)

    @rule("vjp", *names)
    def vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
        return [b.helper(da, g, p[0], p[1]) if need[0] else None,
                b.helper(db, g, p[0], p[1]) if need[1] else None]


_product_rules(("matmul", "tensor-matmul"), "matmul", "matmul-da", "matmul-db")
_product_rules(("tensor-dot",), "tensor-dot", "dot-da", "dot-db")


# ---- shape: the cotangent moved back --------------------------------------------------------------

@rule("jvp", "reshape", "tensor-reshape", "flatten", "transpose", "tensor-transpose")
def _shape_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    return None if d[0] is None else b.prim(_name_of(r), d[0], *p[1:])


@rule("vjp", "reshape", "tensor-reshape", "flatten")
def _reshape_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    return [b.prim("reshape", g, b.prim("tensor-shape", p[0])), *([None] * (len(p) - 1))]


@rule("vjp", "transpose", "tensor-transpose")
def _transpose_vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
    # reversing all axes, or swapping two: each its own inverse
    return [b.prim("transpose", g, *p[1:]), *([None] * (len(p) - 1))]


# ---- element, block and slice reads: the cotangent scattered into the read tensor's shape ----

# read primitive -> the helper that adds a cotangent into an accumulator at what the read read
# (vref t k) on a tensor is (tensor-get t k): an element of a vector, a row of a matrix; all
# the slices of a parameter vector add into one accumulator.
SCATTER_ADD = {"tensor-get": "get-acc", "tensor-ref": "ref-acc", "vref": "get-acc", "tensor-slice": "slice-acc"}


@rule("jvp", "tensor-get", "tensor-ref", "vref", "tensor-slice")
def _get_jvp(b: Builder, p: list, r: ir.Value, d: list) -> ir.Value | None:
    return None if d[0] is None else b.prim(_name_of(r), d[0], *p[1:])


def _read_vjp(helper: str):
    def vjp(b: Builder, p: list, r: ir.Value, g: ir.Value, need: list) -> list:
        z = b.prim("zeros-like", p[0])
        return [b.helper(helper, z, g, *p[1:]), *([None] * (len(p) - 1))]
    return vjp


for _n, _h in SCATTER_ADD.items():
    rule("vjp", _n)(_read_vjp(_h))


def _name_of(r: ir.Value) -> str:
    """The primitive that made ``r`` (rules reuse the same primitive on tangents)."""
    return ir.StringAttr(r.owner.attributes["name"]).value
