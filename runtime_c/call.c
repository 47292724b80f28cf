/* The calling convention's shared state and the primitives that call procedures or take any
 * number of arguments (compiled code reaches these through the primitive registry). */
#include "eshkol_rt.h"

#include <string.h>

/* Arguments of every compiled call (see esk_code in eshkol_rt.h).  A global, not the stack,
 * so that a musttail callee can still read them; in .bss, so the collector scans it. */
esk_value esk_argbuf_main[ESK_MAX_ARGS];
/* Location of the call being made, for the callee's arity error. */
const char *esk_callsite;

_Noreturn void esk_error_arity_at(esk_closure *f, int64_t argc, int64_t min, int64_t max) {
  esk_error_arity_range(esk_callsite, f, argc, min, max);
}

void esk_init_globals(esk_value *g, int64_t n) {
  for (int64_t i = 0; i < n; i++) g[i] = (esk_value){ESK_T_UNBOUND, 0};
  esk_register_roots(g, g + n);
}

/* ---- n-ary numeric procedures (used when +, <, max ... are passed as values) --------------- */

typedef esk_value (*esk_binop)(const char *, esk_value, esk_value);

static esk_value fold(const char *loc, esk_binop op, esk_value acc, int64_t argc, esk_value *argv) {
  for (int64_t i = 0; i < argc; i++) acc = op(loc, acc, argv[i]);
  return acc;
}

static esk_value chain(const char *loc, esk_binop op, int64_t argc, esk_value *argv) {
  esk_value result = {ESK_T_BOOL, 1};
  if (argc == 1) return op(loc, argv[0], argv[0]); /* type check only */
  for (int64_t i = 0; i + 1 < argc; i++) {
    esk_value r = op(loc, argv[i], argv[i + 1]);
    if (r.payload == 0) result = r; /* keep checking the types of the rest */
  }
  return result;
}

#define FIX(n) ((esk_value){ESK_T_FIXNUM, (n)})

esk_value esk_prim_recip(const char *loc, esk_value a) { return esk_prim_div2(loc, FIX(1), a); }

esk_value esk_prim_add(const char *loc, int64_t argc, esk_value *argv) {
  return fold(loc, esk_prim_add2, FIX(0), argc, argv);
}
esk_value esk_prim_mul(const char *loc, int64_t argc, esk_value *argv) {
  return fold(loc, esk_prim_mul2, FIX(1), argc, argv);
}
esk_value esk_prim_sub(const char *loc, int64_t argc, esk_value *argv) {
  if (argc == 1) return esk_prim_neg(loc, argv[0]);
  return fold(loc, esk_prim_sub2, argv[0], argc - 1, argv + 1);
}
esk_value esk_prim_div(const char *loc, int64_t argc, esk_value *argv) {
  if (argc == 1) return esk_prim_recip(loc, argv[0]);
  return fold(loc, esk_prim_div2, argv[0], argc - 1, argv + 1);
}
esk_value esk_prim_min(const char *loc, int64_t argc, esk_value *argv) {
  return fold(loc, esk_prim_min2, argv[0], argc, argv);
}
esk_value esk_prim_max(const char *loc, int64_t argc, esk_value *argv) {
  return fold(loc, esk_prim_max2, argv[0], argc, argv);
}
esk_value esk_prim_gcd(const char *loc, int64_t argc, esk_value *argv) {
  return fold(loc, esk_prim_gcd2, FIX(0), argc, argv);
}
esk_value esk_prim_lcm(const char *loc, int64_t argc, esk_value *argv) {
  return fold(loc, esk_prim_lcm2, FIX(1), argc, argv);
}
esk_value esk_prim_num_eq(const char *loc, int64_t argc, esk_value *argv) {
  return chain(loc, esk_prim_num_eq2, argc, argv);
}
esk_value esk_prim_num_lt(const char *loc, int64_t argc, esk_value *argv) {
  return chain(loc, esk_prim_num_lt2, argc, argv);
}
esk_value esk_prim_num_gt(const char *loc, int64_t argc, esk_value *argv) {
  return chain(loc, esk_prim_num_gt2, argc, argv);
}
esk_value esk_prim_num_le(const char *loc, int64_t argc, esk_value *argv) {
  return chain(loc, esk_prim_num_le2, argc, argv);
}
esk_value esk_prim_num_ge(const char *loc, int64_t argc, esk_value *argv) {
  return chain(loc, esk_prim_num_ge2, argc, argv);
}
esk_value esk_prim_atan_n(const char *loc, int64_t argc, esk_value *argv) {
  return argc == 1 ? esk_prim_atan(loc, argv[0]) : esk_prim_atan2(loc, argv[0], argv[1]);
}

/* ---- apply ---------------------------------------------------------------------------- */

esk_value esk_prim_apply(const char *loc, int64_t argc, esk_value *argv) {
  esk_value f = argv[0];
  if (f.tag != ESK_T_CLOSURE) esk_error_not_procedure(loc, f);
  int64_t n = argc - 2 > 0 ? argc - 2 : 0;
  esk_value lst = argc >= 2 ? argv[argc - 1] : (esk_value){ESK_T_NIL, 0};
  for (esk_value p = lst; p.tag == ESK_T_PAIR; p = ((esk_pair *)p.payload)->cdr) n++;
  /* More arguments than the argument buffer holds (R7RS sets no limit: (apply + long-list)):
   * a collected buffer of their own, which the callee reads like the usual one. */
  esk_value *buf = n > ESK_MAX_ARGS ? esk_alloc((size_t)n * sizeof(esk_value)) : esk_argbuf_main;
  int64_t k = 0;
  /* argv may alias nothing in buf: it is the caller's scratch, so copying in order is safe. */
  for (int64_t i = 1; i + 1 < argc; i++) buf[k++] = argv[i];
  esk_value p = lst;
  for (; p.tag == ESK_T_PAIR; p = ((esk_pair *)p.payload)->cdr) buf[k++] = ((esk_pair *)p.payload)->car;
  if (p.tag != ESK_T_NIL) esk_error_type(loc, "apply", "list", lst);
  esk_callsite = loc;
  esk_closure *c = (esk_closure *)f.payload;
  return c->code(c, k, buf);
}
