// A const_int whose value is a float violates the IRDL constraint: a diagnostic, exit 1.
// RUN: not %eshkol-opt %s 2>&1 | FileCheck %s

func.func @f() -> !eshkol.value {
  %0 = "eshkol.const_int"() {value = 3.0 : f64} : () -> !eshkol.value
  return %0 : !eshkol.value
}

// CHECK: error: invalid MLIR
// CHECK: [[@LINE-5]]:8: expected base attribute 'builtin.integer' but got 'builtin.float'
