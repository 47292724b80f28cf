/* Tensor reductions: tensor-sum tensor-mean tensor-max tensor-min tensor-prod
 * tensor-variance (population) tensor-std tensor-argmax tensor-argmin, over all elements (a
 * number) or along one axis (a tensor without that axis; negative axes count from the end).
 *
 * As numpy does: sums are pairwise (blocks of 128 with 8 partial sums) along contiguous rows,
 * and a reduction along an outer axis accumulates whole rows, so both loops vectorize; max/min
 * propagate NaN; argmax/argmin give the first index of the extreme (the first NaN if any);
 * int64 sum/prod/max/min stay exact int64 (wrapping on overflow), the others give doubles. */
#include "tensor_internal.h"

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_VAR, R_STD, R_ARGMAX, R_ARGMIN };

/* Kernels are built for AVX2 and for the baseline, chosen at load time (GCC ifunc). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define T_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define T_CLONES
#endif
_Static_assert((int)R_SUM == (int)ESK_RED_SUM && (int)R_MAX == (int)ESK_RED_MAX &&
               (int)R_PROD == (int)ESK_RED_PROD && (int)R_ARGMIN == (int)ESK_RED_ARGMIN,
               "the kinds esk_cuda_reduce takes (eshkol_rt.h)");

/* ---- contiguous rows --------------------------------------------------------------------- */

double esk_t_pairwise_sum(const double *a, int64_t n) {
  if (n < 8) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i];
    return s;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j];
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) r[j] += a[i + j];
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) s += a[i];
    return s;
  }
  int64_t h = n / 2;
  h -= h % 8;
  return esk_t_pairwise_sum(a, h) + esk_t_pairwise_sum(a + h, n - h);
}

/* Pairwise sum of (a[i] - m)^2. */
static double pairwise_sqdev(const double *a, int64_t n, double m) {
  if (n < 8) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (a[i] - m) * (a[i] - m);
    return s;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = (a[j] - m) * (a[j] - m);
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) r[j] += (a[i + j] - m) * (a[i + j] - m);
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) s += (a[i] - m) * (a[i] - m);
    return s;
  }
  int64_t h = n / 2;
  h -= h % 8;
  return pairwise_sqdev(a, h, m) + pairwise_sqdev(a + h, n - h, m);
}

/* GCC's vectorizer leaves a NaN-propagating max scalar, so it is written with vector types:
 * two 4-wide accumulators (SSE2 pairs, or AVX2 through the clones), NaNs tracked apart. */
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4l __attribute__((vector_size(32)));

/* (Macros, not functions: passing 32-byte vectors by value would depend on the AVX ABI.) */
#define VLOAD(V, P) memcpy(&(V), (P), sizeof(V))
#define VPICK(TAKE_X, X, M) ((v4d)((((v4l)(X)) & (TAKE_X)) | (((v4l)(M)) & ~(TAKE_X))))

T_CLONES static double row_max(const double *a, int64_t n, int want_max) {
  double m = a[0];
  int nan = 0;
  int64_t i = 0;
  if (n >= 16) {
    v4d m0, m1, x0, x1;
    VLOAD(m0, a);
    VLOAD(m1, a + 4);
    v4l bad = (m0 != m0) | (m1 != m1);
    for (i = 8; i + 8 <= n; i += 8) {
      VLOAD(x0, a + i);
      VLOAD(x1, a + i + 4);
      bad |= (x0 != x0) | (x1 != x1);
      m0 = VPICK(want_max ? x0 > m0 : x0 < m0, x0, m0);
      m1 = VPICK(want_max ? x1 > m1 : x1 < m1, x1, m1);
    }
    for (int k = 0; k < 4; k++) {
      nan |= bad[k] != 0;
      m = want_max ? (m0[k] > m ? m0[k] : m) : (m0[k] < m ? m0[k] : m);
      m = want_max ? (m1[k] > m ? m1[k] : m) : (m1[k] < m ? m1[k] : m);
    }
  }
  for (; i < n; i++) {
    nan |= a[i] != a[i];
    m = want_max ? (a[i] > m ? a[i] : m) : (a[i] < m ? a[i] : m);
  }
  return nan ? NAN : m;
}

static int64_t row_arg(const double *a, int64_t n, int64_t stride, int want_max) {
  int64_t best = 0;
  double m = a[0];
  if (m != m) return 0;
  for (int64_t i = 1; i < n; i++) {
    double x = a[i * stride];
    if (x != x) return i;
    if (want_max ? x > m : x < m) {
      m = x;
      best = i;
    }
  }
  return best;
}

static double row_reduce_d(int kind, const double *a, int64_t n) {
  /* max/min: the generated kernel library when loaded (kernels.c; kinds 1 max, 2 min).  Sums
   * stay pairwise here: the kernels' lane-wise sums drift (10^6 x 0.1 was off by 9e-7, numpy
   * by 3e-11), and the cpu and xla targets must agree to 1e-12 relative. */
  double r;
  if ((kind == R_MAX || kind == R_MIN) &&
      esk_kernel_reduce(kind == R_MAX ? 1 : 2, ESK_DT_F64, n, a, &r))
    return r;
  switch (kind) {
    case R_SUM: return esk_t_pairwise_sum(a, n);
    case R_MEAN: return esk_t_pairwise_sum(a, n) / (double)n;
    case R_MAX: return row_max(a, n, 1);
    case R_MIN: return row_max(a, n, 0);
    case R_PROD: {
      double p = 1.0;
      for (int64_t i = 0; i < n; i++) p *= a[i];
      return p;
    }
    case R_VAR: case R_STD: {
      double m = esk_t_pairwise_sum(a, n) / (double)n;
      double v = pairwise_sqdev(a, n, m) / (double)n;
      return kind == R_STD ? sqrt(v) : v;
    }
    case R_ARGMAX: return (double)row_arg(a, n, 1, 1);
    default: return (double)row_arg(a, n, 1, 0);
  }
}

static int64_t row_reduce_i(int kind, const int64_t *a, int64_t n, int64_t stride) {
  uint64_t acc = kind == R_PROD ? 1 : 0;
  int64_t m = a[0], best = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t x = a[i * stride];
    switch (kind) {
      case R_SUM: acc += (uint64_t)x; break;
      case R_PROD: acc *= (uint64_t)x; break;
      case R_MAX: case R_ARGMAX: if (x > m) { m = x; best = i; } break;
      case R_MIN: case R_ARGMIN: if (x < m) { m = x; best = i; } break;
    }
  }
  if (kind == R_SUM || kind == R_PROD) return (int64_t)acc;
  return kind == R_ARGMAX || kind == R_ARGMIN ? best : m;
}

/* ---- driver --------------------------------------------------------------------------------- */

static const char *kind_name(int kind) {
  static const char *n[] = {"tensor-sum", "tensor-mean", "tensor-max", "tensor-min",
                            "tensor-prod", "tensor-variance", "tensor-std", "tensor-argmax",
                            "tensor-argmin"};
  return n[kind];
}

static int needs_elements(int kind) {
  return kind == R_MAX || kind == R_MIN || kind == R_ARGMAX || kind == R_ARGMIN;
}

/* int64 inputs keep exact arithmetic for these. */
static int exact_kind(int kind) { return kind != R_MEAN && kind != R_VAR && kind != R_STD; }

static double empty_value(int kind) {
  return kind == R_SUM ? 0.0 : kind == R_PROD ? 1.0 : NAN;
}

static esk_value reduce_all(const char *loc, int kind, esk_tensor *t) {
  if (t->size == 0) {
    if (needs_elements(kind)) esk_errorf(loc, "%s: empty tensor", kind_name(kind));
    return kind == R_SUM || kind == R_PROD ? (t->dtype == ESK_DT_I64 ? esk_fixnum(kind == R_PROD)
                                                                    : esk_flonum(empty_value(kind)))
                                           : esk_flonum(NAN);
  }
  if (t->dtype == ESK_DT_I64 && exact_kind(kind)) {
    esk_tensor *c = esk_tensor_contiguous(t);
    return esk_fixnum(row_reduce_i(kind, (const int64_t *)t_base(c) + c->offset, c->size, 1));
  }
  esk_tensor *c = esk_tensor_contiguous(esk_tensor_astype(t, ESK_DT_F64));
  double r = row_reduce_d(kind, (const double *)t_base(c) + c->offset, c->size);
  if (kind == R_ARGMAX || kind == R_ARGMIN) return esk_fixnum((int64_t)r);
  return esk_flonum(r);
}

/* acc[0..inner) = the reduction over j of blk[j*inner + k]: whole rows at a time, so the
 * loops run along contiguous memory and vectorize.  dev: scratch of `inner` doubles (var/std). */
T_CLONES static void accumulate_rows(int kind, double *acc, const double *blk, int64_t n,
                                     int64_t inner, double *dev) {
  memcpy(acc, blk, (size_t)inner * sizeof(double));
  if (kind == R_VAR || kind == R_STD) { /* mean first, then squared deviations */
    for (int64_t j = 1; j < n; j++)
      for (int64_t k = 0; k < inner; k++) acc[k] += blk[j * inner + k];
    for (int64_t k = 0; k < inner; k++) acc[k] /= (double)n;
    for (int64_t k = 0; k < inner; k++) dev[k] = 0.0;
    for (int64_t j = 0; j < n; j++)
      for (int64_t k = 0; k < inner; k++) {
        double e = blk[j * inner + k] - acc[k];
        dev[k] += e * e;
      }
    for (int64_t k = 0; k < inner; k++)
      acc[k] = kind == R_STD ? sqrt(dev[k] / (double)n) : dev[k] / (double)n;
    return;
  }
  for (int64_t j = 1; j < n; j++) {
    const double *row = blk + j * inner;
    switch (kind) {
      case R_SUM: case R_MEAN: for (int64_t k = 0; k < inner; k++) acc[k] += row[k]; break;
      case R_PROD: for (int64_t k = 0; k < inner; k++) acc[k] *= row[k]; break;
      case R_MAX:
        for (int64_t k = 0; k < inner; k++) acc[k] = (acc[k] != acc[k] || acc[k] > row[k]) ? acc[k] : row[k];
        break;
      case R_MIN:
        for (int64_t k = 0; k < inner; k++) acc[k] = (acc[k] != acc[k] || acc[k] < row[k]) ? acc[k] : row[k];
        break;
    }
  }
  if (kind == R_MEAN)
    for (int64_t k = 0; k < inner; k++) acc[k] /= (double)n;
}

/* Reduce along `axis`: the input seen as (outer, n, inner) contiguous. */
static esk_value reduce_axis(const char *loc, int kind, esk_tensor *t, int64_t axis) {
  int64_t outer = 1, inner = 1, n = t->dims[axis];
  for (int64_t d = 0; d < axis; d++) outer *= t->dims[d];
  for (int64_t d = axis + 1; d < t->rank; d++) inner *= t->dims[d];
  int64_t dims[ESK_TENSOR_MAX_RANK], r = 0;
  for (int64_t d = 0; d < t->rank; d++)
    if (d != axis) dims[r++] = t->dims[d];
  int is_arg = kind == R_ARGMAX || kind == R_ARGMIN;
  int exact = t->dtype == ESK_DT_I64 && exact_kind(kind);
  esk_tensor *out = esk_t_new(is_arg || exact ? ESK_DT_I64 : ESK_DT_F64, r, dims);
  if (out->size == 0) return esk_tensor_value(out);
  if (n == 0) {
    if (needs_elements(kind)) esk_errorf(loc, "%s: reduction along an empty axis", kind_name(kind));
    if (exact) {
      for (int64_t i = 0; i < out->size; i++) ((int64_t *)t_base(out))[i] = kind == R_PROD;
    } else {
      esk_t_fill(out, empty_value(kind));
    }
    return esk_tensor_value(out);
  }
  if (exact || (is_arg && t->dtype == ESK_DT_I64)) {
    esk_tensor *c = esk_tensor_contiguous(t);
    const int64_t *x = (const int64_t *)t_base(c) + c->offset;
    int64_t *o = t_base(out);
    for (int64_t i = 0; i < outer; i++)
      for (int64_t k = 0; k < inner; k++)
        o[i * inner + k] = row_reduce_i(kind, x + i * n * inner + k, n, inner);
    return esk_tensor_value(out);
  }
  esk_tensor *c = esk_tensor_contiguous(esk_tensor_astype(t, ESK_DT_F64));
  const double *x = (const double *)t_base(c) + c->offset;
  if (is_arg) {
    int64_t *o = t_base(out);
    for (int64_t i = 0; i < outer; i++)
      for (int64_t k = 0; k < inner; k++)
        o[i * inner + k] = row_arg(x + i * n * inner + k, n, inner, kind == R_ARGMAX);
    return esk_tensor_value(out);
  }
  double *o = t_base(out);
  if (inner == 1) {
    for (int64_t i = 0; i < outer; i++) o[i] = row_reduce_d(kind, x + i * n, n);
    return esk_tensor_value(out);
  }
  /* Accumulate whole rows of `inner` elements (vectorized across the row). */
  double *dev = kind == R_VAR || kind == R_STD ? esk_alloc_atomic((size_t)inner * sizeof(double)) : NULL;
  for (int64_t i = 0; i < outer; i++) accumulate_rows(kind, o + i * inner, x + i * n * inner, n, inner, dev);
  return esk_tensor_value(out);
}

static esk_value reduce(const char *loc, int kind, int64_t argc, esk_value *argv) {
  T_AD_CHECK(kind_name(kind), argc, argv);
  esk_tensor *t = esk_as_tensor(loc, kind_name(kind), argv[0]);
  if (t->device == ESK_DEV_CUDA) return esk_cuda_reduce(loc, kind, argc, argv); /* kinds: ESK_RED_* */
  if (argc < 2 || argv[1].tag == ESK_T_DEFAULT) return reduce_all(loc, kind, t);
  if (t->rank == 0) esk_errorf(loc, "%s: axis given for a rank-0 tensor", kind_name(kind));
  return reduce_axis(loc, kind, t, esk_t_axis(loc, kind_name(kind), argv[1], t->rank));
}

#define REDUCTION(CNAME, KIND)                                                           \
  esk_value esk_prim_##CNAME(const char *loc, int64_t argc, esk_value *argv) {           \
    return reduce(loc, KIND, argc, argv);                                                \
  }
REDUCTION(tensor_sum, R_SUM)
REDUCTION(tensor_mean, R_MEAN)
REDUCTION(tensor_max, R_MAX)
REDUCTION(tensor_min, R_MIN)
REDUCTION(tensor_prod, R_PROD)
REDUCTION(tensor_variance, R_VAR)
REDUCTION(tensor_std, R_STD)
REDUCTION(tensor_argmax, R_ARGMAX)
REDUCTION(tensor_argmin, R_ARGMIN)
