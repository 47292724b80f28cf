"""Fuse chains of elementwise tensor primitives (and a whole-tensor reduction of such a
chain) into one ``eshkol.tensor_fused`` op guarded by the unfused code.

A chain is a tree of ``eshkol.prim`` ops whose names have a linalg rule (lower/to_linalg.py),
in one block, where every inner result has exactly one use (its parent): e.g.
``(tensor-add (tensor-mul a b) (tensor-exp c))`` or ``(tensor-sum (tensor-exp (tensor-sub x
m)))``. Its leaves become the fused op's operands; a leaf is a scalar (``s``) when it is a
numeric constant or a reduction's result, otherwise a tensor (``t``). The rewrite:

    %f = eshkol.tensor_fused {expr, kinds, kernel} (leaves)     // 'default' if guard declines
    cf.cond_br (is_default %f), ^unfused, ^join(%f)
  ^unfused:  the original primitives, unchanged;  cf.br ^join(%root)
  ^join(%r): the rest of the block, using %r

so semantics never change: any operand the kernels cannot take (another dtype, a
non-contiguous view, a broadcast, a non-number) runs the original calls with their original
source locations. Between the chain's first op and its root only constants, variable reads
and other chain ops may stand (moving the chain past anything else could reorder effects).
Single primitives are left alone: untyped code already calls generated kernels for them.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import cf

from eshkol.dialect import ops
from eshkol.lower.to_linalg import ELEMENTWISE, REDUCE, expr_text, kernel_name

# Ops that may stand between chain ops: no effects (reads of variables fail only for an
# unbound global, which the chain cannot observe).
_MOVABLE_PAST = {ops.CONST_INT, ops.CONST_FLOAT, ops.CONST_IMM, ops.CONST_EXACT, ops.GLOBAL_REF,
                 ops.CLOSURE_REF, ops.UNBOX, ops.PRIM_REF}


def _prim_name(op: ir.Operation | None) -> str | None:
    if op is None or op.name != ops.PRIM:
        return None
    return ir.StringAttr(op.attributes["name"]).value


def _defining_op(v: ir.Value) -> ir.Operation | None:
    owner = v.owner
    if isinstance(owner, ir.Block):
        return None
    return owner.operation if hasattr(owner, "operation") else owner


def _elementwise(op: ir.Operation | None) -> bool:
    name = _prim_name(op)
    return name in ELEMENTWISE and len(op.operands) == ELEMENTWISE[name][0]


def _reduction(op: ir.Operation | None) -> bool:
    return _prim_name(op) in REDUCE and len(op.operands) == 1


def _single_use(v: ir.Value) -> bool:
    uses = list(v.uses)
    return len(uses) == 1


def _is_scalar_leaf(v: ir.Value, scalars: list[ir.Value]) -> bool:
    """Known to be a number: a numeric constant, a reduction's result (fused or not)."""
    if any(v == s for s in scalars):
        return True
    op = _defining_op(v)
    if op is None:
        return False
    return op.name in (ops.CONST_INT, ops.CONST_FLOAT) or _reduction(op)


class _Tree:
    """A chain being collected: its ops (in block order), leaves and expression."""

    def __init__(self, block: ir.Block, scalars: list[ir.Value]) -> None:
        self.block = block
        self.scalars = scalars
        self.ops: list[ir.Operation] = []
        self.leaves: list[ir.Value] = []
        self.kinds: list[str] = []

    def leaf(self, v: ir.Value) -> tuple:
        for i, lv in enumerate(self.leaves):
            if lv == v:
                return ("arg", i)
        self.leaves.append(v)
        self.kinds.append("s" if _is_scalar_leaf(v, self.scalars) else "t")
        return ("arg", len(self.leaves) - 1)

    def _inner(self, v: ir.Value) -> ir.Operation | None:
        """The op defining ``v`` when it can join the chain."""
        d = _defining_op(v)
        return d if _elementwise(d) and d.block == self.block and _single_use(v) else None

    def _has_tensor(self, op: ir.Operation) -> bool:
        """Whether the subtree at ``op`` reaches a tensor leaf (a subtree of numbers alone
        stays a primitive call: its result's dtype follows the runtime's rules for numbers)."""
        return any(self._has_tensor(d) if (d := self._inner(v)) is not None
                   else not _is_scalar_leaf(v, self.scalars) for v in op.operands)

    def build(self, op: ir.Operation) -> tuple:
        self.ops.append(op)
        kids = []
        for v in op.operands:
            d = self._inner(v)
            kids.append(self.build(d) if d is not None and self._has_tensor(d) else self.leaf(v))
        return (_prim_name(op), *kids)


def _has_tensor(e: tuple, kinds: list[str]) -> bool:
    if e[0] == "arg":
        return kinds[e[1]] == "t"
    return any(_has_tensor(k, kinds) for k in e[1:])


def _contiguous_ok(tree: _Tree, root: ir.Operation) -> bool:
    """Only chain ops and effect-free ops stand between the chain's first op and its root."""
    order = [o.operation for o in tree.block.operations]
    first = min(order.index(o) for o in tree.ops)
    last = order.index(root)
    return all(o in tree.ops or o.name in _MOVABLE_PAST for o in order[first:last])


def _candidate_roots(block: ir.Block) -> list[ir.Operation]:
    roots = []
    for o in block.operations:
        op = o.operation
        if _reduction(op):
            d = _defining_op(op.operands[0])
            if _elementwise(d) and d.block == block and _single_use(op.operands[0]):
                roots.append(op)
        elif _elementwise(op):
            uses = list(op.result.uses)
            parent = uses[0].owner if len(uses) == 1 else None
            parent = parent.operation if parent is not None and not isinstance(parent, ir.Block) else None
            if parent is not None and parent.block == block and (_elementwise(parent) or _reduction(parent)):
                continue  # inside a larger chain
            roots.append(op)
    return roots


def _fuse(root: ir.Operation, block: ir.Block, slow_blocks: list[ir.Block],
          scalars: list[ir.Value]) -> bool:
    tree = _Tree(block, scalars)
    expr = tree.build(root)
    if len(tree.ops) < 2 or not _has_tensor(expr, tree.kinds):
        return False
    order = [o.operation for o in block.operations]
    tree.ops.sort(key=order.index)
    if not _contiguous_ok(tree, root):
        return False
    text = expr_text(expr)
    kinds = "".join(tree.kinds)
    # Split the block after the root: the rest goes to ^join, which receives the result.
    with root.location:
        join = block.create_after(ops.value_type())
    for o in order[order.index(root) + 1:]:
        join.append(o)
    root.result.replace_all_uses_with(join.arguments[0])
    if _reduction(root):
        scalars.append(join.arguments[0])
    slow = block.create_after()
    slow_blocks.append(slow)
    for o in tree.ops:
        slow.append(o)
    with ir.InsertionPoint(slow), root.location:
        cf.BranchOp([root.result], join)
    with ir.InsertionPoint(block), root.location:
        fused = ops.tensor_fused(text, kinds, kernel_name(text, kinds), tree.leaves, root.location)
        miss = ops.is_default(fused)
        cf.CondBranchOp(miss, [], [fused], slow, join)
    return True


def run(module: ir.Operation) -> None:
    """Fuse every chain in every function (the unfused copies are left alone)."""
    slow_blocks: list[ir.Block] = []
    scalars: list[ir.Value] = []  # results of fused reductions
    for fn in module.regions[0].blocks[0].operations:
        if fn.operation.name != "func.func":
            continue
        changed = True
        while changed:  # a rewrite splits a block: look again from the start
            changed = False
            for block in fn.regions[0].blocks:
                if any(block == b for b in slow_blocks):
                    continue
                if any(_fuse(root, block, slow_blocks, scalars) for root in _candidate_roots(block)):
                    changed = True
                    break
