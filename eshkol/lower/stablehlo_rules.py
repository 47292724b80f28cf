"""StableHLO rules of the primitives: ``Primitive.rules['stablehlo']``.

A rule is ``rule(em: Emitter, args: list[Val | number | tuple | str], loc) -> Val``: ``args``
are the traced operands (numbers and constant lists stay Python values, so rules that need a
compile-time axis or dimension can read them; ``as_val`` turns them into constants). Shapes
and dtypes follow numpy (the CPU runtime's semantics); errors name the operation and shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

from eshkol.dialect.primitives import PRIMITIVES
from eshkol.lower.stablehlo import (
    Emitter,
    NeedStatic,
    TType,
    Val,
    XlaError,
    _shape_text,
    as_val,
    broadcast_shapes,
    is_float,
    promote,
)
from eshkol.syntax.diagnostics import Loc

Rule = Callable[[Emitter, list, Loc], Val]
RULES: dict[str, Rule] = {}


def stablehlo(*names: str) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the stablehlo rule of ``names`` (those the registry declares; the
    rest are kept in RULES and attached by ``attach`` once their area module declares them)."""
    def register(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
            if n in PRIMITIVES:
                PRIMITIVES[n].rules["stablehlo"] = fn
        return fn
    return register


def attach() -> None:
    """Attach every rule to its primitive (primitives declared after this module loaded)."""
    for n, fn in RULES.items():
        if n in PRIMITIVES:
            PRIMITIVES[n].rules["stablehlo"] = fn


# ---- argument helpers -------------------------------------------------------------------------

def static_int(x, loc: Loc, who: str, what: str) -> int:
    """A compile-time integer argument (an axis, a dimension)."""
    if isinstance(x, bool):
        raise XlaError(loc, f"{who}: {what} must be an integer")
    if isinstance(x, int):
        return x
    if isinstance(x, (float, Fraction)) and x == int(x):
        return int(x)
    if isinstance(x, Val) and x.deps and x.type.rank == 0:
        raise NeedStatic(x.deps)
    raise XlaError(loc, f"{who}: the {what} must be known when the region is compiled "
                        "(a constant, or a variable outside the region)")


def static_float(x, loc: Loc, who: str, what: str) -> float:
    if isinstance(x, (int, float, Fraction)) and not isinstance(x, bool):
        return float(x)
    if isinstance(x, Val) and x.deps and x.type.rank == 0:
        raise NeedStatic(x.deps)
    raise XlaError(loc, f"{who}: the {what} must be known when the region is compiled")


def dims_of(args: list, loc: Loc, who: str) -> tuple[int, ...]:
    """Dimensions given as integer arguments or as one constant list."""
    if len(args) == 1 and isinstance(args[0], tuple):
        args = list(args[0])
    dims = tuple(static_int(a, loc, who, "dimension") for a in args)
    if any(d < 0 for d in dims):
        raise XlaError(loc, f"{who}: negative dimension in {_shape_text(dims)}")
    return dims


def tensor_arg(em: Emitter, x, loc: Loc, who: str) -> Val:
    if isinstance(x, str):
        raise XlaError(loc, f"{who}: expected a tensor or a number, got the symbol {x}")
    if isinstance(x, tuple):
        raise XlaError(loc, f"{who}: expected a tensor or a number, got a list")
    return as_val(em, x)


def axis_of(x, rank: int, loc: Loc, who: str) -> int:
    a = static_int(x, loc, who, "axis")
    if not -rank <= a < rank:
        raise XlaError(loc, f"{who}: axis {a} out of range for rank {rank}")
    return a % rank


def float_dtype(v: Val) -> str:
    return v.type.dtype if is_float(v.type.dtype) else "f64"


def shape_error(loc: Loc, who: str, a: Val, b: Val) -> XlaError:
    return XlaError(loc, f"{who}: shape mismatch: {_shape_text(a.type.shape)} and {_shape_text(b.type.shape)}")


# ---- elementwise ----------------------------------------------------------------------------------

def _binary(op: str, who: str, true_div: bool = False) -> Rule:
    def rule(em: Emitter, args: list, loc: Loc) -> Val:
        vals = [tensor_arg(em, a, loc, who) for a in args]
        acc = vals[0]
        for b in vals[1:]:
            if true_div and not is_float(acc.type.dtype) and not is_float(b.type.dtype):
                acc = em.elementwise(op, [acc, b], loc, who, dtype="f64")
            else:
                acc = em.elementwise(op, [acc, b], loc, who)
        return acc
    return rule


for _names, _op, _who in [(("%add2", "tensor-add"), "add", "+"), (("%sub2", "tensor-sub"), "subtract", "-"),
                          (("%mul2", "tensor-mul", "tensor-scale"), "multiply", "*"),
                          (("%min2", "tensor-minimum"), "minimum", "min"),
                          (("%max2", "tensor-maximum"), "maximum", "max")]:
    stablehlo(*_names)(_binary(_op, _who))
stablehlo("%div2", "tensor-div")(_binary("divide", "/", true_div=True))
stablehlo("expt", "tensor-pow")(_binary("power", "expt"))


def _unary(op: str, to_float: bool = True) -> Rule:
    def rule(em: Emitter, args: list, loc: Loc) -> Val:
        x = tensor_arg(em, args[0], loc, op)
        if to_float:
            x = em.convert(x, float_dtype(x))
        return em.op(op, [x], x.type, weak=x.weak)
    return rule


for _names, _op in [(("exp", "tensor-exp"), "exponential"), (("log", "tensor-log"), "log"),
                    (("sqrt", "tensor-sqrt"), "sqrt"), (("sin", "tensor-sin"), "sine"),
                    (("cos", "tensor-cos"), "cosine"), (("tan", "tensor-tan"), "tan"),
                    (("tanh", "tensor-tanh"), "tanh")]:
    stablehlo(*_names)(_unary(_op))
stablehlo("%neg", "tensor-neg")(_unary("negate", to_float=False))
stablehlo("abs", "tensor-abs")(_unary("abs", to_float=False))


@stablehlo("%recip")
def _recip(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "/")
    x = em.convert(x, float_dtype(x))
    return em.op("divide", [em.splat(1.0, x.type), x], x.type, weak=x.weak)


@stablehlo("square", "tensor-square")
def _square(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "square")
    return em.op("multiply", [x, x], x.type, weak=x.weak)


@stablehlo("exact->inexact", "inexact")
def _inexact(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "exact->inexact")
    return em.convert(x, float_dtype(x))


def _float1(em: Emitter, args: list, loc: Loc, who: str) -> Val:
    x = tensor_arg(em, args[0], loc, who)
    return em.convert(x, float_dtype(x))


@stablehlo("sinh")
def _sinh(em: Emitter, args: list, loc: Loc) -> Val:
    # (expm1(x) - expm1(-x)) / 2: no cancellation near 0, unlike (exp(x) - exp(-x)) / 2.
    x = _float1(em, args, loc, "sinh")
    a = em.op("exponential_minus_one", [x], x.type)
    b = em.op("exponential_minus_one", [em.op("negate", [x], x.type)], x.type)
    d = em.op("subtract", [a, b], x.type)
    return em.op("multiply", [d, em.splat(0.5, x.type)], x.type, weak=x.weak)


@stablehlo("cosh")
def _cosh(em: Emitter, args: list, loc: Loc) -> Val:
    x = _float1(em, args, loc, "cosh")
    a = em.op("exponential", [x], x.type)
    b = em.op("exponential", [em.op("negate", [x], x.type)], x.type)
    return em.op("multiply", [em.op("add", [a, b], x.type), em.splat(0.5, x.type)], x.type, weak=x.weak)


def _sqrt_one_minus_sq(em: Emitter, x: Val) -> Val:
    one = em.splat(1.0, x.type)
    p = em.op("multiply", [em.op("subtract", [one, x], x.type), em.op("add", [one, x], x.type)], x.type)
    return em.op("sqrt", [p], x.type)


@stablehlo("asin")
def _asin(em: Emitter, args: list, loc: Loc) -> Val:
    x = _float1(em, args, loc, "asin")
    return em.op("atan2", [x, _sqrt_one_minus_sq(em, x)], x.type, weak=x.weak)


@stablehlo("acos")
def _acos(em: Emitter, args: list, loc: Loc) -> Val:
    x = _float1(em, args, loc, "acos")
    return em.op("atan2", [_sqrt_one_minus_sq(em, x), x], x.type, weak=x.weak)


@stablehlo("atan")
def _atan(em: Emitter, args: list, loc: Loc) -> Val:
    y = _float1(em, args, loc, "atan")
    x = tensor_arg(em, args[1], loc, "atan") if len(args) > 1 else em.number(1.0)
    return em.elementwise("atan2", [y, x], loc, "atan",
                          dtype="f32" if y.type.dtype == x.type.dtype == "f32" else
                          (y.type.dtype if x.weak else "f64"))


# ---- reductions ---------------------------------------------------------------------------------

def _reduce_dims(em: Emitter, args: list, loc: Loc, who: str) -> tuple[Val, list[int]]:
    x = tensor_arg(em, args[0], loc, who)
    if len(args) > 1:
        return x, [axis_of(args[1], x.type.rank, loc, who)]
    return x, list(range(x.type.rank))


def _count(x: Val, dims: list[int]) -> int:
    return math.prod(x.type.shape[d] for d in dims)


@stablehlo("tensor-sum")
def _sum(em: Emitter, args: list, loc: Loc) -> Val:
    x, dims = _reduce_dims(em, args, loc, "tensor-sum")
    return em.reduce(x, dims, "add", 0)


@stablehlo("tensor-prod")
def _prod(em: Emitter, args: list, loc: Loc) -> Val:
    x, dims = _reduce_dims(em, args, loc, "tensor-prod")
    return em.reduce(x, dims, "multiply", 1)


def _extremum(body: str, who: str) -> Rule:
    def rule(em: Emitter, args: list, loc: Loc) -> Val:
        x, dims = _reduce_dims(em, args, loc, who)
        if _count(x, dims) == 0:
            raise XlaError(loc, f"{who}: empty tensor")
        init = {"f64": math.inf, "f32": math.inf, "i64": (1 << 63) - 1}[x.type.dtype]
        if body == "maximum":
            init = -init if x.type.dtype != "i64" else -(1 << 63)
        return em.reduce(x, dims, body, init)
    return rule


stablehlo("tensor-max")(_extremum("maximum", "tensor-max"))
stablehlo("tensor-min")(_extremum("minimum", "tensor-min"))


def _mean(em: Emitter, x: Val, dims: list[int], loc: Loc, who: str) -> Val:
    n = _count(x, dims)
    if n == 0:
        raise XlaError(loc, f"{who}: empty tensor")
    s = em.reduce(x, dims, "add", 0, dtype=float_dtype(x))
    return em.op("divide", [s, em.splat(float(n), s.type)], s.type)


@stablehlo("tensor-mean")
def _mean_rule(em: Emitter, args: list, loc: Loc) -> Val:
    x, dims = _reduce_dims(em, args, loc, "tensor-mean")
    return _mean(em, x, dims, loc, "tensor-mean")


def _variance(em: Emitter, args: list, loc: Loc, who: str) -> Val:
    x, dims = _reduce_dims(em, args, loc, who)
    x = em.convert(x, float_dtype(x))
    m = _mean(em, x, dims, loc, who)
    keep = tuple(1 if i in dims else d for i, d in enumerate(x.type.shape))
    mb = em.broadcast(em.reshape(m, keep), x.type.shape)
    d = em.op("subtract", [x, mb], x.type)
    return _mean(em, em.op("multiply", [d, d], x.type), dims, loc, who)


@stablehlo("tensor-variance", "tensor-var")
def _var_rule(em: Emitter, args: list, loc: Loc) -> Val:
    return _variance(em, args, loc, "tensor-variance")


@stablehlo("tensor-std")
def _std_rule(em: Emitter, args: list, loc: Loc) -> Val:
    v = _variance(em, args, loc, "tensor-std")
    return em.op("sqrt", [v], v.type)


def _arg_extremum(body: str, who: str) -> Rule:
    def rule(em: Emitter, args: list, loc: Loc) -> Val:
        x = tensor_arg(em, args[0], loc, who)
        if len(args) == 1:  # over the flattened tensor, like numpy
            x = em.reshape(x, (x.type.size,))
            dims = [0]
        else:
            dims = [axis_of(args[1], x.type.rank, loc, who)]
        if _count(x, dims) == 0:
            raise XlaError(loc, f"{who}: empty tensor")
        m = _extremum(body, who)(em, [x, dims[0]], loc)
        keep = tuple(1 if i in dims else d for i, d in enumerate(x.type.shape))
        hit = em.compare(x, em.broadcast(em.reshape(m, keep), x.type.shape), "EQ")
        idx = em.iota(x.type.with_dtype("i64"), dims[0])
        big = em.splat((1 << 63) - 1, idx.type)
        first = em.op("select", [hit, idx, big], idx.type)
        return em.reduce(first, dims, "minimum", (1 << 63) - 1)  # the first index, like numpy
    return rule


stablehlo("tensor-argmax")(_arg_extremum("maximum", "tensor-argmax"))
stablehlo("tensor-argmin")(_arg_extremum("minimum", "tensor-argmin"))


# ---- linear algebra -------------------------------------------------------------------------------

def _dot(em: Emitter, a: Val, b: Val, lc: int, rc: int, batch: int, out: tuple[int, ...]) -> Val:
    bd = ", ".join(str(i) for i in range(batch))
    batching = f"lhs_batching_dimensions = [{bd}], rhs_batching_dimensions = [{bd}], " if batch else ""
    return em.op("dot_general", [a, b], TType(a.type.dtype, out),
                 f"dot_dimension_numbers = #stablehlo.dot<{batching}lhs_contracting_dimensions = [{lc}], "
                 f"rhs_contracting_dimensions = [{rc}]>")


def matmul(em: Emitter, a: Val, b: Val, loc: Loc, who: str) -> Val:
    """numpy's matmul: vectors are promoted and their dimension removed again; batches of
    matrices (equal leading dimensions) multiply pairwise."""
    if a.type.rank == 0 or b.type.rank == 0:
        raise XlaError(loc, f"{who}: operands must be tensors of rank 1 or more")
    d = "f64" if a.type.dtype != b.type.dtype else a.type.dtype
    a, b = em.convert(a, d), em.convert(b, d)
    sa, sb = a.type.shape, b.type.shape
    if sa[-1] != sb[0 if b.type.rank == 1 else -2]:
        raise shape_error(loc, who, a, b)
    if a.type.rank <= 2 and b.type.rank <= 2:
        out = sa[:-1] + sb[1:]
        return _dot(em, a, b, a.type.rank - 1, 0, 0, out)
    if a.type.rank != b.type.rank or sa[:-2] != sb[:-2]:
        raise shape_error(loc, who, a, b)
    batch = a.type.rank - 2
    return _dot(em, a, b, batch + 1, batch, batch, sa[:-1] + sb[-1:])


@stablehlo("matmul", "tensor-matmul")
def _matmul(em: Emitter, args: list, loc: Loc) -> Val:
    return matmul(em, tensor_arg(em, args[0], loc, "matmul"), tensor_arg(em, args[1], loc, "matmul"),
                  loc, "matmul")


@stablehlo("tensor-dot")
def _tensor_dot(em: Emitter, args: list, loc: Loc) -> Val:
    a, b = (tensor_arg(em, x, loc, "tensor-dot") for x in args)
    if a.type.rank == 0 or b.type.rank == 0:
        return em.elementwise("multiply", [a, b], loc, "tensor-dot")
    if a.type.rank > 2 or b.type.rank > 2:
        raise XlaError(loc, "tensor-dot: XLA target supports operands of rank 1 and 2")
    return matmul(em, a, b, loc, "tensor-dot")


@stablehlo("outer")
def _outer(em: Emitter, args: list, loc: Loc) -> Val:
    a, b = (tensor_arg(em, x, loc, "outer") for x in args)
    a = em.reshape(a, (a.type.size, 1))
    b = em.reshape(b, (1, b.type.size))
    return em.elementwise("multiply", [a, b], loc, "outer")


@stablehlo("transpose", "tensor-transpose")
def _transpose(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "transpose")
    perm = list(range(x.type.rank))[::-1]
    if len(args) == 3:
        i, j = (axis_of(a, x.type.rank, loc, "transpose") for a in args[1:])
        perm = list(range(x.type.rank))
        perm[i], perm[j] = perm[j], perm[i]
    if perm == sorted(perm):
        return x
    shape = tuple(x.type.shape[p] for p in perm)
    return em.op("transpose", [x], x.type.with_shape(shape),
                 f"permutation = array<i64: {', '.join(map(str, perm))}>")


@stablehlo("reshape", "tensor-reshape")
def _reshape(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "reshape")
    rest = list(args[1] if len(args) == 2 and isinstance(args[1], tuple) else args[1:])
    dims = [static_int(a, loc, "reshape", "dimension") for a in rest]
    if dims.count(-1) == 1:
        known = math.prod(d for d in dims if d != -1)
        if known and x.type.size % known == 0:
            dims[dims.index(-1)] = x.type.size // known
    if any(d < 0 for d in dims) or math.prod(dims) != x.type.size:
        raise XlaError(loc, f"reshape: cannot reshape {_shape_text(x.type.shape)} into {_shape_text(tuple(dims))}")
    return em.reshape(x, tuple(dims))


@stablehlo("flatten")
def _flatten(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "flatten")
    return em.reshape(x, (x.type.size,))


def _diag_mask(em: Emitter, t: TType) -> Val:
    rows = em.iota(t.with_dtype("i64"), 0)
    cols = em.iota(t.with_dtype("i64"), 1)
    return em.compare(rows, cols, "EQ")


@stablehlo("trace")
def _trace(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "trace")
    if x.type.rank != 2:
        raise XlaError(loc, f"trace: expected a matrix, got shape {_shape_text(x.type.shape)}")
    kept = em.op("select", [_diag_mask(em, x.type), x, em.splat(0, x.type)], x.type)
    return em.reduce(kept, [0, 1], "add", 0)


@stablehlo("norm")
def _norm(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "norm")
    if len(args) > 1 and static_float(args[1], loc, "norm", "order") != 2.0:
        raise XlaError(loc, "norm: the XLA target supports the 2-norm (Frobenius) only")
    x = em.convert(x, float_dtype(x))
    s = em.reduce(em.op("multiply", [x, x], x.type), list(range(x.type.rank)), "add", 0)
    return em.op("sqrt", [s], s.type)


# ---- creation ---------------------------------------------------------------------------------------

def dtype_arg(args: list, loc: Loc, who: str) -> tuple[list, str]:
    """(the other arguments, the dtype) of a creation call with an optional trailing dtype."""
    if args and isinstance(args[-1], str):
        name = {"float64": "f64", "float32": "f32", "int64": "i64"}.get(args[-1], args[-1])
        if name not in ("f64", "f32", "i64"):
            raise XlaError(loc, f"{who}: unknown dtype '{args[-1]}")
        return args[:-1], name
    return args, "f64"


def _fill(value: float, who: str) -> Rule:
    def rule(em: Emitter, args: list, loc: Loc) -> Val:
        args, dtype = dtype_arg(args, loc, who)
        return em.splat(value, TType(dtype, dims_of(args, loc, who)))
    return rule


stablehlo("zeros")(_fill(0.0, "zeros"))
stablehlo("ones")(_fill(1.0, "ones"))


def _like(value: float) -> Rule:
    def rule(em: Emitter, args: list, loc: Loc) -> Val:
        x = tensor_arg(em, args[0], loc, "zeros-like")
        return em.splat(value, x.type)
    return rule


stablehlo("zeros-like")(_like(0.0))
stablehlo("ones-like")(_like(1.0))


@stablehlo("make-tensor")
def _make_tensor(em: Emitter, args: list, loc: Loc) -> Val:
    args, dtype = dtype_arg(args, loc, "make-tensor")
    dims = dims_of([args[0]], loc, "make-tensor")
    v = em.convert(tensor_arg(em, args[1], loc, "make-tensor") if len(args) > 1 else em.number(0.0), dtype)
    return em.broadcast(v, dims)


@stablehlo("eye")
def _eye(em: Emitter, args: list, loc: Loc) -> Val:
    args, dtype = dtype_arg(args, loc, "eye")
    dims = dims_of(args, loc, "eye")
    t = TType(dtype, (dims[0], dims[-1]))
    return em.convert(_diag_mask(em, t), dtype)


@stablehlo("arange")
def _arange(em: Emitter, args: list, loc: Loc) -> Val:
    args, dtype = dtype_arg(args, loc, "arange")
    nums = [static_float(a, loc, "arange", "bound") for a in args]
    start, stop, step = (0.0, nums[0], 1.0) if len(nums) == 1 else \
        (nums[0], nums[1], nums[2] if len(nums) > 2 else 1.0)
    if step == 0:
        raise XlaError(loc, "arange: step must not be 0")
    n = max(0, math.ceil((stop - start) / step))
    t = TType("f64", (n,))
    i = em.iota(t, 0)
    if step != 1.0:
        i = em.op("multiply", [i, em.splat(step, t)], t)
    return em.convert(em.op("add", [i, em.splat(start, t)], t) if start != 0.0 else i, dtype)


@stablehlo("linspace")
def _linspace(em: Emitter, args: list, loc: Loc) -> Val:
    args, dtype = dtype_arg(args, loc, "linspace")
    a = static_float(args[0], loc, "linspace", "start")
    b = static_float(args[1], loc, "linspace", "end")
    n = static_int(args[2], loc, "linspace", "count") if len(args) > 2 else 50
    if n < 0:
        raise XlaError(loc, "linspace: negative count")
    t = TType("f64", (n,))
    i = em.iota(t, 0)
    if n <= 1:
        return em.op("add", [i, em.splat(a, t)], t)
    # numpy: start + i * step, with the last element exactly the end point
    y = em.op("add", [em.op("multiply", [i, em.splat((b - a) / (n - 1), t)], t), em.splat(a, t)], t)
    last = em.compare(i, em.splat(float(n - 1), t), "EQ")
    return em.convert(em.op("select", [last, em.splat(b, t), y], t), dtype)


# ---- comparisons and selection (1.0/0.0 masks) ---------------------------------------------------

def _comparison(direction: str, who: str) -> Rule:
    def rule(em: Emitter, args: list, loc: Loc) -> Val:
        a, b = (tensor_arg(em, x, loc, who) for x in args)
        d = promote(a, b)
        shape = broadcast_shapes(loc, who, a.type.shape, b.type.shape)
        a, b = (em.broadcast(em.convert(x, d), shape) for x in (a, b))
        return em.convert(em.compare(a, b, direction), "f64")
    return rule


for _n, _dir in [("tensor-eq", "EQ"), ("tensor-ne", "NE"), ("tensor-lt", "LT"), ("tensor-gt", "GT"),
                 ("tensor-le", "LE"), ("tensor-ge", "GE")]:
    stablehlo(_n)(_comparison(_dir, _n))


@stablehlo("tensor-where")
def _where(em: Emitter, args: list, loc: Loc) -> Val:
    c, a, b = (tensor_arg(em, x, loc, "tensor-where") for x in args)
    d = promote(a, b)
    shape = broadcast_shapes(loc, "tensor-where", c.type.shape, a.type.shape, b.type.shape)
    mask = em.compare(em.broadcast(c, shape), em.splat(0, TType(c.type.dtype, shape)), "NE")
    a, b = (em.broadcast(em.convert(x, d), shape) for x in (a, b))
    return em.op("select", [mask, a, b], TType(d, shape))


@stablehlo("tensor-broadcast")
def _broadcast(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "tensor-broadcast")
    dims = dims_of([args[1]] if isinstance(args[1], tuple) else args[1:], loc, "tensor-broadcast")
    if broadcast_shapes(loc, "tensor-broadcast", x.type.shape, dims) != dims:
        raise XlaError(loc, f"tensor-broadcast: cannot broadcast {_shape_text(x.type.shape)} to {_shape_text(dims)}")
    return em.broadcast(x, dims)


@stablehlo("tensor-astype")
def _astype(em: Emitter, args: list, loc: Loc) -> Val:
    x = tensor_arg(em, args[0], loc, "tensor-astype")
    _, dtype = dtype_arg(args[1:], loc, "tensor-astype")
    return em.convert(x, dtype)
