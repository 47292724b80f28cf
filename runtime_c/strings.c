/* Characters, strings, symbols, vectors and bytevectors beyond the basics of prims.c.
 * Strings are UTF-8 (esk_string); indices count characters.  Literals are immutable. */
#define _GNU_SOURCE
#include <locale.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "eshkol_rt.h"

#define NIL ((esk_value){ESK_T_NIL, 0})
#define VOID ((esk_value){ESK_T_VOID, 0})
#define FALSE ((esk_value){ESK_T_BOOL, 0})
#define PAIR(v) ((esk_pair *)esk_ptr(v))
#define DEFAULTED(argc, i, argv) ((argc) <= (i) || (argv)[i].tag == ESK_T_DEFAULT)


static esk_value heap(int64_t tag, void *p) { return (esk_value){tag, (int64_t)(intptr_t)p}; }

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

int64_t esk_utf8_next(const unsigned char *s, int64_t i, int64_t len, uint32_t *cp) {
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

int esk_utf8_encode(uint32_t c, char *b) {
  if (c < 0x80) { b[0] = (char)c; return 1; }
  if (c < 0x800) { b[0] = (char)(0xC0 | c >> 6); b[1] = (char)(0x80 | (c & 0x3F)); return 2; }
  if (c < 0x10000) {
    b[0] = (char)(0xE0 | c >> 12); b[1] = (char)(0x80 | (c >> 6 & 0x3F));
    b[2] = (char)(0x80 | (c & 0x3F)); return 3;
  }
  b[0] = (char)(0xF0 | c >> 18); b[1] = (char)(0x80 | (c >> 12 & 0x3F));
  b[2] = (char)(0x80 | (c >> 6 & 0x3F)); b[3] = (char)(0x80 | (c & 0x3F)); return 4;
}

/* The count is cached in the string (mutators reset it, see mutable_string): string-length and
 * string-ref in a loop over an ASCII string are O(1) after the first. */
int64_t esk_utf8_length(const esk_string *s) {
  if (s->nchars1 > 0) return s->nchars1 - 1;
  int64_t n = 0;
  uint32_t cp;
  for (int64_t i = 0; i < s->len; n++) i = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
  ((esk_string *)s)->nchars1 = n + 1;
  return n;
}

int64_t esk_utf8_offset(const esk_string *s, int64_t k) {
  if (esk_utf8_length(s) == s->len) return k <= s->len ? k : -1; /* ASCII */
  int64_t i = 0;
  uint32_t cp;
  for (; k > 0; k--) {
    if (i >= s->len) return -1;
    i = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
  }
  return i;
}

/* Character index of byte offset b. */
static int64_t uindex(const esk_string *s, int64_t b) {
  int64_t n = 0;
  uint32_t cp;
  for (int64_t i = 0; i < b && i < s->len; n++) i = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
  return n;
}

/* ---- argument checks --------------------------------------------------------------------------- */

static esk_string *need_string(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_STRING) esk_error_type(loc, who, "string", v);
  return esk_ptr(v);
}

static esk_string *mutable_string(const char *loc, const char *who, esk_value v) {
  esk_string *s = need_string(loc, who, v);
  if (s->h.flags & ESK_F_IMMUTABLE) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: attempt to modify an immutable string:", who);
    esk_raise_error(loc, msg, 1, &v);
  }
  s->nchars1 = 0; /* the caller changes it: count again */
  return s;
}

static uint32_t need_char(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_CHAR) esk_error_type(loc, who, "char", v);
  return (uint32_t)v.payload;
}

static int64_t need_index(const char *loc, const char *who, esk_value k) {
  if (k.tag != ESK_T_FIXNUM || k.payload < 0)
    esk_error_type(loc, who, "non-negative exact integer", k);
  return k.payload;
}

static esk_vector *need_vector(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_VECTOR) esk_error_type(loc, who, "vector", v);
  return esk_ptr(v);
}

static esk_vector *mutable_vector(const char *loc, const char *who, esk_value v) {
  esk_vector *vec = need_vector(loc, who, v);
  if (vec->h.flags & ESK_F_IMMUTABLE) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: attempt to modify a constant vector:", who);
    esk_raise_error(loc, msg, 1, &v);
  }
  return vec;
}

/* Optional [start end] at argv[i], argv[i+1] against a length n. */
static void range(const char *loc, const char *who, int64_t argc, esk_value *argv, int64_t i,
                  int64_t n, int64_t *start, int64_t *end) {
  *start = DEFAULTED(argc, i, argv) ? 0 : need_index(loc, who, argv[i]);
  *end = DEFAULTED(argc, i + 1, argv) ? n : need_index(loc, who, argv[i + 1]);
  if (*end > n || *start > *end)
    esk_errorf(loc, "%s: range %lld..%lld out of bounds for length %lld", who, (long long)*start,
         (long long)*end, (long long)n);
}

static int64_t list_len(const char *loc, const char *who, esk_value l) {
  int64_t n = 0;
  esk_value x = l;
  for (; x.tag == ESK_T_PAIR; x = PAIR(x)->cdr)
    if (++n > ((int64_t)1 << 40)) break;
  if (x.tag != ESK_T_NIL) esk_error_type(loc, who, "proper list", l);
  return n;
}

/* ---- characters -------------------------------------------------------------------------------- */

static locale_t uloc;
static int uloc_tried;

static locale_t unicode_locale(void) {
  if (!uloc_tried) {
    uloc_tried = 1;
    uloc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!uloc) uloc = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
  }
  return uloc;
}

/* Fallback when no UTF-8 locale exists: ASCII, Latin-1, Greek, Cyrillic. */
static uint32_t table_upcase(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}
static uint32_t table_downcase(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

static uint32_t up(uint32_t c) {
  if (c < 0x80) return c >= 'a' && c <= 'z' ? c - 32 : c;
  locale_t l = unicode_locale();
  return l ? (uint32_t)towupper_l((wint_t)c, l) : table_upcase(c);
}
static uint32_t down(uint32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  locale_t l = unicode_locale();
  return l ? (uint32_t)towlower_l((wint_t)c, l) : table_downcase(c);
}
static int is_alpha(uint32_t c) {
  if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
  locale_t l = unicode_locale();
  return l ? iswalpha_l((wint_t)c, l) != 0 : table_upcase(c) != c || table_downcase(c) != c;
}
static int is_space(uint32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
  if (c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
      c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000)
    return 1;
  return 0;
}
static int is_upper(uint32_t c) { return is_alpha(c) && down(c) != c; }
static int is_lower(uint32_t c) { return is_alpha(c) && up(c) != c; }
static int digit_of(uint32_t c) {
  if (c >= '0' && c <= '9') return (int)(c - '0');
  /* The other Unicode Nd blocks of R7RS's digit-value: each is ten consecutive code points. */
  static const uint32_t zeros[] = {0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66,
                                   0xBE6, 0xC66, 0xCE6, 0xD66, 0xE50, 0xED0, 0xF20, 0x1040,
                                   0xFF10};
  for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++)
    if (c >= zeros[i] && c < zeros[i] + 10) return (int)(c - zeros[i]);
  return -1;
}

#define CHAR_MAP(NAME, WHO, F)                                                          \
  esk_value esk_prim_##NAME(const char *loc, esk_value a) {                             \
    return esk_char(F(need_char(loc, WHO, a)));                                         \
  }
CHAR_MAP(char_upcase, "char-upcase", up)
CHAR_MAP(char_downcase, "char-downcase", down)
CHAR_MAP(char_foldcase, "char-foldcase", down)

#define CHAR_PRED(NAME, WHO, F)                                                         \
  esk_value esk_prim_##NAME(const char *loc, esk_value a) {                             \
    return esk_bool(F(need_char(loc, WHO, a)));                                         \
  }
static int is_numeric(uint32_t c) { return digit_of(c) >= 0; }
CHAR_PRED(is_char_alphabetic, "char-alphabetic?", is_alpha)
CHAR_PRED(is_char_numeric, "char-numeric?", is_numeric)
CHAR_PRED(is_char_whitespace, "char-whitespace?", is_space)
CHAR_PRED(is_char_upper_case, "char-upper-case?", is_upper)
CHAR_PRED(is_char_lower_case, "char-lower-case?", is_lower)

esk_value esk_prim_digit_value(const char *loc, esk_value a) {
  int d = digit_of(need_char(loc, "digit-value", a));
  return d < 0 ? FALSE : esk_fixnum(d);
}

/* (char->digit c [radix]) as in Chez and MIT: the digit's value or #f. */
esk_value esk_prim_char_to_digit(const char *loc, int64_t argc, esk_value *argv) {
  uint32_t c = need_char(loc, "char->digit", argv[0]);
  int64_t radix = DEFAULTED(argc, 1, argv) ? 10 : need_index(loc, "char->digit", argv[1]);
  if (radix < 2 || radix > 36) esk_errorf(loc, "char->digit: invalid radix %lld", (long long)radix);
  int64_t d = c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'z' ? (c | 32) - 'a' + 10 : 99;
  return d < radix ? esk_fixnum(d) : FALSE;
}

esk_value esk_prim_digit_to_char(const char *loc, int64_t argc, esk_value *argv) {
  int64_t d = need_index(loc, "digit->char", argv[0]);
  int64_t radix = DEFAULTED(argc, 1, argv) ? 10 : need_index(loc, "digit->char", argv[1]);
  if (d >= radix) return FALSE;
  return esk_char((uint32_t)(d < 10 ? '0' + d : 'a' + d - 10));
}

enum { CMP_EQ, CMP_LT, CMP_GT, CMP_LE, CMP_GE };

static int cmp_ok(int op, int c) {
  switch (op) {
    case CMP_EQ: return c == 0;
    case CMP_LT: return c < 0;
    case CMP_GT: return c > 0;
    case CMP_LE: return c <= 0;
    default: return c >= 0;
  }
}

static esk_value char_compare(const char *loc, const char *who, int op, int ci, int64_t argc,
                              esk_value *argv) {
  int ok = 1;
  for (int64_t i = 0; i < argc; i++) need_char(loc, who, argv[i]);
  for (int64_t i = 0; i + 1 < argc; i++) {
    uint32_t a = (uint32_t)argv[i].payload, b = (uint32_t)argv[i + 1].payload;
    if (ci) a = down(a), b = down(b);
    if (!cmp_ok(op, a < b ? -1 : a > b)) ok = 0;
  }
  return esk_bool(ok);
}

#define CHAR_CMP(NAME, WHO, OP, CI)                                                     \
  esk_value esk_prim_##NAME(const char *loc, int64_t argc, esk_value *argv) {           \
    return char_compare(loc, WHO, OP, CI, argc, argv);                                  \
  }
CHAR_CMP(char_eq, "char=?", CMP_EQ, 0)
CHAR_CMP(char_lt, "char<?", CMP_LT, 0)
CHAR_CMP(char_gt, "char>?", CMP_GT, 0)
CHAR_CMP(char_le, "char<=?", CMP_LE, 0)
CHAR_CMP(char_ge, "char>=?", CMP_GE, 0)
CHAR_CMP(char_ci_eq, "char-ci=?", CMP_EQ, 1)
CHAR_CMP(char_ci_lt, "char-ci<?", CMP_LT, 1)
CHAR_CMP(char_ci_gt, "char-ci>?", CMP_GT, 1)
CHAR_CMP(char_ci_le, "char-ci<=?", CMP_LE, 1)
CHAR_CMP(char_ci_ge, "char-ci>=?", CMP_GE, 1)

/* ---- strings ------------------------------------------------------------------------------------ */

static esk_value map_case(const char *loc, const char *who, esk_value a, uint32_t (*f)(uint32_t)) {
  esk_string *s = need_string(loc, who, a);
  char *buf = esk_alloc_atomic((size_t)s->len * 2 + 8);
  int64_t n = 0;
  uint32_t cp;
  for (int64_t i = 0; i < s->len;) {
    i = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
    if (cp == 0xDF && f == up) { /* the one common special casing: ß -> SS */
      buf[n++] = 'S';
      buf[n++] = 'S';
      continue;
    }
    n += esk_utf8_encode(f(cp), buf + n);
  }
  return esk_make_string(buf, n);
}

esk_value esk_prim_string_upcase_u(const char *loc, esk_value a) {
  return map_case(loc, "string-upcase", a, up);
}
esk_value esk_prim_string_downcase_u(const char *loc, esk_value a) {
  return map_case(loc, "string-downcase", a, down);
}
esk_value esk_prim_string_foldcase(const char *loc, esk_value a) {
  return map_case(loc, "string-foldcase", a, down);
}

static int bytes_cmp(const esk_string *x, const esk_string *y) {
  int c = memcmp(x->data, y->data, (size_t)(x->len < y->len ? x->len : y->len));
  if (c) return c < 0 ? -1 : 1;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int ci_cmp(const esk_string *x, const esk_string *y) {
  int64_t i = 0, j = 0;
  uint32_t a, b;
  while (i < x->len && j < y->len) {
    i = esk_utf8_next((const unsigned char *)x->data, i, x->len, &a);
    j = esk_utf8_next((const unsigned char *)y->data, j, y->len, &b);
    a = down(a), b = down(b);
    if (a != b) return a < b ? -1 : 1;
  }
  return i < x->len ? 1 : j < y->len ? -1 : 0;
}

static esk_value string_compare(const char *loc, const char *who, int op, int ci, int64_t argc,
                                esk_value *argv) {
  int ok = 1;
  for (int64_t i = 0; i < argc; i++) need_string(loc, who, argv[i]);
  for (int64_t i = 0; i + 1 < argc; i++) {
    esk_string *a = esk_ptr(argv[i]), *b = esk_ptr(argv[i + 1]);
    if (!cmp_ok(op, ci ? ci_cmp(a, b) : bytes_cmp(a, b))) ok = 0;
  }
  return esk_bool(ok);
}

#define STR_CMP(NAME, WHO, OP, CI)                                                      \
  esk_value esk_prim_##NAME(const char *loc, int64_t argc, esk_value *argv) {           \
    return string_compare(loc, WHO, OP, CI, argc, argv);                                \
  }
STR_CMP(string_eq, "string=?", CMP_EQ, 0)
STR_CMP(string_lt, "string<?", CMP_LT, 0)
STR_CMP(string_gt, "string>?", CMP_GT, 0)
STR_CMP(string_le, "string<=?", CMP_LE, 0)
STR_CMP(string_ge, "string>=?", CMP_GE, 0)
STR_CMP(string_ci_eq, "string-ci=?", CMP_EQ, 1)
STR_CMP(string_ci_lt, "string-ci<?", CMP_LT, 1)
STR_CMP(string_ci_gt, "string-ci>?", CMP_GT, 1)
STR_CMP(string_ci_le, "string-ci<=?", CMP_LE, 1)
STR_CMP(string_ci_ge, "string-ci>=?", CMP_GE, 1)

/* (string-copy s [start end]) */
esk_value esk_prim_string_copy_range(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *s = need_string(loc, "string-copy", argv[0]);
  int64_t a, b;
  range(loc, "string-copy", argc, argv, 1, esk_utf8_length(s), &a, &b);
  int64_t b0 = esk_utf8_offset(s, a), b1 = esk_utf8_offset(s, b);
  return esk_make_string(s->data + b0, b1 - b0);
}

esk_value esk_prim_make_string(const char *loc, int64_t argc, esk_value *argv) {
  int64_t n = need_index(loc, "make-string", argv[0]);
  uint32_t c = DEFAULTED(argc, 1, argv) ? ' ' : need_char(loc, "make-string", argv[1]);
  if (n > ((int64_t)1 << 34)) esk_errorf(loc, "make-string: length %lld is too large", (long long)n);
  char enc[4];
  int k = esk_utf8_encode(c, enc);
  esk_string *r = esk_new_string(n * k);
  for (int64_t i = 0; i < n; i++) memcpy(r->data + i * k, enc, (size_t)k);
  return heap(ESK_T_STRING, r);
}

/* Replaces characters [a, b) of s with the UTF-8 bytes rep (its data may be reallocated). */
static void splice(esk_string *s, int64_t a, int64_t b, const char *rep, int64_t replen) {
  int64_t b0 = esk_utf8_offset(s, a), b1 = esk_utf8_offset(s, b);
  int64_t newlen = s->len - (b1 - b0) + replen;
  if (newlen == s->len) {
    memmove(s->data + b0, rep, (size_t)replen);
    return;
  }
  char *d = esk_alloc_atomic((size_t)newlen + 1);
  memcpy(d, s->data, (size_t)b0);
  memcpy(d + b0, rep, (size_t)replen);
  memcpy(d + b0 + replen, s->data + b1, (size_t)(s->len - b1));
  d[newlen] = 0;
  s->data = d;
  s->len = newlen;
}

esk_value esk_prim_string_set(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_string *s = mutable_string(loc, "string-set!", argv[0]);
  int64_t k = need_index(loc, "string-set!", argv[1]);
  uint32_t c = need_char(loc, "string-set!", argv[2]);
  int64_t n = esk_utf8_length(s);
  if (k >= n)
    esk_errorf(loc, "string-set!: index %lld out of range for string of length %lld", (long long)k,
         (long long)n);
  char enc[4];
  splice(s, k, k + 1, enc, esk_utf8_encode(c, enc));
  return VOID;
}

esk_value esk_prim_string_fill(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *s = mutable_string(loc, "string-fill!", argv[0]);
  uint32_t c = need_char(loc, "string-fill!", argv[1]);
  int64_t a, b;
  range(loc, "string-fill!", argc, argv, 2, esk_utf8_length(s), &a, &b);
  char enc[4];
  int k = esk_utf8_encode(c, enc);
  char *buf = esk_alloc_atomic((size_t)((b - a) * k) + 1);
  for (int64_t i = 0; i < b - a; i++) memcpy(buf + i * k, enc, (size_t)k);
  splice(s, a, b, buf, (b - a) * k);
  return VOID;
}

/* (string-copy! to at from [start end]) */
esk_value esk_prim_string_copy_to(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *to = mutable_string(loc, "string-copy!", argv[0]);
  int64_t at = need_index(loc, "string-copy!", argv[1]);
  esk_string *from = need_string(loc, "string-copy!", argv[2]);
  int64_t a, b;
  range(loc, "string-copy!", argc, argv, 3, esk_utf8_length(from), &a, &b);
  int64_t tn = esk_utf8_length(to);
  if (at > tn || b - a > tn - at)
    esk_errorf(loc, "string-copy!: %lld characters do not fit at index %lld of a string of length %lld",
         (long long)(b - a), (long long)at, (long long)tn);
  int64_t f0 = esk_utf8_offset(from, a), f1 = esk_utf8_offset(from, b);
  char *tmp = esk_alloc_atomic((size_t)(f1 - f0) + 1);
  memcpy(tmp, from->data + f0, (size_t)(f1 - f0));
  splice(to, at, at + (b - a), tmp, f1 - f0);
  return VOID;
}

/* Byte offset of the first occurrence of needle in s at or after byte `from`, or -1. */
static int64_t find_bytes(const esk_string *s, int64_t from, const char *needle, int64_t nlen) {
  if (nlen == 0) return from <= s->len ? from : -1;
  for (int64_t i = from; i + nlen <= s->len; i++)
    if (s->data[i] == needle[0] && memcmp(s->data + i, needle, (size_t)nlen) == 0) return i;
  return -1;
}

/* A delimiter or pattern: a string or a char, as UTF-8 bytes. */
static const char *pattern(const char *loc, const char *who, esk_value p, char *buf, int64_t *len) {
  if (p.tag == ESK_T_CHAR) {
    *len = esk_utf8_encode((uint32_t)p.payload, buf);
    return buf;
  }
  if (p.tag != ESK_T_STRING) esk_error_type(loc, who, "string or char", p);
  esk_string *s = esk_ptr(p);
  *len = s->len;
  return s->data;
}

/* (string-split s [delimiter]): a string or char delimiter keeps empty fields; no delimiter
 * splits at runs of whitespace. */
esk_value esk_prim_string_split(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *s = need_string(loc, "string-split", argv[0]);
  esk_value head = NIL, *tail = &head;
  if (DEFAULTED(argc, 1, argv)) {
    int64_t i = 0;
    uint32_t cp;
    while (i < s->len) {
      int64_t start = i, j = i;
      j = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
      if (is_space(cp)) { i = j; continue; }
      while (i < s->len) {
        j = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
        if (is_space(cp)) break;
        i = j;
      }
      *tail = esk_cons(esk_make_string(s->data + start, i - start), NIL);
      tail = &PAIR(*tail)->cdr;
    }
    return head;
  }
  char buf[4];
  int64_t dlen;
  const char *d = pattern(loc, "string-split", argv[1], buf, &dlen);
  if (dlen == 0) esk_errorf(loc, "string-split: empty delimiter");
  int64_t pos = 0;
  for (;;) {
    int64_t at = find_bytes(s, pos, d, dlen);
    int64_t end = at < 0 ? s->len : at;
    *tail = esk_cons(esk_make_string(s->data + pos, end - pos), NIL);
    tail = &PAIR(*tail)->cdr;
    if (at < 0) break;
    pos = at + dlen;
  }
  return head;
}

/* (string-join list [delimiter " "]) */
esk_value esk_prim_string_join(const char *loc, int64_t argc, esk_value *argv) {
  esk_value l = argv[0];
  list_len(loc, "string-join", l);
  char buf[4];
  int64_t dlen = 1;
  const char *d = " ";
  if (!DEFAULTED(argc, 1, argv)) d = pattern(loc, "string-join", argv[1], buf, &dlen);
  int64_t total = 0, n = 0;
  for (esk_value x = l; x.tag == ESK_T_PAIR; x = PAIR(x)->cdr, n++)
    total += need_string(loc, "string-join", PAIR(x)->car)->len;
  if (n > 1) total += dlen * (n - 1);
  esk_string *r = esk_new_string(total);
  char *p = r->data;
  for (esk_value x = l; x.tag == ESK_T_PAIR; x = PAIR(x)->cdr) {
    esk_string *s = esk_ptr(PAIR(x)->car);
    if (p != r->data) { memcpy(p, d, (size_t)dlen); p += dlen; }
    memcpy(p, s->data, (size_t)s->len);
    p += s->len;
  }
  return heap(ESK_T_STRING, r);
}

esk_value esk_prim_string_contains(const char *loc, esk_value a, esk_value b) {
  esk_string *s = need_string(loc, "string-contains", a);
  char buf[4];
  int64_t n;
  const char *p = pattern(loc, "string-contains", b, buf, &n);
  return esk_bool(find_bytes(s, 0, p, n) >= 0);
}

/* (string-index s sub-or-char) -> character index or -1 (Eshkol v1.x). A predicate pattern
 * (SRFI-13) is handled in the prelude. */
esk_value esk_prim_string_index(const char *loc, esk_value a, esk_value b) {
  esk_string *s = need_string(loc, "string-index", a);
  char buf[4];
  int64_t n;
  const char *p = pattern(loc, "string-index", b, buf, &n);
  int64_t at = find_bytes(s, 0, p, n);
  return esk_fixnum(at < 0 ? -1 : uindex(s, at));
}

/* (string-search-forward pattern s start) -> index or #f (MIT Scheme). */
esk_value esk_prim_string_search_forward(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *pat = need_string(loc, "string-search-forward", argv[0]);
  esk_string *s = need_string(loc, "string-search-forward", argv[1]);
  int64_t start = DEFAULTED(argc, 2, argv) ? 0 : need_index(loc, "string-search-forward", argv[2]);
  int64_t b = esk_utf8_offset(s, start);
  if (b < 0) esk_errorf(loc, "string-search-forward: start %lld out of range", (long long)start);
  int64_t at = find_bytes(s, b, pat->data, pat->len);
  return at < 0 ? FALSE : esk_fixnum(uindex(s, at));
}

static esk_value trim(const char *loc, const char *who, esk_value a, int left, int right) {
  esk_string *s = need_string(loc, who, a);
  int64_t b0 = 0, b1 = s->len;
  uint32_t cp;
  if (left)
    while (b0 < b1) {
      int64_t j = esk_utf8_next((const unsigned char *)s->data, b0, s->len, &cp);
      if (!is_space(cp)) break;
      b0 = j;
    }
  if (right)
    while (b1 > b0) {
      int64_t k = b1 - 1;
      while (k > b0 && ((unsigned char)s->data[k] & 0xC0) == 0x80) k--;
      esk_utf8_next((const unsigned char *)s->data, k, s->len, &cp);
      if (!is_space(cp)) break;
      b1 = k;
    }
  return esk_make_string(s->data + b0, b1 - b0);
}

esk_value esk_prim_string_trim(const char *loc, esk_value a) { return trim(loc, "string-trim", a, 1, 1); }
esk_value esk_prim_string_trim_left(const char *loc, esk_value a) {
  return trim(loc, "string-trim-left", a, 1, 0);
}
esk_value esk_prim_string_trim_right(const char *loc, esk_value a) {
  return trim(loc, "string-trim-right", a, 0, 1);
}

/* (string-prefix? prefix s), (string-suffix? suffix s) as SRFI-13. */
esk_value esk_prim_string_prefix(const char *loc, esk_value p, esk_value s) {
  esk_string *x = need_string(loc, "string-prefix?", p), *y = need_string(loc, "string-prefix?", s);
  return esk_bool(x->len <= y->len && memcmp(x->data, y->data, (size_t)x->len) == 0);
}
esk_value esk_prim_string_suffix(const char *loc, esk_value p, esk_value s) {
  esk_string *x = need_string(loc, "string-suffix?", p), *y = need_string(loc, "string-suffix?", s);
  return esk_bool(x->len <= y->len &&
                  memcmp(x->data, y->data + (y->len - x->len), (size_t)x->len) == 0);
}

esk_value esk_prim_string_null(const char *loc, esk_value a) {
  return esk_bool(need_string(loc, "string-null?", a)->len == 0);
}

esk_value esk_prim_string_reverse(const char *loc, esk_value a) {
  esk_string *s = need_string(loc, "string-reverse", a);
  esk_string *r = esk_new_string(s->len);
  uint32_t cp;
  int64_t o = s->len;
  for (int64_t i = 0; i < s->len;) {
    int64_t j = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
    o -= j - i;
    memcpy(r->data + o, s->data + i, (size_t)(j - i));
    i = j;
  }
  return heap(ESK_T_STRING, r);
}

/* (string->vector s [start end]) */
esk_value esk_prim_string_to_vector(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *s = need_string(loc, "string->vector", argv[0]);
  int64_t a, b;
  range(loc, "string->vector", argc, argv, 1, esk_utf8_length(s), &a, &b);
  esk_value r = esk_make_vector(b - a, NIL);
  esk_vector *v = esk_ptr(r);
  int64_t i = esk_utf8_offset(s, a);
  uint32_t cp;
  for (int64_t k = 0; k < b - a; k++) {
    i = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
    v->items[k] = esk_char(cp);
  }
  return r;
}

/* (vector->string v [start end]) */
esk_value esk_prim_vector_to_string(const char *loc, int64_t argc, esk_value *argv) {
  esk_vector *v = need_vector(loc, "vector->string", argv[0]);
  int64_t a, b;
  range(loc, "vector->string", argc, argv, 1, v->len, &a, &b);
  char *buf = esk_alloc_atomic((size_t)(b - a) * 4 + 1);
  int64_t n = 0;
  for (int64_t k = a; k < b; k++) n += esk_utf8_encode(need_char(loc, "vector->string", v->items[k]), buf + n);
  return esk_make_string(buf, n);
}

/* ---- symbols ------------------------------------------------------------------------------------ */

esk_value esk_prim_symbol_append(const char *loc, int64_t argc, esk_value *argv) {
  int64_t total = 0;
  for (int64_t i = 0; i < argc; i++) {
    if (argv[i].tag != ESK_T_SYMBOL) esk_error_type(loc, "symbol-append", "symbol", argv[i]);
    total += ((esk_symbol *)esk_ptr(argv[i]))->name->len;
  }
  char *buf = esk_alloc_atomic((size_t)total + 1);
  int64_t n = 0;
  for (int64_t i = 0; i < argc; i++) {
    esk_string *s = ((esk_symbol *)esk_ptr(argv[i]))->name;
    memcpy(buf + n, s->data, (size_t)s->len);
    n += s->len;
  }
  return esk_intern(buf, n);
}

/* (gensym [prefix]) -> a fresh symbol g123 (prefix: a string or symbol).  The symbol is
 * interned; its name includes a counter no other gensym has produced. */
esk_value esk_prim_gensym(const char *loc, int64_t argc, esk_value *argv) {
  static int64_t counter;
  const char *prefix = "g";
  if (!DEFAULTED(argc, 0, argv)) {
    esk_value p = argv[0];
    if (p.tag == ESK_T_STRING) prefix = ((esk_string *)esk_ptr(p))->data;
    else if (p.tag == ESK_T_SYMBOL) prefix = ((esk_symbol *)esk_ptr(p))->name->data;
    else esk_error_type(loc, "gensym", "string or symbol", p);
  }
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%.200s%lld", prefix, (long long)++counter);
  return esk_intern(buf, n);
}

/* ---- vectors ------------------------------------------------------------------------------------ */

static esk_value subvec(esk_vector *v, int64_t a, int64_t b) {
  esk_value r = esk_make_vector(b - a, NIL);
  memcpy(((esk_vector *)esk_ptr(r))->items, v->items + a, (size_t)(b - a) * sizeof(esk_value));
  return r;
}

esk_value esk_prim_vector_copy(const char *loc, int64_t argc, esk_value *argv) {
  esk_vector *v = need_vector(loc, "vector-copy", argv[0]);
  int64_t a, b;
  range(loc, "vector-copy", argc, argv, 1, v->len, &a, &b);
  return subvec(v, a, b);
}

esk_value esk_prim_subvector(const char *loc, int64_t argc, esk_value *argv) {
  esk_vector *v = need_vector(loc, "subvector", argv[0]);
  int64_t a, b;
  range(loc, "subvector", argc, argv, 1, v->len, &a, &b);
  return subvec(v, a, b);
}

esk_value esk_prim_vector_to_list_range(const char *loc, int64_t argc, esk_value *argv) {
  esk_vector *v = need_vector(loc, "vector->list", argv[0]);
  int64_t a, b;
  range(loc, "vector->list", argc, argv, 1, v->len, &a, &b);
  return esk_list_from_args(b - a, v->items + a);
}

esk_value esk_prim_vector_append(const char *loc, int64_t argc, esk_value *argv) {
  int64_t total = 0;
  for (int64_t i = 0; i < argc; i++) total += need_vector(loc, "vector-append", argv[i])->len;
  esk_value r = esk_make_vector(total, NIL);
  esk_value *items = ((esk_vector *)esk_ptr(r))->items;
  for (int64_t i = 0; i < argc; i++) {
    esk_vector *v = esk_ptr(argv[i]);
    memcpy(items, v->items, (size_t)v->len * sizeof(esk_value));
    items += v->len;
  }
  return r;
}

esk_value esk_prim_vector_fill_range(const char *loc, int64_t argc, esk_value *argv) {
  esk_vector *v = mutable_vector(loc, "vector-fill!", argv[0]);
  int64_t a, b;
  range(loc, "vector-fill!", argc, argv, 2, v->len, &a, &b);
  for (int64_t i = a; i < b; i++) v->items[i] = argv[1];
  return VOID;
}

/* (vector-copy! to at from [start end]) */
esk_value esk_prim_vector_copy_to(const char *loc, int64_t argc, esk_value *argv) {
  esk_vector *to = mutable_vector(loc, "vector-copy!", argv[0]);
  int64_t at = need_index(loc, "vector-copy!", argv[1]);
  esk_vector *from = need_vector(loc, "vector-copy!", argv[2]);
  int64_t a, b;
  range(loc, "vector-copy!", argc, argv, 3, from->len, &a, &b);
  if (at > to->len || b - a > to->len - at)
    esk_errorf(loc, "vector-copy!: %lld elements do not fit at index %lld of a vector of length %lld",
         (long long)(b - a), (long long)at, (long long)to->len);
  memmove(to->items + at, from->items + a, (size_t)(b - a) * sizeof(esk_value));
  return VOID;
}

/* (vector-grow v n): a fresh vector of length n >= (vector-length v) starting with v's items. */
esk_value esk_prim_vector_grow(const char *loc, esk_value v, esk_value n) {
  esk_vector *vec = need_vector(loc, "vector-grow", v);
  int64_t k = need_index(loc, "vector-grow", n);
  if (k < vec->len) esk_errorf(loc, "vector-grow: new length %lld is smaller than %lld", (long long)k, (long long)vec->len);
  esk_value r = esk_make_vector(k, esk_fixnum(0));
  memcpy(((esk_vector *)esk_ptr(r))->items, vec->items, (size_t)vec->len * sizeof(esk_value));
  return r;
}

/* ---- bytevectors ------------------------------------------------------------------------------- */

static esk_value make_bv(int64_t n) {
  esk_bytevector *b = esk_alloc(sizeof *b);
  b->h.type = ESK_T_BYTEVECTOR;
  b->len = n;
  b->data = esk_alloc_atomic((size_t)n + 1);
  return heap(ESK_T_BYTEVECTOR, b);
}

static esk_bytevector *need_bv(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_BYTEVECTOR) esk_error_type(loc, who, "bytevector", v);
  return esk_ptr(v);
}

static uint8_t need_byte(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_FIXNUM || v.payload < 0 || v.payload > 255) esk_error_type(loc, who, "byte", v);
  return (uint8_t)v.payload;
}

esk_value esk_prim_is_bytevector(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_BYTEVECTOR);
}

esk_value esk_prim_make_bytevector(const char *loc, int64_t argc, esk_value *argv) {
  int64_t n = need_index(loc, "make-bytevector", argv[0]);
  if (n > ((int64_t)1 << 36)) esk_errorf(loc, "make-bytevector: length %lld is too large", (long long)n);
  uint8_t fill = DEFAULTED(argc, 1, argv) ? 0 : need_byte(loc, "make-bytevector", argv[1]);
  esk_value r = make_bv(n);
  memset(((esk_bytevector *)esk_ptr(r))->data, fill, (size_t)n);
  return r;
}

esk_value esk_prim_bytevector(const char *loc, int64_t argc, esk_value *argv) {
  esk_value r = make_bv(argc);
  esk_bytevector *b = esk_ptr(r);
  for (int64_t i = 0; i < argc; i++) b->data[i] = need_byte(loc, "bytevector", argv[i]);
  return r;
}

static int64_t bv_index(const char *loc, const char *who, esk_bytevector *b, esk_value k) {
  if (k.tag != ESK_T_FIXNUM) esk_error_type(loc, who, "exact integer index", k);
  if (k.payload < 0 || k.payload >= b->len)
    esk_errorf(loc, "%s: index %lld out of range for bytevector of length %lld", who,
         (long long)k.payload, (long long)b->len);
  return k.payload;
}

esk_value esk_prim_bytevector_u8_ref(const char *loc, esk_value v, esk_value k) {
  esk_bytevector *b = need_bv(loc, "bytevector-u8-ref", v);
  return esk_fixnum(b->data[bv_index(loc, "bytevector-u8-ref", b, k)]);
}

esk_value esk_prim_bytevector_u8_set(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_bytevector *b = need_bv(loc, "bytevector-u8-set!", argv[0]);
  if (b->h.flags & ESK_F_IMMUTABLE)
    esk_raise_error(loc, "bytevector-u8-set!: attempt to modify a constant bytevector:", 1, argv);
  int64_t i = bv_index(loc, "bytevector-u8-set!", b, argv[1]);
  b->data[i] = need_byte(loc, "bytevector-u8-set!", argv[2]);
  return VOID;
}

esk_value esk_prim_bytevector_length(const char *loc, esk_value v) {
  return esk_fixnum(need_bv(loc, "bytevector-length", v)->len);
}

esk_value esk_prim_bytevector_copy(const char *loc, int64_t argc, esk_value *argv) {
  esk_bytevector *b = need_bv(loc, "bytevector-copy", argv[0]);
  int64_t s, e;
  range(loc, "bytevector-copy", argc, argv, 1, b->len, &s, &e);
  esk_value r = make_bv(e - s);
  memcpy(((esk_bytevector *)esk_ptr(r))->data, b->data + s, (size_t)(e - s));
  return r;
}

esk_value esk_prim_bytevector_copy_to(const char *loc, int64_t argc, esk_value *argv) {
  esk_bytevector *to = need_bv(loc, "bytevector-copy!", argv[0]);
  int64_t at = need_index(loc, "bytevector-copy!", argv[1]);
  esk_bytevector *from = need_bv(loc, "bytevector-copy!", argv[2]);
  int64_t s, e;
  range(loc, "bytevector-copy!", argc, argv, 3, from->len, &s, &e);
  if (at > to->len || e - s > to->len - at)
    esk_errorf(loc, "bytevector-copy!: %lld bytes do not fit at index %lld of a bytevector of length %lld",
         (long long)(e - s), (long long)at, (long long)to->len);
  memmove(to->data + at, from->data + s, (size_t)(e - s));
  return VOID;
}

esk_value esk_prim_bytevector_append(const char *loc, int64_t argc, esk_value *argv) {
  int64_t total = 0;
  for (int64_t i = 0; i < argc; i++) total += need_bv(loc, "bytevector-append", argv[i])->len;
  esk_value r = make_bv(total);
  uint8_t *p = ((esk_bytevector *)esk_ptr(r))->data;
  for (int64_t i = 0; i < argc; i++) {
    esk_bytevector *b = esk_ptr(argv[i]);
    memcpy(p, b->data, (size_t)b->len);
    p += b->len;
  }
  return r;
}

esk_value esk_prim_utf8_to_string(const char *loc, int64_t argc, esk_value *argv) {
  esk_bytevector *b = need_bv(loc, "utf8->string", argv[0]);
  int64_t s, e;
  range(loc, "utf8->string", argc, argv, 1, b->len, &s, &e);
  return esk_make_string((const char *)b->data + s, e - s);
}

esk_value esk_prim_string_to_utf8(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *str = need_string(loc, "string->utf8", argv[0]);
  int64_t a, b;
  range(loc, "string->utf8", argc, argv, 1, esk_utf8_length(str), &a, &b);
  int64_t b0 = esk_utf8_offset(str, a), b1 = esk_utf8_offset(str, b);
  esk_value r = make_bv(b1 - b0);
  memcpy(((esk_bytevector *)esk_ptr(r))->data, str->data + b0, (size_t)(b1 - b0));
  return r;
}
