/* The XLA target's runtime side: `eshkol run --target=xla` outlines tensor regions into calls
 * of the primitive %xla-call (region id, then the region's free variables).  The Python driver
 * (eshkol/runtime/xla.py) registers a callback here before the program starts; the callback
 * generates StableHLO for the arguments' shapes, compiles it with XLA (cached) and runs it.
 *
 * Results: XLA's output buffers become Eshkol tensors without a copy (esk_xla_wrap).  The
 * buffer object's finalizer puts the Python-side handle on a queue that the driver drains on
 * its next call (no Python runs inside the collector).  As with the tensor pool, the collector
 * cannot see that memory, so wrapping counts the bytes and collects when they grow. */
#define GC_THREADS
#include <gc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"

/* One call of a region, shared with the driver.  The driver reads the inputs and the key; on
 * success it fills the result fields: `out` directly (numbers, tensors it made), or, with
 * wrap = 1, an XLA buffer that becomes a tensor here (esk_xla_wrap) without another call
 * through ctypes.  eshkol/runtime/xla.py mirrors the layout (_FRAME_IN and the offsets after it). */
typedef struct {
  const char *loc;
  int64_t region;
  int64_t argc;
  const esk_value *argv;
  int64_t keylen;
  const unsigned char *key; /* region id, then per input what determines its XLA argument */
  int64_t wrap;             /* out: 1 when the result is data/dtype/rank/dims/handle */
  esk_value out;
  void *data;
  int64_t handle, dtype, rank;
  const int64_t *dims;
  char err[2048], errloc[512];
  int64_t keybuf[256]; /* the key, when it fits (the driver then reads the frame only) */
} esk_xla_frame;
_Static_assert(offsetof(esk_xla_frame, err) == 112 && offsetof(esk_xla_frame, errloc) == 2160 &&
                   offsetof(esk_xla_frame, keybuf) == 2672 && sizeof(esk_xla_frame) == 4720,
               "esk_xla_frame: keep the _FRAME_* constants of eshkol/runtime/xla.py in step");

/* rc 0: the frame's result is set; 2: run the fallback instead (XLA cannot take these inputs);
 * otherwise err holds the message and errloc (when non-empty) the location of the operation
 * that failed. */
typedef int (*esk_xla_callback)(esk_xla_frame *frame);

static esk_xla_callback xla_callback;

static void esk_xla_wrap(int32_t dtype, int64_t rank, const int64_t *dims, void *data, int64_t handle,
                         esk_value *out);

void esk_xla_set_callback(esk_xla_callback fn) { xla_callback = fn; }

/* The call's key: a model's weights are the same tensors call after call, so the driver finds
 * the executable and its device arrays with one dictionary lookup of these bytes.  A tensor
 * contributes what its zero-copy alias depends on (dtype, device, shape, strides, the address
 * of element 0), anything else its tag and payload. */
static int64_t key_words(int64_t n, const esk_value *args) {
  int64_t w = 1;
  for (int64_t i = 0; i < n; i++)
    w += args[i].tag == ESK_T_TENSOR ? 4 + 2 * ((esk_tensor *)(intptr_t)args[i].payload)->rank : 2;
  return w;
}

static void fill_key(int64_t *k, int64_t region, int64_t n, const esk_value *args) {
  *k++ = region;
  for (int64_t i = 0; i < n; i++) {
    *k++ = args[i].tag;
    if (args[i].tag != ESK_T_TENSOR) {
      *k++ = args[i].payload;
      continue;
    }
    const esk_tensor *t = (const esk_tensor *)(intptr_t)args[i].payload;
    *k++ = (int64_t)t->dtype << 32 | (uint32_t)t->device;
    *k++ = t->rank;
    *k++ = t->buf ? (int64_t)(intptr_t)esk_tensor_data(t) : 0;
    for (int64_t d = 0; d < t->rank; d++) *k++ = t->dims[d];
    for (int64_t d = 0; d < t->rank; d++) *k++ = t->strides[d];
  }
}

/* (%xla-call id fallback input ...): the region through XLA, or the fallback thunk (the same
 * code compiled for the CPU) when there is no XLA driver or an input is an AD value. */
esk_value esk_prim_xla_call(const char *loc, int64_t argc, esk_value *argv) {
  if (argc < 2 || argv[0].tag != ESK_T_FIXNUM) esk_errorf(loc, "%%xla-call: bad region id");
  esk_value fallback = argv[1];
  int64_t n = argc - 2;
  if (!xla_callback || esk_ad_any(n, argv + 2)) return esk_call(loc, fallback, 0, NULL);
  esk_value small[16];
  esk_value *args = n <= 16 ? small : esk_alloc((size_t)n * sizeof(esk_value)); /* argv may be reused */
  for (int64_t i = 0; i < n; i++) { /* exact numbers beyond fixnums: as tensor prims convert */
    esk_value v = argv[i + 2];
    if (v.tag == ESK_T_BIGNUM || v.tag == ESK_T_RATIONAL) v = esk_prim_exact_to_inexact(loc, v);
    args[i] = v;
  }
  esk_xla_frame f;
  memset(&f, 0, offsetof(esk_xla_frame, keybuf));
  int64_t words = key_words(n, args);
  int64_t *key = words <= 256 ? f.keybuf : esk_alloc_atomic((size_t)words * sizeof(int64_t));
  fill_key(key, argv[0].payload, n, args);
  f.loc = loc;
  f.region = argv[0].payload;
  f.argc = n;
  f.argv = args;
  f.keylen = words * (int64_t)sizeof(int64_t);
  f.key = (unsigned char *)key;
  f.out = esk_void();
  int rc = xla_callback(&f);
  if (rc == 2) return esk_call(loc, fallback, 0, NULL);
  if (rc) {
    f.err[sizeof f.err - 1] = f.errloc[sizeof f.errloc - 1] = 0;
    /* The location string must outlive this frame (error objects keep it). */
    const char *where = f.errloc[0] ? strdup(f.errloc) : loc;
    esk_errorf(where, "%s", f.err[0] ? f.err : "XLA execution failed");
  }
  if (f.wrap) esk_xla_wrap((int32_t)f.dtype, f.rank, f.dims, f.data, f.handle, &f.out);
  return f.out;
}

/* ---- XLA-owned buffers as Eshkol tensors ------------------------------------------------ */

static pthread_mutex_t xla_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t *released;          /* handles whose tensors died, for the driver to drop */
static int64_t capreleased;
/* How many: exported so that the driver reads it (a racy read only delays a drain to the next
 * call) instead of calling esk_xla_take_released at every call. */
int64_t esk_xla_nreleased;
static size_t outstanding, next_collect = (size_t)256 << 20;

/* Finalizers run on whichever thread allocates; they only queue. */
static void xla_buf_finalize(void *obj, void *data) {
  esk_tensor_buf *b = obj;
  pthread_mutex_lock(&xla_lock);
  if (esk_xla_nreleased == capreleased) {
    int64_t cap = capreleased ? 2 * capreleased : 256;
    int64_t *p = realloc(released, (size_t)cap * sizeof *p);
    if (!p) { /* keep the handle (a leak, never a crash) */
      pthread_mutex_unlock(&xla_lock);
      return;
    }
    released = p;
    capreleased = cap;
  }
  released[esk_xla_nreleased++] = (int64_t)(intptr_t)data;
  outstanding -= b->bytes;
  pthread_mutex_unlock(&xla_lock);
}

/* Up to max handles of dead XLA buffers into out; returns how many. */
int64_t esk_xla_take_released(int64_t *out, int64_t max) {
  pthread_mutex_lock(&xla_lock);
  int64_t k = esk_xla_nreleased < max ? esk_xla_nreleased : max;
  memcpy(out, released + (esk_xla_nreleased - k), (size_t)k * sizeof *out);
  esk_xla_nreleased -= k;
  pthread_mutex_unlock(&xla_lock);
  return k;
}

/* *out = a contiguous host tensor over `data` (owned by the driver under `handle`, released
 * through esk_xla_take_released once the tensor is garbage). */
static void esk_xla_wrap(int32_t dtype, int64_t rank, const int64_t *dims, void *data, int64_t handle,
                         esk_value *out) {
  if (rank < 0 || rank > ESK_TENSOR_MAX_RANK) esk_errorf(NULL, "XLA result of rank %lld", (long long)rank);
  size_t bytes = esk_dtype_size(dtype);
  for (int64_t i = 0; i < rank; i++) bytes *= (size_t)dims[i];
  pthread_mutex_lock(&xla_lock);
  int collect = outstanding + bytes > next_collect;
  pthread_mutex_unlock(&xla_lock);
  if (collect) { /* dead results hold XLA memory the collector does not see */
    GC_gcollect();
    GC_invoke_finalizers();
    pthread_mutex_lock(&xla_lock);
    next_collect = outstanding + (outstanding > ((size_t)256 << 20) ? outstanding : ((size_t)256 << 20));
    pthread_mutex_unlock(&xla_lock);
  }
  esk_tensor_buf *b = GC_MALLOC_ATOMIC(sizeof *b);
  esk_tensor *t = GC_MALLOC(sizeof *t);
  if (!b || !t) esk_errorf(NULL, "out of memory");
  b->base = data;
  b->bytes = bytes;
  b->device = ESK_DEV_HOST;
  b->device_index = 0;
  b->size_class = -1; /* not the pool's: the tensor pool's finalizer leaves it alone */
  b->pad = 0;
  t->h.type = ESK_T_TENSOR;
  t->h.flags = 0;
  t->dtype = dtype;
  t->device = ESK_DEV_HOST;
  t->rank = rank;
  t->offset = 0;
  int64_t n = 1;
  for (int64_t i = rank - 1; i >= 0; i--) {
    t->dims[i] = dims[i];
    t->strides[i] = n;
    n *= dims[i];
  }
  t->size = n;
  t->buf = b;
  pthread_mutex_lock(&xla_lock);
  outstanding += bytes;
  pthread_mutex_unlock(&xla_lock);
  GC_REGISTER_FINALIZER_NO_ORDER(b, xla_buf_finalize, (void *)(intptr_t)handle, NULL, NULL);
  *out = (esk_value){ESK_T_TENSOR, (int64_t)(intptr_t)t};
}
