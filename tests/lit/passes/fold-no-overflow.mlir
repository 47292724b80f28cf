// Folding never changes behaviour: results outside the fixnum range, non-integer operands and
// division are left for run time.
// RUN: %eshkol-opt %s --eshkol-fold-constants | FileCheck %s

func.func @overflow() -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = 9223372036854775807 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_int"() {value = 1 : i64} : () -> !eshkol.value
  %2 = "eshkol.prim"(%0, %1) {name = "%add2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %2 : !eshkol.value
}
// CHECK-LABEL: func.func @overflow()
// CHECK:         [[R:%.*]] = "eshkol.prim"({{.*}}) {name = "%add2"}
// CHECK-NEXT:    return [[R]]

func.func @mul_overflow() -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = 4611686018427387904 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_int"() {value = 2 : i64} : () -> !eshkol.value
  %2 = "eshkol.prim"(%0, %1) {name = "%mul2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %2 : !eshkol.value
}
// CHECK-LABEL: func.func @mul_overflow()
// CHECK:         "eshkol.prim"({{.*}}) {name = "%mul2"}

func.func @sub_underflow() -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = -9223372036854775808 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_int"() {value = 1 : i64} : () -> !eshkol.value
  %2 = "eshkol.prim"(%0, %1) {name = "%sub2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %2 : !eshkol.value
}
// CHECK-LABEL: func.func @sub_underflow()
// CHECK:         "eshkol.prim"({{.*}}) {name = "%sub2"}

func.func @float_and_div() -> !eshkol.value {
  %0 = "eshkol.const_float"() {value = 1.5 : f64} : () -> !eshkol.value
  %1 = "eshkol.const_int"() {value = 2 : i64} : () -> !eshkol.value
  %2 = "eshkol.prim"(%0, %1) {name = "%add2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  %3 = "eshkol.const_int"() {value = 0 : i64} : () -> !eshkol.value
  %4 = "eshkol.prim"(%1, %3) {name = "%div2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %4 : !eshkol.value
}
// CHECK-LABEL: func.func @float_and_div()
// CHECK:         "eshkol.prim"({{.*}}) {name = "%add2"}
// CHECK:         "eshkol.prim"({{.*}}) {name = "%div2"}
