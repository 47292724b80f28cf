/* The calculus procedures of LANGUAGE.md ("Calculus") and COMPAT.md on the runtime AD:
 * derivative / D, derivative-n, taylor, gradient, value-and-grad, jacobian, hessian,
 * laplacian, divergence, curl, directional-derivative, checkpoint-segment.
 *
 * Forward mode (derivative, jacobian columns, divergence, directional-derivative, taylor):
 * call f on dual(tag, x, seed) and read the e_tag coefficient of the result.  Reverse mode
 * (gradient, value-and-grad): call f on an input node of a fresh tape and run the tape back.
 * Second order (hessian, laplacian): forward over reverse, a gradient call per direction on a
 * dual point.  Every procedure works on AD values too, so they nest to any depth. */
#include <stdlib.h>
#include <string.h>

#include "ad.h"

static inline int is_tensor(esk_value v) { return v.tag == ESK_T_TENSOR; }
static inline int is_real(esk_value v) {
  return v.tag == ESK_T_FIXNUM || v.tag == ESK_T_FLONUM || v.tag == ESK_T_BIGNUM ||
         v.tag == ESK_T_RATIONAL;
}
static int is_exact_point(esk_value x) {
  esk_value p = ad_plain(x);
  return p.tag == ESK_T_FIXNUM || p.tag == ESK_T_BIGNUM || p.tag == ESK_T_RATIONAL;
}
static esk_value one_like(esk_value x) { return is_exact_point(x) ? esk_fixnum(1) : esk_flonum(1.0); }

static void need_procedure(const char *loc, const char *who, esk_value f) {
  if (f.tag != ESK_T_CLOSURE) esk_error_type(loc, who, "procedure", f);
}

/* ---- one-argument forms: (derivative f) etc. return a procedure --------------------------- */

typedef esk_value (*form_fn)(const char *loc, int64_t argc, esk_value *argv);

static esk_value curried_code(esk_closure *self, int64_t argc, esk_value *argv) {
  esk_value *args = esk_alloc((size_t)(argc + 1) * sizeof *args);
  args[0] = self->free[0];
  memcpy(args + 1, argv, (size_t)argc * sizeof *args);
  form_fn fn = (form_fn)(intptr_t)self->free[1].payload;
  if (argc < 1) esk_error_arity(esk_callsite, self, argc);
  return fn(esk_callsite, argc + 1, args);
}

static esk_value curry(const char *name, form_fn fn, esk_value f) {
  esk_value c = esk_make_closure(curried_code, name, 2);
  esk_closure *cl = esk_ptr(c);
  cl->free[0] = f;
  cl->free[1] = esk_fixnum((int64_t)(intptr_t)fn);
  return c;
}

/* ---- forward mode -------------------------------------------------------------------------- */

/* The e_tag coefficient of f's result r, as a concrete value: lists and vectors of results
 * componentwise, a zero of the right shape (exact when `exact`) when r does not depend on it. */
static esk_value tangent_out(const char *loc, esk_value r, int64_t tag, int exact) {
  if (r.tag == ESK_T_PAIR) {
    esk_value head = esk_nil(), *tail = &head;
    for (; r.tag == ESK_T_PAIR; r = ((esk_pair *)esk_ptr(r))->cdr) {
      *tail = esk_cons(tangent_out(loc, ((esk_pair *)esk_ptr(r))->car, tag, exact), esk_nil());
      tail = &((esk_pair *)esk_ptr(*tail))->cdr;
    }
    return head;
  }
  if (r.tag == ESK_T_VECTOR) {
    esk_vector *v = esk_ptr(r);
    esk_value out = esk_make_vector(v->len, esk_nil());
    for (int64_t i = 0; i < v->len; i++)
      ((esk_vector *)esk_ptr(out))->items[i] = tangent_out(loc, v->items[i], tag, exact);
    return out;
  }
  esk_value d = ad_tangent(r, tag);
  if (!ad_is_zero(d)) return d;
  esk_value p = ad_plain(r);
  if (!is_real(p) && !is_tensor(p))
    esk_error_type(loc, "derivative", "function returning numbers or tensors", p);
  return ad_zeros_like(p, exact);
}

/* The derivative of f at x along direction t (a jvp). */
static esk_value jvp(const char *loc, esk_value f, esk_value x, esk_value t, int exact) {
  int64_t tag = ad_new_tag();
  esk_value arg = ad_make_dual(tag, x, t);
  esk_value r = esk_call(loc, f, 1, &arg);
  return tangent_out(loc, r, tag, exact);
}

/* The seed direction of a point: 1 for numbers, ones for a tensor (an elementwise f then has
 * its elementwise derivative). */
static esk_value seed_for(esk_value x) {
  esk_value p = ad_plain(x);
  if (!is_tensor(p)) return one_like(x);
  return esk_prim_add2(NULL, ad_zeros_like(p, 0), esk_flonum(1.0));
}

esk_value esk_prim_derivative(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "derivative", argv[0]);
  if (argc == 1) return curry("derivative", esk_prim_derivative, argv[0]);
  esk_value x = ad_as_point(loc, "derivative", argv[1]);
  return jvp(loc, argv[0], x, seed_for(x), is_exact_point(x));
}

/* Nested duals x + e1 + ... + ek (tags ascending outward); f's result carries every
 * derivative up to order k: the e1..ej coefficient with e(j+1)..ek dropped is f^(j)(x).
 * The cost is 2^k times f's. */
static esk_value nested_eval(const char *loc, esk_value f, esk_value x, int64_t k, int64_t *tags) {
  esk_value X = x, s = one_like(x);
  for (int64_t i = 0; i < k; i++) {
    tags[i] = ad_new_tag();
    X = ad_make_dual(tags[i], X, s);
  }
  return esk_call(loc, f, 1, &X);
}

static int64_t order_arg(const char *loc, const char *who, esk_value k) {
  if (k.tag != ESK_T_FIXNUM || k.payload < 0 || k.payload > 30)
    esk_error_type(loc, who, "order (exact integer 0..30)", k);
  return k.payload;
}

/* The e1..ej coefficient of r (tags[0..k)), with the later tags dropped. */
static esk_value coefficient(const char *loc, esk_value r, const int64_t *tags, int64_t k,
                             int64_t j, int exact) {
  for (int64_t i = k - 1; i >= j; i--) r = ad_primal_at(r, tags[i]);
  for (int64_t i = j - 1; i >= 0; i--) {
    esk_value d = ad_tangent(r, tags[i]);
    if (ad_is_zero(d)) return ad_zeros_like(r, exact);
    r = d;
  }
  (void)loc;
  return r;
}

/* (derivative-n f x k) */
esk_value esk_prim_derivative_n(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  need_procedure(loc, "derivative-n", argv[0]);
  esk_value x = ad_as_point(loc, "derivative-n", argv[1]);
  int64_t k = order_arg(loc, "derivative-n", argv[2]);
  int64_t tags[31];
  esk_value r = nested_eval(loc, argv[0], x, k, tags);
  return coefficient(loc, r, tags, k, k, is_exact_point(x));
}

/* (taylor f x k): the list c0 .. ck, cj = f^(j)(x) / j! */
esk_value esk_prim_taylor(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  need_procedure(loc, "taylor", argv[0]);
  esk_value x = ad_as_point(loc, "taylor", argv[1]);
  int64_t k = order_arg(loc, "taylor", argv[2]);
  int64_t tags[31];
  int exact = is_exact_point(x);
  esk_value r = nested_eval(loc, argv[0], x, k, tags);
  esk_value out = esk_nil(), fact = esk_fixnum(1);
  esk_value *cs = esk_alloc((size_t)(k + 1) * sizeof *cs);
  for (int64_t j = 0; j <= k; j++) {
    if (j > 0) fact = esk_prim_mul2(loc, fact, esk_fixnum(j));
    cs[j] = esk_prim_div2(loc, coefficient(loc, r, tags, k, j, exact), fact);
  }
  for (int64_t j = k; j >= 0; j--) out = esk_cons(cs[j], out);
  return out;
}

/* ---- reverse mode ----------------------------------------------------------------------------- */

static _Noreturn void not_scalar(const char *loc, const char *who, esk_value got) {
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (f) {
    esk_write(got, f);
    fclose(f);
  }
  char buf[512];
  snprintf(buf, sizeof buf, "%s: function must return a scalar, got %.400s", who, text ? text : "?");
  free(text);
  esk_errorf(loc, "%s", buf);
}

/* f's value and gradient at point x (already a point). */
static esk_value grad_core(const char *loc, const char *who, esk_value f, esk_value x,
                           esk_value *value) {
  esk_tape *t = ad_tape_begin();
  esk_value in = ad_tape_input(t, x);
  esk_value r = esk_call(loc, f, 1, &in);
  esk_value p = ad_plain(r);
  if (!is_real(p) && !(is_tensor(p) && ((esk_tensor *)esk_ptr(p))->size == 1)) {
    ad_tape_end(t);
    not_scalar(loc, who, p);
  }
  esk_value g = AD_ZERO;
  esk_value v = r;
  if (r.tag == ESK_T_ADNODE && ad_node_of(r)->tape == t) {
    esk_adnode *out = ad_node_of(r);
    v = out->value;
    esk_value seed = is_tensor(p) ? esk_prim_add2(loc, ad_zeros_like(p, 0), esk_flonum(1.0))
                                  : one_like(r);
    ad_backward(loc, t, out, seed, 0);
    g = ad_node_of(in)->adj;
  }
  ad_tape_end(t);
  if (value) *value = v;
  if (ad_is_zero(g)) g = ad_zeros_like(x, is_exact_point(x) && is_exact_point(r));
  return g;
}

/* The point of (gradient f x) / (gradient f x y ...): extra arguments are packed into one
 * vector point (COMPAT.md). */
static esk_value point_args(const char *loc, const char *who, int64_t argc, esk_value *argv) {
  if (argc == 2) return ad_as_point(loc, who, argv[1]);
  return ad_as_point(loc, who, esk_list_from_args(argc - 1, argv + 1));
}

esk_value esk_prim_gradient(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "gradient", argv[0]);
  if (argc == 1) return curry("gradient", esk_prim_gradient, argv[0]);
  return grad_core(loc, "gradient", argv[0], point_args(loc, "gradient", argc, argv), NULL);
}

esk_value esk_prim_value_and_grad(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "value-and-grad", argv[0]);
  if (argc == 1) return curry("value-and-grad", esk_prim_value_and_grad, argv[0]);
  esk_value vg[2];
  vg[1] = grad_core(loc, "value-and-grad", argv[0], point_args(loc, "value-and-grad", argc, argv), &vg[0]);
  return esk_make_values(2, vg);
}

/* ---- Jacobians and second order ------------------------------------------------------------ */

/* Direction j of point x: the one-hot tensor, or 1 for a number. */
static esk_value basis(esk_value x, int64_t j) {
  return is_tensor(ad_plain(x)) ? ad_onehot_like(x, j) : one_like(x);
}

/* F's result as a number or tensor (a list or vector of numbers becomes a tensor). */
static esk_value as_result(const char *loc, const char *who, esk_value r) {
  if (r.tag == ESK_T_PAIR || r.tag == ESK_T_VECTOR) return ad_as_point(loc, who, r);
  return r;
}

/* Column j of the Jacobian: dF/dx_j. */
static esk_value jac_column(const char *loc, const char *who, esk_value F, esk_value x, int64_t j) {
  int64_t tag = ad_new_tag();
  esk_value arg = ad_make_dual(tag, x, basis(x, j));
  esk_value r = as_result(loc, who, esk_call(loc, F, 1, &arg));
  return tangent_out(loc, r, tag, is_exact_point(x));
}

/* Column j of the Hessian: the derivative of the gradient along direction j. */
static esk_value hess_column(const char *loc, esk_value f, esk_value x, int64_t j) {
  int64_t tag = ad_new_tag();
  esk_value g = grad_core(loc, "hessian", f, ad_make_dual(tag, x, basis(x, j)), NULL);
  return tangent_out(loc, g, tag, is_exact_point(x));
}

/* n columns of m elements each (m from the first) as the m x n matrix. */
static esk_value columns_to_matrix(const char *loc, int64_t n, esk_value *cols) {
  esk_value s = ad_stack(loc, n, cols);                /* n x (column shape) */
  int64_t m = ad_size(cols[0]);
  if (ad_is_zero(s)) /* every column an exact 0 */
    return esk_tensor_value(esk_tensor_zeros(ESK_DT_F64, 2, (int64_t[]){m, n}));
  int64_t nm[2] = {n, m};
  return ad_transpose(loc, ad_reshape(loc, s, 2, nm));
}

esk_value esk_prim_jacobian(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "jacobian", argv[0]);
  if (argc == 1) return curry("jacobian", esk_prim_jacobian, argv[0]);
  esk_value x = ad_as_point(loc, "jacobian", argv[1]);
  int64_t n = ad_size(x);
  esk_value *cols = esk_alloc((size_t)(n ? n : 1) * sizeof *cols);
  for (int64_t j = 0; j < n; j++) cols[j] = jac_column(loc, "jacobian", argv[0], x, j);
  if (n == 0) return esk_tensor_value(esk_tensor_zeros(ESK_DT_F64, 2, (int64_t[]){0, 0}));
  return columns_to_matrix(loc, n, cols);
}

esk_value esk_prim_hessian(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "hessian", argv[0]);
  if (argc == 1) return curry("hessian", esk_prim_hessian, argv[0]);
  esk_value x = ad_as_point(loc, "hessian", argv[1]);
  int64_t n = ad_size(x);
  esk_value *cols = esk_alloc((size_t)(n ? n : 1) * sizeof *cols);
  for (int64_t j = 0; j < n; j++) cols[j] = hess_column(loc, argv[0], x, j);
  if (n == 0) return esk_tensor_value(esk_tensor_zeros(ESK_DT_F64, 2, (int64_t[]){0, 0}));
  return columns_to_matrix(loc, n, cols);
}

/* sum_j dF_j/dx_j, or sum_j d2f/dx_j2 (hessian columns' diagonal). */
static esk_value diagonal_sum(const char *loc, const char *who, esk_value F, esk_value x, int second) {
  int64_t n = ad_size(x);
  esk_value s = AD_ZERO;
  for (int64_t j = 0; j < n; j++) {
    esk_value c = second ? hess_column(loc, F, x, j) : jac_column(loc, who, F, x, j);
    if (ad_size(c) != n)
      esk_errorf(loc, "%s: the function must map R^%lld to R^%lld", who, (long long)n, (long long)n);
    s = ad_add(loc, s, is_tensor(ad_plain(c)) ? ad_flat_ref(loc, c, j) : c);
  }
  return ad_is_zero(s) ? ad_zeros_like(esk_flonum(0), is_exact_point(x)) : s;
}

esk_value esk_prim_laplacian(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "laplacian", argv[0]);
  if (argc == 1) return curry("laplacian", esk_prim_laplacian, argv[0]);
  return diagonal_sum(loc, "laplacian", argv[0], ad_as_point(loc, "laplacian", argv[1]), 1);
}

esk_value esk_prim_divergence(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "divergence", argv[0]);
  if (argc == 1) return curry("divergence", esk_prim_divergence, argv[0]);
  return diagonal_sum(loc, "divergence", argv[0], ad_as_point(loc, "divergence", argv[1]), 0);
}

/* (curl F p): for F: R^3 -> R^3 the vector (dF3/dy - dF2/dz, dF1/dz - dF3/dx, dF2/dx - dF1/dy);
 * for F: R^2 -> R^2 the scalar dF2/dx - dF1/dy. */
esk_value esk_prim_curl(const char *loc, int64_t argc, esk_value *argv) {
  need_procedure(loc, "curl", argv[0]);
  if (argc == 1) return curry("curl", esk_prim_curl, argv[0]);
  esk_value x = ad_as_point(loc, "curl", argv[1]);
  int64_t n = ad_size(x);
  if (n != 2 && n != 3) esk_errorf(loc, "curl: the point must have 2 or 3 components, got %lld", (long long)n);
  esk_value c[3];
  for (int64_t j = 0; j < n; j++) {
    c[j] = jac_column(loc, "curl", argv[0], x, j);
    if (ad_size(c[j]) != n) esk_errorf(loc, "curl: the function must map R^%lld to R^%lld", (long long)n, (long long)n);
  }
#define J(i, k) ad_flat_ref(loc, c[k], i) /* dF_i / dx_k */
  if (n == 2) return ad_sub(loc, J(1, 0), J(0, 1));
  esk_value v[3] = {ad_sub(loc, J(2, 1), J(1, 2)), ad_sub(loc, J(0, 2), J(2, 0)),
                    ad_sub(loc, J(1, 0), J(0, 1))};
#undef J
  esk_value s = ad_stack(loc, 3, v);
  return ad_is_zero(s) ? esk_tensor_value(esk_tensor_zeros(ESK_DT_F64, 1, (int64_t[]){3})) : s;
}

/* (directional-derivative f p dir): the derivative of f at p along dir (grad f . dir). */
esk_value esk_prim_directional_derivative(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  need_procedure(loc, "directional-derivative", argv[0]);
  esk_value x = ad_as_point(loc, "directional-derivative", argv[1]);
  esk_value dir = ad_as_point(loc, "directional-derivative", argv[2]);
  if (ad_size(dir) != ad_size(x))
    esk_errorf(loc, "directional-derivative: the direction has %lld components, the point %lld",
               (long long)ad_size(dir), (long long)ad_size(x));
  if (is_tensor(ad_plain(x)) && !is_tensor(ad_plain(dir))) dir = esk_prim_add2(loc, ad_zeros_like(x, 0), dir);
  return jvp(loc, argv[0], x, dir, is_exact_point(x) && is_exact_point(dir));
}

/* ---- checkpoint-segment ------------------------------------------------------------------------ */

esk_value esk_prim_checkpoint_segment(const char *loc, esk_value thunk) {
  need_procedure(loc, "checkpoint-segment", thunk);
  esk_tape *t = ad_tape_innermost();
  if (!t) return esk_call(loc, thunk, 0, NULL);
  int64_t start = t->len;
  esk_value r = esk_call(loc, thunk, 0, NULL);
  return ad_checkpoint(loc, t, start, thunk, r);
}
