/* Private helpers shared by the tensor runtime's files (tensor.c: object, pool, creation,
 * inspection, printing; tensor_ops.c: elementwise kernels and broadcasting; tensor_reduce.c:
 * reductions).  Not part of the ABI: other areas use the declarations in eshkol_rt.h. */
#ifndef ESHKOL_TENSOR_INTERNAL_H
#define ESHKOL_TENSOR_INTERNAL_H

#include <math.h>
#include <string.h>

#include "eshkol_rt.h"

#define TENSOR(v) ((esk_tensor *)esk_ptr(v))

static inline int t_is_tensor(esk_value v) { return v.tag == ESK_T_TENSOR; }
static inline int t_is_real(esk_value v) {
  return v.tag == ESK_T_FIXNUM || v.tag == ESK_T_FLONUM || v.tag == ESK_T_BIGNUM ||
         v.tag == ESK_T_RATIONAL;
}

/* Every tensor prim checks this first (AD values wrap tensors and scalars; ad.c decides). */
#define T_AD_CHECK(NAME, ARGC, ARGV)                                                     \
  do {                                                                                   \
    if (esk_ad_any((ARGC), (ARGV))) return esk_ad_tensor_prim(loc, (NAME), (ARGC), (ARGV)); \
  } while (0)
#define T_AD_CHECK1(NAME, A)                                                             \
  do {                                                                                   \
    esk_value ad_[1] = {A};                                                              \
    T_AD_CHECK(NAME, 1, ad_);                                                            \
  } while (0)
#define T_AD_CHECK2(NAME, A, B)                                                          \
  do {                                                                                   \
    esk_value ad_[2] = {A, B};                                                           \
    T_AD_CHECK(NAME, 2, ad_);                                                            \
  } while (0)

/* In-place addition (tensor-add! t x), tensor_ops.c; the slice accumulation reuses it. */
esk_value esk_prim_tensor_add_bang(const char *loc, esk_value a, esk_value b);

/* Element loads and stores in any dtype, at element offset `off` from `base`. */
static inline double t_load(const void *base, int dtype, int64_t off) {
  switch (dtype) {
    case ESK_DT_F32: return ((const float *)base)[off];
    case ESK_DT_I64: return (double)((const int64_t *)base)[off];
    default: return ((const double *)base)[off];
  }
}
static inline void t_store(void *base, int dtype, int64_t off, double x) {
  switch (dtype) {
    case ESK_DT_F32: ((float *)base)[off] = (float)x; break;
    case ESK_DT_I64:
      /* Out-of-range and NaN conversions are undefined in C: saturate like numpy's casts do
       * on x86 (INT64_MIN), but deterministically. */
      ((int64_t *)base)[off] = (x >= -9.2233720368547758e18 && x < 9.2233720368547758e18)
                                   ? (int64_t)x : INT64_MIN;
      break;
    default: ((double *)base)[off] = x; break;
  }
}
static inline void *t_base(const esk_tensor *t) { return t->buf->base; }

/* A number as a double, or a type error naming `who`. */
double esk_t_real(const char *loc, const char *who, esk_value v);
/* An exact integer in [0, n), or an error naming `who` ("index 5 out of range for ..."). */
int64_t esk_t_index(const char *loc, const char *who, esk_value v, int64_t n, int64_t dim);
/* A non-negative exact integer (a dimension). */
int64_t esk_t_dim(const char *loc, const char *who, esk_value v);
/* Shape from arguments: dimensions d1 d2 ... or one list/vector/tensor of dimensions. */
int64_t esk_t_shape_args(const char *loc, const char *who, int64_t argc, const esk_value *argv,
                         int64_t *dims);
/* An axis argument: an exact integer in [-rank, rank), normalised to [0, rank). */
int64_t esk_t_axis(const char *loc, const char *who, esk_value v, int64_t rank);
/* A header over t's buffer (a view); dims/strides/offset set by the caller. */
esk_tensor *esk_t_view(const esk_tensor *t);
/* x (rank >= 2) with its last two axes swapped, as a strided view (no copy): the GEMM reads it
 * with a transpose flag (tensor_linalg.c). */
esk_tensor *esk_t_swap_last_axes(const esk_tensor *x);
/* Fresh header+buffer with the given dims (row-major strides), uninitialised. */
esk_tensor *esk_t_new(int dtype, int64_t rank, const int64_t *dims);
/* Row-major strides for dims; returns the element count (error when too large). */
int64_t esk_t_row_major(int64_t rank, const int64_t *dims, int64_t *strides);
/* Copy src into dst elementwise (same shape; any dtypes and strides). */
void esk_t_copy_into(esk_tensor *dst, const esk_tensor *src);
/* Fill t with x (any strides). */
void esk_t_fill(esk_tensor *t, double x);
/* A fresh tensor of `dtype` from nested lists/vectors (leaves: real numbers, or tensors of
 * equal shape that become the innermost dimensions); ragged nesting is an error. */
esk_tensor *esk_t_from_nested(const char *loc, const char *who, esk_value v, int dtype);
/* Tensor elementwise equality (equal?): same shape and equal values. */
int esk_t_equal(const esk_tensor *a, const esk_tensor *b);

/* Pairwise sum of n contiguous doubles (numpy's algorithm: blocks of 128 with 8 partial sums). */
double esk_t_pairwise_sum(const double *x, int64_t n);

#endif
