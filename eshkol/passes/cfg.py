"""Walking the control-flow graph of a function of the eshkol dialect (cf.br / cf.cond_br
between the blocks of one region): shared by the passes that run data-flow analyses."""

from __future__ import annotations

from collections.abc import Iterator

from mlir import ir


def successors(b: ir.Block) -> list[ir.Block]:
    """The successor blocks of ``b``'s terminator."""
    ops = list(b.operations)
    return list(ops[-1].operation.successors) if ops else []


def reverse_postorder(entry: ir.Block, stop: set = frozenset()) -> list[ir.Block]:
    """The blocks reachable from ``entry`` (not through ``stop``), each after its dominators."""
    seen = {entry} | set(stop)
    post: list[ir.Block] = []
    stack = [(entry, iter(successors(entry)))]
    while stack:
        b, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            post.append(b)
            stack.pop()
        elif nxt not in seen:
            seen.add(nxt)
            stack.append((nxt, iter(successors(nxt))))
    return post[::-1]


def branch_edges(op) -> list[tuple[ir.Block, list[ir.Value]]]:
    """(successor, operands passed) of a cf.br / cf.cond_br."""
    if op.name == "cf.br":
        return [(op.successors[0], list(op.operands))]
    view = op.opview
    return [(op.successors[0], list(view.trueDestOperands)),
            (op.successors[1], list(view.falseDestOperands))]


def edge_bindings(op) -> Iterator[tuple[ir.Value, ir.Value]]:
    """(block argument, value it receives) for every edge of a cf.br / cf.cond_br."""
    for succ, args in branch_edges(op):
        yield from zip(succ.arguments, args, strict=True)
