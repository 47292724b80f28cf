/* Runtime automatic differentiation: dual numbers (forward mode) and a tape (reverse mode),
 * the fallback for code the dialect transformation cannot see.
 * (Placeholder until the AD runtime lands.) */
#include "eshkol_rt.h"

int esk_ad_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out) {
  (void)loc; (void)op; (void)argc; (void)args; (void)out;
  return 0;
}
esk_value esk_ad_primal(esk_value v) { return v; }

/* Placeholders for the tensor-prim AD hooks (helper T1); the AD runtime replaces them. */
int esk_ad_any(int64_t argc, const esk_value *argv) {
  for (int64_t i = 0; i < argc; i++)
    if (argv[i].tag == ESK_T_DUAL || argv[i].tag == ESK_T_ADNODE) return 1;
  return 0;
}
esk_value esk_ad_tensor_prim(const char *loc, const char *name, int64_t argc, const esk_value *argv) {
  (void)argc; (void)argv;
  esk_errorf(loc, "%s: differentiation through this tensor operation is not supported yet", name);
}
