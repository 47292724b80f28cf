"""LLVM lowering of specialized code: unboxed scalars, their arith/math ops, direct functions.

A mixin of ``to_llvm.FunctionLowering`` (its rules are found by op name like the others):
``i64``/``f64``/``i1`` values stay LLVM scalars; ``eshkol.box_*``/``unbox_*`` build or take
apart the 16-byte value; ``eshkol.fixnum_arith`` is ``llvm.intr.s{add,sub,mul}.with.overflow``.
Clones made by passes/specialize.py (``eshkol.direct``) take ``(self, args...)`` in registers
with their own types, and are called with ``func.call``.
"""

from __future__ import annotations

import struct

from mlir import ir

from eshkol.lower import abi

V = "!v"

# arith.cmpi / arith.cmpf predicate enums, by value, as LLVM spells them.
ICMP = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]
FCMP = ["_false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord", "ueq", "ugt", "uge", "ult", "ule",
        "une", "uno", "_true"]

BINARY = {"arith.addi": "add", "arith.subi": "sub", "arith.muli": "mul", "arith.andi": "and",
          "arith.ori": "or", "arith.xori": "xor", "arith.divsi": "sdiv", "arith.remsi": "srem",
          "arith.addf": "fadd", "arith.subf": "fsub", "arith.mulf": "fmul", "arith.divf": "fdiv"}
INTRINSICS = {"math.sqrt": "sqrt", "math.log": "log", "math.sin": "sin", "math.cos": "cos",
              "math.tan": "tan", "math.exp": "exp", "math.atan": "atan", "math.floor": "floor",
              "math.ceil": "ceil", "math.roundeven": "roundeven", "math.trunc": "trunc",
              "math.absf": "fabs"}
SCALARS = {"i64": "i64", "f64": "f64", "i1": "i1"}


def scalar_type(t: ir.Type) -> str:
    """The LLVM type of a value of MLIR type ``t`` in Eshkol functions."""
    return SCALARS.get(str(t), V)


class TypedOpsLowering:
    """Rules for the ops of specialized code (mixed into FunctionLowering)."""

    # ---- direct functions ------------------------------------------------------------------

    def direct_header(self, fn, entry_args: list) -> str:
        """Header of a clone with typed parameters, binding the entry block's arguments; the
        prologue only checks the stack (callers pass exactly the right arguments)."""
        params = []
        for i, a in enumerate(entry_args):
            name = f"%p{i}"
            self.bind(a, name)
            params.append(f"{name}: {scalar_type(a.type)}")
        sp = self.tmp()
        self.emit(f"{sp} = llvm.intr.stacksave : !llvm.ptr")
        lim_addr = self.tmp()
        self.emit(f"{lim_addr} = llvm.mlir.addressof @{abi.STACK_LIMIT} : !llvm.ptr")
        lim = self.load(lim_addr, "!llvm.ptr")
        ok = self.tmp()
        self.emit(f'{ok} = llvm.icmp "uge" {sp}, {lim} : !llvm.ptr')
        self.check(ok, lambda: self.call("esk_stack_overflow", [self.loc(fn)],
                                         "(!llvm.ptr) -> ()", result=False))
        return f"llvm.func internal @{self.st.funcs[self.sym]}({', '.join(params)}) -> {V} {{"

    def direct_call(self, op) -> None:
        """``func.call`` of a function with arguments (a clone)."""
        callee = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
        args = [self.val(a) for a in op.operands]
        types = ", ".join(scalar_type(a.type) for a in op.operands)
        # Like every call, record where it is made (accessors report their caller's position).
        site = self.tmp()
        self.emit(f"{site} = llvm.mlir.addressof @{abi.CALLSITE} : !llvm.ptr")
        self.emit(f"llvm.store {self.loc(op)}, {site} : !llvm.ptr, !llvm.ptr")
        r = self.tmp()
        self.emit(f"{r} = llvm.call @{self.st.funcs[callee]}({', '.join(args)}) : ({types}) -> {V}")
        self.bind(op.results[0], r)

    # ---- boxing ------------------------------------------------------------------------------

    def op_eshkol_box_fixnum(self, op) -> None:
        self.bind(op.result, self.make_value(abi.T_FIXNUM, self.val(op.operands[0])))

    def op_eshkol_box_flonum(self, op) -> None:
        bits = self.tmp()
        self.emit(f"{bits} = llvm.bitcast {self.val(op.operands[0])} : f64 to i64")
        self.bind(op.result, self.make_value(abi.T_FLONUM, bits))

    def op_eshkol_box_bool(self, op) -> None:
        z = self.tmp()
        self.emit(f"{z} = llvm.zext {self.val(op.operands[0])} : i1 to i64")
        self.bind(op.result, self.make_value(abi.T_BOOL, z))

    def op_eshkol_unbox_fixnum(self, op) -> None:
        _, payload = self.split(self.val(op.operands[0]))
        self.bind(op.result, payload)

    def op_eshkol_unbox_flonum(self, op) -> None:
        _, payload = self.split(self.val(op.operands[0]))
        f = self.tmp()
        self.emit(f"{f} = llvm.bitcast {payload} : i64 to f64")
        self.bind(op.result, f)

    def op_eshkol_has_tag(self, op) -> None:
        tag, _ = self.split(self.val(op.operands[0]))
        want = self.const({"fixnum": abi.T_FIXNUM, "flonum": abi.T_FLONUM,
                           "tensor": abi.T_TENSOR}[ir.StringAttr(op.attributes["tag"]).value])
        t = self.tmp()
        self.emit(f'{t} = llvm.icmp "eq" {tag}, {want} : i64')
        self.bind(op.result, t)

    def op_eshkol_fixnum_arith(self, op) -> None:
        kind = ir.StringAttr(op.attributes["op"]).value
        a, b = (self.val(x) for x in op.operands)
        s = "!llvm.struct<(i64, i1)>"
        o, r, ov = self.tmp(), self.tmp(), self.tmp()
        self.emit(f'{o} = "llvm.intr.s{kind}.with.overflow"({a}, {b}) : (i64, i64) -> {s}')
        self.emit(f"{r} = llvm.extractvalue {o}[0] : {s}")
        self.emit(f"{ov} = llvm.extractvalue {o}[1] : {s}")
        self.bind(op.results[0], r)
        self.bind(op.results[1], ov)

    # ---- arith and math ----------------------------------------------------------------------

    def op_arith_constant(self, op) -> None:
        ty = scalar_type(op.result.type)
        attr = op.attributes["value"]
        t = self.tmp()
        if ty == "f64":
            bits = struct.unpack("<Q", struct.pack("<d", ir.FloatAttr(attr).value))[0]
            self.emit(f"{t} = llvm.mlir.constant(0x{bits:016X} : f64) : f64")
        elif ty == "i1":
            self.emit(f"{t} = llvm.mlir.constant({'true' if ir.BoolAttr(attr).value else 'false'}) : i1")
        else:
            self.emit(f"{t} = llvm.mlir.constant({ir.IntegerAttr(attr).value} : i64) : i64")
        self.bind(op.result, t)

    def _binary(self, op) -> None:
        a, b = (self.val(x) for x in op.operands)
        t = self.tmp()
        self.emit(f"{t} = llvm.{BINARY[op.name]} {a}, {b} : {scalar_type(op.result.type)}")
        self.bind(op.result, t)

    op_arith_addi = op_arith_subi = op_arith_muli = op_arith_andi = op_arith_ori = _binary
    op_arith_xori = op_arith_divsi = op_arith_remsi = _binary
    op_arith_addf = op_arith_subf = op_arith_mulf = op_arith_divf = _binary

    def op_arith_negf(self, op) -> None:
        t = self.tmp()
        self.emit(f"{t} = llvm.fneg {self.val(op.operands[0])} : f64")
        self.bind(op.result, t)

    def op_arith_cmpi(self, op) -> None:
        pred = ICMP[ir.IntegerAttr(op.attributes["predicate"]).value]
        a, b = (self.val(x) for x in op.operands)
        t = self.tmp()
        self.emit(f'{t} = llvm.icmp "{pred}" {a}, {b} : {scalar_type(op.operands[0].type)}')
        self.bind(op.result, t)

    def op_arith_cmpf(self, op) -> None:
        pred = FCMP[ir.IntegerAttr(op.attributes["predicate"]).value]
        a, b = (self.val(x) for x in op.operands)
        t = self.tmp()
        self.emit(f'{t} = llvm.fcmp "{pred}" {a}, {b} : f64')
        self.bind(op.result, t)

    def op_arith_select(self, op) -> None:
        c, a, b = (self.val(x) for x in op.operands)
        t = self.tmp()
        self.emit(f"{t} = llvm.select {c}, {a}, {b} : i1, {scalar_type(op.result.type)}")
        self.bind(op.result, t)

    def op_arith_sitofp(self, op) -> None:
        t = self.tmp()
        self.emit(f"{t} = llvm.sitofp {self.val(op.operands[0])} : i64 to f64")
        self.bind(op.result, t)

    def _intrinsic(self, op) -> None:
        t = self.tmp()
        self.emit(f"{t} = llvm.intr.{INTRINSICS[op.name]}({self.val(op.operands[0])}) : (f64) -> f64")
        self.bind(op.result, t)

    op_math_sqrt = op_math_log = op_math_sin = op_math_cos = op_math_tan = op_math_exp = _intrinsic
    op_math_atan = op_math_floor = op_math_ceil = op_math_roundeven = op_math_trunc = _intrinsic
    op_math_absf = _intrinsic
