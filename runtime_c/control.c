/* Control: conditions and handlers (raise, with-exception-handler, guard), dynamic-wind,
 * escaping continuations (call/cc), multiple values, parameters, promises and records.
 *
 * Dynamic state lives in three places: the handler stack (a list of procedures, innermost
 * first), the wind list (pending dynamic-wind after thunks) and the chain of catch frames.
 * A catch frame is a setjmp point on the C stack made by `guard` (esk_prim_with_guard) and by
 * call/cc; escaping to one (longjmp) marks every frame above it dead, then, where it lands,
 * runs the after thunks of the dynamic-winds that were exited, restores the handler stack and
 * leaves the arena regions entered since.  Continuations are escape-only: calling one after
 * its call/cc has returned is an error.
 *
 * The state is per process (programs run on one thread); the collector sees it because the
 * static variables below live in this library's data segment. */
#define GC_THREADS
#include <gc.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"

#define NIL ((esk_value){ESK_T_NIL, 0})
#define FIX(n) ((esk_value){ESK_T_FIXNUM, (n)})

static inline esk_value car(esk_value p) { return ((esk_pair *)esk_ptr(p))->car; }
static inline esk_value cdr(esk_value p) { return ((esk_pair *)esk_ptr(p))->cdr; }
static inline esk_value heap(int64_t tag, void *p) { return (esk_value){tag, (int64_t)(intptr_t)p}; }

/* ---- calling procedures from C --------------------------------------------------------------- */

esk_value esk_call(const char *loc, esk_value f, int64_t argc, const esk_value *args) {
  if (f.tag != ESK_T_CLOSURE) esk_error_not_procedure(loc, f);
  esk_value *buf = esk_argbuf_main;
  if (args != buf)
    for (int64_t i = 0; i < argc; i++) buf[i] = args[i];
  esk_callsite = loc;
  esk_closure *c = esk_ptr(f);
  return c->code(c, argc, buf);
}

static void check_procedure(const char *loc, const char *who, esk_value f) {
  if (f.tag != ESK_T_CLOSURE) esk_error_type(loc, who, "procedure", f);
}

/* ---- dynamic state ---------------------------------------------------------------------------- */

typedef struct wind {
  struct wind *outer;
  esk_value before, after;
  esk_value handlers;  /* the handler stack of the dynamic-wind call (after thunks run in it) */
} wind;

typedef struct esk_catch esk_catch;

/* Outlives its frame: a continuation or guard marker says through it whether the frame is
 * still on the stack. */
typedef struct catch_ref {
  esk_catch *frame;
  int64_t live;
} catch_ref;

struct esk_catch {
  jmp_buf buf;
  esk_catch *prev;
  wind *winds;
  esk_value handlers;
  esk_arena *region;
  char *stack_limit;
  catch_ref *ref;
  esk_value payload;      /* what the escape delivers */
  int continuable;        /* guard: the raise that reached it was raise-continuable */
};

static esk_value handlers = {ESK_T_NIL, 0};
static wind *winds;
static esk_catch *catch_top;
/* The last raised object and where, so that a guard that re-raises reports the original
 * location. */
static esk_value last_raised;
static const char *last_raised_loc;

static void frame_push(esk_catch *fr) {
  fr->prev = catch_top;
  fr->winds = winds;
  fr->handlers = handlers;
  fr->region = esk_region_current();
  fr->stack_limit = esk_stack_limit;
  fr->ref = esk_alloc(sizeof *fr->ref);
  fr->ref->frame = fr;
  fr->ref->live = 1;
  fr->payload = esk_void();
  fr->continuable = 0;
  catch_top = fr;
}

static void frame_pop(esk_catch *fr) {
  catch_top = fr->prev;
  fr->ref->live = 0;
}

static _Noreturn void escape_to(esk_catch *fr, esk_value payload, int continuable) {
  while (catch_top && catch_top != fr) {
    catch_top->ref->live = 0;
    catch_top = catch_top->prev;
  }
  fr->payload = payload;
  fr->continuable = continuable;
  longjmp(fr->buf, 1);
}

/* Run the after thunks of the dynamic-winds entered since `target`, innermost first. */
static void unwind_to(wind *target) {
  while (winds && winds != target) {
    wind *w = winds;
    winds = w->outer;
    handlers = w->handlers;
    esk_call(NULL, w->after, 0, NULL);
  }
}

/* Where an escape lands: back to the frame's dynamic state. */
static void land(esk_catch *fr) {
  esk_stack_limit = fr->stack_limit;
  esk_error_recovered();
  unwind_to(fr->winds);
  handlers = fr->handlers;
  while (esk_region_current() && esk_region_current() != fr->region) esk_region_exit();
}

void esk_unwind_all(void) {
  unwind_to(NULL);
  handlers = NIL;
}

void esk_control_reset(void) {
  handlers = NIL;
  winds = NULL;
  for (esk_catch *c = catch_top; c; c = c->prev) c->ref->live = 0;
  catch_top = NULL;
  while (esk_region_current()) esk_region_exit();
}

/* ---- error objects ---------------------------------------------------------------------------- */

esk_value esk_make_error_object(const char *loc, esk_value message, esk_value irritants) {
  esk_error_obj *e = GC_MALLOC(sizeof *e);
  if (!e) {  /* out of memory while reporting an error: report it without an object */
    fflush(stdout);
    fprintf(stderr, "%s%serror: out of memory\n", loc ? loc : "", loc ? ": " : "");
    exit(1);
  }
  e->h.type = ESK_T_ERROR;
  e->message = message;
  e->irritants = irritants;
  e->loc = loc;
  return heap(ESK_T_ERROR, e);
}

static esk_value do_raise(const char *loc, esk_value obj, int continuable);

_Noreturn void esk_raise(const char *loc, esk_value obj) {
  do_raise(loc, obj, 0);
  abort(); /* not reached: a non-continuable raise never returns */
}

/* The closure a guard puts on the handler stack; do_raise recognises it by its code. */
static esk_value guard_code(esk_closure *self, int64_t argc, esk_value *argv) {
  catch_ref *ref = esk_ptr(self->free[0]);
  if (!ref->live || argc != 1) esk_raise_error(esk_callsite, "guard: escape outside its body", 0, NULL);
  escape_to(ref->frame, argv[0], 0);
}

static esk_value do_raise(const char *loc, esk_value obj, int continuable) {
  last_raised = obj;
  last_raised_loc = loc;
  esk_value hs = handlers;
  if (hs.tag != ESK_T_PAIR) esk_uncaught(loc, obj);
  esk_value h = car(hs);
  esk_closure *c = esk_ptr(h);
  if (c->code == guard_code) {
    catch_ref *ref = esk_ptr(c->free[0]);
    if (ref->live) escape_to(ref->frame, obj, continuable);
  }
  /* The handler runs with the outer handlers installed (R7RS). */
  handlers = cdr(hs);
  esk_value r = esk_call(loc, h, 1, &obj);
  if (continuable) {
    handlers = hs;
    return r;
  }
  /* Returning from the handler of `raise` is a secondary error, raised where the handler ran. */
  esk_raise_error(loc, "handler returned from non-continuable raise of", 1, &obj);
}

esk_value esk_prim_error(const char *loc, int64_t argc, esk_value *argv) {
  esk_value obj = esk_make_error_object(loc, argv[0], esk_list_from_args(argc - 1, argv + 1));
  esk_raise(loc, obj);
}

esk_value esk_prim_raise(const char *loc, esk_value obj) { esk_raise(loc, obj); }

esk_value esk_prim_raise_continuable(const char *loc, esk_value obj) { return do_raise(loc, obj, 1); }

esk_value esk_prim_reraise(const char *loc, esk_value obj, esk_value continuable) {
  if (last_raised.tag == obj.tag && last_raised.payload == obj.payload && last_raised_loc)
    loc = last_raised_loc;
  return do_raise(loc, obj, esk_is_true(continuable));
}

esk_value esk_prim_with_exception_handler(const char *loc, esk_value handler, esk_value thunk) {
  check_procedure(loc, "with-exception-handler", handler);
  check_procedure(loc, "with-exception-handler", thunk);
  esk_value saved = handlers;
  handlers = esk_cons(handler, saved);
  esk_value r = esk_call(loc, thunk, 0, NULL);
  handlers = saved;
  return r;
}

/* (guard (var clause...) body...) is (%with-guard (lambda () body...) (lambda (var cont?) ...)):
 * a raise that reaches the guard escapes here, and the handler (the clauses, which re-raise
 * when none matches) runs in the guard's dynamic context. */
esk_value esk_prim_with_guard(const char *loc, esk_value thunk, esk_value handler) {
  esk_catch fr;
  frame_push(&fr);
  if (setjmp(fr.buf) == 0) {
    esk_value marker = esk_make_closure(guard_code, "guard", 1);
    ((esk_closure *)esk_ptr(marker))->free[0] = heap(ESK_T_FIXNUM, fr.ref);
    handlers = esk_cons(marker, handlers);
    esk_value r = esk_call(loc, thunk, 0, NULL);
    handlers = fr.handlers;
    frame_pop(&fr);
    return r;
  }
  land(&fr);
  frame_pop(&fr);
  esk_value args[2] = {fr.payload, esk_bool(fr.continuable)};
  return esk_call(loc, handler, 2, args);
}

static esk_error_obj *as_error(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_ERROR) esk_error_type(loc, who, "error object", v);
  return esk_ptr(v);
}

esk_value esk_prim_is_error_object(const char *loc, esk_value obj) {
  (void)loc;
  return esk_bool(obj.tag == ESK_T_ERROR);
}
esk_value esk_prim_error_object_message(const char *loc, esk_value obj) {
  return as_error(loc, "error-object-message", obj)->message;
}
esk_value esk_prim_error_object_irritants(const char *loc, esk_value obj) {
  return as_error(loc, "error-object-irritants", obj)->irritants;
}
esk_value esk_prim_is_file_error(const char *loc, esk_value obj) {
  (void)loc;
  (void)obj;
  return esk_bool(0);
}
esk_value esk_prim_is_read_error(const char *loc, esk_value obj) {
  (void)loc;
  (void)obj;
  return esk_bool(0);
}

esk_value esk_prim_assert_fail(const char *loc, esk_value expr) {
  esk_raise_error(loc, "assertion failed:", 1, &expr);
}

/* ---- dynamic-wind and call/cc ------------------------------------------------------------------ */

esk_value esk_prim_dynamic_wind(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_value before = argv[0], thunk = argv[1], after = argv[2];
  check_procedure(loc, "dynamic-wind", before);
  check_procedure(loc, "dynamic-wind", thunk);
  check_procedure(loc, "dynamic-wind", after);
  esk_call(loc, before, 0, NULL);
  wind *w = esk_alloc(sizeof *w);
  w->outer = winds;
  w->before = before;
  w->after = after;
  w->handlers = handlers;
  winds = w;
  esk_value r = esk_call(loc, thunk, 0, NULL);
  winds = w->outer;
  esk_call(loc, after, 0, NULL);
  return r;
}

static esk_value continuation_code(esk_closure *self, int64_t argc, esk_value *argv) {
  catch_ref *ref = esk_ptr(self->free[0]);
  esk_value v = esk_make_values(argc, argv);
  if (!ref->live)
    esk_raise_error(esk_callsite,
                    "continuation called after its extent ended (only escaping continuations "
                    "are supported)", 0, NULL);
  escape_to(ref->frame, v, 0);
}

esk_value esk_prim_call_cc(const char *loc, esk_value f) {
  check_procedure(loc, "call-with-current-continuation", f);
  esk_catch fr;
  frame_push(&fr);
  if (setjmp(fr.buf) == 0) {
    esk_value k = esk_make_closure(continuation_code, "continuation", 1);
    ((esk_closure *)esk_ptr(k))->free[0] = heap(ESK_T_FIXNUM, fr.ref);
    esk_value r = esk_call(loc, f, 1, &k);
    frame_pop(&fr);
    return r;
  }
  land(&fr);
  frame_pop(&fr);
  return fr.payload;
}

esk_value esk_prim_exit_unwind(const char *loc, int64_t argc, esk_value *argv) {
  esk_value args[1] = {argc ? argv[0] : esk_void()};
  esk_unwind_all();
  return esk_prim_exit(loc, argc, args);
}

/* ---- multiple values -------------------------------------------------------------------------- */

static esk_record values_rtd = {{ESK_T_RECORD, 0}, NULL, 0};

static int is_values(esk_value v) {
  return v.tag == ESK_T_RECORD && ((esk_record *)esk_ptr(v))->rtd == &values_rtd;
}

static esk_record *new_record(esk_record *rtd, int64_t n) {
  esk_record *r = esk_alloc(sizeof *r + (size_t)n * sizeof(esk_value));
  r->h.type = ESK_T_RECORD;
  r->rtd = rtd;
  r->n = n;
  return r;
}

esk_value esk_make_values(int64_t argc, const esk_value *argv) {
  if (argc == 1) return argv[0];
  esk_record *r = new_record(&values_rtd, argc);
  for (int64_t i = 0; i < argc; i++) r->fields[i] = argv[i];
  return heap(ESK_T_RECORD, r);
}

esk_value esk_prim_values(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc;
  return esk_make_values(argc, argv);
}

esk_value esk_prim_call_with_values(const char *loc, esk_value producer, esk_value consumer) {
  check_procedure(loc, "call-with-values", producer);
  check_procedure(loc, "call-with-values", consumer);
  esk_value v = esk_call(loc, producer, 0, NULL);
  if (!is_values(v)) return esk_call(loc, consumer, 1, &v);
  esk_record *r = esk_ptr(v);
  return esk_call(loc, consumer, r->n, r->fields);
}

static int64_t values_count(esk_value v) { return is_values(v) ? ((esk_record *)esk_ptr(v))->n : 1; }

static esk_value values_item(esk_value v, int64_t i) {
  return is_values(v) ? ((esk_record *)esk_ptr(v))->fields[i] : v;
}

/* (%mv-ref obj i n): value i of obj, which must hold exactly n values (n >= 0) or at least
 * -n-1 (n < 0: the formals have a rest parameter).  Used by let-values and friends. */
esk_value esk_prim_mv_ref(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_value obj = argv[0];
  int64_t i = argv[1].payload, n = argv[2].payload, got = values_count(obj);
  if (n >= 0 ? got != n : got < -n - 1) {
    char msg[128];
    if (n >= 0)
      snprintf(msg, sizeof msg, "wrong number of values: expected %lld, got %lld", (long long)n,
               (long long)got);
    else
      snprintf(msg, sizeof msg, "wrong number of values: expected at least %lld, got %lld",
               (long long)(-n - 1), (long long)got);
    esk_raise_error(loc, msg, 0, NULL);
  }
  return values_item(obj, i);
}

/* (%mv-rest obj k): a list of the values of obj from the k-th on. */
esk_value esk_prim_mv_rest(const char *loc, esk_value obj, esk_value k) {
  int64_t got = values_count(obj);
  if (got < k.payload) {
    char msg[128];
    snprintf(msg, sizeof msg, "wrong number of values: expected at least %lld, got %lld",
             (long long)k.payload, (long long)got);
    esk_raise_error(loc, msg, 0, NULL);
  }
  esk_value r = NIL;
  for (int64_t i = got - 1; i >= k.payload; i--) r = esk_cons(values_item(obj, i), r);
  return r;
}

esk_value esk_prim_floor_slash(const char *loc, esk_value a, esk_value b) {
  esk_value q = esk_prim_floor(loc, esk_prim_div2(loc, a, b));
  esk_value r = esk_prim_sub2(loc, a, esk_prim_mul2(loc, b, q));
  if (a.tag == ESK_T_FIXNUM && b.tag == ESK_T_FIXNUM) r = esk_prim_modulo(loc, a, b);
  esk_value v[2] = {q, r};
  return esk_make_values(2, v);
}

esk_value esk_prim_truncate_slash(const char *loc, esk_value a, esk_value b) {
  esk_value v[2] = {esk_prim_quotient(loc, a, b), esk_prim_remainder(loc, a, b)};
  return esk_make_values(2, v);
}

/* ---- parameters ------------------------------------------------------------------------------- */

/* A parameter is a closure: free[0] its value, free[1] its converter (or #f).  Called with no
 * argument it returns the value; with one (as in Chez) it sets it. */
static esk_value parameter_code(esk_closure *self, int64_t argc, esk_value *argv) {
  if (argc == 0) return self->free[0];
  if (argc == 1) {
    esk_value v = argv[0];
    if (esk_is_true(self->free[1])) v = esk_call(esk_callsite, self->free[1], 1, &v);
    self->free[0] = v;
    return esk_void();
  }
  esk_error_arity_range(esk_callsite, self, argc, 0, 1);
}

esk_value esk_prim_make_parameter(const char *loc, int64_t argc, esk_value *argv) {
  esk_value value = argv[0];
  esk_value conv = argc > 1 ? argv[1] : esk_bool(0);
  if (argc > 1) {
    check_procedure(loc, "make-parameter", conv);
    value = esk_call(loc, conv, 1, &value);
  }
  esk_value p = esk_make_closure(parameter_code, "parameter", 2);
  esk_closure *c = esk_ptr(p);
  c->free[0] = value;
  c->free[1] = conv;
  return p;
}

esk_value esk_prim_is_parameter(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_CLOSURE && ((esk_closure *)esk_ptr(v))->code == parameter_code);
}

/* Exchanges a parameter's value with the one it holds: both the before and the after thunk of
 * parameterize's dynamic-wind.  free[0]: the parameter; free[1]: the other value. */
static esk_value swap_code(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)argc;
  (void)argv;
  esk_closure *p = esk_ptr(self->free[0]);
  esk_value t = p->free[0];
  p->free[0] = self->free[1];
  self->free[1] = t;
  return esk_void();
}

static esk_value swap_all_code(esk_closure *self, int64_t argc, esk_value *argv) {
  esk_vector *sv = esk_ptr(self->free[0]);
  for (int64_t i = 0; i < sv->len; i++) swap_code(esk_ptr(sv->items[i]), argc, argv);
  return esk_void();
}

/* (%parameterize (list p...) (list v...) thunk) */
esk_value esk_prim_parameterize(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_value params = argv[0], vals = argv[1], thunk = argv[2];
  /* Convert every value first (in the outer dynamic context), then swap all in at once. */
  int64_t n = 0;
  for (esk_value p = params; p.tag == ESK_T_PAIR; p = cdr(p)) n++;
  esk_value swaps = esk_make_vector(n, NIL);
  esk_vector *sv = esk_ptr(swaps);
  int64_t i = 0;
  for (esk_value p = params, v = vals; p.tag == ESK_T_PAIR; p = cdr(p), v = cdr(v), i++) {
    esk_value param = car(p), value = car(v);
    if (param.tag != ESK_T_CLOSURE || ((esk_closure *)esk_ptr(param))->code != parameter_code)
      esk_error_type(loc, "parameterize", "parameter", param);
    esk_value conv = ((esk_closure *)esk_ptr(param))->free[1];
    if (esk_is_true(conv)) value = esk_call(loc, conv, 1, &value);
    esk_value s = esk_make_closure(swap_code, "parameterize", 2);
    ((esk_closure *)esk_ptr(s))->free[0] = param;
    ((esk_closure *)esk_ptr(s))->free[1] = value;
    sv->items[i] = s;
  }
  /* One thunk swaps every value in (before) and back out (after). */
  esk_value swap = n == 1 ? sv->items[0] : esk_make_closure(swap_all_code, "parameterize", 1);
  if (n != 1) ((esk_closure *)esk_ptr(swap))->free[0] = swaps;
  esk_value args[3] = {swap, thunk, swap};
  return esk_prim_dynamic_wind(loc, 3, args);
}

/* ---- promises --------------------------------------------------------------------------------- */

static esk_value new_promise(int64_t done, int64_t is_delay, esk_value value) {
  esk_promise *p = esk_alloc(sizeof *p);
  p->h.type = ESK_T_PROMISE;
  p->box = esk_alloc(sizeof *p->box);
  p->box->done = done;
  p->box->is_delay = is_delay;
  p->box->value = value;
  return heap(ESK_T_PROMISE, p);
}

esk_value esk_prim_delay(const char *loc, esk_value thunk) {
  (void)loc;
  return new_promise(0, 1, thunk);
}
esk_value esk_prim_delay_force(const char *loc, esk_value thunk) {
  (void)loc;
  return new_promise(0, 0, thunk);
}
esk_value esk_prim_make_promise(const char *loc, esk_value v) {
  (void)loc;
  return v.tag == ESK_T_PROMISE ? v : new_promise(1, 1, v);
}
esk_value esk_prim_is_promise(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_PROMISE);
}

/* R7RS force: iterative, so a chain of delay-force runs in constant stack. */
esk_value esk_prim_force(const char *loc, esk_value v) {
  if (v.tag != ESK_T_PROMISE) return v;
  esk_promise *p = esk_ptr(v);
  for (;;) {
    esk_promise_box *b = p->box;
    if (b->done) return b->value;
    esk_value r = esk_call(loc, b->value, 0, NULL);
    b = p->box;
    if (b->done) continue;  /* forced again while running the thunk: the first result wins */
    if (b->is_delay || r.tag != ESK_T_PROMISE) {
      b->done = 1;
      b->value = r;
      return r;
    }
    esk_promise *q = esk_ptr(r);
    b->done = q->box->done;
    b->is_delay = q->box->is_delay;
    b->value = q->box->value;
    q->box = b;
  }
}

/* ---- records ---------------------------------------------------------------------------------- */

esk_value esk_prim_make_rtd(const char *loc, esk_value name, esk_value fields) {
  (void)loc;
  esk_record *r = new_record(NULL, 2);
  r->fields[0] = name;
  r->fields[1] = fields;
  return heap(ESK_T_RECORD, r);
}

static int is_rtd(esk_value v) {
  return v.tag == ESK_T_RECORD && ((esk_record *)esk_ptr(v))->rtd == NULL;
}

/* (%record rtd field...) */
esk_value esk_prim_record(const char *loc, int64_t argc, esk_value *argv) {
  if (!is_rtd(argv[0])) esk_error_type(loc, "record constructor", "record type", argv[0]);
  esk_record *r = new_record(esk_ptr(argv[0]), argc - 1);
  for (int64_t i = 1; i < argc; i++) r->fields[i - 1] = argv[i];
  return heap(ESK_T_RECORD, r);
}

esk_value esk_prim_is_record_of(const char *loc, esk_value obj, esk_value rtd) {
  (void)loc;
  return esk_bool(obj.tag == ESK_T_RECORD && ((esk_record *)esk_ptr(obj))->rtd == esk_ptr(rtd));
}

static const char *symbol_text(esk_value s) {
  if (s.tag == ESK_T_SYMBOL) return ((esk_symbol *)esk_ptr(s))->name->data;
  if (s.tag == ESK_T_STRING) return ((esk_string *)esk_ptr(s))->data;
  return "record";
}

/* The type's name without the <angle brackets> of the common naming style. */
static void type_name(esk_record *rtd, char *buf, size_t size) {
  const char *n = symbol_text(rtd->fields[0]);
  size_t len = strlen(n);
  if (len > 2 && n[0] == '<' && n[len - 1] == '>') {
    n++;
    len -= 2;
  }
  if (len >= size) len = size - 1;
  memcpy(buf, n, len);
  buf[len] = '\0';
}

static esk_record *check_record(const char *loc, esk_value obj, esk_value rtd, esk_value who) {
  if (obj.tag != ESK_T_RECORD || ((esk_record *)esk_ptr(obj))->rtd != esk_ptr(rtd)) {
    /* accessors are procedures of their own: report where the accessor was called */
    if (esk_callsite) loc = esk_callsite;
    char name[256];
    type_name(esk_ptr(rtd), name, sizeof name);
    esk_error_type(loc, symbol_text(who), name, obj);
  }
  return esk_ptr(obj);
}

/* (%record-ref obj rtd index 'accessor-name) */
esk_value esk_prim_record_ref(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  return check_record(loc, argv[0], argv[1], argv[3])->fields[argv[2].payload];
}

/* (%record-set! obj rtd index value 'modifier-name) */
esk_value esk_prim_record_set(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  check_record(loc, argv[0], argv[1], argv[4])->fields[argv[2].payload] = argv[3];
  return esk_void();
}

int esk_print_record(esk_value v, FILE *out, int write) {
  if (v.tag != ESK_T_RECORD) return 0;
  esk_record *r = esk_ptr(v);
  char name[256];
  if (r->rtd == &values_rtd) {
    for (int64_t i = 0; i < r->n; i++) {
      if (i) putc(' ', out);
      (write ? esk_write : esk_display)(r->fields[i], out);
    }
  } else if (r->rtd == NULL) {
    type_name(r, name, sizeof name);
    fprintf(out, "#<record-type %s>", name);
  } else {
    type_name(r->rtd, name, sizeof name);
    fprintf(out, "#<record %s>", name);
  }
  return 1;
}

/* ---- case-lambda ------------------------------------------------------------------------------ */

/* free[0]: vector of arities (min, max; max -1 for a rest parameter), free[1..]: clauses. */
static esk_value case_lambda_code(esk_closure *self, int64_t argc, esk_value *argv) {
  esk_vector *ar = esk_ptr(self->free[0]);
  for (int64_t i = 0; 2 * i + 1 < ar->len; i++) {
    int64_t lo = ar->items[2 * i].payload, hi = ar->items[2 * i + 1].payload;
    if (argc >= lo && (hi < 0 || argc <= hi)) {
      esk_closure *c = esk_ptr(self->free[1 + i]);
      return c->code(c, argc, argv);
    }
  }
  esk_error_arity(esk_callsite, self, argc);
}

/* (%case-lambda '(min max ...) clause...) */
esk_value esk_prim_case_lambda(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc;
  esk_value arities = NIL;
  int64_t n = 0;
  for (esk_value p = argv[0]; p.tag == ESK_T_PAIR; p = cdr(p)) n++;
  arities = esk_make_vector(n, NIL);
  esk_vector *av = esk_ptr(arities);
  int64_t i = 0;
  for (esk_value p = argv[0]; p.tag == ESK_T_PAIR; p = cdr(p)) av->items[i++] = car(p);
  esk_value f = esk_make_closure(case_lambda_code, NULL, argc);
  esk_closure *c = esk_ptr(f);
  c->free[0] = arities;
  for (int64_t j = 1; j < argc; j++) c->free[j] = argv[j];
  return f;
}
