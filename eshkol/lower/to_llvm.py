"""eshkol dialect (with func and cf) → LLVM dialect, calling the C runtime.

Every Eshkol procedure becomes ``!v @f(ptr self, i64 argc, ptr argv)`` (the uniform entry of
DESIGN.md): its prologue checks the stack limit and the argument count, then copies its
arguments out of the shared argument buffer, so every call, tail or not, passes arguments the
same way and every tail call can be ``musttail``. The top-level code becomes ``void
esk_entry()``, which first initialises the module's globals and constants.

The lowering writes LLVM-dialect text per function and parses the result: the ops it produces
are plain and numerous, and text keeps each rule readable next to the IR it makes.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

from mlir import ir

from eshkol.dialect import ops
from eshkol.dialect.primitives import PRIMITIVES, Primitive
from eshkol.lower import abi
from eshkol.lower.fastpaths import FAST_PATHS
from eshkol.lower.typed_ops import TypedOpsLowering, scalar_type
from eshkol.syntax.diagnostics import EshkolError

V = "!v"
ENTRY_SYMBOL = "esk_entry"

# Lowering rules for ops defined by other modules: op name → fn(FunctionLowering, op)
# (eshkol.tensor_fused: lower/kernel_calls.py).
EXTRA_OP_RULES: dict = {}


def _c_name(library: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in library)


def library_globals(library: str) -> str:
    """Symbol of a library's exported globals array."""
    return f"esk_lib_{_c_name(library)}_globals"


def library_entry(library: str) -> str:
    """Symbol of a library's start-up function (runs its top level once)."""
    return f"esk_lib_{_c_name(library)}_entry"


def _loc_of(op: ir.Operation | ir.OpView) -> str:
    loc = op.location
    try:
        if loc.is_a_file():
            return f"{loc.filename}:{loc.start_line}:{loc.start_col}"
    except AttributeError:
        pass
    return "<unknown>"


def _attr_int(op, name: str) -> int:
    return ir.IntegerAttr(op.attributes[name]).value


def _attr_sym(op, name: str) -> str:
    return ir.FlatSymbolRefAttr(op.attributes[name]).value


@dataclass
class ModuleState:
    """What the functions of one module share: globals, constants, strings, declarations."""

    globals: dict[str, int] = field(default_factory=dict)   # Eshkol global → slot
    consts: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) per const slot
    const_slots: dict[tuple[str, str], int] = field(default_factory=dict)
    strings: dict[bytes, str] = field(default_factory=dict)  # C string → global symbol
    declared: set[str] = field(default_factory=set)
    prims: set[str] = field(default_factory=set)             # C primitives called
    fast: set[str] = field(default_factory=set)
    prim_wrappers: set[str] = field(default_factory=set)     # prims used as values
    funcs: dict[str, str] = field(default_factory=dict)      # func sym → LLVM symbol
    func_names: dict[str, str] = field(default_factory=dict)  # func sym → print name
    library: str | None = None                                # compiling this library
    externs: dict[str, tuple[str, int]] = field(default_factory=dict)  # name → (library, slot)
    passthrough: list[str] = field(default_factory=list)      # top-level LLVM ops, as text

    @property
    def globals_symbol(self) -> str:
        """The array holding this module's globals and constants (exported by a library)."""
        return library_globals(self.library) if self.library else "esk_globals"

    def string(self, data: bytes) -> str:
        """Symbol of a private NUL-terminated constant holding ``data``."""
        sym = self.strings.get(data)
        if sym is None:
            sym = f"str.{len(self.strings)}"
            self.strings[data] = sym
        return sym

    def const_slot(self, kind: str, text: str) -> int:
        """Index (after the globals) of a module constant created at start-up."""
        key = (kind, text)
        idx = self.const_slots.get(key)
        if idx is None:
            idx = len(self.consts)
            self.consts.append(key)
            self.const_slots[key] = idx
        return len(self.globals) + idx


class FunctionLowering(TypedOpsLowering):
    """Lowers one func.func to LLVM-dialect text."""

    def __init__(self, st: ModuleState, fn: ir.Operation, prefix: str = "%t") -> None:
        self.st = st
        self.prefix = prefix
        self.fn = fn
        self.out: list[str] = []
        self.names: dict[ir.Value, str] = {}
        self.n = 0
        self.entry = ops.ATTR_ENTRY in fn.attributes
        # Top-level code (the entry and the chunks) is not a procedure: no prologue, and its
        # tail calls are plain calls (its signature differs from the callee's).
        self.toplevel = self.entry or ops.ATTR_TOPLEVEL in fn.attributes
        # A specialized clone (passes/specialize.py): typed parameters, called directly.
        self.direct = ops.ATTR_DIRECT in fn.attributes
        self.max_argv = 0
        self.loc_cache: dict[str, str] = {}

    # ---- text helpers --------------------------------------------------------------------

    def tmp(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n}"

    def label(self) -> str:
        self.n += 1
        return f"^l{self.n}"

    def emit(self, line: str) -> None:
        self.out.append("  " + line)

    def const(self, value: int, ty: str = "i64") -> str:
        t = self.tmp()
        self.emit(f"{t} = llvm.mlir.constant({value} : {ty}) : {ty}")
        return t

    def cstr(self, text: str) -> str:
        """Pointer to a NUL-terminated constant string."""
        t = self.tmp()
        self.emit(f"{t} = llvm.mlir.addressof @{self.st.string(text.encode())} : !llvm.ptr")
        return t

    def loc(self, op) -> str:
        return self.cstr(_loc_of(op))

    def make_value(self, tag: int | str, payload: str) -> str:
        if isinstance(tag, int):
            tag = self.const(tag)
        u, a, b = self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{u} = llvm.mlir.undef : {V}")
        self.emit(f"{a} = llvm.insertvalue {tag}, {u}[0] : {V}")
        self.emit(f"{b} = llvm.insertvalue {payload}, {a}[1] : {V}")
        return b

    def const_value(self, tag: int, payload: int) -> str:
        t = self.tmp()
        self.emit(f"{t} = llvm.mlir.constant([{tag} : i64, {payload} : i64]) : {V}")
        return t

    def split(self, v: str) -> tuple[str, str]:
        tag, payload = self.tmp(), self.tmp()
        self.emit(f"{tag} = llvm.extractvalue {v}[0] : {V}")
        self.emit(f"{payload} = llvm.extractvalue {v}[1] : {V}")
        return tag, payload

    def pointer(self, v: str) -> str:
        _, payload = self.split(v)
        p = self.tmp()
        self.emit(f"{p} = llvm.inttoptr {payload} : i64 to !llvm.ptr")
        return p

    def gep(self, base: str, offset: int) -> str:
        t = self.tmp()
        self.emit(f"{t} = llvm.getelementptr {base}[{offset}] : (!llvm.ptr) -> !llvm.ptr, i8")
        return t

    def load(self, ptr: str, ty: str = V) -> str:
        t = self.tmp()
        self.emit(f"{t} = llvm.load {ptr} : !llvm.ptr -> {ty}")
        return t

    def call(self, fn: str, args: list[str], sig: str, result: bool = True) -> str | None:
        self.st.declared.add(fn)
        if result:
            t = self.tmp()
            self.emit(f"{t} = llvm.call @{fn}({', '.join(args)}) : {sig}")
            return t
        self.emit(f"llvm.call @{fn}({', '.join(args)}) : {sig}")
        return None

    def check(self, cond: str, on_fail) -> None:
        """Continue when ``cond`` (i1) holds; otherwise run ``on_fail`` (which must not return)."""
        ok, bad = self.label(), self.label()
        self.emit(f"llvm.cond_br {cond}, {ok}, {bad} {{branch_weights = array<i32: 2000, 1>}}")
        self.out.append(f"{bad}:")
        on_fail()
        self.emit("llvm.unreachable")
        self.out.append(f"{ok}:")

    def slot_ptr(self, idx: int, array: str | None = None) -> str:
        base = self.tmp()
        self.emit(f"{base} = llvm.mlir.addressof @{array or self.st.globals_symbol} : !llvm.ptr")
        return self.gep(base, idx * abi.VALUE_SIZE)

    def val(self, v: ir.Value) -> str:
        return self.names[v]

    def bind(self, v: ir.Value, text: str) -> None:
        self.names[v] = text

    # ---- function ------------------------------------------------------------------------

    def lower(self) -> str:
        fn = self.fn
        sym = self.sym = ir.StringAttr(fn.attributes["sym_name"]).value
        blocks = list(fn.regions[0].blocks)
        self.self_arg = blocks[0].arguments[0] if len(blocks[0].arguments) else None
        self.block_labels = {b: f"^bb{i}" for i, b in enumerate(blocks)}
        entry_args = list(blocks[0].arguments)
        # Top-level code runs once: optimising it costs more compile time than it can save.
        cold = 'attributes {passthrough = ["optnone", "noinline"]} '
        if self.entry:
            entry = library_entry(self.st.library) if self.st.library else ENTRY_SYMBOL
            header = f"llvm.func @{entry}() {cold}{{"
            self.out.append("  // prologue")
            self.entry_init()
            self.emit(f"llvm.br {self.block_labels[blocks[0]]}")
        elif self.direct:
            self.out.append("  // prologue")
            header = self.direct_header(fn, entry_args)
            self.emit(f"llvm.br {self.block_labels[blocks[0]]}")
        elif self.toplevel:
            header = f"llvm.func internal @{self.st.funcs[sym]}() -> {V} {cold}{{"
            self.out.append("  // prologue")
            self.emit(f"llvm.br {self.block_labels[blocks[0]]}")
        else:
            header = (f"llvm.func internal @{self.st.funcs[sym]}(%self: !llvm.ptr, %argc: i64, "
                      f"%argv: !llvm.ptr) -> {V} {{")
            self.out.append("  // prologue")
            self.prologue(fn, entry_args)
            self.emit(f"llvm.br {self.block_labels[blocks[0]]}")
        for i, b in enumerate(blocks):
            args = list(b.arguments)
            if i == 0:
                self.out.append(f"{self.block_labels[b]}:")
            else:
                for a in args:
                    self.bind(a, self.tmp())
                params = ", ".join(f"{self.val(a)}: {self.type_of(a)}" for a in args)
                self.out.append(f"{self.block_labels[b]}({params}):" if args else f"{self.block_labels[b]}:")
            for op in b.operations:
                self.lower_op(op)
        if self.max_argv:
            # The argv scratch for variadic C primitives lives in the prologue (never in a loop).
            idx = self.out.index("  // prologue")
            n = self.tmp()
            self.out.insert(idx + 1, f"  {n} = llvm.mlir.constant({self.max_argv} : i64) : i64")
            self.out.insert(idx + 2, f"  %primargv = llvm.alloca {n} x {V} : (i64) -> !llvm.ptr")
        body = "\n".join(self.out)
        # MLIR's entry block may not be a branch target; the prologue is the entry.
        return f"{header}\n{body}\n}}\n"

    def type_of(self, v: ir.Value) -> str:
        return scalar_type(v.type)

    def prologue(self, fn, entry_args: list[ir.Value]) -> None:
        nreq = _attr_int(fn, ops.ATTR_NREQ)
        nopt = _attr_int(fn, ops.ATTR_NOPT)
        rest = ir.BoolAttr(fn.attributes[ops.ATTR_REST]).value
        # Stack depth: report deep non-tail recursion as an error, not a crash.
        sp = self.tmp()
        self.emit(f"{sp} = llvm.intr.stacksave : !llvm.ptr")
        lim_addr = self.tmp()
        self.emit(f"{lim_addr} = llvm.mlir.addressof @{abi.STACK_LIMIT} : !llvm.ptr")
        lim = self.load(lim_addr, "!llvm.ptr")
        ok = self.tmp()
        self.emit(f'{ok} = llvm.icmp "uge" {sp}, {lim} : !llvm.ptr')
        self.check(ok, lambda: self.call("esk_stack_overflow", [self.loc(fn)],
                                         "(!llvm.ptr) -> ()", result=False))
        # Argument count.
        nmin = self.const(nreq)
        ge = self.tmp()
        self.emit(f'{ge} = llvm.icmp "sge" %argc, {nmin} : i64')
        if rest:
            arity_ok = ge
        else:
            nmax = self.const(nreq + nopt)
            le, both = self.tmp(), self.tmp()
            self.emit(f'{le} = llvm.icmp "sle" %argc, {nmax} : i64')
            self.emit(f"{both} = llvm.and {ge}, {le} : i1")
            arity_ok = both
        self.arity_check(arity_ok, nreq, -1 if rest else nreq + nopt)
        self_int = self.tmp()
        self.emit(f"{self_int} = llvm.ptrtoint %self : !llvm.ptr to i64")
        self.bind(entry_args[0], self.make_value(abi.T_CLOSURE, self_int))
        params = entry_args[1:]
        for i in range(nreq):
            self.bind(params[i], self.load(self.gep("%argv", i * abi.VALUE_SIZE)))
        if nopt:
            missing = self.const_value(abi.T_DEFAULT, 0)
            for k in range(nopt):
                i = nreq + k
                have = self.tmp()
                idx = self.const(i)
                self.emit(f'{have} = llvm.icmp "sgt" %argc, {idx} : i64')
                # Load unconditionally: the buffer always has room, stale slots are not used.
                loaded = self.load(self.gep("%argv", i * abi.VALUE_SIZE))
                sel = self.tmp()
                self.emit(f"{sel} = llvm.select {have}, {loaded}, {missing} : i1, {V}")
                self.bind(params[i], sel)
        if rest:
            k = nreq + nopt
            kc = self.const(k)
            n = self.tmp()
            self.emit(f"{n} = llvm.sub %argc, {kc} : i64")
            zero = self.const(0)
            pos = self.tmp()
            self.emit(f'{pos} = llvm.icmp "sgt" {n}, {zero} : i64')
            cnt = self.tmp()
            self.emit(f"{cnt} = llvm.select {pos}, {n}, {zero} : i1, i64")
            start = self.gep("%argv", k * abi.VALUE_SIZE)
            self.bind(params[-1], self.call("esk_list_from_args", [cnt, start],
                                            f"(i64, !llvm.ptr) -> {V}"))

    def arity_check(self, ok: str, lo: int, hi: int) -> None:
        """Report a wrong argument count (hi < 0: no upper bound) unless ``ok``."""
        self.check(ok, lambda: self.call("esk_error_arity_at",
                                         ["%self", "%argc", self.const(lo), self.const(hi)],
                                         "(!llvm.ptr, i64, i64, i64) -> ()", result=False))

    def entry_init(self) -> None:
        # Constants are filled in by ModuleLowering once all functions are lowered (their
        # number is known only then): it replaces this marker.
        self.out.append("  // @@CONST-INIT@@")

    # ---- ops -----------------------------------------------------------------------------

    def lower_op(self, op) -> None:
        name = op.operation.name
        rule = getattr(self, "op_" + name.replace(".", "_"), None)
        if rule is None and name in EXTRA_OP_RULES:  # rules kept by other modules
            rule = functools.partial(EXTRA_OP_RULES[name], self)
        if rule is None:
            raise EshkolError(None, f"cannot lower operation {name} to LLVM")
        rule(op.operation)

    def op_eshkol_const_int(self, op) -> None:
        self.bind(op.result, self.const_value(abi.T_FIXNUM, _attr_int(op, "value")))

    def op_eshkol_const_float(self, op) -> None:
        x = ir.FloatAttr(op.attributes["value"]).value
        bits = struct.unpack("<q", struct.pack("<d", x))[0]
        self.bind(op.result, self.const_value(abi.T_FLONUM, bits))

    def op_eshkol_const_imm(self, op) -> None:
        tag = abi.IMM_TAGS[ops.attr_str(op, "kind")]
        self.bind(op.result, self.const_value(tag, _attr_int(op, "value")))

    def _const_slot_value(self, op, kind: str, text: str) -> None:
        idx = self.st.const_slot(kind, text)
        self.bind(op.result, self.load(self.slot_ptr(idx)))

    def op_eshkol_const_string(self, op) -> None:
        self._const_slot_value(op, "string", ops.attr_str(op, "value"))

    def op_eshkol_const_exact(self, op) -> None:
        self._const_slot_value(op, "exact", ops.attr_str(op, "value"))

    def op_eshkol_const_symbol(self, op) -> None:
        self._const_slot_value(op, "symbol", ops.attr_str(op, "value"))

    def op_eshkol_prim_ref(self, op) -> None:
        name = ops.attr_str(op, "name")
        self.st.prim_wrappers.add(name)
        self._const_slot_value(op, "prim", name)

    def _global_slot(self, op) -> tuple[str, str]:
        name = _attr_sym(op, "name")
        if name not in self.st.globals and name in self.st.externs:
            lib, index = self.st.externs[name]
            return name, self.slot_ptr(index, library_globals(lib))
        if name not in self.st.globals:
            raise EshkolError(None, f"{_loc_of(op)}: reference to undeclared global @{name}")
        return name, self.slot_ptr(self.st.globals[name])

    def _check_bound(self, op, name: str, value: str) -> None:
        tag, _ = self.split(value)
        unbound = self.const(abi.T_UNBOUND)
        ok = self.tmp()
        self.emit(f'{ok} = llvm.icmp "ne" {tag}, {unbound} : i64')
        self.check(ok, lambda: self.call("esk_error_unbound", [self.loc(op), self.cstr(name)],
                                         "(!llvm.ptr, !llvm.ptr) -> ()", result=False))

    def op_eshkol_global_ref(self, op) -> None:
        name, ptr = self._global_slot(op)
        v = self.load(ptr)
        self._check_bound(op, name, v)
        self.bind(op.result, v)

    def op_eshkol_global_set(self, op) -> None:
        name, ptr = self._global_slot(op)
        if ops.attr_str(op, "kind") == "set":
            self._check_bound(op, name, self.load(ptr))
        self.emit(f"llvm.store {self.val(op.operands[0])}, {ptr} : {V}, !llvm.ptr")

    def op_eshkol_make_closure(self, op) -> None:
        callee = _attr_sym(op, "callee")
        code = self.tmp()
        self.emit(f"{code} = llvm.mlir.addressof @{self.st.funcs[callee]} : !llvm.ptr")
        name = self.cstr(self.st.func_names.get(callee, ""))
        caps = list(op.operands)
        v = self.call("esk_make_closure", [code, name, self.const(len(caps))],
                      f"(!llvm.ptr, !llvm.ptr, i64) -> {V}")
        if caps:
            p = self.pointer(v)
            for i, c in enumerate(caps):
                slot = self.gep(p, abi.CLOSURE_FREE + i * abi.VALUE_SIZE)
                self.emit(f"llvm.store {self.val(c)}, {slot} : {V}, !llvm.ptr")
        self.bind(op.result, v)

    def _closure_slot(self, op) -> str:
        p = self.pointer(self.val(op.operands[0]))
        return self.gep(p, abi.CLOSURE_FREE + _attr_int(op, "index") * abi.VALUE_SIZE)

    def op_eshkol_closure_ref(self, op) -> None:
        self.bind(op.result, self.load(self._closure_slot(op)))

    def op_eshkol_closure_set(self, op) -> None:
        slot = self._closure_slot(op)
        self.emit(f"llvm.store {self.val(op.operands[1])}, {slot} : {V}, !llvm.ptr")

    def op_eshkol_box(self, op) -> None:
        tag, payload = self.split(self.val(op.operands[0]))
        self.bind(op.result, self.call("esk_make_box", [tag, payload], f"(i64, i64) -> {V}"))

    def op_eshkol_unbox(self, op) -> None:
        p = self.pointer(self.val(op.operands[0]))
        self.bind(op.result, self.load(self.gep(p, abi.BOX_VALUE)))

    def op_eshkol_set_box(self, op) -> None:
        p = self.pointer(self.val(op.operands[0]))
        slot = self.gep(p, abi.BOX_VALUE)
        self.emit(f"llvm.store {self.val(op.operands[1])}, {slot} : {V}, !llvm.ptr")

    def _call(self, op, tail: bool) -> None:
        f = self.val(op.operands[0])
        args = [self.val(a) for a in list(op.operands)[1:]]
        if len(args) > abi.MAX_ARGS:
            raise EshkolError(None, f"{_loc_of(op)}: too many arguments in one call ({len(args)})")
        tag, payload = self.split(f)
        clo = self.tmp()
        callee = op.operands[0]
        maker = callee.owner
        known = None
        if not isinstance(maker, ir.Block) and maker.name == ops.MAKE_CLOSURE:
            known = self.st.funcs[_attr_sym(maker, "callee")]  # a closure built right here
        elif not self.toplevel and not self.direct and callee == self.self_arg:
            known = self.st.funcs[self.sym]  # the procedure calling itself
        if known is not None:
            self.emit(f"{clo} = llvm.inttoptr {payload} : i64 to !llvm.ptr")
            code = self.tmp()
            self.emit(f"{code} = llvm.mlir.addressof @{known} : !llvm.ptr")
        else:
            want = self.const(abi.T_CLOSURE)
            ok = self.tmp()
            self.emit(f'{ok} = llvm.icmp "eq" {tag}, {want} : i64')
            self.check(ok, lambda: self.call("esk_error_not_procedure", [self.loc(op), tag, payload],
                                             "(!llvm.ptr, i64, i64) -> ()", result=False))
            self.emit(f"{clo} = llvm.inttoptr {payload} : i64 to !llvm.ptr")
            code = self.load(self.gep(clo, abi.CLOSURE_CODE), "!llvm.ptr")
        buf = self.tmp()
        self.emit(f"{buf} = llvm.mlir.addressof @{abi.ARGBUF} : !llvm.ptr")
        for i, a in enumerate(args):
            self.emit(f"llvm.store {a}, {self.gep(buf, i * abi.VALUE_SIZE)} : {V}, !llvm.ptr")
        site = self.tmp()
        self.emit(f"{site} = llvm.mlir.addressof @{abi.CALLSITE} : !llvm.ptr")
        self.emit(f"llvm.store {self.loc(op)}, {site} : !llvm.ptr, !llvm.ptr")
        argc = self.const(len(args))
        r = self.tmp()
        kind = "musttail " if tail else ""
        self.emit(f"{r} = llvm.call {kind}{code}({clo}, {argc}, {buf}) : !llvm.ptr, "
                  f"(!llvm.ptr, i64, !llvm.ptr) -> {V}")
        self.bind(op.result, r)

    def op_eshkol_call(self, op) -> None:
        self._call(op, tail=False)

    def op_eshkol_tail_call(self, op) -> None:
        self._call(op, tail=not self.toplevel)

    def op_eshkol_prim(self, op) -> None:
        name = ops.attr_str(op, "name")
        p = PRIMITIVES.get(name)
        if p is None:
            raise EshkolError(None, f"{_loc_of(op)}: unknown primitive '{name}'")
        args = [self.val(a) for a in op.operands]
        if not p.accepts(len(args)):
            raise EshkolError(None, f"{_loc_of(op)}: {name}: wrong number of arguments")
        self.bind(op.result, self.prim_call(p, args, self.loc(op)))

    def prim_call(self, p: Primitive, args: list[str], loc: str) -> str:
        """Call primitive ``p`` (its fast path when it has one)."""
        self.st.prims.add(p.name)
        if p.fast:
            self.st.fast.add(p.fast)
            t = self.tmp()
            sig = ", ".join(["!llvm.ptr"] + [V] * len(args))
            self.emit(f"{t} = llvm.call @esk_fast_{p.fast}({', '.join([loc] + args)}) : ({sig}) -> {V}")
            return t
        if p.argv_convention:
            self.max_argv = max(self.max_argv, len(args), 1)
            for i, a in enumerate(args):
                self.emit(f"llvm.store {a}, {self.gep('%primargv', i * abi.VALUE_SIZE)} : {V}, !llvm.ptr")
            return self.call(f"esk_prim_{p.cname}", [loc, self.const(len(args)), "%primargv"],
                             f"(!llvm.ptr, i64, !llvm.ptr) -> {V}")
        flat = []
        for a in args:
            flat.extend(self.split(a))
        sig = ", ".join(["!llvm.ptr"] + ["i64"] * len(flat))
        return self.call(f"esk_prim_{p.cname}", [loc] + flat, f"({sig}) -> {V}")

    def op_eshkol_truthy(self, op) -> None:
        tag, payload = self.split(self.val(op.operands[0]))
        b, z = self.const(abi.T_BOOL), self.const(0)
        t1, t2, t = self.tmp(), self.tmp(), self.tmp()
        self.emit(f'{t1} = llvm.icmp "ne" {tag}, {b} : i64')
        self.emit(f'{t2} = llvm.icmp "ne" {payload}, {z} : i64')
        self.emit(f"{t} = llvm.or {t1}, {t2} : i1")
        self.bind(op.result, t)

    def op_eshkol_is_default(self, op) -> None:
        tag, _ = self.split(self.val(op.operands[0]))
        d = self.const(abi.T_DEFAULT)
        t = self.tmp()
        self.emit(f'{t} = llvm.icmp "eq" {tag}, {d} : i64')
        self.bind(op.result, t)

    def _succ_args(self, operands) -> str:
        vals = list(operands)
        if not vals:
            return ""
        return "(" + ", ".join(self.val(v) for v in vals) + " : " + \
            ", ".join(self.type_of(v) for v in vals) + ")"

    def op_cf_br(self, op) -> None:
        dest = op.successors[0]
        self.emit(f"llvm.br {self.block_labels[dest]}{self._succ_args(op.operands)}")

    def op_cf_cond_br(self, op) -> None:
        view = op.opview
        t, f = op.successors[0], op.successors[1]
        cond = self.val(view.condition)
        self.emit(f"llvm.cond_br {cond}, {self.block_labels[t]}{self._succ_args(view.trueDestOperands)}, "
                  f"{self.block_labels[f]}{self._succ_args(view.falseDestOperands)}")

    def op_func_call(self, op) -> None:
        if len(op.operands):  # a specialized clone (typed_ops.py)
            self.direct_call(op)
            return
        callee = _attr_sym(op, "callee")
        r = self.tmp()
        self.emit(f"{r} = llvm.call @{self.st.funcs[callee]}() : () -> {V}")
        self.bind(op.results[0], r)

    def op_func_return(self, op) -> None:
        if self.entry:
            self.emit("llvm.return")
        else:
            self.emit(f"llvm.return {self.val(op.operands[0])} : {V}")


class ModuleLowering:
    """Lowers a whole eshkol-dialect module to LLVM-dialect text."""

    def __init__(self, body: ir.Block) -> None:
        self.body = body
        self.st = ModuleState()
        module_attrs = body.owner.attributes
        if ops.ATTR_LIBRARY in module_attrs:
            self.st.library = ir.StringAttr(module_attrs[ops.ATTR_LIBRARY]).value

    def lower(self) -> str:
        st = self.st
        fns = []
        for op in self.body.operations:
            name = op.operation.name
            if name == ops.GLOBAL:
                st.globals[ops.attr_str(op, "sym_name")] = len(st.globals)
            elif name == ops.EXTERN_GLOBAL:
                st.externs[ops.attr_str(op, "sym_name")] = (ops.attr_str(op, "library"), _attr_int(op, "index"))
            elif name == "func.func":
                sym = ir.StringAttr(op.attributes["sym_name"]).value
                fns.append(op)
                if ops.ATTR_ENTRY not in op.attributes:
                    st.funcs[sym] = f"esk_fn.{len(st.funcs)}"
                if ops.ATTR_NAME in op.attributes:
                    st.func_names[sym] = ops.attr_str(op, ops.ATTR_NAME)
            elif name.startswith("llvm."):  # already lowered (generated tensor kernels)
                st.passthrough.append(str(op))
            else:
                raise EshkolError(None, f"cannot lower top-level operation {name}")
        bodies = [FunctionLowering(st, f).lower() for f in fns]
        # Prim wrappers may add constants (their names) so build them before the init code.
        # Aliases share a C function (and arity): one wrapper per symbol.
        by_symbol = {prim_fn_symbol(PRIMITIVES[n]): n for n in sorted(st.prim_wrappers)}
        wrappers = [self.prim_wrapper(PRIMITIVES[n]) for n in by_symbol.values()]
        bodies = [b.replace("  // @@CONST-INIT@@", self.const_init()) for b in bodies]
        out = [f"!v = {abi.VALUE}", "module {"]
        nslots = max(1, len(st.globals) + len(st.consts))
        linkage = "external" if st.library else "internal"
        # An initializer makes it a definition (an external global without one is a declaration).
        array = f"!llvm.array<{nslots} x {V}>"
        out.append(f"llvm.mlir.global {linkage} @{st.globals_symbol}() {{addr_space = 0 : i32}} : {array} {{\n"
                   f"  %z = llvm.mlir.zero : {array}\n  llvm.return %z : {array}\n}}")
        for lib in sorted({lib for lib, _ in st.externs.values()}):
            # Only the address matters: slots are reached by byte offsets.
            out.append(f"llvm.mlir.global external @{library_globals(lib)}() {{addr_space = 0 : i32}} : i8")
            out.append(f"llvm.func @{library_entry(lib)}()")
        if st.library:
            out.append("llvm.mlir.global internal @esk_lib_started(false) {addr_space = 0 : i32} : i1")
        out.append(f"llvm.mlir.global external @{abi.ARGBUF}() {{addr_space = 0 : i32}} : "
                   f"!llvm.array<{abi.MAX_ARGS} x {V}>")
        out.append(f"llvm.mlir.global external @{abi.CALLSITE}() {{addr_space = 0 : i32}} : !llvm.ptr")
        out.append(f"llvm.mlir.global external @{abi.STACK_LIMIT}() {{addr_space = 0 : i32}} : !llvm.ptr")
        for data, sym in st.strings.items():
            z = data + b"\0"
            out.append(f'llvm.mlir.global private constant @{sym}("{abi.mlir_string(z)}") '
                       f"{{addr_space = 0 : i32}} : !llvm.array<{len(z)} x i8>")
        out.extend(self.declarations())
        out.extend(FAST_PATHS[f] for f in sorted(st.fast))
        out.extend(wrappers)
        out.extend(st.passthrough)
        out.extend(bodies)
        out.append("}")
        return "\n".join(out)

    def declarations(self) -> list[str]:
        st = self.st
        out = []
        for fn in sorted(st.declared):
            if fn.startswith("esk_prim_"):
                continue
            sig = abi.RUNTIME_DECLS[fn]
            args, res = sig.split(" -> ")
            res_txt = "" if res == "!llvm.void" else f" -> {res}"
            out.append(f"llvm.func @{fn}{args}{res_txt}" + (" attributes {passthrough = [\"noreturn\", \"cold\"]}"
                                                            if fn.startswith(("esk_error", "esk_stack")) else ""))
        seen = set()  # several Eshkol names may share one C function (exact, inexact->exact)
        for name in sorted(st.prims):
            p = PRIMITIVES[name]
            if p.cname in seen:
                continue
            seen.add(p.cname)
            if p.argv_convention:
                sig = f"(!llvm.ptr, i64, !llvm.ptr) -> {V}"
            else:
                sig = "(" + ", ".join(["!llvm.ptr"] + ["i64"] * (2 * p.min_args)) + f") -> {V}"
            args, res = sig.split(" -> ")
            out.append(f"llvm.func @esk_prim_{p.cname}{args} -> {res}")
        return out

    def const_init(self) -> str:
        """Start-up code of esk_entry: mark globals unbound, register roots, build constants."""
        st = self.st
        fl = FunctionLowering(st, self._entry_op, prefix="%init")
        if st.library:
            # A library starts once, however many modules import it.
            flag = fl.tmp()
            fl.emit(f"{flag} = llvm.mlir.addressof @esk_lib_started : !llvm.ptr")
            started = fl.load(flag, "i1")
            go, done = fl.label(), fl.label()
            fl.emit(f"llvm.cond_br {started}, {done}, {go}")
            fl.out.append(f"{done}:")
            fl.emit("llvm.return")
            fl.out.append(f"{go}:")
            yes = fl.const(1, "i1")
            fl.emit(f"llvm.store {yes}, {flag} : i1, !llvm.ptr")
        for lib in sorted({lib for lib, _ in st.externs.values()}):
            fl.emit(f"llvm.call @{library_entry(lib)}() : () -> ()")
        base = fl.tmp()
        fl.emit(f"{base} = llvm.mlir.addressof @{st.globals_symbol} : !llvm.ptr")
        n = fl.const(len(st.globals) + len(st.consts))
        st.declared.add("esk_init_globals")
        fl.emit(f"llvm.call @esk_init_globals({base}, {n}) : (!llvm.ptr, i64) -> ()")
        for i, (kind, text) in enumerate(st.consts):
            if kind == "prim":
                code = fl.tmp()
                fl.emit(f"{code} = llvm.mlir.addressof @{prim_fn_symbol(PRIMITIVES[text])} : !llvm.ptr")
                v = fl.call("esk_make_closure", [code, fl.cstr(text), fl.const(0)],
                            f"(!llvm.ptr, !llvm.ptr, i64) -> {V}")
            elif kind == "exact":
                ptr = fl.tmp()
                fl.emit(f"{ptr} = llvm.mlir.addressof @{st.string(text.encode())} : !llvm.ptr")
                v = fl.call("esk_make_exact_from_string", [ptr], f"(!llvm.ptr) -> {V}")
            else:
                data = text.encode()
                fn = "esk_make_string_literal" if kind == "string" else "esk_intern"
                ptr = fl.tmp()
                fl.emit(f"{ptr} = llvm.mlir.addressof @{st.string(data)} : !llvm.ptr")
                v = fl.call(fn, [ptr, fl.const(len(data))], f"(!llvm.ptr, i64) -> {V}")
            fl.emit(f"llvm.store {v}, {fl.slot_ptr(len(st.globals) + i)} : {V}, !llvm.ptr")
        return "\n".join(fl.out)

    @functools.cached_property
    def _entry_op(self):
        """The entry func.func (helpers lowered outside any function borrow its context)."""
        for op in self.body.operations:
            if op.operation.name == "func.func" and ops.ATTR_ENTRY in op.attributes:
                return op
        raise EshkolError(None, "module has no entry function")

    def prim_wrapper(self, p: Primitive) -> str:
        """``esk_primfn_C``: primitive ``p`` as a procedure with the uniform entry."""
        fl = FunctionLowering(self.st, self._entry_op)
        fl.entry = False
        lo = fl.const(p.min_args)
        ok = fl.tmp()
        fl.emit(f'{ok} = llvm.icmp "sge" %argc, {lo} : i64')
        if p.max_args is not None:
            hi, ok2, both = fl.const(p.max_args), fl.tmp(), fl.tmp()
            fl.emit(f'{ok2} = llvm.icmp "sle" %argc, {hi} : i64')
            fl.emit(f"{both} = llvm.and {ok}, {ok2} : i1")
            ok = both
        fl.arity_check(ok, p.min_args, -1 if p.max_args is None else p.max_args)
        site = fl.tmp()
        fl.emit(f"{site} = llvm.mlir.addressof @{abi.CALLSITE} : !llvm.ptr")
        loc = fl.load(site, "!llvm.ptr")
        self.st.prims.add(p.name)
        binary = PRIMITIVES.get(p.binary) if p.binary else None
        if p.argv_convention and binary is not None and binary.fast and p.accepts(2):
            # `<` or `+` passed as a procedure (sort, fold) is mostly called with two
            # arguments: those go to the binary primitive's inline fast path.
            two, two_b, many_b = fl.const(2), fl.label(), fl.label()
            is2 = fl.tmp()
            fl.emit(f'{is2} = llvm.icmp "eq" %argc, {two} : i64')
            fl.emit(f"llvm.cond_br {is2}, {two_b}, {many_b}")
            fl.out.append(f"{two_b}:")
            args = [fl.load(fl.gep("%argv", i * abi.VALUE_SIZE)) for i in range(2)]
            r2 = fl.prim_call(binary, args, loc)
            fl.emit(f"llvm.return {r2} : {V}")
            fl.out.append(f"{many_b}:")
        if p.argv_convention:
            r = fl.call(f"esk_prim_{p.cname}", [loc, "%argc", "%argv"], f"(!llvm.ptr, i64, !llvm.ptr) -> {V}")
        else:
            args = [fl.load(fl.gep("%argv", i * abi.VALUE_SIZE)) for i in range(p.min_args)]
            r = fl.prim_call(p, args, loc)
        fl.emit(f"llvm.return {r} : {V}")
        return (f"llvm.func internal @{prim_fn_symbol(p)}(%self: !llvm.ptr, %argc: i64, "
                f"%argv: !llvm.ptr) -> {V} {{\n" + "\n".join(fl.out) + "\n}\n")


def prim_fn_symbol(p: Primitive) -> str:
    """The symbol of primitive ``p`` as a procedure: names that share a C function (aliases
    such as number? and complex?) share it when their arities agree too."""
    hi = "n" if p.max_args is None else p.max_args
    return f"esk_primfn_{p.cname}_{p.min_args}_{hi}"


def lower_block_to_llvm(body: ir.Block) -> ir.Module:
    """Lower the ops of an eshkol-dialect module body to a new LLVM-dialect module."""
    text = ModuleLowering(body).lower()
    try:
        return ir.Module.parse(text)
    except ir.MLIRError as e:  # a lowering bug, never the user's: say where
        raise RuntimeError(f"internal error: lowering produced invalid LLVM dialect: {e}") from e
