/* Primitives called by compiled code.  ABI (the compiler relies on it): fixed arity k <= 2
 * takes (loc, a, b) by value; arity >= 3 or variadic takes (loc, argc, argv) with argc
 * already checked.  Errors name the Scheme procedure, e.g. "car: expected pair, got 5". */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"

#define FIX ESK_T_FIXNUM
#define FLO ESK_T_FLONUM

static _Noreturn void fail(const char *loc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void fail(const char *loc, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  esk_raise_error(loc, buf, 0, NULL);
}

static _Noreturn void fail_with(const char *loc, const char *msg, esk_value irritant) {
  esk_raise_error(loc, msg, 1, &irritant);
}

/* ---- numbers ----------------------------------------------------------------------------- */

static inline int is_num(esk_value v) { return v.tag == FIX || v.tag == FLO; }
static inline double to_d(esk_value v) {
  return v.tag == FIX ? (double)v.payload : esk_flonum_value(v);
}
static inline void need_num(const char *loc, const char *who, esk_value v) {
  if (!is_num(v)) esk_error_type(loc, who, "number", v);
}
static inline int is_int(esk_value v) {
  if (v.tag == FIX) return 1;
  if (v.tag != FLO) return 0;
  double d = esk_flonum_value(v);
  return isfinite(d) && d == floor(d);
}
static inline void need_int(const char *loc, const char *who, esk_value v) {
  if (!is_int(v)) esk_error_type(loc, who, "integer", v);
}
/* TODO(bignums): promote instead of failing. */
static _Noreturn void overflow(const char *loc, const char *who) {
  fail(loc, "%s: exact integer overflow", who);
}
static _Noreturn void div_zero(const char *loc, const char *who) {
  fail(loc, "%s: division by zero", who);
}

esk_value esk_prim_add2(const char *loc, esk_value a, esk_value b) {
  if (a.tag == FIX && b.tag == FIX) {
    int64_t r;
    if (__builtin_add_overflow(a.payload, b.payload, &r)) overflow(loc, "+");
    return esk_fixnum(r);
  }
  need_num(loc, "+", a);
  need_num(loc, "+", b);
  return esk_flonum(to_d(a) + to_d(b));
}

esk_value esk_prim_sub2(const char *loc, esk_value a, esk_value b) {
  if (a.tag == FIX && b.tag == FIX) {
    int64_t r;
    if (__builtin_sub_overflow(a.payload, b.payload, &r)) overflow(loc, "-");
    return esk_fixnum(r);
  }
  need_num(loc, "-", a);
  need_num(loc, "-", b);
  return esk_flonum(to_d(a) - to_d(b));
}

esk_value esk_prim_mul2(const char *loc, esk_value a, esk_value b) {
  if (a.tag == FIX && b.tag == FIX) {
    int64_t r;
    if (__builtin_mul_overflow(a.payload, b.payload, &r)) overflow(loc, "*");
    return esk_fixnum(r);
  }
  need_num(loc, "*", a);
  need_num(loc, "*", b);
  return esk_flonum(to_d(a) * to_d(b));
}

/* TODO(rationals): a non-divisible fixnum quotient is returned as a flonum for now. */
esk_value esk_prim_div2(const char *loc, esk_value a, esk_value b) {
  need_num(loc, "/", a);
  need_num(loc, "/", b);
  if (b.tag == FIX && b.payload == 0) div_zero(loc, "/");
  if (a.tag == FIX && b.tag == FIX) {
    if (b.payload == -1) {
      if (a.payload == INT64_MIN) overflow(loc, "/");
      return esk_fixnum(-a.payload);
    }
    if (a.payload % b.payload == 0) return esk_fixnum(a.payload / b.payload);
  }
  return esk_flonum(to_d(a) / to_d(b));
}

esk_value esk_prim_neg(const char *loc, esk_value a) {
  if (a.tag == FIX) {
    if (a.payload == INT64_MIN) overflow(loc, "-");
    return esk_fixnum(-a.payload);
  }
  need_num(loc, "-", a);
  return esk_flonum(-esk_flonum_value(a));
}

/* Exact comparison of a fixnum with a double (converting the fixnum could round). */
static int cmp_fix_flo(int64_t i, double d) {
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  double fd = floor(d);
  int64_t fi = (int64_t)fd;
  if (i != fi) return i < fi ? -1 : 1;
  return d > fd ? -1 : 0;
}

#define UNORDERED 2

static int num_cmp(const char *loc, const char *who, esk_value a, esk_value b) {
  need_num(loc, who, a);
  need_num(loc, who, b);
  if (a.tag == FIX && b.tag == FIX)
    return a.payload < b.payload ? -1 : a.payload > b.payload;
  if (a.tag == FLO && isnan(esk_flonum_value(a))) return UNORDERED;
  if (b.tag == FLO && isnan(esk_flonum_value(b))) return UNORDERED;
  if (a.tag == FIX) return cmp_fix_flo(a.payload, esk_flonum_value(b));
  if (b.tag == FIX) return -cmp_fix_flo(b.payload, esk_flonum_value(a));
  double x = esk_flonum_value(a), y = esk_flonum_value(b);
  return x < y ? -1 : x > y;
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

esk_value esk_prim_quotient(const char *loc, esk_value a, esk_value b) {
  need_int(loc, "quotient", a);
  need_int(loc, "quotient", b);
  if (a.tag == FIX && b.tag == FIX) {
    if (b.payload == 0) div_zero(loc, "quotient");
    if (b.payload == -1) return esk_prim_neg(loc, a);
    return esk_fixnum(a.payload / b.payload);
  }
  double x = to_d(a), y = to_d(b);
  if (y == 0) div_zero(loc, "quotient");
  return esk_flonum((x - fmod(x, y)) / y);
}

esk_value esk_prim_remainder(const char *loc, esk_value a, esk_value b) {
  need_int(loc, "remainder", a);
  need_int(loc, "remainder", b);
  if (a.tag == FIX && b.tag == FIX) {
    if (b.payload == 0) div_zero(loc, "remainder");
    if (b.payload == -1) return esk_fixnum(0); /* INT64_MIN % -1 traps */
    return esk_fixnum(a.payload % b.payload);
  }
  double y = to_d(b);
  if (y == 0) div_zero(loc, "remainder");
  return esk_flonum(fmod(to_d(a), y));
}

esk_value esk_prim_modulo(const char *loc, esk_value a, esk_value b) {
  need_int(loc, "modulo", a);
  need_int(loc, "modulo", b);
  if (a.tag == FIX && b.tag == FIX) {
    if (b.payload == 0) div_zero(loc, "modulo");
    if (b.payload == -1) return esk_fixnum(0);
    int64_t r = a.payload % b.payload;
    if (r != 0 && (r < 0) != (b.payload < 0)) r += b.payload;
    return esk_fixnum(r);
  }
  double y = to_d(b);
  if (y == 0) div_zero(loc, "modulo");
  double r = fmod(to_d(a), y);
  if (r != 0 && (r < 0) != (y < 0)) r += y;
  return esk_flonum(r);
}

esk_value esk_prim_abs(const char *loc, esk_value a) {
  if (a.tag == FIX) {
    if (a.payload == INT64_MIN) overflow(loc, "abs");
    return esk_fixnum(a.payload < 0 ? -a.payload : a.payload);
  }
  need_num(loc, "abs", a);
  return esk_flonum(fabs(esk_flonum_value(a)));
}

static esk_value min_max(const char *loc, const char *who, esk_value a, esk_value b, int want) {
  int c = num_cmp(loc, who, a, b);
  if (c == UNORDERED) return esk_flonum(NAN);
  esk_value r = c == want ? a : b;
  if (a.tag == FLO || b.tag == FLO) return esk_flonum(to_d(r));
  return r;
}
esk_value esk_prim_min2(const char *loc, esk_value a, esk_value b) {
  return min_max(loc, "min", a, b, -1);
}
esk_value esk_prim_max2(const char *loc, esk_value a, esk_value b) {
  return min_max(loc, "max", a, b, 1);
}

esk_value esk_prim_exact_to_inexact(const char *loc, esk_value a) {
  need_num(loc, "exact->inexact", a);
  return esk_flonum(to_d(a));
}

/* An integral double in [-2^63, 2^63) as a fixnum. */
static esk_value flo_to_fix(const char *loc, const char *who, double d) {
  if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) overflow(loc, who);
  return esk_fixnum((int64_t)d);
}

/* TODO(rationals): non-integral doubles have an exact value we cannot represent yet. */
esk_value esk_prim_inexact_to_exact(const char *loc, esk_value a) {
  need_num(loc, "inexact->exact", a);
  if (a.tag == FIX) return a;
  double d = esk_flonum_value(a);
  if (!isfinite(d)) fail_with(loc, "inexact->exact: no exact representation for", a);
  if (d != floor(d))
    fail_with(loc, "inexact->exact: exact rationals are not supported yet:", a);
  return flo_to_fix(loc, "inexact->exact", d);
}

#define ROUNDING(NAME, SCHEME, FN)                                                       \
  esk_value esk_prim_##NAME(const char *loc, esk_value a) {                              \
    if (a.tag == FIX) return a;                                                          \
    need_num(loc, SCHEME, a);                                                            \
    return esk_flonum(FN(esk_flonum_value(a)));                                          \
  }
ROUNDING(floor, "floor", floor)
ROUNDING(ceiling, "ceiling", ceil)
ROUNDING(round, "round", nearbyint) /* ties to even in the default rounding mode */
ROUNDING(truncate, "truncate", trunc)

/* TODO(complex): sqrt and log of negative numbers are errors until complex numbers exist. */
esk_value esk_prim_sqrt(const char *loc, esk_value a) {
  need_num(loc, "sqrt", a);
  if (a.tag == FIX) {
    int64_t n = a.payload;
    if (n < 0) fail_with(loc, "sqrt of negative number", a);
    __int128 r = (int64_t)sqrt((double)n);
    while (r * r > n) r--;
    while ((r + 1) * (r + 1) <= n) r++;
    if (r * r == n) return esk_fixnum((int64_t)r);
    return esk_flonum(sqrt((double)n));
  }
  double d = esk_flonum_value(a);
  if (d < 0) fail_with(loc, "sqrt of negative number", a);
  return esk_flonum(sqrt(d));
}

/* Like Chez, exact arguments at the function's exact points give exact results: (exp 0) is 1. */
#define TRANSCENDENTAL(NAME, SCHEME, FN, EXACT_IN, EXACT_OUT, LO, HI, DOMAIN_MSG)        \
  esk_value esk_prim_##NAME(const char *loc, esk_value a) {                              \
    need_num(loc, SCHEME, a);                                                            \
    if (a.tag == FIX && a.payload == (EXACT_IN)) return esk_fixnum(EXACT_OUT);           \
    double d = to_d(a);                                                                  \
    if (d < (LO) || d > (HI)) fail_with(loc, DOMAIN_MSG, a);                             \
    return esk_flonum(FN(d));                                                            \
  }
TRANSCENDENTAL(exp, "exp", exp, 0, 1, -INFINITY, INFINITY, "")
TRANSCENDENTAL(log, "log", log, 1, 0, 0.0, INFINITY, "log of negative number")
TRANSCENDENTAL(sin, "sin", sin, 0, 0, -INFINITY, INFINITY, "")
TRANSCENDENTAL(cos, "cos", cos, 0, 1, -INFINITY, INFINITY, "")
TRANSCENDENTAL(tan, "tan", tan, 0, 0, -INFINITY, INFINITY, "")
TRANSCENDENTAL(asin, "asin", asin, 0, 0, -1.0, 1.0, "asin: argument outside [-1, 1]")
TRANSCENDENTAL(acos, "acos", acos, 1, 0, -1.0, 1.0, "acos: argument outside [-1, 1]")
TRANSCENDENTAL(atan, "atan", atan, 0, 0, -INFINITY, INFINITY, "")

esk_value esk_prim_atan2(const char *loc, esk_value y, esk_value x) {
  need_num(loc, "atan", y);
  need_num(loc, "atan", x);
  if (y.tag == FIX && y.payload == 0 && x.tag == FIX && x.payload > 0) return esk_fixnum(0);
  return esk_flonum(atan2(to_d(y), to_d(x)));
}

/* TODO(rationals): a negative exact exponent gives a flonum for now. */
esk_value esk_prim_expt(const char *loc, esk_value a, esk_value b) {
  need_num(loc, "expt", a);
  need_num(loc, "expt", b);
  if (b.tag == FIX && b.payload == 0) return esk_fixnum(1);
  if (a.tag == FIX && b.tag == FIX) {
    int64_t base = a.payload, e = b.payload;
    if (e < 0) {
      if (base == 0) div_zero(loc, "expt");
      if (base == 1) return esk_fixnum(1);
      if (base == -1) return esk_fixnum(e & 1 ? -1 : 1);
      return esk_flonum(pow((double)base, (double)e));
    }
    int64_t r = 1;
    for (;;) {
      if ((e & 1) && __builtin_mul_overflow(r, base, &r)) overflow(loc, "expt");
      e >>= 1;
      if (!e) break;
      if (__builtin_mul_overflow(base, base, &base)) overflow(loc, "expt");
    }
    return esk_fixnum(r);
  }
  return esk_flonum(pow(to_d(a), to_d(b)));
}

esk_value esk_prim_number_to_string(const char *loc, esk_value a) {
  need_num(loc, "number->string", a);
  char buf[64];
  if (a.tag == FIX) snprintf(buf, sizeof buf, "%lld", (long long)a.payload);
  else esk_format_double(esk_flonum_value(a), buf, sizeof buf);
  return esk_cstring(buf);
}

enum { PARSE_JUNK, PARSE_OK, PARSE_OVERFLOW };

static int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

/* [sign] digits, in the radix; PARSE_OVERFLOW when valid but beyond a fixnum. */
static int parse_integer(const char *s, const char *end, int radix, int64_t *out) {
  int neg = 0;
  if (s < end && (*s == '+' || *s == '-')) neg = *s++ == '-';
  if (s == end) return PARSE_JUNK;
  int64_t n = 0;
  int over = 0;
  for (; s < end; s++) {
    int d = digit_value(*s);
    if (d >= radix) return PARSE_JUNK;
    /* Accumulate negatively so that INT64_MIN is representable. */
    if (__builtin_mul_overflow(n, radix, &n) || __builtin_sub_overflow(n, d, &n)) over = 1;
  }
  if (over || (!neg && n == INT64_MIN)) return PARSE_OVERFLOW;
  *out = neg ? n : -n;
  return PARSE_OK;
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

static int parse_number(const char *s, int64_t len, esk_value *out) {
  const char *end = s + len;
  int radix = 10;
  char exactness = 0;
  while (end - s >= 2 && s[0] == '#') {
    switch (s[1] | 0x20) {
      case 'x': radix = 16; break;
      case 'b': radix = 2; break;
      case 'o': radix = 8; break;
      case 'd': radix = 10; break;
      case 'e': case 'i': if (exactness) return PARSE_JUNK; exactness = s[1] | 0x20; break;
      default: return PARSE_JUNK;
    }
    s += 2;
  }
  if (s == end || end - s > 4000) return PARSE_JUNK;

  char buf[4096];
  memcpy(buf, s, (size_t)(end - s));
  buf[end - s] = '\0';
  double d;
  int64_t n, m;
  int st;
  const char *slash = memchr(s, '/', (size_t)(end - s));
  if (!strcmp(buf, "+inf.0")) d = INFINITY;
  else if (!strcmp(buf, "-inf.0")) d = -INFINITY;
  else if (!strcmp(buf, "+nan.0") || !strcmp(buf, "-nan.0")) d = NAN;
  else if ((st = parse_integer(s, end, radix, &n)) != PARSE_JUNK) {
    if (st == PARSE_OVERFLOW && exactness != 'i') return PARSE_OVERFLOW;
    if (st == PARSE_OK) {
      *out = exactness == 'i' ? esk_flonum((double)n) : esk_fixnum(n);
      return PARSE_OK;
    }
    d = strtod(buf, NULL);
  } else if (slash) {
    /* TODO(rationals): a non-integral ratio becomes a flonum for now. */
    if (parse_integer(s, slash, radix, &n) != PARSE_OK) return PARSE_JUNK;
    int st2 = parse_integer(slash + 1, end, radix, &m);
    if (st2 != PARSE_OK || slash[1] == '+' || slash[1] == '-') return PARSE_JUNK;
    if (m == 0) return PARSE_JUNK;
    if (n % m == 0 && exactness != 'i') {
      *out = esk_fixnum(n / m);
      return PARSE_OK;
    }
    d = (double)n / (double)m;
  } else if (radix == 10 && is_decimal(s, end)) {
    d = strtod(buf, NULL);
  } else {
    return PARSE_JUNK;
  }
  if (exactness == 'e' && isfinite(d) && d == floor(d) && fabs(d) < 9223372036854775808.0) {
    *out = esk_fixnum((int64_t)d);
    return PARSE_OK;
  }
  *out = esk_flonum(d);
  return PARSE_OK;
}

esk_value esk_prim_string_to_number(const char *loc, esk_value a) {
  if (a.tag != ESK_T_STRING) esk_error_type(loc, "string->number", "string", a);
  esk_string *s = esk_ptr(a);
  esk_value r;
  switch (parse_number(s->data, s->len, &r)) {
    case PARSE_OK: return r;
    case PARSE_OVERFLOW: overflow(loc, "string->number");
    default: return esk_bool(0);
  }
}

/* Used by the printer: would the reader take this text for a number? */
int esk_looks_like_number(const char *s, int64_t len) {
  esk_value r;
  return parse_number(s, len, &r) != PARSE_JUNK;
}

esk_value esk_prim_is_number(const char *loc, esk_value a) {
  (void)loc;
  return esk_bool(is_num(a));
}
esk_value esk_prim_is_integer(const char *loc, esk_value a) {
  (void)loc;
  return esk_bool(is_int(a));
}
esk_value esk_prim_is_exact(const char *loc, esk_value a) {
  need_num(loc, "exact?", a);
  return esk_bool(a.tag == FIX);
}
esk_value esk_prim_is_inexact(const char *loc, esk_value a) {
  need_num(loc, "inexact?", a);
  return esk_bool(a.tag == FLO);
}
esk_value esk_prim_is_zero(const char *loc, esk_value a) {
  need_num(loc, "zero?", a);
  return esk_bool(to_d(a) == 0);
}
esk_value esk_prim_is_positive(const char *loc, esk_value a) {
  need_num(loc, "positive?", a);
  return esk_bool(a.tag == FIX ? a.payload > 0 : esk_flonum_value(a) > 0);
}
esk_value esk_prim_is_negative(const char *loc, esk_value a) {
  need_num(loc, "negative?", a);
  return esk_bool(a.tag == FIX ? a.payload < 0 : esk_flonum_value(a) < 0);
}
esk_value esk_prim_is_odd(const char *loc, esk_value a) {
  need_int(loc, "odd?", a);
  return esk_bool(a.tag == FIX ? (a.payload & 1) : fmod(esk_flonum_value(a), 2) != 0);
}
esk_value esk_prim_is_even(const char *loc, esk_value a) {
  need_int(loc, "even?", a);
  return esk_bool(a.tag == FIX ? !(a.payload & 1) : fmod(esk_flonum_value(a), 2) == 0);
}

esk_value esk_prim_square(const char *loc, esk_value a) {
  need_num(loc, "square", a);
  return esk_prim_mul2(loc, a, a);
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

esk_value esk_prim_gcd2(const char *loc, esk_value a, esk_value b) {
  need_int(loc, "gcd", a);
  need_int(loc, "gcd", b);
  if (a.tag == FIX && b.tag == FIX) {
    uint64_t g = ugcd(uabs(a.payload), uabs(b.payload));
    if (g > INT64_MAX) overflow(loc, "gcd");
    return esk_fixnum((int64_t)g);
  }
  double x = fabs(to_d(a)), y = fabs(to_d(b));
  while (y != 0) {
    double t = fmod(x, y);
    x = y;
    y = t;
  }
  return esk_flonum(x);
}

esk_value esk_prim_lcm2(const char *loc, esk_value a, esk_value b) {
  need_int(loc, "lcm", a);
  need_int(loc, "lcm", b);
  if (a.tag == FIX && b.tag == FIX) {
    uint64_t x = uabs(a.payload), y = uabs(b.payload);
    if (x == 0 || y == 0) return esk_fixnum(0);
    uint64_t r;
    if (__builtin_mul_overflow(x / ugcd(x, y), y, &r) || r > INT64_MAX) overflow(loc, "lcm");
    return esk_fixnum((int64_t)r);
  }
  double x = fabs(to_d(a)), y = fabs(to_d(b));
  if (x == 0 || y == 0) return esk_flonum(0);
  double g = esk_flonum_value(esk_prim_gcd2(loc, esk_flonum(x), esk_flonum(y)));
  return esk_flonum(x / g * y);
}

/* ---- pairs and lists --------------------------------------------------------------------- */

#define PAIR(v) ((esk_pair *)esk_ptr(v))
#define NIL ((esk_value){ESK_T_NIL, 0})
#define FALSE ((esk_value){ESK_T_BOOL, 0})
#define VOID ((esk_value){ESK_T_VOID, 0})

enum { LIST_IMPROPER = -1, LIST_CIRCULAR = -2 };

/* Length of a proper list, or LIST_IMPROPER / LIST_CIRCULAR (Floyd's cycle check). */
static int64_t list_length(esk_value l) {
  int64_t n = 0;
  esk_value slow = l;
  while (l.tag == ESK_T_PAIR) {
    l = PAIR(l)->cdr;
    n++;
    if (n % 2 == 0) {
      slow = PAIR(slow)->cdr;
      if (l.tag == ESK_T_PAIR && l.payload == slow.payload) return LIST_CIRCULAR;
    }
  }
  return l.tag == ESK_T_NIL ? n : LIST_IMPROPER;
}

static int64_t need_list(const char *loc, const char *who, esk_value l) {
  int64_t n = list_length(l);
  if (n == LIST_CIRCULAR) fail(loc, "%s: expected proper list, got a circular list", who);
  if (n < 0) esk_error_type(loc, who, "proper list", l);
  return n;
}

esk_value esk_prim_cons(const char *loc, esk_value a, esk_value b) {
  (void)loc;
  return esk_cons(a, b);
}

esk_value esk_prim_car(const char *loc, esk_value a) {
  if (a.tag != ESK_T_PAIR) esk_error_type(loc, "car", "pair", a);
  return PAIR(a)->car;
}

esk_value esk_prim_cdr(const char *loc, esk_value a) {
  if (a.tag != ESK_T_PAIR) esk_error_type(loc, "cdr", "pair", a);
  return PAIR(a)->cdr;
}

static esk_pair *mutable_pair(const char *loc, const char *who, esk_value p) {
  if (p.tag != ESK_T_PAIR) esk_error_type(loc, who, "pair", p);
  if (PAIR(p)->h.flags & ESK_F_IMMUTABLE) fail_with(loc, "attempt to modify a constant pair:", p);
  return PAIR(p);
}

esk_value esk_prim_set_car(const char *loc, esk_value p, esk_value v) {
  mutable_pair(loc, "set-car!", p)->car = v;
  return VOID;
}

esk_value esk_prim_set_cdr(const char *loc, esk_value p, esk_value v) {
  mutable_pair(loc, "set-cdr!", p)->cdr = v;
  return VOID;
}

esk_value esk_prim_length(const char *loc, esk_value l) {
  return esk_fixnum(need_list(loc, "length", l));
}

esk_value esk_prim_list(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc;
  return esk_list_from_args(argc, argv);
}

/* Appends a fresh copy of the proper list l at *tail; returns the new tail slot. */
static esk_value *copy_onto(esk_value *tail, esk_value l) {
  for (; l.tag == ESK_T_PAIR; l = PAIR(l)->cdr) {
    *tail = esk_cons(PAIR(l)->car, NIL);
    tail = &PAIR(*tail)->cdr;
  }
  return tail;
}

esk_value esk_prim_append(const char *loc, int64_t argc, esk_value *argv) {
  if (argc == 0) return NIL;
  esk_value head = NIL, *tail = &head;
  for (int64_t i = 0; i < argc - 1; i++) {
    need_list(loc, "append", argv[i]);
    tail = copy_onto(tail, argv[i]);
  }
  *tail = argv[argc - 1];
  return head;
}

esk_value esk_prim_reverse(const char *loc, esk_value l) {
  need_list(loc, "reverse", l);
  esk_value r = NIL;
  for (; l.tag == ESK_T_PAIR; l = PAIR(l)->cdr) r = esk_cons(PAIR(l)->car, r);
  return r;
}

static int64_t need_index(const char *loc, const char *who, esk_value k) {
  if (k.tag != FIX || k.payload < 0) esk_error_type(loc, who, "non-negative exact integer", k);
  return k.payload;
}

esk_value esk_prim_list_tail(const char *loc, esk_value l, esk_value k) {
  int64_t n = need_index(loc, "list-tail", k);
  for (int64_t i = 0; i < n; i++) {
    if (l.tag != ESK_T_PAIR) fail(loc, "list-tail: index %lld out of range", (long long)n);
    l = PAIR(l)->cdr;
  }
  return l;
}

esk_value esk_prim_list_ref(const char *loc, esk_value l, esk_value k) {
  int64_t n = need_index(loc, "list-ref", k);
  for (int64_t i = 0; i < n && l.tag == ESK_T_PAIR; i++) l = PAIR(l)->cdr;
  if (l.tag != ESK_T_PAIR) fail(loc, "list-ref: index %lld out of range", (long long)n);
  return PAIR(l)->car;
}

static int equal(esk_value a, esk_value b);

typedef int (*same_fn)(esk_value, esk_value);
static int same_eq(esk_value a, esk_value b) { return (int)esk_prim_eq(NULL, a, b).payload; }
static int same_eqv(esk_value a, esk_value b) { return (int)esk_prim_eqv(NULL, a, b).payload; }

/* Walks l for the member and assoc families; stops at a non-pair tail, fails on a cycle. */
static esk_value search(const char *loc, const char *who, esk_value x, esk_value l,
                        same_fn same, int assoc) {
  esk_value slow = l;
  for (int64_t n = 1; l.tag == ESK_T_PAIR; n++) {
    esk_value item = PAIR(l)->car;
    if (assoc) {
      if (item.tag != ESK_T_PAIR) fail_with(loc, "improper association list element:", item);
      if (same(x, PAIR(item)->car)) return item;
    } else if (same(x, item)) {
      return l;
    }
    l = PAIR(l)->cdr;
    if (n % 2 == 0) {
      slow = PAIR(slow)->cdr;
      if (l.tag == ESK_T_PAIR && l.payload == slow.payload) fail(loc, "%s: circular list", who);
    }
  }
  return FALSE;
}

esk_value esk_prim_memq(const char *loc, esk_value x, esk_value l) {
  return search(loc, "memq", x, l, same_eq, 0);
}
esk_value esk_prim_memv(const char *loc, esk_value x, esk_value l) {
  return search(loc, "memv", x, l, same_eqv, 0);
}
esk_value esk_prim_member(const char *loc, esk_value x, esk_value l) {
  return search(loc, "member", x, l, equal, 0);
}
esk_value esk_prim_assq(const char *loc, esk_value x, esk_value l) {
  return search(loc, "assq", x, l, same_eq, 1);
}
esk_value esk_prim_assv(const char *loc, esk_value x, esk_value l) {
  return search(loc, "assv", x, l, same_eqv, 1);
}
esk_value esk_prim_assoc(const char *loc, esk_value x, esk_value l) {
  return search(loc, "assoc", x, l, equal, 1);
}

esk_value esk_prim_is_null(const char *loc, esk_value a) {
  (void)loc;
  return esk_bool(a.tag == ESK_T_NIL);
}
esk_value esk_prim_is_pair(const char *loc, esk_value a) {
  (void)loc;
  return esk_bool(a.tag == ESK_T_PAIR);
}
esk_value esk_prim_is_list(const char *loc, esk_value a) {
  (void)loc;
  return esk_bool(list_length(a) >= 0);
}

/* path is the a/d letters of the name; they apply right to left. */
static esk_value cxr(const char *loc, const char *who, const char *path, esk_value v) {
  esk_value x = v;
  for (size_t i = strlen(path); i-- > 0;) {
    if (x.tag != ESK_T_PAIR) {
      char msg[64];
      snprintf(msg, sizeof msg, "%s: incorrect list structure", who);
      fail_with(loc, msg, v);
    }
    x = path[i] == 'a' ? PAIR(x)->car : PAIR(x)->cdr;
  }
  return x;
}
#define CXR(PATH)                                                                        \
  esk_value esk_prim_c##PATH##r(const char *loc, esk_value a) {                          \
    return cxr(loc, "c" #PATH "r", #PATH, a);                                            \
  }
CXR(ad)
CXR(dd)
CXR(aa)
CXR(da)
CXR(add)
CXR(ddd)

/* ---- equality and type predicates -------------------------------------------------------- */

esk_value esk_prim_eq(const char *loc, esk_value a, esk_value b) {
  (void)loc;
  if (a.tag != b.tag) return FALSE;
  switch (a.tag) {
    case ESK_T_NIL: case ESK_T_VOID: case ESK_T_EOF: case ESK_T_DEFAULT: case ESK_T_UNBOUND:
      return esk_bool(1);
    default:
      return esk_bool(a.payload == b.payload);
  }
}

/* TODO(bignums, rationals): compare those by value. */
esk_value esk_prim_eqv(const char *loc, esk_value a, esk_value b) {
  return esk_prim_eq(loc, a, b);
}

static int equal(esk_value a, esk_value b) {
  for (;;) {
    if (same_eqv(a, b)) return 1;
    if (a.tag != b.tag) return 0;
    switch (a.tag) {
      case ESK_T_PAIR:
        if (!equal(PAIR(a)->car, PAIR(b)->car)) return 0;
        a = PAIR(a)->cdr;
        b = PAIR(b)->cdr;
        continue;
      case ESK_T_STRING: {
        esk_string *x = esk_ptr(a), *y = esk_ptr(b);
        return x->len == y->len && memcmp(x->data, y->data, (size_t)x->len) == 0;
      }
      case ESK_T_VECTOR: {
        esk_vector *x = esk_ptr(a), *y = esk_ptr(b);
        if (x->len != y->len) return 0;
        for (int64_t i = 0; i < x->len; i++)
          if (!equal(x->items[i], y->items[i])) return 0;
        return 1;
      }
      case ESK_T_BOX:
        a = ((esk_box *)esk_ptr(a))->value;
        b = ((esk_box *)esk_ptr(b))->value;
        continue;
      default:
        return 0;
    }
  }
}

esk_value esk_prim_equal(const char *loc, esk_value a, esk_value b) {
  (void)loc;
  return esk_bool(equal(a, b));
}

esk_value esk_prim_not(const char *loc, esk_value a) {
  (void)loc;
  return esk_bool(!esk_is_true(a));
}

#define TYPE_PRED(NAME, TAG)                                                             \
  esk_value esk_prim_##NAME(const char *loc, esk_value a) {                              \
    (void)loc;                                                                           \
    return esk_bool(a.tag == (TAG));                                                     \
  }
TYPE_PRED(is_symbol, ESK_T_SYMBOL)
TYPE_PRED(is_string, ESK_T_STRING)
TYPE_PRED(is_char, ESK_T_CHAR)
TYPE_PRED(is_boolean, ESK_T_BOOL)
TYPE_PRED(is_procedure, ESK_T_CLOSURE)
TYPE_PRED(is_vector, ESK_T_VECTOR)

/* ---- strings, chars, symbols ------------------------------------------------------------- */

/* UTF-8 is decoded leniently: an invalid byte is one character (U+FFFD), so every string
 * has a well-defined length and no index can land inside a character. */
static int64_t utf8_next(const unsigned char *s, int64_t i, int64_t len, uint32_t *cp) {
  unsigned char c = s[i];
  int n = c < 0x80 ? 1 : c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (n == 0 || (n == 4 && c > 0xF4)) {
    *cp = c < 0x80 ? c : 0xFFFD;
    return i + 1;
  }
  uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
  int64_t j = i + 1;
  for (int k = 1; k < n; k++, j++) {
    if (j >= len || (s[j] & 0xC0) != 0x80) {
      *cp = 0xFFFD;
      return j;
    }
    v = v << 6 | (s[j] & 0x3Fu);
  }
  *cp = v;
  return j;
}

static int utf8_encode(uint32_t c, char *b) {
  if (c < 0x80) { b[0] = (char)c; return 1; }
  if (c < 0x800) { b[0] = (char)(0xC0 | c >> 6); b[1] = (char)(0x80 | (c & 0x3F)); return 2; }
  if (c < 0x10000) {
    b[0] = (char)(0xE0 | c >> 12); b[1] = (char)(0x80 | (c >> 6 & 0x3F));
    b[2] = (char)(0x80 | (c & 0x3F)); return 3;
  }
  b[0] = (char)(0xF0 | c >> 18); b[1] = (char)(0x80 | (c >> 12 & 0x3F));
  b[2] = (char)(0x80 | (c >> 6 & 0x3F)); b[3] = (char)(0x80 | (c & 0x3F)); return 4;
}

static esk_string *need_string(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_STRING) esk_error_type(loc, who, "string", v);
  return esk_ptr(v);
}

static int64_t utf8_length(const esk_string *s) {
  int64_t n = 0;
  uint32_t cp;
  for (int64_t i = 0; i < s->len; n++) i = utf8_next((const unsigned char *)s->data, i, s->len, &cp);
  return n;
}

/* Byte offset of character k (k == length gives s->len), or -1 when k is past the end. */
static int64_t utf8_offset(const esk_string *s, int64_t k) {
  int64_t i = 0;
  uint32_t cp;
  for (; k > 0; k--) {
    if (i >= s->len) return -1;
    i = utf8_next((const unsigned char *)s->data, i, s->len, &cp);
  }
  return i;
}


esk_value esk_prim_string_length(const char *loc, esk_value a) {
  return esk_fixnum(utf8_length(need_string(loc, "string-length", a)));
}

esk_value esk_prim_string_ref(const char *loc, esk_value a, esk_value k) {
  esk_string *s = need_string(loc, "string-ref", a);
  int64_t n = need_index(loc, "string-ref", k);
  int64_t i = utf8_offset(s, n);
  if (i < 0 || i >= s->len)
    fail(loc, "string-ref: index %lld out of range for string of length %lld", (long long)n,
         (long long)utf8_length(s));
  uint32_t cp;
  utf8_next((const unsigned char *)s->data, i, s->len, &cp);
  return esk_char(cp);
}

esk_value esk_prim_substring(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *s = need_string(loc, "substring", argv[0]);
  int64_t start = need_index(loc, "substring", argv[1]);
  int64_t end = argc > 2 ? need_index(loc, "substring", argv[2]) : utf8_length(s);
  int64_t b0 = utf8_offset(s, start), b1 = end >= start ? utf8_offset(s, end) : -1;
  if (b0 < 0 || b1 < 0)
    fail(loc, "substring: indices %lld and %lld out of range for string of length %lld",
         (long long)start, (long long)end, (long long)utf8_length(s));
  return esk_make_string(s->data + b0, b1 - b0);
}

esk_value esk_prim_string_append(const char *loc, int64_t argc, esk_value *argv) {
  int64_t total = 0;
  for (int64_t i = 0; i < argc; i++) total += need_string(loc, "string-append", argv[i])->len;
  esk_string *r = esk_new_string(total);
  char *p = r->data;
  for (int64_t i = 0; i < argc; i++) {
    esk_string *s = esk_ptr(argv[i]);
    memcpy(p, s->data, (size_t)s->len);
    p += s->len;
  }
  return (esk_value){ESK_T_STRING, (int64_t)(intptr_t)r};
}

/* Byte order of UTF-8 is code point order. */
static int string_cmp(const esk_string *x, const esk_string *y) {
  int c = memcmp(x->data, y->data, (size_t)(x->len < y->len ? x->len : y->len));
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

esk_value esk_prim_string_eq2(const char *loc, esk_value a, esk_value b) {
  return esk_bool(string_cmp(need_string(loc, "string=?", a), need_string(loc, "string=?", b)) == 0);
}

esk_value esk_prim_string_lt2(const char *loc, esk_value a, esk_value b) {
  return esk_bool(string_cmp(need_string(loc, "string<?", a), need_string(loc, "string<?", b)) < 0);
}

esk_value esk_prim_string_to_symbol(const char *loc, esk_value a) {
  esk_string *s = need_string(loc, "string->symbol", a);
  return esk_intern(s->data, s->len);
}

esk_value esk_prim_symbol_to_string(const char *loc, esk_value a) {
  if (a.tag != ESK_T_SYMBOL) esk_error_type(loc, "symbol->string", "symbol", a);
  return (esk_value){ESK_T_STRING, (int64_t)(intptr_t)((esk_symbol *)esk_ptr(a))->name};
}

/* TODO(unicode): only ASCII letters change case for now. */
static esk_value change_case(const char *loc, const char *who, esk_value a, int upper) {
  esk_string *s = need_string(loc, who, a);
  esk_string *r = esk_new_string(s->len);
  for (int64_t i = 0; i < s->len; i++) {
    char c = s->data[i];
    if (upper && c >= 'a' && c <= 'z') c -= 32;
    if (!upper && c >= 'A' && c <= 'Z') c += 32;
    r->data[i] = c;
  }
  return (esk_value){ESK_T_STRING, (int64_t)(intptr_t)r};
}

esk_value esk_prim_string_upcase(const char *loc, esk_value a) {
  return change_case(loc, "string-upcase", a, 1);
}
esk_value esk_prim_string_downcase(const char *loc, esk_value a) {
  return change_case(loc, "string-downcase", a, 0);
}

esk_value esk_prim_string_to_list(const char *loc, esk_value a) {
  esk_string *s = need_string(loc, "string->list", a);
  esk_value head = NIL, *tail = &head;
  uint32_t cp;
  for (int64_t i = 0; i < s->len;) {
    i = utf8_next((const unsigned char *)s->data, i, s->len, &cp);
    *tail = esk_cons(esk_char(cp), NIL);
    tail = &PAIR(*tail)->cdr;
  }
  return head;
}

/* Encodes n chars taken from a list (items == NULL) or an array into a fresh string. */
static esk_value chars_to_string(const char *loc, const char *who, esk_value list,
                                 const esk_value *items, int64_t n) {
  char *buf = esk_alloc_atomic((size_t)n * 4 + 1);
  int64_t len = 0;
  for (int64_t i = 0; i < n; i++) {
    esk_value c = items ? items[i] : PAIR(list)->car;
    if (!items) list = PAIR(list)->cdr;
    if (c.tag != ESK_T_CHAR) esk_error_type(loc, who, "char", c);
    len += utf8_encode((uint32_t)c.payload, buf + len);
  }
  return esk_make_string(buf, len);
}

esk_value esk_prim_list_to_string(const char *loc, esk_value l) {
  int64_t n = need_list(loc, "list->string", l);
  return chars_to_string(loc, "list->string", l, NULL, n);
}

esk_value esk_prim_string(const char *loc, int64_t argc, esk_value *argv) {
  return chars_to_string(loc, "string", NIL, argv, argc);
}

esk_value esk_prim_char_to_integer(const char *loc, esk_value a) {
  if (a.tag != ESK_T_CHAR) esk_error_type(loc, "char->integer", "char", a);
  return esk_fixnum(a.payload);
}

esk_value esk_prim_integer_to_char(const char *loc, esk_value a) {
  if (a.tag != FIX) esk_error_type(loc, "integer->char", "exact integer", a);
  int64_t c = a.payload;
  if (c < 0 || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000))
    fail_with(loc, "integer->char: not a Unicode scalar value:", a);
  return esk_char((uint32_t)c);
}

esk_value esk_prim_string_copy(const char *loc, esk_value a) {
  esk_string *s = need_string(loc, "string-copy", a);
  return esk_make_string(s->data, s->len);
}

/* ---- vectors ----------------------------------------------------------------------------- */

static esk_vector *need_vector(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_VECTOR) esk_error_type(loc, who, "vector", v);
  return esk_ptr(v);
}

static esk_vector *mutable_vector(const char *loc, const char *who, esk_value v) {
  esk_vector *vec = need_vector(loc, who, v);
  if (vec->h.flags & ESK_F_IMMUTABLE) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s: attempt to modify a constant vector:", who);
    fail_with(loc, msg, v);
  }
  return vec;
}

static int64_t vector_index(const char *loc, const char *who, esk_vector *v, esk_value k) {
  if (k.tag != FIX) esk_error_type(loc, who, "exact integer index", k);
  if (k.payload < 0 || k.payload >= v->len)
    fail(loc, "%s: index %lld out of range for vector of length %lld", who,
         (long long)k.payload, (long long)v->len);
  return k.payload;
}

esk_value esk_prim_vector(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc;
  esk_value r = esk_make_vector(argc, NIL);
  memcpy(((esk_vector *)esk_ptr(r))->items, argv, (size_t)argc * sizeof(esk_value));
  return r;
}

esk_value esk_prim_make_vector(const char *loc, int64_t argc, esk_value *argv) {
  int64_t n = need_index(loc, "make-vector", argv[0]);
  if (n > ((int64_t)1 << 36)) fail(loc, "make-vector: length %lld is too large", (long long)n);
  return esk_make_vector(n, argc > 1 ? argv[1] : esk_fixnum(0));
}

esk_value esk_prim_vector_ref(const char *loc, esk_value v, esk_value k) {
  esk_vector *vec = need_vector(loc, "vector-ref", v);
  return vec->items[vector_index(loc, "vector-ref", vec, k)];
}

esk_value esk_prim_vector_set(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_vector *vec = mutable_vector(loc, "vector-set!", argv[0]);
  vec->items[vector_index(loc, "vector-set!", vec, argv[1])] = argv[2];
  return VOID;
}

esk_value esk_prim_vector_length(const char *loc, esk_value v) {
  return esk_fixnum(need_vector(loc, "vector-length", v)->len);
}

esk_value esk_prim_vector_to_list(const char *loc, esk_value v) {
  esk_vector *vec = need_vector(loc, "vector->list", v);
  return esk_list_from_args(vec->len, vec->items);
}

esk_value esk_prim_list_to_vector(const char *loc, esk_value l) {
  int64_t n = need_list(loc, "list->vector", l);
  esk_value r = esk_make_vector(n, NIL);
  esk_value *items = ((esk_vector *)esk_ptr(r))->items;
  for (int64_t i = 0; i < n; i++, l = PAIR(l)->cdr) items[i] = PAIR(l)->car;
  return r;
}

esk_value esk_prim_vector_fill(const char *loc, esk_value v, esk_value x) {
  esk_vector *vec = mutable_vector(loc, "vector-fill!", v);
  for (int64_t i = 0; i < vec->len; i++) vec->items[i] = x;
  return VOID;
}

/* ---- output and exit --------------------------------------------------------------------- */

esk_value esk_prim_display(const char *loc, esk_value a) {
  (void)loc;
  esk_display(a, stdout);
  return VOID;
}

esk_value esk_prim_write(const char *loc, esk_value a) {
  (void)loc;
  esk_write(a, stdout);
  return VOID;
}

esk_value esk_prim_newline(const char *loc) {
  (void)loc;
  putc('\n', stdout);
  return VOID;
}

esk_value esk_prim_write_string(const char *loc, esk_value a) {
  esk_string *s = need_string(loc, "write-string", a);
  fwrite(s->data, 1, (size_t)s->len, stdout);
  return VOID;
}

esk_value esk_prim_write_char(const char *loc, esk_value a) {
  if (a.tag != ESK_T_CHAR) esk_error_type(loc, "write-char", "char", a);
  esk_display(a, stdout);
  return VOID;
}

esk_value esk_prim_exit(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc;
  int status = 0;
  if (argc > 0) {
    esk_value v = argv[0];
    if (v.tag == FIX) status = (int)(v.payload & 0xFF);
    else if (v.tag != ESK_T_BOOL || !v.payload) status = 1; /* #f, or not a status (as Chez) */
  }
  esk_flush();
  exit(status);
}

esk_value esk_prim_command_line(const char *loc) {
  (void)loc;
  esk_value r = NIL;
  for (int i = esk_argc - 1; i >= 0; i--) r = esk_cons(esk_cstring(esk_argv[i]), r);
  return r;
}
