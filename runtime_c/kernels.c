/* Generated tensor kernels: the guard and dispatch of fused chains, and the threads that
 * split a kernel's elements across cores.
 *
 * The kernels themselves are made by the compiler's MLIR pipeline (eshkol/lower/cpu.py); each
 * has the entry  void K(int64_t lo, int64_t hi, void *const *ptrs, const double *scalars,
 * void *acc)  working on elements [lo, hi) of flattened contiguous operands.
 *
 * Threads: a kernel over many elements is split into chunks run by a small pool of worker
 * threads plus the caller (the pool starts on first use; ESHKOL_NUM_THREADS sets its size,
 * default the number of online CPUs).  Workers only touch tensor data, never the collected
 * heap, so they need not be registered with the collector: the caller keeps every operand
 * alive on its stack until all chunks are done. */
#include "eshkol_rt.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the pool ----------------------------------------------------------------------------- */

#define MAX_THREADS 64
#define MAX_CHUNKS 256

typedef struct pool_job {
  esk_kernel_fn fn;
  int64_t n, nchunks;
  void *const *ptrs;
  const double *scalars;
  char *acc;            /* partial results, one slot of acc_stride bytes per chunk */
  int64_t acc_stride;
  int64_t align;        /* chunk edges on multiples of this many elements */
  atomic_long next;     /* next chunk to take */
  atomic_long done;     /* chunks finished */
  int users;            /* workers inside run_chunks (under pool_mu): the job lives on the
                           caller's stack, so the caller waits for them to leave */
} pool_job;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_run_mu = PTHREAD_MUTEX_INITIALIZER;  /* held while a job runs */
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done_cv = PTHREAD_COND_INITIALIZER;
static pool_job *pool_current;
static long pool_generation;
static int pool_threads = 0;   /* total, caller included; 0 = not started */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void chunk_bounds(const pool_job *j, int64_t c, int64_t *lo, int64_t *hi) {
  int64_t per = (j->n + j->nchunks - 1) / j->nchunks;
  per = (per + j->align - 1) / j->align * j->align;
  *lo = c * per < j->n ? c * per : j->n;
  *hi = (c + 1) * per < j->n ? (c + 1) * per : j->n;
}

static void run_chunks(pool_job *j) {
  for (;;) {
    long c = atomic_fetch_add(&j->next, 1);
    if (c >= j->nchunks) return;
    int64_t lo, hi;
    chunk_bounds(j, c, &lo, &hi);  /* an empty chunk still runs: a reduction writes its identity */
    j->fn(lo, hi, j->ptrs, j->scalars, j->acc ? j->acc + c * j->acc_stride : NULL);
    atomic_fetch_add(&j->done, 1);
  }
}

static void *pool_worker(void *arg) {
  (void)arg;
  long seen = 0;
  for (;;) {
    pthread_mutex_lock(&pool_mu);
    while (pool_generation == seen) pthread_cond_wait(&pool_cv, &pool_mu);
    seen = pool_generation;
    pool_job *j = pool_current;
    if (j) j->users++;
    pthread_mutex_unlock(&pool_mu);
    if (j) {
      run_chunks(j);
      pthread_mutex_lock(&pool_mu);
      j->users--;  /* the last touch of j: the caller may return as soon as it sees 0 */
      pthread_cond_broadcast(&pool_done_cv);
      pthread_mutex_unlock(&pool_mu);
    }
  }
  return NULL;
}

static void pool_start(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  const char *env = getenv("ESHKOL_NUM_THREADS");
  if (env && atoi(env) > 0) n = atoi(env);
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pool_threads = (int)n;
  for (int i = 1; i < pool_threads; i++) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 1 << 20);
    if (pthread_create(&t, &a, pool_worker, NULL) != 0) pool_threads = i;
    pthread_attr_destroy(&a);
    if (pool_threads == i) break;
  }
}

int esk_kernel_threads(void) {
  pthread_once(&pool_once, pool_start);
  return pool_threads;
}

/* Work below this many bytes touched runs on the calling thread alone (waking a worker costs
 * a few microseconds). */
#define PARALLEL_MIN_BYTES (1 << 20)

static void run_parallel(esk_kernel_fn fn, int64_t n, int64_t align, int64_t nchunks,
                         void *const *ptrs, const double *scalars, void *acc, int64_t acc_bytes) {
  pool_job j;
  memset(&j, 0, sizeof j);
  j.fn = fn;
  j.n = n;
  j.nchunks = nchunks;
  j.ptrs = ptrs;
  j.scalars = scalars;
  j.acc = acc;
  j.acc_stride = acc_bytes;
  j.align = align;
  atomic_init(&j.next, 0);
  atomic_init(&j.done, 0);
  /* One job at a time: a second caller (another thread of the program) runs its chunks alone. */
  if (pthread_mutex_trylock(&pool_run_mu) != 0) {
    run_chunks(&j);
    return;
  }
  pthread_mutex_lock(&pool_mu);
  pool_current = &j;
  pool_generation++;
  pthread_cond_broadcast(&pool_cv);
  pthread_mutex_unlock(&pool_mu);
  run_chunks(&j);
  pthread_mutex_lock(&pool_mu);
  while (atomic_load(&j.done) < j.nchunks || j.users > 0) pthread_cond_wait(&pool_done_cv, &pool_mu);
  pool_current = NULL;
  pthread_mutex_unlock(&pool_mu);
  pthread_mutex_unlock(&pool_run_mu);
}

void esk_kernel_run(esk_kernel_fn fn, int64_t n, int64_t elem_bytes, int64_t narrays,
                    void *const *ptrs, const double *scalars, void *acc, int64_t acc_bytes,
                    int64_t *nparts) {
  int threads = esk_kernel_threads();
  if (threads <= 1 || n * elem_bytes * (narrays > 0 ? narrays : 1) < PARALLEL_MIN_BYTES) {
    fn(0, n, ptrs, scalars, acc);
    if (nparts) *nparts = 1;
    return;
  }
  /* Reductions: one part per thread (partials combined by the caller); elementwise: a few
   * parts per thread, so a thread slowed by other work does not hold the others up.  Edges
   * on multiples of 16 elements keep full vector tiles aligned alike. */
  int64_t parts = acc ? (threads < MAX_CHUNKS ? threads : MAX_CHUNKS) : 4 * threads;
  run_parallel(fn, n, 16, parts, ptrs, scalars, acc, acc_bytes);
  if (nparts) *nparts = parts;
}

/* ---- fused chains -------------------------------------------------------------------------- */

static int number_value(esk_value v, double *out) {
  if (v.tag == ESK_T_FLONUM) { *out = esk_flonum_value(v); return 1; }
  if (v.tag == ESK_T_FIXNUM) { *out = (double)v.payload; return 1; }
  return 0;
}

#define MAX_OPERANDS 64

esk_value esk_tensor_fused(const char *loc, int64_t argc, esk_value *argv, const char *kinds,
                           int64_t root, esk_kernel_fn f64, esk_kernel_fn f32) {
  (void)loc;
  const esk_value decline = {ESK_T_DEFAULT, 0};
  if (argc > MAX_OPERANDS) return decline;
  for (int64_t i = 0; i < argc; i++) /* GPU operands: the chain's GPU kernel (cuda_tensor.c) */
    if (esk_is_cuda_tensor(argv[i])) return esk_cuda_fused(loc, argc, argv, kinds, root, (const void *)f64);
  const esk_tensor *shape = NULL;
  void *ptrs[MAX_OPERANDS + 1];
  double scalars[MAX_OPERANDS];
  int np = root == 0 ? 1 : 0, ns = 0;
  for (int64_t i = 0; i < argc; i++) {
    if (kinds[i] == 's') {
      if (!number_value(argv[i], &scalars[ns++])) return decline;
      continue;
    }
    if (argv[i].tag != ESK_T_TENSOR) return decline;
    const esk_tensor *t = esk_ptr(argv[i]);
    if (t->device != ESK_DEV_HOST || (t->dtype != ESK_DT_F64 && t->dtype != ESK_DT_F32) ||
        !esk_tensor_is_contiguous(t))
      return decline;
    if (shape == NULL) {
      shape = t;
    } else {
      if (t->dtype != shape->dtype || t->rank != shape->rank) return decline;
      for (int64_t d = 0; d < t->rank; d++)
        if (t->dims[d] != shape->dims[d]) return decline;
    }
    ptrs[np++] = esk_tensor_data(t);
  }
  /* Empty tensors take the unfused path (a reduction of nothing has its own rules). */
  if (shape == NULL || shape->size == 0) return decline;
  int f32_kernel = shape->dtype == ESK_DT_F32;
  esk_kernel_fn fn = f32_kernel ? f32 : f64;
  if (fn == NULL) return decline;  /* e.g. f32 reductions: the runtime reduces those in double */
  int64_t eb = f32_kernel ? 4 : 8;
  if (root == 0) {
    esk_tensor *out = esk_tensor_new(shape->dtype, shape->rank, shape->dims);
    ptrs[0] = esk_tensor_data(out);
    esk_kernel_run(fn, shape->size, eb, np, ptrs, scalars, NULL, 0, NULL);
    return esk_tensor_value(out);
  }
  /* Reductions: one partial per chunk, combined in chunk order (deterministic). */
  union { double d; float f; char pad[64]; } parts[MAX_CHUNKS];
  int64_t nparts = 1;
  esk_kernel_run(fn, shape->size, eb, np, ptrs, scalars, parts, sizeof parts[0], &nparts);
  double r = f32_kernel ? parts[0].f : parts[0].d;
  for (int64_t c = 1; c < nparts; c++) {
    double x = f32_kernel ? parts[c].f : parts[c].d;
    if (root == 1) r += x;
    else if (x != x || r != r) r = NAN;   /* max/min propagate NaN, as tensor-max does */
    else if (root == 2) r = x > r ? x : r;
    else r = x < r ? x : r;
  }
  return esk_flonum(r);
}

/* ---- the kernel library (eshkol/lower/kernel_library.py) -----------------------------------
 * Registered by the library's constructor when it is loaded; until then (or for what it does
 * not cover) the hooks below return 0 and the caller runs its own C loops. */

enum { KL_FORMS = 3, KL_DTYPES = 2, KL_REDUCE = 3 };
static esk_kernel_fn kl_elementwise[ESK_OP_COUNT][KL_FORMS][KL_DTYPES];
static esk_kernel_fn kl_reduce[KL_REDUCE][KL_DTYPES];

static const struct { const char *name; int op; } kl_ops[] = {
  {"add", ESK_OP_ADD}, {"sub", ESK_OP_SUB}, {"mul", ESK_OP_MUL}, {"div", ESK_OP_DIV},
  {"neg", ESK_OP_NEG}, {"exp", ESK_OP_EXP}, {"log", ESK_OP_LOG}, {"sqrt", ESK_OP_SQRT},
  {"abs", ESK_OP_ABS}, {"square", ESK_OP_SQUARE},
};
static const char *const kl_reductions[KL_REDUCE] = {"sum", "max", "min"};

void esk_register_kernel(const char *name, int form, int dtype, esk_kernel_fn fn) {
  if (form < 0 || form >= KL_FORMS || dtype < 0 || dtype >= KL_DTYPES) return;
  for (size_t i = 0; i < sizeof kl_ops / sizeof kl_ops[0]; i++)
    if (strcmp(kl_ops[i].name, name) == 0) { kl_elementwise[kl_ops[i].op][form][dtype] = fn; return; }
  for (int i = 0; i < KL_REDUCE; i++)
    if (strcmp(kl_reductions[i], name) == 0 && form == 0) { kl_reduce[i][dtype] = fn; return; }
}

/* Below this many elements the caller's own loop is as fast. */
#define KL_MIN_ELEMENTS 64

int esk_kernel_elementwise(int op, int dtype, int64_t n, void *out, const void *a, int64_t sa,
                           const void *b, int64_t sb) {
  if (op < 0 || op >= ESK_OP_COUNT || (dtype != ESK_DT_F64 && dtype != ESK_DT_F32) ||
      n < KL_MIN_ELEMENTS)
    return 0;
  int form;
  void *ptrs[3] = {out, (void *)a, (void *)b};
  double sc[1];
  int64_t narrays = 2;
  if (b == NULL) {               /* unary */
    if (sa != 1) return 0;
    form = 0;
  } else if (sa == 1 && sb == 1) {
    form = 0;
    narrays = 3;
  } else if (sa == 1 && sb == 0) {
    form = 1;
    sc[0] = dtype == ESK_DT_F64 ? *(const double *)b : *(const float *)b;
  } else if (sa == 0 && sb == 1) {
    form = 2;
    sc[0] = dtype == ESK_DT_F64 ? *(const double *)a : *(const float *)a;
    ptrs[1] = (void *)b;
  } else {
    return 0;
  }
  esk_kernel_fn fn = kl_elementwise[op][form][dtype];
  if (fn == NULL) return 0;
  esk_kernel_run(fn, n, dtype == ESK_DT_F64 ? 8 : 4, narrays, ptrs, sc, NULL, 0, NULL);
  return 1;
}

int esk_kernel_reduce(int kind, int dtype, int64_t n, const void *a, double *out) {
  if (kind < 0 || kind >= KL_REDUCE || dtype != ESK_DT_F64 || n < KL_MIN_ELEMENTS) return 0;
  esk_kernel_fn fn = kl_reduce[kind][dtype];
  if (fn == NULL) return 0;
  void *ptrs[1] = {(void *)a};
  union { double d; char pad[64]; } parts[MAX_CHUNKS];
  int64_t nparts = 1;
  esk_kernel_run(fn, n, 8, 1, ptrs, NULL, parts, sizeof parts[0], &nparts);
  double r = parts[0].d;
  for (int64_t c = 1; c < nparts; c++) {
    double x = parts[c].d;
    if (kind == 0) r += x;
    else if (x != x || r != r) r = NAN;
    else if (kind == 1) r = x > r ? x : r;
    else r = x < r ? x : r;
  }
  *out = r;
  return 1;
}

/* ---- matrix multiply with the MLIR block kernel (eshkol/lower/matmul.py) --------------------
 * C[M x N] = A[M x K] * B[K x N], row-major with leading dimensions, when M, N and K are
 * multiples of the block (64, 256, 256).  Each B block is copied to a buffer whose row stride
 * is 8 elements past a multiple of 4 KiB (B's own rows, a power of two apart, would all land
 * in the same L1 sets); the block rows of C are split across the kernel threads. */

typedef void (*esk_mm_blk_fn)(const void *A, int64_t lda, const void *B, int64_t ldb, void *C,
                              int64_t ldc);
static esk_mm_blk_fn kl_matmul[KL_DTYPES];
enum { MM_MB = 64, MM_NB = 256, MM_KB = 256, MM_PAD = 8 };

void esk_register_matmul(int dtype, void *fn) {
  if (dtype >= 0 && dtype < KL_DTYPES) kl_matmul[dtype] = (esk_mm_blk_fn)fn;
}

typedef struct {
  esk_mm_blk_fn fn;
  const char *A;
  int64_t lda;
  const void *B;
  int64_t ldb;
  char *C;
  int64_t ldc, es, k0, j0;
} mm_job;

/* The kernel-thread entry: block rows [lo, hi) of C (block row b is rows 64b .. 64b+63). */
static void mm_rows(int64_t lo, int64_t hi, void *const *ptrs, const double *sc, void *acc) {
  (void)sc; (void)acc;
  const mm_job *j = ptrs[0];
  for (int64_t ib = lo; ib < hi; ib++) {
    int64_t i = ib * MM_MB;
    j->fn(j->A + (i * j->lda + j->k0) * j->es, j->lda, j->B, j->ldb,
          j->C + (i * j->ldc + j->j0) * j->es, j->ldc);
  }
}

static int mm_policy = -1;  /* ESHKOL_MATMUL: 1 "mlir" uses this kernel where it applies */

int esk_kernel_matmul(int dtype, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                      const void *B, int64_t ldb, void *C, int64_t ldc) {
  if (mm_policy < 0) {
    const char *e = getenv("ESHKOL_MATMUL");
    mm_policy = e && strcmp(e, "mlir") == 0;
  }
  if (!mm_policy || (dtype != ESK_DT_F64 && dtype != ESK_DT_F32) || !kl_matmul[dtype] ||
      M <= 0 || N <= 0 || K <= 0 || M % MM_MB || N % MM_NB || K % MM_KB)
    return 0;
  int64_t es = dtype == ESK_DT_F64 ? 8 : 4, ldbuf = MM_NB + MM_PAD;
  char *buf = malloc((size_t)(MM_KB * ldbuf) * es);
  if (!buf) return 0;
  for (int64_t i = 0; i < M; i++) memset((char *)C + i * ldc * es, 0, (size_t)(N * es));
  mm_job j = {kl_matmul[dtype], A, lda, buf, ldbuf, C, ldc, es, 0, 0};
  void *ptrs[1] = {&j};
  for (int64_t j0 = 0; j0 < N; j0 += MM_NB)
    for (int64_t k0 = 0; k0 < K; k0 += MM_KB) {
      for (int64_t k = 0; k < MM_KB; k++)
        memcpy(buf + k * ldbuf * es, (const char *)B + ((k0 + k) * ldb + j0) * es, (size_t)(MM_NB * es));
      j.k0 = k0;
      j.j0 = j0;
      /* Parts are block rows (64*256*256*2 flops each): always worth splitting. */
      int64_t rows = M / MM_MB, threads = esk_kernel_threads();
      if (threads <= 1 || rows < 2) mm_rows(0, rows, ptrs, NULL, NULL);
      else run_parallel(mm_rows, rows, 1, rows < threads ? rows : threads, ptrs, NULL, NULL, 0);
    }
  free(buf);
  return 1;
}
