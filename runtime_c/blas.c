/* An optimized BLAS, loaded with dlopen at the first large matrix product (no link-time
 * dependency: programs and the runtime build and run without one).
 *
 * Search order: $ESHKOL_BLAS (a path or soname; "none" disables BLAS; the Python driver sets
 * it to numpy's bundled scipy-openblas when the user has not), then the system's OpenBLAS
 * (libopenblas.so.0, libopenblas.so), then libblas.so.3 / libcblas.so.3 but only when they are
 * an optimized implementation (OpenBLAS, BLIS or MKL; the reference BLAS is slower than the
 * runtime's own kernel).  Both the LP64 `cblas_dgemm` interface and the ILP64 ones
 * (`cblas_dgemm64_`, numpy's `scipy_cblas_dgemm64_`) are recognised.
 *
 * Threads: OpenBLAS reads $OPENBLAS_NUM_THREADS itself; $ESHKOL_NUM_THREADS, when set, is
 * passed to its set_num_threads. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef void (*dgemm32_fn)(int, int, int, int, int, int, double, const double *, int,
                           const double *, int, double, double *, int);
typedef void (*sgemm32_fn)(int, int, int, int, int, int, float, const float *, int,
                           const float *, int, float, float *, int);
typedef void (*dgemm64_fn)(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                           int64_t, const double *, int64_t, double, double *, int64_t);
typedef void (*sgemm64_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *,
                           int64_t, const float *, int64_t, float, float *, int64_t);

static struct {
  void *handle;
  int ilp64;
  dgemm32_fn dgemm32;
  sgemm32_fn sgemm32;
  dgemm64_fn dgemm64;
  sgemm64_fn sgemm64;
  char name[256];
} blas;

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void *sym(void *h, const char *a, const char *b) {
  void *p = dlsym(h, a);
  return p || !b ? p : dlsym(h, b);
}

/* Adopt library `h` if it exports a usable gemm pair; `need_optimized` rejects the reference
 * BLAS (no OpenBLAS/BLIS/MKL marker symbol). */
static int adopt(void *h, const char *name, int need_optimized) {
  if (need_optimized && !dlsym(h, "openblas_get_config") && !dlsym(h, "bli_info_get_version_str") &&
      !dlsym(h, "MKL_Get_Version") && !dlsym(h, "openblas_get_config64_"))
    return 0;
  void *d = dlsym(h, "cblas_dgemm"), *s = dlsym(h, "cblas_sgemm");
  if (d && s) {
    blas.dgemm32 = (dgemm32_fn)d;
    blas.sgemm32 = (sgemm32_fn)s;
    blas.ilp64 = 0;
  } else {
    d = sym(h, "cblas_dgemm64_", "scipy_cblas_dgemm64_");
    s = sym(h, "cblas_sgemm64_", "scipy_cblas_sgemm64_");
    if (!d || !s) return 0;
    blas.dgemm64 = (dgemm64_fn)d;
    blas.sgemm64 = (sgemm64_fn)s;
    blas.ilp64 = 1;
  }
  blas.handle = h;
  snprintf(blas.name, sizeof blas.name, "%s", name);
  const char *nt = getenv("ESHKOL_NUM_THREADS");
  if (nt && atoi(nt) > 0) {
    /* openblas_set_num_threads takes an int in every build (its ILP64 builds only rename it). */
    void (*set)(int) = (void (*)(int))sym(h, "openblas_set_num_threads",
                                          "scipy_openblas_set_num_threads64_");
    if (!set) set = (void (*)(int))dlsym(h, "openblas_set_num_threads64_");
    if (set) set(atoi(nt));
  }
  return 1;
}

static int try_open(const char *name, int need_optimized) {
  void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  if (adopt(h, name, need_optimized)) return 1;
  dlclose(h);
  return 0;
}

static void load_blas(void) {
  const char *env = getenv("ESHKOL_BLAS");
  if (env && (strcmp(env, "none") == 0 || strcmp(env, "0") == 0)) return;
  if (env && *env && try_open(env, 0)) goto done;
  if (try_open("libopenblas.so.0", 0) || try_open("libopenblas.so", 0) ||
      try_open("libblas.so.3", 1) || try_open("libcblas.so.3", 1))
    goto done;
  return;
done:
  if (getenv("ESHKOL_BLAS_VERBOSE")) fprintf(stderr, "eshkol: BLAS %s\n", blas.name);
}

int esk_blas_available(void) {
  pthread_once(&blas_once, load_blas);
  return blas.handle != NULL;
}

const char *esk_blas_name(void) {
  return esk_blas_available() ? blas.name : "";
}

int esk_blas_dgemm_ab(int transa, int transb, int64_t M, int64_t N, int64_t K, double alpha,
                      const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                      double *C, int64_t ldc) {
  if (!esk_blas_available()) return 0;
  int ta = transa ? CBLAS_TRANS : CBLAS_NO_TRANS, tb = transb ? CBLAS_TRANS : CBLAS_NO_TRANS;
  if (blas.ilp64) {
    blas.dgemm64(CBLAS_ROW_MAJOR, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || lda > INT32_MAX ||
        ldb > INT32_MAX || ldc > INT32_MAX)
      return 0; /* beyond a 32-bit BLAS: the own kernel takes it */
    blas.dgemm32(CBLAS_ROW_MAJOR, ta, tb, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
                 (int)ldb, beta, C, (int)ldc);
  }
  return 1;
}

int esk_blas_dgemm(int transa, int transb, int64_t M, int64_t N, int64_t K, const double *A,
                   int64_t lda, const double *B, int64_t ldb, double *C, int64_t ldc) {
  return esk_blas_dgemm_ab(transa, transb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
}

int esk_blas_sgemm(int transa, int transb, int64_t M, int64_t N, int64_t K, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
  if (!esk_blas_available()) return 0;
  int ta = transa ? CBLAS_TRANS : CBLAS_NO_TRANS, tb = transb ? CBLAS_TRANS : CBLAS_NO_TRANS;
  if (blas.ilp64) {
    blas.sgemm64(CBLAS_ROW_MAJOR, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
  } else {
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || lda > INT32_MAX ||
        ldb > INT32_MAX || ldc > INT32_MAX)
      return 0;
    blas.sgemm32(CBLAS_ROW_MAJOR, ta, tb, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B,
                 (int)ldb, 0.0f, C, (int)ldc);
  }
  return 1;
}
