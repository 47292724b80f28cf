/* Linear algebra on tensors: matmul (numpy semantics, batched with broadcasting), tensor-dot,
 * outer, transpose, trace, norm, and the LU-based det / inv / solve.
 *
 * Matrix products go to an optimized BLAS (blas.c, loaded at run time) when the product is
 * large enough for the call to pay, and to the runtime's own blocked kernel (gemm.c)
 * otherwise or when no BLAS is found.  Operands are used in place through their strides
 * (transposed or sliced views need no copy unless a BLAS cannot express their layout).
 *
 * Every entry first hands dual numbers and tape nodes to the AD runtime (esk_ad_tensor_prim).
 * Results are fresh contiguous tensors; `transpose` copies (value semantics: a later
 * tensor-set! on the result never changes the argument). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"
#include "linalg.h"
#include "tensor_internal.h"
#include "tensor_linalg.h"

/* Products with at least this many multiply-adds go to the BLAS when one is loaded (below it
 * the own kernel is within ~1.3x of OpenBLAS single-threaded and avoids loading the library;
 * measured with /tmp harnesses, see docs/DESIGN-NOTES.md "Matrix multiply"). */
#ifndef BLAS_MIN_FLOPS
#define BLAS_MIN_FLOPS (48.0 * 48.0 * 48.0)
#endif

/* ---- small helpers ---------------------------------------------------------------------- */

esk_tensor *esk_la_arg(const char *loc, const char *who, esk_value v) {
  esk_tensor *t = esk_as_tensor(loc, who, v);
  /* GPU operands of operations without a device kernel: computed on a host copy. */
  return t->device == ESK_DEV_HOST ? t : esk_tensor_on_host(loc, t);
}

int esk_la_result_dtype(const esk_tensor *a, const esk_tensor *b) {
  return a->dtype == b->dtype ? a->dtype : ESK_DT_F64;
}

/* A fresh contiguous f64 copy of t's elements in row-major order (malloc'd; caller frees). */
double *esk_la_copy_f64(const esk_tensor *t) {
  double *out = malloc((size_t)(t->size > 0 ? t->size : 1) * sizeof(double));
  if (!out) esk_errorf(NULL, "out of memory (%lld elements)", (long long)t->size);
  if (t->dtype == ESK_DT_F64 && esk_tensor_is_contiguous(t)) {
    memcpy(out, esk_tensor_data(t), (size_t)t->size * sizeof(double));
  } else {
    for (int64_t i = 0; i < t->size; i++) out[i] = esk_tensor_get_flat(t, i);
  }
  return out;
}

/* A fresh contiguous tensor of `dtype` holding the n doubles x (converted). */
esk_tensor *esk_la_from_f64(int dtype, int64_t rank, const int64_t *dims, const double *x) {
  esk_tensor *r = esk_tensor_new(dtype, rank, dims);
  void *d = esk_tensor_data(r);
  if (dtype == ESK_DT_F64) {
    memcpy(d, x, (size_t)r->size * sizeof(double));
  } else if (dtype == ESK_DT_F32) {
    for (int64_t i = 0; i < r->size; i++) ((float *)d)[i] = (float)x[i];
  } else {
    for (int64_t i = 0; i < r->size; i++) ((int64_t *)d)[i] = (int64_t)x[i];
  }
  return r;
}

static esk_value t_val(esk_tensor *t) { return esk_tensor_value(t); }

/* "who: shape mismatch (2 2) x (3 3)" */
_Noreturn static void shape_mismatch(const char *loc, const char *who, const esk_tensor *a,
                                     const esk_tensor *b) {
  char sa[256], sb[256];
  esk_errorf(loc, "%s: shape mismatch %s x %s", who, esk_shape_text(a, sa, sizeof sa),
             esk_shape_text(b, sb, sizeof sb));
}

_Noreturn static void need_rank(const char *loc, const char *who, const char *what,
                                const esk_tensor *t) {
  char s[256];
  esk_errorf(loc, "%s: expected %s, got a tensor of shape %s", who, what,
             esk_shape_text(t, s, sizeof s));
}

#define AD1(NAME, A)                                                                      \
  do {                                                                                    \
    esk_value ad_[1] = {A};                                                               \
    if (esk_ad_any(1, ad_)) return esk_ad_tensor_prim(loc, NAME, 1, ad_);                 \
  } while (0)
#define AD2(NAME, A, B)                                                                   \
  do {                                                                                    \
    esk_value ad_[2] = {A, B};                                                            \
    if (esk_ad_any(2, ad_)) return esk_ad_tensor_prim(loc, NAME, 2, ad_);                 \
  } while (0)

/* ---- one matrix product ----------------------------------------------------------------- */

/* Whether a rows x cols matrix with element strides (rs, cs) is a BLAS operand: row-major
 * (no transpose, ld = rs) or column-major (transpose, ld = cs). */
static int blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, int *trans,
                       int64_t *ld) {
  if (cols <= 1 || cs == 1) {
    int64_t need = cols > 1 ? cols : 1;
    if (rows <= 1 || rs >= need) {
      *trans = 0;
      *ld = rows <= 1 ? need : rs;
      return 1;
    }
  }
  if (rows <= 1 || rs == 1) {
    int64_t need = rows > 1 ? rows : 1;
    if (cols <= 1 || cs >= need) {
      *trans = 1;
      *ld = cols <= 1 ? need : cs;
      return 1;
    }
  }
  return 0;
}

/* Contiguous row-major copy of a strided matrix (malloc'd), for a BLAS call. */
static void *pack_contig(int dt, int64_t rows, int64_t cols, const void *p, int64_t rs,
                         int64_t cs) {
  size_t es = esk_dtype_size(dt);
  char *out = malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * es);
  if (!out) esk_errorf(NULL, "out of memory");
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      if (dt == ESK_DT_F32) ((float *)out)[i * cols + j] = ((const float *)p)[i * rs + j * cs];
      else ((double *)out)[i * cols + j] = ((const double *)p)[i * rs + j * cs];
    }
  return out;
}

/* Try the BLAS for C = A*B; 0 when the product is small or no BLAS is loaded. */
static int gemm_blas(int dt, int64_t M, int64_t N, int64_t K, const void *A, int64_t rsa,
                     int64_t csa, const void *B, int64_t rsb, int64_t csb, void *C, int64_t ldc) {
  if ((double)M * (double)N * (double)K < BLAS_MIN_FLOPS || !esk_blas_available()) return 0;
  int ta, tb;
  int64_t lda, ldb;
  void *ca = NULL, *cb = NULL;
  if (!blas_layout(M, K, rsa, csa, &ta, &lda)) {
    A = ca = pack_contig(dt, M, K, A, rsa, csa);
    ta = 0;
    lda = K > 1 ? K : 1;
  }
  if (!blas_layout(K, N, rsb, csb, &tb, &ldb)) {
    B = cb = pack_contig(dt, K, N, B, rsb, csb);
    tb = 0;
    ldb = N > 1 ? N : 1;
  }
  int done = dt == ESK_DT_F32
                 ? esk_blas_sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc)
                 : esk_blas_dgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  free(ca);
  free(cb);
  return done;
}

void esk_la_gemm(int dt, int64_t M, int64_t N, int64_t K, const void *A, int64_t rsa,
                 int64_t csa, const void *B, int64_t rsb, int64_t csb, void *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (dt == ESK_DT_I64) { /* exact integer product, wrapping like numpy */
    const int64_t *a = A, *b = B;
    int64_t *c = C;
    for (int64_t i = 0; i < M; i++) {
      uint64_t *ci = (uint64_t *)(c + i * ldc);
      memset(ci, 0, (size_t)N * sizeof *ci);
      for (int64_t p = 0; p < K; p++) {
        uint64_t x = (uint64_t)a[i * rsa + p * csa];
        for (int64_t j = 0; j < N; j++) ci[j] += x * (uint64_t)b[p * rsb + j * csb];
      }
    }
    return;
  }
  /* The generated MLIR block kernel (kernels.c), when asked for and the shape fits. */
  if (csa == 1 && csb == 1 && esk_kernel_matmul(dt, M, N, K, A, rsa, B, rsb, C, ldc)) return;
  /* ESHKOL_MATMUL=mlir: the compiler's generated block kernel (kernels.c), where it applies. */
  if (csa == 1 && csb == 1 && rsa >= K && rsb >= N &&
      esk_kernel_matmul(dt, M, N, K, A, rsa, B, rsb, C, ldc))
    return;
  if (gemm_blas(dt, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc)) return;
  if (dt == ESK_DT_F32)
    esk_gemm_f32(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, 0, esk_linalg_threads());
  else
    esk_gemm_f64(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, 0, esk_linalg_threads());
}

/* ---- dot products ----------------------------------------------------------------------- */

/* Sum of x[i*sx] * y[i*sy] for i < n, in the dtype's natural precision (f32 accumulates in
 * double, as a careful BLAS would), as a Scheme number (fixnum for i64). */
static esk_value dot_value(int dt, int64_t n, const void *x, int64_t sx, const void *y,
                           int64_t sy) {
  if (dt == ESK_DT_I64) {
    uint64_t s = 0;
    for (int64_t i = 0; i < n; i++)
      s += (uint64_t)((const int64_t *)x)[i * sx] * (uint64_t)((const int64_t *)y)[i * sy];
    return esk_fixnum((int64_t)s);
  }
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  if (dt == ESK_DT_F32) {
    const float *a = x, *b = y;
    for (; i + 4 <= n; i += 4) {
      s0 += (double)a[i * sx] * b[i * sy];
      s1 += (double)a[(i + 1) * sx] * b[(i + 1) * sy];
      s2 += (double)a[(i + 2) * sx] * b[(i + 2) * sy];
      s3 += (double)a[(i + 3) * sx] * b[(i + 3) * sy];
    }
    for (; i < n; i++) s0 += (double)a[i * sx] * b[i * sy];
  } else {
    const double *a = x, *b = y;
    if (sx == 1 && sy == 1) {
      for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
      }
    }
    for (; i < n; i++) s0 += a[i * sx] * b[i * sy];
  }
  return esk_flonum((s0 + s1) + (s2 + s3));
}

/* A tensor of dtype dt with a's elements (a itself when it already has that dtype). */
static esk_tensor *as_dtype(esk_tensor *t, int dt) {
  return t->dtype == dt ? t : esk_tensor_astype(t, dt);
}

/* ---- matmul ----------------------------------------------------------------------------- */

/* numpy.matmul: rank-1 operands are promoted to a row (left) or column (right) and the
 * added dimension dropped from the result; dimensions before the last two are batch
 * dimensions and broadcast. */
esk_value esk_la_matmul(const char *loc, const char *who, esk_tensor *a, esk_tensor *b) {
  if (a->rank == 0 || b->rank == 0)
    esk_errorf(loc, "%s: expected tensors of rank >= 1, got rank %lld and %lld", who,
               (long long)a->rank, (long long)b->rank);
  int dt = esk_la_result_dtype(a, b);
  esk_tensor *A = as_dtype(a, dt), *B = as_dtype(b, dt);
  if (a->rank == 1 && b->rank == 1) {
    if (a->dims[0] != b->dims[0]) shape_mismatch(loc, who, a, b);
    return dot_value(dt, a->dims[0], esk_tensor_data(A), A->strides[0], esk_tensor_data(B),
                     B->strides[0]);
  }
  /* Matrix views (rows, cols, strides) of the operands, promoting rank 1. */
  int64_t M, K, K2, N, rsa, csa, rsb, csb;
  if (A->rank == 1) {
    M = 1, K = A->dims[0], rsa = 0, csa = A->strides[0];
  } else {
    M = A->dims[A->rank - 2], K = A->dims[A->rank - 1];
    rsa = A->strides[A->rank - 2], csa = A->strides[A->rank - 1];
  }
  if (B->rank == 1) {
    K2 = B->dims[0], N = 1, rsb = B->strides[0], csb = 0;
  } else {
    K2 = B->dims[B->rank - 2], N = B->dims[B->rank - 1];
    rsb = B->strides[B->rank - 2], csb = B->strides[B->rank - 1];
  }
  if (K != K2) shape_mismatch(loc, who, a, b);
  /* Broadcast batch dimensions (right-aligned). */
  int64_t ba = A->rank > 2 ? A->rank - 2 : 0, bb = B->rank > 2 ? B->rank - 2 : 0;
  int64_t nb = ba > bb ? ba : bb;
  int64_t bdims[ESK_TENSOR_MAX_RANK], sa[ESK_TENSOR_MAX_RANK], sb[ESK_TENSOR_MAX_RANK];
  int64_t nbatch = 1;
  for (int64_t i = 0; i < nb; i++) {
    int64_t ia = i - (nb - ba), ib = i - (nb - bb);
    int64_t da = ia >= 0 ? A->dims[ia] : 1, db = ib >= 0 ? B->dims[ib] : 1;
    if (da != db && da != 1 && db != 1) shape_mismatch(loc, who, a, b);
    bdims[i] = da > db ? da : db;
    if (da == 0 || db == 0) bdims[i] = 0;
    sa[i] = ia >= 0 && da != 1 ? A->strides[ia] : 0;
    sb[i] = ib >= 0 && db != 1 ? B->strides[ib] : 0;
    nbatch *= bdims[i];
  }
  /* Result shape: batch, then M unless a was rank 1, then N unless b was rank 1. */
  int64_t rdims[ESK_TENSOR_MAX_RANK], rr = 0;
  for (int64_t i = 0; i < nb; i++) rdims[rr++] = bdims[i];
  if (a->rank > 1) rdims[rr++] = M;
  if (b->rank > 1) rdims[rr++] = N;
  esk_tensor *R = esk_tensor_new(dt, rr, rdims);
  if (R->size == 0) return t_val(R);
  size_t es = esk_dtype_size(dt);
  char *pa = esk_tensor_data(A), *pb = esk_tensor_data(B), *pc = esk_tensor_data(R);
  int64_t idx[ESK_TENSOR_MAX_RANK] = {0};
  for (int64_t n = 0; n < nbatch; n++) {
    int64_t oa = 0, ob = 0;
    for (int64_t i = 0; i < nb; i++) oa += idx[i] * sa[i], ob += idx[i] * sb[i];
    esk_la_gemm(dt, M, N, K, pa + oa * (int64_t)es, rsa, csa, pb + ob * (int64_t)es, rsb, csb,
                pc + n * M * N * (int64_t)es, N);
    for (int64_t i = nb - 1; i >= 0; i--) { /* odometer over the batch index */
      if (++idx[i] < bdims[i]) break;
      idx[i] = 0;
    }
  }
  return t_val(R);
}

esk_value esk_prim_matmul(const char *loc, esk_value a, esk_value b) {
  AD2("matmul", a, b);
  if (esk_is_cuda_tensor(a) || esk_is_cuda_tensor(b)) return esk_cuda_matmul(loc, "matmul", a, b);
  return esk_la_matmul(loc, "matmul", esk_la_arg(loc, "matmul", a), esk_la_arg(loc, "matmul", b));
}

esk_tensor *esk_t_swap_last_axes(const esk_tensor *x) {
  esk_tensor *v = esk_t_view(x);
  int64_t i = x->rank - 2, j = x->rank - 1;
  v->dims[i] = x->dims[j], v->dims[j] = x->dims[i];
  v->strides[i] = x->strides[j], v->strides[j] = x->strides[i];
  return v;
}

/* (%matmul-t a b ta tb): (matmul a' b'), x' being x with its last two axes swapped when tx is
 * true (both operands of rank >= 2).  The transformed matmul VJP (autodiff_helpers.py) calls
 * it for g b^T and a^T g: on host tensors the transposes are views, where (transpose ..)
 * would copy the operand first. */
esk_value esk_prim_matmul_t(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc; /* the registry's arity: 4 */
  esk_value a = argv[0], b = argv[1], ta = argv[2], tb = argv[3];
  if (esk_ad_any(2, argv) || esk_is_cuda_tensor(a) || esk_is_cuda_tensor(b)) {
    esk_value ta_argv[3] = {a, esk_fixnum(-2), esk_fixnum(-1)}, tb_argv[3] = {b, esk_fixnum(-2), esk_fixnum(-1)};
    return esk_prim_matmul(loc, esk_is_true(ta) ? esk_prim_transpose(loc, 3, ta_argv) : a,
                           esk_is_true(tb) ? esk_prim_transpose(loc, 3, tb_argv) : b);
  }
  esk_tensor *A = esk_la_arg(loc, "matmul", a), *B = esk_la_arg(loc, "matmul", b);
  if ((esk_is_true(ta) && A->rank < 2) || (esk_is_true(tb) && B->rank < 2))
    esk_errorf(loc, "matmul: a transposed operand needs rank >= 2");
  return esk_la_matmul(loc, "matmul", esk_is_true(ta) ? esk_t_swap_last_axes(A) : A,
                       esk_is_true(tb) ? esk_t_swap_last_axes(B) : B);
}

/* (tensor-dot a b), numpy.dot: a scalar operand scales; 1-D . 1-D is the inner product (a
 * number); otherwise the last axis of a contracts with the second-to-last of b (the last of
 * b when b is 1-D), the other axes of a and then of b making the result. */
esk_value esk_prim_tensor_dot(const char *loc, esk_value av, esk_value bv) {
  AD2("tensor-dot", av, bv);
  esk_tensor *a = esk_la_arg(loc, "tensor-dot", av), *b = esk_la_arg(loc, "tensor-dot", bv);
  if (a->rank == 0 || b->rank == 0) { /* scalar times tensor */
    esk_tensor *s = a->rank == 0 ? a : b, *t = a->rank == 0 ? b : a;
    int dt = esk_la_result_dtype(a, b);
    double k = esk_tensor_get_flat(s, 0);
    double *x = esk_la_copy_f64(t);
    for (int64_t i = 0; i < t->size; i++) x[i] *= k;
    esk_tensor *r = esk_la_from_f64(dt, t->rank, t->dims, x);
    free(x);
    if (t->rank == 0) {
      esk_value v = esk_tensor_elem_value(r, r->offset);
      return v;
    }
    return t_val(r);
  }
  if (b->rank <= 2) {
    if (esk_is_cuda_tensor(av) || esk_is_cuda_tensor(bv))
      return esk_cuda_matmul(loc, "tensor-dot", av, bv);
    return esk_la_matmul(loc, "tensor-dot", a, b);
  }
  /* b of rank >= 3: result[i..., j..., n] = sum_k a[i..., k] b[j..., k, n]. */
  int dt = esk_la_result_dtype(a, b);
  esk_tensor *A = esk_tensor_contiguous(as_dtype(a, dt)), *B = as_dtype(b, dt);
  int64_t K = a->dims[a->rank - 1];
  if (K != b->dims[b->rank - 2]) shape_mismatch(loc, "tensor-dot", a, b);
  int64_t P = K ? a->size / K : 0, N = b->dims[b->rank - 1], nbatch = 1;
  int64_t rdims[2 * ESK_TENSOR_MAX_RANK], rr = 0;
  for (int64_t i = 0; i < a->rank - 1; i++) rdims[rr++] = a->dims[i];
  for (int64_t i = 0; i < b->rank - 2; i++) rdims[rr++] = b->dims[i], nbatch *= b->dims[i];
  rdims[rr++] = N;
  if (rr > ESK_TENSOR_MAX_RANK)
    esk_errorf(loc, "tensor-dot: result would have rank %lld (at most %d)", (long long)rr,
               ESK_TENSOR_MAX_RANK);
  esk_tensor *R = esk_tensor_zeros(dt, rr, rdims);
  if (R->size == 0 || K == 0) return t_val(R);
  size_t es = esk_dtype_size(dt);
  char *pb = esk_tensor_data(B), *pc = esk_tensor_data(R);
  int64_t idx[ESK_TENSOR_MAX_RANK] = {0}, nbd = b->rank - 2;
  for (int64_t n = 0; n < nbatch; n++) {
    int64_t ob = 0;
    for (int64_t i = 0; i < nbd; i++) ob += idx[i] * B->strides[i];
    /* Output rows of this batch are N apart within a row of length nbatch*N. */
    esk_la_gemm(dt, P, N, K, esk_tensor_data(A), K, 1, pb + ob * (int64_t)es,
                B->strides[b->rank - 2], B->strides[b->rank - 1], pc + n * N * (int64_t)es,
                nbatch * N);
    for (int64_t i = nbd - 1; i >= 0; i--) {
      if (++idx[i] < b->dims[i]) break;
      idx[i] = 0;
    }
  }
  return t_val(R);
}

/* (outer u v): the rank-2 tensor u_i * v_j of the flattened operands. */
esk_value esk_prim_outer(const char *loc, esk_value av, esk_value bv) {
  AD2("outer", av, bv);
  esk_tensor *a = esk_la_arg(loc, "outer", av), *b = esk_la_arg(loc, "outer", bv);
  int dt = esk_la_result_dtype(a, b);
  int64_t dims[2] = {a->size, b->size};
  esk_tensor *r = esk_tensor_new(dt, 2, dims);
  double *x = esk_la_copy_f64(a), *y = esk_la_copy_f64(b);
  void *d = esk_tensor_data(r);
  for (int64_t i = 0; i < dims[0]; i++)
    for (int64_t j = 0; j < dims[1]; j++) {
      int64_t k = i * dims[1] + j;
      if (dt == ESK_DT_F64) ((double *)d)[k] = x[i] * y[j];
      else if (dt == ESK_DT_F32) ((float *)d)[k] = (float)x[i] * (float)y[j];
      else ((int64_t *)d)[k] = (int64_t)((uint64_t)(int64_t)x[i] * (uint64_t)(int64_t)y[j]);
    }
  if (dt == ESK_DT_I64) { /* exact: redo from the integer elements (doubles lose bits) */
    const int64_t *pa = esk_tensor_data(esk_tensor_contiguous(a));
    const int64_t *pb = esk_tensor_data(esk_tensor_contiguous(b));
    for (int64_t i = 0; i < dims[0]; i++)
      for (int64_t j = 0; j < dims[1]; j++)
        ((int64_t *)d)[i * dims[1] + j] = (int64_t)((uint64_t)pa[i] * (uint64_t)pb[j]);
  }
  free(x);
  free(y);
  return t_val(r);
}

/* ---- transpose, trace, norm ------------------------------------------------------------- */

/* A contiguous copy of t with its axes permuted: result axis i is t's axis perm[i]. */
esk_tensor *esk_la_permute(esk_tensor *t, const int64_t *perm) {
  int64_t dims[ESK_TENSOR_MAX_RANK], st[ESK_TENSOR_MAX_RANK];
  for (int64_t i = 0; i < t->rank; i++) dims[i] = t->dims[perm[i]], st[i] = t->strides[perm[i]];
  esk_tensor *r = esk_tensor_new(t->dtype, t->rank, dims);
  if (r->size == 0) return r;
  size_t es = esk_dtype_size(t->dtype);
  const char *src = esk_tensor_data(t);
  char *dst = esk_tensor_data(r);
  int64_t rank = t->rank;
  if (rank == 2 && es == 8) { /* blocked 2-D copy: both sides stay in cache */
    const int64_t *s = (const int64_t *)src;
    int64_t *o = (int64_t *)dst;
    for (int64_t i0 = 0; i0 < dims[0]; i0 += 32)
      for (int64_t j0 = 0; j0 < dims[1]; j0 += 32)
        for (int64_t i = i0; i < i0 + 32 && i < dims[0]; i++)
          for (int64_t j = j0; j < j0 + 32 && j < dims[1]; j++)
            o[i * dims[1] + j] = s[i * st[0] + j * st[1]];
    return r;
  }
  int64_t idx[ESK_TENSOR_MAX_RANK] = {0}, off = 0;
  for (int64_t n = 0; n < r->size; n++) {
    memcpy(dst + n * (int64_t)es, src + off * (int64_t)es, es);
    for (int64_t i = rank - 1; i >= 0; i--) {
      off += st[i];
      if (++idx[i] < dims[i]) break;
      off -= st[i] * dims[i];
      idx[i] = 0;
    }
  }
  return r;
}

static int64_t axis_arg(const char *loc, const char *who, esk_value v, int64_t rank) {
  if (v.tag != ESK_T_FIXNUM) esk_error_type(loc, who, "axis (exact integer)", v);
  int64_t k = v.payload;
  if (k < -rank || k >= rank)
    esk_errorf(loc, "%s: axis %lld out of range for a tensor of rank %lld", who, (long long)k,
               (long long)rank);
  return k < 0 ? k + rank : k;
}

/* (transpose T): axes reversed (a matrix's rows become columns); (transpose T i j): axes i and
 * j swapped. */
esk_value esk_prim_transpose(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "transpose", argc, argv);
  if (argc != 1 && argc != 3)
    esk_errorf(loc, "transpose: expected 1 or 3 arguments (T [i j]), got %lld", (long long)argc);
  if (esk_is_cuda_tensor(argv[0])) return esk_cuda_transpose(loc, argc, argv);
  esk_tensor *t = esk_la_arg(loc, "transpose", argv[0]);
  int64_t perm[ESK_TENSOR_MAX_RANK];
  for (int64_t i = 0; i < t->rank; i++) perm[i] = t->rank - 1 - i;
  if (argc == 3) {
    for (int64_t i = 0; i < t->rank; i++) perm[i] = i;
    int64_t i = axis_arg(loc, "transpose", argv[1], t->rank);
    int64_t j = axis_arg(loc, "transpose", argv[2], t->rank);
    perm[i] = j;
    perm[j] = i;
  }
  return t_val(esk_la_permute(t, perm));
}

esk_value esk_prim_trace(const char *loc, esk_value a) {
  AD1("trace", a);
  esk_tensor *t = esk_la_arg(loc, "trace", a);
  if (t->rank != 2) need_rank(loc, "trace", "a matrix (rank 2)", t);
  int64_t n = t->dims[0] < t->dims[1] ? t->dims[0] : t->dims[1];
  int64_t step = t->strides[0] + t->strides[1];
  const void *p = esk_tensor_data(t);
  if (t->dtype == ESK_DT_I64) {
    uint64_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (uint64_t)((const int64_t *)p)[i * step];
    return esk_fixnum((int64_t)s);
  }
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += t->dtype == ESK_DT_F32 ? ((const float *)p)[i * step] : ((const double *)p)[i * step];
  return esk_flonum(s);
}

/* Entrywise p-norm of x[0..n). */
static double pnorm(const double *x, int64_t n, double p) {
  if (n == 0) return 0.0;
  if (isinf(p)) {
    double m = fabs(x[0]);
    for (int64_t i = 1; i < n; i++)
      m = p > 0 ? fmax(m, fabs(x[i])) : fmin(m, fabs(x[i]));
    return m;
  }
  if (p == 0) {
    double c = 0;
    for (int64_t i = 0; i < n; i++) c += x[i] != 0;
    return c;
  }
  if (p == 1) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs(x[i]);
    return s;
  }
  if (p == 2) {
    double s0 = 0, s1 = 0;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) s0 += x[i] * x[i], s1 += x[i + 1] * x[i + 1];
    for (; i < n; i++) s0 += x[i] * x[i];
    double s = s0 + s1;
    if (isfinite(s) && s > 1e-280) return sqrt(s);
    /* Over- or underflow of the squares: scale by the largest magnitude. */
    double m = 0;
    for (i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    if (m == 0 || isinf(m) || isnan(s)) return isnan(s) ? s : m;
    s = 0;
    for (i = 0; i < n; i++) s += (x[i] / m) * (x[i] / m);
    return m * sqrt(s);
  }
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += pow(fabs(x[i]), p);
  return pow(s, 1.0 / p);
}

/* (norm v [ord]): the 2-norm of all elements (Frobenius for a matrix); ord is a real p
 * (1, 2, +inf.0, -inf.0, 0 = count of nonzeros, any other p) or the symbols fro / inf,
 * applied to the elements entrywise. */
esk_value esk_prim_norm(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "norm", argc, argv);
  if (argc < 1 || argc > 2)
    esk_errorf(loc, "norm: expected 1 or 2 arguments (v [ord]), got %lld", (long long)argc);
  esk_tensor *t = esk_la_arg(loc, "norm", argv[0]);
  double p = 2;
  if (argc == 2 && argv[1].tag != ESK_T_DEFAULT) {
    esk_value o = argv[1];
    if (o.tag == ESK_T_SYMBOL) {
      const char *s = ((esk_symbol *)esk_ptr(o))->name->data;
      if (strcmp(s, "fro") == 0) p = 2;
      else if (strcmp(s, "inf") == 0) p = INFINITY;
      else if (strcmp(s, "-inf") == 0) p = -INFINITY;
      else esk_error_type(loc, "norm", "order (a real number, fro or inf)", o);
    } else if (o.tag == ESK_T_FIXNUM || o.tag == ESK_T_FLONUM) {
      p = o.tag == ESK_T_FIXNUM ? (double)o.payload : esk_flonum_value(o);
    } else {
      esk_error_type(loc, "norm", "order (a real number, fro or inf)", o);
    }
  }
  double *x = esk_la_copy_f64(t);
  double r = pnorm(x, t->size, p);
  free(x);
  return esk_flonum(r);
}

/* ---- LU factorization: det, inv, solve -------------------------------------------------- */

/* esk_la_lu and esk_la_lu_solve: lu.c. */

/* The square matrix argument of det/inv/solve as a fresh f64 row-major copy. */
static double *square_arg(const char *loc, const char *who, esk_tensor *t) {
  if (t->rank != 2 || t->dims[0] != t->dims[1]) need_rank(loc, who, "a square matrix", t);
  return esk_la_copy_f64(t);
}

/* Float result dtype for a decomposition of t: f32 stays f32, anything else is f64. */
static int float_dtype(const esk_tensor *t) { return t->dtype == ESK_DT_F32 ? ESK_DT_F32 : ESK_DT_F64; }

esk_value esk_prim_det(const char *loc, esk_value av) {
  AD1("det", av);
  esk_tensor *t = esk_la_arg(loc, "det", av);
  int64_t n = t->rank == 2 ? t->dims[0] : 0;
  double *a = square_arg(loc, "det", t);
  int64_t *piv = malloc((size_t)(n > 0 ? n : 1) * sizeof *piv);
  int sign = esk_la_lu(a, n, piv);
  double d = sign;
  if (sign != 0)
    for (int64_t i = 0; i < n; i++) d *= a[i * n + i];
  free(a);
  free(piv);
  return esk_flonum(d);
}

esk_value esk_prim_inv(const char *loc, esk_value av) {
  AD1("inv", av);
  esk_tensor *t = esk_la_arg(loc, "inv", av);
  int64_t n = t->rank == 2 ? t->dims[0] : 0;
  double *a = square_arg(loc, "inv", t);
  int64_t *piv = malloc((size_t)(n > 0 ? n : 1) * sizeof *piv);
  double *x = calloc((size_t)(n * n > 0 ? n * n : 1), sizeof *x);
  if (esk_la_lu(a, n, piv) == 0) {
    free(a), free(piv), free(x);
    esk_errorf(loc, "inv: singular matrix");
  }
  for (int64_t i = 0; i < n; i++) x[i * n + i] = 1;
  esk_la_lu_solve(a, piv, n, x, n);
  esk_tensor *r = esk_la_from_f64(float_dtype(t), 2, t->dims, x);
  free(a), free(piv), free(x);
  return t_val(r);
}

/* (solve A b): x with A x = b, for b of shape (n) or (n k). */
esk_value esk_prim_solve(const char *loc, esk_value av, esk_value bv) {
  AD2("solve", av, bv);
  esk_tensor *t = esk_la_arg(loc, "solve", av), *b = esk_la_arg(loc, "solve", bv);
  if (t->rank != 2 || t->dims[0] != t->dims[1]) need_rank(loc, "solve", "a square matrix", t);
  int64_t n = t->dims[0];
  if ((b->rank != 1 && b->rank != 2) || b->dims[0] != n) shape_mismatch(loc, "solve", t, b);
  int64_t m = b->rank == 2 ? b->dims[1] : 1;
  double *a = square_arg(loc, "solve", t);
  int64_t *piv = malloc((size_t)(n > 0 ? n : 1) * sizeof *piv);
  if (esk_la_lu(a, n, piv) == 0) {
    free(a), free(piv);
    esk_errorf(loc, "solve: singular matrix");
  }
  double *x = esk_la_copy_f64(b);
  esk_la_lu_solve(a, piv, n, x, m);
  int dt = t->dtype == ESK_DT_F32 && b->dtype == ESK_DT_F32 ? ESK_DT_F32 : ESK_DT_F64;
  esk_tensor *r = esk_la_from_f64(dt, b->rank, b->dims, x);
  free(a), free(piv), free(x);
  return t_val(r);
}
