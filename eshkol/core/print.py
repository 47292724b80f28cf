"""Print core forms (eshkol.core.ast) back as S-expressions (``eshkol-translate --target=expanded``).

Lexical variables print under their source names; when distinct variables share a name they are
told apart with a suffix (``tmp``, ``tmp.1``, ...), numbered in order of appearance.
"""

from __future__ import annotations

from typing import Any

from eshkol.core import ast as A
from eshkol.syntax.datum import NIL, UNSPECIFIED, Pair, Symbol, Vector
from eshkol.syntax.printer import write_string


class _Namer:
    def __init__(self) -> None:
        self.names: dict[A.Var, str] = {}
        self.counts: dict[str, int] = {}

    def __call__(self, v: A.Var) -> str:
        n = self.names.get(v)
        if n is None:
            k = self.counts.get(v.name, 0)
            self.counts[v.name] = k + 1
            n = write_string(Symbol(v.name)) + ("" if k == 0 else f".{k}")
            self.names[v] = n
        return n


def _const(x: Any) -> str:
    if x is UNSPECIFIED:
        return "(void)"
    if isinstance(x, (Pair, Symbol, Vector)) or x is NIL:
        return "'" + write_string(x)
    return write_string(x)


def _sym(name: str) -> str:
    return write_string(Symbol(name))


def print_node(node: A.Node, indent: int = 0, namer: _Namer | None = None) -> str:
    """One core form as an S-expression, indented (nested forms on their own lines)."""
    namer = namer or _Namer()
    out: list[str] = []
    _emit(node, indent, namer, out)
    return "".join(out)


def _flat(node: A.Node, namer: _Namer) -> str | None:
    """A short one-line rendering of simple nodes, else None."""
    t = type(node)
    if t is A.Const:
        return _const(node.value)
    if t is A.LRef:
        return namer(node.var)
    if t is A.GRef or t is A.PrimRef:
        return _sym(node.name)
    if t is A.GSet or t is A.LSet:
        v = _flat(node.value, namer)
        if v is None:
            return None
        head = ("define" if node.define else "set!") if t is A.GSet else "set!"
        name = _sym(node.name) if t is A.GSet else namer(node.var)
        text = f"({head} {name} {v})"
        return text if len(text) <= 72 else None
    if t in (A.Call, A.Prim):
        head = _flat(node.fn, namer) if t is A.Call else _sym(node.name)
        if head is None:
            return None
        parts = [head]
        for a in node.args:
            s = _flat(a, namer)
            if s is None:
                return None
            parts.append(s)
        text = "(" + " ".join(parts) + ")"
        return text if len(text) <= 72 else None
    return None


def _emit(node: A.Node, ind: int, namer: _Namer, out: list[str]) -> None:
    flat = _flat(node, namer)
    if flat is not None:
        out.append(flat)
        return
    pad = "\n" + " " * (ind + 2)
    t = type(node)
    if t is A.LSet or t is A.GSet:
        if t is A.GSet:
            head = "define" if node.define else "set!"
            name = _sym(node.name)
        else:
            head, name = "set!", namer(node.var)
        out.append(f"({head} {name}")
        _sub(node.value, ind, namer, out, pad)
        out.append(")")
    elif t is A.Lambda:
        ps = [namer(v) for v in node.req]
        for v, d in node.opt:
            ps.append(f"({namer(v)} {print_node(d, ind + 4, namer)})")
        if node.rest is not None:
            params = namer(node.rest) if not ps else "(" + " ".join(ps) + " . " + namer(node.rest) + ")"
        else:
            params = "(" + " ".join(ps) + ")"
        out.append(f"(lambda {params}")
        _sub(node.body, ind, namer, out, pad)
        out.append(")")
    elif t is A.If:
        out.append("(if ")
        _emit(node.test, ind + 4, namer, out)
        _sub(node.then, ind + 2, namer, out, "\n" + " " * (ind + 4))
        _sub(node.else_, ind + 2, namer, out, "\n" + " " * (ind + 4))
        out.append(")")
    elif t is A.Seq:
        out.append("(begin")
        for x in node.body:
            _sub(x, ind, namer, out, pad)
        out.append(")")
    elif t is A.Let or t is A.Letrec:
        out.append("(let (" if t is A.Let else "(letrec* (")
        first = True
        col = ind + (6 if t is A.Let else 10)
        for v, init in zip(node.vars, node.inits, strict=False):
            if not first:
                out.append("\n" + " " * col)
            first = False
            name = namer(v)
            out.append(f"({name} ")
            _emit(init, col + len(name) + 2, namer, out)
            out.append(")")
        out.append(")")
        _sub(node.body, ind, namer, out, pad)
        out.append(")")
    elif t is A.Call or t is A.Prim:
        out.append("(")
        if t is A.Call:
            _emit(node.fn, ind + 1, namer, out)
        else:
            out.append(_sym(node.name))
        for a in node.args:
            _sub(a, ind, namer, out, pad)
        out.append(")")
    else:
        out.append(f"#<{t.__name__}>")


def _sub(node: A.Node, ind: int, namer: _Namer, out: list[str], pad: str) -> None:
    out.append(pad)
    _emit(node, len(pad) - 1, namer, out)


def print_program(program: A.Program) -> str:
    """The whole program, one top-level form per paragraph."""
    namer = _Namer()
    globals_ = set(program.globals)
    stack: list[Any] = list(program.body)
    while stack:  # names of globals and free references are taken: locals get suffixes
        x = stack.pop()
        if isinstance(x, (A.GRef, A.GSet)):
            globals_.add(x.name)
        if isinstance(x, A.Node):
            for v in vars(x).values():
                if isinstance(v, A.Node):
                    stack.append(v)
                elif isinstance(v, list):
                    for y in v:
                        stack.extend(y if isinstance(y, tuple) else (y,))
    for g in globals_:
        namer.counts[g] = 1
    return "\n".join(print_node(n, 0, namer) for n in program.body) + "\n"
