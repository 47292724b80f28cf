"""The MLIR matrix-multiply kernel: a static block C[64x256] += A[64x256] * B[256x256]
tiled to a 4x8 register tile (f64; 4x16 for f32) with the transform dialect, vectorized as a
contraction and lowered to FMAs; the C accumulators stay in registers across the k loop
(hoist_redundant_vector_transfers after fold_memref_alias_ops).

Operands are strided views, so the runtime's driver (esk_kernel_matmul in runtime_c/kernels.c)
runs the outer block loops itself: it copies each B block to a buffer whose row stride is not
a multiple of 4 KiB (rows of B a power-of-two apart thrash the L1 sets), zeroes C, and splits
the rows of C across the kernel threads. The block entry has the C signature

    void blk(const T *A, int64_t lda, const T *B, int64_t ldb, T *C, int64_t ldc)

Measured here (docs/DESIGN-NOTES.md): about 0.6x of OpenBLAS on one core, so the runtime
keeps the BLAS by default and uses this kernel when asked (ESHKOL_MATMUL=mlir).
"""

from __future__ import annotations

from eshkol.lower.cpu import host_features

MB, NB, KB = 64, 256, 256  # the block (rows of C, columns of C, depth)


def register_tile(dtype: str) -> tuple[int, int]:
    """Rows x columns of the accumulator tile: 4 rows of two vector registers."""
    lanes = host_features().vector_bytes // (8 if dtype == "f64" else 4)
    return 4, 2 * lanes


def _kernel(dtype: str) -> str:
    lay = "strided<[?, 1], offset: ?>"
    T = dtype
    return (f"func.func @esk_mm_blk_{T}(%A: memref<{MB}x{KB}x{T}, {lay}>, "
            f"%B: memref<{KB}x{NB}x{T}, {lay}>, %C: memref<{MB}x{NB}x{T}, {lay}>) {{\n"
            f"  linalg.matmul ins(%A, %B : memref<{MB}x{KB}x{T}, {lay}>, memref<{KB}x{NB}x{T}, {lay}>) "
            f"outs(%C : memref<{MB}x{NB}x{T}, {lay}>)\n  return\n}}")


def _schedule() -> str:
    seqs = []
    for T in ("f64", "f32"):
        ri, rj = register_tile(T)
        seqs.append(f"""
  %f_{T} = transform.structured.match ops{{["func.func"]}} attributes {{sym_name = "esk_mm_blk_{T}"}} in %root
      : (!transform.any_op) -> !transform.any_op
  %mm_{T} = transform.structured.match ops{{["linalg.matmul"]}} in %f_{T} : (!transform.any_op) -> !transform.any_op
  %t_{T}, %l0_{T}, %l1_{T}, %l2_{T} = transform.structured.tile_using_for %mm_{T} tile_sizes [{ri}, {rj}, 1]
      interchange = [1, 0, 2]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
  transform.structured.vectorize %t_{T} {{create_named_contraction}} : !transform.any_op""")
    return ("transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {"
            + "".join(seqs) + """
  %f = transform.structured.match ops{["func.func"]} in %root : (!transform.any_op) -> !transform.any_op
  transform.apply_patterns to %f {
    transform.apply_patterns.memref.fold_memref_alias_ops
    transform.apply_patterns.canonicalization
  } : !transform.any_op
  %f2 = transform.structured.hoist_redundant_vector_transfers %f : (!transform.any_op) -> !transform.any_op
  transform.apply_patterns to %f2 {
    transform.apply_patterns.vector.lower_contraction lowering_strategy = "outerproduct"
    transform.apply_patterns.vector.lower_outerproduct
    transform.apply_patterns.canonicalization
  } : !transform.any_op
  transform.yield
}""")


def _entry(T: str) -> str:
    """``esk_mm_blk_T_entry(A, lda, B, ldb, C, ldc)``: the block kernel with bare pointers."""
    args = []
    lines = [f"llvm.func @esk_mm_blk_{T}_entry(%a: !llvm.ptr, %lda: i64, %b: !llvm.ptr, %ldb: i64, "
             f"%c: !llvm.ptr, %ldc: i64) {{",
             "  %z = llvm.mlir.constant(0 : i64) : i64", "  %one = llvm.mlir.constant(1 : i64) : i64"]
    for name, rows, cols, ld in (("a", MB, KB, "%lda"), ("b", KB, NB, "%ldb"), ("c", MB, NB, "%ldc")):
        lines += [f"  %{name}r = llvm.mlir.constant({rows} : i64) : i64",
                  f"  %{name}c = llvm.mlir.constant({cols} : i64) : i64"]
        args += [f"%{name}", f"%{name}", "%z", f"%{name}r", f"%{name}c", ld, "%one"]
    types = ", ".join((["!llvm.ptr", "!llvm.ptr"] + ["i64"] * 5) * 3)
    lines += [f"  llvm.call @esk_mm_blk_{T}({', '.join(args)}) : ({types}) -> ()", "  llvm.return", "}"]
    return "\n".join(lines)


def matmul_llvm_text() -> str:
    """The block kernels and their entries as LLVM-dialect ops (text, no enclosing module)."""
    from mlir import ir, passmanager

    from eshkol.dialect.ops import make_context

    ctx = make_context()
    with ctx, ir.Location.unknown():
        m = ir.Module.parse("module attributes {transform.with_named_sequence} {\n"
                            + "\n".join(_kernel(T) for T in ("f64", "f32")) + "\n" + _schedule() + "\n}")
        passmanager.PassManager.parse("builtin.module(transform-interpreter)").run(m.operation)
        for op in list(m.body.operations):
            if op.operation.name == "transform.named_sequence":
                op.operation.erase()
        passmanager.PassManager.parse(
            "builtin.module(convert-vector-to-scf{full-unroll=true target-rank=1},lower-affine,"
            "expand-strided-metadata,finalize-memref-to-llvm,convert-scf-to-cf,convert-vector-to-llvm,"
            "convert-ub-to-llvm,convert-arith-to-llvm,convert-index-to-llvm,convert-func-to-llvm,"
            "convert-cf-to-llvm,reconcile-unrealized-casts)").run(m.operation)
        body = [str(op) for op in m.body.operations]
    return "\n".join(body + [_entry("f64"), _entry("f32")])
