/* The numeric tower (LANGUAGE.md, Numbers; R7RS semantics, Chez Scheme where R7RS is silent):
 * fixnums (int64), bignums (GMP mpz), exact rationals (GMP mpq) and flonums (double).
 *
 * Invariants every result keeps: an exact integer that fits in int64 is a fixnum, never a
 * bignum; a rational is canonical with denominator > 1 (else it is an integer).  Exact
 * arithmetic never wraps and never turns inexact.  GMP allocates on the collector (see
 * esk_numbers_init), so bignum limbs are reclaimed like any other object. */
#include <gmp.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#define GC_THREADS
#include <gc.h>

#include "eshkol_rt.h"

#define FIX ESK_T_FIXNUM
#define FLO ESK_T_FLONUM
#define BIG ESK_T_BIGNUM
#define RAT ESK_T_RATIONAL

#define BIGZ(v) (((esk_bignum *)esk_ptr(v))->z)
#define RATQ(v) (((esk_rational *)esk_ptr(v))->q)

/* ---- GMP on the collector ------------------------------------------------------------------ */

static void *gmp_alloc(size_t n) {
  void *p = GC_MALLOC_ATOMIC(n);
  if (!p) esk_error(NULL, "out of memory", 0, NULL);
  return p;
}
static void *gmp_realloc(void *p, size_t old, size_t n) {
  (void)old;
  void *q = GC_REALLOC(p, n);
  if (!q) esk_error(NULL, "out of memory", 0, NULL);
  return q;
}
static void gmp_free(void *p, size_t n) { (void)p; (void)n; } /* the collector reclaims it */

/* Limbs are atomic (never scanned); an esk_bignum itself is a scanned object, so the pointer
 * to its limbs keeps them alive, and so do mpz temporaries on the (scanned) stack.  Setting
 * the functions allocates nothing, so it is safe before the collector starts. */
__attribute__((constructor)) void esk_numbers_init(void) {
  static int done;
  if (done) return;
  done = 1;
  mp_set_memory_functions(gmp_alloc, gmp_realloc, gmp_free);
}

/* ---- errors ------------------------------------------------------------------------------- */



static _Noreturn void div_zero(const char *loc, const char *who) {
  esk_errorf(loc, "%s: division by zero", who);
}

/* Printed form of a number for an error message, cut short when huge. */
static const char *short_text(esk_value v) {
  char *s = esk_number_to_cstring(v, 10);
  if (strlen(s) > 200) strcpy(s + 190, "...");
  return s;
}

static _Noreturn void complex_result(const char *loc, const char *who, esk_value a) {
  esk_errorf(loc, "%s: negative argument %s (complex numbers are not supported)", who, short_text(a));
}

/* ---- classification and conversion --------------------------------------------------------- */

static inline int is_num(esk_value v) {
  return v.tag == FIX || v.tag == FLO || v.tag == BIG || v.tag == RAT;
}
static inline int is_exact(esk_value v) { return v.tag == FIX || v.tag == BIG || v.tag == RAT; }
static inline int is_exact_int(esk_value v) { return v.tag == FIX || v.tag == BIG; }
static inline int is_exact_zero(esk_value v) { return v.tag == FIX && v.payload == 0; }
static inline int is_int(esk_value v) {
  if (v.tag == FIX || v.tag == BIG) return 1;
  if (v.tag != FLO) return 0;
  double d = esk_flonum_value(v);
  return isfinite(d) && d == floor(d);
}
/* Operands that are not plain numbers but that arithmetic accepts: tensors (tensor.c), dual
 * numbers and tape nodes (ad.c).  AD values go first: they may wrap tensors. */
static inline int is_ext(int64_t t) {
  return t == ESK_T_TENSOR || t == ESK_T_DUAL || t == ESK_T_ADNODE;
}
static int ext_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out) {
  for (int64_t i = 0; i < argc; i++)
    if (args[i].tag == ESK_T_DUAL || args[i].tag == ESK_T_ADNODE)
      return esk_ad_arith(loc, op, argc, args, out);
  return esk_tensor_arith(loc, op, argc, args, out);
}
#define EXT1(OP, A)                                                                      \
  do {                                                                                   \
    esk_value r_;                                                                        \
    if (is_ext((A).tag) && ext_arith(loc, OP, 1, &(A), &r_)) return r_;                  \
  } while (0)
#define EXT2(OP, A, B)                                                                   \
  do {                                                                                   \
    if (is_ext((A).tag) || is_ext((B).tag)) {                                            \
      esk_value a_[2] = {A, B}, r_;                                                      \
      if (ext_arith(loc, OP, 2, a_, &r_)) return r_;                                     \
    }                                                                                    \
  } while (0)

/* Predicates see the primal of a dual number or tape node (a number under differentiation). */
#define IS_AD(v) ((v).tag == ESK_T_DUAL || (v).tag == ESK_T_ADNODE)
#define AD_PRIMAL(v) \
  do { if (IS_AD(v)) (v) = esk_ad_primal(v); } while (0)

static inline void need_num(const char *loc, const char *who, esk_value v) {
  if (!is_num(v)) esk_error_type(loc, who, "number", v);
}
static inline void need_int(const char *loc, const char *who, esk_value v) {
  if (!is_int(v)) esk_error_type(loc, who, "integer", v);
}

/* Sign of a number that is not NaN. */
static int sign_of(esk_value v) {
  switch (v.tag) {
    case FIX: return v.payload < 0 ? -1 : v.payload > 0;
    case BIG: return mpz_sgn(BIGZ(v));
    case RAT: return mpq_sgn(RATQ(v));
    default: {
      double d = esk_flonum_value(v);
      return d < 0 ? -1 : d > 0;
    }
  }
}

static inline esk_value heap_value(int64_t tag, void *p) {
  return (esk_value){tag, (int64_t)(intptr_t)p};
}

/* The integer z as a fixnum or a fresh bignum; z is left empty (the caller may clear it). */
static esk_value norm_z(mpz_t z) {
  if (mpz_fits_slong_p(z)) return esk_fixnum(mpz_get_si(z));
  esk_bignum *b = esk_alloc(sizeof *b);
  b->h.type = BIG;
  mpz_init(b->z);
  mpz_swap(b->z, z);
  return heap_value(BIG, b);
}

/* The canonical rational q as an integer or a fresh rational; q is left empty. */
static esk_value norm_q(mpq_t q) {
  if (mpz_cmp_ui(mpq_denref(q), 1) == 0) return norm_z(mpq_numref(q));
  esk_rational *r = esk_alloc(sizeof *r);
  r->h.type = RAT;
  mpq_init(r->q);
  mpq_swap(r->q, q);
  return heap_value(RAT, r);
}

static esk_value from_i128(__int128 n) {
  if (n >= INT64_MIN && n <= INT64_MAX) return esk_fixnum((int64_t)n);
  mpz_t z;
  unsigned __int128 u = n < 0 ? -(unsigned __int128)n : (unsigned __int128)n;
  mpz_init_set_ui(z, (unsigned long)(u >> 64));
  mpz_mul_2exp(z, z, 64);
  mpz_add_ui(z, z, (unsigned long)u);
  if (n < 0) mpz_neg(z, z);
  return norm_z(z);
}

/* r (initialised) := the exact integer v. */
static void get_z(mpz_t r, esk_value v) {
  if (v.tag == FIX) mpz_set_si(r, v.payload);
  else mpz_set(r, BIGZ(v));
}
/* r (initialised) := the exact number v. */
static void get_q(mpq_t r, esk_value v) {
  if (v.tag == FIX) mpq_set_si(r, v.payload, 1);
  else if (v.tag == BIG) mpq_set_z(r, BIGZ(v));
  else mpq_set(r, RATQ(v));
}

/* m * 2^e (m a nonzero integer) rounded to the nearest double, ties to even; `sticky` says
 * that nonzero bits were already dropped below m.  The top 64 bits of m plus a sticky bit
 * convert with one correct rounding, then ldexp scales exactly (results in the subnormal
 * range may round twice). */
static double z_scaled_to_d(const mpz_t m, long e, int sticky) {
  size_t bits = mpz_sizeinbase(m, 2);
  uint64_t top;
  if (bits <= 64) {
    top = (uint64_t)mpz_getlimbn(m, 0);
    if (bits < 64) {
      top <<= 64 - bits;
      e -= (long)(64 - bits);
    }
  } else {
    size_t shift = bits - 64;
    mpz_t t;
    mpz_init(t);
    mpz_tdiv_q_2exp(t, m, shift);
    top = (uint64_t)mpz_getlimbn(t, 0);
    mpz_clear(t);
    if (mpz_scan1(m, 0) < shift) sticky = 1;
    e += (long)shift;
  }
  if (sticky) top |= 1;
  double d = ldexp((double)top, (int)(e > 100000 ? 100000 : e < -100000 ? -100000 : e));
  return mpz_sgn(m) < 0 ? -d : d;
}

static double q_to_d(const mpq_t q) {
  if (mpq_sgn(q) == 0) return 0.0;
  long nb = (long)mpz_sizeinbase(mpq_numref(q), 2), db = (long)mpz_sizeinbase(mpq_denref(q), 2);
  long s = 66 - (nb - db); /* the quotient below has at least 65 bits */
  mpz_t a, r;
  mpz_init(a);
  mpz_init(r);
  if (s >= 0) {
    mpz_mul_2exp(a, mpq_numref(q), (unsigned long)s);
    mpz_tdiv_qr(a, r, a, mpq_denref(q));
  } else {
    mpz_t t;
    mpz_init(t);
    mpz_mul_2exp(t, mpq_denref(q), (unsigned long)-s);
    mpz_tdiv_qr(a, r, mpq_numref(q), t);
    mpz_clear(t);
  }
  double d = z_scaled_to_d(a, -s, mpz_sgn(r) != 0);
  mpz_clear(a);
  mpz_clear(r);
  return d;
}

/* The nearest double to a number (exact->inexact). */
static double to_d(esk_value v) {
  switch (v.tag) {
    case FIX: return (double)v.payload;
    case BIG: return z_scaled_to_d(BIGZ(v), 0, 0);
    case RAT: return q_to_d(RATQ(v));
    default: return esk_flonum_value(v);
  }
}

double esk_number_to_double(esk_value v) { return to_d(v); }

/* The exact value of a finite double. */
static esk_value d_to_exact(double d) {
  if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
    return esk_fixnum((int64_t)d);
  mpq_t q;
  mpq_init(q);
  mpq_set_d(q, d);
  mpq_canonicalize(q);
  return norm_q(q);
}

/* ---- constructors and text ----------------------------------------------------------------- */

static int parse_number(const char *s, int64_t len, int radix, esk_value *out);

esk_value esk_make_exact_from_string(const char *text) {
  esk_value v;
  if (!parse_number(text, (int64_t)strlen(text), 10, &v) || !is_exact(v))
    esk_errorf(NULL, "invalid exact number literal: %s", text);
  return v;
}

/* A fresh (collected) NUL-terminated text of a number in the radix (2 to 36). */
char *esk_number_to_cstring(esk_value v, int radix) {
  char *buf;
  switch (v.tag) {
    case FIX:
      if (radix == 10) {
        buf = esk_alloc_atomic(24);
        snprintf(buf, 24, "%lld", (long long)v.payload);
        return buf;
      } else {
        mpz_t z;
        mpz_init_set_si(z, v.payload);
        buf = mpz_get_str(NULL, -radix, z); /* negative base: upper-case digits, as Chez */
        mpz_clear(z);
        return buf;
      }
    case BIG: return mpz_get_str(NULL, radix == 10 ? 10 : -radix, BIGZ(v));
    case RAT: return mpq_get_str(NULL, radix == 10 ? 10 : -radix, RATQ(v));
    case FLO:
      buf = esk_alloc_atomic(64);
      esk_format_double(esk_flonum_value(v), buf, 64);
      return buf;
    default:
      return NULL;
  }
}

/* ---- arithmetic ---------------------------------------------------------------------------- */

enum { OP_ADD, OP_SUB, OP_MUL };

static esk_value arith(const char *loc, const char *who, int op, esk_value a, esk_value b) {
  if (a.tag == FIX && b.tag == FIX) {
    int64_t r;
    int ov = op == OP_ADD   ? __builtin_add_overflow(a.payload, b.payload, &r)
             : op == OP_SUB ? __builtin_sub_overflow(a.payload, b.payload, &r)
                            : __builtin_mul_overflow(a.payload, b.payload, &r);
    if (!ov) return esk_fixnum(r);
    __int128 x = a.payload, y = b.payload;
    return from_i128(op == OP_ADD ? x + y : op == OP_SUB ? x - y : x * y);
  }
  EXT2(op == OP_ADD ? ESK_OP_ADD : op == OP_SUB ? ESK_OP_SUB : ESK_OP_MUL, a, b);
  need_num(loc, who, a);
  need_num(loc, who, b);
  if (a.tag == FLO || b.tag == FLO) {
    /* An exact 0 is a true identity / annihilator, as in Chez: (+ 0 -0.0) is -0.0,
     * (* 0 1.5) is 0, (- 0 0.0) is -0.0. */
    switch (op) {
      case OP_ADD:
        if (is_exact_zero(a)) return b;
        if (is_exact_zero(b)) return a;
        return esk_flonum(to_d(a) + to_d(b));
      case OP_SUB:
        if (is_exact_zero(b)) return a;
        if (is_exact_zero(a)) return esk_flonum(-to_d(b));
        return esk_flonum(to_d(a) - to_d(b));
      default:
        if (is_exact_zero(a) || is_exact_zero(b)) return esk_fixnum(0);
        return esk_flonum(to_d(a) * to_d(b));
    }
  }
  if (a.tag != RAT && b.tag != RAT) {
    mpz_t x, y;
    mpz_init(x);
    mpz_init(y);
    get_z(x, a);
    get_z(y, b);
    if (op == OP_ADD) mpz_add(x, x, y);
    else if (op == OP_SUB) mpz_sub(x, x, y);
    else mpz_mul(x, x, y);
    mpz_clear(y);
    return norm_z(x);
  }
  mpq_t x, y;
  mpq_init(x);
  mpq_init(y);
  get_q(x, a);
  get_q(y, b);
  if (op == OP_ADD) mpq_add(x, x, y);
  else if (op == OP_SUB) mpq_sub(x, x, y);
  else mpq_mul(x, x, y);
  mpq_clear(y);
  return norm_q(x);
}

esk_value esk_prim_add2(const char *loc, esk_value a, esk_value b) {
  return arith(loc, "+", OP_ADD, a, b);
}
esk_value esk_prim_sub2(const char *loc, esk_value a, esk_value b) {
  return arith(loc, "-", OP_SUB, a, b);
}
esk_value esk_prim_mul2(const char *loc, esk_value a, esk_value b) {
  return arith(loc, "*", OP_MUL, a, b);
}

esk_value esk_prim_div2(const char *loc, esk_value a, esk_value b) {
  EXT2(ESK_OP_DIV, a, b);
  need_num(loc, "/", a);
  need_num(loc, "/", b);
  if (a.tag == FLO || b.tag == FLO) return esk_flonum(to_d(a) / to_d(b));
  if (sign_of(b) == 0) div_zero(loc, "/");
  if (a.tag == FIX && b.tag == FIX && b.payload != -1 && a.payload % b.payload == 0)
    return esk_fixnum(a.payload / b.payload);
  mpq_t x, y;
  mpq_init(x);
  mpq_init(y);
  get_q(x, a);
  get_q(y, b);
  mpq_div(x, x, y);
  mpq_clear(y);
  return norm_q(x);
}

esk_value esk_prim_neg(const char *loc, esk_value a) {
  EXT1(ESK_OP_NEG, a);
  switch (a.tag) {
    case FIX:
      if (a.payload == INT64_MIN) return from_i128(-(__int128)a.payload);
      return esk_fixnum(-a.payload);
    case FLO: return esk_flonum(-esk_flonum_value(a));
    case BIG: {
      mpz_t z;
      mpz_init(z);
      mpz_neg(z, BIGZ(a));
      return norm_z(z);
    }
    case RAT: {
      mpq_t q;
      mpq_init(q);
      mpq_neg(q, RATQ(a));
      return norm_q(q);
    }
    default: esk_error_type(loc, "-", "number", a);
  }
}

esk_value esk_prim_abs(const char *loc, esk_value a) {
  EXT1(ESK_OP_ABS, a);
  need_num(loc, "abs", a);
  if (a.tag == FLO) return esk_flonum(fabs(esk_flonum_value(a)));
  return sign_of(a) < 0 ? esk_prim_neg(loc, a) : a;
}

esk_value esk_prim_square(const char *loc, esk_value a) {
  EXT1(ESK_OP_SQUARE, a);
  need_num(loc, "square", a);
  return esk_prim_mul2(loc, a, a);
}

/* ---- comparison ---------------------------------------------------------------------------- */

/* Exact comparison of a fixnum with a double (converting the fixnum could round). */
static int cmp_fix_flo(int64_t i, double d) {
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  double fd = floor(d);
  int64_t fi = (int64_t)fd;
  if (i != fi) return i < fi ? -1 : 1;
  return d > fd ? -1 : 0;
}

/* An exact number against a double that is not NaN, compared exactly (R7RS). */
static int cmp_exact_d(esk_value a, double d) {
  if (isinf(d)) return d > 0 ? -1 : 1;
  if (a.tag == FIX) return cmp_fix_flo(a.payload, d);
  if (a.tag == BIG) {
    int c = mpz_cmp_d(BIGZ(a), d);
    return c < 0 ? -1 : c > 0;
  }
  mpq_t y;
  mpq_init(y);
  mpq_set_d(y, d);
  int c = mpq_cmp(RATQ(a), y);
  mpq_clear(y);
  return c < 0 ? -1 : c > 0;
}

#define UNORDERED 2

static int num_cmp(const char *loc, const char *who, esk_value a, esk_value b) {
  if (a.tag == FIX && b.tag == FIX) return a.payload < b.payload ? -1 : a.payload > b.payload;
  if (a.tag == ESK_T_DUAL || a.tag == ESK_T_ADNODE) a = esk_ad_primal(a);
  if (b.tag == ESK_T_DUAL || b.tag == ESK_T_ADNODE) b = esk_ad_primal(b);
  need_num(loc, who, a);
  need_num(loc, who, b);
  if (a.tag == FLO && isnan(esk_flonum_value(a))) return UNORDERED;
  if (b.tag == FLO && isnan(esk_flonum_value(b))) return UNORDERED;
  if (a.tag == FLO && b.tag == FLO) {
    double x = esk_flonum_value(a), y = esk_flonum_value(b);
    return x < y ? -1 : x > y;
  }
  if (b.tag == FLO) return cmp_exact_d(a, esk_flonum_value(b));
  if (a.tag == FLO) return -cmp_exact_d(b, esk_flonum_value(a));
  int c;
  if (a.tag == BIG && b.tag == FIX) c = mpz_cmp_si(BIGZ(a), b.payload);
  else if (a.tag == FIX && b.tag == BIG) c = -mpz_cmp_si(BIGZ(b), a.payload);
  else if (a.tag == BIG && b.tag == BIG) c = mpz_cmp(BIGZ(a), BIGZ(b));
  else {
    mpq_t x, y;
    mpq_init(x);
    mpq_init(y);
    get_q(x, a);
    get_q(y, b);
    c = mpq_cmp(x, y);
    mpq_clear(x);
    mpq_clear(y);
  }
  return c < 0 ? -1 : c > 0;
}

esk_value esk_prim_num_eq2(const char *loc, esk_value a, esk_value b) {
  return esk_bool(num_cmp(loc, "=", a, b) == 0);
}
esk_value esk_prim_num_lt2(const char *loc, esk_value a, esk_value b) {
  return esk_bool(num_cmp(loc, "<", a, b) == -1);
}
esk_value esk_prim_num_gt2(const char *loc, esk_value a, esk_value b) {
  return esk_bool(num_cmp(loc, ">", a, b) == 1);
}
esk_value esk_prim_num_le2(const char *loc, esk_value a, esk_value b) {
  int c = num_cmp(loc, "<=", a, b);
  return esk_bool(c == -1 || c == 0);
}
esk_value esk_prim_num_ge2(const char *loc, esk_value a, esk_value b) {
  int c = num_cmp(loc, ">=", a, b);
  return esk_bool(c == 1 || c == 0);
}

/* eqv? on two numbers of the same tag. */
int esk_num_eqv(esk_value a, esk_value b) {
  if (a.tag != b.tag) return 0;
  if (a.tag == BIG) return mpz_cmp(BIGZ(a), BIGZ(b)) == 0;
  if (a.tag == RAT) return mpq_equal(RATQ(a), RATQ(b));
  return a.payload == b.payload;
}

static esk_value min_max(const char *loc, const char *who, esk_value a, esk_value b, int want) {
  int c = num_cmp(loc, who, a, b);
  if (c == UNORDERED) return esk_flonum(NAN);
  esk_value r = c == want ? a : b;
  if (a.tag == FLO || b.tag == FLO) return esk_flonum(to_d(r));
  return r;
}
esk_value esk_prim_min2(const char *loc, esk_value a, esk_value b) {
  EXT2(ESK_OP_MIN, a, b);
  return min_max(loc, "min", a, b, -1);
}
esk_value esk_prim_max2(const char *loc, esk_value a, esk_value b) {
  EXT2(ESK_OP_MAX, a, b);
  return min_max(loc, "max", a, b, 1);
}

/* ---- integer division ---------------------------------------------------------------------- */

enum { DIV_QUO, DIV_REM, DIV_MOD };

static esk_value int_div(const char *loc, const char *who, int kind, esk_value a, esk_value b) {
  need_int(loc, who, a);
  need_int(loc, who, b);
  if (is_exact_int(a) && is_exact_int(b)) {
    if (sign_of(b) == 0) div_zero(loc, who);
    if (a.tag == FIX && b.tag == FIX && b.payload != -1) {
      int64_t x = a.payload, y = b.payload;
      if (kind == DIV_QUO) return esk_fixnum(x / y);
      int64_t r = x % y;
      if (kind == DIV_MOD && r != 0 && (r < 0) != (y < 0)) r += y;
      return esk_fixnum(r);
    }
    mpz_t x, y;
    mpz_init(x);
    mpz_init(y);
    get_z(x, a);
    get_z(y, b);
    if (kind == DIV_QUO) mpz_tdiv_q(x, x, y);
    else if (kind == DIV_REM) mpz_tdiv_r(x, x, y);
    else mpz_fdiv_r(x, x, y);
    mpz_clear(y);
    return norm_z(x);
  }
  double x = to_d(a), y = to_d(b);
  if (y == 0) div_zero(loc, who);
  double r = fmod(x, y);
  if (kind == DIV_QUO) return esk_flonum((x - r) / y);
  if (kind == DIV_MOD && r != 0 && (r < 0) != (y < 0)) r += y;
  return esk_flonum(r);
}

esk_value esk_prim_quotient(const char *loc, esk_value a, esk_value b) {
  return int_div(loc, "quotient", DIV_QUO, a, b);
}
esk_value esk_prim_remainder(const char *loc, esk_value a, esk_value b) {
  return int_div(loc, "remainder", DIV_REM, a, b);
}
esk_value esk_prim_modulo(const char *loc, esk_value a, esk_value b) {
  return int_div(loc, "modulo", DIV_MOD, a, b);
}

static uint64_t ugcd(uint64_t x, uint64_t y) {
  while (y) {
    uint64_t t = x % y;
    x = y;
    y = t;
  }
  return x;
}
static uint64_t uabs(int64_t n) { return n < 0 ? -(uint64_t)n : (uint64_t)n; }

static esk_value gcd_lcm(const char *loc, const char *who, int lcm, esk_value a, esk_value b) {
  need_int(loc, who, a);
  need_int(loc, who, b);
  if (is_exact_int(a) && is_exact_int(b)) {
    if (a.tag == FIX && b.tag == FIX) {
      uint64_t x = uabs(a.payload), y = uabs(b.payload);
      if (!lcm) return from_i128((__int128)ugcd(x, y));
      if (x == 0 || y == 0) return esk_fixnum(0);
      return from_i128((__int128)(x / ugcd(x, y)) * (__int128)y);
    }
    mpz_t x, y;
    mpz_init(x);
    mpz_init(y);
    get_z(x, a);
    get_z(y, b);
    if (lcm) mpz_lcm(x, x, y);
    else mpz_gcd(x, x, y);
    mpz_clear(y);
    return norm_z(x);
  }
  double x = fabs(to_d(a)), y = fabs(to_d(b));
  if (lcm && (x == 0 || y == 0)) return esk_flonum(0);
  double g0 = x, g1 = y;
  while (g1 != 0) {
    double t = fmod(g0, g1);
    g0 = g1;
    g1 = t;
  }
  return esk_flonum(lcm ? x / g0 * y : g0);
}

esk_value esk_prim_gcd2(const char *loc, esk_value a, esk_value b) {
  return gcd_lcm(loc, "gcd", 0, a, b);
}
esk_value esk_prim_lcm2(const char *loc, esk_value a, esk_value b) {
  return gcd_lcm(loc, "lcm", 1, a, b);
}

/* ---- exactness, parts, rounding ------------------------------------------------------------ */

esk_value esk_prim_exact_to_inexact(const char *loc, esk_value a) {
  if (IS_AD(a)) return esk_ad_tensor_prim(loc, "exact->inexact", 1, &a);
  need_num(loc, "exact->inexact", a);
  return a.tag == FLO ? a : esk_flonum(to_d(a));
}

esk_value esk_prim_inexact_to_exact(const char *loc, esk_value a) {
  if (IS_AD(a)) return esk_ad_tensor_prim(loc, "inexact->exact", 1, &a);
  need_num(loc, "inexact->exact", a);
  if (a.tag != FLO) return a;
  double d = esk_flonum_value(a);
  if (!isfinite(d)) esk_error_with(loc, "inexact->exact: no exact representation for", a);
  return d_to_exact(d);
}

static esk_value num_den(const char *loc, const char *who, esk_value a, int den) {
  if (a.tag == FLO) {
    double d = esk_flonum_value(a);
    if (!isfinite(d)) esk_error_type(loc, who, "rational number", a);
    return esk_flonum(to_d(num_den(loc, who, d_to_exact(d), den)));
  }
  if (is_exact_int(a)) return den ? esk_fixnum(1) : a;
  if (a.tag != RAT) esk_error_type(loc, who, "rational number", a);
  mpz_t z;
  mpz_init_set(z, den ? mpq_denref(RATQ(a)) : mpq_numref(RATQ(a)));
  return norm_z(z);
}
esk_value esk_prim_numerator(const char *loc, esk_value a) {
  return num_den(loc, "numerator", a, 0);
}
esk_value esk_prim_denominator(const char *loc, esk_value a) {
  return num_den(loc, "denominator", a, 1);
}

enum { R_FLOOR, R_CEIL, R_ROUND, R_TRUNC };

static esk_value round_rat(esk_value a, int mode) {
  mpz_srcptr n = mpq_numref(RATQ(a)), d = mpq_denref(RATQ(a));
  mpz_t z;
  mpz_init(z);
  switch (mode) {
    case R_FLOOR: mpz_fdiv_q(z, n, d); break;
    case R_CEIL: mpz_cdiv_q(z, n, d); break;
    case R_TRUNC: mpz_tdiv_q(z, n, d); break;
    default: {
      /* floor(x + 1/2) = floor((2n + d) / 2d); an exact tie (remainder 0) goes to even.
       * d > 1 is odd at a tie, so 2d | 2n + d means x is k + 1/2. */
      mpz_t t, d2, r;
      mpz_init(t);
      mpz_init(d2);
      mpz_init(r);
      mpz_mul_2exp(t, n, 1);
      mpz_add(t, t, d);
      mpz_mul_2exp(d2, d, 1);
      mpz_fdiv_qr(z, r, t, d2);
      if (mpz_sgn(r) == 0 && mpz_odd_p(z)) mpz_sub_ui(z, z, 1);
      break;
    }
  }
  return norm_z(z);
}

#define ROUNDING(NAME, SCHEME, FN, MODE)                                                 \
  esk_value esk_prim_##NAME(const char *loc, esk_value a) {                              \
    if (is_exact_int(a)) return a;                                                       \
    if (a.tag == RAT) return round_rat(a, MODE);                                         \
    need_num(loc, SCHEME, a);                                                            \
    return esk_flonum(FN(esk_flonum_value(a)));                                          \
  }
ROUNDING(floor, "floor", floor, R_FLOOR)
ROUNDING(ceiling, "ceiling", ceil, R_CEIL)
ROUNDING(round, "round", nearbyint, R_ROUND) /* ties to even in the default rounding mode */
ROUNDING(truncate, "truncate", trunc, R_TRUNC)

/* ---- sqrt, transcendental functions, expt -------------------------------------------------- */

/* sqrt of a positive integer beyond the range of doubles, as a double. */
static double big_sqrt_d(const mpz_t z) {
  if (mpz_sizeinbase(z, 2) < 1000) return sqrt(z_scaled_to_d(z, 0, 0));
  long e;
  double m = mpz_get_d_2exp(&e, z);
  if (e & 1) {
    m *= 2;
    e--;
  }
  return ldexp(sqrt(m), (int)(e / 2));
}

esk_value esk_prim_sqrt(const char *loc, esk_value a) {
  EXT1(ESK_OP_SQRT, a);
  need_num(loc, "sqrt", a);
  if (a.tag == FLO) {
    double d = esk_flonum_value(a);
    if (d < 0) complex_result(loc, "sqrt", a);
    return esk_flonum(sqrt(d));
  }
  if (sign_of(a) < 0) complex_result(loc, "sqrt", a);
  if (a.tag == FIX) {
    int64_t n = a.payload;
    __int128 r = (int64_t)sqrt((double)n);
    while (r * r > n) r--;
    while ((r + 1) * (r + 1) <= n) r++;
    if (r * r == n) return esk_fixnum((int64_t)r);
    return esk_flonum(sqrt((double)n));
  }
  if (a.tag == BIG) {
    if (mpz_perfect_square_p(BIGZ(a))) {
      mpz_t z;
      mpz_init(z);
      mpz_sqrt(z, BIGZ(a));
      return norm_z(z);
    }
    return esk_flonum(big_sqrt_d(BIGZ(a)));
  }
  if (mpz_perfect_square_p(mpq_numref(RATQ(a))) && mpz_perfect_square_p(mpq_denref(RATQ(a)))) {
    mpq_t q;
    mpq_init(q);
    mpz_sqrt(mpq_numref(q), mpq_numref(RATQ(a)));
    mpz_sqrt(mpq_denref(q), mpq_denref(RATQ(a)));
    return norm_q(q); /* coprime squares have coprime roots: canonical already */
  }
  return esk_flonum(sqrt(to_d(a)));
}

/* Like Chez, exact arguments at the function's exact points give exact results: (exp 0) is 1. */
#define TRANSCENDENTAL(NAME, SCHEME, FN, EXACT_IN, EXACT_OUT, LO, HI, DOMAIN_MSG, OP)    \
  esk_value esk_prim_##NAME(const char *loc, esk_value a) {                              \
    EXT1(OP, a);                                                                         \
    need_num(loc, SCHEME, a);                                                            \
    if (a.tag == FIX && a.payload == (EXACT_IN)) return esk_fixnum(EXACT_OUT);           \
    double d = to_d(a);                                                                  \
    if (d < (LO) || d > (HI)) esk_error_with(loc, DOMAIN_MSG, a);                             \
    return esk_flonum(FN(d));                                                            \
  }
TRANSCENDENTAL(exp, "exp", exp, 0, 1, -INFINITY, INFINITY, "", ESK_OP_EXP)
TRANSCENDENTAL(sin, "sin", sin, 0, 0, -INFINITY, INFINITY, "", ESK_OP_SIN)
TRANSCENDENTAL(cos, "cos", cos, 0, 1, -INFINITY, INFINITY, "", ESK_OP_COS)
TRANSCENDENTAL(tan, "tan", tan, 0, 0, -INFINITY, INFINITY, "", ESK_OP_TAN)
TRANSCENDENTAL(asin, "asin", asin, 0, 0, -1.0, 1.0, "asin: argument outside [-1, 1]", ESK_OP_ASIN)
TRANSCENDENTAL(acos, "acos", acos, 1, 0, -1.0, 1.0, "acos: argument outside [-1, 1]", ESK_OP_ACOS)
TRANSCENDENTAL(atan, "atan", atan, 0, 0, -INFINITY, INFINITY, "", ESK_OP_ATAN)
TRANSCENDENTAL(sinh, "sinh", sinh, 0, 0, -INFINITY, INFINITY, "", ESK_OP_SINH)
TRANSCENDENTAL(cosh, "cosh", cosh, 0, 1, -INFINITY, INFINITY, "", ESK_OP_COSH)
TRANSCENDENTAL(tanh, "tanh", tanh, 0, 0, -INFINITY, INFINITY, "", ESK_OP_TANH)

/* log of a positive exact integer of any size. */
static double log_z(const mpz_t z) {
  long e;
  double m = mpz_get_d_2exp(&e, z);
  return log(m) + (double)e * M_LN2;
}

esk_value esk_prim_log(const char *loc, esk_value a) {
  EXT1(ESK_OP_LOG, a);
  need_num(loc, "log", a);
  if (a.tag == FIX && a.payload == 1) return esk_fixnum(0);
  if (is_exact_zero(a)) esk_errorf(loc, "log: undefined for 0");
  if (a.tag == FLO ? esk_flonum_value(a) < 0 : sign_of(a) < 0) complex_result(loc, "log", a);
  if (a.tag == BIG) return esk_flonum(log_z(BIGZ(a)));
  if (a.tag == RAT) {
    double d = to_d(a);
    if (d > 1e-300 && isfinite(d)) return esk_flonum(log(d));
    return esk_flonum(log_z(mpq_numref(RATQ(a))) - log_z(mpq_denref(RATQ(a))));
  }
  return esk_flonum(log(to_d(a)));
}

esk_value esk_prim_atan2(const char *loc, esk_value y, esk_value x) {
  EXT2(ESK_OP_ATAN, y, x);
  need_num(loc, "atan", y);
  need_num(loc, "atan", x);
  if (is_exact_zero(y) && is_exact(x) && sign_of(x) > 0) return esk_fixnum(0);
  return esk_flonum(atan2(to_d(y), to_d(x)));
}

/* An exact base to an exact integer power. */
static esk_value expt_exact(const char *loc, esk_value a, esk_value b) {
  int neg = sign_of(b) < 0;
  if (is_exact_zero(a)) {
    if (neg) div_zero(loc, "expt");
    return esk_fixnum(0);
  }
  if (a.tag == FIX && (a.payload == 1 || a.payload == -1)) {
    int odd = b.tag == FIX ? (b.payload & 1) : mpz_odd_p(BIGZ(b));
    return esk_fixnum(a.payload == -1 && odd ? -1 : 1);
  }
  size_t abits = a.tag == FIX ? 64 - __builtin_clzll(uabs(a.payload))
                 : a.tag == BIG ? mpz_sizeinbase(BIGZ(a), 2)
                                : mpz_sizeinbase(mpq_numref(RATQ(a)), 2) +
                                      mpz_sizeinbase(mpq_denref(RATQ(a)), 2);
  uint64_t e = b.tag == FIX ? uabs(b.payload) : UINT64_MAX;
  if (b.tag == BIG || (abits > 1 && (double)(abits - 1) * (double)e > 4e9))
    esk_errorf(loc, "expt: result too large (%s to the power %s)", short_text(a), short_text(b));
  mpq_t q;
  mpq_init(q);
  get_q(q, a);
  mpz_pow_ui(mpq_numref(q), mpq_numref(q), e);
  mpz_pow_ui(mpq_denref(q), mpq_denref(q), e);
  if (neg) mpq_inv(q, q);
  return norm_q(q);
}

esk_value esk_prim_expt(const char *loc, esk_value a, esk_value b) {
  EXT2(ESK_OP_EXPT, a, b);
  need_num(loc, "expt", a);
  need_num(loc, "expt", b);
  if (is_exact_zero(b)) return esk_fixnum(1);
  if (is_exact_int(b) && is_exact(a)) return expt_exact(loc, a, b);
  double x = to_d(a), y = to_d(b);
  double r = pow(x, y);
  if (isnan(r) && !isnan(x) && !isnan(y))
    esk_errorf(loc, "expt: %s to the power %s is not a real number (complex numbers are not supported)",
         short_text(a), short_text(b));
  return esk_flonum(r);
}

/* ---- number->string, string->number -------------------------------------------------------- */

static int need_radix(const char *loc, const char *who, int64_t argc, esk_value *argv) {
  if (argc < 2) return 10;
  esk_value r = argv[1];
  if (r.tag != FIX || r.payload < 2 || r.payload > 36)
    esk_error_type(loc, who, "radix (an exact integer from 2 to 36)", r);
  return (int)r.payload;
}

esk_value esk_prim_number_to_string(const char *loc, int64_t argc, esk_value *argv) {
  esk_value a = argv[0];
  need_num(loc, "number->string", a);
  int radix = need_radix(loc, "number->string", argc, argv);
  if (a.tag == FLO && radix != 10)
    esk_errorf(loc, "number->string: radix %d for inexact numbers is not supported", radix);
  return esk_cstring(esk_number_to_cstring(a, radix));
}

static int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

/* [sign] digits in the radix, the whole of [s, end). */
static int is_integer_text(const char *s, const char *end, int radix, int allow_sign) {
  if (allow_sign && s < end && (*s == '+' || *s == '-')) s++;
  if (s == end) return 0;
  for (; s < end; s++)
    if (digit_value(*s) >= radix) return 0;
  return 1;
}

/* z := the integer text (validated by is_integer_text); mpz_set_str takes no '+'. */
static void set_z_text(mpz_t z, const char *s, const char *end, int radix) {
  int neg = 0;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  size_t n = (size_t)(end - s);
  char small[64], *buf = n < sizeof small ? small : esk_alloc_atomic(n + 1);
  memcpy(buf, s, n);
  buf[n] = '\0';
  mpz_set_str(z, buf, radix);
  if (neg) mpz_neg(z, z);
}

/* R7RS decimal syntax: [sign] (digits [. digits*] | . digits) [e [sign] digits]. */
static int is_decimal(const char *s, const char *end) {
  if (s < end && (*s == '+' || *s == '-')) s++;
  int mant = 0;
  while (s < end && *s >= '0' && *s <= '9') s++, mant++;
  if (s < end && *s == '.') {
    s++;
    while (s < end && *s >= '0' && *s <= '9') s++, mant++;
  }
  if (!mant) return 0;
  if (s < end && (*s == 'e' || *s == 'E')) {
    s++;
    if (s < end && (*s == '+' || *s == '-')) s++;
    if (s == end) return 0;
    while (s < end && *s >= '0' && *s <= '9') s++;
  }
  return s == end;
}

/* The exact value of decimal text (validated by is_decimal); 0 when the exponent is absurd. */
static int exact_decimal(const char *s, const char *end, esk_value *out) {
  int neg = 0;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  char *digits = esk_alloc_atomic((size_t)(end - s) + 2);
  size_t nd = 0;
  long frac = 0;
  int after = 0;
  for (; s < end && *s != 'e' && *s != 'E'; s++) {
    if (*s == '.') after = 1;
    else {
      digits[nd++] = *s;
      frac += after;
    }
  }
  digits[nd] = '\0';
  long e = 0;
  if (s < end) {
    s++;
    int eneg = 0;
    if (*s == '+' || *s == '-') eneg = *s++ == '-';
    for (; s < end; s++) {
      e = e * 10 + (*s - '0');
      if (e > 10000000) return 0;
    }
    if (eneg) e = -e;
  }
  e -= frac;
  mpq_t q;
  mpq_init(q);
  mpz_set_str(mpq_numref(q), digits, 10);
  if (neg) mpz_neg(mpq_numref(q), mpq_numref(q));
  mpz_t p;
  mpz_init(p);
  mpz_ui_pow_ui(p, 10, (unsigned long)(e < 0 ? -e : e));
  if (e >= 0) mpz_mul(mpq_numref(q), mpq_numref(q), p);
  else mpz_set(mpq_denref(q), p);
  mpq_canonicalize(q);
  *out = norm_q(q);
  return 1;
}

/* Reads the text of a number (R7RS syntax without complex numbers); 0 when it is not one. */
static int parse_number(const char *s, int64_t len, int radix, esk_value *out) {
  const char *end = s + len;
  char exactness = 0;
  int radix_seen = 0;
  while (end - s >= 2 && s[0] == '#') {
    switch (s[1] | 0x20) {
      case 'x': radix = 16; goto radix_prefix;
      case 'b': radix = 2; goto radix_prefix;
      case 'o': radix = 8; goto radix_prefix;
      case 'd': radix = 10;
      radix_prefix:
        if (radix_seen++) return 0;
        break;
      case 'e': case 'i': if (exactness) return 0; exactness = s[1] | 0x20; break;
      default: return 0;
    }
    s += 2;
  }
  if (s == end) return 0;
  size_t n = (size_t)(end - s);
  esk_value v;
  if ((n == 6 && (!strncmp(s, "+inf.0", 6) || !strncmp(s, "-inf.0", 6) ||
                  !strncmp(s, "+nan.0", 6) || !strncmp(s, "-nan.0", 6)))) {
    if (exactness == 'e') return 0;
    *out = esk_flonum(s[1] == 'n' ? NAN : s[0] == '-' ? -INFINITY : INFINITY);
    return 1;
  }
  const char *slash = memchr(s, '/', n);
  if (is_integer_text(s, end, radix, 1)) {
    if (n < 18 && radix == 10) {
      v = esk_fixnum(strtoll(s, NULL, 10));
    } else {
      mpz_t z;
      mpz_init(z);
      set_z_text(z, s, end, radix);
      v = norm_z(z);
    }
  } else if (slash) {
    if (!is_integer_text(s, slash, radix, 1) || !is_integer_text(slash + 1, end, radix, 0))
      return 0;
    mpq_t q;
    mpq_init(q);
    set_z_text(mpq_numref(q), s, slash, radix);
    set_z_text(mpq_denref(q), slash + 1, end, radix);
    if (mpz_sgn(mpq_denref(q)) == 0) return 0;
    mpq_canonicalize(q);
    v = norm_q(q);
  } else if (radix == 10 && is_decimal(s, end)) {
    if (exactness == 'e') {
      if (!exact_decimal(s, end, out)) return 0;
      return 1;
    }
    char small[64], *buf = n < sizeof small ? small : esk_alloc_atomic(n + 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
    v = esk_flonum(strtod(buf, NULL));
  } else {
    return 0;
  }
  if (exactness == 'i' && v.tag != FLO) v = esk_flonum(to_d(v));
  if (exactness == 'e' && v.tag == FLO) v = d_to_exact(esk_flonum_value(v));
  *out = v;
  return 1;
}

esk_value esk_prim_string_to_number(const char *loc, int64_t argc, esk_value *argv) {
  esk_value a = argv[0];
  if (a.tag != ESK_T_STRING) esk_error_type(loc, "string->number", "string", a);
  int radix = need_radix(loc, "string->number", argc, argv);
  esk_string *s = esk_ptr(a);
  esk_value r;
  return parse_number(s->data, s->len, radix, &r) ? r : esk_bool(0);
}

/* Used by the printer: would the reader take this text for a number? */
int esk_looks_like_number(const char *s, int64_t len) {
  esk_value r;
  return parse_number(s, len, 10, &r);
}

/* ---- predicates ---------------------------------------------------------------------------- */

esk_value esk_prim_is_number(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  (void)loc;
  return esk_bool(is_num(a));
}
esk_value esk_prim_is_real(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  (void)loc;
  return esk_bool(is_num(a));
}
esk_value esk_prim_is_rational(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  (void)loc;
  return esk_bool(is_exact(a) || (a.tag == FLO && isfinite(esk_flonum_value(a))));
}
esk_value esk_prim_is_integer(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  (void)loc;
  return esk_bool(is_int(a));
}
esk_value esk_prim_is_exact_integer(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  (void)loc;
  return esk_bool(is_exact_int(a));
}
esk_value esk_prim_is_exact(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "exact?", a);
  return esk_bool(is_exact(a));
}
esk_value esk_prim_is_inexact(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "inexact?", a);
  return esk_bool(a.tag == FLO);
}
esk_value esk_prim_is_nan(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "nan?", a);
  return esk_bool(a.tag == FLO && isnan(esk_flonum_value(a)));
}
esk_value esk_prim_is_infinite(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "infinite?", a);
  return esk_bool(a.tag == FLO && isinf(esk_flonum_value(a)));
}
esk_value esk_prim_is_finite(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "finite?", a);
  return esk_bool(a.tag != FLO || isfinite(esk_flonum_value(a)));
}
esk_value esk_prim_is_zero(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "zero?", a);
  return esk_bool(a.tag == FLO ? esk_flonum_value(a) == 0 : sign_of(a) == 0);
}
esk_value esk_prim_is_positive(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "positive?", a);
  return esk_bool(sign_of(a) > 0);
}
esk_value esk_prim_is_negative(const char *loc, esk_value a) {
  AD_PRIMAL(a);
  need_num(loc, "negative?", a);
  return esk_bool(sign_of(a) < 0);
}
static int is_odd(esk_value a) {
  if (a.tag == FIX) return a.payload & 1;
  if (a.tag == BIG) return mpz_odd_p(BIGZ(a));
  return fmod(esk_flonum_value(a), 2) != 0;
}
esk_value esk_prim_is_odd(const char *loc, esk_value a) {
  need_int(loc, "odd?", a);
  return esk_bool(is_odd(a));
}
esk_value esk_prim_is_even(const char *loc, esk_value a) {
  need_int(loc, "even?", a);
  return esk_bool(!is_odd(a));
}
