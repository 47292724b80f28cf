/* Runtime errors.  Everything funnels into esk_raise_error so that `guard` can later install a
 * handler stack (setjmp/longjmp) there; today an error is always uncaught. */
#include <stdlib.h>

#include "eshkol_rt.h"

_Noreturn void esk_raise_error(const char *loc, const char *message, int64_t nirritants,
                               esk_value *irritants) {
  esk_flush();
  if (loc) fprintf(stderr, "%s: ", loc);
  fprintf(stderr, "error: %s", message);
  for (int64_t i = 0; i < nirritants; i++) {
    putc(' ', stderr);
    esk_write(irritants[i], stderr);
  }
  putc('\n', stderr);
  fflush(stderr);
  exit(1);
}

_Noreturn void esk_error(const char *loc, const char *message, int64_t nirritants,
                         esk_value *irritants) {
  esk_raise_error(loc, message, nirritants, irritants);
}

_Noreturn void esk_error_type(const char *loc, const char *who, const char *expected,
                              esk_value got) {
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (!f) esk_raise_error(loc, who, 1, &got);
  fprintf(f, "%s: expected %s, got ", who, expected);
  esk_write(got, f);
  fclose(f);
  esk_raise_error(loc, text, 0, NULL);
}

static const char *proc_name(esk_closure *f) {
  return f && f->name && *f->name ? f->name : "#<procedure>";
}

_Noreturn void esk_error_arity(const char *loc, esk_closure *f, int64_t argc) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: wrong number of arguments (got %lld)", proc_name(f),
           (long long)argc);
  esk_raise_error(loc, msg, 0, NULL);
}

_Noreturn void esk_error_arity_range(const char *loc, esk_closure *f, int64_t argc,
                                     int64_t min, int64_t max) {
  char expected[64], msg[512];
  if (max < 0) snprintf(expected, sizeof expected, "at least %lld", (long long)min);
  else if (min == max) snprintf(expected, sizeof expected, "%lld", (long long)min);
  else snprintf(expected, sizeof expected, "%lld to %lld", (long long)min, (long long)max);
  snprintf(msg, sizeof msg, "%s: wrong number of arguments (expected %s, got %lld)",
           proc_name(f), expected, (long long)argc);
  esk_raise_error(loc, msg, 0, NULL);
}

_Noreturn void esk_error_unbound(const char *loc, const char *name) {
  char msg[512];
  snprintf(msg, sizeof msg, "unbound variable: %s", name);
  esk_raise_error(loc, msg, 0, NULL);
}

_Noreturn void esk_error_not_procedure(const char *loc, esk_value f) {
  esk_raise_error(loc, "attempt to call a non-procedure:", 1, &f);
}

_Noreturn void esk_stack_overflow(const char *loc) {
  esk_raise_error(loc, "stack overflow (recursion too deep)", 0, NULL);
}
