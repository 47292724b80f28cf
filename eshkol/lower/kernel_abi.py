"""The C entry of each lowered kernel, and hoisting kernels out of ``@esk_kernels``.

After eshkol-cpu-to-llvm's conversions a kernel takes every memref as five scalars
(allocated, aligned, offset, size, stride). Its entry has one C signature for all kernels:

    void K_entry(int64_t lo, int64_t hi, void *const *ptrs, const double *scalars, void *acc)

and runs the kernel on elements [lo, hi): ``ptrs`` holds the data pointers of the memref
operands in order (output first), ``scalars`` the scalar operands as doubles, ``acc`` the
reduction result (a T). The runtime (runtime_c/kernels.c) splits [0, n) over threads.
"""

from __future__ import annotations

from mlir import ir

from eshkol.lower.cpu import host_features
from eshkol.lower.to_linalg import kernels_module

ABI_ATTR = "eshkol.kernel_abi"


def entry_name(kernel: str) -> str:
    """Symbol of a kernel's C entry."""
    return f"{kernel}_entry"


def _entry_text(name: str, abi: str, T: str, linkage: str) -> str:
    lines = [f"llvm.func {linkage}@{entry_name(name)}(%lo: i64, %hi: i64, %ptrs: !llvm.ptr, "
             f"%sc: !llvm.ptr, %acc: !llvm.ptr) {{",
             "  %n = llvm.sub %hi, %lo : i64",
             "  %z = llvm.mlir.constant(0 : i64) : i64",
             "  %one = llvm.mlir.constant(1 : i64) : i64"]
    args, types = [], []
    np = ns = 0
    for role in abi:
        if role in "oi":
            slot, p, q = f"%pa{np}", f"%p{np}", f"%q{np}"
            lines.append(f"  {slot} = llvm.getelementptr %ptrs[{np}] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr")
            lines.append(f"  {p} = llvm.load {slot} : !llvm.ptr -> !llvm.ptr")
            lines.append(f"  {q} = llvm.getelementptr {p}[%lo] : (!llvm.ptr, i64) -> !llvm.ptr, {T}")
            args += [q, q, "%z", "%n", "%one"]
            types += ["!llvm.ptr", "!llvm.ptr", "i64", "i64", "i64"]
            np += 1
        elif role == "s":
            slot, d = f"%sa{ns}", f"%sd{ns}"
            lines.append(f"  {slot} = llvm.getelementptr %sc[{ns}] : (!llvm.ptr) -> !llvm.ptr, f64")
            lines.append(f"  {d} = llvm.load {slot} : !llvm.ptr -> f64")
            if T == "f32":
                lines.append(f"  %sf{ns} = llvm.fptrunc {d} : f64 to f32")
                d = f"%sf{ns}"
            args.append(d)
            types.append(T)
            ns += 1
        elif role == "a":
            args += ["%acc", "%acc", "%z"]
            types += ["!llvm.ptr", "!llvm.ptr", "i64"]
    lines.append(f"  llvm.call @{name}({', '.join(args)}) : ({', '.join(types)}) -> ()")
    lines.append("  llvm.return")
    lines.append("}")
    return "\n".join(lines)


def finish_kernels(module: ir.Operation, export: bool = False) -> list[str]:
    """Add C entries to the lowered kernels of ``module``'s ``@esk_kernels``, tag them with
    the host's target features and move them into ``module``; returns the kernel names.
    ``export`` keeps the entries external (the runtime kernel library); otherwise they are
    internal to the program module."""
    km = kernels_module(module)
    if km is None:
        return []
    feats = ", ".join(f'"{f}"' for f in host_features().llvm_features)
    texts, names = [], []
    for op in km.regions[0].blocks[0].operations:
        op = op.operation
        texts.append(str(op))
        if op.name == "llvm.func" and ABI_ATTR in op.attributes:
            name = ir.StringAttr(op.attributes["sym_name"]).value
            T = name.rsplit("_", 1)[1]
            abi = ir.StringAttr(op.attributes[ABI_ATTR]).value
            texts.append(_entry_text(name, abi, T, "" if export else "internal "))
            names.append(name)
    parsed = ir.Module.parse("module {\n" + "\n".join(texts) + "\n}")
    tf = ir.Attribute.parse(f"#llvm.target_features<[{feats}]>") if feats else None
    for op in list(parsed.body.operations):
        op = op.operation
        if op.name == "llvm.func":
            if tf is not None:
                op.attributes["target_features"] = tf
            if "eshkol.tile" in op.attributes:
                del op.attributes["eshkol.tile"]
            if ABI_ATTR in op.attributes:
                del op.attributes[ABI_ATTR]
                op.attributes["linkage"] = ir.Attribute.parse("#llvm.linkage<internal>")
        op.move_before(km)
    km.erase()
    return names


def run(module: ir.Operation) -> None:
    """The eshkol-cpu-kernel-abi pass: finish_kernels for a program module."""
    finish_kernels(module)
