// eshkol-opt --help lists every registered pass and pipeline with its description.
// RUN: %eshkol-opt --help | FileCheck %s

// CHECK: Usage: eshkol-opt
// CHECK: --pass-pipeline
// CHECK: Passes:
// CHECK-NEXT: --eshkol-fold-constants Fold fixnum arithmetic
// CHECK-NEXT: --eshkol-dce Erase eshkol ops whose results are unused
// CHECK-NEXT: --eshkol-to-llvm Lower the eshkol dialect
// CHECK: Pipelines:
// CHECK-NEXT: --eshkol-optimize optimize the eshkol dialect
// CHECK-NEXT: --eshkol-tensor-to-linalg fuse tensor chains
// CHECK: --eshkol-lower-cpu kernels: fuse, bufferize, vectorize, lower
// CHECK-NEXT: --eshkol-cpu the CPU path
