/* Tensors: the runtime object, the buffer pool and the kernels untyped code calls.
 * (Placeholder until the tensor runtime lands: no operand is handled yet.) */
#include "eshkol_rt.h"

int esk_tensor_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out) {
  (void)loc; (void)op; (void)argc; (void)args; (void)out;
  return 0;
}
int esk_print_tensor(esk_value v, FILE *out, int write) {
  (void)v; (void)out; (void)write;
  return 0;
}
