// An unknown pass name is a diagnostic, not a crash.
// RUN: not %eshkol-opt %s --pass-pipeline='builtin.module(no-such-pass)' 2>&1 | FileCheck %s

func.func @f() {
  return
}

// CHECK: error: unknown pass or bad pass options: 'no-such-pass'
// CHECK-NOT: Traceback
