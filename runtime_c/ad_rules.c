/* Derivative rules of the scalar builtins numbers.c hands to ad.c (+ - * / and the math
 * functions, min/max, exactness conversions).  The same rules serve tensors: every operation
 * here is elementwise and the generic operators they use broadcast.  Tensor-only builtins
 * (reductions, matmul, indexing, ...) have their rules in ad_tensor.c.
 *
 * Notation in the comments: p primal arguments, d tangents, r the result, g the result's
 * cotangent.  Rules only use AD-aware operations (see ad.h). */
#include <math.h>
#include <string.h>

#include "ad.h"

#define ONE esk_fixnum(1)
#define TWO esk_fixnum(2)

/* ---- unary: x * f'(p), the same product for the tangent (x = d) and the cotangent (x = g) -- */

#define UNARY(NAME, SCHEME, PRIM, TIMES_DERIV, PARTIAL)                                    \
  static esk_value NAME##_primal(const char *loc, int64_t n, const esk_value *a) {         \
    (void)n;                                                                               \
    return PRIM(loc, a[0]);                                                                \
  }                                                                                        \
  static esk_value NAME##_times_deriv(const char *loc, esk_value x, esk_value p,           \
                                      esk_value r) {                                       \
    (void)p; (void)r;                                                                      \
    return TIMES_DERIV;                                                                    \
  }                                                                                        \
  static esk_value NAME##_jvp(const char *loc, int64_t n, const esk_value *p,              \
                              const esk_value *d, esk_value r) {                           \
    (void)n;                                                                               \
    return ad_is_zero(d[0]) ? d[0] : NAME##_times_deriv(loc, d[0], p[0], r);               \
  }                                                                                        \
  static void NAME##_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r,      \
                         esk_value g, const int *need, esk_value *out) {                   \
    (void)n; (void)need;                                                                   \
    out[0] = NAME##_times_deriv(loc, g, p[0], r);                                          \
  }                                                                                        \
  static void NAME##_partials(const double *p, double r, double *dp) {                     \
    double x = p[0];                                                                       \
    (void)x; (void)r;                                                                      \
    dp[0] = (PARTIAL);                                                                     \
  }                                                                                        \
  static const ad_rule r_##NAME = {SCHEME, NAME##_primal, NAME##_jvp, NAME##_vjp, NULL,    \
                                   NAME##_partials};

/* sign(p) as -1, 0, 1 (a zero derivative: recorded nowhere). */
static esk_value sign_primal(const char *loc, int64_t n, const esk_value *a);
static const ad_rule r_sign = {"%sign", sign_primal, NULL, NULL, NULL};
static esk_value sign_of(const char *loc, esk_value p) { return ad_call1(loc, &r_sign, p); }

/* sqrt(1 - p^2) */
static esk_value one_minus_sq_sqrt(const char *loc, esk_value p) {
  return esk_prim_sqrt(loc, esk_prim_sub2(loc, ONE, esk_prim_square(loc, p)));
}

UNARY(neg, "-", esk_prim_neg, ad_neg(loc, x),
      -1.0)
UNARY(exp, "exp", esk_prim_exp, ad_mul(loc, x, r),
      r)
UNARY(log, "log", esk_prim_log, ad_div(loc, x, p),
      1.0 / x)
UNARY(sin, "sin", esk_prim_sin, ad_mul(loc, x, esk_prim_cos(loc, p)),
      cos(x))
UNARY(cos, "cos", esk_prim_cos, ad_neg(loc, ad_mul(loc, x, esk_prim_sin(loc, p))),
      -sin(x))
UNARY(tan, "tan", esk_prim_tan, ad_mul(loc, x, esk_prim_add2(loc, ONE, esk_prim_square(loc, r))),
      1.0 + r * r)
UNARY(sqrt, "sqrt", esk_prim_sqrt, ad_div(loc, x, esk_prim_mul2(loc, TWO, r)),
      1.0 / (2.0 * r))
UNARY(abs, "abs", esk_prim_abs, ad_mul(loc, x, sign_of(loc, p)),
      x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0)
UNARY(asin, "asin", esk_prim_asin, ad_div(loc, x, one_minus_sq_sqrt(loc, p)),
      1.0 / sqrt(1.0 - x * x))
UNARY(acos, "acos", esk_prim_acos, ad_neg(loc, ad_div(loc, x, one_minus_sq_sqrt(loc, p))),
      -1.0 / sqrt(1.0 - x * x))
UNARY(atan, "atan", esk_prim_atan, ad_div(loc, x, esk_prim_add2(loc, ONE, esk_prim_square(loc, p))),
      1.0 / (1.0 + x * x))
UNARY(sinh, "sinh", esk_prim_sinh, ad_mul(loc, x, esk_prim_cosh(loc, p)),
      cosh(x))
UNARY(cosh, "cosh", esk_prim_cosh, ad_mul(loc, x, esk_prim_sinh(loc, p)),
      sinh(x))
UNARY(tanh, "tanh", esk_prim_tanh, ad_mul(loc, x, esk_prim_sub2(loc, ONE, esk_prim_square(loc, r))),
      1.0 - r * r)
UNARY(square, "square", esk_prim_square, ad_mul(loc, x, esk_prim_mul2(loc, TWO, p)),
      2.0 * x)
/* exact->inexact passes derivatives through, made inexact like the value. */
UNARY(inexact, "exact->inexact", esk_prim_exact_to_inexact, esk_prim_exact_to_inexact(loc, x),
      1.0)
UNARY(exact, "inexact->exact", esk_prim_inexact_to_exact, x,
      1.0)

static esk_value sign_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  esk_value p = a[0];
  if (p.tag == ESK_T_TENSOR) return ad_tensor_sign(loc, p);
  int s = esk_is_true(esk_prim_is_positive(loc, p)) ? 1 : esk_is_true(esk_prim_is_negative(loc, p)) ? -1 : 0;
  return p.tag == ESK_T_FLONUM ? esk_flonum(s) : esk_fixnum(s);
}

/* ---- binary, elementwise with broadcasting ------------------------------------------------- */

/* The tangent d_i of an operand, broadcast to the result's shape. */
static esk_value bc(const char *loc, esk_value d, esk_value r) {
  return ad_is_zero(d) ? d : ad_bcast_like(loc, d, r);
}
/* A cotangent summed down to the operand's shape. */
static esk_value ub(const char *loc, esk_value g, esk_value p) {
  return ad_is_zero(g) ? g : ad_unbcast_like(loc, g, p);
}

#define BINARY_PRIMAL(NAME, PRIM)                                                         \
  static esk_value NAME##_primal(const char *loc, int64_t n, const esk_value *a) {        \
    (void)n;                                                                              \
    return PRIM(loc, a[0], a[1]);                                                         \
  }

BINARY_PRIMAL(add, esk_prim_add2)
BINARY_PRIMAL(sub, esk_prim_sub2)
BINARY_PRIMAL(mul, esk_prim_mul2)
BINARY_PRIMAL(div, esk_prim_div2)
BINARY_PRIMAL(atan2, esk_prim_atan2)
BINARY_PRIMAL(expt, esk_prim_expt)
BINARY_PRIMAL(min, esk_prim_min2)
BINARY_PRIMAL(max, esk_prim_max2)

static esk_value add_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)p;
  if (ad_is_zero(d[0])) return bc(loc, d[1], r);
  if (ad_is_zero(d[1])) return bc(loc, d[0], r);
  return esk_prim_add2(loc, d[0], d[1]);
}
static void add_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)r;
  if (need[0]) out[0] = ub(loc, g, p[0]);
  if (need[1]) out[1] = ub(loc, g, p[1]);
}

static esk_value sub_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)p;
  if (ad_is_zero(d[0])) return bc(loc, ad_neg(loc, d[1]), r);
  if (ad_is_zero(d[1])) return bc(loc, d[0], r);
  return esk_prim_sub2(loc, d[0], d[1]);
}
static void sub_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)r;
  if (need[0]) out[0] = ub(loc, g, p[0]);
  if (need[1]) out[1] = ub(loc, ad_neg(loc, g), p[1]);
}

/* d(ab) = da b + a db */
static esk_value mul_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  esk_value t = ad_add(loc, ad_mul(loc, d[0], p[1]), ad_mul(loc, p[0], d[1]));
  return bc(loc, t, r);
}
static void mul_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)r;
  if (need[0]) out[0] = ub(loc, ad_mul(loc, g, p[1]), p[0]);
  if (need[1]) out[1] = ub(loc, ad_mul(loc, p[0], g), p[1]);
}

/* d(a/b) = (da - r db) / b */
static esk_value div_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  esk_value t = ad_div(loc, ad_sub(loc, d[0], ad_mul(loc, r, d[1])), p[1]);
  return bc(loc, t, r);
}
static void div_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n;
  esk_value gb = ad_div(loc, g, p[1]);
  if (need[0]) out[0] = ub(loc, gb, p[0]);
  if (need[1]) out[1] = ub(loc, ad_neg(loc, ad_mul(loc, gb, r)), p[1]);
}

/* atan(y, x): d = (x dy - y dx) / (x^2 + y^2) */
static esk_value atan2_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  esk_value den = esk_prim_add2(loc, esk_prim_square(loc, p[0]), esk_prim_square(loc, p[1]));
  esk_value num = ad_sub(loc, ad_mul(loc, p[1], d[0]), ad_mul(loc, p[0], d[1]));
  return bc(loc, ad_div(loc, num, den), r);
}
static void atan2_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                      const int *need, esk_value *out) {
  (void)n; (void)r;
  esk_value den = esk_prim_add2(loc, esk_prim_square(loc, p[0]), esk_prim_square(loc, p[1]));
  esk_value gd = ad_div(loc, g, den);
  if (need[0]) out[0] = ub(loc, ad_mul(loc, gd, p[1]), p[0]);
  if (need[1]) out[1] = ub(loc, ad_neg(loc, ad_mul(loc, gd, p[0])), p[1]);
}

/* d(a^b) = b a^(b-1) da + a^b log(a) db.  The first factor keeps exactness for exact b. */
static esk_value expt_da(const char *loc, esk_value a, esk_value b) {
  return esk_prim_mul2(loc, b, esk_prim_expt(loc, a, esk_prim_sub2(loc, b, ONE)));
}
static esk_value expt_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  esk_value t = AD_ZERO;
  if (!ad_is_zero(d[0])) t = ad_mul(loc, d[0], expt_da(loc, p[0], p[1]));
  if (!ad_is_zero(d[1])) t = ad_add(loc, t, ad_mul(loc, d[1], esk_prim_mul2(loc, r, esk_prim_log(loc, p[0]))));
  return bc(loc, t, r);
}
static void expt_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                     const int *need, esk_value *out) {
  (void)n;
  if (need[0]) out[0] = ub(loc, ad_mul(loc, g, expt_da(loc, p[0], p[1])), p[0]);
  if (need[1]) out[1] = ub(loc, ad_mul(loc, g, esk_prim_mul2(loc, r, esk_prim_log(loc, p[0]))), p[1]);
}

/* min/max: the derivative of the chosen operand (the first on ties); elementwise on tensors
 * through a 0/1 mask of where the first operand is chosen. */
static esk_value pick_mask(const char *loc, esk_value a, esk_value b, int want_max) {
  return ad_tensor_pick_mask(loc, ad_plain(a), ad_plain(b), want_max);
}
static esk_value minmax_jvp(const char *loc, const esk_value *p, const esk_value *d, esk_value r, int mx) {
  esk_value m = pick_mask(loc, p[0], p[1], mx);
  if (m.tag == ESK_T_FIXNUM) return bc(loc, m.payload ? d[0] : d[1], r);
  esk_value t = ad_add(loc, ad_mul(loc, d[0], m), ad_mul(loc, d[1], esk_prim_sub2(loc, ONE, m)));
  return bc(loc, t, r);
}
static void minmax_vjp(const char *loc, const esk_value *p, esk_value g, const int *need,
                       esk_value *out, int mx) {
  if (ad_fast_minmax_vjp(p, g, need, out, mx)) return;
  esk_value m = pick_mask(loc, p[0], p[1], mx);
  if (m.tag == ESK_T_FIXNUM) {
    if (need[0] && m.payload) out[0] = ub(loc, g, p[0]);
    if (need[1] && !m.payload) out[1] = ub(loc, g, p[1]);
    return;
  }
  if (need[0]) out[0] = ub(loc, ad_mul(loc, g, m), p[0]);
  if (need[1]) out[1] = ub(loc, ad_mul(loc, g, esk_prim_sub2(loc, ONE, m)), p[1]);
}
static esk_value min_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  return minmax_jvp(loc, p, d, r, 0);
}
static esk_value max_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  return minmax_jvp(loc, p, d, r, 1);
}
static void min_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)r;
  minmax_vjp(loc, p, g, need, out, 0);
}
static void max_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)r;
  minmax_vjp(loc, p, g, need, out, 1);
}

/* Partial derivatives in doubles (the flonum fast path). */
static void add_partials(const double *p, double r, double *dp) {
  (void)p; (void)r;
  dp[0] = 1.0, dp[1] = 1.0;
}
static void sub_partials(const double *p, double r, double *dp) {
  (void)p; (void)r;
  dp[0] = 1.0, dp[1] = -1.0;
}
static void mul_partials(const double *p, double r, double *dp) {
  (void)r;
  dp[0] = p[1], dp[1] = p[0];
}
static void div_partials(const double *p, double r, double *dp) {
  dp[0] = 1.0 / p[1], dp[1] = -r / p[1];
}
static void atan2_partials(const double *p, double r, double *dp) {
  (void)r;
  double den = p[0] * p[0] + p[1] * p[1];
  dp[0] = p[1] / den, dp[1] = -p[0] / den;
}
static void expt_partials(const double *p, double r, double *dp) {
  dp[0] = p[1] * pow(p[0], p[1] - 1.0), dp[1] = r * log(p[0]);
}
static void min_partials(const double *p, double r, double *dp) {
  (void)r;
  dp[0] = p[0] <= p[1], dp[1] = !(p[0] <= p[1]);
}
static void max_partials(const double *p, double r, double *dp) {
  (void)r;
  dp[0] = p[0] >= p[1], dp[1] = !(p[0] >= p[1]);
}

#define BINARY_RULE(NAME, SCHEME) \
  static const ad_rule r_##NAME = {SCHEME, NAME##_primal, NAME##_jvp, NAME##_vjp, NULL, NAME##_partials};
BINARY_RULE(add, "+")
BINARY_RULE(sub, "-")
BINARY_RULE(mul, "*")
BINARY_RULE(div, "/")
BINARY_RULE(atan2, "atan")
BINARY_RULE(expt, "expt")
BINARY_RULE(min, "min")
BINARY_RULE(max, "max")

/* ---- lookup ---------------------------------------------------------------------------------- */

const ad_rule *ad_rule_for_op(int op, int64_t argc) {
  if (argc == 2) {
    switch (op) {
      case ESK_OP_ADD: return &r_add;
      case ESK_OP_SUB: return &r_sub;
      case ESK_OP_MUL: return &r_mul;
      case ESK_OP_DIV: return &r_div;
      case ESK_OP_ATAN: return &r_atan2;
      case ESK_OP_EXPT: return &r_expt;
      case ESK_OP_MIN: return &r_min;
      case ESK_OP_MAX: return &r_max;
      default: return NULL;
    }
  }
  if (argc != 1) return NULL;
  switch (op) {
    case ESK_OP_NEG: return &r_neg;
    case ESK_OP_EXP: return &r_exp;
    case ESK_OP_LOG: return &r_log;
    case ESK_OP_SIN: return &r_sin;
    case ESK_OP_COS: return &r_cos;
    case ESK_OP_TAN: return &r_tan;
    case ESK_OP_SQRT: return &r_sqrt;
    case ESK_OP_ABS: return &r_abs;
    case ESK_OP_ASIN: return &r_asin;
    case ESK_OP_ACOS: return &r_acos;
    case ESK_OP_ATAN: return &r_atan;
    case ESK_OP_SINH: return &r_sinh;
    case ESK_OP_COSH: return &r_cosh;
    case ESK_OP_TANH: return &r_tanh;
    case ESK_OP_SQUARE: return &r_square;
    default: return NULL;
  }
}

/* Scalar builtins reached by name (numbers.c and prims.c call esk_ad_tensor_prim for them). */
static const struct {
  const char *name;
  const ad_rule *rule;
} scalar_rules[] = {
    {"exact->inexact", &r_inexact}, {"inexact", &r_inexact},
    {"inexact->exact", &r_exact},   {"exact", &r_exact},
};

const ad_rule *ad_rule_by_name(const char *name) {
  for (size_t i = 0; i < sizeof scalar_rules / sizeof scalar_rules[0]; i++)
    if (!strcmp(scalar_rules[i].name, name)) return scalar_rules[i].rule;
  return ad_tensor_rule_by_name(name);
}

/* The elementwise rules, for the tensor builtins that are the same operation. */
const ad_rule *ad_elementwise_rule(int op, int64_t argc) { return ad_rule_for_op(op, argc); }
