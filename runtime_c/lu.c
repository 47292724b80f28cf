/* LU factorization with partial pivoting and the triangular solves behind det, inv and solve.
 *
 * Blocked like LAPACK's dgetrf: a panel of NB columns is factored by row operations, the block
 * row to its right is solved with the panel's unit lower triangle, and the trailing matrix is
 * updated by one matrix product (C -= L21 U12) on the BLAS or the runtime's own gemm, which
 * is where nearly all the O(n^3) work goes.  The solves are blocked the same way, so inv of a
 * large matrix runs at matrix-multiply speed.  Row operations use a vectorized axpy compiled
 * for AVX2+FMA and for the baseline, picked at load time (target_clones). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"
#include "linalg.h"
#include "tensor_linalg.h"

#define NB 48 /* panel width */

typedef double v4d __attribute__((vector_size(32), aligned(8)));

/* y[0..n) -= a * x[0..n) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2,fma", "default")))
#endif
static void axpy_sub(int64_t n, double a, const double *restrict x, double *restrict y) {
  int64_t j = 0;
  v4d av = {a, a, a, a};
  for (; j + 8 <= n; j += 8) {
    *(v4d *)(y + j) -= av * *(const v4d *)(x + j);
    *(v4d *)(y + j + 4) -= av * *(const v4d *)(x + j + 4);
  }
  for (; j < n; j++) y[j] -= a * x[j];
}

static void swap_rows(double *a, double *b, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    double t = a[j];
    a[j] = b[j];
    b[j] = t;
  }
}

/* C -= A*B for row-major operands with row strides lda, ldb, ldc (A M x K, B K x N). */
static void gemm_sub(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda,
                     const double *B, int64_t ldb, double *C, int64_t ldc) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  if ((double)M * N * K >= 48.0 * 48 * 48 &&
      esk_blas_dgemm_ab(0, 0, M, N, K, -1.0, A, lda, B, ldb, 1.0, C, ldc))
    return;
  double *neg = malloc((size_t)(M * K) * sizeof *neg);
  if (!neg) esk_errorf(NULL, "out of memory");
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < K; k++) neg[i * K + k] = -A[i * lda + k];
  esk_gemm_f64(M, N, K, neg, K, 1, B, ldb, 1, C, ldc, 1, esk_linalg_threads());
  free(neg);
}

/* In-place LU with partial pivoting of the n x n row-major a: P a = L U with unit L below the
 * diagonal.  piv[k] is the row swapped with row k at step k.  Returns the permutation's sign,
 * or 0 when a pivot is exactly zero (singular; the factorization continues so det is 0). */
int esk_la_lu(double *a, int64_t n, int64_t *piv) {
  int sign = 1, singular = 0;
  for (int64_t k0 = 0; k0 < n; k0 += NB) {
    int64_t kend = k0 + NB < n ? k0 + NB : n;
    for (int64_t k = k0; k < kend; k++) { /* the panel, columns [k0, kend) */
      int64_t p = k;
      double best = fabs(a[k * n + k]);
      for (int64_t i = k + 1; i < n; i++) {
        double v = fabs(a[i * n + k]);
        if (isnan(v)) { /* a NaN pivot propagates NaN, as LAPACK's does */
          p = i;
          break;
        }
        if (v > best) best = v, p = i;
      }
      piv[k] = p;
      if (a[p * n + k] == 0) {
        singular = 1;
        continue;
      }
      if (p != k) {
        swap_rows(a + k * n, a + p * n, n);
        sign = -sign;
      }
      const double *rk = a + k * n;
      double inv = 1.0 / rk[k];
      for (int64_t i = k + 1; i < n; i++) {
        double *ri = a + i * n;
        double l = ri[k] * inv;
        ri[k] = l;
        if (l != 0) axpy_sub(kend - k - 1, l, rk + k + 1, ri + k + 1);
      }
    }
    if (kend == n) break;
    /* U12 = L11^-1 A12 (rows [k0, kend), columns [kend, n)). */
    for (int64_t i = k0 + 1; i < kend; i++)
      for (int64_t k = k0; k < i; k++) {
        double l = a[i * n + k];
        if (l != 0) axpy_sub(n - kend, l, a + k * n + kend, a + i * n + kend);
      }
    /* A22 -= L21 U12 */
    gemm_sub(n - kend, n - kend, kend - k0, a + kend * n + k0, n, a + k0 * n + kend, n,
             a + kend * n + kend, n);
  }
  return singular ? 0 : sign;
}

/* Solve (P^-1 L U) X = B in place for the n x m row-major B, given esk_la_lu's factors. */
void esk_la_lu_solve(const double *lu, const int64_t *piv, int64_t n, double *b, int64_t m) {
  for (int64_t k = 0; k < n; k++) /* the row swaps, in order */
    if (piv[k] != k) swap_rows(b + k * m, b + piv[k] * m, m);
  /* Forward, L Y = B (unit diagonal), by blocks of rows: first the product with the rows
   * already solved, then the diagonal block by row operations. */
  for (int64_t i0 = 0; i0 < n; i0 += NB) {
    int64_t iend = i0 + NB < n ? i0 + NB : n;
    gemm_sub(iend - i0, m, i0, lu + i0 * n, n, b, m, b + i0 * m, m);
    for (int64_t i = i0 + 1; i < iend; i++)
      for (int64_t k = i0; k < i; k++) {
        double l = lu[i * n + k];
        if (l != 0) axpy_sub(m, l, b + k * m, b + i * m);
      }
  }
  /* Backward, U X = Y, from the last block of rows up. */
  for (int64_t iend = n; iend > 0; iend -= NB) {
    int64_t i0 = iend - NB > 0 ? iend - NB : 0;
    gemm_sub(iend - i0, m, n - iend, lu + i0 * n + iend, n, b + iend * m, m, b + i0 * m, m);
    for (int64_t i = iend - 1; i >= i0; i--) {
      double *bi = b + i * m;
      for (int64_t k = i + 1; k < iend; k++) {
        double u = lu[i * n + k];
        if (u != 0) axpy_sub(m, u, b + k * m, bi);
      }
      double d = lu[i * n + i];
      for (int64_t j = 0; j < m; j++) bi[j] /= d;
    }
  }
}
