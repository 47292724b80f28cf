// Every eshkol op, written in generic form, parses and prints back unchanged; printing and
// re-parsing the output gives the same text again.
// RUN: %eshkol-opt %s | FileCheck %s
// RUN: %eshkol-opt %s | %eshkol-opt - | FileCheck %s

"eshkol.global"() {sym_name = "g"} : () -> ()
func.func @esk_toplevel() -> !eshkol.value attributes {eshkol.entry} {
  %0 = "eshkol.const_int"() {value = 3 : i64} : () -> !eshkol.value
  %1 = "eshkol.const_float"() {value = 2.5 : f64} : () -> !eshkol.value
  %2 = "eshkol.const_imm"() {kind = "bool", value = 1 : i64} : () -> !eshkol.value
  %3 = "eshkol.const_string"() {value = "hi\n"} : () -> !eshkol.value
  %4 = "eshkol.const_symbol"() {value = "sym"} : () -> !eshkol.value
  "eshkol.global_set"(%0) {kind = "define", name = @g} : (!eshkol.value) -> ()
  %5 = "eshkol.global_ref"() {name = @g} : () -> !eshkol.value
  %6 = "eshkol.make_closure"(%5, %1) {callee = @f} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  "eshkol.closure_set"(%6, %2) {index = 1 : i64} : (!eshkol.value, !eshkol.value) -> ()
  %7 = "eshkol.prim_ref"() {name = "car"} : () -> !eshkol.value
  %8 = "eshkol.call"(%6, %3, %4) : (!eshkol.value, !eshkol.value, !eshkol.value) -> !eshkol.value
  %9 = "eshkol.prim"(%8, %0) {name = "%add2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
  return %9 : !eshkol.value
}
func.func @f(%self: !eshkol.value, %a: !eshkol.value, %b: !eshkol.value) -> !eshkol.value {
  %0 = "eshkol.closure_ref"(%self) {index = 0 : i64} : (!eshkol.value) -> !eshkol.value
  %1 = "eshkol.box"(%0) : (!eshkol.value) -> !eshkol.value
  "eshkol.set_box"(%1, %a) : (!eshkol.value, !eshkol.value) -> ()
  %2 = "eshkol.unbox"(%1) : (!eshkol.value) -> !eshkol.value
  %3 = "eshkol.is_default"(%b) : (!eshkol.value) -> i1
  cf.cond_br %3, ^bb1, ^bb2
^bb1:
  %4 = "eshkol.truthy"(%2) : (!eshkol.value) -> i1
  return %2 : !eshkol.value
^bb2:
  %5 = "eshkol.tail_call"(%self, %2, %b) : (!eshkol.value, !eshkol.value, !eshkol.value) -> !eshkol.value
  return %5 : !eshkol.value
}

// CHECK-LABEL: module {
// CHECK-NEXT:    "eshkol.global"() {sym_name = "g"} : () -> ()
// CHECK-LABEL:   func.func @esk_toplevel() -> !eshkol.value attributes {eshkol.entry} {
// CHECK-NEXT:      [[I:%.*]] = "eshkol.const_int"() {value = 3 : i64} : () -> !eshkol.value
// CHECK-NEXT:      [[F:%.*]] = "eshkol.const_float"() {value = 2.500000e+00 : f64} : () -> !eshkol.value
// CHECK-NEXT:      [[B:%.*]] = "eshkol.const_imm"() {kind = "bool", value = 1 : i64} : () -> !eshkol.value
// CHECK-NEXT:      [[S:%.*]] = "eshkol.const_string"() {value = "hi\0A"} : () -> !eshkol.value
// CHECK-NEXT:      [[Y:%.*]] = "eshkol.const_symbol"() {value = "sym"} : () -> !eshkol.value
// CHECK-NEXT:      "eshkol.global_set"([[I]]) {kind = "define", name = @g} : (!eshkol.value) -> ()
// CHECK-NEXT:      [[G:%.*]] = "eshkol.global_ref"() {name = @g} : () -> !eshkol.value
// CHECK-NEXT:      [[C:%.*]] = "eshkol.make_closure"([[G]], [[F]]) {callee = @f} : (!eshkol.value, !eshkol.value) -> !eshkol.value
// CHECK-NEXT:      "eshkol.closure_set"([[C]], [[B]]) {index = 1 : i64} : (!eshkol.value, !eshkol.value) -> ()
// CHECK-NEXT:      {{%.*}} = "eshkol.prim_ref"() {name = "car"} : () -> !eshkol.value
// CHECK-NEXT:      [[R:%.*]] = "eshkol.call"([[C]], [[S]], [[Y]]) : (!eshkol.value, !eshkol.value, !eshkol.value) -> !eshkol.value
// CHECK-NEXT:      [[P:%.*]] = "eshkol.prim"([[R]], [[I]]) {name = "%add2"} : (!eshkol.value, !eshkol.value) -> !eshkol.value
// CHECK-NEXT:      return [[P]] : !eshkol.value
// CHECK-LABEL:   func.func @f(
// CHECK-SAME:        [[SELF:%.*]]: !eshkol.value, [[A:%.*]]: !eshkol.value, [[BB:%[a-z0-9]*]]: !eshkol.value) -> !eshkol.value {
// CHECK-NEXT:      [[CR:%.*]] = "eshkol.closure_ref"([[SELF]]) {index = 0 : i64} : (!eshkol.value) -> !eshkol.value
// CHECK-NEXT:      [[BOX:%.*]] = "eshkol.box"([[CR]]) : (!eshkol.value) -> !eshkol.value
// CHECK-NEXT:      "eshkol.set_box"([[BOX]], [[A]]) : (!eshkol.value, !eshkol.value) -> ()
// CHECK-NEXT:      [[U:%.*]] = "eshkol.unbox"([[BOX]]) : (!eshkol.value) -> !eshkol.value
// CHECK-NEXT:      [[D:%.*]] = "eshkol.is_default"([[BB]]) : (!eshkol.value) -> i1
// CHECK-NEXT:      cf.cond_br [[D]], ^bb1, ^bb2
// CHECK-NEXT:    ^bb1:
// CHECK-NEXT:      {{%.*}} = "eshkol.truthy"([[U]]) : (!eshkol.value) -> i1
// CHECK-NEXT:      return [[U]] : !eshkol.value
// CHECK-NEXT:    ^bb2:
// CHECK-NEXT:      [[T:%.*]] = "eshkol.tail_call"([[SELF]], [[U]], [[BB]]) : (!eshkol.value, !eshkol.value, !eshkol.value) -> !eshkol.value
// CHECK-NEXT:      return [[T]] : !eshkol.value
