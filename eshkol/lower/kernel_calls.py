"""Lowering of ``eshkol.tensor_fused`` to a call of the runtime's guard and dispatch.

``esk_tensor_fused(loc, argc, argv, kinds, root, f64_entry, f32_entry)`` (runtime_c/kernels.c)
checks the operands (host tensors of one float dtype and one shape, contiguous; numbers where
``kinds`` says 's'), runs the kernel entry of that dtype over the elements (on several threads
when large) and returns the result, or the 'default' immediate to send control to the unfused
code. ``root``: 0 elementwise (a new tensor), 1 sum, 2 max, 3 min (a flonum).
"""

from __future__ import annotations

from mlir import ir

from eshkol.dialect import ops
from eshkol.lower import abi, to_llvm
from eshkol.lower.kernel_abi import entry_name
from eshkol.lower.to_linalg import parse_expr

ROOT_CODES = {"tensor-sum": 1, "tensor-max": 2, "tensor-min": 3}


def lower_tensor_fused(fl: to_llvm.FunctionLowering, op: ir.Operation) -> None:
    """Store the operands in the primitive argument buffer and call the dispatcher."""
    kernel = ir.StringAttr(op.attributes["kernel"]).value
    kinds = ir.StringAttr(op.attributes["kinds"]).value
    root = ROOT_CODES.get(parse_expr(ir.StringAttr(op.attributes["expr"]).value)[0], 0)
    args = [fl.val(a) for a in op.operands]
    fl.max_argv = max(fl.max_argv, len(args), 1)
    for i, a in enumerate(args):
        fl.emit(f"llvm.store {a}, {fl.gep('%primargv', i * abi.VALUE_SIZE)} : {to_llvm.V}, !llvm.ptr")
    fns = []
    for dt in ("f64", "f32"):
        t = fl.tmp()
        if root and dt == "f32":  # the runtime reduces f32 tensors in double: no f32 kernel
            fl.emit(f"{t} = llvm.mlir.zero : !llvm.ptr")
        else:
            fl.emit(f"{t} = llvm.mlir.addressof @{entry_name(f'{kernel}_{dt}')} : !llvm.ptr")
        fns.append(t)
    r = fl.call("esk_tensor_fused", [fl.loc(op), fl.const(len(args)), "%primargv", fl.cstr(kinds),
                                     fl.const(root), *fns],
                abi.RUNTIME_DECLS["esk_tensor_fused"].replace(" -> ", " -> ", 1))
    fl.bind(op.result, r)


to_llvm.EXTRA_OP_RULES[ops.TENSOR_FUSED] = lower_tensor_fused
