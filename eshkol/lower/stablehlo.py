"""The XLA target's code generator: a tensor region (core forms) → StableHLO text.

A region (``eshkol.passes.xla_outline``) is a closed expression of the tensor subset: tensor
primitives, ``+ - * /`` and math functions, constants and tensor literals, ``let``-bound
intermediates and calls of user procedures whose bodies are in the subset (inlined). Given
the dtype and shape of each free variable, ``region_module`` evaluates the expression
abstractly, as jax traces a Python function: every value is an SSA name with a static tensor
type, and each primitive's ``'stablehlo'`` rule (``eshkol.lower.stablehlo_rules``, kept in
``Primitive.rules``) emits the ops for its operand types. The module is printed in the generic
op form, which jaxlib's parser accepts (DESIGN.md §7).

Types follow numpy: broadcasting of elementwise operands, promotion f64 > f32 > i64 (i64 with
f32 gives f64), Scheme numbers are weakly typed (they take a tensor operand's dtype), division
and transcendental functions of integers give f64.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from eshkol.core import ast as A
from eshkol.syntax.diagnostics import EshkolError, Loc

DTYPES = ("f64", "f32", "i64", "i1")
NUMPY = {"f64": np.float64, "f32": np.float32, "i64": np.int64, "i1": np.bool_}


@dataclass(frozen=True)
class TType:
    """A ranked tensor type with static dims (rank 0 is a scalar)."""

    dtype: str
    shape: tuple[int, ...] = ()

    def __str__(self) -> str:
        return "tensor<" + "".join(f"{d}x" for d in self.shape) + self.dtype + ">"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def with_shape(self, shape: tuple[int, ...]) -> TType:
        return TType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: str) -> TType:
        return TType(dtype, self.shape)


@dataclass(frozen=True)
class Val:
    """A traced value: an SSA name and its type. ``weak``: a Scheme number (a scalar whose
    dtype yields to a tensor operand's, like numpy's Python scalars)."""

    name: str
    type: TType
    weak: bool = False
    # The region inputs a scalar is computed from (rules that need its value ask for them:
    # NeedStatic).
    deps: frozenset[int] = frozenset()


class XlaError(EshkolError):
    """A region that cannot become StableHLO (with the construct's location)."""


class NeedStatic(Exception):  # noqa: N818 - a request, not an error
    """A rule needs a number computed from region inputs ``indices`` at compile time (an
    axis, a dimension): the region is traced again with those inputs' values as constants."""

    def __init__(self, indices: frozenset[int]) -> None:
        super().__init__(sorted(indices))
        self.indices = indices


def is_float(dtype: str) -> bool:
    return dtype in ("f64", "f32")


def promote(a: Val, b: Val) -> str:
    """The dtype of an elementwise operation on ``a`` and ``b`` (numpy's rules)."""
    da, db = a.type.dtype, b.type.dtype
    if a.weak != b.weak:
        strong, weak = (b, a) if a.weak else (a, b)
        if is_float(weak.type.dtype) and not is_float(strong.type.dtype):
            return "f64"
        return strong.type.dtype
    if da == db:
        return da
    return "f64"  # f32+f64, i64+f64, i64+f32


def broadcast_shapes(loc: Loc, who: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcast of ``shapes``, or an error naming them."""
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise XlaError(loc, f"{who}: shapes {' and '.join(_shape_text(s) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + " ".join(str(d) for d in shape) + ")"


def _float_text(x: float, dtype: str) -> str:
    """An MLIR float literal that parses back to exactly ``x`` in ``dtype``."""
    if not np.isfinite(x):
        if dtype == "f32":
            return f'0x{struct.unpack("<I", struct.pack("<f", x))[0]:08X}'
        return f'0x{struct.unpack("<Q", struct.pack("<d", x))[0]:016X}'
    text = repr(float(np.float32(x))) if dtype == "f32" else repr(float(x))
    return text if ("." in text or "e" in text) else text + ".0"


def _elem_text(x, dtype: str) -> str:
    if dtype == "i1":
        return "true" if x else "false"
    if dtype == "i64":
        return str(int(x))
    return _float_text(float(x), dtype)


def dense(values: np.ndarray, t: TType) -> str:
    """A ``dense<...>`` attribute holding ``values`` (shape ``t.shape``)."""
    arr = np.asarray(values, dtype=NUMPY[t.dtype]).reshape(t.shape)
    flat = arr.reshape(-1)
    if flat.size and (flat == flat[0]).all() and not (is_float(t.dtype) and np.isnan(flat[0])):
        return f"dense<{_elem_text(flat[0], t.dtype)}> : {t}"  # a splat
    if flat.size > 64 and t.dtype != "i1":  # big literals: raw little-endian bytes
        return f'dense<"0x{arr.astype(arr.dtype.newbyteorder("<")).tobytes().hex().upper()}"> : {t}'

    def nest(a: np.ndarray) -> str:
        if a.ndim == 0:
            return _elem_text(a.item(), t.dtype)
        return "[" + ", ".join(nest(x) for x in a) + "]"

    return f"dense<{nest(arr)}> : {t}"


@dataclass
class Emitter:
    """Builds the body of one StableHLO function: each ``op`` call appends one generic op."""

    lines: list[str] = field(default_factory=list)
    counter: int = 0
    indent: str = "    "

    def fresh(self) -> str:
        self.counter += 1
        return f"%{self.counter - 1}"

    def op(self, name: str, operands: list[Val], result: TType, attrs: str = "",
           region: str = "", weak: bool = False) -> Val:
        """Append ``%r = "stablehlo.<name>"(operands) ({region}) {attrs} : (types) -> result``."""
        r = self.fresh()
        args = ", ".join(v.name for v in operands)
        types = ", ".join(str(v.type) for v in operands)
        reg = f" ({region})" if region else ""
        att = f" {{{attrs}}}" if attrs else ""
        self.lines.append(f'{self.indent}{r} = "stablehlo.{name}"({args}){reg}{att} : ({types}) -> {result}')
        return Val(r, result, weak)

    # ---- helpers the rules share -----------------------------------------------------------

    def constant(self, value, t: TType, weak: bool = False) -> Val:
        r = self.fresh()
        self.lines.append(f'{self.indent}{r} = "stablehlo.constant"() {{value = {dense(value, t)}}} : () -> {t}')
        return Val(r, t, weak)

    def number(self, x: int | float | bool) -> Val:
        """A Scheme number as a weakly typed scalar constant."""
        if isinstance(x, bool):
            return self.constant(x, TType("i1"))
        if isinstance(x, int):
            if not -(1 << 63) <= x < (1 << 63):
                return self.constant(float(x), TType("f64"), weak=True)
            return self.constant(x, TType("i64"), weak=True)
        return self.constant(float(x), TType("f64"), weak=True)

    def convert(self, v: Val, dtype: str) -> Val:
        if v.type.dtype == dtype:
            return v
        return self.op("convert", [v], v.type.with_dtype(dtype), weak=v.weak)

    def broadcast(self, v: Val, shape: tuple[int, ...]) -> Val:
        """``v`` broadcast (numpy rules: trailing dims aligned) to ``shape``."""
        if v.type.shape == tuple(shape):
            return v
        off = len(shape) - v.type.rank  # size-1 dims may grow: broadcast_in_dim allows that
        dims = ", ".join(str(off + i) for i in range(v.type.rank))
        return self.op("broadcast_in_dim", [v], v.type.with_shape(tuple(shape)),
                       f"broadcast_dimensions = array<i64{': ' + dims if dims else ''}>", weak=v.weak)

    def reshape(self, v: Val, shape: tuple[int, ...]) -> Val:
        if v.type.shape == tuple(shape):
            return v
        return self.op("reshape", [v], v.type.with_shape(tuple(shape)), weak=v.weak)

    def splat(self, x, t: TType) -> Val:
        """A tensor of type ``t`` filled with ``x`` (a constant broadcast, which XLA folds)."""
        return self.broadcast(self.constant(x, TType(t.dtype)), t.shape)

    def reduce(self, v: Val, dims: list[int], body: str, init, dtype: str | None = None) -> Val:
        """Reduce ``v`` over ``dims`` with the binary op ``body`` ('add', 'multiply',
        'maximum', 'minimum') starting from ``init``."""
        dtype = dtype or v.type.dtype
        v = self.convert(v, dtype)
        scalar = TType(dtype)
        z = self.constant(init, scalar)
        out_shape = tuple(d for i, d in enumerate(v.type.shape) if i not in dims)
        ind = self.indent
        # Names in a region share the function's namespace: fresh ones, not %a/%b.
        a, b, r = self.fresh(), self.fresh(), self.fresh()
        region = (f"{{\n{ind}  ^bb0({a}: {scalar}, {b}: {scalar}):\n"
                  f'{ind}    {r} = "stablehlo.{body}"({a}, {b}) : ({scalar}, {scalar}) -> {scalar}\n'
                  f'{ind}    "stablehlo.return"({r}) : ({scalar}) -> ()\n{ind}}}')
        d = ", ".join(str(i) for i in dims)
        return self.op("reduce", [v, z], v.type.with_shape(out_shape).with_dtype(dtype),
                       f"dimensions = array<i64{': ' + d if d else ''}>", region=region)

    def iota(self, t: TType, dim: int) -> Val:
        r = self.fresh()
        self.lines.append(f'{self.indent}{r} = "stablehlo.iota"() {{iota_dimension = {dim} : i64}} : () -> {t}')
        return Val(r, t)

    def compare(self, a: Val, b: Val, direction: str) -> Val:
        kind = "FLOAT" if is_float(a.type.dtype) else "SIGNED"
        return self.op("compare", [a, b], a.type.with_dtype("i1"),
                       f"comparison_direction = #stablehlo<comparison_direction {direction}>, "
                       f"compare_type = #stablehlo<comparison_type {kind}>")

    def elementwise(self, name: str, args: list[Val], loc: Loc, who: str, dtype: str | None = None) -> Val:
        """Broadcast and promote ``args`` to one type, then apply ``stablehlo.<name>``."""
        d = dtype
        if d is None:
            d = args[0].type.dtype
            acc = args[0]
            for b in args[1:]:
                d = promote(acc, b)
                acc = Val(acc.name, acc.type.with_dtype(d), acc.weak and b.weak)
        shape = broadcast_shapes(loc, who, *(a.type.shape for a in args))
        weak = all(a.weak for a in args)
        ops = [self.broadcast(self.convert(a, d), shape) for a in args]
        return self.op(name, ops, TType(d, shape), weak=weak)


# ---- tracing a region ----------------------------------------------------------------------

# What a rule receives: traced values, or constants of the source (numbers, lists of numbers
# as tuples, symbols as strings).
Arg = Val | int | float | tuple | str


@dataclass
class Tracer:
    """Abstract evaluation of core forms into an Emitter (see the module docstring)."""

    em: Emitter
    functions: dict[str, A.Lambda]
    depth: int = 0
    active: set[str] = field(default_factory=set)

    def value(self, node: A.Node, env: dict) -> Arg:
        """The traced value of ``node`` (Python numbers stay numbers: rules may need them
        static, e.g. an axis; ``as_val`` makes a constant of them)."""
        from eshkol.passes.xla_outline import TENSOR_CONST, TENSOR_LITERAL, literal_array

        static = static_constant(node)
        if static is not None:
            return static
        if isinstance(node, A.Const):
            raise XlaError(node.loc, f"constant {node.value!r} cannot run on XLA (only numbers and tensors)")
        if isinstance(node, A.LRef):
            if node.var not in env:
                raise XlaError(node.loc, f"variable {node.var.name} has no value in this XLA region")
            return env[node.var]
        if isinstance(node, A.GRef):
            if node.name not in env:
                raise XlaError(node.loc, f"global {node.name} cannot be used as a tensor in this XLA region")
            return env[node.name]
        if isinstance(node, A.Prim):
            from eshkol.dialect.primitives import PRIMITIVES

            if node.name == TENSOR_CONST:
                arr = literal_array(node)
                return self.em.constant(arr, TType("f64", arr.shape))
            if node.name == TENSOR_LITERAL:
                return self._literal(node, env)
            p = PRIMITIVES.get(node.name)
            fn = p.rules.get("stablehlo") if p is not None else None
            if fn is None:
                raise XlaError(node.loc, f"{display_name(node.name)} cannot run on XLA")
            args = [self.value(a, env) for a in node.args]
            if all(isinstance(a, (int, float, Fraction)) and not isinstance(a, bool) for a in args) \
                    and node.name in FOLD:
                return _fold(node, args)
            out = fn(self.em, args, node.loc)
            deps = frozenset().union(*(a.deps for a in args if isinstance(a, Val)))
            if deps and out.type.rank == 0:
                out = Val(out.name, out.type, out.weak, deps)
            return out
        if isinstance(node, (A.Let, A.Letrec)):
            inner = dict(env)
            for var, init in zip(node.vars, node.inits, strict=True):
                inner[var] = self.value(init, env if isinstance(node, A.Let) else inner)
            return self.value(node.body, inner)
        if isinstance(node, A.Seq):
            out: Arg = 0
            for x in node.body:
                out = self.value(x, env)
            return out
        if isinstance(node, A.Call):
            return self._call(node, env)
        raise XlaError(node.loc, f"{construct_name(node)} cannot run on XLA")

    def _literal(self, node: A.Prim, env: dict) -> Val:
        """A tensor literal whose elements are expressions: a concatenation of scalars."""
        from eshkol.passes.xla_outline import literal_elements

        shape, elems = literal_elements(node)
        vals = [as_val(self.em, self.value(e, env)) for e in elems]
        for e, v in zip(elems, vals, strict=True):
            if v.type.rank != 0:
                raise XlaError(e.loc, "tensor literal element is not a number")
        flat = [self.em.reshape(self.em.convert(v, "f64"), (1,)) for v in vals]
        if len(flat) == 1:
            cat = flat[0]
        else:
            cat = self.em.op("concatenate", flat, TType("f64", (len(flat),)), "dimension = 0 : i64")
        return self.em.reshape(cat, shape)

    def _call(self, node: A.Call, env: dict) -> Arg:
        fn = node.fn
        if isinstance(fn, A.Lambda):
            lam, name = fn, "lambda"
        elif isinstance(fn, A.GRef) and fn.name in self.functions:
            lam, name = self.functions[fn.name], fn.name
        else:
            raise XlaError(node.loc, f"call of {callee_name(fn)} cannot run on XLA (not a tensor "
                                     "procedure of this program)")
        if lam.opt or lam.rest is not None or len(lam.req) != len(node.args):
            raise XlaError(node.loc, f"{name}: wrong number of arguments (expected {len(lam.req)}, "
                                     f"got {len(node.args)})")
        if name in self.active:
            raise XlaError(node.loc, f"{name} calls itself: recursion cannot be inlined into XLA")
        args = [self.value(a, env) for a in node.args]
        inner = {k: v for k, v in env.items() if isinstance(k, str)}  # globals stay visible
        inner.update(zip(lam.req, args, strict=True))
        self.active.add(name)
        try:
            return self.value(lam.body, inner)
        finally:
            self.active.discard(name)


# Scalar arithmetic on compile-time numbers is done here (Scheme's exact semantics), so that
# `(zeros (* n 2))` has a static shape once n's value is known.
FOLD = {"%add2": lambda a, b: a + b, "%sub2": lambda a, b: a - b, "%mul2": lambda a, b: a * b,
        "%div2": lambda a, b: Fraction(a) / Fraction(b) if isinstance(a, int) and isinstance(b, int) else a / b,
        "%neg": lambda a: -a, "%min2": min, "%max2": max,
        "exact->inexact": float, "inexact": float}


def _fold(node: A.Prim, args: list):
    try:
        out = FOLD[node.name](*args)
    except (ZeroDivisionError, OverflowError, TypeError) as e:
        raise XlaError(node.loc, f"{display_name(node.name)}: {e}") from None
    if isinstance(out, Fraction) and out.denominator == 1:
        return int(out)
    return out


def as_val(em: Emitter, x: Arg) -> Val:
    """A traced value for ``x`` (numbers become weak constants)."""
    if isinstance(x, Val):
        return x
    if isinstance(x, (tuple, str)):
        raise XlaError(None, f"{x!r} is not a number or tensor")
    return em.number(float(x) if isinstance(x, Fraction) else x)


def static_constant(node: A.Node) -> int | float | tuple | str | None:
    """The compile-time value of a constant argument: a number, a symbol (as a string), or a
    list of numbers (quoted, or built by ``list`` from numbers) as a tuple; else None."""
    from eshkol.syntax.datum import Nil, Pair, Symbol

    if isinstance(node, A.Const):
        v = node.value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return v
        if isinstance(v, Symbol):
            return v.name
        if isinstance(v, (Pair, Nil)):
            items = []
            while isinstance(v, Pair):
                if not isinstance(v.car, (int, float)) or isinstance(v.car, bool):
                    return None
                items.append(v.car)
                v = v.cdr
            return tuple(items) if isinstance(v, Nil) else None
        return None
    if isinstance(node, A.Prim) and node.name == "list":
        items = [static_constant(a) for a in node.args]
        if all(isinstance(i, (int, float)) for i in items):
            return tuple(items)
    return None


def display_name(prim_name: str) -> str:
    """How a primitive is named to users (the binary forms by their operator)."""
    return {"%add2": "+", "%sub2": "-", "%mul2": "*", "%div2": "/", "%neg": "-", "%recip": "/",
            "%min2": "min", "%max2": "max"}.get(prim_name, prim_name)


def callee_name(fn: A.Node) -> str:
    if isinstance(fn, (A.GRef,)):
        return fn.name
    if isinstance(fn, A.LRef):
        return fn.var.name
    if isinstance(fn, A.PrimRef):
        return fn.name
    return "a computed procedure"


def construct_name(node: A.Node) -> str:
    """How an unsupported core form is named in diagnostics."""
    return {A.If: "a conditional (if/cond/when/and/or)", A.LSet: "set!", A.GSet: "define/set!",
            A.Lambda: "a procedure value (lambda)", A.PrimRef: "a primitive used as a value",
            A.Seq: "begin"}.get(type(node), type(node).__name__)


@dataclass(frozen=True)
class ArgSpec:
    """The run-time (or statically known) type of one free variable of a region: a tensor
    (``weak`` False) or a Scheme number (a weak scalar); ``value`` when the region is
    specialised on the number itself (NeedStatic)."""

    type: TType
    weak: bool = False
    value: int | float | str | None = None  # str: a symbol input (a dtype name)

    def key(self) -> str:
        return ("s" if self.weak else "t") + str(self.type) + ("" if self.value is None else f"={self.value!r}")


def _ssa_name(name: str, taken: set[str]) -> str:
    base = "".join(c if c.isalnum() or c in "_$." else "_" for c in name) or "arg"
    if base[0].isdigit():
        base = "_" + base
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return "%" + out


def region_function(region, specs: list[ArgSpec], name: str = "main", indent: str = "  ") -> tuple[str, Val]:
    """The ``func.func`` text of ``region`` specialised to ``specs`` (one per free variable),
    and its result."""
    em = Emitter(indent=indent + "  ")
    env: dict = {}
    params, taken = [], set()
    for i, (ref, spec) in enumerate(zip(region.free, specs, strict=True)):
        pname = _ssa_name(ref if isinstance(ref, str) else ref.name, taken)
        params.append(f"{pname}: {spec.type}")
        env[ref] = spec.value if spec.value is not None else \
            Val(pname, spec.type, spec.weak, frozenset([i]) if spec.weak else frozenset())
    tr = Tracer(em, region.functions)
    result = as_val(em, tr.value(region.body, env))
    if result.type.dtype == "i1":
        result = em.convert(result, "i64")
    head = f"{indent}func.func public @{name}({', '.join(params)}) -> {result.type} {{"
    body = "\n".join(em.lines)
    ret = f'{indent}  "func.return"({result.name}) : ({result.type}) -> ()'
    return "\n".join(x for x in (head, body, ret, indent + "}") if x), result


def region_module(region, specs: list[ArgSpec]) -> tuple[str, Val]:
    """A StableHLO module (text) whose ``main`` computes ``region`` for ``specs``, and the
    result's type."""
    fn, result = region_function(region, specs)
    return ("module @eshkol_xla attributes {mhlo.num_partitions = 1 : i32, "
            "mhlo.num_replicas = 1 : i32} {\n" + fn + "\n}\n"), result


def result_spec(region, specs: list[ArgSpec]) -> ArgSpec | None:
    """The type of ``region``'s result on inputs of types ``specs``; None when it cannot be
    lowered for them (or needs inputs specialised on their values)."""
    try:
        _, result = region_function(region, specs)
    except (XlaError, NeedStatic):
        return None
    return ArgSpec(result.type, result.type.rank == 0)

