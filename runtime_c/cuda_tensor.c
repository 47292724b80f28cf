/* GPU tensors: device buffers, transfers, elementwise operations, reductions and matmul on
 * CUDA tensors, the gpu-* builtins and with-device.
 *
 * A CUDA tensor is an ordinary esk_tensor whose buffer (device ESK_DEV_CUDA) holds a device
 * pointer; views share it as on the host.  Elementwise operations launch the kernels of
 * eshkol/lower/cuda_kernels.py: contiguous operands (or one-element ones, stride 0) as rank-1
 * memrefs, other broadcasts and strided views as rank-4 memrefs; what no kernel covers (int64
 * data, ranks past 4, atan2) goes through the host and comes back, so every operation works.
 * Results are contiguous CUDA tensors of the dtype the host rules give (f32 stays f32). */
#define GC_THREADS
#include <gc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_shim.h"

static __thread int current_device = ESK_DEV_HOST;

int esk_current_device(void) { return current_device; }

/* ---- device tensors --------------------------------------------------------------------- */

static inline esk_devptr dptr(const esk_tensor *t) { return (esk_devptr)(uintptr_t)t->buf->base; }
static inline int64_t esize(int dtype) { return (int64_t)esk_dtype_size(dtype); }

static void dbuf_finalize(void *obj, void *data) {
  (void)data;
  esk_tensor_buf *b = obj;
  esk_cu_release((esk_devptr)(uintptr_t)b->base, b->bytes);
}

static esk_tensor_buf *dbuf_new(const char *loc, size_t bytes) {
  size_t rounded;
  esk_devptr p = esk_cu_alloc(loc, bytes, &rounded);
  esk_tensor_buf *b = GC_MALLOC_ATOMIC(sizeof *b);
  if (!b) {
    esk_cu_release(p, rounded);
    esk_errorf(loc, "out of memory");
  }
  b->base = (void *)(uintptr_t)p;
  b->bytes = rounded;
  b->device = ESK_DEV_CUDA;
  b->device_index = 0;
  b->size_class = -1;
  b->pad = 0;
  GC_REGISTER_FINALIZER_NO_ORDER(b, dbuf_finalize, NULL, NULL, NULL);
  return b;
}

static int64_t row_major(int64_t rank, const int64_t *dims, int64_t *strides) {
  int64_t n = 1;
  for (int64_t i = rank - 1; i >= 0; i--) {
    strides[i] = n;
    n *= dims[i];
  }
  return n;
}

static esk_tensor *header(int dtype, int64_t rank, const int64_t *dims) {
  esk_tensor *t = GC_MALLOC(sizeof *t);
  if (!t) esk_errorf(NULL, "out of memory");
  t->h.type = ESK_T_TENSOR;
  t->h.flags = 0;
  t->dtype = dtype;
  t->device = ESK_DEV_CUDA;
  t->rank = rank;
  memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
  t->size = row_major(rank, dims, t->strides);
  t->offset = 0;
  return t;
}

/* A fresh contiguous CUDA tensor (uninitialised). */
static esk_tensor *dnew(const char *loc, int dtype, int64_t rank, const int64_t *dims) {
  esk_tensor *t = header(dtype, rank, dims);
  t->buf = dbuf_new(loc, (size_t)(t->size * esize(dtype)));
  return t;
}

static esk_tensor *as_cuda(esk_value v) { return esk_is_cuda_tensor(v) ? esk_ptr(v) : NULL; }

static const char *device_text(const esk_tensor *t) {
  return t->device == ESK_DEV_CUDA ? "cuda:0" : "cpu";
}

static int is_real(esk_value v) {
  return v.tag == ESK_T_FIXNUM || v.tag == ESK_T_FLONUM || v.tag == ESK_T_BIGNUM ||
         v.tag == ESK_T_RATIONAL;
}

/* ---- transfers ------------------------------------------------------------------------- */

/* The span of buffer elements a view can reach: [lo, hi). */
static void view_span(const esk_tensor *t, int64_t *lo, int64_t *hi) {
  int64_t a = t->offset, b = t->offset;
  for (int64_t d = 0; d < t->rank; d++) {
    if (t->dims[d] == 0) { *lo = *hi = t->offset; return; }
    int64_t ext = (t->dims[d] - 1) * t->strides[d];
    if (ext < 0) a += ext; else b += ext;
  }
  *lo = a;
  *hi = b + 1;
}

esk_tensor *esk_tensor_on_host(const char *loc, esk_tensor *t) {
  if (t->device != ESK_DEV_CUDA) return t;
  esk_tensor *h = esk_tensor_new(t->dtype, t->rank, t->dims);
  if (t->size == 0) return h;
  int64_t es = esize(t->dtype);
  if (esk_tensor_is_contiguous(t)) {
    esk_cu_dtoh(loc, esk_tensor_data(h), dptr(t) + (esk_devptr)(t->offset * es), (size_t)(t->size * es));
    return h;
  }
  /* A strided view: bring the span it covers, then gather on the host. */
  int64_t lo, hi;
  view_span(t, &lo, &hi);
  int64_t span_dims[1] = {hi - lo};
  esk_tensor *span = esk_tensor_new(t->dtype, 1, span_dims);
  esk_cu_dtoh(loc, esk_tensor_data(span), dptr(t) + (esk_devptr)(lo * es), (size_t)((hi - lo) * es));
  esk_tensor *v = GC_MALLOC(sizeof *v); /* t's view over the host copy of the span */
  if (!v) esk_errorf(loc, "out of memory");
  *v = *t;
  v->device = ESK_DEV_HOST;
  v->buf = span->buf;
  v->offset = t->offset - lo;
  return esk_tensor_contiguous(v);
}

/* A CUDA copy of host tensor h (converted to dtype). */
static esk_tensor *upload(const char *loc, esk_tensor *h, int dtype) {
  esk_cu_ready(loc);
  esk_tensor *c = esk_tensor_contiguous(esk_tensor_astype(h, dtype));
  esk_tensor *d = dnew(loc, dtype, c->rank, c->dims);
  esk_cu_htod(loc, dptr(d), esk_tensor_data(c), (size_t)(c->size * esize(dtype)));
  return d;
}

/* A host result back on the device (numbers stay numbers). */
static esk_value to_device_value(const char *loc, esk_value v) {
  if (v.tag != ESK_T_TENSOR) return v;
  esk_tensor *t = esk_ptr(v);
  return t->device == ESK_DEV_CUDA ? v : esk_tensor_value(upload(loc, t, t->dtype));
}

static esk_value host_value(const char *loc, esk_value v) {
  esk_tensor *t = as_cuda(v);
  return t ? esk_tensor_value(esk_tensor_on_host(loc, t)) : v;
}

esk_value esk_cuda_elem_value(const char *loc, const esk_tensor *t, int64_t off) {
  union { double d; float f; int64_t i; } x;
  int64_t es = esize(t->dtype);
  esk_cu_dtoh(loc, &x, dptr(t) + (esk_devptr)(off * es), (size_t)es);
  if (t->dtype == ESK_DT_I64) return esk_fixnum(x.i);
  return esk_flonum(t->dtype == ESK_DT_F32 ? (double)x.f : x.d);
}

void esk_cuda_elem_store(const char *loc, esk_tensor *t, int64_t off, double v) {
  union { double d; float f; int64_t i; } x;
  if (t->dtype == ESK_DT_F32) x.f = (float)v;
  else if (t->dtype == ESK_DT_I64) x.i = (int64_t)v;
  else x.d = v;
  esk_cu_htod(loc, dptr(t) + (esk_devptr)(off * esize(t->dtype)), &x, (size_t)esize(t->dtype));
}

esk_value esk_tensor_place(const char *loc, esk_value v) {
  if (current_device != ESK_DEV_CUDA || v.tag != ESK_T_TENSOR) return v;
  return to_device_value(loc, v);
}

/* ---- kernel arguments ------------------------------------------------------------------- */

static const char *dt_name(int dtype) { return dtype == ESK_DT_F32 ? "f32" : "f64"; }

/* t's elements as a rank-1 memref of n elements with stride s (1 contiguous, 0 broadcast). */
static void arg1(esk_kargs *a, const esk_tensor *t, int64_t n, int64_t s) {
  esk_kargs_memref(a, dptr(t), t->offset, 1, &n, &s);
}

/* A fresh contiguous output as a rank-1 memref. */
static void out1(esk_kargs *a, const esk_tensor *o) {
  int64_t s = 1;
  esk_kargs_memref(a, dptr(o), o->offset, 1, &o->size, &s);
}

/* t seen with the shape of a rank-r result dims (r <= 4), padded to rank 4 in front:
 * broadcast dimensions get stride 0. */
static void arg4(esk_kargs *a, const esk_tensor *t, int64_t r, const int64_t *dims) {
  int64_t d4[4], s4[4];
  for (int k = 0; k < 4; k++) {
    int64_t d = k - (4 - r);             /* result dimension */
    int64_t sd = d - (r - t->rank);      /* t's dimension */
    d4[k] = d >= 0 ? dims[d] : 1;
    s4[k] = (d < 0 || sd < 0 || t->dims[sd] == 1) ? 0 : t->strides[sd];
  }
  esk_kargs_memref(a, dptr(t), t->offset, 4, d4, s4);
}

static void kname(char *buf, size_t size, const char *op, const char *variant, int dtype) {
  snprintf(buf, size, "ew_%s_%s_%s", op, variant, dt_name(dtype));
}

/* t itself when contiguous, else a contiguous device copy. */
static esk_tensor *dcontig(const char *loc, esk_tensor *t) {
  if (esk_tensor_is_contiguous(t)) return t;
  esk_tensor *o = dnew(loc, t->dtype, t->rank, t->dims);
  if (t->rank <= 4 && t->dtype != ESK_DT_I64) {
    esk_kargs a = {.n = 0};
    arg4(&a, t, t->rank, t->dims);
    arg4(&a, o, o->rank, o->dims);
    esk_kargs_u64(&a, (uint64_t)o->size);
    char name[64];
    kname(name, sizeof name, "id", "u4", t->dtype);
    esk_cu_launch(loc, name, o->size, &a);
    return o;
  }
  esk_tensor *h = esk_tensor_on_host(loc, t);
  esk_cu_htod(loc, dptr(o), esk_tensor_data(h), (size_t)(o->size * esize(o->dtype)));
  return o;
}

/* t converted to dtype on the device. */
static esk_tensor *dcast(const char *loc, esk_tensor *t, int dtype) {
  if (t->dtype == dtype) return t;
  if (t->dtype == ESK_DT_I64 || dtype == ESK_DT_I64) {
    esk_tensor *h = esk_tensor_on_host(loc, t);
    return upload(loc, h, dtype);
  }
  t = dcontig(loc, t);
  esk_tensor *o = dnew(loc, dtype, t->rank, t->dims);
  esk_kargs a = {.n = 0};
  arg1(&a, t, t->size, 1);
  out1(&a, o);
  char name[64];
  snprintf(name, sizeof name, "cast_%s_%s", dt_name(t->dtype), dt_name(dtype));
  esk_cu_launch(loc, name, o->size, &a);
  return o;
}

static void fill(const char *loc, esk_tensor *o, double x) {
  esk_kargs a = {.n = 0};
  esk_kargs_scalar(&a, o->dtype, x);
  out1(&a, o);
  char name[64];
  snprintf(name, sizeof name, "fill_%s", dt_name(o->dtype));
  esk_cu_launch(loc, name, o->size, &a);
}

/* ---- elementwise ------------------------------------------------------------------------- */

static const char *binary_kernel_op(int op) {
  switch (op) {
    case ESK_OP_ADD: return "add";
    case ESK_OP_SUB: return "sub";
    case ESK_OP_MUL: return "mul";
    case ESK_OP_DIV: return "div";
    case ESK_OP_EXPT: return "pow";
    case ESK_OP_MAX: return "max";
    case ESK_OP_MIN: return "min";
    default: return NULL;
  }
}

static const char *unary_kernel_op(int op) {
  switch (op) {
    case ESK_OP_NEG: return "neg";
    case ESK_OP_ABS: return "abs";
    case ESK_OP_SQRT: return "sqrt";
    case ESK_OP_EXP: return "exp";
    case ESK_OP_LOG: return "log";
    case ESK_OP_SIN: return "sin";
    case ESK_OP_COS: return "cos";
    case ESK_OP_TAN: return "tan";
    case ESK_OP_ASIN: return "asin";
    case ESK_OP_ACOS: return "acos";
    case ESK_OP_ATAN: return "atan";
    case ESK_OP_SINH: return "sinh";
    case ESK_OP_COSH: return "cosh";
    case ESK_OP_TANH: return "tanh";
    case ESK_OP_SQUARE: return "square";
    default: return NULL;
  }
}

/* Through the host: the host rules (esk_tensor_arith) on host copies, result back on the GPU. */
static esk_value via_host(const char *loc, int op, int64_t argc, const esk_value *args) {
  esk_value h[2], r;
  for (int64_t i = 0; i < argc; i++) h[i] = host_value(loc, args[i]);
  if (!esk_tensor_arith(loc, op, argc, h, &r))
    esk_errorf(loc, "cuda: operation %d has no host rule", op);
  return to_device_value(loc, r);
}

static int64_t broadcast_shape(const esk_tensor *a, const esk_tensor *b, int64_t *dims) {
  int64_t r = a->rank > b->rank ? a->rank : b->rank;
  for (int64_t d = 0; d < r; d++) {
    int64_t ia = d - (r - a->rank), ib = d - (r - b->rank);
    int64_t na = ia >= 0 ? a->dims[ia] : 1, nb = ib >= 0 ? b->dims[ib] : 1;
    if (na == nb || nb == 1) dims[d] = na;
    else if (na == 1) dims[d] = nb;
    else return -1;
  }
  return r;
}

static _Noreturn void mixed_devices(const char *loc, const char *who, esk_value a, esk_value b) {
  esk_value other = esk_is_cuda_tensor(a) ? b : a;
  if (other.tag != ESK_T_TENSOR && other.tag != ESK_T_PAIR && other.tag != ESK_T_VECTOR)
    esk_error_type(loc, who, "tensor or number", other);
  esk_errorf(loc, "%s: operands on different devices (cuda:0 and cpu); move one with "
                  "gpu-to-device! or gpu-to-host!", who);
}

esk_value esk_cuda_binary(const char *loc, const char *who, int op, esk_value va, esk_value vb) {
  esk_tensor *a = as_cuda(va), *b = as_cuda(vb);
  if ((!a && !is_real(va)) || (!b && !is_real(vb))) mixed_devices(loc, who, va, vb);
  esk_cu_ready(loc);
  esk_value args[2] = {va, vb};
  const char *kop = binary_kernel_op(op);
  if (!kop || (a && a->dtype == ESK_DT_I64) || (b && b->dtype == ESK_DT_I64))
    return via_host(loc, op, 2, args);
  char name[64];
  esk_kargs k = {.n = 0};
  if (!a || !b) { /* a tensor and a number: the tensor's dtype */
    esk_tensor *t = dcontig(loc, a ? a : b);
    double x = esk_number_to_double(a ? vb : va);
    esk_tensor *o = dnew(loc, t->dtype, t->rank, t->dims);
    if (a) {
      arg1(&k, t, t->size, 1);
      esk_kargs_scalar(&k, t->dtype, x);
    } else {
      esk_kargs_scalar(&k, t->dtype, x);
      arg1(&k, t, t->size, 1);
    }
    out1(&k, o);
    kname(name, sizeof name, kop, a ? "ts" : "st", t->dtype);
    esk_cu_launch(loc, name, o->size, &k);
    return esk_tensor_value(o);
  }
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t r = broadcast_shape(a, b, dims);
  if (r < 0) esk_error_shapes(loc, who, a, b);
  int dtype = a->dtype == b->dtype ? a->dtype : ESK_DT_F64;
  a = dcast(loc, a, dtype);
  b = dcast(loc, b, dtype);
  esk_tensor *o = dnew(loc, dtype, r, dims);
  if (o->size == 0) return esk_tensor_value(o);
  int a1 = a->size == 1 || (a->size == o->size && esk_tensor_is_contiguous(a));
  int b1 = b->size == 1 || (b->size == o->size && esk_tensor_is_contiguous(b));
  if (a1 && b1) {
    arg1(&k, a, o->size, a->size == 1 && o->size != 1 ? 0 : 1);
    arg1(&k, b, o->size, b->size == 1 && o->size != 1 ? 0 : 1);
    out1(&k, o);
    kname(name, sizeof name, kop, "tt", dtype);
    esk_cu_launch(loc, name, o->size, &k);
    return esk_tensor_value(o);
  }
  if (r > 4) return via_host(loc, op, 2, args);
  arg4(&k, a, r, dims);
  arg4(&k, b, r, dims);
  arg4(&k, o, r, dims);
  esk_kargs_u64(&k, (uint64_t)o->size);
  kname(name, sizeof name, kop, "b4", dtype);
  esk_cu_launch(loc, name, o->size, &k);
  return esk_tensor_value(o);
}

esk_value esk_cuda_unary(const char *loc, const char *who, int op, esk_value va) {
  esk_tensor *a = as_cuda(va);
  if (!a) esk_error_type(loc, who, "tensor", va);
  esk_cu_ready(loc);
  const char *kop = unary_kernel_op(op);
  if (!kop || a->dtype == ESK_DT_I64) return via_host(loc, op, 1, &va);
  esk_tensor *o = dnew(loc, a->dtype, a->rank, a->dims);
  esk_kargs k = {.n = 0};
  char name[64];
  if (esk_tensor_is_contiguous(a)) {
    arg1(&k, a, a->size, 1);
    out1(&k, o);
    kname(name, sizeof name, kop, "u", a->dtype);
  } else {
    a = dcontig(loc, a);
    arg1(&k, a, a->size, 1);
    out1(&k, o);
    kname(name, sizeof name, kop, "u", a->dtype);
  }
  esk_cu_launch(loc, name, o->size, &k);
  return esk_tensor_value(o);
}

/* ---- reductions -------------------------------------------------------------------------- */

static const char *reduce_kernel_op(int kind) {
  switch (kind) {
    case ESK_RED_SUM: case ESK_RED_MEAN: return "sum";
    case ESK_RED_PROD: return "prod";
    case ESK_RED_MAX: return "max";
    case ESK_RED_MIN: return "min";
    default: return NULL;
  }
}

/* The host's last step, with the kernels' semantics (max and min propagate NaN). */
static double combine(const char *op, double s, double x) {
  if (!strcmp(op, "sum")) return s + x;
  if (!strcmp(op, "prod")) return s * x;
  if (s != s || x != x) return NAN;
  if (!strcmp(op, "max")) return x > s ? x : s;
  return x < s ? x : s;
}

/* Partial reductions on the device until few enough are left, then the rest on the host. */
#define REDUCE_HOST_MAX 4096
#define REDUCE_THREADS_MAX (1 << 18)

/* Threads of a partial reduction over n elements: 8 elements each or more (at most 2^18
 * threads: one wave of blocks on an H200).  Measured on an H200 over 2^28 elements (benchmarks/
 * tensors_gpu.py): this gave 0.85x (f64) and 0.94x (f32) CuPy's sum; about 32 elements per
 * thread with up to 2^21 threads gave 0.83x and 0.81x. */
static int64_t reduce_threads(int64_t n) {
  int64_t parts = (n + 7) / 8;
  return parts > REDUCE_THREADS_MAX ? REDUCE_THREADS_MAX : parts < 1 ? 1 : parts;
}

/* Contiguous t's elements combined on the device (kernel red_<op>) down to at most
 * REDUCE_HOST_MAX partial results, in a device tensor. */
static esk_tensor *reduce_partials(const char *loc, const char *op, esk_tensor *t) {
  char name[64];
  snprintf(name, sizeof name, "red_%s_%s", op, dt_name(t->dtype));
  while (t->size > REDUCE_HOST_MAX) {
    int64_t parts = reduce_threads(t->size);
    esk_tensor *p = dnew(loc, t->dtype, 1, &parts);
    esk_kargs k = {.n = 0};
    arg1(&k, t, t->size, 1);
    out1(&k, p);
    esk_cu_launch(loc, name, parts, &k);
    t = p;
  }
  return t;
}

static double reduce_all(const char *loc, const char *op, esk_tensor *t) {
  esk_tensor *h = esk_tensor_on_host(loc, reduce_partials(loc, op, dcontig(loc, t)));
  int f32 = t->dtype == ESK_DT_F32;
  double s = f32 ? ((float *)esk_tensor_data(h))[0] : ((double *)esk_tensor_data(h))[0];
  for (int64_t i = 1; i < h->size; i++)
    s = combine(op, s, f32 ? ((float *)esk_tensor_data(h))[i] : ((double *)esk_tensor_data(h))[i]);
  return s;
}

/* The host's reduction builtins (tensor_reduce.c), for the kinds without a kernel. */
esk_value esk_prim_tensor_sum(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_mean(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_max(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_min(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_prod(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_variance(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_std(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_argmax(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_argmin(const char *loc, int64_t argc, esk_value *argv);

static esk_value reduce_via_host(const char *loc, int kind, int64_t argc, esk_value *argv) {
  typedef esk_value (*prim_fn)(const char *, int64_t, esk_value *);
  static const prim_fn fns[] = {
      [ESK_RED_SUM] = esk_prim_tensor_sum, [ESK_RED_MEAN] = esk_prim_tensor_mean,
      [ESK_RED_MAX] = esk_prim_tensor_max, [ESK_RED_MIN] = esk_prim_tensor_min,
      [ESK_RED_PROD] = esk_prim_tensor_prod, [ESK_RED_VAR] = esk_prim_tensor_variance,
      [ESK_RED_STD] = esk_prim_tensor_std, [ESK_RED_ARGMAX] = esk_prim_tensor_argmax,
      [ESK_RED_ARGMIN] = esk_prim_tensor_argmin};
  if (kind < 0 || kind > ESK_RED_ARGMIN) esk_errorf(loc, "internal error: reduction kind %d", kind);
  esk_value h[2] = {host_value(loc, argv[0]), argc > 1 ? argv[1] : esk_void()};
  return to_device_value(loc, fns[kind](loc, argc, h));
}

esk_value esk_cuda_reduce(const char *loc, int kind, int64_t argc, esk_value *argv) {
  esk_tensor *t = as_cuda(argv[0]);
  const char *op = reduce_kernel_op(kind);
  int all = argc < 2 || argv[1].tag == ESK_T_DEFAULT;
  /* int64 data, empty tensors and unusual axes: the host's rules (and its errors). */
  if (!t || !op || t->dtype == ESK_DT_I64 || t->size == 0 || (!all && t->rank == 0) ||
      (!all && (argv[1].tag != ESK_T_FIXNUM || argv[1].payload < -t->rank || argv[1].payload >= t->rank)))
    return reduce_via_host(loc, kind, argc, argv);
  esk_cu_ready(loc);
  if (all) {
    double r = reduce_all(loc, op, t);
    return esk_flonum(kind == ESK_RED_MEAN ? r / (double)t->size : r);
  }
  int64_t axis = argv[1].payload < 0 ? argv[1].payload + t->rank : argv[1].payload;
  int64_t outer = 1, inner = 1, len = t->dims[axis], dims[ESK_TENSOR_MAX_RANK], r = 0;
  for (int64_t d = 0; d < axis; d++) outer *= t->dims[d];
  for (int64_t d = axis + 1; d < t->rank; d++) inner *= t->dims[d];
  for (int64_t d = 0; d < t->rank; d++)
    if (d != axis) dims[r++] = t->dims[d];
  if (len == 0) return reduce_via_host(loc, kind, argc, argv);
  t = dcontig(loc, t);
  esk_tensor *o = dnew(loc, t->dtype, r, dims);
  esk_kargs k = {.n = 0};
  int64_t d3[3] = {outer, len, inner}, s3[3] = {len * inner, inner, 1};
  int64_t d2[2] = {outer, inner}, s2[2] = {inner, 1};
  esk_kargs_memref(&k, dptr(t), t->offset, 3, d3, s3);
  esk_kargs_memref(&k, dptr(o), 0, 2, d2, s2);
  esk_kargs_u64(&k, (uint64_t)(outer * inner));
  char name[64];
  snprintf(name, sizeof name, "redax_%s_%s", op, dt_name(t->dtype));
  esk_cu_launch(loc, name, outer * inner, &k);
  if (kind == ESK_RED_MEAN) {
    esk_kargs m = {.n = 0};
    arg1(&m, o, o->size, 1);
    esk_kargs_scalar(&m, o->dtype, (double)len);
    out1(&m, o);
    kname(name, sizeof name, "div", "ts", o->dtype);
    esk_cu_launch(loc, name, o->size, &m);
  }
  return esk_tensor_value(o);
}

/* ---- matmul ------------------------------------------------------------------------------ */

esk_value esk_cuda_matmul(const char *loc, const char *who, esk_value va, esk_value vb) {
  esk_tensor *a = as_cuda(va), *b = as_cuda(vb);
  if (!a || !b) mixed_devices(loc, who, va, vb);
  esk_cu_ready(loc);
  if (a->rank < 1 || a->rank > 2 || b->rank < 1 || b->rank > 2 || a->dtype == ESK_DT_I64 ||
      b->dtype == ESK_DT_I64) { /* batched or integer products: the host's matmul */
    esk_value r = esk_prim_matmul(loc, host_value(loc, va), host_value(loc, vb));
    return to_device_value(loc, r);
  }
  int64_t m = a->rank == 2 ? a->dims[0] : 1, k = a->dims[a->rank - 1];
  int64_t k2 = b->dims[0], n = b->rank == 2 ? b->dims[1] : 1;
  if (k != k2) esk_error_shapes(loc, who, a, b);
  int dtype = a->dtype == b->dtype ? a->dtype : ESK_DT_F64;
  a = dcontig(loc, dcast(loc, a, dtype));
  b = dcontig(loc, dcast(loc, b, dtype));
  int64_t dims[2], r = 0;
  if (a->rank == 2) dims[r++] = m;
  if (b->rank == 2) dims[r++] = n;
  esk_tensor *o = dnew(loc, dtype, r, dims);
  if (o->size == 0) return esk_tensor_value(o);
  if (k == 0) {
    fill(loc, o, 0.0);
    return esk_tensor_value(o);
  }
  int64_t es = esize(dtype);
  esk_cu_gemm(loc, dtype, m, n, k, dptr(a) + (esk_devptr)(a->offset * es),
              dptr(b) + (esk_devptr)(b->offset * es), dptr(o));
  if (r == 0) { /* (matmul vector vector): a number, as on the host */
    esk_value h = esk_tensor_value(esk_tensor_on_host(loc, o));
    return esk_tensor_elem_value(esk_ptr(h), 0);
  }
  return esk_tensor_value(o);
}

/* ---- builtins ---------------------------------------------------------------------------- */

esk_value esk_prim_gpu_available(const char *loc) {
  (void)loc;
  return esk_bool(esk_cu_available());
}

/* A dtype symbol argument. */
static int dtype_arg(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_SYMBOL) esk_error_type(loc, who, "dtype symbol ('f64 or 'f32)", v);
  int d = esk_dtype_from_name(((esk_symbol *)esk_ptr(v))->name->data);
  if (d < 0) esk_error_with(loc, "unknown dtype", v);
  return d;
}

/* (gpu-tensor x [dtype]): a CUDA copy of x (a tensor, number or nested list). */
esk_value esk_prim_gpu_tensor(const char *loc, int64_t argc, esk_value *argv) {
  esk_cu_ready(loc);
  esk_tensor *d = as_cuda(argv[0]);
  int dtype = -1;
  if (argc > 1 && argv[1].tag != ESK_T_DEFAULT) dtype = dtype_arg(loc, "gpu-tensor", argv[1]);
  if (d) { /* a device copy */
    esk_tensor *c = dcast(loc, dcontig(loc, d), dtype < 0 ? d->dtype : dtype);
    if (c != d) return esk_tensor_value(c);
    esk_tensor *o = dnew(loc, d->dtype, d->rank, d->dims);
    esk_cu_dtod(loc, dptr(o), dptr(d) + (esk_devptr)(d->offset * esize(d->dtype)),
                (size_t)(d->size * esize(d->dtype)));
    return esk_tensor_value(o);
  }
  esk_tensor *h = esk_as_tensor(loc, "gpu-tensor", argv[0]);
  return esk_tensor_value(upload(loc, h, dtype < 0 ? h->dtype : dtype));
}

/* Dimensions d1 d2 ... or one list of them, and an optional dtype symbol last. */
static esk_tensor *filled(const char *loc, const char *who, int64_t argc, esk_value *argv, double x) {
  esk_cu_ready(loc);
  int dtype = ESK_DT_F64;
  if (argc > 0 && argv[argc - 1].tag == ESK_T_SYMBOL) dtype = dtype_arg(loc, who, argv[--argc]);
  int64_t dims[ESK_TENSOR_MAX_RANK], r = 0;
  esk_value list = argc == 1 && (argv[0].tag == ESK_T_PAIR || argv[0].tag == ESK_T_NIL) ? argv[0] : esk_nil();
  int from_list = argc == 1 && list.tag != ESK_T_NIL ? 1 : argc == 1 && argv[0].tag == ESK_T_NIL;
  for (int64_t i = 0;; i++) {
    esk_value v;
    if (from_list) {
      if (list.tag != ESK_T_PAIR) break;
      v = ((esk_pair *)esk_ptr(list))->car;
      list = ((esk_pair *)esk_ptr(list))->cdr;
    } else {
      if (i >= argc) break;
      v = argv[i];
    }
    if (v.tag != ESK_T_FIXNUM || v.payload < 0) esk_error_type(loc, who, "non-negative integer dimension", v);
    if (r >= ESK_TENSOR_MAX_RANK) esk_errorf(loc, "%s: more than %d dimensions", who, ESK_TENSOR_MAX_RANK);
    dims[r++] = v.payload;
  }
  if (dtype == ESK_DT_I64) esk_errorf(loc, "%s: i64 tensors are not supported on the GPU", who);
  esk_tensor *o = dnew(loc, dtype, r, dims);
  fill(loc, o, x);
  return o;
}

esk_value esk_prim_gpu_zeros(const char *loc, int64_t argc, esk_value *argv) {
  return esk_tensor_value(filled(loc, "gpu-zeros", argc, argv, 0.0));
}

esk_value esk_prim_gpu_ones(const char *loc, int64_t argc, esk_value *argv) {
  return esk_tensor_value(filled(loc, "gpu-ones", argc, argv, 1.0));
}

/* (gpu-matmul A B): cuBLAS when an operand is on the GPU (a host operand is copied over);
 * with both on the host it is matmul (v1.x programs use it without a GPU). */
esk_value esk_prim_gpu_matmul(const char *loc, esk_value a, esk_value b) {
  if (!esk_is_cuda_tensor(a) && !esk_is_cuda_tensor(b)) return esk_prim_matmul(loc, a, b);
  esk_value v[2] = {a, b};
  for (int i = 0; i < 2; i++)
    if (!esk_is_cuda_tensor(v[i])) {
      esk_tensor *h = esk_as_tensor(loc, "gpu-matmul", v[i]);
      v[i] = esk_tensor_value(upload(loc, h, h->dtype));
    }
  return esk_cuda_matmul(loc, "gpu-matmul", v[0], v[1]);
}

/* (gpu-to-device! t): t's elements move to the GPU; t is now a CUDA tensor. */
esk_value esk_prim_gpu_to_device(const char *loc, esk_value v) {
  esk_tensor *t = esk_to_tensor(loc, "gpu-to-device!", v);
  if (t->device == ESK_DEV_CUDA) return v;
  esk_tensor *d = upload(loc, t, t->dtype);
  memcpy(t->strides, d->strides, sizeof t->strides);
  t->offset = 0;
  t->buf = d->buf;
  t->device = ESK_DEV_CUDA;
  return v;
}

/* (gpu-to-host! t): t's elements move back to the host. */
esk_value esk_prim_gpu_to_host(const char *loc, esk_value v) {
  esk_tensor *t = esk_to_tensor(loc, "gpu-to-host!", v);
  if (t->device != ESK_DEV_CUDA) return v;
  esk_tensor *h = esk_tensor_on_host(loc, t);
  memcpy(t->strides, h->strides, sizeof t->strides);
  t->offset = h->offset;
  t->buf = h->buf;
  t->device = ESK_DEV_HOST;
  return v;
}

/* (tensor-device t): cpu or cuda:0. */
esk_value esk_prim_tensor_device(const char *loc, esk_value v) {
  const char *s = device_text(esk_to_tensor(loc, "tensor-device", v));
  return esk_intern(s, (int64_t)strlen(s));
}

esk_value esk_prim_gpu_synchronize(const char *loc) {
  esk_cu_sync(loc);
  return esk_void();
}

/* ---- with-device ------------------------------------------------------------------------- */

static int parse_device(const char *loc, esk_value v) {
  const char *s;
  if (v.tag == ESK_T_SYMBOL) s = ((esk_symbol *)esk_ptr(v))->name->data;
  else if (v.tag == ESK_T_STRING) s = ((esk_string *)esk_ptr(v))->data;
  else esk_error_type(loc, "with-device", "device name ('cpu or 'cuda:0)", v);
  if (!strcmp(s, "cpu") || !strcmp(s, "host")) return ESK_DEV_HOST;
  if (!strcmp(s, "cuda") || !strcmp(s, "gpu") || !strcmp(s, "cuda:0") || !strcmp(s, "gpu:0"))
    return ESK_DEV_CUDA;
  esk_error_with(loc, "with-device: unknown device (expected 'cpu or 'cuda:0)", v);
}

static esk_value set_device_code(esk_closure *self, int64_t argc, esk_value *argv) {
  (void)argc;
  (void)argv;
  current_device = (int)self->free[0].payload;
  return esk_void();
}

/* (%with-device dev thunk): thunk runs with creation operations allocating on dev; the
 * previous device comes back however the thunk exits (dynamic-wind). */
esk_value esk_prim_with_device(const char *loc, esk_value dev, esk_value thunk) {
  int d = parse_device(loc, dev);
  if (d == ESK_DEV_CUDA) esk_cu_ready(loc);
  esk_value in = esk_make_closure(set_device_code, "with-device", 1);
  esk_value out = esk_make_closure(set_device_code, "with-device", 1);
  ((esk_closure *)esk_ptr(in))->free[0] = esk_fixnum(d);
  ((esk_closure *)esk_ptr(out))->free[0] = esk_fixnum(current_device);
  esk_value args[3] = {in, thunk, out};
  return esk_prim_dynamic_wind(loc, 3, args);
}

/* ---- fused chains ------------------------------------------------------------------------ */

/* A chain from passes/fuse_tensors.py on CUDA operands: tensors ('t') of one float dtype and
 * one shape, contiguous; numbers where kinds says 's'.  Anything else declines, and the
 * unfused operations run (each on the GPU).  root: 0 elementwise, 1 sum, 2 max, 3 min. */
esk_value esk_cuda_fused(const char *loc, int64_t argc, const esk_value *argv, const char *kinds,
                         int64_t root, const void *f64_entry) {
  const esk_value decline = {ESK_T_DEFAULT, 0};
  int64_t index = esk_cu_fused_index(f64_entry);
  if (index < 0 || argc > 16) return decline;
  const esk_tensor *shape = NULL;
  for (int64_t i = 0; i < argc; i++) {
    if (kinds[i] == 's') {
      if (argv[i].tag != ESK_T_FLONUM && argv[i].tag != ESK_T_FIXNUM) return decline;
      continue;
    }
    const esk_tensor *t = as_cuda(argv[i]);
    if (!t || (t->dtype != ESK_DT_F64 && t->dtype != ESK_DT_F32) || !esk_tensor_is_contiguous(t))
      return decline;
    if (!shape) {
      shape = t;
    } else {
      if (t->dtype != shape->dtype || t->rank != shape->rank) return decline;
      for (int64_t d = 0; d < t->rank; d++)
        if (t->dims[d] != shape->dims[d]) return decline;
    }
  }
  if (!shape || shape->size == 0) return decline;
  char name[64];
  snprintf(name, sizeof name, root ? "fusedr%lld_%s" : "fused%lld_%s", (long long)index,
           dt_name(shape->dtype));
  if (!esk_cu_has_kernel(name)) return decline;
  int dtype = shape->dtype;
  int64_t es = esize(dtype), n = shape->size, one = 1;
  esk_kargs k = {.n = 0};
  for (int64_t i = 0; i < argc; i++) {
    if (kinds[i] == 's') {
      esk_kargs_scalar(&k, dtype, esk_number_to_double(argv[i]));
    } else { /* a contiguous memref: the data's address, offset 0 */
      const esk_tensor *t = esk_ptr(argv[i]);
      esk_kargs_memref(&k, dptr(t) + (esk_devptr)(t->offset * es), 0, 1, &n, &one);
    }
  }
  if (root == 0) {
    esk_tensor *o = dnew(loc, dtype, shape->rank, shape->dims);
    out1(&k, o);
    esk_cu_launch(loc, name, n, &k);
    return esk_tensor_value(o);
  }
  /* A reduction: the chain's partials, then the standard kernels (NaN-skipping max/min, as the
   * CPU's fused kernels), then the host. */
  int64_t parts = reduce_threads(n);
  esk_tensor *p = dnew(loc, dtype, 1, &parts);
  out1(&k, p);
  esk_cu_launch(loc, name, parts, &k);
  const char *op = root == 1 ? "sum" : root == 2 ? "maxnum" : "minnum";
  esk_tensor *h = esk_tensor_on_host(loc, reduce_partials(loc, op, p));
  double r = dtype == ESK_DT_F32 ? ((float *)esk_tensor_data(h))[0] : ((double *)esk_tensor_data(h))[0];
  for (int64_t i = 1; i < h->size; i++) {
    double x = dtype == ESK_DT_F32 ? ((float *)esk_tensor_data(h))[i] : ((double *)esk_tensor_data(h))[i];
    r = root == 1 ? r + x : root == 2 ? (x > r || r != r ? x : r) : (x < r || r != r ? x : r);
  }
  return esk_flonum(r);
}

/* (%tensor-place t): the cuda target's wrapper of creation builtins (passes/cuda_place.py). */
esk_value esk_prim_tensor_place(const char *loc, esk_value t) { return esk_tensor_place(loc, t); }

/* (transpose t [i j]) of a CUDA tensor: a permuted copy on the device (a copy, as on the host,
 * so that the result never aliases t); the host's argument errors otherwise. */
esk_value esk_cuda_transpose(const char *loc, int64_t argc, esk_value *argv) {
  esk_tensor *t = as_cuda(argv[0]);
  int64_t perm[ESK_TENSOR_MAX_RANK];
  for (int64_t i = 0; i < t->rank; i++) perm[i] = t->rank - 1 - i;
  if (argc == 3) {
    for (int64_t i = 0; i < t->rank; i++) perm[i] = i;
    int64_t ax[2];
    for (int k = 0; k < 2; k++) {
      esk_value v = argv[1 + k];
      if (v.tag != ESK_T_FIXNUM || v.payload < -t->rank || v.payload >= t->rank)
        return to_device_value(loc, esk_prim_transpose(loc, argc, (esk_value[]){host_value(loc, argv[0]), argv[1], argv[2]}));
      ax[k] = v.payload < 0 ? v.payload + t->rank : v.payload;
    }
    perm[ax[0]] = ax[1];
    perm[ax[1]] = ax[0];
  }
  esk_tensor *v = GC_MALLOC(sizeof *v);
  if (!v) esk_errorf(loc, "out of memory");
  *v = *t;
  for (int64_t i = 0; i < t->rank; i++) {
    v->dims[i] = t->dims[perm[i]];
    v->strides[i] = t->strides[perm[i]];
  }
  esk_tensor *c = dcontig(loc, v);
  if (c != v) return esk_tensor_value(c);
  esk_tensor *o = dnew(loc, t->dtype, t->rank, v->dims); /* already contiguous: still a copy */
  esk_cu_dtod(loc, dptr(o), dptr(t) + (esk_devptr)(t->offset * esize(t->dtype)),
              (size_t)(t->size * esize(t->dtype)));
  return esk_tensor_value(o);
}

/* ---- builtins without a GPU version ------------------------------------------------------- */

/* Store host tensor h (contiguous, t's shape) into CUDA tensor t's storage, t maybe a view. */
static void writeback(const char *loc, esk_tensor *t, esk_tensor *h) {
  int64_t es = esize(t->dtype);
  h = esk_tensor_contiguous(esk_tensor_astype(h, t->dtype));
  if (t->size == 0) return;
  if (esk_tensor_is_contiguous(t)) {
    esk_cu_htod(loc, dptr(t) + (esk_devptr)(t->offset * es), esk_tensor_data(h), (size_t)(t->size * es));
    return;
  }
  /* A strided view: bring the span it covers, scatter h into it, send it back. */
  int64_t lo, hi, idx[ESK_TENSOR_MAX_RANK] = {0};
  view_span(t, &lo, &hi);
  char *span = esk_alloc_atomic((size_t)((hi - lo) * es));
  esk_cu_dtoh(loc, span, dptr(t) + (esk_devptr)(lo * es), (size_t)((hi - lo) * es));
  const char *src = esk_tensor_data(h);
  for (int64_t i = 0; i < t->size; i++) {
    int64_t off = t->offset - lo;
    for (int64_t d = 0; d < t->rank; d++) off += idx[d] * t->strides[d];
    memcpy(span + off * es, src + i * es, (size_t)es);
    for (int64_t d = t->rank - 1; d >= 0 && ++idx[d] == t->dims[d]; d--) idx[d] = 0;
  }
  esk_cu_htod(loc, dptr(t) + (esk_devptr)(lo * es), span, (size_t)((hi - lo) * es));
}

esk_value esk_cuda_host_call(const char *loc, esk_value (*fn)(const char *, int64_t, esk_value *),
                             int64_t argc, esk_value *argv, int mutates) {
  esk_value h[16];
  if (argc > 16) esk_errorf(loc, "internal error: too many arguments for a host call");
  for (int64_t i = 0; i < argc; i++) h[i] = host_value(loc, argv[i]);
  esk_value r = fn(loc, argc, h);
  if (mutates && esk_is_cuda_tensor(argv[0])) {
    writeback(loc, esk_ptr(argv[0]), esk_ptr(h[0]));
    if (r.tag == h[0].tag && r.payload == h[0].payload) return argv[0];
  }
  return to_device_value(loc, r);
}

esk_value esk_cuda_host_call1(const char *loc, esk_value (*fn)(const char *, esk_value), esk_value a) {
  return to_device_value(loc, fn(loc, host_value(loc, a)));
}

esk_value esk_cuda_host_call2(const char *loc, esk_value (*fn)(const char *, esk_value, esk_value),
                              esk_value a, esk_value b, int mutates) {
  esk_value ha = host_value(loc, a), hb = host_value(loc, b);
  esk_value r = fn(loc, ha, hb);
  if (mutates && esk_is_cuda_tensor(a)) {
    writeback(loc, esk_ptr(a), esk_ptr(ha));
    if (r.tag == ha.tag && r.payload == ha.payload) return a;
  }
  return to_device_value(loc, r);
}
