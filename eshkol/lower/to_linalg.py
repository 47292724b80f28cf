"""Fused tensor expressions → kernels of linalg.generic on tensors (``eshkol-tensor-to-linalg``).

Input: ``eshkol.tensor_fused`` ops (made by passes/fuse_tensors.py) whose ``expr`` attribute
is a prefix expression over the op's operands, e.g. ``(tensor-add (tensor-mul $0 $1)
(tensor-exp $2))``, and whose ``kinds`` says which operands are tensors (``t``) and which
scalars (``s``). Output: for each such op and each float dtype, a ``func.func`` in the nested
module ``@esk_kernels``, one linalg.generic per primitive (fusion is the next stage's job):

    func.func @K_f64(%out: memref<?xf64>, %in0: memref<?xf64>, ..., %s0: f64)

The operands are the contiguous data of same-shape tensors flattened to one dimension (the
run-time guard checks that), so every kernel is 1-D; a reduction root writes its value into a
0-d accumulator memref instead of an output array. ``eshkol.kernel_abi`` records the argument
roles for the C entry (lower/kernel_abi.py): o(ut), i(n), s(calar), a(ccumulator).

The scalar semantics of each primitive live in the tables below (the 'linalg' rules of the
registry): a line of arith/math in terms of the operands ``{0}``, ``{1}`` and the type ``{T}``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mlir import ir

from eshkol.dialect import primitives
from eshkol.lower.cpu import KERNELS_MODULE, elementwise_tile

# name → (arity, body). Unary bodies use {0}; binary {0} {1}.
ELEMENTWISE: dict[str, tuple[int, str]] = {
    "tensor-add": (2, "arith.addf {0}, {1} : {T}"),
    "tensor-sub": (2, "arith.subf {0}, {1} : {T}"),
    "tensor-mul": (2, "arith.mulf {0}, {1} : {T}"),
    "tensor-div": (2, "arith.divf {0}, {1} : {T}"),
    "tensor-scale": (2, "arith.mulf {0}, {1} : {T}"),
    "tensor-pow": (2, "math.powf {0}, {1} : {T}"),
    "tensor-neg": (1, "arith.negf {0} : {T}"),
    "tensor-abs": (1, "math.absf {0} : {T}"),
    "tensor-sqrt": (1, "math.sqrt {0} : {T}"),
    "tensor-exp": (1, "math.exp {0} : {T}"),
    "tensor-log": (1, "math.log {0} : {T}"),
    "tensor-square": (1, "arith.mulf {0}, {0} : {T}"),
    "tensor-sin": (1, "math.sin {0} : {T}"),
    "tensor-cos": (1, "math.cos {0} : {T}"),
    "tensor-tan": (1, "math.tan {0} : {T}"),
    "tensor-tanh": (1, "math.tanh {0} : {T}"),
}

# Whole-tensor reductions (called with the tensor alone): name → (identity, combine).
# maximumf/minimumf propagate NaN, as the runtime's tensor-max/tensor-min do (and numpy).
# Only f64 kernels are used for reductions: the runtime reduces f32 tensors in double.
REDUCE: dict[str, tuple[str, str]] = {
    "tensor-sum": ("0.0", "arith.addf {0}, {1} : {T}"),
    "tensor-max": ("0xFFF0000000000000", "arith.maximumf {0}, {1} : {T}"),
    "tensor-min": ("0x7FF0000000000000", "arith.minimumf {0}, {1} : {T}"),
}

DTYPES = ("f64", "f32")
_F32_HEX = {"0xFFF0000000000000": "0xFF800000", "0x7FF0000000000000": "0x7F800000"}


def _register_rules() -> None:
    """Record the tables as the registry's 'linalg' rules of the primitives that exist."""
    for name, r in list(ELEMENTWISE.items()) + list(REDUCE.items()):
        p = primitives.lookup(name)
        if p is not None:
            p.rules["linalg"] = r


_register_rules()


# ---- expressions -------------------------------------------------------------------------------

Expr = tuple  # ("arg", i) | (prim name, child, ...)


def parse_expr(text: str) -> Expr:
    """Parse ``(name e ...)`` / ``$i`` prefix text."""
    toks = text.replace("(", " ( ").replace(")", " ) ").split()
    pos = 0

    def read() -> Expr:
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "(":
            name = toks[pos]
            pos += 1
            kids = []
            while toks[pos] != ")":
                kids.append(read())
            pos += 1
            return (name, *kids)
        if t.startswith("$"):
            return ("arg", int(t[1:]))
        raise ValueError(f"bad fused expression token {t!r}")

    e = read()
    if pos != len(toks):
        raise ValueError("trailing tokens in fused expression")
    return e


def expr_text(e: Expr) -> str:
    """The prefix text of an expression (inverse of parse_expr)."""
    if e[0] == "arg":
        return f"${e[1]}"
    return "(" + " ".join([e[0], *(expr_text(k) for k in e[1:])]) + ")"


def is_reduction(e: Expr) -> bool:
    """Whether the expression's root reduces to a scalar."""
    return e[0] in REDUCE


def kernel_name(expr: str, kinds: str) -> str:
    """Symbol base of the kernels for ``expr`` (same expression, same kernels)."""
    return "esk_k_" + hashlib.sha256(f"{expr}|{kinds}".encode()).hexdigest()[:12]


# ---- kernel text -------------------------------------------------------------------------------

@dataclass
class _Gen:
    T: str
    kinds: str
    tile: int
    lines: list[str]
    n: int = 0

    def tmp(self) -> str:
        self.n += 1
        return f"%v{self.n}"

    def emit(self, s: str) -> None:
        self.lines.append("    " + s)

    def value(self, e: Expr) -> tuple[str, bool]:
        """(SSA name, is a tensor) of ``e``: tensors become linalg.generic results."""
        if e[0] == "arg":
            i = e[1]
            return (f"%t{i}", True) if self.kinds[i] == "t" else (f"%s{i}", False)
        arity, body = ELEMENTWISE[e[0]]
        kids = [self.value(k) for k in e[1:]]
        tensors = [k for k, is_t in kids if is_t]
        T = self.T
        tt = f"tensor<?x{T}>"
        out = self.tmp()
        empty = self.tmp()
        self.emit(f"{empty} = tensor.empty(%n) : {tt}")
        maps = ", ".join(["#id"] * (len(tensors) + 1))
        ins = ", ".join(tensors)
        params = ", ".join(f"%x{j}: {T}" for j in range(len(tensors)))
        # Operands in the body: tensors by their block argument, scalars captured from above.
        names, j = [], 0
        for k, is_t in kids:
            if is_t:
                names.append(f"%x{j}")
                j += 1
            else:
                names.append(k)
        self.emit(f"{out} = linalg.generic {{indexing_maps = [{maps}], iterator_types = [\"parallel\"]}} "
                  f"ins({ins} : {', '.join([tt] * len(tensors))}) "
                  f"outs({empty} : {tt}) {{")
        self.lines.append(f"    ^bb0({params}, %o: {T}):")
        self.emit(f"  %r = {body.format(*names, T=T)}")
        self.emit(f"  linalg.yield %r : {T}")
        self.emit(f"}} -> {tt}")
        return out, True


def kernel_func(expr: Expr, kinds: str, dtype: str, name: str) -> str:
    """The text of one kernel function (``dtype`` 'f64' or 'f32')."""
    T = dtype
    tile = elementwise_tile(8 if T == "f64" else 4)
    mt = f"memref<?x{T}>"
    g = _Gen(T, kinds, tile, [])
    red = is_reduction(expr)
    params, abi = [], []
    if not red:
        params.append(f"%out: {mt}")
        abi.append("o")
    for i, k in enumerate(kinds):
        params.append(f"%in{i}: {mt}" if k == "t" else f"%s{i}: {T}")
        abi.append("i" if k == "t" else "s")
    if red:
        params.append(f"%acc: memref<{T}>")
        abi.append("a")
    first = kinds.index("t")
    for i, k in enumerate(kinds):
        if k == "t":
            g.emit(f"%t{i} = bufferization.to_tensor %in{i} restrict : {mt} to tensor<?x{T}>")
    g.emit("%c0 = arith.constant 0 : index")
    g.emit(f"%n = tensor.dim %t{first}, %c0 : tensor<?x{T}>")
    if red:
        identity, combine = REDUCE[expr[0]]
        if T == "f32":
            identity = _F32_HEX.get(identity, identity)
        src, _ = g.value(expr[1])
        g.emit(f"%id = arith.constant {identity} : {T}")
        g.emit(f"%e0 = tensor.empty() : tensor<{T}>")
        g.emit(f"%init = linalg.fill ins(%id : {T}) outs(%e0 : tensor<{T}>) -> tensor<{T}>")
        g.emit(f"%res = linalg.generic {{indexing_maps = [#id, #scalar], iterator_types = [\"reduction\"]}} "
               f"ins({src} : tensor<?x{T}>) outs(%init : tensor<{T}>) {{")
        g.lines.append(f"    ^bb0(%x: {T}, %a: {T}):")
        g.emit(f"  %r = {combine.format('%x', '%a', T=T)}")
        g.emit(f"  linalg.yield %r : {T}")
        g.emit(f"}} -> tensor<{T}>")
        g.emit(f"bufferization.materialize_in_destination %res in restrict writable %acc : "
               f"(tensor<{T}>, memref<{T}>) -> ()")
    else:
        res, _ = g.value(expr)
        g.emit(f"bufferization.materialize_in_destination {res} in restrict writable %out : "
               f"(tensor<?x{T}>, {mt}) -> ()")
    g.emit("return")
    head = (f"  func.func @{name}({', '.join(params)}) attributes "
            f"{{eshkol.kernel_abi = \"{''.join(abi)}\", eshkol.tile = {tile} : i64}} {{")
    return "\n".join([head, *g.lines, "  }"])


MAPS = "#id = affine_map<(d0) -> (d0)>\n#scalar = affine_map<(d0) -> ()>\n"


def kernels_text(kernels: list[tuple[str, str, str]]) -> str:
    """A module ``@esk_kernels`` holding the f64 and f32 kernels of (name, expr, kinds)."""
    funcs = []
    for name, expr, kinds in kernels:
        e = parse_expr(expr)
        for dt in DTYPES:
            if dt == "f32" and is_reduction(e):
                continue  # the runtime reduces f32 tensors in double: f64 kernels only
            funcs.append(kernel_func(e, kinds, dt, f"{name}_{dt}"))
    return MAPS + f"module {{\nmodule @{KERNELS_MODULE} {{\n" + "\n".join(funcs) + "\n}\n}\n"


def kernels_module(outer: ir.Operation) -> ir.Operation | None:
    """The nested kernels module of ``outer``, if any."""
    for op in outer.regions[0].blocks[0].operations:
        if op.operation.name == "builtin.module" and "sym_name" in op.attributes and \
                ir.StringAttr(op.attributes["sym_name"]).value == KERNELS_MODULE:
            return op.operation
    return None


def run(module: ir.Operation) -> None:
    """Add the kernels of every ``eshkol.tensor_fused`` op to the nested kernels module."""
    from eshkol.dialect import ops

    wanted: dict[str, tuple[str, str, str]] = {}

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == ops.TENSOR_FUSED:
            name = ir.StringAttr(op.attributes["kernel"]).value
            wanted.setdefault(name, (name, ir.StringAttr(op.attributes["expr"]).value,
                                     ir.StringAttr(op.attributes["kinds"]).value))
        return ir.WalkResult.ADVANCE

    module.walk(visit)
    if not wanted:
        return
    existing = kernels_module(module)
    have = set()
    if existing is not None:
        for f in existing.regions[0].blocks[0].operations:
            have.add(ir.StringAttr(f.attributes["sym_name"]).value.rsplit("_", 1)[0])
    todo = [k for n, k in sorted(wanted.items()) if n not in have]
    if not todo:
        return
    parsed = ir.Module.parse(kernels_text(todo))
    new = parsed.body.operations[0].operation
    body = module.regions[0].blocks[0]
    if existing is None:
        new.move_before(body.operations[0])
    else:
        dest = existing.regions[0].blocks[0]
        for f in list(new.regions[0].blocks[0].operations):
            dest.append(f.operation)
