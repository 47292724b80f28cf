// eshkol-expand-math: math.exp on f64 (scalar or vector) becomes FMA polynomial code that
// vectorizes (no libm call per lane); f32 is computed in f64 and rounded once.
// RUN: %eshkol-opt %s --eshkol-expand-math | FileCheck %s

func.func @e64(%x: vector<4xf64>) -> vector<4xf64> {
  %y = math.exp %x : vector<4xf64>
  return %y : vector<4xf64>
}
// CHECK-LABEL: func.func @e64
// CHECK-NOT: math.exp
// CHECK-NOT: arith.fptosi
// CHECK: math.fma
// CHECK: arith.bitcast %{{.*}} : vector<4xf64> to vector<4xi64>
// CHECK: arith.shli %{{.*}} : vector<4xi64>
// CHECK: arith.bitcast %{{.*}} : vector<4xi64> to vector<4xf64>
// CHECK: arith.cmpf uno

func.func @e32(%x: f32) -> f32 {
  %y = math.exp %x : f32
  return %y : f32
}
// CHECK-LABEL: func.func @e32
// CHECK: arith.extf %{{.*}} : f32 to f64
// CHECK: arith.truncf %{{.*}} : f64 to f32
