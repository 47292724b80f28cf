// A hand-written kernel module (as eshkol-tensor-kernels makes them) through the stages:
// fusion leaves one generic; bufferization writes straight into %out (no allocation).
// RUN: env ESHKOL_CPU_ISA=avx2 %eshkol-opt %s --eshkol-cpu-fuse | FileCheck %s --check-prefix=FUSE
// RUN: env ESHKOL_CPU_ISA=avx2 %eshkol-opt %s --eshkol-cpu-fuse --eshkol-cpu-bufferize | FileCheck %s --check-prefix=BUF
// RUN: env ESHKOL_CPU_ISA=avx2 %eshkol-opt %s --eshkol-lower-cpu | FileCheck %s --check-prefix=LOW

#id = affine_map<(d0) -> (d0)>
module {
  module @esk_kernels {
    func.func @k_f64(%out: memref<?xf64>, %in0: memref<?xf64>, %s1: f64) attributes {eshkol.kernel_abi = "ois", eshkol.tile = 16 : i64} {
      %t0 = bufferization.to_tensor %in0 restrict : memref<?xf64> to tensor<?xf64>
      %c0 = arith.constant 0 : index
      %n = tensor.dim %t0, %c0 : tensor<?xf64>
      %e1 = tensor.empty(%n) : tensor<?xf64>
      %v1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%t0 : tensor<?xf64>) outs(%e1 : tensor<?xf64>) {
      ^bb0(%x: f64, %o: f64):
        %r = arith.subf %x, %s1 : f64
        linalg.yield %r : f64
      } -> tensor<?xf64>
      %e2 = tensor.empty(%n) : tensor<?xf64>
      %v2 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%v1 : tensor<?xf64>) outs(%e2 : tensor<?xf64>) {
      ^bb0(%x: f64, %o: f64):
        %r = arith.mulf %x, %x : f64
        linalg.yield %r : f64
      } -> tensor<?xf64>
      bufferization.materialize_in_destination %v2 in restrict writable %out : (tensor<?xf64>, memref<?xf64>) -> ()
      return
    }
  }
}
// FUSE: linalg.generic
// FUSE: arith.subf
// FUSE-NEXT: arith.mulf
// FUSE-NOT: linalg.generic
// BUF-NOT: tensor.empty
// BUF: linalg.generic {{.*}} ins(%arg1 : memref<?xf64>) outs(%arg0 : memref<?xf64>)
// LOW-NOT: builtin.module
// LOW: llvm.func internal @k_f64(
// LOW: llvm.load {{.*}} -> vector<16xf64>
// LOW: llvm.func internal @k_f64_entry(%arg0: i64, %arg1: i64, %arg2: !llvm.ptr, %arg3: !llvm.ptr, %arg4: !llvm.ptr)
