// eshkol-fold-constants replaces fixnum arithmetic and comparisons of constants by constants.
// RUN: %eshkol-opt %s | FileCheck --check-prefix=BEFORE %s
// RUN: %eshkol-opt %s --eshkol-fold-constants | FileCheck --check-prefix=AFTER %s

func.func @add() -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = 1 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_int"() {value = 2 : i64} : () -> !eshkol.value
  %2 = "eshkol.prim"(%0, %1) {name = "%add2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %2 : !eshkol.value
}
// BEFORE-LABEL: func.func @add()
// BEFORE:         [[S:%.*]] = "eshkol.prim"({{.*}}) {name = "%add2"}
// BEFORE-NEXT:    return [[S]]
// AFTER-LABEL:  func.func @add()
// AFTER-NOT:      eshkol.prim
// AFTER:          [[C:%.*]] = "eshkol.const_int"() {value = 3 : i64}
// AFTER-NEXT:     return [[C]] : !eshkol.value

func.func @nested(%x: !eshkol.value) -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = 10 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_int"() {value = 4 : i64} : () -> !eshkol.value
  %2 = "eshkol.prim"(%0, %1) {name = "%sub2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  %3 = "eshkol.prim"(%2, %1) {name = "%mul2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  %4 = "eshkol.prim"(%x, %3) {name = "%add2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %4 : !eshkol.value
}
// AFTER-LABEL:  func.func @nested(
// AFTER-SAME:       [[X:%[a-z0-9]+]]: !eshkol.value
// AFTER:          [[M:%.*]] = "eshkol.const_int"() {value = 24 : i64}
// AFTER-NEXT:     [[R:%.*]] = "eshkol.prim"([[X]], [[M]]) {name = "%add2"}
// AFTER-NEXT:     return [[R]]

func.func @compare() -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = 1 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_int"() {value = 2 : i64} : () -> !eshkol.value
  %2 = "eshkol.prim"(%0, %1) {name = "%num<2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  %3 = "eshkol.prim"(%0, %1) {name = "%num=2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  %4 = "eshkol.prim"(%2, %3) {name = "cons"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %4 : !eshkol.value
}
// AFTER-LABEL:  func.func @compare()
// AFTER:          [[T:%.*]] = "eshkol.const_imm"() {kind = "bool", value = 1 : i64}
// AFTER-NEXT:     [[F:%.*]] = "eshkol.const_imm"() {kind = "bool", value = 0 : i64}
// AFTER-NEXT:     {{%.*}} = "eshkol.prim"([[T]], [[F]]) {name = "cons"}
