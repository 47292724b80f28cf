/* Matrix decompositions: tensor-cholesky, tensor-qr (Householder, numpy's reduced form and
 * LAPACK's sign convention), tensor-lstsq (through QR), tensor-svd (one-sided Jacobi) and
 * tensor-eig (symmetric matrices, cyclic Jacobi).  All compute in double on row-major copies;
 * f32 inputs give f32 results. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"
#include "tensor_linalg.h"

static esk_tensor *matrix_arg(const char *loc, const char *who, esk_value v) {
  esk_tensor *t = esk_la_arg(loc, who, v);
  if (t->rank != 2) {
    char s[256];
    esk_errorf(loc, "%s: expected a matrix (rank 2), got a tensor of shape %s", who,
               esk_shape_text(t, s, sizeof s));
  }
  return t;
}

static int out_dtype(const esk_tensor *t) { return t->dtype == ESK_DT_F32 ? ESK_DT_F32 : ESK_DT_F64; }

static esk_value mat_value(int dt, int64_t m, int64_t n, const double *x) {
  int64_t dims[2] = {m, n};
  return esk_tensor_value(esk_la_from_f64(dt, 2, dims, x));
}

static void *xmalloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  if (!p) esk_errorf(NULL, "out of memory");
  return p;
}

#define AD_CHECK(NAME)                                                                    \
  do {                                                                                    \
    if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, NAME, argc, argv);         \
  } while (0)

/* ---- Cholesky ------------------------------------------------------------------------- */

/* (tensor-cholesky A): lower-triangular L with A = L L^T (A's lower triangle is used). */
esk_value esk_prim_tensor_cholesky(const char *loc, esk_value av) {
  int64_t argc = 1;
  esk_value argv[1] = {av};
  AD_CHECK("tensor-cholesky");
  const char *who = "tensor-cholesky";
  esk_tensor *t = matrix_arg(loc, who, av);
  int64_t n = t->dims[0];
  if (t->dims[1] != n) esk_errorf(loc, "%s: expected a square matrix", who);
  double *a = esk_la_copy_f64(t);
  for (int64_t j = 0; j < n; j++) {
    double d = a[j * n + j];
    for (int64_t k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) {
      free(a);
      esk_errorf(loc, "%s: matrix is not positive definite", who);
    }
    d = sqrt(d);
    a[j * n + j] = d;
    for (int64_t i = j + 1; i < n; i++) {
      double s = a[i * n + j];
      for (int64_t k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
    for (int64_t k = j + 1; k < n; k++) a[j * n + k] = 0; /* clear the upper triangle */
  }
  esk_value r = mat_value(out_dtype(t), n, n, a);
  free(a);
  return r;
}

/* ---- Householder QR ----------------------------------------------------------------------- */

/* In-place QR of the m x n row-major a (LAPACK dgeqrf layout): R on and above the diagonal,
 * reflector j's vector below it (implicit 1 on the diagonal), tau[j] its scale. */
static void householder_qr(double *a, int64_t m, int64_t n, double *tau) {
  int64_t k = m < n ? m : n;
  double *w = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *w);
  for (int64_t j = 0; j < k; j++) {
    double alpha = a[j * n + j], xnorm = 0, scale = 0;
    for (int64_t i = j + 1; i < m; i++) scale = fmax(scale, fabs(a[i * n + j]));
    if (scale > 0) {
      for (int64_t i = j + 1; i < m; i++) {
        double v = a[i * n + j] / scale;
        xnorm += v * v;
      }
      xnorm = scale * sqrt(xnorm);
    }
    if (xnorm == 0) {
      tau[j] = 0;
      continue;
    }
    double beta = -copysign(hypot(alpha, xnorm), alpha);
    tau[j] = (beta - alpha) / beta;
    double inv = 1.0 / (alpha - beta);
    for (int64_t i = j + 1; i < m; i++) a[i * n + j] *= inv;
    a[j * n + j] = beta;
    /* Apply H = I - tau v v^T to the columns right of j. */
    int64_t c0 = j + 1;
    if (c0 >= n) continue;
    for (int64_t c = c0; c < n; c++) w[c] = a[j * n + c];
    for (int64_t i = j + 1; i < m; i++) {
      double v = a[i * n + j];
      for (int64_t c = c0; c < n; c++) w[c] += v * a[i * n + c];
    }
    double tj = tau[j];
    for (int64_t c = c0; c < n; c++) a[j * n + c] -= tj * w[c];
    for (int64_t i = j + 1; i < m; i++) {
      double v = tj * a[i * n + j];
      for (int64_t c = c0; c < n; c++) a[i * n + c] -= v * w[c];
    }
  }
  free(w);
}

/* b (m x p) := H_j b for reflector j of the factored a (m x n). */
static void apply_reflector(const double *a, int64_t m, int64_t n, const double *tau, int64_t j,
                            double *b, int64_t p, double *w) {
  if (tau[j] == 0) return;
  for (int64_t c = 0; c < p; c++) w[c] = b[j * p + c];
  for (int64_t i = j + 1; i < m; i++) {
    double v = a[i * n + j];
    for (int64_t c = 0; c < p; c++) w[c] += v * b[i * p + c];
  }
  for (int64_t c = 0; c < p; c++) b[j * p + c] -= tau[j] * w[c];
  for (int64_t i = j + 1; i < m; i++) {
    double v = tau[j] * a[i * n + j];
    for (int64_t c = 0; c < p; c++) b[i * p + c] -= v * w[c];
  }
}

/* Q (m x kq, first kq columns of H_0 ... H_{k-1}). */
static double *form_q(const double *a, int64_t m, int64_t n, const double *tau, int64_t kq) {
  int64_t k = m < n ? m : n;
  double *q = xmalloc((size_t)(m * kq) * sizeof *q), *w = xmalloc((size_t)kq * sizeof *w);
  for (int64_t i = 0; i < m && i < kq; i++) q[i * kq + i] = 1;
  for (int64_t j = k - 1; j >= 0; j--) apply_reflector(a, m, n, tau, j, q, kq, w);
  free(w);
  return q;
}

/* (tensor-qr A): (list Q R), A = Q R with Q's k = min(m, n) columns orthonormal and R k x n
 * upper triangular (numpy's "reduced" mode). */
esk_value esk_prim_tensor_qr(const char *loc, esk_value av) {
  int64_t argc = 1;
  esk_value argv[1] = {av};
  AD_CHECK("tensor-qr");
  esk_tensor *t = matrix_arg(loc, "tensor-qr", av);
  int64_t m = t->dims[0], n = t->dims[1], k = m < n ? m : n;
  double *a = esk_la_copy_f64(t), *tau = xmalloc((size_t)k * sizeof *tau);
  householder_qr(a, m, n, tau);
  double *q = form_q(a, m, n, tau, k), *r = xmalloc((size_t)(k * n) * sizeof *r);
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = i; j < n; j++) r[i * n + j] = a[i * n + j];
  int dt = out_dtype(t);
  esk_value qv = mat_value(dt, m, k, q), rv = mat_value(dt, k, n, r);
  free(a), free(tau), free(q), free(r);
  return esk_cons(qv, esk_cons(rv, esk_nil()));
}

/* (tensor-lstsq A b): the x minimising |A x - b| (the minimum-norm one when A is wide), for a
 * full-rank A; b of shape (m) or (m k).  A rank-deficient A is an error. */
esk_value esk_prim_tensor_lstsq(const char *loc, esk_value av, esk_value bv) {
  int64_t argc = 2;
  esk_value argv[2] = {av, bv};
  AD_CHECK("tensor-lstsq");
  const char *who = "tensor-lstsq";
  esk_tensor *t = matrix_arg(loc, who, av), *b = esk_la_arg(loc, who, bv);
  int64_t m = t->dims[0], n = t->dims[1];
  if ((b->rank != 1 && b->rank != 2) || b->dims[0] != m) {
    char s0[256], s1[256];
    esk_errorf(loc, "%s: shape mismatch %s x %s", who, esk_shape_text(t, s0, sizeof s0),
               esk_shape_text(b, s1, sizeof s1));
  }
  int64_t p = b->rank == 2 ? b->dims[1] : 1, k = m < n ? m : n;
  int tall = m >= n;
  /* Factor A (tall) or A^T (wide): f is r x c with r >= c = k. */
  int64_t r = tall ? m : n, c = k;
  double *src = esk_la_copy_f64(t), *f = xmalloc((size_t)(r * c) * sizeof *f);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      if (tall) f[i * n + j] = src[i * n + j];
      else f[j * m + i] = src[i * n + j];
    }
  free(src);
  double *tau = xmalloc((size_t)(c ? c : 1) * sizeof *tau);
  householder_qr(f, r, c, tau);
  double rmax = 0;
  for (int64_t i = 0; i < c; i++) rmax = fmax(rmax, fabs(f[i * c + i]));
  for (int64_t i = 0; i < c; i++)
    if (!(fabs(f[i * c + i]) > rmax * DBL_EPSILON * (double)r)) {
      free(f), free(tau);
      esk_errorf(loc, "%s: matrix is rank deficient", who);
    }
  double *x = xmalloc((size_t)(n * p) * sizeof *x), *w = xmalloc((size_t)p * sizeof *w);
  double *rhs = esk_la_copy_f64(b);
  if (tall) { /* x = R^-1 (Q^T b)[:n] */
    for (int64_t j = 0; j < c; j++) apply_reflector(f, r, c, tau, j, rhs, p, w);
    for (int64_t i = n - 1; i >= 0; i--)
      for (int64_t q = 0; q < p; q++) {
        double s = rhs[i * p + q];
        for (int64_t j = i + 1; j < n; j++) s -= f[i * c + j] * x[j * p + q];
        x[i * p + q] = s / f[i * c + i];
      }
  } else { /* A = R^T Q^T: solve R^T y = b, then x = Q [y; 0] */
    for (int64_t i = 0; i < m; i++)
      for (int64_t q = 0; q < p; q++) {
        double s = rhs[i * p + q];
        for (int64_t j = 0; j < i; j++) s -= f[j * c + i] * x[j * p + q];
        x[i * p + q] = s / f[i * c + i];
      }
    for (int64_t j = c - 1; j >= 0; j--) apply_reflector(f, r, c, tau, j, x, p, w);
  }
  int dt = t->dtype == ESK_DT_F32 && b->dtype == ESK_DT_F32 ? ESK_DT_F32 : ESK_DT_F64;
  int64_t dims[2] = {n, p};
  esk_value res = esk_tensor_value(esk_la_from_f64(dt, b->rank, dims, x));
  free(f), free(tau), free(x), free(w), free(rhs);
  return res;
}

/* ---- SVD (one-sided Jacobi) -------------------------------------------------------------- */

/* (tensor-svd A): (list U S V) with A = U diag(S) V^T, S descending (k = min(m, n) values), U
 * m x k and V n x k with orthonormal columns. */
esk_value esk_prim_tensor_svd(const char *loc, esk_value av) {
  int64_t argc = 1;
  esk_value argv[1] = {av};
  AD_CHECK("tensor-svd");
  esk_tensor *t = matrix_arg(loc, "tensor-svd", av);
  int64_t m0 = t->dims[0], n0 = t->dims[1];
  int wide = n0 > m0; /* work on A^T so that rows >= columns */
  int64_t m = wide ? n0 : m0, n = wide ? m0 : n0;
  double *src = esk_la_copy_f64(t);
  /* Columns of the working matrix stored as rows (contiguous): u[j*m + i] = A(i, j). */
  double *u = xmalloc((size_t)(m * n) * sizeof *u), *v = xmalloc((size_t)(n * n) * sizeof *v);
  for (int64_t i = 0; i < m0; i++)
    for (int64_t j = 0; j < n0; j++) {
      if (wide) u[i * m + j] = src[i * n0 + j];
      else u[j * m + i] = src[i * n0 + j];
    }
  free(src);
  for (int64_t j = 0; j < n; j++) v[j * n + j] = 1;
  for (int sweep = 0; sweep < 60; sweep++) {
    int rotated = 0;
    for (int64_t p = 0; p < n; p++)
      for (int64_t q = p + 1; q < n; q++) {
        double *up = u + p * m, *uq = u + q * m, al = 0, be = 0, ga = 0;
        for (int64_t i = 0; i < m; i++) al += up[i] * up[i], be += uq[i] * uq[i], ga += up[i] * uq[i];
        if (fabs(ga) <= DBL_EPSILON * sqrt(al * be) || ga == 0) continue;
        rotated = 1;
        double zeta = (be - al) / (2 * ga);
        double tt = copysign(1.0, zeta) / (fabs(zeta) + sqrt(1 + zeta * zeta));
        double cs = 1 / sqrt(1 + tt * tt), sn = cs * tt;
        for (int64_t i = 0; i < m; i++) {
          double x = up[i], y = uq[i];
          up[i] = cs * x - sn * y;
          uq[i] = sn * x + cs * y;
        }
        double *vp = v + p * n, *vq = v + q * n;
        for (int64_t i = 0; i < n; i++) {
          double x = vp[i], y = vq[i];
          vp[i] = cs * x - sn * y;
          vq[i] = sn * x + cs * y;
        }
      }
    if (!rotated) break;
  }
  /* Singular values are the column norms; order them descending. */
  double *s = xmalloc((size_t)n * sizeof *s);
  int64_t *ord = xmalloc((size_t)n * sizeof *ord);
  for (int64_t j = 0; j < n; j++) {
    double acc = 0;
    for (int64_t i = 0; i < m; i++) acc += u[j * m + i] * u[j * m + i];
    s[j] = sqrt(acc);
    ord[j] = j;
  }
  for (int64_t i = 1; i < n; i++) /* insertion sort (n is small next to the O(n^3) work) */
    for (int64_t j = i; j > 0 && s[ord[j]] > s[ord[j - 1]]; j--) {
      int64_t x = ord[j];
      ord[j] = ord[j - 1];
      ord[j - 1] = x;
    }
  /* Left vectors u_j / s_j (m x n), right vectors v (n x n); swap roles back when wide. */
  double *U = xmalloc((size_t)(m * n) * sizeof *U), *V = xmalloc((size_t)(n * n) * sizeof *V),
         *S = xmalloc((size_t)n * sizeof *S);
  for (int64_t jj = 0; jj < n; jj++) {
    int64_t j = ord[jj];
    S[jj] = s[j];
    for (int64_t i = 0; i < m; i++) U[i * n + jj] = s[j] > 0 ? u[j * m + i] / s[j] : 0;
    for (int64_t i = 0; i < n; i++) V[i * n + jj] = v[j * n + i];
  }
  /* Columns of U for zero singular values: complete to an orthonormal set (Gram-Schmidt on
   * unit vectors) so that U stays orthonormal. */
  for (int64_t jj = 0; jj < n; jj++) {
    if (S[jj] > 0) continue;
    for (int64_t e = 0; e < m; e++) {
      for (int64_t i = 0; i < m; i++) U[i * n + jj] = i == e;
      for (int pass = 0; pass < 2; pass++)
        for (int64_t c = 0; c < n; c++) {
          if (c == jj || (S[c] == 0 && c > jj)) continue;
          double d = 0;
          for (int64_t i = 0; i < m; i++) d += U[i * n + c] * U[i * n + jj];
          for (int64_t i = 0; i < m; i++) U[i * n + jj] -= d * U[i * n + c];
        }
      double nn = 0;
      for (int64_t i = 0; i < m; i++) nn += U[i * n + jj] * U[i * n + jj];
      if (nn > 1e-6) {
        nn = sqrt(nn);
        for (int64_t i = 0; i < m; i++) U[i * n + jj] /= nn;
        break;
      }
    }
  }
  int dt = out_dtype(t);
  int64_t sd[1] = {n};
  esk_value sv = esk_tensor_value(esk_la_from_f64(dt, 1, sd, S));
  esk_value uv = wide ? mat_value(dt, n, n, V) : mat_value(dt, m, n, U);
  esk_value vv = wide ? mat_value(dt, m, n, U) : mat_value(dt, n, n, V);
  free(u), free(v), free(s), free(ord), free(U), free(V), free(S);
  return esk_cons(uv, esk_cons(sv, esk_cons(vv, esk_nil())));
}

/* ---- symmetric eigenproblem (cyclic Jacobi) -------------------------------------------------- */

/* (tensor-eig A) for a symmetric A: (list w V), eigenvalues ascending and the eigenvectors
 * as V's columns (numpy.linalg.eigh).  A non-symmetric A is an error. */
esk_value esk_prim_tensor_eig(const char *loc, esk_value av) {
  int64_t argc = 1;
  esk_value argv[1] = {av};
  AD_CHECK("tensor-eig");
  const char *who = "tensor-eig";
  esk_tensor *t = matrix_arg(loc, who, av);
  int64_t n = t->dims[0];
  if (t->dims[1] != n) esk_errorf(loc, "%s: expected a square matrix", who);
  double *a = esk_la_copy_f64(t), *v = xmalloc((size_t)(n * n) * sizeof *v), amax = 0;
  for (int64_t i = 0; i < n * n; i++) amax = fmax(amax, fabs(a[i]));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i + 1; j < n; j++)
      if (fabs(a[i * n + j] - a[j * n + i]) > 1e-10 * (amax > 0 ? amax : 1)) {
        free(a), free(v);
        esk_errorf(loc, "%s: only symmetric matrices are supported", who);
      }
  for (int64_t i = 0; i < n; i++) v[i * n + i] = 1;
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    if (off <= 1e-300) break;
    for (int64_t p = 0; p < n; p++)
      for (int64_t q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        if (fabs(apq) <= DBL_MIN) continue;
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        double tt = copysign(1.0, theta) / (fabs(theta) + sqrt(theta * theta + 1));
        double c = 1 / sqrt(tt * tt + 1), s = tt * c;
        for (int64_t k = 0; k < n; k++) { /* rows and columns p, q of a */
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; k++) {
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; k++) {
          double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  int64_t *ord = xmalloc((size_t)n * sizeof *ord);
  for (int64_t i = 0; i < n; i++) ord[i] = i;
  for (int64_t i = 1; i < n; i++)
    for (int64_t j = i; j > 0 && a[ord[j] * n + ord[j]] < a[ord[j - 1] * n + ord[j - 1]]; j--) {
      int64_t x = ord[j];
      ord[j] = ord[j - 1];
      ord[j - 1] = x;
    }
  double *w = xmalloc((size_t)n * sizeof *w), *V = xmalloc((size_t)(n * n) * sizeof *V);
  for (int64_t jj = 0; jj < n; jj++) {
    w[jj] = a[ord[jj] * n + ord[jj]];
    for (int64_t i = 0; i < n; i++) V[i * n + jj] = v[i * n + ord[jj]];
  }
  int dt = out_dtype(t);
  int64_t wd[1] = {n};
  esk_value wv = esk_tensor_value(esk_la_from_f64(dt, 1, wd, w)), vv = mat_value(dt, n, n, V);
  free(a), free(v), free(ord), free(w), free(V);
  return esk_cons(wv, esk_cons(vv, esk_nil()));
}

/* ---- LU ------------------------------------------------------------------------------------ */

/* (tensor-lu A): (list LU perm sign) with P A = L U: LU holds U on and above the diagonal and
 * L's multipliers below it (unit diagonal implied), perm (i64) says which row of A is row i of
 * P A, sign is the permutation's sign (1 or -1; 0 when A is singular). */
esk_value esk_prim_tensor_lu(const char *loc, esk_value av) {
  int64_t argc = 1;
  esk_value argv[1] = {av};
  AD_CHECK("tensor-lu");
  esk_tensor *t = matrix_arg(loc, "tensor-lu", av);
  int64_t n = t->dims[0];
  if (t->dims[1] != n) esk_errorf(loc, "tensor-lu: expected a square matrix");
  double *a = esk_la_copy_f64(t);
  int64_t *piv = xmalloc((size_t)n * sizeof *piv);
  int sign = esk_la_lu(a, n, piv);
  int64_t pd[1] = {n};
  esk_tensor *perm = esk_tensor_new(ESK_DT_I64, 1, pd);
  int64_t *p = esk_tensor_data(perm);
  for (int64_t i = 0; i < n; i++) p[i] = i;
  for (int64_t k = 0; k < n; k++) {
    int64_t x = p[k];
    p[k] = p[piv[k]];
    p[piv[k]] = x;
  }
  esk_value lu = mat_value(out_dtype(t), n, n, a);
  free(a), free(piv);
  return esk_cons(lu, esk_cons(esk_tensor_value(perm), esk_cons(esk_fixnum(sign), esk_nil())));
}
