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



/* Numbers live in numbers.c. */

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
  if (n == LIST_CIRCULAR) esk_errorf(loc, "%s: expected proper list, got a circular list", who);
  if (n < 0) esk_error_type(loc, who, "proper list", l);
  return n;
}

esk_value esk_prim_cons(const char *loc, esk_value a, esk_value b) {
  (void)loc;
  return esk_cons(a, b);
}

esk_value esk_prim_car(const char *loc, esk_value a) {
  if (a.tag == ESK_T_DUAL || a.tag == ESK_T_ADNODE) return esk_ad_tensor_prim(loc, "car", 1, &a);
  if (a.tag == ESK_T_TENSOR) return esk_tensor_car(loc, a); /* v1.x: element 0 */
  if (a.tag != ESK_T_PAIR) esk_error_type(loc, "car", "pair", a);
  return PAIR(a)->car;
}

esk_value esk_prim_cdr(const char *loc, esk_value a) {
  if (a.tag == ESK_T_DUAL || a.tag == ESK_T_ADNODE) return esk_ad_tensor_prim(loc, "cdr", 1, &a);
  if (a.tag == ESK_T_TENSOR) return esk_tensor_cdr(loc, a); /* v1.x: the rest, fresh */
  if (a.tag != ESK_T_PAIR) esk_error_type(loc, "cdr", "pair", a);
  return PAIR(a)->cdr;
}

static esk_pair *mutable_pair(const char *loc, const char *who, esk_value p) {
  if (p.tag != ESK_T_PAIR) esk_error_type(loc, who, "pair", p);
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
    if (l.tag != ESK_T_PAIR) esk_errorf(loc, "list-tail: index %lld out of range", (long long)n);
    l = PAIR(l)->cdr;
  }
  return l;
}

esk_value esk_prim_list_ref(const char *loc, esk_value l, esk_value k) {
  int64_t n = need_index(loc, "list-ref", k);
  for (int64_t i = 0; i < n && l.tag == ESK_T_PAIR; i++) l = PAIR(l)->cdr;
  if (l.tag != ESK_T_PAIR) esk_errorf(loc, "list-ref: index %lld out of range", (long long)n);
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
      if (item.tag != ESK_T_PAIR) esk_error_with(loc, "improper association list element:", item);
      if (same(x, PAIR(item)->car)) return item;
    } else if (same(x, item)) {
      return l;
    }
    l = PAIR(l)->cdr;
    if (n % 2 == 0) {
      slow = PAIR(slow)->cdr;
      if (l.tag == ESK_T_PAIR && l.payload == slow.payload) esk_errorf(loc, "%s: circular list", who);
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
      esk_error_with(loc, msg, v);
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

/* Bignums and rationals are compared by value (flonums by bits, as eq? does). */
esk_value esk_prim_eqv(const char *loc, esk_value a, esk_value b) {
  if (a.tag == b.tag && (a.tag == ESK_T_BIGNUM || a.tag == ESK_T_RATIONAL))
    return esk_bool(esk_num_eqv(a, b));
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
      case ESK_T_BYTEVECTOR: {
        esk_bytevector *x = esk_ptr(a), *y = esk_ptr(b);
        return x->len == y->len && memcmp(x->data, y->data, (size_t)x->len) == 0;
      }
      case ESK_T_BOX:
        a = ((esk_box *)esk_ptr(a))->value;
        b = ((esk_box *)esk_ptr(b))->value;
        continue;
      case ESK_T_TENSOR:
        return esk_tensor_equal(a, b);
      default:
        return 0;
    }
  }
}

int esk_equal(esk_value a, esk_value b) { return equal(a, b); }

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

static esk_string *need_string(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_STRING) esk_error_type(loc, who, "string", v);
  return esk_ptr(v);
}



esk_value esk_prim_string_length(const char *loc, esk_value a) {
  return esk_fixnum(esk_utf8_length(need_string(loc, "string-length", a)));
}

esk_value esk_prim_string_ref(const char *loc, esk_value a, esk_value k) {
  esk_string *s = need_string(loc, "string-ref", a);
  int64_t n = need_index(loc, "string-ref", k);
  int64_t i = esk_utf8_offset(s, n);
  if (i < 0 || i >= s->len)
    esk_errorf(loc, "string-ref: index %lld out of range for string of length %lld", (long long)n,
         (long long)esk_utf8_length(s));
  uint32_t cp;
  esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
  return esk_char(cp);
}

esk_value esk_prim_substring(const char *loc, int64_t argc, esk_value *argv) {
  esk_string *s = need_string(loc, "substring", argv[0]);
  int64_t start = need_index(loc, "substring", argv[1]);
  int64_t end = argc > 2 ? need_index(loc, "substring", argv[2]) : esk_utf8_length(s);
  int64_t b0 = esk_utf8_offset(s, start), b1 = end >= start ? esk_utf8_offset(s, end) : -1;
  if (b0 < 0 || b1 < 0)
    esk_errorf(loc, "substring: indices %lld and %lld out of range for string of length %lld",
         (long long)start, (long long)end, (long long)esk_utf8_length(s));
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
    i = esk_utf8_next((const unsigned char *)s->data, i, s->len, &cp);
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
    len += esk_utf8_encode((uint32_t)c.payload, buf + len);
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
    esk_error_with(loc, "integer->char: not a Unicode scalar value:", a);
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
    esk_error_with(loc, msg, v);
  }
  return vec;
}

static int64_t vector_index(const char *loc, const char *who, esk_vector *v, esk_value k) {
  if (k.tag != FIX) esk_error_type(loc, who, "exact integer index", k);
  if (k.payload < 0 || k.payload >= v->len)
    esk_errorf(loc, "%s: index %lld out of range for vector of length %lld", who,
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
  if (n > ((int64_t)1 << 36)) esk_errorf(loc, "make-vector: length %lld is too large", (long long)n);
  return esk_make_vector(n, argc > 1 ? argv[1] : esk_fixnum(0));
}

esk_value esk_prim_vector_ref(const char *loc, esk_value v, esk_value k) {
  if (v.tag == ESK_T_DUAL || v.tag == ESK_T_ADNODE) { /* a tensor under differentiation */
    esk_value a[2] = {v, k};
    return esk_ad_tensor_prim(loc, "vector-ref", 2, a);
  }
  if (v.tag == ESK_T_TENSOR) return esk_tensor_vector_ref(loc, "vector-ref", v, k);
  esk_vector *vec = need_vector(loc, "vector-ref", v);
  return vec->items[vector_index(loc, "vector-ref", vec, k)];
}

esk_value esk_prim_vector_set(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  if (argv[0].tag == ESK_T_TENSOR) return esk_tensor_vector_set(loc, argv[0], argv[1], argv[2]);
  esk_vector *vec = mutable_vector(loc, "vector-set!", argv[0]);
  vec->items[vector_index(loc, "vector-set!", vec, argv[1])] = argv[2];
  return VOID;
}

esk_value esk_prim_vector_length(const char *loc, esk_value v) {
  if (v.tag == ESK_T_DUAL || v.tag == ESK_T_ADNODE) return esk_ad_tensor_prim(loc, "vector-length", 1, &v);
  if (v.tag == ESK_T_TENSOR) return esk_fixnum(((esk_tensor *)esk_ptr(v))->size); /* v1.x: total */
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
