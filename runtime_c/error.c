/* Runtime errors.  Everything funnels into esk_raise_error, which makes an error object and
 * raises it (control.c): a handler (`guard`, `with-exception-handler`) may catch it; an
 * uncaught one is reported here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>

#include "eshkol_rt.h"

/* Where an uncaught error returns instead of ending the process (set by esk_run_catching, for
 * the REPL). */
static jmp_buf *toplevel_catch;

/* Set while the handlers of a stack overflow run (they get some of the reserve below the
 * limit); a second overflow meanwhile is fatal. */
static int in_overflow;
static char *overflow_saved_limit;

void esk_error_recovered(void) { in_overflow = 0; }

_Noreturn void esk_raise_error(const char *loc, const char *message, int64_t nirritants,
                               esk_value *irritants) {
  esk_value obj = esk_make_error_object(loc, esk_cstring(message),
                                        esk_list_from_args(nirritants, irritants));
  esk_raise(loc, obj);
}

_Noreturn void esk_uncaught(const char *loc, esk_value obj) {
  esk_flush();
  if (obj.tag == ESK_T_ERROR) {
    esk_error_obj *e = esk_ptr(obj);
    if (e->loc) loc = e->loc;
    if (loc) fprintf(stderr, "%s: ", loc);
    fputs("error: ", stderr);
    esk_display(e->message, stderr);
    for (esk_value p = e->irritants; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) {
      putc(' ', stderr);
      esk_write(((esk_pair *)esk_ptr(p))->car, stderr);
    }
  } else {
    if (loc) fprintf(stderr, "%s: ", loc);
    fputs("error: uncaught exception: ", stderr);
    esk_write(obj, stderr);
  }
  putc('\n', stderr);
  fflush(stderr);
  if (in_overflow) {  /* no room to run after thunks */
    if (toplevel_catch) {
      in_overflow = 0;
      esk_stack_limit = overflow_saved_limit;
      esk_control_reset();
      longjmp(*toplevel_catch, 1);
    }
    exit(1);
  }
  /* As Chez does, leaving the program runs the after thunks of pending dynamic-winds. */
  esk_unwind_all();
  esk_flush();
  if (toplevel_catch) {
    esk_control_reset();
    longjmp(*toplevel_catch, 1);
  }
  exit(1);
}

static void (*catching_entry)(void);
static int catching_failed;

static void run_caught(void) {
  jmp_buf buf;
  jmp_buf *saved = toplevel_catch;
  toplevel_catch = &buf;
  catching_failed = 1;
  esk_control_reset();
  if (setjmp(buf) == 0) {
    catching_entry();
    catching_failed = 0;
  }
  toplevel_catch = saved;
}

int esk_run_catching(void (*entry)(void)) {
  catching_entry = entry;
  esk_run(run_caught);
  esk_flush();
  return catching_failed;
}

_Noreturn void esk_error(const char *loc, const char *message, int64_t nirritants,
                         esk_value *irritants) {
  esk_raise_error(loc, message, nirritants, irritants);
}

_Noreturn void esk_error_type(const char *loc, const char *who, const char *expected,
                              esk_value got) {
  if (got.tag == ESK_T_DUAL || got.tag == ESK_T_ADNODE) esk_ad_not_differentiable(loc, who, got);
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (!f) esk_raise_error(loc, who, 1, &got);
  fprintf(f, "%s: expected %s, got ", who, expected);
  esk_write(got, f);
  fclose(f);
  esk_value message = esk_cstring(text);
  free(text);
  esk_raise(loc, esk_make_error_object(loc, message, (esk_value){ESK_T_NIL, 0}));
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
  static const char msg[] = "stack overflow (recursion too deep)";
  if (in_overflow || !esk_stack_limit) {
    esk_flush();
    if (loc) fprintf(stderr, "%s: ", loc);
    fprintf(stderr, "error: %s\n", msg);
    fflush(stderr);
    exit(1);
  }
  /* Handlers run on what is left of the reserve below the limit. */
  in_overflow = 1;
  overflow_saved_limit = esk_stack_limit;
  esk_stack_limit -= 128 << 10;
  esk_raise_error(loc, msg, 0, NULL);
}

_Noreturn void esk_errorf(const char *loc, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  esk_raise_error(loc, buf, 0, NULL);
}

_Noreturn void esk_error_with(const char *loc, const char *message, esk_value irritant) {
  esk_raise_error(loc, message, 1, &irritant);
}
