/* Tensors: the runtime object, the buffer pool, conversions, printing and equality.
 *
 * A tensor is a header (esk_tensor: dtype, rank, dims, strides in elements, offset) over a
 * buffer (esk_tensor_buf).  Views (reshape of contiguous data, sub-tensors, rows, transposes)
 * are new headers over the same buffer.  Buffer memory lives outside the collected heap, in a
 * pool of power-of-two size classes (64 B .. 2^47 B) with one free list per class; the buffer
 * object is collected, and its finalizer returns the memory to the pool.  Because the collector
 * cannot see that memory, the pool triggers collections itself when the bytes handed out since
 * the last collection grow past a threshold (see pool_maybe_collect), so a loop that makes and
 * drops large tensors runs in bounded memory. */
#define GC_THREADS
#include <gc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "tensor_internal.h"

/* ---- the buffer pool ------------------------------------------------------------------- */

enum { POOL_MIN_CLASS = 6, POOL_CLASSES = 48 };
/* Classes from 64 KiB up come from mmap, so releasing them returns memory to the system;
 * smaller ones from the C allocator, 64-byte aligned. */
#define POOL_MMAP_MIN ((size_t)1 << 16)
/* Free blocks kept for reuse: at most this much, or as much as is in use if that is more
 * (reused blocks skip the page faults of fresh memory; measured: 20 adds of 10^7 doubles
 * spent 0.97 s in the kernel zeroing fresh pages when each result was a fresh mapping). */
#define POOL_CACHE_MAX ((size_t)256 << 20)
/* Bytes handed out between pool-triggered collections, at least. */
#define POOL_COLLECT_MIN ((size_t)64 << 20)

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void *pool_free[POOL_CLASSES]; /* singly linked through each block's first word */
static size_t pool_cached;            /* bytes on the free lists */
static size_t pool_outstanding;       /* bytes of buffers not yet returned */
static size_t pool_next_collect = POOL_COLLECT_MIN;

static int size_class(size_t bytes) {
  int c = POOL_MIN_CLASS;
  while (((size_t)1 << c) < bytes) c++;
  return c;
}

static void *os_alloc(int cls) {
  size_t sz = (size_t)1 << cls;
  if (sz >= POOL_MMAP_MIN) {
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (sz >= ((size_t)4 << 20)) madvise(p, sz, MADV_HUGEPAGE);
#endif
    return p;
  }
  void *p = NULL;
  return posix_memalign(&p, 64, sz) == 0 ? p : NULL;
}

static void os_free(void *p, int cls) {
  size_t sz = (size_t)1 << cls;
  if (sz >= POOL_MMAP_MIN) munmap(p, sz);
  else free(p);
}

/* Called by the buffer finalizer (on whichever thread runs finalizers): never allocates. */
static void pool_release(void *p, int cls) {
  size_t sz = (size_t)1 << cls;
  int keep;
  pthread_mutex_lock(&pool_lock);
  pool_outstanding -= sz;
  keep = pool_cached + sz <= (pool_outstanding > POOL_CACHE_MAX ? pool_outstanding : POOL_CACHE_MAX) ||
         pool_cached == 0; /* and one block of any size */
  if (keep) {
    *(void **)p = pool_free[cls];
    pool_free[cls] = p;
    pool_cached += sz;
  }
  pthread_mutex_unlock(&pool_lock);
  if (!keep) os_free(p, cls);
}

/* Collect when the buffers handed out since the last collection exceed the threshold.  The
 * room before the next one is half of what is still live (tensor garbage is large, a
 * collection is cheap next to filling it: measured 1-3 ms for a small heap), at least 64 MiB,
 * and at least half the collected heap, so a program with a large heap of lists does not pay
 * a full collection for every few small tensors. */
static void pool_maybe_collect(size_t want) {
  if (pool_outstanding + want <= pool_next_collect) return;
  GC_gcollect();
  GC_invoke_finalizers();
  size_t live = pool_outstanding, heap = GC_get_heap_size() / 2;
  size_t room = live / 2 > POOL_COLLECT_MIN ? live / 2 : POOL_COLLECT_MIN;
  if (heap > room) room = heap;
  pool_next_collect = live + room;
}

static void *pool_acquire(int cls) {
  size_t sz = (size_t)1 << cls;
  pool_maybe_collect(sz);
  void *p;
  pthread_mutex_lock(&pool_lock);
  p = pool_free[cls];
  if (p) {
    pool_free[cls] = *(void **)p;
    pool_cached -= sz;
  }
  pool_outstanding += sz;
  pthread_mutex_unlock(&pool_lock);
  if (!p) p = os_alloc(cls);
  if (!p) { /* drop every cached block and whatever garbage holds, then try once more */
    GC_gcollect();
    GC_invoke_finalizers();
    pthread_mutex_lock(&pool_lock);
    for (int c = 0; c < POOL_CLASSES; c++)
      while (pool_free[c]) {
        void *q = pool_free[c];
        pool_free[c] = *(void **)q;
        pool_cached -= (size_t)1 << c;
        os_free(q, c);
      }
    pthread_mutex_unlock(&pool_lock);
    p = os_alloc(cls);
  }
  if (!p) {
    pthread_mutex_lock(&pool_lock);
    pool_outstanding -= sz;
    pthread_mutex_unlock(&pool_lock);
    esk_errorf(NULL, "out of memory: cannot allocate a tensor buffer of %zu bytes", sz);
  }
  return p;
}

static void buf_finalize(void *obj, void *data) {
  (void)data;
  esk_tensor_buf *b = obj;
  if (b->device == ESK_DEV_HOST && b->size_class >= 0) pool_release(b->base, b->size_class);
}

/* Buffers up to this size live inside their (collected, never scanned) buffer object, 64-byte
 * aligned, with no pool block and no finalizer: registering and running a finalizer cost more
 * than a small tensor operation itself (measured: 10^6 adds of 2-element tensors 0.35 s with
 * pooled buffers). */
#define INLINE_MAX 256

static esk_tensor_buf *buf_new(size_t bytes) {
  if (bytes <= INLINE_MAX) {
    esk_tensor_buf *b = GC_MALLOC_ATOMIC(sizeof *b + 63 + (bytes ? bytes : 1));
    if (!b) esk_errorf(NULL, "out of memory");
    b->base = (void *)(((uintptr_t)(b + 1) + 63) & ~(uintptr_t)63);
    b->bytes = bytes;
    b->device = ESK_DEV_HOST;
    b->device_index = 0;
    b->size_class = -1;
    b->pad = 0;
    return b;
  }
  int cls = size_class(bytes ? bytes : 1);
  if (cls >= POOL_CLASSES) esk_errorf(NULL, "tensor too large (%zu bytes)", bytes);
  void *base = pool_acquire(cls);
  esk_tensor_buf *b = GC_MALLOC_ATOMIC(sizeof *b);
  if (!b) {
    pool_release(base, cls);
    esk_errorf(NULL, "out of memory");
  }
  b->base = base;
  b->bytes = bytes;
  b->device = ESK_DEV_HOST;
  b->device_index = 0;
  b->size_class = cls;
  b->pad = 0;
  GC_REGISTER_FINALIZER_NO_ORDER(b, buf_finalize, NULL, NULL, NULL);
  return b;
}

/* ---- headers ----------------------------------------------------------------------------- */

int64_t esk_t_row_major(int64_t rank, const int64_t *dims, int64_t *strides) {
  int64_t n = 1;
  for (int64_t i = rank - 1; i >= 0; i--) {
    if (strides) strides[i] = n;
    if (dims[i] && n > ((int64_t)1 << 48) / dims[i])
      esk_errorf(NULL, "tensor too large: more than 2^48 elements");
    n *= dims[i];
  }
  return n;
}

static esk_tensor *header_new(int dtype, int64_t rank) {
  esk_tensor *t = GC_MALLOC(sizeof *t);
  if (!t) esk_errorf(NULL, "out of memory");
  t->h.type = ESK_T_TENSOR;
  t->h.flags = 0;
  t->dtype = dtype;
  t->device = ESK_DEV_HOST;
  t->rank = rank;
  return t;
}

esk_tensor *esk_t_new(int dtype, int64_t rank, const int64_t *dims) {
  if (rank < 0 || rank > ESK_TENSOR_MAX_RANK)
    esk_errorf(NULL, "tensor rank %lld is not supported (at most %d)", (long long)rank,
               ESK_TENSOR_MAX_RANK);
  esk_tensor *t = header_new(dtype, rank);
  memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
  t->size = esk_t_row_major(rank, dims, t->strides);
  t->offset = 0;
  t->buf = buf_new((size_t)t->size * esk_dtype_size(dtype));
  return t;
}

esk_tensor *esk_tensor_new(int dtype, int64_t rank, const int64_t *dims) {
  return esk_t_new(dtype, rank, dims);
}

esk_tensor *esk_tensor_zeros(int dtype, int64_t rank, const int64_t *dims) {
  esk_tensor *t = esk_t_new(dtype, rank, dims);
  memset(t_base(t), 0, (size_t)t->size * esk_dtype_size(dtype));
  return t;
}

esk_tensor *esk_t_view(const esk_tensor *t) {
  esk_tensor *v = header_new(t->dtype, t->rank);
  v->device = t->device;
  v->size = t->size;
  v->offset = t->offset;
  memcpy(v->dims, t->dims, sizeof v->dims);
  memcpy(v->strides, t->strides, sizeof v->strides);
  v->buf = t->buf;
  return v;
}

esk_value esk_tensor_value(esk_tensor *t) {
  return (esk_value){ESK_T_TENSOR, (int64_t)(intptr_t)t};
}

esk_tensor *esk_to_tensor(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_TENSOR) esk_error_type(loc, who, "tensor", v);
  return TENSOR(v);
}

int esk_tensor_is_contiguous(const esk_tensor *t) {
  int64_t n = 1;
  for (int64_t i = t->rank - 1; i >= 0; i--) {
    if (t->dims[i] == 0) return 1;
    if (t->dims[i] != 1 && t->strides[i] != n) return 0;
    n *= t->dims[i];
  }
  return 1;
}

/* ---- element access and copies ---------------------------------------------------------- */

/* Walk every element of t in row-major order; `fn` gets the element offset. */
#define T_FOREACH(T, OFF, BODY)                                                          \
  do {                                                                                   \
    const esk_tensor *t_ = (T);                                                          \
    if (t_->size > 0) {                                                                  \
      int64_t idx_[ESK_TENSOR_MAX_RANK] = {0};                                           \
      int64_t OFF = t_->offset;                                                          \
      for (;;) {                                                                         \
        BODY;                                                                            \
        int64_t d_ = t_->rank - 1;                                                       \
        for (; d_ >= 0; d_--) {                                                          \
          OFF += t_->strides[d_];                                                        \
          if (++idx_[d_] < t_->dims[d_]) break;                                          \
          OFF -= t_->strides[d_] * t_->dims[d_];                                         \
          idx_[d_] = 0;                                                                  \
        }                                                                                \
        if (d_ < 0) break;                                                               \
      }                                                                                  \
    }                                                                                    \
  } while (0)

void esk_t_copy_into(esk_tensor *dst, const esk_tensor *src) {
  if (dst->size == 0) return;
  if (dst->dtype == src->dtype && esk_tensor_is_contiguous(dst) && esk_tensor_is_contiguous(src)) {
    size_t es = esk_dtype_size(src->dtype);
    memmove((char *)t_base(dst) + dst->offset * (int64_t)es,
            (const char *)t_base(src) + src->offset * (int64_t)es, (size_t)src->size * es);
    return;
  }
  /* Walk both in step (same shape). */
  int64_t idx[ESK_TENSOR_MAX_RANK] = {0};
  int64_t so = src->offset, doff = dst->offset;
  void *db = t_base(dst);
  const void *sb = t_base(src);
  int same_i64 = dst->dtype == ESK_DT_I64 && src->dtype == ESK_DT_I64;
  for (;;) {
    if (same_i64) ((int64_t *)db)[doff] = ((const int64_t *)sb)[so];
    else t_store(db, dst->dtype, doff, t_load(sb, src->dtype, so));
    int64_t d = dst->rank - 1;
    for (; d >= 0; d--) {
      so += src->strides[d];
      doff += dst->strides[d];
      if (++idx[d] < dst->dims[d]) break;
      so -= src->strides[d] * dst->dims[d];
      doff -= dst->strides[d] * dst->dims[d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

void esk_t_fill(esk_tensor *t, double x) {
  void *b = t_base(t);
  if (esk_tensor_is_contiguous(t) && t->dtype == ESK_DT_F64) {
    double *p = (double *)b + t->offset;
    for (int64_t i = 0; i < t->size; i++) p[i] = x;
    return;
  }
  T_FOREACH(t, off, t_store(b, t_->dtype, off, x));
}

esk_tensor *esk_tensor_contiguous(esk_tensor *t) {
  if (esk_tensor_is_contiguous(t)) return t;
  esk_tensor *c = esk_t_new(t->dtype, t->rank, t->dims);
  esk_t_copy_into(c, t);
  return c;
}

esk_tensor *esk_tensor_astype(esk_tensor *t, int dtype) {
  if (t->dtype == dtype) return t;
  esk_tensor *c = esk_t_new(dtype, t->rank, t->dims);
  esk_t_copy_into(c, t);
  return c;
}

static int64_t flat_to_offset(const esk_tensor *t, int64_t i) {
  int64_t off = t->offset;
  for (int64_t d = t->rank - 1; d >= 0; d--) {
    off += (i % t->dims[d]) * t->strides[d];
    i /= t->dims[d];
  }
  return off;
}

double esk_tensor_get_flat(const esk_tensor *t, int64_t i) {
  return t_load(t_base(t), t->dtype, flat_to_offset(t, i));
}

esk_value esk_tensor_elem_value(const esk_tensor *t, int64_t off) {
  if (t->device == ESK_DEV_CUDA) return esk_cuda_elem_value(NULL, t, off);
  if (t->dtype == ESK_DT_I64) return esk_fixnum(((const int64_t *)t_base(t))[off]);
  return esk_flonum(t_load(t_base(t), t->dtype, off));
}

/* ---- errors and names -------------------------------------------------------------------- */

const char *esk_shape_text(const esk_tensor *t, char *buf, size_t size) {
  size_t n = 0;
  n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "(");
  for (int64_t i = 0; i < t->rank; i++)
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, i ? " %lld" : "%lld",
                          (long long)t->dims[i]);
  snprintf(buf + n, n < size ? size - n : 0, ")");
  return buf;
}

_Noreturn void esk_error_shapes(const char *loc, const char *who, const esk_tensor *a,
                                const esk_tensor *b) {
  char sa[256], sb[256];
  esk_errorf(loc, "%s: shape mismatch: %s and %s", who, esk_shape_text(a, sa, sizeof sa),
             esk_shape_text(b, sb, sizeof sb));
}

int esk_dtype_from_name(const char *n) {
  if (!strcmp(n, "f64") || !strcmp(n, "float64") || !strcmp(n, "double")) return ESK_DT_F64;
  if (!strcmp(n, "f32") || !strcmp(n, "float32") || !strcmp(n, "float")) return ESK_DT_F32;
  if (!strcmp(n, "i64") || !strcmp(n, "int64")) return ESK_DT_I64;
  return -1;
}

const char *esk_dtype_name(int dtype) {
  return dtype == ESK_DT_F32 ? "f32" : dtype == ESK_DT_I64 ? "i64" : "f64";
}

/* ---- argument helpers --------------------------------------------------------------------- */

double esk_t_real(const char *loc, const char *who, esk_value v) {
  if (v.tag == ESK_T_FLONUM) return esk_flonum_value(v);
  if (v.tag == ESK_T_FIXNUM) return (double)v.payload;
  if (v.tag == ESK_T_BIGNUM || v.tag == ESK_T_RATIONAL) return esk_number_to_double(v);
  if (v.tag == ESK_T_TENSOR && TENSOR(v)->rank == 0) return esk_tensor_get_flat(TENSOR(v), 0);
  esk_error_type(loc, who, "real number", v);
}

int64_t esk_t_dim(const char *loc, const char *who, esk_value v) {
  if (v.tag == ESK_T_FLONUM) {  /* 2.0 is accepted as a dimension, as v1.x does */
    double d = esk_flonum_value(v);
    if (d >= 0 && d == floor(d) && d < 9.0e15) return (int64_t)d;
  }
  if (v.tag != ESK_T_FIXNUM || v.payload < 0)
    esk_error_type(loc, who, "non-negative exact integer (a dimension)", v);
  return v.payload;
}

int64_t esk_t_index(const char *loc, const char *who, esk_value v, int64_t n, int64_t dim) {
  if (v.tag == ESK_T_FLONUM) {
    double d = esk_flonum_value(v);
    if (d == floor(d) && fabs(d) < 9.0e15) v = esk_fixnum((int64_t)d);
  }
  if (v.tag != ESK_T_FIXNUM) esk_error_type(loc, who, "exact integer index", v);
  if (v.payload < 0 || v.payload >= n)
    esk_errorf(loc, "%s: index %lld out of range for dimension %lld of size %lld", who,
               (long long)v.payload, (long long)dim, (long long)n);
  return v.payload;
}

int64_t esk_t_axis(const char *loc, const char *who, esk_value v, int64_t rank) {
  if (v.tag != ESK_T_FIXNUM) esk_error_type(loc, who, "exact integer axis", v);
  int64_t a = v.payload;
  if (a < -rank || a >= rank)
    esk_errorf(loc, "%s: axis %lld out of range for a tensor of rank %lld", who, (long long)a,
               (long long)rank);
  return a < 0 ? a + rank : a;
}

int64_t esk_t_shape_args(const char *loc, const char *who, int64_t argc, const esk_value *argv,
                         int64_t *dims) {
  if (argc == 1 && (argv[0].tag == ESK_T_PAIR || argv[0].tag == ESK_T_NIL ||
                    argv[0].tag == ESK_T_VECTOR || argv[0].tag == ESK_T_TENSOR)) {
    esk_value s = argv[0];
    int64_t r = 0;
    if (s.tag == ESK_T_TENSOR) {
      esk_tensor *t = TENSOR(s);
      if (t->rank > 1) esk_error_type(loc, who, "list of dimensions", s);
      if (t->size > ESK_TENSOR_MAX_RANK) goto too_many;
      for (int64_t i = 0; i < t->size; i++)
        dims[r++] = esk_t_dim(loc, who, esk_flonum(esk_tensor_get_flat(t, i)));
      return r;
    }
    if (s.tag == ESK_T_VECTOR) {
      esk_vector *v = esk_ptr(s);
      if (v->len > ESK_TENSOR_MAX_RANK) goto too_many;
      for (int64_t i = 0; i < v->len; i++) dims[r++] = esk_t_dim(loc, who, v->items[i]);
      return r;
    }
    for (; s.tag == ESK_T_PAIR; s = ((esk_pair *)esk_ptr(s))->cdr) {
      if (r == ESK_TENSOR_MAX_RANK) goto too_many;
      dims[r++] = esk_t_dim(loc, who, ((esk_pair *)esk_ptr(s))->car);
    }
    if (s.tag != ESK_T_NIL) esk_error_type(loc, who, "list of dimensions", argv[0]);
    return r;
  }
  if (argc > ESK_TENSOR_MAX_RANK) goto too_many;
  for (int64_t i = 0; i < argc; i++) dims[i] = esk_t_dim(loc, who, argv[i]);
  return argc;
too_many:
  esk_errorf(loc, "%s: at most %d dimensions are supported", who, ESK_TENSOR_MAX_RANK);
}

/* ---- conversion of nested lists and vectors --------------------------------------------- */

static int is_seq(esk_value v) {
  return v.tag == ESK_T_PAIR || v.tag == ESK_T_NIL || v.tag == ESK_T_VECTOR;
}

static int64_t seq_len(esk_value v) {
  if (v.tag == ESK_T_VECTOR) return ((esk_vector *)esk_ptr(v))->len;
  int64_t n = 0;
  for (; v.tag == ESK_T_PAIR; v = ((esk_pair *)esk_ptr(v))->cdr) n++;
  return n;
}

static esk_value seq_first(esk_value v) {
  return v.tag == ESK_T_VECTOR ? ((esk_vector *)esk_ptr(v))->items[0] : ((esk_pair *)esk_ptr(v))->car;
}

typedef struct {
  const char *loc, *who;
  esk_value whole;
  int64_t rank;
  int64_t dims[ESK_TENSOR_MAX_RANK];
  esk_tensor *out;
  int64_t pos;
} nest_ctx;

static _Noreturn void ragged(nest_ctx *c) {
  esk_error_with(c->loc, c->who[0] == '%' ? "tensor literal: ragged nesting:"
                                          : "tensor: ragged nesting (rows of different lengths):",
                 c->whole);
}

static void nest_fill(nest_ctx *c, esk_value v, int64_t depth) {
  if (v.tag == ESK_T_TENSOR) {
    esk_tensor *t = TENSOR(v);
    if (depth + t->rank != c->rank) ragged(c);
    for (int64_t i = 0; i < t->rank; i++)
      if (t->dims[i] != c->dims[depth + i]) ragged(c);
    esk_tensor tmp = *c->out; /* destination view: the next t->size elements */
    tmp.rank = t->rank;
    tmp.offset = c->pos;
    memcpy(tmp.dims, t->dims, sizeof tmp.dims);
    esk_t_row_major(t->rank, t->dims, tmp.strides);
    tmp.size = t->size;
    esk_t_copy_into(&tmp, t);
    c->pos += t->size;
    return;
  }
  if (depth == c->rank) {
    if (!t_is_real(v)) esk_error_type(c->loc, c->who, "real number (tensor element)", v);
    if (c->out->dtype == ESK_DT_I64 && v.tag == ESK_T_FIXNUM)  /* exact, beyond 2^53 too */
      ((int64_t *)t_base(c->out))[c->pos++] = v.payload;
    else
      t_store(t_base(c->out), c->out->dtype, c->pos++, esk_t_real(c->loc, c->who, v));
    return;
  }
  if (!is_seq(v) || seq_len(v) != c->dims[depth]) ragged(c);
  if (v.tag == ESK_T_VECTOR) {
    esk_vector *vec = esk_ptr(v);
    for (int64_t i = 0; i < vec->len; i++) nest_fill(c, vec->items[i], depth + 1);
  } else {
    for (; v.tag == ESK_T_PAIR; v = ((esk_pair *)esk_ptr(v))->cdr)
      nest_fill(c, ((esk_pair *)esk_ptr(v))->car, depth + 1);
  }
}

/* A fresh tensor from nested lists/vectors (leaves: real numbers or equal-shaped tensors). */
esk_tensor *esk_t_from_nested(const char *loc, const char *who, esk_value v, int dtype) {
  nest_ctx c = {.loc = loc, .who = who, .whole = v, .rank = 0};
  esk_value x = v;
  while (is_seq(x)) {
    if (c.rank == ESK_TENSOR_MAX_RANK)
      esk_errorf(loc, "%s: at most %d dimensions are supported", who, ESK_TENSOR_MAX_RANK);
    int64_t n = seq_len(x);
    c.dims[c.rank++] = n;
    if (n == 0) break;
    x = seq_first(x);
  }
  if (x.tag == ESK_T_TENSOR) {
    esk_tensor *t = TENSOR(x);
    if (c.rank + t->rank > ESK_TENSOR_MAX_RANK)
      esk_errorf(loc, "%s: at most %d dimensions are supported", who, ESK_TENSOR_MAX_RANK);
    memcpy(c.dims + c.rank, t->dims, (size_t)t->rank * sizeof(int64_t));
    c.rank += t->rank;
  }
  c.out = esk_t_new(dtype, c.rank, c.dims);
  c.pos = 0;
  nest_fill(&c, v, 0);
  return c.out;
}

esk_tensor *esk_as_tensor(const char *loc, const char *who, esk_value v) {
  if (v.tag == ESK_T_TENSOR) return TENSOR(v);
  if (t_is_real(v)) {
    esk_tensor *t = esk_t_new(ESK_DT_F64, 0, NULL);
    ((double *)t_base(t))[0] = esk_t_real(loc, who, v);
    return t;
  }
  if (is_seq(v)) return esk_t_from_nested(loc, who, v, ESK_DT_F64);
  esk_error_type(loc, who, "tensor", v);
}

/* ---- printing ---------------------------------------------------------------------------- */

/* Shortest decimal that reads back as the same float, shown as a Scheme double. */
static void format_f32(float f, char *buf, size_t size) {
  char tmp[48];
  if (!isfinite(f)) {
    esk_format_double((double)f, buf, size);
    return;
  }
  for (int p = 1; p <= 9; p++) {
    snprintf(tmp, sizeof tmp, "%.*g", p, (double)f);
    if ((float)strtod(tmp, NULL) == f) {
      esk_format_double(strtod(tmp, NULL), buf, size);
      return;
    }
  }
  esk_format_double((double)f, buf, size);
}

static void print_elem(const esk_tensor *t, int64_t off, FILE *out) {
  char buf[64];
  switch (t->dtype) {
    case ESK_DT_I64: fprintf(out, "%lld", (long long)((const int64_t *)t_base(t))[off]); return;
    case ESK_DT_F32: format_f32(((const float *)t_base(t))[off], buf, sizeof buf); break;
    default: esk_format_double(((const double *)t_base(t))[off], buf, sizeof buf); break;
  }
  fputs(buf, out);
}

static void print_rows(const esk_tensor *t, int64_t d, int64_t off, FILE *out) {
  if (d == t->rank) {
    print_elem(t, off, out);
    return;
  }
  fputs(d == 0 ? "#(" : "(", out);
  for (int64_t i = 0; i < t->dims[d]; i++) {
    if (i) putc(' ', out);
    print_rows(t, d + 1, off + i * t->strides[d], out);
  }
  putc(')', out);
}

int esk_print_tensor(esk_value v, FILE *out, int write) {
  (void)write;
  if (v.tag != ESK_T_TENSOR) return 0;
  const esk_tensor *t = TENSOR(v);
  if (t->device == ESK_DEV_CUDA) t = esk_tensor_on_host(NULL, (esk_tensor *)t); /* a host copy */
  print_rows(t, 0, t->offset, out);
  return 1;
}

/* ---- equality ----------------------------------------------------------------------------- */

int esk_t_equal(const esk_tensor *a, const esk_tensor *b) {
  if (a->rank != b->rank) return 0;
  for (int64_t i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  if (a->device != ESK_DEV_HOST || b->device != ESK_DEV_HOST) return a == b;
  if (a->dtype == ESK_DT_I64 && b->dtype == ESK_DT_I64) {
    for (int64_t i = 0; i < a->size; i++)
      if (((const int64_t *)t_base(a))[flat_to_offset(a, i)] !=
          ((const int64_t *)t_base(b))[flat_to_offset(b, i)])
        return 0;
    return 1;
  }
  for (int64_t i = 0; i < a->size; i++)
    if (esk_tensor_get_flat(a, i) != esk_tensor_get_flat(b, i)) return 0;
  return 1;
}

int esk_tensor_equal(esk_value a, esk_value b) {
  return a.tag == ESK_T_TENSOR && b.tag == ESK_T_TENSOR && esk_t_equal(TENSOR(a), TENSOR(b));
}
