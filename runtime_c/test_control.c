/* Self-test of control.c from C (built and run by tests/py/test_control.py): guard restores
 * the arena region stack and the dynamic-wind list, continuations escape, error objects carry
 * the runtime error's text. Prints "N checks, F failures". */
#include <stdio.h>
#include <string.h>

#include "eshkol_rt.h"

static int checks, failures;
#define CHECK(c)                                                      \
  do {                                                                \
    checks++;                                                         \
    if (!(c)) {                                                       \
      failures++;                                                     \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);             \
    }                                                                 \
  } while (0)

static int after_runs;

static esk_value enter_regions_and_fail(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)self, (void)argc, (void)argv;
  esk_region_enter(0);
  esk_region_enter(0);
  CHECK(esk_region_current() != NULL);
  esk_value five = esk_fixnum(5);
  esk_prim_car("t:1:1", five); /* raises "car: expected pair, got 5" */
  return esk_void();
}

static esk_value handler(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)self;
  CHECK(argc == 2);
  CHECK(esk_region_current() == NULL);
  esk_value e = argv[0];
  CHECK(e.tag == ESK_T_ERROR);
  if (e.tag == ESK_T_ERROR) {
    esk_error_obj *o = esk_ptr(e);
    CHECK(o->message.tag == ESK_T_STRING &&
          strcmp(((esk_string *)esk_ptr(o->message))->data, "car: expected pair, got 5") == 0);
    CHECK(o->loc && strcmp(o->loc, "t:1:1") == 0);
  }
  return esk_fixnum(99);
}

static esk_value nothing(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)self, (void)argc, (void)argv;
  return esk_void();
}

static esk_value count_after(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)self, (void)argc, (void)argv;
  after_runs++;
  return esk_void();
}

static esk_value escape_thunk(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)argc, (void)argv;
  esk_value k = self->free[0];
  esk_value v = esk_fixnum(7);
  return esk_call("t:2:1", k, 1, &v);
}

/* (call/cc (lambda (k) (dynamic-wind nothing (lambda () (k 7)) count-after))) */
static esk_value receiver(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)self, (void)argc;
  esk_value thunk = esk_make_closure(escape_thunk, "escape", 1);
  ((esk_closure *)esk_ptr(thunk))->free[0] = argv[0];
  esk_value args[3] = {esk_make_closure(nothing, "before", 0), thunk,
                       esk_make_closure(count_after, "after", 0)};
  return esk_prim_dynamic_wind("t:3:1", 3, args);
}

static void entry(void) {
  /* guard: the handler runs with the regions entered in the body left */
  esk_value r = esk_prim_with_guard("t:0:1", esk_make_closure(enter_regions_and_fail, "body", 0),
                                    esk_make_closure(handler, "handler", 0));
  CHECK(r.tag == ESK_T_FIXNUM && r.payload == 99);
  CHECK(esk_region_current() == NULL);

  /* an escape runs the after thunk of the exited dynamic-wind */
  r = esk_prim_call_cc("t:4:1", esk_make_closure(receiver, "receiver", 0));
  CHECK(r.tag == ESK_T_FIXNUM && r.payload == 7);
  CHECK(after_runs == 1);

  /* multiple values */
  esk_value vs[3] = {esk_fixnum(1), esk_fixnum(2), esk_fixnum(3)};
  esk_value mv = esk_make_values(3, vs);
  esk_value args[3] = {mv, esk_fixnum(2), esk_fixnum(3)};
  r = esk_prim_mv_ref("t:5:1", 3, args);
  CHECK(r.tag == ESK_T_FIXNUM && r.payload == 3);
  CHECK(esk_make_values(1, vs).payload == 1);
  r = esk_prim_mv_rest("t:5:1", mv, esk_fixnum(1));
  CHECK(r.tag == ESK_T_PAIR);

  /* records print through the hook */
  esk_value rtd = esk_prim_make_rtd("t:6:1", esk_intern("<point>", 7), esk_nil());
  esk_value rargs[1] = {rtd};
  esk_value rec = esk_prim_record("t:6:1", 1, rargs);
  char buf[64] = {0};
  FILE *f = fmemopen(buf, sizeof buf - 1, "w");
  CHECK(esk_print_record(rec, f, 0) == 1);
  fclose(f);
  CHECK(strcmp(buf, "#<record point>") == 0);
  CHECK(esk_print_record(esk_fixnum(1), stdout, 0) == 0);
}

int main(int argc, char **argv) {
  esk_init(argc, argv);
  esk_run(entry);
  printf("%d checks, %d failures\n", checks, failures);
  return failures != 0;
}
