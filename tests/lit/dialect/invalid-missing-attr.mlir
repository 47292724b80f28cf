// An op missing a required attribute, and a truthy whose result is not i1, are rejected.
// RUN: split-file %s %t
// RUN: not %eshkol-opt %t/missing.mlir 2>&1 | FileCheck --check-prefix=MISSING %s
// RUN: not %eshkol-opt %t/badresult.mlir 2>&1 | FileCheck --check-prefix=RESULT %s
// RUN: not %eshkol-opt %t/unknown.mlir 2>&1 | FileCheck --check-prefix=UNKNOWN %s

// MISSING: error: invalid MLIR
// MISSING: 2:8: 'eshkol.const_int' op attribute "value" is expected but not provided
// RESULT: error: invalid MLIR
// RESULT: 2:8: expected 'i1' but got '!eshkol.value'
// UNKNOWN: error: invalid MLIR
// UNKNOWN: unregistered operation 'eshkol.no_such_op'

//--- missing.mlir
func.func @f() -> !eshkol.value {
  %0 = "eshkol.const_int"() : () -> !eshkol.value
  return %0 : !eshkol.value
}
//--- badresult.mlir
func.func @f(%x: !eshkol.value) -> !eshkol.value {
  %0 = "eshkol.truthy"(%x) : (!eshkol.value) -> !eshkol.value
  return %x : !eshkol.value
}
//--- unknown.mlir
func.func @f() {
  %0 = "eshkol.no_such_op"() : () -> !eshkol.value
  return
}
