"""Emit core forms as an MLIR module in the eshkol dialect (plus func and cf).

Each Lambda becomes a ``func.func`` whose block arguments are the closure itself followed by
the parameters; control flow is explicit (``cf`` branches), so a call in tail position is an
``eshkol.tail_call`` directly followed by ``func.return``. The top-level forms become the
function marked ``eshkol.entry``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from mlir import ir
from mlir.dialects import cf, func

from eshkol.core import ast as A
from eshkol.core.closure import analyze, letrec_knot, stable_procedures, tail_calls_self
from eshkol.core.contify import loop_lambda
from eshkol.dialect import ops
from eshkol.syntax.datum import (
    EOF,
    Bytevector,
    Char,
    Nil,
    Pair,
    Symbol,
    Unspecified,
    Vector,
)
from eshkol.syntax.diagnostics import EshkolError, Loc

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
ENTRY = "esk_toplevel"
TOPLEVEL_CHUNK = 8  # top-level forms per function

# How a variable is reached inside the function being emitted.
#   ("ssa", value)      a plain SSA value
#   ("box", value)      a box holding the variable (assignment conversion)
#   ("slot", index, boxed)  captured slot of the current closure
#   ("self",)           the current closure itself (letrec self-reference)
Binding = tuple


class ModuleEmitter:
    """Builds one module; owns function naming and hoisted quoted constants."""

    def __init__(self, program: A.Program) -> None:
        self.program = program
        self.module = ir.Module.create()
        self.vt = ops.value_type()
        self.counter = 0
        self.quoted: list[tuple[str, Any, Loc]] = []
        self.globals = list(program.globals)
        self.stable_globals = stable_procedures(program)

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}.{self.counter}"

    def quote_global(self, value: Any, loc: Loc) -> str:
        """A hidden global that holds a compound quoted datum, built once at start-up."""
        name = self.fresh("%quote")
        self.globals.append(name)
        self.quoted.append((name, value, loc))
        return name


class FunctionEmitter:
    """Emits the body of one func.func."""

    def __init__(self, mod: ModuleEmitter, fn: func.FuncOp, env: dict[A.Var, Binding],
                 lambda_: A.Lambda | None) -> None:
        self.mod = mod
        self.fn = fn
        self.env = env
        self.vt = mod.vt
        self.in_lambda = lambda_ is not None
        self.block = fn.add_entry_block() if lambda_ is None else fn.body.blocks[0]
        self.self_value: ir.Value | None = None if lambda_ is None else self.block.arguments[0]
        # How the procedure names itself: a letrec variable or a global defined once and never
        # assigned (so the name always means this closure inside its own body).
        self.self_var: A.Var | None = None
        self.self_global: str | None = None
        # Set when tail calls of the procedure to itself become jumps to this block (a loop).
        self.loop_header: ir.Block | None = None
        # Loops compiled into this function (core/contify.py): their variable → header block;
        # and where a value in tail position goes while inside one that is not itself in tail
        # position (None: the function returns it).
        self.loops: dict[A.Var, ir.Block] = {}
        self.exit: ir.Block | None = None

    # ---- helpers -------------------------------------------------------------------------

    def ip(self) -> ir.InsertionPoint:
        return ir.InsertionPoint(self.block)

    def new_block(self, nargs: int = 0) -> ir.Block:
        return self.fn.body.blocks.append(*([self.vt] * nargs))

    def ret(self, v: ir.Value, loc: Loc) -> None:
        """Deliver ``v`` from tail position: return it, or jump to the enclosing loop's exit."""
        with self.ip():
            if self.exit is None:
                func.ReturnOp([v], loc=ops.location(loc))
            else:
                cf.BranchOp([v], self.exit, loc=ops.location(loc))

    def emit_body(self, node: A.Node, tail: bool) -> None:
        """Emit ``node`` as the whole body: return its value."""
        v = self.value(node, tail=tail and self.in_lambda)
        if v is not None:
            with self.ip():
                func.ReturnOp([v], loc=ops.location(node.loc))

    # ---- expressions ---------------------------------------------------------------------

    def value(self, node: A.Node, tail: bool = False) -> ir.Value | None:
        """Emit ``node``; returns its value, or None when ``tail`` and the block was closed."""
        method = getattr(self, "_" + type(node).__name__)
        return method(node, tail)

    def _Const(self, n: A.Const, tail: bool) -> ir.Value:
        v = n.value
        if isinstance(v, (Pair, Vector)):
            name = self.mod.quote_global(v, n.loc)
            with self.ip():
                return ops.global_ref(name, n.loc)
        with self.ip():
            return self.datum(v, n.loc)

    def datum(self, v: Any, loc: Loc) -> ir.Value:
        """Build a datum at the current insertion point (compound ones from cons/vector)."""
        if isinstance(v, bool):
            return ops.const_imm("bool", int(v), loc)
        if isinstance(v, int):
            if not INT64_MIN <= v <= INT64_MAX:
                return ops.const_exact(str(v), loc)
            return ops.const_int(v, loc)
        if isinstance(v, float):
            return ops.const_float(v, loc)
        if isinstance(v, Char):
            return ops.const_imm("char", ord(v.value), loc)
        if isinstance(v, str):
            return ops.const_string(v, loc)
        if isinstance(v, Symbol):
            return ops.const_symbol(v.name, loc)
        if isinstance(v, Nil):
            return ops.const_imm("nil", 0, loc)
        if isinstance(v, Unspecified):
            return ops.const_imm("void", 0, loc)
        if isinstance(v, Pair):
            items, d = [], v
            while isinstance(d, Pair):
                items.append(d.car)
                d = d.cdr
            out = self.datum(d, loc)
            for x in reversed(items):
                out = ops.prim("cons", [self.datum(x, loc), out], loc)
            return out
        if isinstance(v, Vector):
            return ops.prim("vector", [self.datum(x, loc) for x in v.items], loc)
        if isinstance(v, Fraction):
            return ops.const_exact(f"{v.numerator}/{v.denominator}", loc)
        if v is EOF or isinstance(v, Bytevector):
            raise EshkolError(loc, f"{type(v).__name__} literals are not implemented yet")
        raise EshkolError(loc, f"cannot compile constant {v!r}")

    def _LRef(self, n: A.LRef, tail: bool) -> ir.Value:
        with self.ip():
            return self.read_var(n.var, n.loc)

    def read_var(self, var: A.Var, loc: Loc) -> ir.Value:
        b = self.env[var]
        kind = b[0]
        if kind == "ssa":
            return b[1]
        if kind == "box":
            return ops.unbox(b[1], loc)
        if kind == "self":
            return self.self_value
        v = ops.closure_ref(self.self_value, b[1], loc)
        return ops.unbox(v, loc) if b[2] else v

    def _var_box(self, var: A.Var, loc: Loc) -> ir.Value:
        """The box of an assigned variable (which lives in a box or a captured slot)."""
        b = self.env[var]
        if b[0] == "box":
            return b[1]
        assert b[0] == "slot" and b[2]
        return ops.closure_ref(self.self_value, b[1], loc)

    def _GRef(self, n: A.GRef, tail: bool) -> ir.Value:
        with self.ip():
            return ops.global_ref(n.name, n.loc)

    def _PrimRef(self, n: A.PrimRef, tail: bool) -> ir.Value:
        with self.ip():
            return ops.prim_ref(n.name, n.loc)

    def _LSet(self, n: A.LSet, tail: bool) -> ir.Value:
        v = self.value(n.value)
        with self.ip():
            ops.set_box(self._var_box(n.var, n.loc), v, n.loc)
            return ops.const_imm("void", 0, n.loc)

    def _GSet(self, n: A.GSet, tail: bool) -> ir.Value:
        if n.define and isinstance(n.value, A.Lambda) and n.name in self.mod.stable_globals:
            v = self.make_lambda(n.value, self_global=n.name)
        else:
            v = self.value(n.value)
        with self.ip():
            ops.global_set(n.name, v, n.define, n.loc)
            return ops.const_imm("void", 0, n.loc)

    def _Seq(self, n: A.Seq, tail: bool) -> ir.Value | None:
        for x in n.body[:-1]:
            self.value(x)
        return self.value(n.body[-1], tail)

    def _If(self, n: A.If, tail: bool) -> ir.Value | None:
        test = self.value(n.test)
        with self.ip():
            cond = ops.truthy(test, n.loc)
        then_b, else_b = self.new_block(), self.new_block()
        with self.ip():
            cf.CondBranchOp(cond, [], [], then_b, else_b, loc=ops.location(n.loc))
        if tail:
            for blk, arm in ((then_b, n.then), (else_b, n.else_)):
                self.block = blk
                v = self.value(arm, tail=True)
                if v is not None:
                    self.ret(v, arm.loc)
            return None
        join = self.new_block(1)
        for blk, arm in ((then_b, n.then), (else_b, n.else_)):
            self.block = blk
            v = self.value(arm)
            with self.ip():
                cf.BranchOp([v], join, loc=ops.location(arm.loc))
        self.block = join
        return join.arguments[0]

    def _bind(self, var: A.Var, v: ir.Value, loc: Loc) -> None:
        if var.assigned:
            with self.ip():
                self.env[var] = ("box", ops.box(v, loc))
        else:
            self.env[var] = ("ssa", v)

    def _Let(self, n: A.Let, tail: bool) -> ir.Value | None:
        vals = [self.value(i) for i in n.inits]
        for var, v in zip(n.vars, vals, strict=False):
            self._bind(var, v, n.loc)
        return self.value(n.body, tail)

    def _Letrec(self, n: A.Letrec, tail: bool) -> ir.Value | None:
        # Not in top-level code: it is compiled without optimisation (it runs once), and a
        # loop there stays a procedure of its own.
        lam = loop_lambda(n) if self.in_lambda else None
        if lam is not None:
            return self._loop(n.vars[0], lam, n.body, tail)
        if letrec_knot(n):
            closures = []
            for var, lam in zip(n.vars, n.inits, strict=False):
                closures.append(self.make_lambda(lam, self_var=var, knot=n.vars))
            for var, c in zip(n.vars, closures, strict=False):
                self.env[var] = ("ssa", c)
            # Tie the knot: slots that hold members of this letrec were left empty.
            with self.ip():
                for var, lam, c in zip(n.vars, n.inits, closures, strict=False):
                    for i, fv in enumerate(self._captures(lam, self_var=var)):
                        if fv in n.vars:
                            ops.closure_set(c, i, self.read_var(fv, n.loc), n.loc)
            return self.value(n.body, tail)
        with self.ip():
            void = ops.const_imm("void", 0, n.loc)
            for var in n.vars:
                var.assigned = True
                self.env[var] = ("box", ops.box(void, n.loc))
        for var, init in zip(n.vars, n.inits, strict=False):
            v = self.value(init)
            if isinstance(init, A.Lambda) and init.name is None:
                init.name = var.name
            with self.ip():
                ops.set_box(self.env[var][1], v, n.loc)
        return self.value(n.body, tail)

    def _loop(self, var: A.Var, lam: A.Lambda, body: A.Node, tail: bool) -> ir.Value | None:
        """A named let / do loop as blocks of this function: calls of ``var`` (all in tail
        position) jump to a header block whose arguments are the loop's parameters."""
        header = self.new_block(len(lam.req))
        saved_exit = self.exit
        exit_block = None
        if not tail:
            exit_block = self.exit = self.new_block(1)
        self.loops[var] = header
        v = self.value(body, tail=True)  # enters the loop (or leaves without running it)
        if v is not None:
            self.ret(v, body.loc)
        self.block = header
        for p, a in zip(lam.req, header.arguments, strict=True):
            self._bind(p, a, lam.loc)
        v = self.value(lam.body, tail=True)
        if v is not None:
            self.ret(v, lam.body.loc)
        del self.loops[var]
        self.exit = saved_exit
        if exit_block is None:
            return None
        self.block = exit_block
        return exit_block.arguments[0]

    def _Lambda(self, n: A.Lambda, tail: bool) -> ir.Value:
        return self.make_lambda(n)

    @staticmethod
    def _captures(lam: A.Lambda, self_var: A.Var | None) -> list[A.Var]:
        return [v for v in lam.free if v is not self_var]

    def make_lambda(self, lam: A.Lambda, self_var: A.Var | None = None,
                    knot: list[A.Var] = (), self_global: str | None = None) -> ir.Value:
        """Emit ``lam`` as a new func.func and build its closure here."""
        captures = self._captures(lam, self_var)
        nparams = len(lam.req) + len(lam.opt) + (1 if lam.rest else 0)
        name = self.mod.fresh(lam.name or "lambda")
        with ir.InsertionPoint(self.mod.module.body), ops.location(lam.loc):
            fn = func.FuncOp(name, ir.FunctionType.get([self.vt] * (nparams + 1), [self.vt]))
            fn.attributes[ops.ATTR_NAME] = ir.StringAttr.get(lam.name or "")
            i64 = ir.IntegerType.get_signless(64)
            fn.attributes[ops.ATTR_NREQ] = ir.IntegerAttr.get(i64, len(lam.req))
            fn.attributes[ops.ATTR_NOPT] = ir.IntegerAttr.get(i64, len(lam.opt))
            fn.attributes[ops.ATTR_REST] = ir.BoolAttr.get(lam.rest is not None)
            if any(v.annotation for v in lam.req):  # (x : Float64): passes/specialize.py
                fn.attributes[ops.ATTR_PARAM_TYPES] = ir.ArrayAttr.get(
                    [ir.StringAttr.get(v.annotation or "") for v in lam.req])
            fn.add_entry_block()
        env: dict[A.Var, Binding] = {}
        for i, v in enumerate(captures):
            env[v] = ("slot", i, v.assigned)
        if self_var is not None:
            env[self_var] = ("self",)
        inner = FunctionEmitter(self.mod, fn, env, lam)
        args = list(fn.body.blocks[0].arguments)[1:]
        inner.self_var, inner.self_global = self_var, self_global
        if (self_var is not None or self_global is not None) and not lam.opt and lam.rest is None \
                and tail_calls_self(lam.body, self_var, self_global):
            # A procedure that can name itself: its self tail calls jump back to a loop header
            # instead of calling (the entry block itself cannot be a branch target).
            header = inner.new_block(len(args))
            with inner.ip(), ops.location(lam.loc):
                cf.BranchOp(args, header)
            inner.block = header
            inner.loop_header = header
            args = list(header.arguments)
        params = lam.req + [v for v, _ in lam.opt] + ([lam.rest] if lam.rest else [])
        for var, a in zip(params[:len(lam.req)], args, strict=False):
            inner._bind(var, a, lam.loc)
        for k, (var, default) in enumerate(lam.opt):
            inner.env[var] = ("ssa", inner._default(args[len(lam.req) + k], default, lam.loc))
            if var.assigned:
                inner._bind(var, inner.env[var][1], lam.loc)
        if lam.rest is not None:
            inner._bind(lam.rest, args[-1], lam.loc)
        inner.emit_body(lam.body, tail=True)
        with self.ip():
            vals = [ops.const_imm("void", 0, lam.loc) if v in knot
                    else self._var_box(v, lam.loc) if v.assigned else self.read_var(v, lam.loc)
                    for v in captures]
            return ops.make_closure(name, vals, lam.loc)

    def _default(self, arg: ir.Value, default: A.Node, loc: Loc) -> ir.Value:
        """``arg`` if the caller passed it, else the value of ``default``."""
        with self.ip():
            missing = ops.is_default(arg, loc)
        fill, join = self.new_block(), self.new_block(1)
        with self.ip():
            cf.CondBranchOp(missing, [], [arg], fill, join, loc=ops.location(loc))
        self.block = fill
        v = self.value(default)
        with self.ip():
            cf.BranchOp([v], join, loc=ops.location(loc))
        self.block = join
        return join.arguments[0]

    def _Call(self, n: A.Call, tail: bool) -> ir.Value | None:
        is_self = (isinstance(n.fn, A.LRef) and n.fn.var is self.self_var and self.self_var is not None) \
            or (isinstance(n.fn, A.GRef) and n.fn.name == self.self_global)
        if isinstance(n.fn, A.LRef) and n.fn.var in self.loops:  # a loop's jump back
            args = [self.value(a) for a in n.args]
            with self.ip():
                cf.BranchOp(args, self.loops[n.fn.var], loc=ops.location(n.loc))
            return None
        if is_self and tail and self.exit is None and self.loop_header is not None \
                and len(n.args) == len(self.loop_header.arguments):
            args = [self.value(a) for a in n.args]
            with self.ip():
                cf.BranchOp(args, self.loop_header, loc=ops.location(n.loc))
            return None
        # A call of the procedure itself needs no lookup: the callee is this closure.
        fn = self.self_value if is_self else self.value(n.fn)
        args = [self.value(a) for a in n.args]
        if tail and self.exit is not None:  # tail of a loop, not of the function
            tail = False
            with self.ip():
                r = ops.call(fn, args, n.loc)
            self.ret(r, n.loc)
            return None
        with self.ip():
            r = ops.call(fn, args, n.loc, tail=tail)
            if not tail:
                return r
            func.ReturnOp([r], loc=ops.location(n.loc))
        return None

    def _Prim(self, n: A.Prim, tail: bool) -> ir.Value:
        args = [self.value(a) for a in n.args]
        with self.ip():
            return ops.prim(n.name, args, n.loc)


def emit_module(program: A.Program, library: str | None = None) -> ir.Module:
    """The eshkol-dialect module of ``program`` (call inside the dialect's context).

    Top-level forms are emitted in chunks, one function each (``eshkol.toplevel``): LLVM's
    optimiser is superlinear in function size, and a program of thousands of top-level forms
    must still compile quickly. The entry function builds the quoted data, then calls the
    chunks in order. With ``library``, the module is compiled as that library: its globals
    are exported for other modules (``Program.imports`` of theirs).
    """
    with ir.Location.unknown():
        me = ModuleEmitter(program)
        analyze(program)
        chunks = []
        for k in range(0, len(program.body), TOPLEVEL_CHUNK):
            forms = program.body[k:k + TOPLEVEL_CHUNK]
            name = me.fresh("toplevel")
            with ir.InsertionPoint(me.module.body):
                fn = func.FuncOp(name, ir.FunctionType.get([], [me.vt]))
                fn.attributes[ops.ATTR_TOPLEVEL] = ir.UnitAttr.get()
            FunctionEmitter(me, fn, {}, lambda_=None).emit_body(A.Seq(forms[0].loc, forms), tail=False)
            chunks.append(name)
        with ir.InsertionPoint(me.module.body):
            entry_fn = func.FuncOp(ENTRY, ir.FunctionType.get([], [me.vt]))
            entry_fn.attributes[ops.ATTR_ENTRY] = ir.UnitAttr.get()
        fe = FunctionEmitter(me, entry_fn, {}, lambda_=None)
        with fe.ip():
            for name, value, loc in me.quoted:
                ops.global_set(name, fe.datum(value, loc), True, loc)
            for name in chunks:
                func.CallOp([me.vt], ir.FlatSymbolRefAttr.get(name), [])
            func.ReturnOp([ops.const_imm("void", 0)])
        with ir.InsertionPoint.at_block_begin(me.module.body):
            for g in me.globals:
                ops.global_decl(g)
            for name, (lib, index) in sorted(program.imports.items()):
                if name not in program.globals:
                    ops.extern_global_decl(name, lib, index)
        if library is not None:
            me.module.operation.attributes[ops.ATTR_LIBRARY] = ir.StringAttr.get(library)
    return me.module
