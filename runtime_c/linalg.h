/* Internal interface of the runtime's dense linear algebra (gemm.c, blas.c, tensor_linalg.c).
 * Not part of the compiler ABI: compiled code only calls the esk_prim_* entries. */
#ifndef ESHKOL_LINALG_H
#define ESHKOL_LINALG_H

#include <stdint.h>

/* C = A*B (accumulate == 0) or C += A*B, for an M x K matrix A and a K x N matrix B given by
 * element strides: A(i,k) = A[i*rsa + k*csa], B(k,j) = B[k*rsb + j*csb]; C is row-major with
 * row stride ldc.  Cache-blocked and packed with a register-tiled micro-kernel (AVX2+FMA when
 * the CPU has it, portable C otherwise); nthreads > 1 splits the work across threads. */
void esk_gemm_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa,
                  const double *B, int64_t rsb, int64_t csb, double *C, int64_t ldc,
                  int accumulate, int nthreads);
void esk_gemm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                  const float *B, int64_t rsb, int64_t csb, float *C, int64_t ldc,
                  int accumulate, int nthreads);
/* Number of threads the runtime's own kernels may use: $ESHKOL_NUM_THREADS, else
 * $OPENBLAS_NUM_THREADS, else the online processor count (at most 64). */
int esk_linalg_threads(void);
/* Name of the micro-kernel in use ("avx2-fma" or "generic"); $ESHKOL_GEMM_KERNEL=generic
 * forces the portable one (tests). */
const char *esk_gemm_kernel_name(void);

/* ---- an optimized BLAS loaded with dlopen at first use (blas.c) ----------------------------
 * Row-major C = A*B with op(A) = A or A^T per trans flag (lda/ldb/ldc are row strides of the
 * stored matrices).  Returns 1 when a BLAS did it, 0 when none is loaded ($ESHKOL_BLAS=none
 * disables it). */
int esk_blas_dgemm(int transa, int transb, int64_t M, int64_t N, int64_t K, const double *A,
                   int64_t lda, const double *B, int64_t ldb, double *C, int64_t ldc);
/* C = alpha*op(A)*op(B) + beta*C. */
int esk_blas_dgemm_ab(int transa, int transb, int64_t M, int64_t N, int64_t K, double alpha,
                      const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                      double *C, int64_t ldc);
int esk_blas_sgemm(int transa, int transb, int64_t M, int64_t N, int64_t K, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc);
/* Whether a BLAS is loaded (loads it on first call), and its file name ("" when none). */
int esk_blas_available(void);
const char *esk_blas_name(void);

#endif
