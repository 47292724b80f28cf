/* Fast paths of the reverse-mode tensor rules for first-order gradients: when every operand of
 * a rule's step is a plain (non-AD) contiguous host tensor of one float dtype, the step runs as
 * one native-dtype loop or BLAS call here instead of the generic composition of AD-aware
 * operations (which round-trips through f64 copies, materializes transposes and broadcasts,
 * and allocates a fresh tensor per intermediate).  Each function returns 1 and sets its output
 * when it applied, 0 to let the generic rule run (AD operands, i.e. nested differentiation,
 * GPU tensors, integer dtypes, strided views, unusual shapes).  Results match the generic path
 * up to floating-point summation order. */
#include <stdlib.h>
#include <string.h>

#include "ad.h"
#include "tensor_internal.h"
#include "tensor_linalg.h"

#define TT(v) ((esk_tensor *)esk_ptr(v))

/* A plain host tensor of a float dtype whose elements are contiguous (data usable as an
 * array). */
static int plain_float(esk_value v) {
  if (v.tag != ESK_T_TENSOR) return 0;
  esk_tensor *t = TT(v);
  return t->device == ESK_DEV_HOST && (t->dtype == ESK_DT_F64 || t->dtype == ESK_DT_F32) &&
         t->buf && esk_tensor_is_contiguous(t);
}

static int same_dims(const esk_tensor *a, const esk_tensor *b) {
  return a->rank == b->rank && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof(int64_t));
}

/* A header over x's buffer with like's dims (sizes agree, x contiguous). */
static esk_value view_as(esk_tensor *x, const esk_tensor *like) {
  esk_tensor *v = esk_t_view(x);
  v->rank = like->rank;
  memcpy(v->dims, like->dims, sizeof v->dims);
  esk_t_row_major(v->rank, v->dims, v->strides);
  return esk_tensor_value(v);
}

int ad_fast_reshape(esk_value x, esk_value like, esk_value *out) {
  if (!plain_float(x) || like.tag != ESK_T_TENSOR || TT(like)->device != ESK_DEV_HOST ||
      TT(x)->size != TT(like)->size)
    return 0;
  *out = view_as(TT(x), TT(like));
  return 1;
}

int ad_fast_gather(esk_value x, int64_t off, esk_value like, esk_value *out) {
  if (!plain_float(x) || like.tag != ESK_T_TENSOR || TT(like)->device != ESK_DEV_HOST) return 0;
  esk_tensor *t = TT(x), *l = TT(like);
  if (off < 0 || off + l->size > t->size) return 0;
  esk_tensor *r = esk_tensor_new(t->dtype, l->rank, l->dims);
  size_t es = esk_dtype_size(t->dtype);
  memcpy(esk_tensor_data(r), (char *)esk_tensor_data(t) + off * (int64_t)es, (size_t)l->size * es);
  *out = esk_tensor_value(r);
  return 1;
}

/* dst[i] += src[i] for n elements of one float dtype. */
static void add_into(int dt, void *dst, const void *src, int64_t n) {
  if (dt == ESK_DT_F32) {
    float *d = dst;
    const float *s = src;
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
  } else {
    double *d = dst;
    const double *s = src;
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
  }
}

int ad_fast_accum_range(esk_adnode *parent, esk_value g, int64_t off) {
  esk_value pv = parent->value;
  if (!plain_float(pv) || !plain_float(g) || TT(g)->dtype != TT(pv)->dtype) return 0;
  esk_tensor *p = TT(pv), *gt = TT(g);
  if (off < 0 || off + gt->size > p->size) return 0;
  if (ad_is_zero(parent->adj)) {
    parent->adj = esk_tensor_value(esk_tensor_zeros(p->dtype, p->rank, p->dims));
    parent->adj_owned = 1;
  } else if (!parent->adj_owned || !plain_float(parent->adj) ||
             TT(parent->adj)->dtype != p->dtype || !same_dims(TT(parent->adj), p)) {
    return 0;
  }
  size_t es = esk_dtype_size(p->dtype);
  add_into(p->dtype, (char *)esk_tensor_data(TT(parent->adj)) + off * (int64_t)es,
           esk_tensor_data(gt), gt->size);
  return 1;
}

int ad_fast_accumulate(esk_adnode *parent, esk_value c) {
  esk_value a = parent->adj;
  if (!parent->adj_owned || !plain_float(a) || !plain_float(c)) return 0;
  esk_tensor *at = TT(a), *ct = TT(c);
  if (at->dtype != ct->dtype || !same_dims(at, ct) || at->buf == ct->buf) return 0;
  add_into(at->dtype, esk_tensor_data(at), esk_tensor_data(ct), at->size);
  return 1;
}

int ad_fast_bcast(esk_value x, esk_value like, esk_value *out) {
  if (like.tag != ESK_T_TENSOR) return 0;
  esk_tensor *l = TT(like);
  if (l->device != ESK_DEV_HOST || (l->dtype != ESK_DT_F64 && l->dtype != ESK_DT_F32)) return 0;
  if (x.tag != ESK_T_FLONUM && x.tag != ESK_T_FIXNUM) return 0;
  esk_tensor *r = esk_tensor_new(l->dtype, l->rank, l->dims);
  double v = x.tag == ESK_T_FLONUM ? esk_flonum_value(x) : (double)x.payload;
  if (l->dtype == ESK_DT_F32) {
    float *d = esk_tensor_data(r);
    for (int64_t i = 0; i < r->size; i++) d[i] = (float)v;
  } else {
    double *d = esk_tensor_data(r);
    for (int64_t i = 0; i < r->size; i++) d[i] = v;
  }
  *out = esk_tensor_value(r);
  return 1;
}

int ad_fast_unbcast(esk_value x, esk_value like, esk_value *out) {
  if (!plain_float(x) || like.tag != ESK_T_TENSOR || TT(like)->device != ESK_DEV_HOST) return 0;
  esk_tensor *t = TT(x), *l = TT(like);
  if (l->dtype != t->dtype || l->rank > t->rank) return 0;
  /* like's dims must be x's trailing dims: the leading axes are summed away. */
  int64_t lead = t->rank - l->rank;
  for (int64_t d = 0; d < l->rank; d++)
    if (l->dims[d] != t->dims[lead + d]) return 0;
  int64_t m = l->size, rows = m ? t->size / m : 0;
  esk_tensor *r = esk_tensor_new(t->dtype, l->rank, l->dims);
  /* Row sums in double (f32 too: as accurate as the f64 path it replaces). */
  double *acc = calloc((size_t)(m ? m : 1), sizeof(double));
  if (t->dtype == ESK_DT_F32) {
    const float *s = esk_tensor_data(t);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < m; j++) acc[j] += s[i * m + j];
    float *d = esk_tensor_data(r);
    for (int64_t j = 0; j < m; j++) d[j] = (float)acc[j];
  } else {
    const double *s = esk_tensor_data(t);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < m; j++) acc[j] += s[i * m + j];
    memcpy(esk_tensor_data(r), acc, (size_t)m * sizeof(double));
  }
  free(acc);
  *out = esk_tensor_value(r);
  return 1;
}

int ad_fast_matmul_vjp(const char *loc, const esk_value *p, esk_value g, const int *need,
                       esk_value *out) {
  if (!plain_float(p[0]) || !plain_float(p[1]) || !plain_float(g)) return 0;
  esk_tensor *a = TT(p[0]), *b = TT(p[1]), *gt = TT(g);
  if (a->rank != 2 || b->rank != 2 || gt->rank != 2 || a->dtype != b->dtype ||
      gt->dtype != a->dtype || gt->dims[0] != a->dims[0] || gt->dims[1] != b->dims[1])
    return 0;
  /* gA = g B^T, gB = A^T g: the transposes are views the GEMM reads with a transpose flag. */
  if (need[0]) out[0] = esk_la_matmul(loc, "matmul", gt, esk_t_swap_last_axes(b));
  if (need[1]) out[1] = esk_la_matmul(loc, "matmul", esk_t_swap_last_axes(a), gt);
  return 1;
}

int ad_fast_minmax_vjp(const esk_value *p, esk_value g, const int *need, esk_value *out,
                       int want_max) {
  /* The common activation case: a tensor against a number (relu is (max x 0)). */
  int k = p[0].tag == ESK_T_TENSOR ? 0 : 1;
  esk_value t = p[k], s = p[1 - k];
  if (!plain_float(t) || !plain_float(g) || (s.tag != ESK_T_FLONUM && s.tag != ESK_T_FIXNUM) ||
      need[1 - k])
    return 0;
  esk_tensor *x = TT(t), *gt = TT(g);
  if (gt->dtype != x->dtype || !same_dims(gt, x)) return 0;
  double c = s.tag == ESK_T_FLONUM ? esk_flonum_value(s) : (double)s.payload;
  esk_tensor *r = esk_tensor_new(x->dtype, x->rank, x->dims);
  /* Picked where t wins; ties pick the first operand (as the generic mask does).  One loop
   * per comparison, so that each is a branch-free select the compiler vectorizes. */
  int cmp = want_max ? (k == 0 ? 0 : 1) : (k == 0 ? 2 : 3); /* >=  >  <=  < */
#define SELECT(T, ZERO)                                                                    \
  do {                                                                                     \
    const T *xs = esk_tensor_data(x), *gs = esk_tensor_data(gt);                           \
    T *d = esk_tensor_data(r), cv = (T)c;                                                  \
    int64_t n = x->size;                                                                   \
    switch (cmp) {                                                                         \
      case 0: for (int64_t i = 0; i < n; i++) d[i] = xs[i] >= cv ? gs[i] : ZERO; break;    \
      case 1: for (int64_t i = 0; i < n; i++) d[i] = xs[i] > cv ? gs[i] : ZERO; break;     \
      case 2: for (int64_t i = 0; i < n; i++) d[i] = xs[i] <= cv ? gs[i] : ZERO; break;    \
      default: for (int64_t i = 0; i < n; i++) d[i] = xs[i] < cv ? gs[i] : ZERO; break;    \
    }                                                                                      \
  } while (0)
  if (x->dtype == ESK_DT_F32) SELECT(float, 0.0f);
  else SELECT(double, 0.0);
#undef SELECT
  out[k] = esk_tensor_value(r);
  return 1;
}
