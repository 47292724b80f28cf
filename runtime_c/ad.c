/* Runtime automatic differentiation: dual numbers (forward mode) and a tape (reverse mode),
 * the fallback for code the dialect transformation cannot see.
 * (Placeholder until the AD runtime lands.) */
#include "eshkol_rt.h"

int esk_ad_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out) {
  (void)loc; (void)op; (void)argc; (void)args; (void)out;
  return 0;
}
esk_value esk_ad_primal(esk_value v) { return v; }
