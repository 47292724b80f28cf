/* Private helpers of the linear-algebra and extended tensor ops (tensor_linalg.c,
 * tensor_extra.c).  Not part of the ABI. */
#ifndef ESHKOL_TENSOR_LINALG_H
#define ESHKOL_TENSOR_LINALG_H

#include "eshkol_rt.h"

/* A host tensor argument (tensors, numbers and nested lists/vectors, as esk_as_tensor; a GPU
 * tensor is copied to the host). */
esk_tensor *esk_la_arg(const char *loc, const char *who, esk_value v);
/* dtype of a binary result: the common dtype, or f64 when they differ. */
int esk_la_result_dtype(const esk_tensor *a, const esk_tensor *b);
/* Row-major f64 copy of t's elements (malloc'd, caller frees). */
double *esk_la_copy_f64(const esk_tensor *t);
/* Fresh contiguous tensor of `dtype` from row-major doubles. */
esk_tensor *esk_la_from_f64(int dtype, int64_t rank, const int64_t *dims, const double *x);
/* C (row-major, row stride ldc) = A*B for strided M x K and K x N operands of dtype dt;
 * BLAS or the own kernel, by size. */
void esk_la_gemm(int dt, int64_t M, int64_t N, int64_t K, const void *A, int64_t rsa,
                 int64_t csa, const void *B, int64_t rsb, int64_t csb, void *C, int64_t ldc);
/* numpy.matmul of two tensors (errors name `who`). */
esk_value esk_la_matmul(const char *loc, const char *who, esk_tensor *a, esk_tensor *b);
/* Contiguous copy of t with result axis i = t's axis perm[i]. */
esk_tensor *esk_la_permute(esk_tensor *t, const int64_t *perm);
/* LU with partial pivoting in place (row-major n x n): sign of the permutation, 0 if singular. */
int esk_la_lu(double *a, int64_t n, int64_t *piv);
/* Solve with esk_la_lu's factors for the n x m row-major right-hand sides b, in place. */
void esk_la_lu_solve(const double *lu, const int64_t *piv, int64_t n, double *b, int64_t m);

#endif
