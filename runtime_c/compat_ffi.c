/* Eshkol v1.x forms that need the runtime: `extern` (calling C functions found with dlsym),
 * `extern-var`, keyword arguments and `with-region`.
 *
 * extern: the procedure's closure holds the C name, the function pointer (looked up on the
 * first call, so declaring a function that is never called costs nothing), the return type
 * and the parameter types.  The call itself needs no libffi: on the x86-64 System V and
 * AArch64 ABIs, integer/pointer arguments and floating-point arguments are assigned to two
 * separate register files in order, so calling through the prototype
 *     R f(int64 x6, ...)  with 8 doubles after the six integers
 * puts every argument where the callee looks for it (also for variadic callees: x86-64 gets
 * %al = 8, an upper bound, from the `...`).  Up to 6 integer-class and 8 floating-point
 * arguments are supported; a float argument travels in the low 32 bits of its register. */
#define _GNU_SOURCE
#include "eshkol_rt.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

enum { FT_VOID, FT_INT64, FT_INT32, FT_UINT32, FT_INT16, FT_INT8, FT_UINT8, FT_CHAR, FT_BOOL,
       FT_DOUBLE, FT_FLOAT, FT_STRING, FT_POINTER, FT_UNKNOWN };

static int ffi_type_code(esk_value sym) {
  static const char *names[] = {"void", "int64", "int32", "uint32", "int16", "int8", "uint8",
                                "char", "bool", "double", "float", "string", "pointer"};
  if (sym.tag != ESK_T_SYMBOL) return FT_UNKNOWN;
  const char *n = ((esk_symbol *)esk_ptr(sym))->name->data;
  for (int i = 0; i < FT_UNKNOWN; i++)
    if (strcmp(n, names[i]) == 0) return i;
  return FT_UNKNOWN;
}

typedef int64_t (*ffi_int_fn)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, ...);
typedef double (*ffi_dbl_fn)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, ...);

static void *ffi_lookup(const char *loc, const char *name) {
  void *p = dlsym(RTLD_DEFAULT, name);
  if (!p) esk_errorf(loc, "extern: C function '%s' not found in the running program", name);
  return p;
}

static double num_arg(const char *loc, const char *who, esk_value v) {
  if (v.tag == ESK_T_FIXNUM) return (double)v.payload;
  if (v.tag == ESK_T_FLONUM) return esk_flonum_value(v);
  if (v.tag == ESK_T_BIGNUM || v.tag == ESK_T_RATIONAL) return esk_number_to_double(v);
  esk_error_type(loc, who, "number", v);
}

static int64_t int_arg(const char *loc, const char *who, esk_value v) {
  switch (v.tag) {
    case ESK_T_FIXNUM: return v.payload;
    case ESK_T_FLONUM: return (int64_t)esk_flonum_value(v);
    case ESK_T_BOOL: return v.payload;
    case ESK_T_CHAR: return v.payload;
    case ESK_T_NIL: return 0;
    default: esk_error_type(loc, who, "integer", v);
  }
}

/* free[0] name (string), free[1] pointer (fixnum, 0 = not looked up), free[2] return type
 * (fixnum code), free[3] parameter codes (vector of fixnums), free[4] variadic (bool). */
static esk_value ffi_code(esk_closure *self, int64_t argc, esk_value *argv) {
  const char *loc = esk_callsite;
  esk_value args[ESK_MAX_ARGS > 64 ? 64 : ESK_MAX_ARGS];
  if (argc > 64) esk_errorf(loc, "extern: too many arguments (%lld)", (long long)argc);
  memcpy(args, argv, (size_t)argc * sizeof(esk_value));
  const char *name = ((esk_string *)esk_ptr(self->free[0]))->data;
  esk_vector *params = esk_ptr(self->free[3]);
  int variadic = (int)self->free[4].payload;
  if (argc < params->len || (!variadic && argc > params->len))
    esk_error_arity_range(loc, self, argc, params->len, variadic ? -1 : params->len);
  if (self->free[1].payload == 0) self->free[1] = esk_fixnum((int64_t)(intptr_t)ffi_lookup(loc, name));
  void *fn = (void *)(intptr_t)self->free[1].payload;
  int64_t iregs[6] = {0};
  double dregs[8] = {0};
  int ni = 0, nd = 0;
  for (int64_t i = 0; i < argc; i++) {
    int t = i < params->len ? (int)params->items[i].payload : FT_UNKNOWN;
    esk_value v = args[i];
    if (t == FT_UNKNOWN) /* a variadic argument: by its Scheme type */
      t = v.tag == ESK_T_FLONUM ? FT_DOUBLE : v.tag == ESK_T_STRING ? FT_STRING : FT_INT64;
    if (t == FT_DOUBLE || t == FT_FLOAT) {
      if (nd == 8) esk_errorf(loc, "extern %s: more than 8 floating-point arguments", name);
      double d = num_arg(loc, name, v);
      if (t == FT_FLOAT) {
        union { double d; uint64_t u; } u = {.u = 0};
        union { float f; uint32_t u; } f = {.f = (float)d};
        u.u = f.u;
        d = u.d;
      }
      dregs[nd++] = d;
      continue;
    }
    if (ni == 6) esk_errorf(loc, "extern %s: more than 6 integer or pointer arguments", name);
    int64_t x;
    if (t == FT_STRING || (t == FT_POINTER && v.tag == ESK_T_STRING)) {
      if (v.tag != ESK_T_STRING) esk_error_type(loc, name, "string", v);
      x = (int64_t)(intptr_t)((esk_string *)esk_ptr(v))->data;
    } else if (t == FT_POINTER && v.tag == ESK_T_BYTEVECTOR) {
      x = (int64_t)(intptr_t)((esk_bytevector *)esk_ptr(v))->data;
    } else {
      x = int_arg(loc, name, v);
    }
    iregs[ni++] = x;
  }
  int ret = (int)self->free[2].payload;
  fflush(stdout);
  if (ret == FT_DOUBLE || ret == FT_FLOAT) {
    double r = ((ffi_dbl_fn)fn)(iregs[0], iregs[1], iregs[2], iregs[3], iregs[4], iregs[5],
                                dregs[0], dregs[1], dregs[2], dregs[3], dregs[4], dregs[5],
                                dregs[6], dregs[7]);
    if (ret == FT_FLOAT) {
      union { double d; uint64_t u; } u = {.d = r};
      union { float f; uint32_t u; } f = {.u = (uint32_t)u.u};
      r = f.f;
    }
    return esk_flonum(r);
  }
  int64_t r = ((ffi_int_fn)fn)(iregs[0], iregs[1], iregs[2], iregs[3], iregs[4], iregs[5],
                               dregs[0], dregs[1], dregs[2], dregs[3], dregs[4], dregs[5],
                               dregs[6], dregs[7]);
  switch (ret) {
    case FT_VOID: return esk_void();
    case FT_INT32: return esk_fixnum((int32_t)r);
    case FT_UINT32: return esk_fixnum((uint32_t)r);
    case FT_INT16: return esk_fixnum((int16_t)r);
    case FT_INT8: return esk_fixnum((int8_t)r);
    case FT_UINT8: return esk_fixnum((uint8_t)r);
    case FT_CHAR: return esk_char((unsigned char)r);
    case FT_BOOL: return esk_bool((r & 0xff) != 0);
    case FT_STRING: return r ? esk_cstring((const char *)(intptr_t)r) : (esk_value){ESK_T_BOOL, 0};
    default: return esk_fixnum(r);
  }
}

/* (%ffi-proc "cname" 'ret '(param ...) variadic?) */
esk_value esk_prim_ffi_proc(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  if (argv[0].tag != ESK_T_STRING) esk_error_type(loc, "extern", "string", argv[0]);
  int64_t n = 0;
  for (esk_value p = argv[2]; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) n++;
  esk_value params = esk_make_vector(n, esk_fixnum(0));
  esk_vector *pv = esk_ptr(params);
  int64_t i = 0;
  for (esk_value p = argv[2]; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) {
    int t = ffi_type_code(((esk_pair *)esk_ptr(p))->car);
    if (t == FT_UNKNOWN || t == FT_VOID) esk_error_with(loc, "extern: bad parameter type", ((esk_pair *)esk_ptr(p))->car);
    pv->items[i++] = esk_fixnum(t);
  }
  int ret = ffi_type_code(argv[1]);
  if (ret == FT_UNKNOWN) esk_error_with(loc, "extern: bad return type", argv[1]);
  const char *name = ((esk_string *)esk_ptr(argv[0]))->data;
  esk_value f = esk_make_closure(ffi_code, strdup(name), 5);
  esk_closure *c = esk_ptr(f);
  c->free[0] = argv[0];
  c->free[1] = esk_fixnum(0);
  c->free[2] = esk_fixnum(ret);
  c->free[3] = params;
  c->free[4] = esk_bool(esk_is_true(argv[3]));
  return f;
}

/* (%ffi-var "cname" 'type): the current value of a C global variable. */
esk_value esk_prim_ffi_var(const char *loc, esk_value name, esk_value type) {
  if (name.tag != ESK_T_STRING) esk_error_type(loc, "extern-var", "string", name);
  void *p = dlsym(RTLD_DEFAULT, ((esk_string *)esk_ptr(name))->data);
  if (!p) esk_errorf(loc, "extern-var: C variable '%s' not found", ((esk_string *)esk_ptr(name))->data);
  switch (ffi_type_code(type)) {
    case FT_DOUBLE: return esk_flonum(*(double *)p);
    case FT_FLOAT: return esk_flonum(*(float *)p);
    case FT_INT32: return esk_fixnum(*(int32_t *)p);
    case FT_UINT32: return esk_fixnum(*(uint32_t *)p);
    case FT_INT16: return esk_fixnum(*(int16_t *)p);
    case FT_INT8: case FT_CHAR: return esk_fixnum(*(int8_t *)p);
    case FT_UINT8: return esk_fixnum(*(uint8_t *)p);
    case FT_BOOL: return esk_bool(*(unsigned char *)p);
    case FT_STRING: return *(char **)p ? esk_cstring(*(char **)p) : esk_bool(0);
    default: return esk_fixnum(*(int64_t *)p);
  }
}

/* (%kw-parse args npositional '(#:k ...)): a vector of the positional arguments followed by
 * the keyword arguments in declaration order; each keyword must be given exactly once. */
esk_value esk_prim_kw_parse(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  int64_t npos = argv[1].payload, nkw = 0;
  for (esk_value p = argv[2]; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) nkw++;
  esk_value out = esk_make_vector(npos + nkw, (esk_value){ESK_T_UNBOUND, 0});
  esk_vector *v = esk_ptr(out);
  int64_t i = 0;
  esk_value p = argv[0];
  for (; i < npos && p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) {
    esk_value x = ((esk_pair *)esk_ptr(p))->car;
    if (x.tag == ESK_T_SYMBOL && ((esk_symbol *)esk_ptr(x))->name->data[0] == '#' &&
        ((esk_symbol *)esk_ptr(x))->name->data[1] == ':')
      break;
    v->items[i++] = x;
  }
  if (i < npos) esk_errorf(loc, "expected %lld positional argument(s) before the keyword arguments",
                           (long long)npos);
  while (p.tag == ESK_T_PAIR) {
    esk_value k = ((esk_pair *)esk_ptr(p))->car;
    esk_value rest = ((esk_pair *)esk_ptr(p))->cdr;
    if (rest.tag != ESK_T_PAIR) esk_error_with(loc, "keyword argument without a value", k);
    int64_t j = 0;
    esk_value q = argv[2];
    for (; q.tag == ESK_T_PAIR; q = ((esk_pair *)esk_ptr(q))->cdr, j++)
      if (((esk_pair *)esk_ptr(q))->car.payload == k.payload && k.tag == ESK_T_SYMBOL) break;
    if (q.tag != ESK_T_PAIR) esk_error_with(loc, "unknown keyword argument", k);
    v->items[npos + j] = ((esk_pair *)esk_ptr(rest))->car;
    p = ((esk_pair *)esk_ptr(rest))->cdr;
  }
  int64_t j = 0;
  for (esk_value q = argv[2]; q.tag == ESK_T_PAIR; q = ((esk_pair *)esk_ptr(q))->cdr, j++)
    if (v->items[npos + j].tag == ESK_T_UNBOUND)
      esk_error_with(loc, "missing keyword argument", ((esk_pair *)esk_ptr(q))->car);
  return out;
}

/* (%with-region size-hint thunk): the thunk's value, run inside a fresh arena region (errors
 * and continuations that escape leave the region too: control.c unwinds regions). */
esk_value esk_prim_with_region(const char *loc, esk_value size, esk_value thunk) {
  size_t hint = size.tag == ESK_T_FIXNUM && size.payload > 0 ? (size_t)size.payload : 0;
  esk_region_enter(hint);
  esk_value r = esk_call(loc, thunk, 0, NULL);
  esk_region_exit();
  return r;
}
