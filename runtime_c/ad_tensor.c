/* Tensors under differentiation: the shape plumbing the rules need (broadcast and its
 * adjoint, flat gathers and scatters, stacking, reshaping), written as AD rules of their own so
 * that they differentiate too, and the rules of the tensor builtins (indexing, literals,
 * reductions, matmul and the linear algebra, transpose, reshape, tensor-apply).
 *
 * Shape "templates" are tensor headers without data: the rules pass them where only a shape
 * is needed, so that tape nodes never keep big buffers alive just for their shape. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ad.h"

#define TT(v) ((esk_tensor *)esk_ptr(v))

static inline int is_tensor(esk_value v) { return v.tag == ESK_T_TENSOR; }
static inline int is_real(esk_value v) {
  return v.tag == ESK_T_FIXNUM || v.tag == ESK_T_FLONUM || v.tag == ESK_T_BIGNUM ||
         v.tag == ESK_T_RATIONAL;
}

/* ---- templates and plain kernels ----------------------------------------------------------- */

static esk_value tmpl(int dtype, int64_t rank, const int64_t *dims) {
  esk_tensor *t = esk_alloc(sizeof *t);
  t->h.type = ESK_T_TENSOR;
  t->dtype = dtype;
  t->device = ESK_DEV_HOST;
  t->rank = rank;
  t->size = 1;
  for (int64_t i = 0; i < rank; i++) {
    t->dims[i] = dims[i];
    t->size *= dims[i];
  }
  return esk_tensor_value(t);
}

/* The shape of v's plain value: a template for tensors (with their device), the number
 * itself for numbers. */
static esk_value shape_of(esk_value v) {
  esk_value p = ad_plain(v);
  if (!is_tensor(p)) return p;
  esk_value t = tmpl(TT(p)->dtype, TT(p)->rank, TT(p)->dims);
  TT(t)->device = TT(p)->device;
  return t;
}

/* GPU tensors: the kernels here read host copies, and put what they make where the operand
 * it is shaped like lives (the tensor runtime refuses to mix devices). */
static int on_gpu(esk_value v) { return is_tensor(v) && TT(v)->device == ESK_DEV_CUDA; }
static esk_value host_of(const char *loc, esk_value v) {
  return on_gpu(v) ? esk_tensor_value(esk_tensor_on_host(loc, TT(v))) : v;
}
static esk_value place_like(const char *loc, esk_value r, esk_value like) {
  if (on_gpu(like) && is_tensor(r) && !on_gpu(r)) return esk_prim_gpu_to_device(loc, r);
  return r;
}

static int same_shape(esk_value a, esk_value b) {
  a = ad_plain(a);
  b = ad_plain(b);
  if (!is_tensor(a) || !is_tensor(b)) return is_tensor(a) == is_tensor(b);
  esk_tensor *x = TT(a), *y = TT(b);
  return x->rank == y->rank && !memcmp(x->dims, y->dims, (size_t)x->rank * sizeof(int64_t));
}

int64_t ad_size(esk_value v) {
  esk_value p = ad_plain(v);
  return is_tensor(p) ? TT(p)->size : 1;
}

/* Float dtype of a result made from `like` (i64 tensors differentiate as f64). */
static int float_dtype(esk_value like) {
  return is_tensor(like) && TT(like)->dtype == ESK_DT_F32 ? ESK_DT_F32 : ESK_DT_F64;
}

/* The elements of a plain tensor or number as a fresh malloc'd f64 array (caller frees). */
static double *f64_copy(const char *loc, esk_value v, int64_t *n) {
  if (!is_tensor(v)) {
    double *x = malloc(sizeof(double));
    x[0] = esk_number_to_double(v);
    *n = 1;
    (void)loc;
    return x;
  }
  esk_tensor *t = TT(host_of(loc, v));
  double *x = malloc((size_t)(t->size ? t->size : 1) * sizeof(double));
  if (esk_tensor_is_contiguous(t) && t->dtype == ESK_DT_F64) {
    memcpy(x, esk_tensor_data(t), (size_t)t->size * sizeof(double));
  } else {
    for (int64_t i = 0; i < t->size; i++) x[i] = esk_tensor_get_flat(t, i);
  }
  *n = t->size;
  return x;
}

/* A fresh tensor of `dtype` and like's shape from f64 data. */
static esk_value from_f64(int dtype, esk_value like, const double *x) {
  esk_tensor *l = TT(like);
  esk_tensor *t = esk_tensor_new(dtype, l->rank, l->dims);
  if (dtype == ESK_DT_F32) {
    float *d = esk_tensor_data(t);
    for (int64_t i = 0; i < t->size; i++) d[i] = (float)x[i];
  } else {
    memcpy(esk_tensor_data(t), x, (size_t)t->size * sizeof(double));
  }
  return place_like(NULL, esk_tensor_value(t), like);
}

/* Advance a row-major multi-index; 0 when it wrapped around. */
static int next_index(int64_t *idx, const int64_t *dims, int64_t rank) {
  for (int64_t d = rank - 1; d >= 0; d--) {
    if (++idx[d] < dims[d]) return 1;
    idx[d] = 0;
  }
  return 0;
}

/* Element strides of x (contiguous) seen as a tensor of `rank` dims with numpy broadcasting
 * (0 along broadcast axes); an error when x does not broadcast to dims. */
static void bcast_strides(const char *loc, const char *who, const esk_tensor *x, int64_t rank,
                          const int64_t *dims, int64_t *st) {
  int64_t xs[ESK_TENSOR_MAX_RANK], n = 1;
  for (int64_t d = x->rank - 1; d >= 0; d--) {
    xs[d] = n;
    n *= x->dims[d];
  }
  if (x->rank > rank) goto bad;
  for (int64_t d = 0; d < rank; d++) {
    int64_t xd = d - (rank - x->rank);
    if (xd < 0) {
      st[d] = 0;
      continue;
    }
    if (x->dims[xd] != dims[d] && x->dims[xd] != 1) goto bad;
    st[d] = x->dims[xd] == 1 ? 0 : xs[xd];
  }
  return;
bad:;
  esk_tensor want = {.rank = rank};
  memcpy(want.dims, dims, (size_t)rank * sizeof(int64_t));
  esk_error_shapes(loc, who, x, &want);
}

/* x (number or tensor) broadcast to like's shape. */
static esk_value bcast_kernel(const char *loc, esk_value x, esk_value like) {
  if (!is_tensor(like)) return x;
  esk_value fast;
  if (ad_fast_bcast(x, like, &fast)) return fast;
  esk_tensor *l = TT(like);
  int dt = is_tensor(x) ? float_dtype(x) : float_dtype(like);
  int64_t n;
  double *xd = f64_copy(loc, x, &n);
  double *out = malloc((size_t)(l->size ? l->size : 1) * sizeof(double));
  if (!is_tensor(x)) {
    for (int64_t i = 0; i < l->size; i++) out[i] = xd[0];
  } else {
    int64_t st[ESK_TENSOR_MAX_RANK], idx[ESK_TENSOR_MAX_RANK] = {0};
    bcast_strides(loc, "broadcast", TT(x), l->rank, l->dims, st);
    for (int64_t i = 0; i < l->size; i++) {
      int64_t off = 0;
      for (int64_t d = 0; d < l->rank; d++) off += idx[d] * st[d];
      out[i] = xd[off];
      next_index(idx, l->dims, l->rank);
    }
  }
  esk_value r = from_f64(dt, like, out);
  free(xd);
  free(out);
  return r;
}

/* x summed down to like's shape (the adjoint of broadcasting). */
static esk_value unbcast_kernel(const char *loc, esk_value x, esk_value like) {
  if (!is_tensor(x)) return is_tensor(like) ? bcast_kernel(loc, x, like) : x;
  esk_value fast;
  if (ad_fast_unbcast(x, like, &fast)) return fast;
  esk_tensor *t = TT(x);
  int64_t n;
  double *xd = f64_copy(loc, x, &n);
  if (!is_tensor(like)) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += xd[i];
    free(xd);
    return esk_flonum(s);
  }
  esk_tensor *l = TT(like);
  double *out = calloc((size_t)(l->size ? l->size : 1), sizeof(double));
  int64_t st[ESK_TENSOR_MAX_RANK], idx[ESK_TENSOR_MAX_RANK] = {0};
  bcast_strides(loc, "broadcast", l, t->rank, t->dims, st);
  for (int64_t i = 0; i < t->size; i++) {
    int64_t off = 0;
    for (int64_t d = 0; d < t->rank; d++) off += idx[d] * st[d];
    out[off] += xd[i];
    next_index(idx, t->dims, t->rank);
  }
  esk_value r = from_f64(float_dtype(x), like, out);
  free(xd);
  free(out);
  return r;
}

/* Elements [off, off + size(like)) of x's flat row-major order, shaped like `like`. */
static esk_value gather_kernel(const char *loc, esk_value x, int64_t off, esk_value like) {
  if (!is_tensor(x)) return x;
  esk_value fast;
  if (ad_fast_gather(x, off, like, &fast)) return fast;
  esk_tensor *t = TT(host_of(loc, x));
  if (!is_tensor(like)) {
    if (t->dtype == ESK_DT_I64) return esk_fixnum((int64_t)esk_tensor_get_flat(t, off));
    return esk_flonum(esk_tensor_get_flat(t, off));
  }
  int64_t m = TT(like)->size;
  double *out = malloc((size_t)(m ? m : 1) * sizeof(double));
  for (int64_t i = 0; i < m; i++) out[i] = esk_tensor_get_flat(t, off + i);
  esk_value r = from_f64(float_dtype(x), like, out);
  free(out);
  (void)loc;
  return r;
}

/* Zeros shaped like `total` with y's elements at flat [off, off + size(y)). */
static esk_value scatter_kernel(const char *loc, esk_value y, int64_t off, esk_value total) {
  esk_tensor *l = TT(total);
  int dt = float_dtype(total);
  esk_tensor *r = esk_tensor_zeros(dt, l->rank, l->dims);
  int64_t n;
  double *yd = f64_copy(loc, y, &n);
  if (dt == ESK_DT_F32) {
    float *d = esk_tensor_data(r);
    for (int64_t i = 0; i < n; i++) d[off + i] = (float)yd[i];
  } else {
    double *d = esk_tensor_data(r);
    for (int64_t i = 0; i < n; i++) d[off + i] = yd[i];
  }
  free(yd);
  return place_like(loc, esk_tensor_value(r), total);
}

/* x's elements in like's shape (sizes agree). */
static esk_value reshape_kernel(const char *loc, esk_value x, esk_value like) {
  if (!is_tensor(like)) return is_tensor(x) ? gather_kernel(loc, x, 0, like) : x;
  esk_value fast;
  if (ad_fast_reshape(x, like, &fast)) return fast;
  int64_t n;
  double *xd = f64_copy(loc, x, &n);
  if (n != TT(like)->size) {
    free(xd);
    esk_tensor one = {.rank = 0};
    esk_error_shapes(loc, "reshape", is_tensor(x) ? TT(x) : &one, TT(like));
  }
  esk_value r = from_f64(is_tensor(x) ? float_dtype(x) : float_dtype(like), like, xd);
  free(xd);
  return r;
}

/* ---- the plumbing as AD rules ---------------------------------------------------------------- */
/* Argument conventions: (x like) for broadcast / unbroadcast / reshape-like; (x off like) for
 * gather and scatter, `off` a fixnum. */

static const ad_rule r_bcast, r_unbcast, r_gather, r_scatter, r_reshape_like, r_stack;

static esk_value bcast_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return bcast_kernel(loc, a[0], a[1]);
}
static esk_value bcast_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return ad_call2(loc, &r_bcast, d[0], p[1]);
}
static void bcast_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                      const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = ad_call2(loc, &r_unbcast, g, shape_of(p[0]));
}
static const ad_rule r_bcast = {"%broadcast", bcast_primal, bcast_jvp, bcast_vjp, NULL};

static esk_value unbcast_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return unbcast_kernel(loc, a[0], a[1]);
}
static esk_value unbcast_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return ad_call2(loc, &r_unbcast, d[0], p[1]);
}
static void unbcast_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                        const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = ad_call2(loc, &r_bcast, g, shape_of(p[0]));
}
static const ad_rule r_unbcast = {"%unbroadcast", unbcast_primal, unbcast_jvp, unbcast_vjp, NULL};

static esk_value gather3(const char *loc, const ad_rule *r, esk_value x, int64_t off, esk_value like) {
  esk_value a[3] = {x, esk_fixnum(off), like};
  return ad_call(loc, r, 3, a);
}

static esk_value gather_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return gather_kernel(loc, a[0], a[1].payload, a[2]);
}
static esk_value gather_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return gather3(loc, &r_gather, d[0], p[1].payload, p[2]);
}
static void gather_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                       const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = gather3(loc, &r_scatter, g, p[1].payload, shape_of(p[0]));
}
/* A flat block's cotangent added straight into the operand's adjoint (no scattered copy). */
static int gather_accum(const char *loc, esk_adnode *nd, esk_value g, int i, esk_adnode *parent) {
  (void)loc;
  return i == 0 && nd->in[1].tag == ESK_T_FIXNUM && ad_fast_accum_range(parent, g, nd->in[1].payload);
}
static const ad_rule r_gather = {"%gather", gather_primal, gather_jvp, gather_vjp, gather_accum};

static esk_value scatter_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return scatter_kernel(loc, a[0], a[1].payload, a[2]);
}
static esk_value scatter_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return gather3(loc, &r_scatter, d[0], p[1].payload, p[2]);
}
static void scatter_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                        const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = gather3(loc, &r_gather, g, p[1].payload, shape_of(p[0]));
}
static const ad_rule r_scatter = {"%scatter", scatter_primal, scatter_jvp, scatter_vjp, NULL};

static esk_value reshape_like_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return reshape_kernel(loc, a[0], a[1]);
}
static esk_value reshape_like_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return ad_call2(loc, &r_reshape_like, d[0], p[1]);
}
static void reshape_like_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                             const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = ad_call2(loc, &r_reshape_like, g, shape_of(p[0]));
}
static const ad_rule r_reshape_like = {"%reshape", reshape_like_primal, reshape_like_jvp, reshape_like_vjp, NULL};

static esk_value reshape_to(const char *loc, esk_value x, esk_value like) {
  if (ad_is_zero(x) || same_shape(x, like)) return x;
  return ad_call2(loc, &r_reshape_like, x, like);
}

esk_value ad_reshape(const char *loc, esk_value x, int64_t rank, const int64_t *dims) {
  esk_value p = ad_plain(x);
  return reshape_to(loc, x, tmpl(is_tensor(p) ? float_dtype(p) : ESK_DT_F64, rank, dims));
}

esk_value ad_bcast_like(const char *loc, esk_value x, esk_value like) {
  if (same_shape(x, like)) return x;
  return ad_call2(loc, &r_bcast, x, shape_of(like));
}
esk_value ad_unbcast_like(const char *loc, esk_value x, esk_value like) {
  if (same_shape(x, like)) return x;
  return ad_call2(loc, &r_unbcast, x, shape_of(like));
}
esk_value ad_flat_ref(const char *loc, esk_value t, int64_t k) {
  return gather3(loc, &r_gather, t, k, esk_flonum(0.0));
}

/* Stack: n values of one shape (AD_ZERO = zeros) as blocks of a new leading axis. */
static esk_value stack_template(int64_t n, const esk_value *xs) {
  for (int64_t i = 0; i < n; i++)
    if (!ad_is_zero(xs[i])) return shape_of(xs[i]);
  return esk_flonum(0.0);
}
static esk_value stack_primal(const char *loc, int64_t n, const esk_value *a) {
  esk_value el = stack_template(n, a);
  int64_t dims[ESK_TENSOR_MAX_RANK], rank = 1, m = 1;
  dims[0] = n;
  if (is_tensor(el)) {
    if (TT(el)->rank + 1 > ESK_TENSOR_MAX_RANK) esk_errorf(loc, "stack: rank too large");
    for (int64_t d = 0; d < TT(el)->rank; d++) dims[rank++] = TT(el)->dims[d];
    m = TT(el)->size;
  }
  int dt = float_dtype(el);
  esk_tensor *r = esk_tensor_zeros(dt, rank, dims);
  for (int64_t i = 0; i < n; i++) {
    if (ad_is_zero(a[i])) continue;
    if (!same_shape(a[i], el)) {
      esk_tensor one = {.rank = 0};
      esk_error_shapes(loc, "stack", is_tensor(el) ? TT(el) : &one,
                       is_tensor(a[i]) ? TT(a[i]) : &one);
    }
    int64_t k;
    double *x = f64_copy(loc, a[i], &k);
    for (int64_t j = 0; j < m; j++) {
      if (dt == ESK_DT_F32) ((float *)esk_tensor_data(r))[i * m + j] = (float)x[j];
      else ((double *)esk_tensor_data(r))[i * m + j] = x[j];
    }
    free(x);
  }
  return place_like(loc, esk_tensor_value(r), el);
}
static esk_value stack_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)p; (void)r;
  return ad_stack(loc, n, d);
}
static void stack_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                      const int *need, esk_value *out) {
  (void)r;
  esk_value el = stack_template(n, p);
  int64_t m = is_tensor(el) ? TT(el)->size : 1;
  for (int64_t i = 0; i < n; i++)
    if (need[i]) out[i] = gather3(loc, &r_gather, g, i * m, el);
}
static const ad_rule r_stack = {"%stack", stack_primal, stack_jvp, stack_vjp, NULL};

esk_value ad_stack(const char *loc, int64_t n, const esk_value *xs) {
  int64_t i = 0;
  while (i < n && ad_is_zero(xs[i])) i++;
  if (i == n) return AD_ZERO;
  return ad_call(loc, &r_stack, n, xs);
}

/* ---- plain helpers the calculus procedures use ------------------------------------------ */

esk_value ad_zeros_like(esk_value v, int exact) {
  esk_value p = ad_plain(v);
  if (!is_tensor(p)) return exact ? esk_fixnum(0) : esk_flonum(0.0);
  return place_like(NULL, esk_tensor_value(esk_tensor_zeros(float_dtype(p), TT(p)->rank, TT(p)->dims)), p);
}

esk_value ad_onehot_like(esk_value like, int64_t k) {
  esk_value p = ad_plain(like);
  esk_tensor *t = esk_tensor_zeros(float_dtype(p), TT(p)->rank, TT(p)->dims);
  if (t->dtype == ESK_DT_F32) ((float *)esk_tensor_data(t))[k] = 1.0f;
  else ((double *)esk_tensor_data(t))[k] = 1.0;
  return place_like(NULL, esk_tensor_value(t), p);
}

/* sign(p) elementwise: -1.0, 0.0 or 1.0. */
esk_value ad_tensor_sign(const char *loc, esk_value p) {
  int64_t n;
  double *x = f64_copy(loc, p, &n);
  for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? 1.0 : x[i] < 0 ? -1.0 : 0.0;
  esk_value r = from_f64(float_dtype(p), p, x);
  free(x);
  return r;
}

/* For min/max of a and b (plain): fixnum 1/0 when both are numbers (pick a?), else a float
 * tensor of the broadcast shape with 1 where a is picked (ties pick a). */
esk_value ad_tensor_pick_mask(const char *loc, esk_value a, esk_value b, int want_max) {
  if (!is_tensor(a) && !is_tensor(b)) {
    int ge = esk_is_true(want_max ? esk_prim_num_ge2(loc, a, b) : esk_prim_num_le2(loc, a, b));
    return esk_fixnum(ge);
  }
  esk_value like = is_tensor(a) ? a : b;
  if (is_tensor(a) && is_tensor(b) && !same_shape(a, b)) {
    /* the broadcast shape: let the tensor runtime's + work it out */
    like = esk_prim_add2(loc, a, b);
  }
  esk_value l = shape_of(like);
  esk_value ab = bcast_kernel(loc, a, l), bb = bcast_kernel(loc, b, l);
  int64_t n;
  double *x = f64_copy(loc, ab, &n), *y = f64_copy(loc, bb, &n);
  for (int64_t i = 0; i < n; i++) x[i] = want_max ? (x[i] >= y[i]) : (x[i] <= y[i]);
  esk_value r = from_f64(float_dtype(like), l, x);
  free(x);
  free(y);
  return r;
}

esk_value ad_as_point(const char *loc, const char *who, esk_value v) {
  if (is_real(v) || is_tensor(v) || ad_is_ad(v)) return v;
  if (v.tag == ESK_T_VECTOR || v.tag == ESK_T_PAIR) {
    /* Elements that are AD values (a nested calculus call) go through the AD-aware stack. */
    esk_value items = v.tag == ESK_T_VECTOR ? esk_prim_vector_to_list(loc, v) : v;
    int64_t n = 0, any = 0;
    for (esk_value p = items; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) {
      n++;
      any |= ad_is_ad(((esk_pair *)esk_ptr(p))->car);
    }
    if (!any) return esk_tensor_value(esk_as_tensor(loc, who, v));
    esk_value *xs = esk_alloc((size_t)n * sizeof *xs);
    n = 0;
    for (esk_value p = items; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr)
      xs[n++] = ((esk_pair *)esk_ptr(p))->car;
    return ad_call(loc, &r_stack, n, xs);
  }
  esk_error_type(loc, who, "point (number, tensor or vector of numbers)", v);
}

/* ---- indexing: tensor-get, tensor-ref, vref, vector-ref, car, cdr -------------------------- */

/* The flat offset and block size that indices args[1..n) select in plain tensor t, for the
 * indexing builtin `kind`: 0 tensor-get (leading indices, a block per partial index), 1
 * tensor-ref (one index on rank != 1 is flat), 2 car (element/row 0), 3 cdr (rows 1..). */
static int64_t index_block(esk_tensor *t, int kind, int64_t n, const esk_value *args, int64_t *m) {
  int64_t k = kind == 2 || kind == 3 ? 1 : n - 1;
  if (kind == 1 && n == 2 && t->rank != 1) {
    *m = 1;
    return args[1].payload;
  }
  int64_t off = 0, block = t->size;
  for (int64_t d = 0; d < k; d++) {
    block = t->dims[d] ? block / t->dims[d] : 0;
    int64_t i = kind >= 2 ? (kind == 3 ? 1 : 0) : args[1 + d].payload;
    off += i * block;
  }
  *m = kind == 3 ? block * (t->dims[0] - 1) : block;
  return off;
}

typedef esk_value (*index_fn)(const char *loc, int64_t n, esk_value *args);

static esk_value call_prim_n(const char *loc, index_fn f, int64_t n, const esk_value *a) {
  esk_value *copy = esk_alloc((size_t)(n ? n : 1) * sizeof *copy);
  memcpy(copy, a, (size_t)n * sizeof *copy);
  return f(loc, n, copy);
}

static esk_value vref_n(const char *loc, int64_t n, esk_value *a) { (void)n; return esk_prim_vref(loc, a[0], a[1]); }
static esk_value vector_ref_n(const char *loc, int64_t n, esk_value *a) { (void)n; return esk_prim_vector_ref(loc, a[0], a[1]); }
static esk_value car_n(const char *loc, int64_t n, esk_value *a) { (void)n; return esk_prim_car(loc, a[0]); }
static esk_value cdr_n(const char *loc, int64_t n, esk_value *a) { (void)n; return esk_prim_cdr(loc, a[0]); }

#define INDEX_RULE(NAME, SCHEME, PRIMFN, KIND)                                             \
  static esk_value NAME##_primal(const char *loc, int64_t n, const esk_value *a) {         \
    return call_prim_n(loc, PRIMFN, n, a);                                                 \
  }                                                                                        \
  static esk_value NAME##_jvp(const char *loc, int64_t n, const esk_value *p,              \
                              const esk_value *d, esk_value r) {                           \
    int64_t m, off = index_block(TT(ad_plain(p[0])), KIND, n, p, &m);                      \
    return gather3(loc, &r_gather, d[0], off, shape_of(r));                                \
  }                                                                                        \
  static void NAME##_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r,      \
                         esk_value g, const int *need, esk_value *out) {                   \
    (void)r; (void)need;                                                                   \
    int64_t m, off = index_block(TT(ad_plain(p[0])), KIND, n, p, &m);                      \
    out[0] = gather3(loc, &r_scatter, reshape_to(loc, g, shape_of(r)), off, shape_of(p[0])); \
  }                                                                                        \
  static int NAME##_accum(const char *loc, esk_adnode *nd, esk_value g, int i,             \
                          esk_adnode *parent) {                                            \
    return i == 0 && accum_block(loc, nd, g, parent, KIND);                                \
  }                                                                                        \
  static const ad_rule r_##NAME = {SCHEME, NAME##_primal, NAME##_jvp, NAME##_vjp, NAME##_accum};

/* The sparse update of an index read's cotangent: add plain g into the parent's own adjoint
 * buffer in place (allocated on first use), instead of building a scattered full tensor. */
static int accum_block(const char *loc, esk_adnode *nd, esk_value g, esk_adnode *parent, int kind) {
  esk_value pv = ad_plain(parent->value);
  if (!is_tensor(pv) || on_gpu(pv) || ad_is_ad(parent->value) || !(is_real(g) || is_tensor(g))) return 0;
  esk_value pa = parent->adj;
  if (!ad_is_zero(pa) && !parent->adj_owned) return 0;
  esk_tensor *t = TT(pv);
  esk_value vals[ESK_TENSOR_MAX_RANK + 2];
  int64_t n = nd->nin;
  if (n > ESK_TENSOR_MAX_RANK + 2) return 0;
  for (int64_t i = 0; i < n; i++) vals[i] = nd->in[i];
  vals[0] = pv;
  int64_t m, off = index_block(t, kind, n, vals, &m);
  if (ad_is_zero(pa)) {
    pa = esk_tensor_value(esk_tensor_zeros(ESK_DT_F64, t->rank, t->dims));
    parent->adj = pa;
    parent->adj_owned = 1;
  }
  esk_tensor *at = TT(pa);
  if (at->dtype != ESK_DT_F64) return 0;
  double *a = esk_tensor_data(at);
  if (is_real(g)) {
    a[off] += esk_number_to_double(g);
  } else {
    int64_t k;
    double *x = f64_copy(loc, g, &k);
    for (int64_t j = 0; j < k && j < m; j++) a[off + j] += x[j];
    free(x);
  }
  return 1;
}

INDEX_RULE(tensor_get, "tensor-get", esk_prim_tensor_get, 0)
INDEX_RULE(tensor_ref, "tensor-ref", esk_prim_tensor_ref, 1)
INDEX_RULE(vref, "vref", vref_n, 0)
INDEX_RULE(vector_ref, "vector-ref", vector_ref_n, 0)
INDEX_RULE(car, "car", car_n, 2)
INDEX_RULE(cdr, "cdr", cdr_n, 3)

/* ---- literals: #(...) and (tensor ...) ---------------------------------------------------- */

static esk_value tlit_primal(const char *loc, int64_t n, const esk_value *a) {
  return call_prim_n(loc, esk_prim_tensor_literal, n, a);
}
static esk_value tlit_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  esk_value *ts = esk_alloc((size_t)n * sizeof *ts);
  for (int64_t i = 1; i < n; i++) ts[i - 1] = d[i];
  return reshape_to(loc, ad_stack(loc, n - 1, ts), shape_of(r));
  (void)p;
}
static void tlit_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                     const int *need, esk_value *out) {
  (void)r;
  int64_t off = 0;
  for (int64_t i = 1; i < n; i++) {
    esk_value like = shape_of(p[i]);
    if (need[i]) out[i] = gather3(loc, &r_gather, g, off, like);
    off += ad_size(like);
  }
}
static const ad_rule r_tlit = {"%tensor-literal", tlit_primal, tlit_jvp, tlit_vjp, NULL};

/* (tensor e ...) / (tensor d1 .. dk e ...): the elements are the last size(result) arguments
 * (a trailing dtype symbol aside); (tensor t) of one tensor is t. */
static esk_value tensor_ctor(const char *loc, int64_t n, const esk_value *args) {
  if (n == 1) return args[0];
  esk_value *plain = esk_alloc((size_t)n * sizeof *plain);
  for (int64_t i = 0; i < n; i++) plain[i] = ad_plain(args[i]);
  esk_value r = esk_prim_tensor(loc, n, plain);
  int64_t end = n;
  if (end > 0 && args[end - 1].tag == ESK_T_SYMBOL) end--;
  int64_t size = TT(r)->size, start = end - size;
  for (int64_t i = 0; i < start; i++)
    if (ad_is_ad(args[i])) esk_ad_not_differentiable(loc, "tensor", args[i]);
  if (start < 0) esk_ad_not_differentiable(loc, "tensor", args[0]);
  return reshape_to(loc, ad_call(loc, &r_stack, size, args + start), shape_of(r));
}

/* ---- reductions ------------------------------------------------------------------------------- */

/* The shape of t with axis `ax` kept as 1 (to broadcast a reduction's cotangent back). */
static esk_value keepdims_shape(esk_value t, int64_t ax) {
  esk_tensor *x = TT(t);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  dims[ax] = 1;
  return tmpl(x->dtype, x->rank, dims);
}

static int64_t axis_of(esk_value t, int64_t n, const esk_value *p) {
  if (n < 2 || p[1].tag != ESK_T_FIXNUM) return -1;
  int64_t r = TT(t)->rank, a = p[1].payload;
  return a < 0 ? a + r : a;
}

/* g (a reduction's cotangent) broadcast back over the reduced axis / all elements. */
static esk_value expand_back(const char *loc, esk_value g, esk_value pt, int64_t ax) {
  if (ax >= 0) g = reshape_to(loc, g, keepdims_shape(pt, ax));
  return ad_bcast_like(loc, g, pt);
}

static esk_value sum_primal(const char *loc, int64_t n, const esk_value *a) {
  return call_prim_n(loc, esk_prim_tensor_sum, n, a);
}
static const ad_rule r_sum;
static esk_value sum_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)r;
  esk_value a[2] = {ad_bcast_like(loc, d[0], p[0]), n > 1 ? p[1] : AD_ZERO};
  return ad_call(loc, &r_sum, n, a);
}
static void sum_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)r; (void)need;
  esk_value pt = shape_of(p[0]);
  out[0] = expand_back(loc, g, pt, axis_of(pt, n, p));
}
static const ad_rule r_sum = {"tensor-sum", sum_primal, sum_jvp, sum_vjp, NULL};

static esk_value mean_primal(const char *loc, int64_t n, const esk_value *a) {
  return call_prim_n(loc, esk_prim_tensor_mean, n, a);
}
static const ad_rule r_mean;
static esk_value mean_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)r;
  esk_value a[2] = {ad_bcast_like(loc, d[0], p[0]), n > 1 ? p[1] : AD_ZERO};
  return ad_call(loc, &r_mean, n, a);
}
static void mean_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                     const int *need, esk_value *out) {
  (void)r; (void)need;
  esk_value pt = shape_of(p[0]);
  if (!is_tensor(pt)) {
    out[0] = g;
    return;
  }
  int64_t ax = axis_of(pt, n, p);
  int64_t count = ax >= 0 ? TT(pt)->dims[ax] : TT(pt)->size;
  out[0] = expand_back(loc, ad_div(loc, g, esk_fixnum(count ? count : 1)), pt, ax);
}
static const ad_rule r_mean = {"tensor-mean", mean_primal, mean_jvp, mean_vjp, NULL};

/* max/min reductions: the cotangent is shared equally by the elements that attain the extremum
 * (as jax does). w = mask / count, broadcast over the reduced axis. */
static esk_value extremum_weights(const char *loc, esk_value x, esk_value r, int64_t ax) {
  esk_value pt = shape_of(x);
  esk_value rb = bcast_kernel(loc, ax >= 0 ? reshape_kernel(loc, ad_plain(r), keepdims_shape(pt, ax))
                                           : ad_plain(r), pt);
  int64_t n;
  double *xv = f64_copy(loc, ad_plain(x), &n), *rv = f64_copy(loc, rb, &n);
  for (int64_t i = 0; i < n; i++) xv[i] = xv[i] == rv[i];
  esk_value mask = from_f64(float_dtype(pt), pt, xv);
  free(xv);
  free(rv);
  esk_value counts = unbcast_kernel(loc, mask, ax >= 0 ? keepdims_shape(pt, ax) : esk_flonum(0));
  return esk_prim_div2(loc, mask, bcast_kernel(loc, counts, pt));
}

#define EXTREMUM_RULE(NAME, SCHEME, PRIM)                                                   \
  static esk_value NAME##_primal(const char *loc, int64_t n, const esk_value *a) {          \
    return call_prim_n(loc, PRIM, n, a);                                                    \
  }                                                                                         \
  static esk_value NAME##_jvp(const char *loc, int64_t n, const esk_value *p,               \
                              const esk_value *d, esk_value r) {                            \
    esk_value pt = shape_of(p[0]);                                                          \
    if (!is_tensor(pt)) return d[0];                                                        \
    int64_t ax = axis_of(pt, n, p);                                                         \
    esk_value w = extremum_weights(loc, p[0], r, ax);                                       \
    esk_value a[2] = {ad_mul(loc, ad_bcast_like(loc, d[0], p[0]), w), n > 1 ? p[1] : AD_ZERO}; \
    return ad_call(loc, &r_sum, n, a);                                                      \
  }                                                                                         \
  static void NAME##_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r,       \
                         esk_value g, const int *need, esk_value *out) {                    \
    (void)need;                                                                             \
    esk_value pt = shape_of(p[0]);                                                          \
    if (!is_tensor(pt)) {                                                                   \
      out[0] = g;                                                                           \
      return;                                                                               \
    }                                                                                       \
    int64_t ax = axis_of(pt, n, p);                                                         \
    out[0] = ad_mul(loc, expand_back(loc, g, pt, ax), extremum_weights(loc, p[0], r, ax));  \
  }                                                                                         \
  static const ad_rule r_##NAME = {SCHEME, NAME##_primal, NAME##_jvp, NAME##_vjp, NULL};

EXTREMUM_RULE(tmax, "tensor-max", esk_prim_tensor_max)
EXTREMUM_RULE(tmin, "tensor-min", esk_prim_tensor_min)

/* ---- linear algebra ------------------------------------------------------------------------ */

static const ad_rule r_matmul, r_transpose, r_outer, r_inv, r_solve;

static esk_value matmul_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_matmul(loc, a[0], a[1]);
}
static esk_value mm(const char *loc, esk_value a, esk_value b) { return ad_call2(loc, &r_matmul, a, b); }
/* Swap the last two axes. */
static esk_value swap_last(const char *loc, esk_value x) {
  esk_value a[3] = {x, esk_fixnum(-2), esk_fixnum(-1)};
  return ad_call(loc, &r_transpose, 3, a);
}
static esk_value matmul_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  esk_value t = AD_ZERO;
  if (!ad_is_zero(d[0])) t = mm(loc, d[0], p[1]);
  if (!ad_is_zero(d[1])) t = ad_add(loc, t, mm(loc, p[0], d[1]));
  return t;
}
/* numpy matmul's vjp: 1-D operands are promoted to matrices (a row on the left, a column on
 * the right), then gA = g B^T and gB = A^T g, summed over broadcast batch axes. */
static void matmul_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                       const int *need, esk_value *out) {
  (void)n;
  if (ad_fast_matmul_vjp(loc, p, g, need, out)) return;
  esk_value sa = shape_of(p[0]), sb = shape_of(p[1]);
  esk_tensor *ta = TT(sa), *tb = TT(sb);
  esk_value a = p[0], b = p[1];
  if (ta->rank == 1) a = reshape_to(loc, a, tmpl(ta->dtype, 2, (int64_t[]){1, ta->dims[0]}));
  if (tb->rank == 1) b = reshape_to(loc, b, tmpl(tb->dtype, 2, (int64_t[]){tb->dims[0], 1}));
  /* g with the promoted axes put back */
  esk_value rs = shape_of(r);
  int64_t gd[ESK_TENSOR_MAX_RANK], gr = 0;
  if (is_tensor(rs)) {
    memcpy(gd, TT(rs)->dims, sizeof gd);
    gr = TT(rs)->rank;
  }
  if (ta->rank == 1) {
    if (tb->rank == 1) {
      gd[gr++] = 1;
    } else {
      gd[gr] = gd[gr - 1];
      gd[gr - 1] = 1;
      gr++;
    }
  }
  if (tb->rank == 1) gd[gr++] = 1;
  esk_value g2 = reshape_to(loc, g, tmpl(ta->dtype, gr, gd));
  if (need[0]) out[0] = reshape_to(loc, ad_unbcast_like(loc, mm(loc, g2, swap_last(loc, b)), a), sa);
  if (need[1]) out[1] = reshape_to(loc, ad_unbcast_like(loc, mm(loc, swap_last(loc, a), g2), b), sb);
}
static const ad_rule r_matmul = {"matmul", matmul_primal, matmul_jvp, matmul_vjp, NULL};

/* tensor-dot: numpy.dot; a scalar operand scales, otherwise (b of rank <= 2) it is matmul. */
static const ad_rule r_tdot;
static esk_value tdot_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_tensor_dot(loc, a[0], a[1]);
}
static int tdot_is_scaling(const esk_value *p) {
  esk_value a = ad_plain(p[0]), b = ad_plain(p[1]);
  return !is_tensor(a) || !is_tensor(b) || TT(a)->rank == 0 || TT(b)->rank == 0;
}
static esk_value tdot_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  esk_value t = AD_ZERO;
  if (!ad_is_zero(d[0])) t = ad_call2(loc, &r_tdot, d[0], p[1]);
  if (!ad_is_zero(d[1])) t = ad_add(loc, t, ad_call2(loc, &r_tdot, p[0], d[1]));
  return t;
}
static void tdot_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                     const int *need, esk_value *out) {
  if (tdot_is_scaling(p)) {
    if (need[0]) out[0] = ad_unbcast_like(loc, ad_mul(loc, g, p[1]), p[0]);
    if (need[1]) out[1] = ad_unbcast_like(loc, ad_mul(loc, g, p[0]), p[1]);
    return;
  }
  if (TT(ad_plain(p[1]))->rank > 2)
    esk_errorf(loc, "tensor-dot: differentiation with a second operand of rank > 2 is not supported");
  matmul_vjp(loc, n, p, r, g, need, out);
}
static const ad_rule r_tdot = {"tensor-dot", tdot_primal, tdot_jvp, tdot_vjp, NULL};

/* outer(u, v) of the flattened operands: gu = g v, gv = g^T u. */
static esk_value outer_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_outer(loc, a[0], a[1]);
}
static esk_value outer_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  esk_value t = AD_ZERO;
  if (!ad_is_zero(d[0])) t = ad_call2(loc, &r_outer, d[0], p[1]);
  if (!ad_is_zero(d[1])) t = ad_add(loc, t, ad_call2(loc, &r_outer, p[0], d[1]));
  return t;
}
static esk_value flat_shape(esk_value s) {
  int64_t n = ad_size(s);
  return tmpl(is_tensor(s) ? TT(s)->dtype : ESK_DT_F64, 1, &n);
}
static void outer_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                      const int *need, esk_value *out) {
  (void)n; (void)r;
  esk_value sa = shape_of(p[0]), sb = shape_of(p[1]);
  esk_value u = reshape_to(loc, p[0], flat_shape(sa)), v = reshape_to(loc, p[1], flat_shape(sb));
  if (need[0]) out[0] = reshape_to(loc, mm(loc, g, v), sa);
  if (need[1]) out[1] = reshape_to(loc, mm(loc, swap_last(loc, g), u), sb);
}
static const ad_rule r_outer = {"outer", outer_primal, outer_jvp, outer_vjp, NULL};

/* transpose: linear, and its own inverse (axes reversed, or two axes swapped). */
static esk_value transpose_primal(const char *loc, int64_t n, const esk_value *a) {
  return call_prim_n(loc, esk_prim_transpose, n, a);
}
static esk_value transpose_with(const char *loc, esk_value x, int64_t n, const esk_value *p) {
  esk_value a[3] = {x, n > 1 ? p[1] : AD_ZERO, n > 2 ? p[2] : AD_ZERO};
  return ad_call(loc, &r_transpose, n, a);
}
static esk_value transpose_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)r;
  return transpose_with(loc, d[0], n, p);
}
static void transpose_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                          const int *need, esk_value *out) {
  (void)r; (void)need;
  out[0] = transpose_with(loc, g, n, p);
}
static const ad_rule r_transpose = {"transpose", transpose_primal, transpose_jvp, transpose_vjp, NULL};

/* The identity matrix shaped like square matrix s. */
static esk_value eye_like(esk_value s) {
  esk_tensor *t = TT(s);
  esk_tensor *e = esk_tensor_zeros(ESK_DT_F64, 2, t->dims);
  for (int64_t i = 0; i < t->dims[0] && i < t->dims[1]; i++)
    ((double *)esk_tensor_data(e))[i * t->dims[1] + i] = 1.0;
  return place_like(NULL, esk_tensor_value(e), s);
}

static const ad_rule r_trace;
static esk_value trace_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_trace(loc, a[0]);
}
static esk_value trace_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)p; (void)r;
  return ad_call1(loc, &r_trace, d[0]);
}
static void trace_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                      const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = ad_mul(loc, g, eye_like(shape_of(p[0])));
}
static const ad_rule r_trace = {"trace", trace_primal, trace_jvp, trace_vjp, NULL};

/* norm: the 2-norm (default, or ord 2) and the 1-norm (ord 1) are differentiable. */
static esk_value norm_primal(const char *loc, int64_t n, const esk_value *a) {
  return call_prim_n(loc, esk_prim_norm, n, a);
}
static esk_value norm_factor(const char *loc, int64_t n, const esk_value *p, esk_value r) {
  esk_value ord = n > 1 ? ad_plain(p[1]) : esk_fixnum(2);
  double o = is_real(ord) ? esk_number_to_double(ord) : NAN;
  if (o == 1) return ad_tensor_sign(loc, ad_plain(p[0]));
  if (o != 2) esk_errorf(loc, "norm: only the 1-norm and the 2-norm are differentiable");
  return ad_div(loc, p[0], r);  /* d|x| = x . dx / |x| */
}
static esk_value norm_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  esk_value f = norm_factor(loc, n, p, r);
  esk_value a[1] = {ad_mul(loc, f, d[0])};
  return ad_call(loc, &r_sum, 1, a);
}
static void norm_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                     const int *need, esk_value *out) {
  (void)need;
  out[0] = ad_mul(loc, g, norm_factor(loc, n, p, r));
}
static const ad_rule r_norm = {"norm", norm_primal, norm_jvp, norm_vjp, NULL};

/* det: d det = det tr(A^-1 dA); gA = g det A^-T. */
static esk_value det_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_det(loc, a[0]);
}
static esk_value inv_of(const char *loc, esk_value a) { return ad_call1(loc, &r_inv, a); }
static esk_value det_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  return ad_mul(loc, r, ad_call1(loc, &r_trace, mm(loc, inv_of(loc, p[0]), d[0])));
}
static void det_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)need;
  out[0] = ad_mul(loc, ad_mul(loc, g, r), swap_last(loc, inv_of(loc, p[0])));
}
static const ad_rule r_det = {"det", det_primal, det_jvp, det_vjp, NULL};

/* inv: d(A^-1) = -A^-1 dA A^-1; gA = -A^-T g A^-T. */
static esk_value inv_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_inv(loc, a[0]);
}
static esk_value inv_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)p;
  return ad_neg(loc, mm(loc, mm(loc, r, d[0]), r));
}
static void inv_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)p; (void)need;
  esk_value rt = swap_last(loc, r);
  out[0] = ad_neg(loc, mm(loc, mm(loc, rt, g), rt));
}
static const ad_rule r_inv = {"inv", inv_primal, inv_jvp, inv_vjp, NULL};

/* solve(A, b) = A^-1 b: dx = A^-1 (db - dA x); gb = A^-T g, gA = -gb x^T. */
static esk_value solve_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_solve(loc, a[0], a[1]);
}
static esk_value solve_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n;
  esk_value rhs = ad_sub(loc, d[1], ad_is_zero(d[0]) ? AD_ZERO : mm(loc, d[0], r));
  return ad_call2(loc, &r_solve, p[0], rhs);
}
static void solve_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                      const int *need, esk_value *out) {
  (void)n;
  esk_value gb = ad_call2(loc, &r_solve, swap_last(loc, p[0]), g);
  if (need[1]) out[1] = gb;
  if (need[0]) {
    esk_value rs = shape_of(r);
    esk_value ga = TT(rs)->rank == 1 ? ad_call2(loc, &r_outer, gb, r) : mm(loc, gb, swap_last(loc, r));
    out[0] = ad_neg(loc, ga);
  }
}
static const ad_rule r_solve = {"solve", solve_primal, solve_jvp, solve_vjp, NULL};

/* ---- shape changes ------------------------------------------------------------------------------ */

static const ad_rule r_reshape, r_flatten;
static esk_value reshape_primal(const char *loc, int64_t n, const esk_value *a) {
  return call_prim_n(loc, esk_prim_reshape, n, a);
}
static esk_value reshape_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)p;
  return reshape_to(loc, d[0], shape_of(r));
}
static void reshape_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                        const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = reshape_to(loc, g, shape_of(p[0]));
}
static const ad_rule r_reshape = {"reshape", reshape_primal, reshape_jvp, reshape_vjp, NULL};
static esk_value flatten_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_flatten(loc, a[0]);
}
static const ad_rule r_flatten = {"flatten", flatten_primal, reshape_jvp, reshape_vjp, NULL};

/* tensor-astype: the identity on values; the cotangent goes back to the operand's dtype. */
static const ad_rule r_astype;
static esk_value astype_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  return esk_prim_tensor_astype(loc, a[0], a[1]);
}
static esk_value astype_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return ad_call2(loc, &r_astype, d[0], p[1]);
}
static void astype_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                       const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  esk_value s = shape_of(p[0]);
  if (!is_tensor(s)) {
    out[0] = reshape_to(loc, g, s);
    return;
  }
  const char *name = esk_dtype_name(float_dtype(s));
  out[0] = ad_call2(loc, &r_astype, g, esk_intern(name, (int64_t)strlen(name)));
}
static const ad_rule r_astype = {"tensor-astype", astype_primal, astype_jvp, astype_vjp, NULL};

/* ---- tensor-apply: f elementwise, unrolled through the AD-aware gather and stack --------- */

/* (tensor-apply t f) / (tensor-apply f t) with t an AD tensor (or f closing over AD values):
 * each element is read with the AD-aware gather, f is called on it, and the results are
 * stacked back, so f's own derivative (whatever it closes over) is part of the result. */
static esk_value tensor_apply_ad(const char *loc, esk_value a, esk_value b) {
  esk_value f = a, t = b;
  if (a.tag != ESK_T_CLOSURE) {
    f = b;
    t = a;
  }
  esk_value pt = ad_plain(t);
  if (!is_tensor(pt)) return esk_call(loc, f, 1, &t);
  int64_t n = TT(pt)->size;
  esk_value *ys = esk_alloc((size_t)(n ? n : 1) * sizeof *ys);
  for (int64_t i = 0; i < n; i++) {
    esk_value x = ad_flat_ref(loc, t, i);
    ys[i] = esk_call(loc, f, 1, &x);
    if (!is_real(ad_plain(ys[i]))) esk_error_type(loc, "tensor-apply", "real number result", ys[i]);
  }
  esk_value s = n ? ad_call(loc, &r_stack, n, ys) : esk_tensor_value(esk_tensor_zeros(ESK_DT_F64, 1, &n));
  return reshape_to(loc, s, tmpl(ESK_DT_F64, TT(pt)->rank, TT(pt)->dims));
}

esk_value ad_transpose(const char *loc, esk_value x) { return ad_call1(loc, &r_transpose, x); }

esk_value esk_ad_tensor_apply(const char *loc, esk_value a, esk_value b) {
  return tensor_apply_ad(loc, a, b);
}

/* ---- data movement: slices, gathers, concatenation, ... through an index map ------------- */
/* A builtin that only moves elements (tensor-slice, tensor-gather, tensor-concat, ...) is run
 * on "iota" tensors (each element its own flat index into the concatenation of the data
 * operands); its result is then a map from output elements to input elements, and the result
 * on AD operands is `take` of that map: one pair of rules (take and its transpose, put) serves
 * every such builtin, and their derivatives come for free. */

static const ad_rule r_take, r_put, r_flatcat;

static esk_value take_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  int64_t k;
  double *x = f64_copy(loc, a[0], &k), *m = f64_copy(loc, a[1], &k);
  esk_value like = a[2];
  esk_value r;
  if (!is_tensor(like)) {
    r = esk_flonum(x[(int64_t)m[0]]);
  } else {
    double *o = malloc((size_t)(k ? k : 1) * sizeof(double));
    for (int64_t i = 0; i < k; i++) o[i] = x[(int64_t)m[i]];
    r = from_f64(float_dtype(a[0]), like, o);
    free(o);
  }
  free(x);
  free(m);
  return r;
}
static esk_value take3(const char *loc, const ad_rule *r, esk_value x, esk_value map, esk_value like) {
  esk_value a[3] = {x, map, like};
  return ad_call(loc, r, 3, a);
}
static esk_value take_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return take3(loc, &r_take, d[0], p[1], p[2]);
}
static void take_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                     const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = take3(loc, &r_put, g, p[1], shape_of(p[0]));
}
static const ad_rule r_take = {"%take", take_primal, take_jvp, take_vjp, NULL};

static esk_value put_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)n;
  int64_t k, total = ad_size(a[2]);
  double *y = f64_copy(loc, a[0], &k), *m = f64_copy(loc, a[1], &k);
  double *o = calloc((size_t)(total ? total : 1), sizeof(double));
  for (int64_t i = 0; i < k; i++) o[(int64_t)m[i]] += y[i];
  esk_value r = is_tensor(a[2]) ? from_f64(float_dtype(a[2]), a[2], o) : esk_flonum(o[0]);
  free(y);
  free(m);
  free(o);
  return r;
}
static esk_value put_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)n; (void)r;
  return take3(loc, &r_put, d[0], p[1], p[2]);
}
static void put_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                    const int *need, esk_value *out) {
  (void)n; (void)r; (void)need;
  out[0] = take3(loc, &r_take, g, p[1], shape_of(p[0]));
}
static const ad_rule r_put = {"%put", put_primal, put_jvp, put_vjp, NULL};

/* The flat elements of every operand, one after the other (a vector). */
static esk_value flatcat_primal(const char *loc, int64_t n, const esk_value *a) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++) total += ad_size(a[i]);
  esk_tensor *r = esk_tensor_new(ESK_DT_F64, 1, &total);
  double *o = esk_tensor_data(r);
  for (int64_t i = 0, off = 0; i < n; i++) {
    int64_t k;
    double *x = f64_copy(loc, a[i], &k);
    memcpy(o + off, x, (size_t)k * sizeof(double));
    off += k;
    free(x);
  }
  return n ? place_like(loc, esk_tensor_value(r), a[0]) : esk_tensor_value(r);
}
static esk_value flatcat_jvp(const char *loc, int64_t n, const esk_value *p, const esk_value *d, esk_value r) {
  (void)r;
  esk_value *ts = esk_alloc((size_t)n * sizeof *ts);
  for (int64_t i = 0; i < n; i++) ts[i] = ad_is_zero(d[i]) ? ad_zeros_like(p[i], 0) : d[i];
  return ad_call(loc, &r_flatcat, n, ts);
}
static void flatcat_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
                        const int *need, esk_value *out) {
  (void)r;
  for (int64_t i = 0, off = 0; i < n; i++) {
    if (need[i]) out[i] = gather3(loc, &r_gather, g, off, shape_of(p[i]));
    off += ad_size(p[i]);
  }
}
static const ad_rule r_flatcat = {"%flatcat", flatcat_primal, flatcat_jvp, flatcat_vjp, NULL};

typedef struct {
  int64_t n, total;
  esk_value xs[64];
} movement_data;

/* v's iota (offset by the data seen so far), registering v as a data operand. */
static esk_value iota_for(const char *loc, movement_data *md, esk_value v) {
  if (md->n == 64) esk_errorf(loc, "too many tensor operands to differentiate");
  md->xs[md->n++] = v;
  esk_value p = ad_plain(v);
  double off = (double)md->total;
  md->total += ad_size(p);
  if (!is_tensor(p)) return esk_flonum(off);
  esk_tensor *t = esk_tensor_new(ESK_DT_F64, TT(p)->rank, TT(p)->dims);
  double *o = esk_tensor_data(t);
  for (int64_t i = 0; i < t->size; i++) o[i] = off + (double)i;
  return esk_tensor_value(t);
}

static int is_data(esk_value v) { return is_tensor(ad_plain(v)); }

/* The result R of the builtin on iota operands, turned into takes from src. */
static esk_value map_back(const char *loc, esk_value src, esk_value R) {
  if (R.tag == ESK_T_PAIR) {
    esk_value head = esk_nil(), *tail = &head;
    for (; R.tag == ESK_T_PAIR; R = ((esk_pair *)esk_ptr(R))->cdr) {
      *tail = esk_cons(map_back(loc, src, ((esk_pair *)esk_ptr(R))->car), esk_nil());
      tail = &((esk_pair *)esk_ptr(*tail))->cdr;
    }
    return head;
  }
  if (R.tag == ESK_T_VECTOR) {
    esk_vector *v = esk_ptr(R);
    esk_value out = esk_make_vector(v->len, esk_nil());
    for (int64_t i = 0; i < v->len; i++)
      ((esk_vector *)esk_ptr(out))->items[i] = map_back(loc, src, v->items[i]);
    return out;
  }
  if (is_tensor(R)) {
    esk_value like = shape_of(R);
    if (on_gpu(ad_plain(src))) TT(like)->device = ESK_DEV_CUDA;
    return take3(loc, &r_take, src, R, like);
  }
  if (is_real(R)) return gather3(loc, &r_gather, src, (int64_t)esk_number_to_double(R), esk_flonum(0.0));
  return R;
}

typedef esk_value (*argv_fn)(const char *loc, int64_t argc, esk_value *argv);
static esk_value concat_n(const char *loc, int64_t n, esk_value *a) { return esk_prim_tensor_concat(loc, n, a); }
static esk_value stack_n(const char *loc, int64_t n, esk_value *a) { return esk_prim_tensor_stack(loc, n, a); }
static esk_value split_n(const char *loc, int64_t n, esk_value *a) { return esk_prim_tensor_split(loc, n, a); }
static esk_value slice_n(const char *loc, int64_t n, esk_value *a) { return esk_prim_tensor_slice(loc, n, a); }
static esk_value gather_n(const char *loc, int64_t n, esk_value *a) { return esk_prim_tensor_gather(loc, n, a); }
static esk_value where_n(const char *loc, int64_t n, esk_value *a) { return esk_prim_tensor_where(loc, n, a); }
static esk_value bcast_n(const char *loc, int64_t n, esk_value *a) { (void)n; return esk_prim_tensor_broadcast(loc, a[0], a[1]); }
static esk_value to_list_n(const char *loc, int64_t n, esk_value *a) { (void)n; return esk_prim_tensor_to_list(loc, a[0]); }
static esk_value to_vector_n(const char *loc, int64_t n, esk_value *a) { (void)n; return esk_prim_tensor_to_vector(loc, a[0]); }

/* Which operands are data: FIRST only the first; ALL every tensor (and tensors inside a list
 * operand); WHERE the second and third (numbers included). */
enum { MOVE_FIRST, MOVE_ALL, MOVE_WHERE };
static const struct {
  const char *name;
  argv_fn fn;
  int which;
} movement_builtins[] = {
    {"tensor-slice", slice_n, MOVE_FIRST},   {"tensor-gather", gather_n, MOVE_FIRST},
    {"tensor-split", split_n, MOVE_FIRST},   {"tensor-broadcast", bcast_n, MOVE_FIRST},
    {"tensor->list", to_list_n, MOVE_FIRST}, {"tensor->vector", to_vector_n, MOVE_FIRST},
    {"tensor-concat", concat_n, MOVE_ALL},   {"tensor-stack", stack_n, MOVE_ALL},
    {"tensor-where", where_n, MOVE_WHERE},
};

/* (tensor-slice t start end) with exact bounds on a contiguous tensor: rows [start, end) of
 * axis 0 are one flat block, taken by the gather rule (whose cotangent adds in place). */
static int slice_block(const char *loc, int64_t argc, const esk_value *argv, esk_value *out) {
  if (argc != 3 || argv[1].tag != ESK_T_FIXNUM || argv[2].tag != ESK_T_FIXNUM) return 0;
  esk_value p = ad_plain(argv[0]);
  if (!is_tensor(p) || on_gpu(p) || TT(p)->rank == 0 || !esk_tensor_is_contiguous(TT(p))) return 0;
  esk_tensor *t = TT(p);
  int64_t lo = argv[1].payload, hi = argv[2].payload;
  if (lo < 0 || hi < lo || hi > t->dims[0]) return 0;
  int64_t dims[ESK_TENSOR_MAX_RANK], row = t->dims[0] ? t->size / t->dims[0] : 0;
  memcpy(dims, t->dims, sizeof dims);
  dims[0] = hi - lo;
  *out = gather3(loc, &r_gather, argv[0], lo * row, tmpl(float_dtype(p), t->rank, dims));
  return 1;
}

static esk_value movement(const char *loc, argv_fn fn, int which, int64_t argc, const esk_value *argv) {
  esk_value fast;
  if (fn == slice_n && slice_block(loc, argc, argv, &fast)) return fast;
  movement_data *md = esk_alloc(sizeof *md);
  esk_value *a = esk_alloc((size_t)(argc ? argc : 1) * sizeof *a);
  for (int64_t i = 0; i < argc; i++) {
    esk_value v = argv[i];
    int data = which == MOVE_FIRST ? i == 0 : which == MOVE_WHERE ? (i == 1 || i == 2) : is_data(v);
    if (which == MOVE_ALL && v.tag == ESK_T_PAIR) { /* (tensor-concat (list t ...) axis) */
      esk_value head = esk_nil(), *tail = &head;
      for (; v.tag == ESK_T_PAIR; v = ((esk_pair *)esk_ptr(v))->cdr) {
        esk_value x = ((esk_pair *)esk_ptr(v))->car;
        *tail = esk_cons(is_data(x) ? iota_for(loc, md, x) : x, esk_nil());
        tail = &((esk_pair *)esk_ptr(*tail))->cdr;
      }
      a[i] = head;
    } else {
      a[i] = data ? iota_for(loc, md, v) : ad_plain(v);
    }
  }
  esk_value R = fn(loc, argc, a);
  esk_value src = md->n == 1 ? md->xs[0] : ad_call(loc, &r_flatcat, md->n, md->xs);
  return map_back(loc, src, R);
}

/* tensor-variance / tensor-std: recomposed from AD-aware mean, subtraction and square, so the
 * derivative (of any order) follows. */
static esk_value variance_ad(const char *loc, int64_t argc, const esk_value *argv, int std) {
  esk_value x = argv[0], pt = shape_of(x);
  if (!is_tensor(pt)) esk_errorf(loc, "%s: expected a tensor", std ? "tensor-std" : "tensor-variance");
  int64_t ax = argc > 1 ? axis_of(pt, argc, argv) : -1;
  esk_value a[2] = {x, argc > 1 ? argv[1] : AD_ZERO};
  esk_value m = ad_call(loc, &r_mean, argc > 1 ? 2 : 1, a);
  esk_value dev = esk_prim_sub2(loc, x, ax >= 0 ? reshape_to(loc, m, keepdims_shape(pt, ax)) : m);
  a[0] = esk_prim_mul2(loc, dev, dev);
  esk_value v = ad_call(loc, &r_mean, argc > 1 ? 2 : 1, a);
  return std ? esk_prim_sqrt(loc, v) : v;
}

/* ---- queries: a plain answer from the plain value ------------------------------------------ */

#define QUERY_RULE(NAME, SCHEME, CALL)                                                     \
  static esk_value NAME##_primal(const char *loc, int64_t n, const esk_value *a) {         \
    (void)n;                                                                               \
    return CALL;                                                                           \
  }                                                                                        \
  static const ad_rule r_##NAME = {SCHEME, NAME##_primal, NULL, NULL, NULL};
QUERY_RULE(shape, "tensor-shape", esk_prim_tensor_shape(loc, a[0]))
QUERY_RULE(rank, "tensor-rank", esk_prim_tensor_rank(loc, a[0]))
QUERY_RULE(tsize, "tensor-size", esk_prim_tensor_size(loc, a[0]))
QUERY_RULE(dtype, "tensor-dtype", esk_prim_tensor_dtype(loc, a[0]))
QUERY_RULE(vlen, "vector-length", esk_prim_vector_length(loc, a[0]))
QUERY_RULE(zlike, "zeros-like", esk_prim_zeros_like(loc, a[0]))
QUERY_RULE(olike, "ones-like", esk_prim_ones_like(loc, a[0]))
QUERY_RULE(teq, "tensor-eq", esk_prim_tensor_eq(loc, a[0], a[1]))
QUERY_RULE(tne, "tensor-ne", esk_prim_tensor_ne(loc, a[0], a[1]))
QUERY_RULE(tlt, "tensor-lt", esk_prim_tensor_lt(loc, a[0], a[1]))
QUERY_RULE(tgt, "tensor-gt", esk_prim_tensor_gt(loc, a[0], a[1]))
QUERY_RULE(tle, "tensor-le", esk_prim_tensor_le(loc, a[0], a[1]))
QUERY_RULE(tge, "tensor-ge", esk_prim_tensor_ge(loc, a[0], a[1]))
QUERY_RULE(argmax, "tensor-argmax", call_prim_n(loc, esk_prim_tensor_argmax, n, a))
QUERY_RULE(argmin, "tensor-argmin", call_prim_n(loc, esk_prim_tensor_argmin, n, a))

/* ---- the table ------------------------------------------------------------------------------ */

static const struct {
  const char *name;
  const ad_rule *rule;
  int op, argc;  /* elementwise builtins: the ESK_OP_* rule of ad_rules.c */
} tensor_rules[] = {
    {"tensor-get", &r_tensor_get, 0, 0}, {"tensor-ref", &r_tensor_ref, 0, 0},
    {"vref", &r_vref, 0, 0}, {"vector-ref", &r_vector_ref, 0, 0},
    {"car", &r_car, 0, 0}, {"cdr", &r_cdr, 0, 0},
    {"%tensor-literal", &r_tlit, 0, 0},
    {"tensor-sum", &r_sum, 0, 0}, {"tensor-mean", &r_mean, 0, 0},
    {"tensor-max", &r_tmax, 0, 0}, {"tensor-min", &r_tmin, 0, 0},
    {"matmul", &r_matmul, 0, 0}, {"tensor-dot", &r_tdot, 0, 0}, {"outer", &r_outer, 0, 0},
    {"transpose", &r_transpose, 0, 0}, {"trace", &r_trace, 0, 0}, {"norm", &r_norm, 0, 0},
    {"det", &r_det, 0, 0}, {"inv", &r_inv, 0, 0}, {"solve", &r_solve, 0, 0},
    {"reshape", &r_reshape, 0, 0}, {"flatten", &r_flatten, 0, 0},
    {"tensor-astype", &r_astype, 0, 0},
    {"tensor-shape", &r_shape, 0, 0}, {"tensor-rank", &r_rank, 0, 0},
    {"tensor-size", &r_tsize, 0, 0}, {"tensor-dtype", &r_dtype, 0, 0},
    {"vector-length", &r_vlen, 0, 0}, {"zeros-like", &r_zlike, 0, 0},
    {"ones-like", &r_olike, 0, 0}, {"tensor-eq", &r_teq, 0, 0}, {"tensor-ne", &r_tne, 0, 0},
    {"tensor-lt", &r_tlt, 0, 0}, {"tensor-gt", &r_tgt, 0, 0}, {"tensor-le", &r_tle, 0, 0},
    {"tensor-ge", &r_tge, 0, 0}, {"tensor-argmax", &r_argmax, 0, 0},
    {"tensor-argmin", &r_argmin, 0, 0},
    {"tensor-add", NULL, ESK_OP_ADD, 2}, {"tensor-sub", NULL, ESK_OP_SUB, 2},
    {"tensor-mul", NULL, ESK_OP_MUL, 2}, {"tensor-div", NULL, ESK_OP_DIV, 2},
    {"tensor-pow", NULL, ESK_OP_EXPT, 2}, {"tensor-scale", NULL, ESK_OP_MUL, 2},
    {"tensor-maximum", NULL, ESK_OP_MAX, 2}, {"tensor-minimum", NULL, ESK_OP_MIN, 2},
    {"tensor-neg", NULL, ESK_OP_NEG, 1}, {"tensor-abs", NULL, ESK_OP_ABS, 1},
    {"tensor-sqrt", NULL, ESK_OP_SQRT, 1}, {"tensor-exp", NULL, ESK_OP_EXP, 1},
    {"tensor-log", NULL, ESK_OP_LOG, 1}, {"tensor-sin", NULL, ESK_OP_SIN, 1},
    {"tensor-cos", NULL, ESK_OP_COS, 1}, {"tensor-tan", NULL, ESK_OP_TAN, 1},
    {"tensor-tanh", NULL, ESK_OP_TANH, 1}, {"tensor-square", NULL, ESK_OP_SQUARE, 1},
};

const ad_rule *ad_tensor_rule_by_name(const char *name) {
  for (size_t i = 0; i < sizeof tensor_rules / sizeof tensor_rules[0]; i++)
    if (!strcmp(tensor_rules[i].name, name))
      return tensor_rules[i].rule ? tensor_rules[i].rule
                                  : ad_rule_for_op(tensor_rules[i].op, tensor_rules[i].argc);
  return NULL;
}

/* Builtins whose AD handling is not one rule application. */
int ad_tensor_special(const char *loc, const char *name, int64_t argc, const esk_value *argv,
                      esk_value *out) {
  if (!strcmp(name, "tensor-apply") && argc == 2) {
    *out = tensor_apply_ad(loc, argv[0], argv[1]);
    return 1;
  }
  if (!strcmp(name, "tensor")) {
    *out = tensor_ctor(loc, argc, argv);
    return 1;
  }
  if (!strcmp(name, "tensor-variance") || !strcmp(name, "tensor-std")) {
    *out = variance_ad(loc, argc, argv, name[7] == 's');
    return 1;
  }
  for (size_t i = 0; i < sizeof movement_builtins / sizeof movement_builtins[0]; i++)
    if (!strcmp(name, movement_builtins[i].name)) {
      *out = movement(loc, movement_builtins[i].fn, movement_builtins[i].which, argc, argv);
      return 1;
    }
  return 0;
}
