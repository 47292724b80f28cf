/* Eshkol runtime ABI.
 *
 * Compiled code and the runtime agree on everything in this header; the LLVM lowering in
 * eshkol/lower/ mirrors the tag numbers and struct layouts (see eshkol/lower/abi.py).
 * Changing a number here means changing it there and bumping the toolchain version.
 */
#ifndef ESHKOL_RT_H
#define ESHKOL_RT_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- values ------------------------------------------------------------------------------ */

/* A dynamic value: 16 bytes, returned in rax:rdx and passed as two integer registers. */
typedef struct esk_value {
  int64_t tag;
  int64_t payload; /* fixnum, double bits, char code point, boolean 0/1, or heap pointer */
} esk_value;

enum {
  /* immediates */
  ESK_T_NIL = 0,
  ESK_T_VOID = 1,     /* the unspecified value; prints nothing with display */
  ESK_T_BOOL = 2,
  ESK_T_CHAR = 3,
  ESK_T_FIXNUM = 4,
  ESK_T_FLONUM = 5,
  ESK_T_EOF = 6,
  ESK_T_DEFAULT = 7,  /* a missing optional argument */
  ESK_T_UNBOUND = 8,  /* a global not yet defined */
  /* heap objects (payload points to a struct starting with esk_header) */
  ESK_T_FIRST_HEAP = 16,
  ESK_T_PAIR = 16,
  ESK_T_STRING = 17,
  ESK_T_SYMBOL = 18,
  ESK_T_VECTOR = 19,
  ESK_T_CLOSURE = 20,
  ESK_T_BOX = 21,
  ESK_T_BIGNUM = 22,
  ESK_T_RATIONAL = 23,
  ESK_T_HASHTABLE = 24,
  ESK_T_RECORD = 25,
  ESK_T_TENSOR = 26,
  ESK_T_PROMISE = 27,
  ESK_T_ERROR = 28,   /* error object (condition) */
  ESK_T_PORT = 29,
  ESK_T_BYTEVECTOR = 30,
  ESK_T_DUAL = 31,    /* forward-mode dual number (ad.c) */
  ESK_T_ADNODE = 32,  /* reverse-mode tape node (ad.c) */
};

/* Every heap object starts with this header; `type` repeats the value tag. */
typedef struct esk_header {
  uint32_t type;
  uint32_t flags;   /* ESK_F_IMMUTABLE for literals */
} esk_header;

#define ESK_F_IMMUTABLE 1u

/* Pairs have no header (the value's tag says pair): 32 bytes, two collector granules. */
typedef struct esk_pair {
  esk_value car;
  esk_value cdr;
} esk_pair;

typedef struct esk_string {
  esk_header h;
  int64_t len;      /* bytes of UTF-8, without the terminating NUL */
  char *data;       /* NUL-terminated UTF-8 */
  int64_t nchars1;  /* 1 + the number of characters, once counted (0: not yet, or changed);
                       when it equals len + 1 the string is ASCII and indexing is O(1) */
} esk_string;

typedef struct esk_symbol {
  esk_header h;
  esk_string *name;
} esk_symbol;

typedef struct esk_vector {
  esk_header h;
  int64_t len;
  esk_value *items;
} esk_vector;

typedef struct esk_closure esk_closure;

/* The uniform entry of every procedure.  argv points to argc values that the callee copies
 * before it calls anything (it may be the shared argument buffer, never the caller's stack,
 * so that every tail call can be `musttail`). */
typedef esk_value (*esk_code)(esk_closure *self, int64_t argc, esk_value *argv);

struct esk_closure {
  esk_header h;
  esk_code code;
  const char *name;   /* for printing #<procedure name> and arity errors; may be NULL */
  int64_t nfree;
  esk_value free[];   /* captured variables, in closure-conversion order */
};

typedef struct esk_box {
  esk_header h;
  esk_value value;
} esk_box;

/* ---- constructors and helpers ------------------------------------------------------------ */

#define ESK_MAX_ARGS 1024
/* The argument buffer (one per thread) that calls pass their arguments through. */
esk_value *esk_argbuf(void);

void *esk_alloc(size_t bytes);           /* collected heap (may hold pointers) */
void *esk_alloc_atomic(size_t bytes);    /* collected heap, never scanned */
void esk_register_roots(void *start, void *end);

esk_value esk_cons(esk_value a, esk_value d);
void esk_pairs_init(void);               /* the pairs' collector kind (made on first cons) */
extern void *esk_pair_batch;             /* free pairs linked through their first words */
esk_value esk_make_string(const char *utf8, int64_t len);          /* fresh, mutable copy */
esk_value esk_make_string_literal(const char *utf8, int64_t len);  /* immutable, not copied */
esk_value esk_intern(const char *utf8, int64_t len);               /* symbol */
esk_value esk_make_vector(int64_t n, esk_value fill);
esk_value esk_make_closure(esk_code code, const char *name, int64_t nfree);
esk_value esk_make_box(esk_value v);
esk_value esk_list_from_args(int64_t n, esk_value *argv); /* fresh list of argv[0..n) */

/* ---- numbers (numbers.c) ------------------------------------------------------------------ */

/* Exact integers beyond int64 and exact non-integral rationals.  Results are always
 * normalised: an integer that fits in int64 is a fixnum, a rational has denominator > 1.
 * The structs need GMP's types: include <gmp.h> first to see them. */
#ifdef __GNU_MP__
typedef struct esk_bignum {
  esk_header h;
  mpz_t z;
} esk_bignum;

typedef struct esk_rational {
  esk_header h;
  mpq_t q;      /* canonical, denominator > 1 */
} esk_rational;
#endif

/* The exact number a literal's text denotes: a decimal integer of any size or "n/d"
 * (normalised: "6/3" is the fixnum 2).  Compiled code builds big literals with it. */
esk_value esk_make_exact_from_string(const char *text);
/* Fresh collected text of a number in radix 2..36 (decimal for flonums); NULL if not one. */
char *esk_number_to_cstring(esk_value v, int radix);
/* The nearest double to a number (exact->inexact). */
double esk_number_to_double(esk_value v);
/* eqv? on numbers: same tag and value (flonums by bits). */
int esk_num_eqv(esk_value a, esk_value b);
/* Routes GMP's allocation through the collector; called by esk_init (idempotent). */
void esk_numbers_init(void);

/* ---- UTF-8 (strings.c) ------------------------------------------------------------------- */
/* Decode the character at byte i (an invalid byte is one U+FFFD, so lengths are well defined);
 * returns the index of the next character. */
int64_t esk_utf8_next(const unsigned char *s, int64_t i, int64_t len, uint32_t *cp);
/* Encode code point c into b (room for 4 bytes); returns the byte count. */
int esk_utf8_encode(uint32_t c, char *b);
/* Length of a string in characters. */
int64_t esk_utf8_length(const esk_string *s);
/* Byte offset of character k (k == length gives s->len), or -1 past the end. */
int64_t esk_utf8_offset(const esk_string *s, int64_t k);

/* ---- printing ---------------------------------------------------------------------------- */

void esk_display(esk_value v, FILE *out);
void esk_write(esk_value v, FILE *out);
/* The shortest text that reads back as d, in Scheme syntax (2.0, 0.1, 1e100, -0.0, +inf.0). */
int esk_format_double(double d, char *buf, size_t size);

/* ---- errors ------------------------------------------------------------------------------ */

/* `loc` is "file:line:col" of the expression that failed (NULL if unknown).  Uncaught errors
 * print "loc: error: message irritant..." on stderr and exit with status 1. */
_Noreturn void esk_error(const char *loc, const char *message, int64_t nirritants,
                         esk_value *irritants);
_Noreturn void esk_error_type(const char *loc, const char *who, const char *expected,
                              esk_value got);
_Noreturn void esk_error_arity(const char *loc, esk_closure *f, int64_t argc);
_Noreturn void esk_error_unbound(const char *loc, const char *name);
_Noreturn void esk_error_not_procedure(const char *loc, esk_value f);
_Noreturn void esk_stack_overflow(const char *loc);
/* A formatted message (printf-style, at most 1 KiB), raised as an error at `loc`. */
_Noreturn void esk_errorf(const char *loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `message` with one irritant. */
_Noreturn void esk_error_with(const char *loc, const char *message, esk_value irritant);

/* Lowest stack address compiled code may use before reporting a stack overflow. */
extern char *esk_stack_limit;

/* ---- program entry ----------------------------------------------------------------------- */

/* Initialise the runtime (collector, symbol table, stdout buffering); idempotent. */
void esk_init(int argc, char **argv);
/* Run a compiled program's entry on a thread with a large stack; returns the exit status. */
int esk_run(void (*entry)(void));
/* Like esk_run, but an uncaught error is reported and returns 1 instead of exiting (REPL). */
int esk_run_catching(void (*entry)(void));
/* Flush output ports. */
void esk_flush(void);


/* ---- additions: helpers shared by the runtime's C files ---------------------------------- */

static inline esk_value esk_nil(void) { return (esk_value){ESK_T_NIL, 0}; }
static inline esk_value esk_void(void) { return (esk_value){ESK_T_VOID, 0}; }
static inline esk_value esk_bool(int b) { return (esk_value){ESK_T_BOOL, b != 0}; }
static inline esk_value esk_char(uint32_t c) { return (esk_value){ESK_T_CHAR, (int64_t)c}; }
static inline esk_value esk_fixnum(int64_t n) { return (esk_value){ESK_T_FIXNUM, n}; }
static inline esk_value esk_flonum(double d) {
  union { double d; int64_t i; } u = {.d = d};
  return (esk_value){ESK_T_FLONUM, u.i};
}
static inline double esk_flonum_value(esk_value v) {
  union { double d; int64_t i; } u = {.i = v.payload};
  return u.d;
}
static inline void *esk_ptr(esk_value v) { return (void *)(intptr_t)v.payload; }
static inline int esk_is_true(esk_value v) { return !(v.tag == ESK_T_BOOL && v.payload == 0); }

esk_string *esk_new_string(int64_t len);  /* fresh, mutable, len bytes + NUL, uninitialised */
esk_value esk_cstring(const char *s);     /* fresh copy of a NUL-terminated string */

/* Every runtime error goes through here (today: print and exit 1; later: `guard` handlers).
 * The message is copied, so callers may pass a stack buffer. */
_Noreturn void esk_raise_error(const char *loc, const char *message, int64_t nirritants,
                               esk_value *irritants);
/* Arity error that can say what was expected: max < 0 means "at least min". */
_Noreturn void esk_error_arity_range(const char *loc, esk_closure *f, int64_t argc,
                                     int64_t min, int64_t max);

/* The program's command line, recorded by esk_init (for `command-line`). */
extern int esk_argc;
extern char **esk_argv;

/* ---- primitives -------------------------------------------------------------------------- */
/* Fixed arity k <= 2: esk_value esk_prim_NAME(const char *loc, a, b) (k value arguments).
 * Arity >= 3 or variadic: esk_value esk_prim_NAME(const char *loc, int64_t argc, esk_value *argv),
 * argc already checked by the compiler.  `loc` is "file:line:col" for error messages. */
/* arity 0 */
esk_value esk_prim_newline(const char *loc);
esk_value esk_prim_command_line(const char *loc);
/* arity 1 */
esk_value esk_prim_neg(const char *loc, esk_value a);
esk_value esk_prim_abs(const char *loc, esk_value a);
esk_value esk_prim_exact_to_inexact(const char *loc, esk_value a);
esk_value esk_prim_inexact_to_exact(const char *loc, esk_value a);
esk_value esk_prim_sqrt(const char *loc, esk_value a);
esk_value esk_prim_is_number(const char *loc, esk_value a);
esk_value esk_prim_is_real(const char *loc, esk_value a);
esk_value esk_prim_is_rational(const char *loc, esk_value a);
esk_value esk_prim_is_exact_integer(const char *loc, esk_value a);
esk_value esk_prim_is_nan(const char *loc, esk_value a);
esk_value esk_prim_is_infinite(const char *loc, esk_value a);
esk_value esk_prim_is_finite(const char *loc, esk_value a);
esk_value esk_prim_numerator(const char *loc, esk_value a);
esk_value esk_prim_denominator(const char *loc, esk_value a);
esk_value esk_prim_is_integer(const char *loc, esk_value a);
esk_value esk_prim_is_exact(const char *loc, esk_value a);
esk_value esk_prim_is_inexact(const char *loc, esk_value a);
esk_value esk_prim_is_zero(const char *loc, esk_value a);
esk_value esk_prim_is_positive(const char *loc, esk_value a);
esk_value esk_prim_is_negative(const char *loc, esk_value a);
esk_value esk_prim_is_odd(const char *loc, esk_value a);
esk_value esk_prim_is_even(const char *loc, esk_value a);
esk_value esk_prim_square(const char *loc, esk_value a);
esk_value esk_prim_car(const char *loc, esk_value a);
esk_value esk_prim_cdr(const char *loc, esk_value a);
esk_value esk_prim_length(const char *loc, esk_value a);
esk_value esk_prim_reverse(const char *loc, esk_value a);
esk_value esk_prim_is_null(const char *loc, esk_value a);
esk_value esk_prim_is_pair(const char *loc, esk_value a);
esk_value esk_prim_is_list(const char *loc, esk_value a);
esk_value esk_prim_not(const char *loc, esk_value a);
esk_value esk_prim_string_length(const char *loc, esk_value a);
esk_value esk_prim_string_to_symbol(const char *loc, esk_value a);
esk_value esk_prim_symbol_to_string(const char *loc, esk_value a);
esk_value esk_prim_string_upcase(const char *loc, esk_value a);
esk_value esk_prim_string_downcase(const char *loc, esk_value a);
esk_value esk_prim_string_to_list(const char *loc, esk_value a);
esk_value esk_prim_list_to_string(const char *loc, esk_value a);
esk_value esk_prim_char_to_integer(const char *loc, esk_value a);
esk_value esk_prim_integer_to_char(const char *loc, esk_value a);
esk_value esk_prim_string_copy(const char *loc, esk_value a);
esk_value esk_prim_vector_length(const char *loc, esk_value a);
esk_value esk_prim_vector_to_list(const char *loc, esk_value a);
esk_value esk_prim_list_to_vector(const char *loc, esk_value a);
esk_value esk_prim_display(const char *loc, esk_value a);
esk_value esk_prim_write(const char *loc, esk_value a);
esk_value esk_prim_write_string(const char *loc, esk_value a);
esk_value esk_prim_write_char(const char *loc, esk_value a);
esk_value esk_prim_floor(const char *loc, esk_value a);
esk_value esk_prim_ceiling(const char *loc, esk_value a);
esk_value esk_prim_round(const char *loc, esk_value a);
esk_value esk_prim_truncate(const char *loc, esk_value a);
esk_value esk_prim_exp(const char *loc, esk_value a);
esk_value esk_prim_log(const char *loc, esk_value a);
esk_value esk_prim_sin(const char *loc, esk_value a);
esk_value esk_prim_cos(const char *loc, esk_value a);
esk_value esk_prim_tan(const char *loc, esk_value a);
esk_value esk_prim_asin(const char *loc, esk_value a);
esk_value esk_prim_acos(const char *loc, esk_value a);
esk_value esk_prim_atan(const char *loc, esk_value a);
esk_value esk_prim_is_symbol(const char *loc, esk_value a);
esk_value esk_prim_is_string(const char *loc, esk_value a);
esk_value esk_prim_is_char(const char *loc, esk_value a);
esk_value esk_prim_is_boolean(const char *loc, esk_value a);
esk_value esk_prim_is_procedure(const char *loc, esk_value a);
esk_value esk_prim_is_vector(const char *loc, esk_value a);
esk_value esk_prim_cadr(const char *loc, esk_value a);
esk_value esk_prim_cddr(const char *loc, esk_value a);
esk_value esk_prim_caar(const char *loc, esk_value a);
esk_value esk_prim_cdar(const char *loc, esk_value a);
esk_value esk_prim_caddr(const char *loc, esk_value a);
esk_value esk_prim_cdddr(const char *loc, esk_value a);
/* arity 2 */
esk_value esk_prim_add2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_sub2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_mul2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_div2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_num_eq2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_num_lt2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_num_gt2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_num_le2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_num_ge2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_quotient(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_remainder(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_modulo(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_min2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_max2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_atan2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_expt(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_gcd2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_lcm2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_cons(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_set_car(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_set_cdr(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_list_tail(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_list_ref(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_memq(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_memv(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_member(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_assq(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_assv(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_assoc(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_eq(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_eqv(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_equal(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_string_ref(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_string_eq2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_string_lt2(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_vector_ref(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_vector_fill(const char *loc, esk_value a, esk_value b);
/* arity >= 3 or variadic */
esk_value esk_prim_list(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_append(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_substring(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_string_append(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_string(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_vector(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_make_vector(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_vector_set(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_exit(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_number_to_string(const char *loc, int64_t argc, esk_value *argv); /* 1-2 */
esk_value esk_prim_string_to_number(const char *loc, int64_t argc, esk_value *argv); /* 1-2 */

/* Used by the printer: would the reader take this text for a number? */
int esk_looks_like_number(const char *s, int64_t len);

/* ---- calls (call.c) ------------------------------------------------------------------------ */
/* The argument buffer compiled code passes every call's arguments through. */
extern esk_value esk_argbuf_main[ESK_MAX_ARGS];
/* "file:line:col" of the call being made; the callee's arity error reports it. */
extern const char *esk_callsite;
_Noreturn void esk_error_arity_at(esk_closure *f, int64_t argc, int64_t min, int64_t max);
/* Mark a module's n global slots unbound and register them as collector roots. */
void esk_init_globals(esk_value *g, int64_t n);
esk_value esk_prim_recip(const char *loc, esk_value a);
esk_value esk_prim_add(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_sub(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_mul(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_div(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_min(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_max(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_gcd(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_lcm(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_num_eq(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_num_lt(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_num_gt(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_num_le(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_num_ge(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_atan_n(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_apply(const char *loc, int64_t argc, esk_value *argv);

/* ---- arenas (arena.c) ---------------------------------------------------------------------- */
typedef struct esk_arena esk_arena;
esk_arena *esk_arena_new(size_t size_hint);
void *esk_arena_alloc(esk_arena *a, size_t bytes);   /* zeroed, 16-byte aligned */
size_t esk_arena_allocated(const esk_arena *a);
void esk_arena_free(esk_arena *a);                   /* frees every allocation at once */
size_t esk_arena_bytes_live(void);
/* with-region: a stack of regions per thread. */
void esk_region_enter(size_t size_hint);
void esk_region_exit(void);
esk_arena *esk_region_current(void);

/* ---- control (control.c): conditions, handlers, dynamic-wind, continuations, values,
 *      parameters, promises, records --------------------------------------------------------- */

/* An error object (`error`, and every runtime error raised by esk_raise_error). */
typedef struct esk_error_obj {
  esk_header h;          /* ESK_T_ERROR */
  esk_value message;     /* usually a string */
  esk_value irritants;   /* a list */
  const char *loc;       /* "file:line:col" where it was raised, or NULL */
} esk_error_obj;

/* A record; a record type descriptor is a record whose rtd is NULL (fields: name symbol,
 * field-name list).  Multiple values (0 or >= 2 of them) are a record of a private type. */
typedef struct esk_record {
  esk_header h;              /* ESK_T_RECORD */
  struct esk_record *rtd;
  int64_t n;
  esk_value fields[];
} esk_record;

typedef struct esk_promise_box {
  int64_t done;      /* value is the result (else a thunk) */
  int64_t is_delay;  /* the thunk returns the value (delay), not a promise (delay-force) */
  esk_value value;
} esk_promise_box;

typedef struct esk_promise {
  esk_header h;      /* ESK_T_PROMISE */
  esk_promise_box *box;
} esk_promise;

esk_value esk_make_error_object(const char *loc, esk_value message, esk_value irritants);
/* Raise obj non-continuably (the current handler, else the uncaught-error report). */
_Noreturn void esk_raise(const char *loc, esk_value obj);
/* Report an uncaught condition (error.c): prints it, runs pending dynamic-wind after thunks,
 * then exits 1 (or returns to esk_run_catching). */
_Noreturn void esk_uncaught(const char *loc, esk_value obj);
/* Run every pending dynamic-wind after thunk, innermost first (exit, uncaught errors). */
void esk_unwind_all(void);
/* Forget all dynamic state (handlers, winds, catch frames): a fresh top level (REPL). */
void esk_control_reset(void);
/* Called when an escape lands (error.c clears its stack-overflow state). */
void esk_error_recovered(void);
/* Call procedure f from C with argc arguments (copied into the argument buffer). */
esk_value esk_call(const char *loc, esk_value f, int64_t argc, const esk_value *args);
/* (values v...) as one value: argv[0] when argc == 1. */
esk_value esk_make_values(int64_t argc, const esk_value *argv);
/* Printer hook for ESK_T_RECORD (records, record types, multiple values): prints and returns 1,
 * or returns 0 when v is not one. */
int esk_print_record(esk_value v, FILE *out, int write);

esk_value esk_prim_values(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_call_with_values(const char *loc, esk_value producer, esk_value consumer);
esk_value esk_prim_mv_ref(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_mv_rest(const char *loc, esk_value obj, esk_value k);
esk_value esk_prim_floor_slash(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_truncate_slash(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_error(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_raise(const char *loc, esk_value obj);
esk_value esk_prim_raise_continuable(const char *loc, esk_value obj);
esk_value esk_prim_with_exception_handler(const char *loc, esk_value handler, esk_value thunk);
esk_value esk_prim_with_guard(const char *loc, esk_value thunk, esk_value handler);
esk_value esk_prim_reraise(const char *loc, esk_value obj, esk_value continuable);
esk_value esk_prim_is_error_object(const char *loc, esk_value obj);
esk_value esk_prim_error_object_message(const char *loc, esk_value obj);
esk_value esk_prim_error_object_irritants(const char *loc, esk_value obj);
esk_value esk_prim_is_file_error(const char *loc, esk_value obj);
esk_value esk_prim_is_read_error(const char *loc, esk_value obj);
esk_value esk_prim_dynamic_wind(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_call_cc(const char *loc, esk_value f);
esk_value esk_prim_exit_unwind(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_make_parameter(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_parameterize(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_is_parameter(const char *loc, esk_value v);
esk_value esk_prim_delay(const char *loc, esk_value thunk);
esk_value esk_prim_delay_force(const char *loc, esk_value thunk);
esk_value esk_prim_make_promise(const char *loc, esk_value v);
esk_value esk_prim_is_promise(const char *loc, esk_value v);
esk_value esk_prim_force(const char *loc, esk_value v);
esk_value esk_prim_make_rtd(const char *loc, esk_value name, esk_value fields);
esk_value esk_prim_record(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_is_record_of(const char *loc, esk_value obj, esk_value rtd);
esk_value esk_prim_record_ref(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_record_set(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_assert_fail(const char *loc, esk_value expr);
esk_value esk_prim_case_lambda(const char *loc, int64_t argc, esk_value *argv);

/* ---- data types and I/O (strings.c, hash.c, ports.c) -------------------------------------- */

typedef struct esk_bytevector {
  esk_header h;      /* ESK_T_BYTEVECTOR */
  int64_t len;
  uint8_t *data;
} esk_bytevector;

/* Hash table: entries in insertion order (dead ones have live == 0) plus an open-addressing
 * index of entry numbers.  kind: 0 equal?, 1 eqv?, 2 eq?, 3 string=?. */
typedef struct esk_hash_entry {
  esk_value key, value;
  uint64_t hash;
  int64_t live;
} esk_hash_entry;

typedef struct esk_hashtable {
  esk_header h;      /* ESK_T_HASHTABLE */
  int64_t kind;
  int64_t count;     /* live entries */
  int64_t used;      /* entries[0..used) hold live and dead entries */
  int64_t ecap;      /* capacity of entries */
  int64_t icap;      /* power of two; index slots, -1 empty */
  esk_hash_entry *entries;
  int64_t *index;
} esk_hashtable;

/* A port: output to a FILE* (files, stdout, or a memstream for string ports), input from a
 * FILE* or from a string buffer. */
typedef struct esk_port {
  esk_header h;      /* ESK_T_PORT */
  int32_t input, output, is_string, closed;
  FILE *f;           /* NULL for string input ports */
  char *mem;         /* memstream buffer (string output ports) */
  size_t memsize;
  const char *sdata; /* string input ports */
  int64_t slen, spos;
  int64_t peeked;    /* a peeked code point, or -1 */
  const char *name;
} esk_port;

/* The FILE* that output procedures given an optional port (ESK_T_DEFAULT or missing = the
 * current output port) write to; fails with a type error naming `who`. */
FILE *esk_output_file(const char *loc, const char *who, esk_value port);
/* Equality used by hash tables and equal? (prims.c). */
int esk_equal(esk_value a, esk_value b);
esk_value esk_prim_bytevector(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_open_output_string(const char *loc);
esk_value esk_prim_get_output_string(const char *loc, esk_value port);


/* ---- tensors (tensor.c; CUDA buffers through cuda_shim.c) --------------------------------- */

enum { ESK_DT_F64 = 0, ESK_DT_F32 = 1, ESK_DT_I64 = 2 };
enum { ESK_DEV_HOST = 0, ESK_DEV_CUDA = 1 };
#define ESK_TENSOR_MAX_RANK 8

/* A data buffer: 64-byte aligned, from the size-class pool (host) or cuMemAlloc (cuda).  Views
 * share the buffer; it returns to its pool when no tensor references it (GC finalizer). */
typedef struct esk_tensor_buf {
  void *base;          /* host pointer, or CUdeviceptr for ESK_DEV_CUDA */
  size_t bytes;
  int32_t device;      /* ESK_DEV_* */
  int32_t device_index;
  int32_t size_class;  /* pool class, -1 when not pooled */
  int32_t pad;
} esk_tensor_buf;

typedef struct esk_tensor {
  esk_header h;          /* ESK_T_TENSOR */
  int32_t dtype;         /* ESK_DT_* */
  int32_t device;        /* ESK_DEV_* (same as buf->device) */
  int64_t rank;
  int64_t size;          /* number of elements (product of dims; 1 for rank 0) */
  int64_t offset;        /* element offset of element [0,...,0] into buf */
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t strides[ESK_TENSOR_MAX_RANK];  /* in elements; row-major contiguous by default */
  esk_tensor_buf *buf;
} esk_tensor;

static inline size_t esk_dtype_size(int dtype) { return dtype == ESK_DT_F32 ? 4 : 8; }
/* Host address of element 0 (data of a contiguous tensor). */
static inline void *esk_tensor_data(const esk_tensor *t) {
  return (char *)t->buf->base + t->offset * (int64_t)esk_dtype_size(t->dtype);
}
/* A fresh contiguous host tensor, uninitialised (data from the pool). */
esk_tensor *esk_tensor_new(int dtype, int64_t rank, const int64_t *dims);
esk_value esk_tensor_value(esk_tensor *t);
/* The tensor v, or a catchable type error naming `who`. */
esk_tensor *esk_to_tensor(const char *loc, const char *who, esk_value v);
int esk_tensor_is_contiguous(const esk_tensor *t);
/* Printer hook: prints v as nested vectors, returns 1 (0 when v is not a tensor). */
int esk_print_tensor(esk_value v, FILE *out, int write);
/* Arithmetic on non-number operands (tensors, dual numbers, tape nodes), called by numbers.c
 * when an operand of + - * / or a math function is not a plain number.  op: ESK_OP_*.
 * Returns 1 and sets *out when handled, 0 otherwise (numbers.c then raises its type error). */
enum { ESK_OP_ADD, ESK_OP_SUB, ESK_OP_MUL, ESK_OP_DIV, ESK_OP_NEG, ESK_OP_EXP, ESK_OP_LOG,
       ESK_OP_SIN, ESK_OP_COS, ESK_OP_TAN, ESK_OP_SQRT, ESK_OP_ABS, ESK_OP_ASIN, ESK_OP_ACOS,
       ESK_OP_ATAN, ESK_OP_SINH, ESK_OP_COSH, ESK_OP_TANH, ESK_OP_SQUARE, ESK_OP_EXPT,
       ESK_OP_MIN, ESK_OP_MAX, ESK_OP_LT, ESK_OP_GT, ESK_OP_LE, ESK_OP_GE, ESK_OP_NUMEQ,
       ESK_OP_COUNT };
int esk_tensor_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out);
int esk_ad_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out);
/* The plain value under dual numbers / tape nodes (comparisons, printing); v itself otherwise. */
esk_value esk_ad_primal(esk_value v);

/* ---- generated kernels (kernels.c; made by the compiler's MLIR pipeline, eshkol/lower/cpu.py) */
/* A kernel's C entry: elements [lo, hi) of flattened contiguous operands; ptrs holds the
 * data pointers (output first), scalars the scalar operands, acc a reduction's result. */
typedef void (*esk_kernel_fn)(int64_t lo, int64_t hi, void *const *ptrs, const double *scalars,
                              void *acc);
/* Run fn over [0, n), split across the kernel threads when large; a reduction (acc != NULL)
 * writes one partial per part, acc_bytes apart, and *nparts says how many. */
void esk_kernel_run(esk_kernel_fn fn, int64_t n, int64_t elem_bytes, int64_t narrays,
                    void *const *ptrs, const double *scalars, void *acc, int64_t acc_bytes,
                    int64_t *nparts);
int esk_kernel_threads(void);  /* threads that kernels use (caller included) */
/* A fused chain (eshkol.tensor_fused): its result, or the 'default' immediate when the
 * operands are not what the kernels take (the caller then runs the unfused primitives). */
esk_value esk_tensor_fused(const char *loc, int64_t argc, esk_value *argv, const char *kinds,
                           int64_t root, esk_kernel_fn f64, esk_kernel_fn f32);
/* Hooks into the kernel library (generated kernels registered at load time): run op (ESK_OP_*)
 * over n elements of dtype into contiguous out; a and b are contiguous (stride 1) or one
 * scalar (stride 0); b is NULL for unary ops.  kind: 0 sum, 1 max, 2 min of n contiguous
 * elements.  Each returns 1 when it did the work, 0 when the caller must (no such kernel). */
int esk_kernel_elementwise(int op, int dtype, int64_t n, void *out, const void *a, int64_t sa,
                           const void *b, int64_t sb);
int esk_kernel_reduce(int kind, int dtype, int64_t n, const void *a, double *out);
void esk_register_kernel(const char *name, int form, int dtype, esk_kernel_fn fn);
/* C = A*B (row-major, leading dimensions) with the generated block kernel when it applies (and
 * ESHKOL_MATMUL=mlir asks for it: it measures slower than an optimized BLAS); 1 when done. */
int esk_kernel_matmul(int dtype, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                      const void *B, int64_t ldb, void *C, int64_t ldc);
void esk_register_matmul(int dtype, void *fn);
/* AD interplay of tensor builtins: every tensor prim first checks esk_ad_any(argc, argv) and,
 * when an argument is a dual number or tape node, returns esk_ad_tensor_prim(loc, "<eshkol
 * name>", argc, argv) (ad.c re-dispatches on the primal values and records the derivative). */
int esk_ad_any(int64_t argc, const esk_value *argv);
esk_value esk_ad_tensor_prim(const char *loc, const char *name, int64_t argc, const esk_value *argv);
/* tensor-apply when f returned an AD value for a plain element (f closes over one): redoes
 * the whole application AD-aware.  (tensor-apply t f) or (tensor-apply f t). */
esk_value esk_ad_tensor_apply(const char *loc, esk_value a, esk_value b);
/* The error for a builtin that got an AD value it cannot differentiate through (esk_error_type
 * reports type errors on AD values with it). */
_Noreturn void esk_ad_not_differentiable(const char *loc, const char *who, esk_value got);
/* Printer hook for dual numbers, "(dual p d)", and tape nodes, "#<ad-node>". */
int esk_print_ad(esk_value v, FILE *out, int write);

/* ---- tensor helpers shared by tensor*.c, tensor_linalg.c, ad.c and the device shims -------- */
/* Zero-filled fresh contiguous host tensor. */
esk_tensor *esk_tensor_zeros(int dtype, int64_t rank, const int64_t *dims);
/* t itself when it is row-major contiguous, else a fresh contiguous copy (same dtype). */
esk_tensor *esk_tensor_contiguous(esk_tensor *t);
/* t itself when it already has `dtype`, else a fresh contiguous converted copy. */
esk_tensor *esk_tensor_astype(esk_tensor *t, int dtype);
/* A tensor from v: a tensor (itself), a real number (rank 0, f64), or a nested list / vector of
 * real numbers (f64, shape from the nesting); otherwise a type error naming `who`. */
esk_tensor *esk_as_tensor(const char *loc, const char *who, esk_value v);
/* The element at flat row-major (logical) index i as a double, for any dtype and strides. */
double esk_tensor_get_flat(const esk_tensor *t, int64_t i);
/* The element at buffer element offset `off` (t->offset + sum idx*stride) as a Scheme number:
 * a flonum for f64/f32, a fixnum for i64. */
esk_value esk_tensor_elem_value(const esk_tensor *t, int64_t off);
/* "who: shape mismatch: (2 2) and (3 3)", raised as a catchable error at loc. */
_Noreturn void esk_error_shapes(const char *loc, const char *who, const esk_tensor *a,
                                const esk_tensor *b);
/* Text of a shape, "(2 3)", into buf (at least 24 bytes per dimension + 3). */
const char *esk_shape_text(const esk_tensor *t, char *buf, size_t size);
/* dtype of a symbol name "f64" / "f32" / "i64" (also float64, float32, int64), or -1. */
int esk_dtype_from_name(const char *name);
const char *esk_dtype_name(int dtype);
/* v1.x vector/list procedures and equal? on tensors: prims.c forwards tensor operands here. */
esk_value esk_tensor_vector_ref(const char *loc, const char *who, esk_value t, esk_value k);
esk_value esk_tensor_vector_set(const char *loc, esk_value t, esk_value k, esk_value x);
esk_value esk_tensor_car(const char *loc, esk_value t);
esk_value esk_tensor_cdr(const char *loc, esk_value t);
int esk_tensor_equal(esk_value a, esk_value b);
/* The tensor runtime's PRNG (xoshiro256**, seeded by random-seed!). */
void esk_random_seed(uint64_t seed);
double esk_random_uniform(void);   /* [0, 1) */
double esk_random_normal(void);    /* standard normal */

/* ---- tensor primitives implemented in tensor_linalg.c (helper T2).  Registered in
 * eshkol/dialect/prims_tensor.py with these C names and arities. ---------------------------- */
esk_value esk_prim_matmul(const char *loc, esk_value a, esk_value b);       /* (matmul A B) */
esk_value esk_prim_tensor_dot(const char *loc, esk_value a, esk_value b);   /* (tensor-dot a b) */
esk_value esk_prim_outer(const char *loc, esk_value a, esk_value b);        /* (outer u v) */
esk_value esk_prim_transpose(const char *loc, int64_t argc, esk_value *argv); /* (transpose T [i j]): 1 or 3 */
esk_value esk_prim_trace(const char *loc, esk_value a);                     /* (trace M) */
esk_value esk_prim_norm(const char *loc, int64_t argc, esk_value *argv);    /* (norm v [ord]): 1 or 2 */
esk_value esk_prim_det(const char *loc, esk_value a);                       /* (det A) */
esk_value esk_prim_inv(const char *loc, esk_value a);                       /* (inv A) */
esk_value esk_prim_solve(const char *loc, esk_value a, esk_value b);        /* (solve A b) */

/* ---- CUDA tensors (cuda_shim.c, cuda_tensor.c; helper G).  libcuda/libcublas are dlopen'ed on
 * first use; without them these raise "cuda: no CUDA driver found (libcuda.so.1)".  The tensor
 * runtime calls the hooks below where an operand may live on the GPU. -------------------------- */
/* Kernels of a program compiled with --target=cuda: manifest lines, PTX blob, and the CPU
 * kernel entries of its fused chains (their GPU versions are found by these pointers). */
void esk_cuda_register(const char *manifest, const char *ptx, int64_t nfused,
                       const void *const *fused_f64_entries);
/* kernels.c's esk_tensor_fused, when an operand is a CUDA tensor: the chain's GPU kernel, or
 * the 'default' immediate (the caller then runs the unfused operations, each on the GPU). */
esk_value esk_cuda_fused(const char *loc, int64_t argc, const esk_value *argv, const char *kinds,
                         int64_t root, const void *f64_entry);
static inline int esk_is_cuda_tensor(esk_value v) {
  return v.tag == ESK_T_TENSOR && ((const esk_tensor *)esk_ptr(v))->device == ESK_DEV_CUDA;
}
/* Elementwise op (ESK_OP_*) where an operand is a CUDA tensor (tensor_ops.c's binary/unary
 * call these first): runs a kernel (or goes through the host where no kernel fits, e.g. i64);
 * the result is a CUDA tensor.  `who` names the operation in errors. */
esk_value esk_cuda_binary(const char *loc, const char *who, int op, esk_value a, esk_value b);
esk_value esk_cuda_unary(const char *loc, const char *who, int op, esk_value a);
/* Reduction kinds, in tensor_reduce.c's order. */
enum { ESK_RED_SUM, ESK_RED_MEAN, ESK_RED_MAX, ESK_RED_MIN, ESK_RED_PROD, ESK_RED_VAR,
       ESK_RED_STD, ESK_RED_ARGMAX, ESK_RED_ARGMIN };
/* (tensor-sum t [axis]) ... of a CUDA tensor argv[0] (tensor_reduce.c's reduce calls it):
 * sum/mean/max/min/prod on the device (all elements: a flonum; along an axis: a CUDA tensor
 * without it), the other kinds through the host's builtins (tensor results back on the GPU). */
esk_value esk_cuda_reduce(const char *loc, int kind, int64_t argc, esk_value *argv);
/* Builtins without a GPU version, given CUDA operands: fn runs on host copies and a tensor
 * result goes back to the GPU; with `mutates`, argv[0]'s host copy is then written back into
 * its device storage (argv[0] is returned where fn returned the copy). */
static inline int esk_cuda_any(int64_t argc, const esk_value *argv) {
  for (int64_t i = 0; i < argc; i++)
    if (esk_is_cuda_tensor(argv[i])) return 1;
  return 0;
}
esk_value esk_cuda_host_call(const char *loc, esk_value (*fn)(const char *, int64_t, esk_value *),
                             int64_t argc, esk_value *argv, int mutates);
esk_value esk_cuda_host_call1(const char *loc, esk_value (*fn)(const char *, esk_value), esk_value a);
esk_value esk_cuda_host_call2(const char *loc, esk_value (*fn)(const char *, esk_value, esk_value),
                              esk_value a, esk_value b, int mutates);
/* (transpose t [i j]) of a CUDA tensor: a permuted copy made on the device. */
esk_value esk_cuda_transpose(const char *loc, int64_t argc, esk_value *argv);
/* Matrix product with cuBLAS where an operand is a CUDA tensor (both must be). */
esk_value esk_cuda_matmul(const char *loc, const char *who, esk_value a, esk_value b);
/* A host tensor with t's elements: t itself on the host, else a fresh contiguous copy (for
 * printing, indexing, and operations without a GPU kernel). */
esk_tensor *esk_tensor_on_host(const char *loc, esk_tensor *t);
/* Element at buffer element offset `off` of a CUDA tensor, as a Scheme number; and a store. */
esk_value esk_cuda_elem_value(const char *loc, const esk_tensor *t, int64_t off);
void esk_cuda_elem_store(const char *loc, esk_tensor *t, int64_t off, double x);
/* The device creation operations allocate on: ESK_DEV_HOST, or ESK_DEV_CUDA inside
 * (with-device 'cuda:0 ...).  Creation prims return esk_tensor_place(loc, result). */
int esk_current_device(void);
esk_value esk_tensor_place(const char *loc, esk_value t);

#ifdef __cplusplus
}
#endif
#endif
