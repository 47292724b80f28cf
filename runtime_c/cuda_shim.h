/* Private interface of the CUDA driver shim (cuda_shim.c) for the GPU tensor operations
 * (cuda_tensor.c).  Not part of the ABI: other areas use the declarations in eshkol_rt.h. */
#ifndef ESHKOL_CUDA_SHIM_H
#define ESHKOL_CUDA_SHIM_H

#include "eshkol_rt.h"

typedef unsigned long long esk_devptr; /* CUdeviceptr */

/* The driver is loaded, a device found and its primary context current on this thread;
 * otherwise a catchable error ("cuda: no CUDA driver found (libcuda.so.1)", ...). */
void esk_cu_ready(const char *loc);
/* 1 when esk_cu_ready would succeed (never raises). */
int esk_cu_available(void);
/* Why the GPU is unavailable (NULL when it is available or not yet tried). */
const char *esk_cu_unavailable_reason(void);

/* Device memory from the caching pool (never 0 bytes); *rounded receives the block size. */
esk_devptr esk_cu_alloc(const char *loc, size_t bytes, size_t *rounded);
/* Back to the pool (called by buffer finalizers on any thread: no driver calls). */
void esk_cu_release(esk_devptr p, size_t rounded);

void esk_cu_htod(const char *loc, esk_devptr dst, const void *src, size_t bytes);
void esk_cu_dtoh(const char *loc, void *dst, esk_devptr src, size_t bytes);
void esk_cu_dtod(const char *loc, esk_devptr dst, esk_devptr src, size_t bytes);
void esk_cu_sync(const char *loc);

/* Kernel arguments in the order of the kernel's host function (eshkol/lower/cuda_kernels.py):
 * a memref is allocated, aligned, offset, sizes..., strides...; scalars one slot each. */
#define ESK_KARGS_MAX 64
typedef struct esk_kargs {
  uint64_t slot[ESK_KARGS_MAX];
  int n;
} esk_kargs;
void esk_kargs_u64(esk_kargs *a, uint64_t v);
void esk_kargs_scalar(esk_kargs *a, int dtype, double x);  /* f64, or f32 in the low 4 bytes */
void esk_kargs_memref(esk_kargs *a, esk_devptr base, int64_t offset, int rank,
                      const int64_t *sizes, const int64_t *strides);

/* Index of a fused chain by its CPU kernel entry (its GPU kernels: fused<i>_<dt>), or -1. */
int64_t esk_cu_fused_index(const void *f64_entry);
/* Is a kernel of that name registered (esk_cuda_register)? */
int esk_cu_has_kernel(const char *name);
/* Launch kernel `name` over `work` parallel iterations (blocks of the kernel's block size). */
void esk_cu_launch(const char *loc, const char *name, int64_t work, esk_kargs *a);

/* Row-major C[m,n] = A[m,k] B[k,n] with cuBLAS (contiguous operands, dtype f64 or f32). */
void esk_cu_gemm(const char *loc, int dtype, int64_t m, int64_t n, int64_t k, esk_devptr A,
                 esk_devptr B, esk_devptr C);

#endif
