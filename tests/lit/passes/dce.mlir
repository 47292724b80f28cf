// eshkol-dce erases unused pure ops (constants, closures, box reads) and keeps effects:
// global reads (they check definedness), calls and primitives.
// RUN: %eshkol-opt %s --eshkol-dce | FileCheck %s

"eshkol.global"() {sym_name = "g"} : () -> ()
func.func @f(%x: !eshkol.value) -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = 1 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_string"() {value = "unused"} : () -> !eshkol.value
  %2 = "eshkol.make_closure"(%0) {callee = @f} : (!eshkol.value) -> !eshkol.value
  %3 = "eshkol.unbox"(%x) : (!eshkol.value) -> !eshkol.value
  %4 = "eshkol.global_ref"() {name = @g} : () -> !eshkol.value
  %5 = "eshkol.prim"(%x) {name = "display"} : (!eshkol.value) -> !eshkol.value
  %6 = "eshkol.call"(%x) : (!eshkol.value) -> !eshkol.value
  %7 = "eshkol.const_int"() {value = 42 : i64} : () -> !eshkol.value
  return %7 : !eshkol.value
}

// CHECK-LABEL: func.func @f(
// CHECK-SAME:      [[X:%[a-z0-9]+]]: !eshkol.value
// CHECK-NEXT:    "eshkol.global_ref"() {name = @g}
// CHECK-NEXT:    "eshkol.prim"([[X]]) {name = "display"}
// CHECK-NEXT:    "eshkol.call"([[X]])
// CHECK-NEXT:    [[K:%.*]] = "eshkol.const_int"() {value = 42 : i64}
// CHECK-NEXT:    return [[K]]
// CHECK-NOT:   eshkol.const_string
