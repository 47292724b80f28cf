/* The CUDA driver shim: libcuda and libcublas are dlopen'ed on first use, so neither the
 * runtime nor the executables linked with it need CUDA to build, link or start.
 *
 *   - driver: cuInit, the device's primary context (made current on each thread that uses it)
 *   - memory: cuMemAlloc/cuMemFree behind a caching pool (blocks kept by rounded size, dropped
 *     when an allocation fails); buffers return to the pool from collector finalizers, and the
 *     pool triggers collections itself since the collector cannot see device memory
 *   - kernels: the manifest and PTX a cuda-target program registers (esk_cuda_register); each
 *     kernel's module is loaded (cuModuleLoadDataEx, the driver compiles the PTX) on first use
 *     and launched with cuLaunchKernel, parameters filled as the manifest says
 *   - cuBLAS: dgemm/sgemm for matmul (row-major through swapped operands)
 *
 * Everything runs on the legacy default stream, so kernels, copies and cuBLAS calls are ordered
 * and a device-to-host copy waits for the work before it. */
#define GC_THREADS
#include <gc.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_shim.h"

/* ---- the driver API, as far as we use it (types from cuda.h, which we do not include) ---- */

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

#define CU_FUNCTIONS(X)                                                                       \
  X(cuInit, (unsigned flags))                                                                 \
  X(cuDeviceGetCount, (int *n))                                                               \
  X(cuDeviceGet, (CUdevice * d, int ordinal))                                                 \
  X(cuDeviceGetName, (char *name, int len, CUdevice d))                                       \
  X(cuDevicePrimaryCtxRetain, (CUcontext * c, CUdevice d))                                    \
  X(cuCtxSetCurrent, (CUcontext c))                                                           \
  X(cuCtxSynchronize, (void))                                                                 \
  X(cuMemAlloc_v2, (esk_devptr * p, size_t bytes))                                            \
  X(cuMemFree_v2, (esk_devptr p))                                                             \
  X(cuMemGetInfo_v2, (size_t * free_bytes, size_t *total))                                    \
  X(cuMemcpyHtoD_v2, (esk_devptr dst, const void *src, size_t bytes))                         \
  X(cuMemcpyDtoH_v2, (void *dst, esk_devptr src, size_t bytes))                               \
  X(cuMemcpyDtoD_v2, (esk_devptr dst, esk_devptr src, size_t bytes))                          \
  X(cuModuleLoadDataEx, (CUmodule * m, const void *image, unsigned n, int *opts, void **vals)) \
  X(cuModuleGetFunction, (CUfunction * f, CUmodule m, const char *name))                      \
  X(cuLaunchKernel, (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,         \
                     unsigned by, unsigned bz, unsigned shared, CUstream s, void **params,     \
                     void **extra))                                                           \
  X(cuGetErrorString, (CUresult r, const char **text))

#define DECLARE(name, args) static CUresult (*p_##name) args;
CU_FUNCTIONS(DECLARE)
#undef DECLARE

static pthread_mutex_t cu_lock = PTHREAD_MUTEX_INITIALIZER;
static int cu_state;               /* 0 not tried, 1 ready, -1 unavailable */
static char cu_reason[256];        /* why unavailable */
static CUcontext cu_ctx;
static size_t cu_total_mem;
static __thread int cu_thread_ready;

static const char *cu_err(CUresult r) {
  const char *s = NULL;
  if (p_cuGetErrorString && p_cuGetErrorString(r, &s) == 0 && s) return s;
  return "unknown CUDA error";
}

static void cu_check(const char *loc, CUresult r, const char *what) {
  if (r != 0) esk_errorf(loc, "cuda: %s failed: %s (error %d)", what, cu_err(r), r);
}

/* Load the driver and open device 0; records the reason on failure.  Called under cu_lock. */
static void cu_open(void) {
  /* ESHKOL_LIBCUDA: another driver library (tests name a missing one to act as a machine
   * without a GPU). */
  const char *env = getenv("ESHKOL_LIBCUDA");
  const char *name = env && *env ? env : "libcuda.so.1";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(cu_reason, sizeof cu_reason, "cuda: no CUDA driver found (%s)", name);
    cu_state = -1;
    return;
  }
#define LOAD(name, args)                                                                \
  p_##name = (CUresult(*) args)dlsym(lib, #name);                                       \
  if (!p_##name) {                                                                      \
    snprintf(cu_reason, sizeof cu_reason, "cuda: the CUDA driver lacks %s (too old?)", #name); \
    cu_state = -1;                                                                      \
    return;                                                                             \
  }
  CU_FUNCTIONS(LOAD)
#undef LOAD
  CUresult r = p_cuInit(0);
  int count = 0;
  if (r == 0) r = p_cuDeviceGetCount(&count);
  if (r != 0 || count == 0) {
    snprintf(cu_reason, sizeof cu_reason, "cuda: no usable CUDA device (%s)",
             r != 0 ? cu_err(r) : "the driver sees no device");
    cu_state = -1;
    return;
  }
  CUdevice dev;
  if ((r = p_cuDeviceGet(&dev, 0)) != 0 || (r = p_cuDevicePrimaryCtxRetain(&cu_ctx, dev)) != 0 ||
      (r = p_cuCtxSetCurrent(cu_ctx)) != 0) {
    snprintf(cu_reason, sizeof cu_reason, "cuda: cannot open device 0 (%s)", cu_err(r));
    cu_state = -1;
    return;
  }
  size_t free_bytes = 0;
  p_cuMemGetInfo_v2(&free_bytes, &cu_total_mem);
  cu_state = 1;
}

static int cu_try(void) {
  if (cu_state == 0) {
    pthread_mutex_lock(&cu_lock);
    if (cu_state == 0) cu_open();
    pthread_mutex_unlock(&cu_lock);
  }
  return cu_state == 1;
}

int esk_cu_available(void) { return cu_try(); }

const char *esk_cu_unavailable_reason(void) { return cu_state == -1 ? cu_reason : NULL; }

void esk_cu_ready(const char *loc) {
  if (!cu_try()) esk_errorf(loc, "%s", cu_reason);
  if (!cu_thread_ready) {
    cu_check(loc, p_cuCtxSetCurrent(cu_ctx), "cuCtxSetCurrent");
    cu_thread_ready = 1;
  }
}

/* ---- memory ------------------------------------------------------------------------------ */

/* Free blocks kept for reuse, by exact (rounded) size. */
typedef struct cu_block {
  esk_devptr p;
  size_t size;
  struct cu_block *next;
} cu_block;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static cu_block *pool_free_list;
static size_t pool_cached, pool_outstanding, pool_next_collect;

/* Sizes up to 1 MiB round to a power of two (at least 512 B); larger ones to an eighth of
 * their power of two, so a block wastes at most 1/8 and equal requests share blocks. */
static size_t cu_round(size_t bytes) {
  size_t p = 512;
  while (p < bytes) p <<= 1;
  if (p <= ((size_t)1 << 20)) return p;
  size_t step = p >> 4;
  return (bytes + step - 1) / step * step;
}

static void pool_flush(void) {
  pthread_mutex_lock(&pool_lock);
  cu_block *b = pool_free_list;
  pool_free_list = NULL;
  pool_cached = 0;
  pthread_mutex_unlock(&pool_lock);
  while (b) {
    cu_block *n = b->next;
    p_cuMemFree_v2(b->p);
    free(b);
    b = n;
  }
}

/* Collect when the device bytes handed out since the last collection pass a threshold (an
 * eighth of the device, at least 1 GiB, and at least what is still live), so dropped tensors
 * give their memory back even though the collected heap barely grows. */
static void pool_maybe_collect(size_t want) {
  if (!pool_next_collect) {
    size_t min = cu_total_mem / 8;
    pool_next_collect = min > ((size_t)1 << 30) ? min : ((size_t)1 << 30);
  }
  if (pool_outstanding + want <= pool_next_collect) return;
  GC_gcollect();
  GC_invoke_finalizers();
  size_t min = cu_total_mem / 8 > ((size_t)1 << 30) ? cu_total_mem / 8 : ((size_t)1 << 30);
  pool_next_collect = pool_outstanding + (pool_outstanding > min ? pool_outstanding : min);
}

esk_devptr esk_cu_alloc(const char *loc, size_t bytes, size_t *rounded) {
  esk_cu_ready(loc);
  size_t size = cu_round(bytes);
  pool_maybe_collect(size);
  esk_devptr p = 0;
  pthread_mutex_lock(&pool_lock);
  for (cu_block **q = &pool_free_list; *q; q = &(*q)->next)
    if ((*q)->size == size) {
      cu_block *b = *q;
      *q = b->next;
      p = b->p;
      pool_cached -= size;
      free(b);
      break;
    }
  pool_outstanding += size;
  pthread_mutex_unlock(&pool_lock);
  if (!p) {
    CUresult r = p_cuMemAlloc_v2(&p, size);
    if (r != 0) { /* give back cached blocks and whatever garbage holds, then once more */
      GC_gcollect();
      GC_invoke_finalizers();
      pool_flush();
      r = p_cuMemAlloc_v2(&p, size);
    }
    if (r != 0) {
      pthread_mutex_lock(&pool_lock);
      pool_outstanding -= size;
      pthread_mutex_unlock(&pool_lock);
      esk_errorf(loc, "cuda: out of device memory allocating %zu bytes (%s)", bytes, cu_err(r));
    }
  }
  *rounded = size;
  return p;
}

void esk_cu_release(esk_devptr p, size_t rounded) {
  cu_block *b = malloc(sizeof *b);
  pthread_mutex_lock(&pool_lock);
  pool_outstanding -= rounded;
  if (b) {
    b->p = p;
    b->size = rounded;
    b->next = pool_free_list;
    pool_free_list = b;
    pool_cached += rounded;
  }
  pthread_mutex_unlock(&pool_lock);
  /* (without a list node the block leaks rather than calling the driver from a finalizer) */
}

void esk_cu_htod(const char *loc, esk_devptr dst, const void *src, size_t bytes) {
  esk_cu_ready(loc);
  if (bytes) cu_check(loc, p_cuMemcpyHtoD_v2(dst, src, bytes), "cuMemcpyHtoD");
}

void esk_cu_dtoh(const char *loc, void *dst, esk_devptr src, size_t bytes) {
  esk_cu_ready(loc);
  if (bytes) cu_check(loc, p_cuMemcpyDtoH_v2(dst, src, bytes), "cuMemcpyDtoH");
}

void esk_cu_dtod(const char *loc, esk_devptr dst, esk_devptr src, size_t bytes) {
  esk_cu_ready(loc);
  if (bytes) cu_check(loc, p_cuMemcpyDtoD_v2(dst, src, bytes), "cuMemcpyDtoD");
}

void esk_cu_sync(const char *loc) {
  esk_cu_ready(loc);
  cu_check(loc, p_cuCtxSynchronize(), "cuCtxSynchronize");
}

/* ---- kernels ----------------------------------------------------------------------------- */

typedef struct kparam {
  int32_t slot;   /* host argument slot, or -1 for a constant */
  int32_t size;   /* bytes */
  int64_t value;  /* the constant */
} kparam;

typedef struct kernel {
  char *name, *entry;
  int block;
  const char *ptx;
  size_t ptx_len;
  int nparams;
  kparam *params;
  CUmodule module;
  CUfunction fn;
} kernel;

#define KTAB_SIZE 1024 /* open addressing; a program has a few hundred kernels at most */
static kernel *ktab[KTAB_SIZE];
static int kcount;

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull;
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
  return h;
}

static kernel *kfind(const char *name) {
  for (uint64_t i = hash_name(name);; i++) {
    kernel *k = ktab[i % KTAB_SIZE];
    if (!k || strcmp(k->name, name) == 0) return k;
  }
}

static char *dup_token(const char **p) {
  while (**p == ' ') (*p)++;
  const char *s = *p;
  while (**p && **p != ' ' && **p != '\n') (*p)++;
  size_t n = (size_t)(*p - s);
  char *out = malloc(n + 1);
  if (!out) abort();
  memcpy(out, s, n);
  out[n] = 0;
  return out;
}

static long long num_token(const char **p) {
  char *t = dup_token(p);
  long long v = strtoll(t, NULL, 10);
  free(t);
  return v;
}

/* The CPU entries of the program's fused chains: chain i's GPU kernels are fused<i>_<dt>. */
static const void *const *fused_entries;
static int64_t nfused;

int64_t esk_cu_fused_index(const void *f64_entry) {
  for (int64_t i = 0; i < nfused; i++)
    if (fused_entries[i] == f64_entry) return i;
  return -1;
}

/* Manifest lines "name entry block offset length nparams p:size ..." (eshkol/lower/cuda.py);
 * a parameter is aN (host argument slot N) or cV (the constant V).  Registration touches no
 * driver: a program without GPU work runs on machines without CUDA. */
void esk_cuda_register(const char *manifest, const char *ptx, int64_t nfused_entries,
                       const void *const *fused) {
  pthread_mutex_lock(&cu_lock);
  fused_entries = fused;
  nfused = nfused_entries;
  const char *p = manifest;
  while (*p) {
    if (*p == '\n') { p++; continue; }
    kernel *k = calloc(1, sizeof *k);
    if (!k) abort();
    k->name = dup_token(&p);
    k->entry = dup_token(&p);
    k->block = (int)num_token(&p);
    k->ptx = ptx + num_token(&p);
    k->ptx_len = (size_t)num_token(&p);
    k->nparams = (int)num_token(&p);
    k->params = calloc((size_t)k->nparams + 1, sizeof(kparam));
    for (int i = 0; i < k->nparams; i++) {
      char *t = dup_token(&p);
      char *colon = strchr(t, ':');
      k->params[i].size = colon ? atoi(colon + 1) : 8;
      if (t[0] == 'a') {
        k->params[i].slot = atoi(t + 1);
      } else {
        k->params[i].slot = -1;
        k->params[i].value = strtoll(t + 1, NULL, 10);
      }
      free(t);
    }
    while (*p && *p != '\n') p++;
    if (kcount < KTAB_SIZE / 2 && !kfind(k->name)) {
      uint64_t i = hash_name(k->name);
      while (ktab[i % KTAB_SIZE]) i++;
      ktab[i % KTAB_SIZE] = k;
      kcount++;
    }
  }
  pthread_mutex_unlock(&cu_lock);
}

int esk_cu_has_kernel(const char *name) {
  pthread_mutex_lock(&cu_lock);
  int found = kfind(name) != NULL;
  pthread_mutex_unlock(&cu_lock);
  return found;
}

enum { CU_JIT_ERROR_LOG_BUFFER = 5, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6 };

static CUfunction kernel_function(const char *loc, kernel *k) {
  if (k->fn) return k->fn;
  char *text = malloc(k->ptx_len + 1);
  if (!text) esk_errorf(loc, "out of memory");
  memcpy(text, k->ptx, k->ptx_len);
  text[k->ptx_len] = 0;
  char log[4096] = "";
  int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[2] = {log, (void *)(uintptr_t)sizeof log};
  CUresult r = p_cuModuleLoadDataEx(&k->module, text, 2, opts, vals);
  free(text);
  if (r != 0)
    esk_errorf(loc, "cuda: loading kernel %s failed: %s%s%s", k->name, cu_err(r),
               log[0] ? ": " : "", log);
  cu_check(loc, p_cuModuleGetFunction(&k->fn, k->module, k->entry), "cuModuleGetFunction");
  return k->fn;
}

void esk_kargs_u64(esk_kargs *a, uint64_t v) {
  if (a->n >= ESK_KARGS_MAX) esk_errorf(NULL, "internal error: too many kernel arguments");
  a->slot[a->n++] = v;
}

void esk_kargs_scalar(esk_kargs *a, int dtype, double x) {
  uint64_t s = 0;
  if (dtype == ESK_DT_F32) {
    float f = (float)x;
    memcpy(&s, &f, sizeof f);
  } else {
    memcpy(&s, &x, sizeof x);
  }
  esk_kargs_u64(a, s);
}

void esk_kargs_memref(esk_kargs *a, esk_devptr base, int64_t offset, int rank,
                      const int64_t *sizes, const int64_t *strides) {
  esk_kargs_u64(a, base);
  esk_kargs_u64(a, base);
  esk_kargs_u64(a, (uint64_t)offset);
  for (int i = 0; i < rank; i++) esk_kargs_u64(a, (uint64_t)sizes[i]);
  for (int i = 0; i < rank; i++) esk_kargs_u64(a, (uint64_t)strides[i]);
}

void esk_cu_launch(const char *loc, const char *name, int64_t work, esk_kargs *a) {
  esk_cu_ready(loc);
  pthread_mutex_lock(&cu_lock);
  kernel *k = kfind(name);
  pthread_mutex_unlock(&cu_lock);
  if (!k)
    esk_errorf(loc, "cuda: no kernel %s in this program (GPU kernels are compiled in by "
                    "--target=cuda: eshkol run/build --target=cuda)", name);
  if (work <= 0) return;
  CUfunction fn = kernel_function(loc, k);
  void *params[ESK_KARGS_MAX];
  int64_t consts[ESK_KARGS_MAX];
  if (k->nparams > ESK_KARGS_MAX) esk_errorf(loc, "internal error: kernel %s has too many parameters", name);
  for (int i = 0; i < k->nparams; i++) {
    kparam *q = &k->params[i];
    if (q->slot >= 0) {
      if (q->slot >= a->n)
        esk_errorf(loc, "internal error: kernel %s wants argument %d of %d", name, q->slot, a->n);
      params[i] = &a->slot[q->slot];
    } else {
      consts[i] = q->value;
      params[i] = &consts[i];
    }
  }
  int64_t blocks = (work + k->block - 1) / k->block;
  if (blocks > 0x7fffffff) esk_errorf(loc, "cuda: %lld elements are too many for one launch", (long long)work);
  cu_check(loc, p_cuLaunchKernel(fn, (unsigned)blocks, 1, 1, (unsigned)k->block, 1, 1, 0, NULL,
                                 params, NULL), name);
  static int sync_each = -1; /* ESHKOL_CUDA_SYNC=1: report a failing kernel where it runs */
  if (sync_each < 0) sync_each = getenv("ESHKOL_CUDA_SYNC") && *getenv("ESHKOL_CUDA_SYNC") == '1';
  if (sync_each) cu_check(loc, p_cuCtxSynchronize(), name);
}

/* ---- cuBLAS ------------------------------------------------------------------------------ */

typedef int (*cublas_create_fn)(void **handle);
typedef int (*cublas_dgemm_fn)(void *h, int ta, int tb, int m, int n, int k, const double *alpha,
                               const double *A, int lda, const double *B, int ldb,
                               const double *beta, double *C, int ldc);
typedef int (*cublas_sgemm_fn)(void *h, int ta, int tb, int m, int n, int k, const float *alpha,
                               const float *A, int lda, const float *B, int ldb,
                               const float *beta, float *C, int ldc);
static void *blas_handle;
static cublas_dgemm_fn p_dgemm;
static cublas_sgemm_fn p_sgemm;
static char blas_error[256];

/* Load cuBLAS and make a handle; called under cu_lock, so it never raises (the caller does,
 * after unlocking, with the message left in blas_error). */
static int blas_open(void) {
  if (blas_handle) return 1;
  if (blas_error[0]) return 0;
  static const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
                                "libcublas.so"};
  static const char *dirs[] = {"", "/usr/local/cuda/lib64/",
                               "/usr/local/cuda/targets/x86_64-linux/lib/"};
  void *lib = NULL;
  const char *env = getenv("ESHKOL_CUBLAS");
  if (env && *env) lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
  for (size_t d = 0; !lib && !(env && *env) && d < sizeof dirs / sizeof *dirs; d++)
    for (size_t i = 0; !lib && i < sizeof names / sizeof *names; i++) {
      char path[512];
      snprintf(path, sizeof path, "%s%s", dirs[d], names[i]);
      lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
  if (!lib) {
    snprintf(blas_error, sizeof blas_error, "cuda: cuBLAS not found (%s; set ESHKOL_CUBLAS to its path)",
             env && *env ? env : "libcublas.so.13 or .12");
    return 0;
  }
  cublas_create_fn create = (cublas_create_fn)dlsym(lib, "cublasCreate_v2");
  p_dgemm = (cublas_dgemm_fn)dlsym(lib, "cublasDgemm_v2");
  p_sgemm = (cublas_sgemm_fn)dlsym(lib, "cublasSgemm_v2");
  if (!create || !p_dgemm || !p_sgemm) {
    snprintf(blas_error, sizeof blas_error, "cuda: cuBLAS lacks cublasCreate_v2/Dgemm/Sgemm");
    return 0;
  }
  void *h = NULL;
  int st = create(&h);
  if (st != 0) {
    snprintf(blas_error, sizeof blas_error, "cuda: cublasCreate failed (status %d)", st);
    return 0;
  }
  blas_handle = h;
  return 1;
}

void esk_cu_gemm(const char *loc, int dtype, int64_t m, int64_t n, int64_t k, esk_devptr A,
                 esk_devptr B, esk_devptr C) {
  esk_cu_ready(loc);
  pthread_mutex_lock(&cu_lock);
  int ok = blas_open();
  pthread_mutex_unlock(&cu_lock);
  if (!ok) esk_errorf(loc, "%s", blas_error);
  if (m > 0x7fffffff || n > 0x7fffffff || k > 0x7fffffff)
    esk_errorf(loc, "cuda: matrix dimensions past 2^31 are not supported by cuBLAS");
  /* Row-major C = A B is column-major C^T = B^T A^T: swap the operands. */
  int st;
  if (dtype == ESK_DT_F32) {
    float one = 1, zero = 0;
    st = p_sgemm(blas_handle, 0, 0, (int)n, (int)m, (int)k, &one, (const float *)(uintptr_t)B,
                 (int)n, (const float *)(uintptr_t)A, (int)k, &zero, (float *)(uintptr_t)C, (int)n);
  } else {
    double one = 1, zero = 0;
    st = p_dgemm(blas_handle, 0, 0, (int)n, (int)m, (int)k, &one, (const double *)(uintptr_t)B,
                 (int)n, (const double *)(uintptr_t)A, (int)k, &zero, (double *)(uintptr_t)C, (int)n);
  }
  if (st != 0) esk_errorf(loc, "cuda: cuBLAS gemm failed (status %d)", st);
}
