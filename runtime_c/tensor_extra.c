/* Extended tensor operations: comparisons and selection with numpy broadcasting
 * (tensor-eq tensor-lt tensor-gt tensor-le tensor-ge tensor-ne tensor-where tensor-broadcast),
 * joining and cutting (tensor-concat tensor-stack tensor-split tensor-slice) and indexing
 * (tensor-gather).  Results are fresh contiguous tensors. */
#include <stdlib.h>

#include "tensor_internal.h"
#include "tensor_linalg.h"

/* ---- broadcasting --------------------------------------------------------------------- */

/* The broadcast shape of n tensors (numpy rules) into dims; returns its rank. */
static int64_t broadcast_shape(const char *loc, const char *who, int n, esk_tensor **ts,
                               int64_t *dims) {
  int64_t r = 0;
  for (int i = 0; i < n; i++) r = ts[i]->rank > r ? ts[i]->rank : r;
  for (int64_t d = 0; d < r; d++) dims[d] = 1;
  for (int i = 0; i < n; i++) {
    const esk_tensor *t = ts[i];
    for (int64_t d = 0; d < t->rank; d++) {
      int64_t od = r - t->rank + d, x = t->dims[d];
      if (x == dims[od] || x == 1) continue;
      if (dims[od] != 1) {
        char s0[256], s1[256];
        esk_errorf(loc, "%s: shapes %s and %s do not broadcast", who,
                   esk_shape_text(ts[0], s0, sizeof s0), esk_shape_text(t, s1, sizeof s1));
      }
      dims[od] = x;
    }
  }
  return r;
}

/* Element strides of t seen as a tensor of shape dims (rank r): 0 along broadcast axes. */
static void broadcast_strides(const esk_tensor *t, int64_t r, const int64_t *dims, int64_t *st) {
  for (int64_t d = 0; d < r; d++) {
    int64_t td = d - (r - t->rank);
    st[d] = td >= 0 && t->dims[td] == dims[d] ? t->strides[td] : 0;
  }
}

/* Visit every index of shape dims (rank r) in row-major order, keeping the element offsets of
 * n operands with strides st[k] (starting at base[k]) in off[k]. */
#define BROADCAST_FOREACH(R, DIMS, N, ST, BASE, OFF, ...)                                   \
  do {                                                                                      \
    int64_t idx_[ESK_TENSOR_MAX_RANK] = {0}, total_ = 1;                                    \
    for (int64_t d_ = 0; d_ < (R); d_++) total_ *= (DIMS)[d_];                              \
    for (int k_ = 0; k_ < (N); k_++) (OFF)[k_] = (BASE)[k_];                                \
    for (int64_t n_ = 0; n_ < total_; n_++) {                                               \
      __VA_ARGS__;                                                                          \
      for (int64_t d_ = (R) - 1; d_ >= 0; d_--) {                                           \
        for (int k_ = 0; k_ < (N); k_++) (OFF)[k_] += (ST)[k_][d_];                         \
        if (++idx_[d_] < (DIMS)[d_]) break;                                                 \
        for (int k_ = 0; k_ < (N); k_++) (OFF)[k_] -= (ST)[k_][d_] * (DIMS)[d_];            \
        idx_[d_] = 0;                                                                       \
      }                                                                                     \
    }                                                                                       \
  } while (0)

/* A host tensor argument (GPU tensors are copied to the host: no device kernels here). */
static esk_tensor *arg(const char *loc, const char *who, esk_value v) {
  return esk_la_arg(loc, who, v);
}

/* ---- comparisons ------------------------------------------------------------------------ */

enum { CMP_EQ, CMP_NE, CMP_LT, CMP_GT, CMP_LE, CMP_GE };

/* The common case of a comparison in one loop per operator, which the compiler vectorizes:
 * contiguous f64 tensors of one shape, or one against a single number (a mask like relu's
 * (tensor-ge x 0.0), which a transformed gradient computes at every call).  0 when the
 * operands are of another kind (the general loop then runs). */
static int compare_f64_fast(int op, const esk_tensor *a, const esk_tensor *b, esk_tensor *out) {
  if (a->dtype != ESK_DT_F64 || b->dtype != ESK_DT_F64 || !esk_tensor_is_contiguous(a) ||
      !esk_tensor_is_contiguous(b) || (b->size != 1 && b->size != a->size) || a->size != out->size)
    return 0;
  const double *x = esk_tensor_data(a), *y = esk_tensor_data(b);
  double *o = esk_tensor_data(out);
  int64_t n = out->size, sb = b->size == 1 && n != 1 ? 0 : 1;
#define CMP_LOOP(EXPR) for (int64_t i = 0; i < n; i++) o[i] = (x[i] EXPR y[i * sb]) ? 1.0 : 0.0
  switch (op) {
    case CMP_EQ: CMP_LOOP(==); break;
    case CMP_NE: CMP_LOOP(!=); break;
    case CMP_LT: CMP_LOOP(<); break;
    case CMP_GT: CMP_LOOP(>); break;
    case CMP_LE: CMP_LOOP(<=); break;
    default: CMP_LOOP(>=); break;
  }
#undef CMP_LOOP
  return 1;
}

static esk_value compare(const char *loc, const char *who, int op, esk_value av, esk_value bv) {
  esk_value ad[2] = {av, bv};
  if (esk_ad_any(2, ad)) return esk_ad_tensor_prim(loc, who, 2, ad);
  esk_tensor *ts[2] = {arg(loc, who, av), arg(loc, who, bv)};
  int64_t dims[ESK_TENSOR_MAX_RANK], st[2][ESK_TENSOR_MAX_RANK], off[2];
  int64_t r = broadcast_shape(loc, who, 2, ts, dims);
  int64_t base[2] = {ts[0]->offset, ts[1]->offset};
  broadcast_strides(ts[0], r, dims, st[0]);
  broadcast_strides(ts[1], r, dims, st[1]);
  esk_tensor *out = esk_tensor_new(ESK_DT_F64, r, dims);
  double *o = esk_tensor_data(out);
  if (compare_f64_fast(op, ts[0], ts[1], out)) return esk_tensor_value(out);
  const void *pa = t_base(ts[0]), *pb = t_base(ts[1]);
  int da = ts[0]->dtype, db = ts[1]->dtype;
  int exact = da == ESK_DT_I64 && db == ESK_DT_I64; /* compare int64 exactly */
  BROADCAST_FOREACH(r, dims, 2, st, base, off, {
    int res;
    if (exact) {
      int64_t x = ((const int64_t *)pa)[off[0]], y = ((const int64_t *)pb)[off[1]];
      res = op == CMP_EQ ? x == y : op == CMP_NE ? x != y : op == CMP_LT ? x < y
          : op == CMP_GT ? x > y : op == CMP_LE ? x <= y : x >= y;
    } else {
      double x = t_load(pa, da, off[0]), y = t_load(pb, db, off[1]);
      res = op == CMP_EQ ? x == y : op == CMP_NE ? x != y : op == CMP_LT ? x < y
          : op == CMP_GT ? x > y : op == CMP_LE ? x <= y : x >= y;
    }
    o[n_] = res ? 1.0 : 0.0;
  });
  return esk_tensor_value(out);
}

esk_value esk_prim_tensor_eq(const char *loc, esk_value a, esk_value b) {
  return compare(loc, "tensor-eq", CMP_EQ, a, b);
}
esk_value esk_prim_tensor_ne(const char *loc, esk_value a, esk_value b) {
  return compare(loc, "tensor-ne", CMP_NE, a, b);
}
esk_value esk_prim_tensor_lt(const char *loc, esk_value a, esk_value b) {
  return compare(loc, "tensor-lt", CMP_LT, a, b);
}
esk_value esk_prim_tensor_gt(const char *loc, esk_value a, esk_value b) {
  return compare(loc, "tensor-gt", CMP_GT, a, b);
}
esk_value esk_prim_tensor_le(const char *loc, esk_value a, esk_value b) {
  return compare(loc, "tensor-le", CMP_LE, a, b);
}
esk_value esk_prim_tensor_ge(const char *loc, esk_value a, esk_value b) {
  return compare(loc, "tensor-ge", CMP_GE, a, b);
}

/* (tensor-where cond a b): a where cond is nonzero, else b; all three broadcast. */
esk_value esk_prim_tensor_where(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-where", argc, argv);
  const char *who = "tensor-where";
  esk_tensor *ts[3] = {arg(loc, who, argv[0]), arg(loc, who, argv[1]), arg(loc, who, argv[2])};
  int64_t dims[ESK_TENSOR_MAX_RANK], st[3][ESK_TENSOR_MAX_RANK], off[3];
  int64_t r = broadcast_shape(loc, who, 3, ts, dims);
  int64_t base[3] = {ts[0]->offset, ts[1]->offset, ts[2]->offset};
  for (int k = 0; k < 3; k++) broadcast_strides(ts[k], r, dims, st[k]);
  int dt = esk_la_result_dtype(ts[1], ts[2]);
  esk_tensor *out = esk_tensor_new(dt, r, dims);
  void *o = esk_tensor_data(out);
  const void *pc = t_base(ts[0]), *pa = t_base(ts[1]), *pb = t_base(ts[2]);
  int dc = ts[0]->dtype, da = ts[1]->dtype, db = ts[2]->dtype;
  BROADCAST_FOREACH(r, dims, 3, st, base, off, {
    int pick = t_load(pc, dc, off[0]) != 0;
    if (dt == ESK_DT_I64)
      ((int64_t *)o)[n_] = pick ? ((const int64_t *)pa)[off[1]] : ((const int64_t *)pb)[off[2]];
    else
      t_store(o, dt, n_, pick ? t_load(pa, da, off[1]) : t_load(pb, db, off[2]));
  });
  return esk_tensor_value(out);
}

/* ---- shapes given as arguments ----------------------------------------------------------- */

/* A non-negative exact integer. */
static int64_t dim_value(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_FIXNUM || v.payload < 0)
    esk_error_type(loc, who, "dimension (non-negative exact integer)", v);
  return v.payload;
}

/* A shape from a list, vector or 1-D tensor of dimensions; returns the rank. */
static int64_t shape_value(const char *loc, const char *who, esk_value v, int64_t *dims) {
  int64_t r = 0;
  if (v.tag == ESK_T_TENSOR) {
    esk_tensor *t = TENSOR(v);
    if (t->rank != 1 || t->size > ESK_TENSOR_MAX_RANK) esk_error_type(loc, who, "shape", v);
    for (int64_t i = 0; i < t->size; i++) {
      double x = esk_tensor_get_flat(t, i);
      if (x < 0 || x != (double)(int64_t)x) esk_error_type(loc, who, "shape", v);
      dims[r++] = (int64_t)x;
    }
    return r;
  }
  if (v.tag == ESK_T_FIXNUM) {
    dims[0] = dim_value(loc, who, v);
    return 1;
  }
  if (v.tag == ESK_T_VECTOR) {
    esk_vector *vec = esk_ptr(v);
    if (vec->len > ESK_TENSOR_MAX_RANK) esk_error_type(loc, who, "shape", v);
    for (int64_t i = 0; i < vec->len; i++) dims[r++] = dim_value(loc, who, vec->items[i]);
    return r;
  }
  for (; v.tag == ESK_T_PAIR; v = ((esk_pair *)esk_ptr(v))->cdr) {
    if (r == ESK_TENSOR_MAX_RANK)
      esk_errorf(loc, "%s: at most %d dimensions are supported", who, ESK_TENSOR_MAX_RANK);
    dims[r++] = dim_value(loc, who, ((esk_pair *)esk_ptr(v))->car);
  }
  if (v.tag != ESK_T_NIL) esk_error_type(loc, who, "shape (list of dimensions)", v);
  return r;
}

/* (tensor-broadcast t shape): t repeated along broadcast axes to exactly `shape`. */
esk_value esk_prim_tensor_broadcast(const char *loc, esk_value tv, esk_value sv) {
  esk_value ad[2] = {tv, sv};
  if (esk_ad_any(2, ad)) return esk_ad_tensor_prim(loc, "tensor-broadcast", 2, ad);
  const char *who = "tensor-broadcast";
  esk_tensor *t = arg(loc, who, tv);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t r = shape_value(loc, who, sv, dims);
  int ok = r >= t->rank;
  for (int64_t d = 0; ok && d < t->rank; d++) {
    int64_t x = t->dims[d], y = dims[r - t->rank + d];
    ok = x == y || x == 1;
  }
  if (!ok) {
    char s0[256];
    esk_errorf(loc, "%s: shape %s does not broadcast to the requested shape", who,
               esk_shape_text(t, s0, sizeof s0));
  }
  esk_tensor *v = esk_t_view(t);
  v->rank = r;
  int64_t st[ESK_TENSOR_MAX_RANK];
  broadcast_strides(t, r, dims, st);
  int64_t size = 1;
  for (int64_t d = 0; d < r; d++) v->dims[d] = dims[d], v->strides[d] = st[d], size *= dims[d];
  v->size = size;
  return esk_tensor_value(esk_tensor_contiguous(v));
}

/* ---- concat, stack, split, slice --------------------------------------------------------- */

/* The tensors of a join: arguments, or one list of tensors; an exact integer first or last is
 * the axis (v1.x's (concatenate axis t ...) and (tensor-concat t ... axis) both work). */
static int64_t join_args(const char *loc, const char *who, int64_t argc, esk_value *argv,
                         esk_tensor ***out, esk_value *axis) {
  *axis = (esk_value){ESK_T_FIXNUM, 0};
  if (argc >= 2 && argv[0].tag == ESK_T_FIXNUM) {
    *axis = argv[0];
    argv++, argc--;
  } else if (argc >= 2 && argv[argc - 1].tag == ESK_T_FIXNUM) {
    *axis = argv[argc - 1];
    argc--;
  }
  esk_value single = argc == 1 ? argv[0] : (esk_value){ESK_T_VOID, 0};
  int64_t n = 0;
  if (single.tag == ESK_T_PAIR || single.tag == ESK_T_NIL) {
    for (esk_value l = single; l.tag == ESK_T_PAIR; l = ((esk_pair *)esk_ptr(l))->cdr) n++;
    *out = esk_alloc((size_t)(n ? n : 1) * sizeof(esk_tensor *));
    int64_t i = 0;
    for (esk_value l = single; l.tag == ESK_T_PAIR; l = ((esk_pair *)esk_ptr(l))->cdr)
      (*out)[i++] = arg(loc, who, ((esk_pair *)esk_ptr(l))->car);
  } else {
    n = argc;
    *out = esk_alloc((size_t)(n ? n : 1) * sizeof(esk_tensor *));
    for (int64_t i = 0; i < n; i++) (*out)[i] = arg(loc, who, argv[i]);
  }
  if (n == 0) esk_errorf(loc, "%s: expected at least one tensor", who);
  return n;
}

/* Copy src into the block of dst starting at index `start` along `axis` (same other dims). */
static void copy_block(esk_tensor *dst, int64_t axis, int64_t start, esk_tensor *src) {
  esk_tensor *v = esk_t_view(dst);
  v->offset += start * dst->strides[axis];
  v->dims[axis] = src->dims[axis];
  v->size = src->size;
  esk_t_copy_into(v, src);
}

static esk_value concat(const char *loc, const char *who, int64_t n, esk_tensor **ts,
                        esk_value axisv) {
  esk_tensor *t0 = ts[0];
  if (t0->rank == 0) esk_errorf(loc, "%s: cannot join rank-0 tensors", who);
  int64_t axis = esk_t_axis(loc, who, axisv, t0->rank);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  memcpy(dims, t0->dims, sizeof dims);
  dims[axis] = 0;
  int dt = t0->dtype;
  for (int64_t i = 0; i < n; i++) {
    esk_tensor *t = ts[i];
    int ok = t->rank == t0->rank;
    for (int64_t d = 0; ok && d < t->rank; d++) ok = d == axis || t->dims[d] == t0->dims[d];
    if (!ok) esk_error_shapes(loc, who, t0, t);
    dims[axis] += t->dims[axis];
    if (t->dtype != dt) dt = ESK_DT_F64;
  }
  esk_tensor *out = esk_tensor_new(dt, t0->rank, dims);
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ts[i]->size) copy_block(out, axis, at, ts[i]);
    at += ts[i]->dims[axis];
  }
  return esk_tensor_value(out);
}

/* (tensor-concat t ... [axis]) / (tensor-concat (list t ...) [axis]) / (concatenate axis t ...) */
esk_value esk_prim_tensor_concat(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-concat", argc, argv);
  esk_tensor **ts;
  esk_value axis;
  int64_t n = join_args(loc, "tensor-concat", argc, argv, &ts, &axis);
  return concat(loc, "tensor-concat", n, ts, axis);
}

/* (tensor-stack t ... [axis]): join along a new axis (all shapes equal). */
esk_value esk_prim_tensor_stack(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-stack", argc, argv);
  const char *who = "tensor-stack";
  esk_tensor **ts;
  esk_value axisv;
  int64_t n = join_args(loc, who, argc, argv, &ts, &axisv);
  int64_t rank = ts[0]->rank;
  if (rank + 1 > ESK_TENSOR_MAX_RANK)
    esk_errorf(loc, "%s: at most %d dimensions are supported", who, ESK_TENSOR_MAX_RANK);
  int64_t axis = esk_t_axis(loc, who, axisv, rank + 1);
  for (int64_t i = 1; i < n; i++) {
    int ok = ts[i]->rank == rank;
    for (int64_t d = 0; ok && d < rank; d++) ok = ts[i]->dims[d] == ts[0]->dims[d];
    if (!ok) esk_error_shapes(loc, who, ts[0], ts[i]);
  }
  /* Each operand as a view with a size-1 axis inserted, then concatenate. */
  esk_tensor **vs = esk_alloc((size_t)n * sizeof *vs);
  for (int64_t i = 0; i < n; i++) {
    esk_tensor *v = esk_t_view(ts[i]);
    for (int64_t d = rank; d > axis; d--) {
      v->dims[d] = v->dims[d - 1];
      v->strides[d] = v->strides[d - 1];
    }
    v->dims[axis] = 1;
    v->strides[axis] = 0;
    v->rank = rank + 1;
    vs[i] = v;
  }
  return concat(loc, who, n, vs, esk_fixnum(axis));
}

/* (tensor-split t n [axis]): n equal parts (n must divide the axis); (tensor-split t
 * (i1 i2 ...) [axis]): cut before each index, as numpy.split.  Returns a list of tensors. */
esk_value esk_prim_tensor_split(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-split", argc, argv);
  const char *who = "tensor-split";
  esk_tensor *t = arg(loc, who, argv[0]);
  if (t->rank == 0) esk_errorf(loc, "%s: cannot split a rank-0 tensor", who);
  int64_t axis = argc > 2 && argv[2].tag != ESK_T_DEFAULT ? esk_t_axis(loc, who, argv[2], t->rank) : 0;
  int64_t len = t->dims[axis];
  int64_t cuts[1025], nc = 0; /* boundaries, starting with 0 and ending with len */
  cuts[nc++] = 0;
  if (argv[1].tag == ESK_T_FIXNUM) {
    int64_t parts = argv[1].payload;
    if (parts <= 0 || parts > 1024)
      esk_errorf(loc, "%s: number of sections must be between 1 and 1024, got %lld", who,
                 (long long)parts);
    if (len % parts)
      esk_errorf(loc, "%s: axis of length %lld does not split into %lld equal sections", who,
                 (long long)len, (long long)parts);
    for (int64_t i = 1; i <= parts; i++) cuts[nc++] = i * (len / parts);
  } else {
    esk_value l = argv[1];
    for (; l.tag == ESK_T_PAIR; l = ((esk_pair *)esk_ptr(l))->cdr) {
      esk_value x = ((esk_pair *)esk_ptr(l))->car;
      if (x.tag != ESK_T_FIXNUM) esk_error_type(loc, who, "split index (exact integer)", x);
      if (nc >= 1023) esk_errorf(loc, "%s: at most 1023 split indices", who);
      int64_t c = x.payload < 0 ? x.payload + len : x.payload;
      c = c < 0 ? 0 : c > len ? len : c;
      cuts[nc++] = c;
    }
    if (l.tag != ESK_T_NIL) esk_error_type(loc, who, "section count or list of indices", argv[1]);
    cuts[nc++] = len;
  }
  esk_value result = esk_nil();
  for (int64_t i = nc - 2; i >= 0; i--) {
    int64_t lo = cuts[i], hi = cuts[i + 1] > lo ? cuts[i + 1] : lo;
    esk_tensor *v = esk_t_view(t);
    v->offset += lo * t->strides[axis];
    v->dims[axis] = hi - lo;
    v->size = 1;
    for (int64_t d = 0; d < t->rank; d++) v->size *= v->dims[d];
    esk_tensor *c = esk_tensor_new(t->dtype, t->rank, v->dims);
    esk_t_copy_into(c, v);
    result = esk_cons(esk_tensor_value(c), result);
  }
  return result;
}

/* Python-style clamp of a slice bound (negative counts from the end). */
static int64_t bound(int64_t x, int64_t len) {
  if (x < 0) x += len;
  return x < 0 ? 0 : x > len ? len : x;
}

static int64_t bound_value(const char *loc, const char *who, esk_value v, int64_t len, int64_t dflt) {
  if (v.tag == ESK_T_BOOL && v.payload == 0) return dflt; /* #f: open end */
  if (v.tag != ESK_T_FIXNUM) esk_error_type(loc, who, "slice bound (exact integer or #f)", v);
  return bound(v.payload, len);
}

/* The view of t that (tensor-slice t s e) reads: rows [s, e) of axis 0, or per-axis bounds
 * (lists; missing axes whole, #f an open end); e is ESK_T_DEFAULT when absent.  Negative
 * bounds count from the end. */
static esk_tensor *slice_view(const char *loc, const char *who, esk_tensor *t, esk_value s, esk_value e) {
  if (t->rank == 0) esk_errorf(loc, "%s: cannot slice a rank-0 tensor", who);
  int64_t lo[ESK_TENSOR_MAX_RANK], hi[ESK_TENSOR_MAX_RANK];
  for (int64_t d = 0; d < t->rank; d++) lo[d] = 0, hi[d] = t->dims[d];
  if (s.tag == ESK_T_FIXNUM || e.tag == ESK_T_FIXNUM) {
    lo[0] = bound_value(loc, who, s, t->dims[0], 0);
    if (e.tag != ESK_T_DEFAULT) hi[0] = bound_value(loc, who, e, t->dims[0], t->dims[0]);
  } else {
    esk_value starts = s, ends = e;
    int64_t d = 0;
    for (; s.tag == ESK_T_PAIR; s = ((esk_pair *)esk_ptr(s))->cdr, d++) {
      if (d >= t->rank) esk_errorf(loc, "%s: more bounds than axes", who);
      lo[d] = bound_value(loc, who, ((esk_pair *)esk_ptr(s))->car, t->dims[d], 0);
    }
    if (s.tag != ESK_T_NIL) esk_error_type(loc, who, "list of start indices", starts);
    d = 0;
    for (; e.tag == ESK_T_PAIR; e = ((esk_pair *)esk_ptr(e))->cdr, d++) {
      if (d >= t->rank) esk_errorf(loc, "%s: more bounds than axes", who);
      hi[d] = bound_value(loc, who, ((esk_pair *)esk_ptr(e))->car, t->dims[d], t->dims[d]);
    }
    if (e.tag != ESK_T_NIL && e.tag != ESK_T_DEFAULT) esk_error_type(loc, who, "list of end indices", ends);
  }
  esk_tensor *v = esk_t_view(t);
  int64_t size = 1;
  for (int64_t d = 0; d < t->rank; d++) {
    int64_t n = hi[d] > lo[d] ? hi[d] - lo[d] : 0;
    v->offset += lo[d] * t->strides[d];
    v->dims[d] = n;
    size *= n;
  }
  v->size = size;
  return v;
}

/* (tensor-slice t start end): rows [start, end) of axis 0; (tensor-slice t (s0 s1 ..)
 * (e0 e1 ..)): per-axis bounds (missing axes whole, #f an open end).  Negative bounds count
 * from the end.  Returns a copy. */
esk_value esk_prim_tensor_slice(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-slice", argc, argv);
  esk_tensor *v = slice_view(loc, "tensor-slice", arg(loc, "tensor-slice", argv[0]), argv[1],
                             argc > 2 ? argv[2] : (esk_value){ESK_T_DEFAULT, 0});
  esk_tensor *c = esk_tensor_new(v->dtype, v->rank, v->dims);
  esk_t_copy_into(c, v);
  return esk_tensor_value(c);
}

/* (%tensor-slice-add! z g bounds...): g added in place into the elements of z that
 * (tensor-slice z bounds...) reads; returns z.  The transformed gradient's accumulation of
 * slice cotangents (autodiff_helpers.py): one zero tensor for all the slices of a point,
 * where a fresh padded tensor per slice would cost a pass over the whole point each.  With
 * runtime-AD operands (a transformed gradient under a runtime derivative) it returns #f and
 * changes nothing: the caller then adds a padded cotangent, which the tape can follow. */
esk_value esk_prim_tensor_slice_add_bang(const char *loc, int64_t argc, esk_value *argv) {
  const char *who = "tensor-slice-add!";
  if (esk_ad_any(argc, argv)) return esk_bool(0);
  esk_tensor *v = slice_view(loc, who, arg(loc, who, argv[0]), argv[2],
                             argc > 3 ? argv[3] : (esk_value){ESK_T_DEFAULT, 0});
  esk_prim_tensor_add_bang(loc, esk_tensor_value(v), argv[1]);
  return argv[0];
}

/* ---- gather ------------------------------------------------------------------------------ */

/* (tensor-gather t indices [axis]): numpy.take along `axis` (default 0): the result's shape is
 * t's with that axis replaced by the shape of indices (a tensor, list or vector of integers;
 * negative indices count from the end). */
esk_value esk_prim_tensor_gather(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-gather", argc, argv);
  const char *who = "tensor-gather";
  esk_tensor *t = arg(loc, who, argv[0]);
  esk_tensor *ix = arg(loc, who, argv[1]);
  if (t->rank == 0) esk_errorf(loc, "%s: cannot gather from a rank-0 tensor", who);
  int64_t axis = argc > 2 && argv[2].tag != ESK_T_DEFAULT ? esk_t_axis(loc, who, argv[2], t->rank) : 0;
  int64_t rank = t->rank - 1 + ix->rank;
  if (rank > ESK_TENSOR_MAX_RANK)
    esk_errorf(loc, "%s: at most %d dimensions are supported", who, ESK_TENSOR_MAX_RANK);
  int64_t dims[ESK_TENSOR_MAX_RANK], r = 0;
  for (int64_t d = 0; d < axis; d++) dims[r++] = t->dims[d];
  for (int64_t d = 0; d < ix->rank; d++) dims[r++] = ix->dims[d];
  for (int64_t d = axis + 1; d < t->rank; d++) dims[r++] = t->dims[d];
  int64_t len = t->dims[axis];
  int64_t *idx = malloc((size_t)(ix->size ? ix->size : 1) * sizeof *idx);
  for (int64_t i = 0; i < ix->size; i++) {
    double x = esk_tensor_get_flat(ix, i);
    int64_t k = (int64_t)x;
    if (x != (double)k) {
      free(idx);
      esk_errorf(loc, "%s: index %g is not an integer", who, x);
    }
    if (k < -len || k >= len) {
      free(idx);
      esk_errorf(loc, "%s: index %lld out of range for axis %lld of length %lld", who,
                 (long long)k, (long long)axis, (long long)len);
    }
    idx[i] = k < 0 ? k + len : k;
  }
  esk_tensor *out = esk_tensor_new(t->dtype, rank, dims);
  /* outer = product of dims before axis, inner = after; copy inner-rows per index. */
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= t->dims[d];
  for (int64_t d = axis + 1; d < t->rank; d++) inner *= t->dims[d];
  esk_tensor *src = esk_tensor_contiguous(t);
  size_t es = esk_dtype_size(t->dtype);
  const char *sp = esk_tensor_data(src);
  char *op = esk_tensor_data(out);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < ix->size; i++)
      memcpy(op + ((o * ix->size + i) * inner) * (int64_t)es,
             sp + ((o * len + idx[i]) * inner) * (int64_t)es, (size_t)inner * es);
  free(idx);
  return esk_tensor_value(out);
}

/* ---- top-k, scatter, squeeze, tile, pad ----------------------------------------------------- */

/* (tensor-topk t k [axis]): (list values indices), the k largest elements along `axis`
 * (default the last) in descending order (ties: the lower index first), indices as i64. */
esk_value esk_prim_tensor_topk(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-topk", argc, argv);
  const char *who = "tensor-topk";
  esk_tensor *t = arg(loc, who, argv[0]);
  if (t->rank == 0) esk_errorf(loc, "%s: expected a tensor of rank >= 1", who);
  int64_t axis = argc > 2 && argv[2].tag != ESK_T_DEFAULT ? esk_t_axis(loc, who, argv[2], t->rank)
                                                          : t->rank - 1;
  int64_t len = t->dims[axis];
  if (argv[1].tag != ESK_T_FIXNUM || argv[1].payload < 0 || argv[1].payload > len)
    esk_errorf(loc, "%s: k must be an exact integer between 0 and %lld", who, (long long)len);
  int64_t k = argv[1].payload;
  int64_t dims[ESK_TENSOR_MAX_RANK];
  memcpy(dims, t->dims, sizeof dims);
  dims[axis] = k;
  esk_tensor *vals = esk_tensor_new(t->dtype, t->rank, dims);
  esk_tensor *idxs = esk_tensor_new(ESK_DT_I64, t->rank, dims);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= t->dims[d];
  for (int64_t d = axis + 1; d < t->rank; d++) inner *= t->dims[d];
  esk_tensor *src = esk_tensor_contiguous(t);
  const void *sp = esk_tensor_data(src);
  void *vp = esk_tensor_data(vals);
  int64_t *ip = esk_tensor_data(idxs);
  int64_t *order = malloc((size_t)(len ? len : 1) * sizeof *order);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * len * inner + in;
      /* Partial selection sort: k passes (k is usually small). NaN sorts as largest. */
      for (int64_t i = 0; i < len; i++) order[i] = i;
      for (int64_t s = 0; s < k; s++) {
        int64_t best = s;
        double bv = t_load(sp, t->dtype, base + order[s] * inner);
        for (int64_t i = s + 1; i < len; i++) {
          double v = t_load(sp, t->dtype, base + order[i] * inner);
          if ((v > bv && !isnan(bv)) || (isnan(v) && !isnan(bv)) ||
              ((v == bv || (isnan(v) && isnan(bv))) && order[i] < order[best]))
            best = i, bv = v;
        }
        int64_t tmp = order[s];
        order[s] = order[best];
        order[best] = tmp;
        int64_t out = o * k * inner + s * inner + in;
        if (t->dtype == ESK_DT_I64)
          ((int64_t *)vp)[out] = ((const int64_t *)sp)[base + order[s] * inner];
        else
          t_store(vp, t->dtype, out, bv);
        ip[out] = order[s];
      }
    }
  free(order);
  return esk_cons(esk_tensor_value(vals), esk_cons(esk_tensor_value(idxs), esk_nil()));
}

/* (tensor-scatter! t indices values [axis]): the inverse of tensor-gather, in place: for each
 * position i of the 1-D indices, t's slice at indices[i] along `axis` (default 0) gets the
 * slice i of values (a tensor shaped like t with that axis of length (len indices), or a
 * number).  Returns t. */
esk_value esk_prim_tensor_scatter_bang(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "tensor-scatter!", argc, argv);
  const char *who = "tensor-scatter!";
  if (argv[0].tag != ESK_T_TENSOR) esk_error_type(loc, who, "tensor", argv[0]);
  esk_tensor *t = TENSOR(argv[0]);
  if (t->device != ESK_DEV_HOST)
    esk_errorf(loc, "%s: the tensor is on a GPU; move it to the host first (gpu-to-host!)", who);
  if (t->rank == 0) esk_errorf(loc, "%s: cannot scatter into a rank-0 tensor", who);
  esk_tensor *ix = arg(loc, who, argv[1]), *vals = arg(loc, who, argv[2]);
  int64_t axis = argc > 3 && argv[3].tag != ESK_T_DEFAULT ? esk_t_axis(loc, who, argv[3], t->rank) : 0;
  int64_t len = t->dims[axis], n = ix->size;
  if (ix->rank > 1) esk_errorf(loc, "%s: indices must be 1-D", who);
  int64_t want[ESK_TENSOR_MAX_RANK];
  memcpy(want, t->dims, sizeof want);
  want[axis] = n;
  int ok = vals->rank == 0;
  if (!ok && vals->rank == t->rank) {
    ok = 1;
    for (int64_t d = 0; d < t->rank; d++) ok &= vals->dims[d] == want[d];
  }
  if (!ok) esk_error_shapes(loc, who, t, vals);
  for (int64_t i = 0; i < n; i++) {
    double x = esk_tensor_get_flat(ix, i);
    int64_t k = (int64_t)x;
    if (x != (double)k || k < -len || k >= len)
      esk_errorf(loc, "%s: index %g out of range for axis %lld of length %lld", who, x,
                 (long long)axis, (long long)len);
    if (k < 0) k += len;
    /* dst: t with the axis fixed at k; src: vals with the axis fixed at i (or the scalar). */
    esk_tensor *dst = esk_t_view(t);
    dst->offset += k * t->strides[axis];
    dst->dims[axis] = 1;
    dst->size = t->size / (len ? len : 1);
    if (vals->rank == 0) {
      esk_t_fill(dst, esk_tensor_get_flat(vals, 0));
    } else {
      esk_tensor *src = esk_t_view(vals);
      src->offset += i * vals->strides[axis];
      src->dims[axis] = 1;
      src->size = dst->size;
      esk_t_copy_into(dst, src);
    }
  }
  return argv[0];
}

/* (squeeze t [axis]): t without its size-1 axes (or only `axis`, which must have size 1). */
esk_value esk_prim_squeeze(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "squeeze", argc, argv);
  esk_tensor *t = arg(loc, "squeeze", argv[0]);
  int64_t only = -1;
  if (argc > 1 && argv[1].tag != ESK_T_DEFAULT) {
    only = esk_t_axis(loc, "squeeze", argv[1], t->rank);
    if (t->dims[only] != 1)
      esk_errorf(loc, "squeeze: axis %lld has size %lld, not 1", (long long)only,
                 (long long)t->dims[only]);
  }
  esk_tensor *v = esk_t_view(t);
  int64_t r = 0;
  for (int64_t d = 0; d < t->rank; d++) {
    if (t->dims[d] == 1 && (only < 0 || only == d)) continue;
    v->dims[r] = t->dims[d];
    v->strides[r++] = t->strides[d];
  }
  v->rank = r;
  esk_tensor *c = esk_tensor_new(t->dtype, r, v->dims);
  esk_t_copy_into(c, v);
  return esk_tensor_value(c);
}

/* Per-axis counts from an integer or a list (right-aligned to `rank` axes, missing ones 1). */
static void per_axis(const char *loc, const char *who, esk_value v, int64_t rank, int64_t *out,
                     int64_t dflt, int64_t *given) {
  int64_t xs[ESK_TENSOR_MAX_RANK], n = 0;
  if (v.tag == ESK_T_FIXNUM) {
    xs[n++] = dim_value(loc, who, v);
  } else {
    n = shape_value(loc, who, v, xs);
  }
  *given = n;
  for (int64_t d = 0; d < rank; d++) out[d] = dflt;
  for (int64_t i = 0; i < n && i < rank; i++) out[rank - n + i] = xs[i];
}

/* (tile t reps): numpy.tile (reps an integer or a list; more reps than axes adds axes). */
esk_value esk_prim_tile(const char *loc, esk_value tv, esk_value rv) {
  esk_value ad[2] = {tv, rv};
  if (esk_ad_any(2, ad)) return esk_ad_tensor_prim(loc, "tile", 2, ad);
  esk_tensor *t = arg(loc, "tile", tv);
  int64_t reps[ESK_TENSOR_MAX_RANK], given;
  int64_t probe[ESK_TENSOR_MAX_RANK];
  per_axis(loc, "tile", rv, ESK_TENSOR_MAX_RANK, probe, 1, &given);
  int64_t rank = given > t->rank ? given : t->rank;
  per_axis(loc, "tile", rv, rank, reps, 1, &given);
  /* t seen with rank axes (leading size-1 axes), then each axis repeated. */
  int64_t dims[ESK_TENSOR_MAX_RANK], sdims[ESK_TENSOR_MAX_RANK], sst[ESK_TENSOR_MAX_RANK];
  for (int64_t d = 0; d < rank; d++) {
    int64_t td = d - (rank - t->rank);
    sdims[d] = td >= 0 ? t->dims[td] : 1;
    sst[d] = td >= 0 ? t->strides[td] : 0;
    dims[d] = sdims[d] * reps[d];
  }
  esk_tensor *out = esk_tensor_new(t->dtype, rank, dims);
  if (out->size == 0) return esk_tensor_value(out);
  size_t es = esk_dtype_size(t->dtype);
  const char *sp = t_base(t);
  char *op = esk_tensor_data(out);
  int64_t idx[ESK_TENSOR_MAX_RANK] = {0};
  for (int64_t n = 0; n < out->size; n++) {
    int64_t off = t->offset;
    for (int64_t d = 0; d < rank; d++) off += (idx[d] % sdims[d]) * sst[d];
    memcpy(op + n * (int64_t)es, sp + off * (int64_t)es, es);
    for (int64_t d = rank - 1; d >= 0; d--) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return esk_tensor_value(out);
}

/* (pad t width [value]): constant padding; width is an integer (every axis, both sides), a
 * list of integers (per axis, both sides) or a list of (before after) pairs. */
esk_value esk_prim_pad(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "pad", argc, argv);
  const char *who = "pad";
  esk_tensor *t = arg(loc, who, argv[0]);
  double fill = argc > 2 && argv[2].tag != ESK_T_DEFAULT ? esk_t_real(loc, who, argv[2]) : 0.0;
  int64_t before[ESK_TENSOR_MAX_RANK], after[ESK_TENSOR_MAX_RANK];
  esk_value w = argv[1];
  if (w.tag == ESK_T_FIXNUM) {
    for (int64_t d = 0; d < t->rank; d++) before[d] = after[d] = dim_value(loc, who, w);
  } else {
    int64_t d = 0;
    for (; w.tag == ESK_T_PAIR; w = ((esk_pair *)esk_ptr(w))->cdr, d++) {
      if (d >= t->rank) esk_errorf(loc, "%s: more pad widths than axes", who);
      esk_value x = ((esk_pair *)esk_ptr(w))->car;
      if (x.tag == ESK_T_PAIR) {
        esk_value y = ((esk_pair *)esk_ptr(x))->cdr;
        if (y.tag != ESK_T_PAIR) esk_error_type(loc, who, "(before after) pair", x);
        before[d] = dim_value(loc, who, ((esk_pair *)esk_ptr(x))->car);
        after[d] = dim_value(loc, who, ((esk_pair *)esk_ptr(y))->car);
      } else {
        before[d] = after[d] = dim_value(loc, who, x);
      }
    }
    if (w.tag != ESK_T_NIL) esk_error_type(loc, who, "pad width", argv[1]);
    if (d != t->rank) esk_errorf(loc, "%s: expected %lld pad widths, got %lld", who,
                                 (long long)t->rank, (long long)d);
  }
  int64_t dims[ESK_TENSOR_MAX_RANK];
  for (int64_t d = 0; d < t->rank; d++) dims[d] = t->dims[d] + before[d] + after[d];
  esk_tensor *out = esk_tensor_new(t->dtype, t->rank, dims);
  esk_t_fill(out, fill);
  if (t->size > 0) {
    esk_tensor *v = esk_t_view(out);
    for (int64_t d = 0; d < t->rank; d++) {
      v->offset += before[d] * out->strides[d];
      v->dims[d] = t->dims[d];
    }
    v->size = t->size;
    esk_t_copy_into(v, t);
  }
  return esk_tensor_value(out);
}
