/* The runtime's own matrix multiply: used for small matrices (where calling a BLAS costs more
 * than it saves) and whenever no optimized BLAS can be loaded.
 *
 * Structure (Goto/BLIS): the N dimension is cut into NC-column blocks, K into KC-deep blocks,
 * M into MC-row blocks.  For each (jc, pc) the KC x NC block of B is packed into NR-wide
 * column panels, for each ic the MC x KC block of A into MR-tall row panels, and a register-
 * tiled micro-kernel multiplies one A panel by one B panel into an MR x NR tile of C held in
 * registers.  Packing makes every micro-kernel load contiguous and aligned, so A and B may
 * have any strides (transposed views cost nothing extra).
 *
 * Micro-kernels: AVX2+FMA intrinsics (6x8 doubles, 6x16 floats: 12 accumulators of 4/8 lanes,
 * two B vectors, one broadcast), chosen at run time by a CPU check, and a portable C kernel
 * of the same shape that the compiler vectorizes for the baseline ISA. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linalg.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ESK_HAVE_X86 1
#endif

/* Blocking parameters (elements).  MC*KC of A stays in L2, KC*NR of B in L1. */
#define MR 6
#define NR_D 8
#define NR_S 16
#ifndef KC_D
#define KC_D 256
#endif
#ifndef MC_D
#define MC_D 96
#endif
#ifndef NC_D
#define NC_D 2048
#endif
#ifndef KC_S
#define KC_S 384
#endif
#ifndef MC_S
#define MC_S 96
#endif
#ifndef NC_S
#define NC_S 4096
#endif
/* Below this many multiply-adds a plain triple loop beats packing. */
#ifndef TINY_FLOPS
#define TINY_FLOPS (8 * 8 * 8)
#endif
/* Pack buffers up to this many bytes live on the stack. */
#define SMALL_PACK (48 * 1024)
/* Each thread gets at least this many multiply-adds (~0.1-0.2 ms of work): starting a thread
 * costs tens of microseconds. */
#define THREAD_FLOPS (160LL * 160 * 160)

typedef void (*ukr_d_fn)(int64_t kc, const double *a, const double *b, double *c, int64_t ldc,
                         int acc);
typedef void (*ukr_s_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                         int acc);

/* ---- portable micro-kernels ------------------------------------------------------------ */

static void ukr_d_generic(int64_t kc, const double *restrict a, const double *restrict b,
                          double *restrict c, int64_t ldc, int acc) {
  double t[MR][NR_D];
  memset(t, 0, sizeof t);
  for (int64_t p = 0; p < kc; p++) {
    for (int i = 0; i < MR; i++) {
      double ai = a[p * MR + i];
      for (int j = 0; j < NR_D; j++) t[i][j] += ai * b[p * NR_D + j];
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR_D; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

static void ukr_s_generic(int64_t kc, const float *restrict a, const float *restrict b,
                          float *restrict c, int64_t ldc, int acc) {
  float t[MR][NR_S];
  memset(t, 0, sizeof t);
  for (int64_t p = 0; p < kc; p++) {
    for (int i = 0; i < MR; i++) {
      float ai = a[p * MR + i];
      for (int j = 0; j < NR_S; j++) t[i][j] += ai * b[p * NR_S + j];
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR_S; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

/* ---- AVX2 + FMA micro-kernels ------------------------------------------------------------ */
#ifdef ESK_HAVE_X86

#define ROW_D(i)                                             \
  do {                                                       \
    __m256d ai = _mm256_broadcast_sd(a + (i));               \
    c##i##0 = _mm256_fmadd_pd(ai, b0, c##i##0);              \
    c##i##1 = _mm256_fmadd_pd(ai, b1, c##i##1);              \
  } while (0)
#define STORE_D(i)                                                                      \
  do {                                                                                  \
    double *ci = c + (i) * ldc;                                                         \
    if (acc) {                                                                          \
      c##i##0 = _mm256_add_pd(c##i##0, _mm256_loadu_pd(ci));                            \
      c##i##1 = _mm256_add_pd(c##i##1, _mm256_loadu_pd(ci + 4));                        \
    }                                                                                   \
    _mm256_storeu_pd(ci, c##i##0);                                                      \
    _mm256_storeu_pd(ci + 4, c##i##1);                                                  \
  } while (0)

__attribute__((target("avx2,fma")))
static void ukr_d_avx2(int64_t kc, const double *restrict a, const double *restrict b,
                       double *restrict c, int64_t ldc, int acc) {
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
  for (int64_t p = 0; p < kc; p++) {
    __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
    _mm_prefetch((const char *)(a + 48), _MM_HINT_T0);
    ROW_D(0); ROW_D(1); ROW_D(2); ROW_D(3); ROW_D(4); ROW_D(5);
    a += MR;
    b += NR_D;
  }
  STORE_D(0); STORE_D(1); STORE_D(2); STORE_D(3); STORE_D(4); STORE_D(5);
}

#define ROW_S(i)                                             \
  do {                                                       \
    __m256 ai = _mm256_broadcast_ss(a + (i));                \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);              \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);              \
  } while (0)
#define STORE_S(i)                                                                      \
  do {                                                                                  \
    float *ci = c + (i) * ldc;                                                          \
    if (acc) {                                                                          \
      c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(ci));                            \
      c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(ci + 8));                        \
    }                                                                                   \
    _mm256_storeu_ps(ci, c##i##0);                                                      \
    _mm256_storeu_ps(ci + 8, c##i##1);                                                  \
  } while (0)

__attribute__((target("avx2,fma")))
static void ukr_s_avx2(int64_t kc, const float *restrict a, const float *restrict b,
                       float *restrict c, int64_t ldc, int acc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
  for (int64_t p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    _mm_prefetch((const char *)(a + 96), _MM_HINT_T0);
    ROW_S(0); ROW_S(1); ROW_S(2); ROW_S(3); ROW_S(4); ROW_S(5);
    a += MR;
    b += NR_S;
  }
  STORE_S(0); STORE_S(1); STORE_S(2); STORE_S(3); STORE_S(4); STORE_S(5);
}
#endif

/* ---- kernel selection ------------------------------------------------------------------- */

static ukr_d_fn ukr_d = ukr_d_generic;
static ukr_s_fn ukr_s = ukr_s_generic;
static const char *kernel_name = "generic";
static pthread_once_t select_once = PTHREAD_ONCE_INIT;

static void select_kernels(void) {
  const char *force = getenv("ESHKOL_GEMM_KERNEL");
  if (force && strcmp(force, "generic") == 0) return;
#ifdef ESK_HAVE_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    ukr_d = ukr_d_avx2;
    ukr_s = ukr_s_avx2;
    kernel_name = "avx2-fma";
  }
#endif
}

const char *esk_gemm_kernel_name(void) {
  pthread_once(&select_once, select_kernels);
  return kernel_name;
}

int esk_linalg_threads(void) {
  static int cached = 0;
  if (cached) return cached;
  int n = 0;
  const char *e = getenv("ESHKOL_NUM_THREADS");
  if (!e || !*e) e = getenv("OPENBLAS_NUM_THREADS");
  if (e && *e) n = atoi(e);
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n <= 0) n = 1;
  if (n > 64) n = 64;
  cached = n;
  return n;
}

/* ---- packing and the blocked loops, once per element type -------------------------------- */

/* GEMM_DEFINE(suffix, T, NR, KC, MC, NC, ukr) defines the serial blocked multiply for one type. */
#define GEMM_DEFINE(SFX, T, NR, KC, MC, NC, UKR)                                                 \
  /* Pack rows [0,mc) x cols [0,kc) of A into MR-tall panels: ap[panel][p][i]. */               \
  static void pack_a_##SFX(int64_t mc, int64_t kc, const T *A, int64_t rsa, int64_t csa,       \
                           T *restrict ap) {                                                    \
    for (int64_t ir = 0; ir < mc; ir += MR) {                                                   \
      int64_t mr = mc - ir < MR ? mc - ir : MR;                                                 \
      const T *a = A + ir * rsa;                                                                \
      if (mr == MR && csa == 1) {                                                               \
        for (int64_t p = 0; p < kc; p++)                                                        \
          for (int i = 0; i < MR; i++) ap[p * MR + i] = a[i * rsa + p];                         \
      } else {                                                                                  \
        for (int64_t p = 0; p < kc; p++) {                                                      \
          int i = 0;                                                                            \
          for (; i < mr; i++) ap[p * MR + i] = a[i * rsa + p * csa];                            \
          for (; i < MR; i++) ap[p * MR + i] = 0;                                               \
        }                                                                                       \
      }                                                                                         \
      ap += MR * kc;                                                                            \
    }                                                                                           \
  }                                                                                             \
  /* Pack rows [0,kc) x cols [0,nc) of B into NR-wide panels: bp[panel][p][j]. */              \
  static void pack_b_##SFX(int64_t kc, int64_t nc, const T *B, int64_t rsb, int64_t csb,       \
                           T *restrict bp) {                                                    \
    for (int64_t jr = 0; jr < nc; jr += NR) {                                                   \
      int64_t nr = nc - jr < NR ? nc - jr : NR;                                                 \
      const T *b = B + jr * csb;                                                                \
      if (nr == NR && csb == 1) {                                                               \
        for (int64_t p = 0; p < kc; p++) memcpy(bp + p * NR, b + p * rsb, NR * sizeof(T));      \
      } else {                                                                                  \
        for (int64_t p = 0; p < kc; p++) {                                                      \
          int64_t j = 0;                                                                        \
          for (; j < nr; j++) bp[p * NR + j] = b[p * rsb + j * csb];                            \
          for (; j < NR; j++) bp[p * NR + j] = 0;                                               \
        }                                                                                       \
      }                                                                                         \
      bp += NR * kc;                                                                            \
    }                                                                                           \
  }                                                                                             \
  static void gemm_serial_##SFX(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa,      \
                                int64_t csa, const T *B, int64_t rsb, int64_t csb, T *C,        \
                                int64_t ldc, int accumulate) {                                  \
    int64_t kcmax = K < KC ? K : KC, mcmax = M < MC ? M : MC, ncmax = N < NC ? N : NC;          \
    size_t abytes = (size_t)((mcmax + MR - 1) / MR * MR) * kcmax * sizeof(T);                   \
    size_t bbytes = (size_t)((ncmax + NR - 1) / NR * NR) * kcmax * sizeof(T);                   \
    /* Small problems pack into the stack (malloc would cost as much as the multiply). */     \
    _Alignas(64) char small[SMALL_PACK];                                                        \
    abytes = (abytes + 63) / 64 * 64;                                                           \
    bbytes = (bbytes + 63) / 64 * 64;                                                           \
    int heap = abytes + bbytes > SMALL_PACK;                                                    \
    T *ap = heap ? aligned_alloc(64, abytes) : (T *)small;                                      \
    T *bp = heap ? aligned_alloc(64, bbytes) : (T *)(small + abytes);                           \
    T tile[MR * NR] __attribute__((aligned(64)));                                               \
    for (int64_t jc = 0; jc < N; jc += NC) {                                                    \
      int64_t nc = N - jc < NC ? N - jc : NC;                                                   \
      for (int64_t pc = 0; pc < K; pc += KC) {                                                  \
        int64_t kc = K - pc < KC ? K - pc : KC;                                                 \
        int acc = accumulate || pc > 0;                                                         \
        pack_b_##SFX(kc, nc, B + pc * rsb + jc * csb, rsb, csb, bp);                            \
        for (int64_t ic = 0; ic < M; ic += MC) {                                                \
          int64_t mc = M - ic < MC ? M - ic : MC;                                               \
          pack_a_##SFX(mc, kc, A + ic * rsa + pc * csa, rsa, csa, ap);                          \
          for (int64_t jr = 0; jr < nc; jr += NR) {                                             \
            int64_t nr = nc - jr < NR ? nc - jr : NR;                                           \
            const T *b = bp + jr * kc;                                                          \
            for (int64_t ir = 0; ir < mc; ir += MR) {                                           \
              int64_t mr = mc - ir < MR ? mc - ir : MR;                                         \
              const T *a = ap + ir * kc;                                                        \
              T *c = C + (ic + ir) * ldc + jc + jr;                                             \
              if (mr == MR && nr == NR) {                                                       \
                UKR(kc, a, b, c, ldc, acc);                                                     \
              } else { /* edge tile: compute in a buffer, add the valid part */                 \
                UKR(kc, a, b, tile, NR, 0);                                                     \
                for (int64_t i = 0; i < mr; i++)                                                \
                  for (int64_t j = 0; j < nr; j++)                                              \
                    c[i * ldc + j] = acc ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j]; \
              }                                                                                 \
            }                                                                                   \
          }                                                                                     \
        }                                                                                       \
      }                                                                                         \
    }                                                                                           \
    if (heap) {                                                                                 \
      free(ap);                                                                                 \
      free(bp);                                                                                 \
    }                                                                                           \
  }                                                                                             \
  /* Tiny products: i-k-j loops (the j loop vectorizes when B's rows are contiguous). */        \
  static void gemm_tiny_##SFX(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa,        \
                              int64_t csa, const T *B, int64_t rsb, int64_t csb, T *C,          \
                              int64_t ldc, int accumulate) {                                    \
    for (int64_t i = 0; i < M; i++) {                                                           \
      T *restrict c = C + i * ldc;                                                              \
      if (!accumulate) memset(c, 0, (size_t)N * sizeof(T));                                     \
      for (int64_t p = 0; p < K; p++) {                                                         \
        T a = A[i * rsa + p * csa];                                                             \
        const T *b = B + p * rsb;                                                               \
        if (csb == 1)                                                                           \
          for (int64_t j = 0; j < N; j++) c[j] += a * b[j];                                     \
        else                                                                                    \
          for (int64_t j = 0; j < N; j++) c[j] += a * b[j * csb];                               \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  typedef struct {                                                                              \
    int64_t M, N, K, rsa, csa, rsb, csb, ldc;                                                   \
    const T *A, *B;                                                                             \
    T *C;                                                                                       \
    int accumulate;                                                                             \
  } job_##SFX;                                                                                  \
  static void *gemm_job_##SFX(void *arg) {                                                      \
    job_##SFX *j = arg;                                                                         \
    gemm_serial_##SFX(j->M, j->N, j->K, j->A, j->rsa, j->csa, j->B, j->rsb, j->csb, j->C,      \
                      j->ldc, j->accumulate);                                                   \
    return NULL;                                                                                \
  }                                                                                             \
  void esk_gemm_##SFX(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa, int64_t csa,   \
                      const T *B, int64_t rsb, int64_t csb, T *C, int64_t ldc, int accumulate,  \
                      int nthreads) {                                                           \
    if (M <= 0 || N <= 0) return;                                                               \
    if (K <= 0) {                                                                               \
      if (!accumulate)                                                                          \
        for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(T));          \
      return;                                                                                   \
    }                                                                                           \
    pthread_once(&select_once, select_kernels);                                                 \
    double flops = (double)M * (double)N * (double)K;                                           \
    if (flops <= TINY_FLOPS) {                                                                  \
      gemm_tiny_##SFX(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);                   \
      return;                                                                                   \
    }                                                                                           \
    /* Split the longer of M and N into per-thread strips of whole register tiles. */          \
    int64_t nt = nthreads;                                                                      \
    if (flops < (double)THREAD_FLOPS * nt) nt = (int64_t)(flops / THREAD_FLOPS);                \
    int split_n = N >= M;                                                                       \
    int64_t unit = split_n ? NR : MR, len = split_n ? N : M;                                    \
    if (nt > len / unit) nt = len / unit;                                                       \
    if (nt <= 1) {                                                                              \
      gemm_serial_##SFX(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);                 \
      return;                                                                                   \
    }                                                                                           \
    job_##SFX jobs[64];                                                                         \
    pthread_t tids[64];                                                                         \
    int started[64] = {0};                                                                      \
    int64_t units = (len + unit - 1) / unit, start = 0;                                         \
    for (int64_t t = 0; t < nt; t++) {                                                          \
      int64_t cnt = units / nt + (t < units % nt), lo = start * unit;                           \
      int64_t hi = (start + cnt) * unit < len ? (start + cnt) * unit : len;                     \
      start += cnt;                                                                             \
      job_##SFX *j = &jobs[t];                                                                  \
      *j = (job_##SFX){M, N, K, rsa, csa, rsb, csb, ldc, A, B, C, accumulate};                  \
      if (split_n) {                                                                            \
        j->N = hi - lo;                                                                         \
        j->B = B + lo * csb;                                                                    \
        j->C = C + lo;                                                                          \
      } else {                                                                                  \
        j->M = hi - lo;                                                                         \
        j->A = A + lo * rsa;                                                                    \
        j->C = C + lo * ldc;                                                                    \
      }                                                                                         \
      if (t > 0) started[t] = pthread_create(&tids[t], NULL, gemm_job_##SFX, j) == 0;           \
    }                                                                                           \
    gemm_job_##SFX(&jobs[0]);                                                                   \
    for (int64_t t = 1; t < nt; t++) {                                                          \
      if (started[t]) pthread_join(tids[t], NULL);                                              \
      else gemm_job_##SFX(&jobs[t]); /* no thread: do its share here */                         \
    }                                                                                           \
  }

GEMM_DEFINE(f64, double, NR_D, KC_D, MC_D, NC_D, ukr_d)
GEMM_DEFINE(f32, float, NR_S, KC_S, MC_S, NC_S, ukr_s)
