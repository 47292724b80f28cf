/* Tensor creation builtins: literals, tensor, zeros/ones, make-tensor, eye, arange, linspace,
 * random tensors (xoshiro256** seeded by random-seed!), the -like forms, tensor-fill,
 * conversions to and from lists and vectors, and tensor-astype.  Creation functions accept an
 * optional trailing dtype symbol ('f64 'f32 'i64); float64 is the default. */
#include <stdlib.h>

#include "tensor_internal.h"

/* ---- dtype arguments ------------------------------------------------------------------------ */

/* If the last argument is a dtype symbol, drop it and return the dtype; else F64. */
static int trailing_dtype(const char *loc, const char *who, int64_t *argc, const esk_value *argv) {
  if (*argc == 0 || argv[*argc - 1].tag != ESK_T_SYMBOL) return ESK_DT_F64;
  esk_string *n = ((esk_symbol *)esk_ptr(argv[*argc - 1]))->name;
  int dt = esk_dtype_from_name(n->data);
  if (dt < 0) esk_error_with(loc, "unknown tensor dtype (expected f64, f32 or i64):", argv[*argc - 1]);
  (void)who;
  (*argc)--;
  return dt;
}

static int dtype_arg(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_SYMBOL) esk_error_type(loc, who, "dtype symbol (f64, f32 or i64)", v);
  int dt = esk_dtype_from_name(((esk_symbol *)esk_ptr(v))->name->data);
  if (dt < 0) esk_error_with(loc, "unknown tensor dtype (expected f64, f32 or i64):", v);
  return dt;
}

static esk_value filled(int dtype, int64_t rank, const int64_t *dims, double x) {
  esk_tensor *t = esk_t_new(dtype, rank, dims);
  esk_t_fill(t, x);
  return esk_tensor_value(t);
}

/* ---- literals --------------------------------------------------------------------------- */

static int64_t literal_shape(const char *loc, esk_value shape, int64_t *dims) {
  return esk_t_shape_args(loc, "tensor literal", 1, &shape, dims);
}

/* (%tensor-literal #(d1 ... dk) e1 ... en): the expander's expansion of #(...) with computed
 * elements.  Elements that are tensors of one shape stack into the trailing dimensions. */
esk_value esk_prim_tensor_literal(const char *loc, int64_t argc, esk_value *argv) {
  T_AD_CHECK("%tensor-literal", argc, argv);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t rank = literal_shape(loc, argv[0], dims);
  int64_t n = argc - 1;
  if (n > 0 && argv[1].tag == ESK_T_TENSOR) {
    esk_tensor *e = TENSOR(argv[1]);
    if (rank + e->rank > ESK_TENSOR_MAX_RANK)
      esk_errorf(loc, "tensor literal: at most %d dimensions are supported", ESK_TENSOR_MAX_RANK);
    int64_t all[ESK_TENSOR_MAX_RANK];
    memcpy(all, dims, (size_t)rank * sizeof(int64_t));
    memcpy(all + rank, e->dims, (size_t)e->rank * sizeof(int64_t));
    esk_tensor *t = esk_t_new(ESK_DT_F64, rank + e->rank, all);
    for (int64_t i = 0; i < n; i++) {
      esk_value x = argv[1 + i];
      if (x.tag != ESK_T_TENSOR) esk_error_type(loc, "tensor literal", "tensor (like the first element)", x);
      esk_tensor *xt = TENSOR(x);
      if (xt->rank != e->rank || memcmp(xt->dims, e->dims, (size_t)e->rank * sizeof(int64_t)))
        esk_error_shapes(loc, "tensor literal", e, xt);
      esk_tensor dst = *t;
      dst.rank = e->rank;
      dst.offset = i * e->size;
      memcpy(dst.dims, e->dims, sizeof dst.dims);
      esk_t_row_major(e->rank, e->dims, dst.strides);
      dst.size = e->size;
      esk_t_copy_into(&dst, xt);
    }
    return esk_tensor_value(t);
  }
  esk_tensor *t = esk_t_new(ESK_DT_F64, rank, dims);
  double *p = t_base(t);
  for (int64_t i = 0; i < n; i++) p[i] = esk_t_real(loc, "tensor literal", argv[1 + i]);
  return esk_tensor_value(t);
}

/* (%tensor-const #(d1 ... dk) #(x ...)): a literal whose elements are all numeric constants;
 * a fresh tensor each time (tensors are mutable). */
esk_value esk_prim_tensor_const(const char *loc, esk_value shape, esk_value data) {
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t rank = literal_shape(loc, shape, dims);
  esk_tensor *t = esk_t_new(ESK_DT_F64, rank, dims);
  esk_vector *v = esk_ptr(data);
  double *p = t_base(t);
  for (int64_t i = 0; i < v->len && i < t->size; i++) p[i] = esk_t_real(loc, "tensor literal", v->items[i]);
  return esk_tensor_value(t);
}

/* ---- tensor, zeros, ones, make-tensor, eye ------------------------------------------------ */

static int is_dim_list(esk_value v, int64_t *prod) {
  int64_t p = 1;
  for (; v.tag == ESK_T_PAIR; v = ((esk_pair *)esk_ptr(v))->cdr) {
    esk_value d = ((esk_pair *)esk_ptr(v))->car;
    if (d.tag != ESK_T_FIXNUM || d.payload < 0 || d.payload > ((int64_t)1 << 40)) return 0;
    p *= d.payload;
    if (p > ((int64_t)1 << 48)) return 0;
  }
  *prod = p;
  return v.tag == ESK_T_NIL;
}

/* (tensor '(2 3) data) | (tensor collection) | (tensor d1 .. dk e1 .. en) | (tensor e ...),
 * each with an optional trailing dtype symbol (see DESIGN-NOTES "Tensors"). */
esk_value esk_prim_tensor(const char *loc, int64_t argc, esk_value *argv) {
  T_AD_CHECK("tensor", argc, argv);
  int dt = trailing_dtype(loc, "tensor", &argc, argv);
  int64_t prod;
  if (argc == 2 && is_dim_list(argv[0], &prod) &&
      (argv[1].tag == ESK_T_PAIR || argv[1].tag == ESK_T_VECTOR || argv[1].tag == ESK_T_TENSOR ||
       argv[1].tag == ESK_T_NIL)) {
    esk_tensor *data = esk_t_from_nested(loc, "tensor", argv[1], dt);
    int64_t dims[ESK_TENSOR_MAX_RANK];
    int64_t rank = esk_t_shape_args(loc, "tensor", 1, argv, dims);
    if (data->size != prod) {
      char s[256];
      esk_tensor shape = {.rank = rank};
      memcpy(shape.dims, dims, (size_t)rank * sizeof(int64_t));
      esk_errorf(loc, "tensor: shape %s needs %lld elements, got %lld",
                 esk_shape_text(&shape, s, sizeof s), (long long)prod, (long long)data->size);
    }
    data->rank = rank;
    memcpy(data->dims, dims, sizeof data->dims);
    esk_t_row_major(rank, dims, data->strides);
    return esk_tensor_value(data);
  }
  if (argc == 1 && (argv[0].tag == ESK_T_PAIR || argv[0].tag == ESK_T_VECTOR ||
                    argv[0].tag == ESK_T_NIL || argv[0].tag == ESK_T_TENSOR))
    return esk_tensor_value(esk_t_from_nested(loc, "tensor", argv[0], dt));
  /* v1.x: leading exact integers are a shape when their product is the count of the rest. */
  int64_t p = 1;
  for (int64_t k = 1; k < argc && k <= ESK_TENSOR_MAX_RANK; k++) {
    esk_value d = argv[k - 1];
    if (d.tag != ESK_T_FIXNUM || d.payload < 0 || d.payload > ((int64_t)1 << 40)) break;
    p *= d.payload;
    if (p == argc - k) {
      int64_t dims[ESK_TENSOR_MAX_RANK];
      for (int64_t i = 0; i < k; i++) dims[i] = argv[i].payload;
      esk_tensor *t = esk_t_new(dt, k, dims);
      for (int64_t i = 0; i < p; i++) t_store(t_base(t), dt, i, esk_t_real(loc, "tensor", argv[k + i]));
      return esk_tensor_value(t);
    }
    if (p > argc) break;
  }
  if (argc > 0 && (argv[0].tag == ESK_T_PAIR || argv[0].tag == ESK_T_VECTOR || argv[0].tag == ESK_T_TENSOR))
    return esk_tensor_value(esk_t_from_nested(loc, "tensor", esk_list_from_args(argc, argv), dt));
  int64_t n = argc;
  esk_tensor *t = esk_t_new(dt, 1, &n);
  for (int64_t i = 0; i < n; i++) {
    if (dt == ESK_DT_I64 && argv[i].tag == ESK_T_FIXNUM) ((int64_t *)t_base(t))[i] = argv[i].payload;
    else t_store(t_base(t), dt, i, esk_t_real(loc, "tensor", argv[i]));
  }
  return esk_tensor_value(t);
}

static esk_value const_tensor(const char *loc, const char *who, int64_t argc, esk_value *argv, double x) {
  int dt = trailing_dtype(loc, who, &argc, argv);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t rank = esk_t_shape_args(loc, who, argc, argv, dims);
  return filled(dt, rank, dims, x);
}

esk_value esk_prim_zeros(const char *loc, int64_t argc, esk_value *argv) {
  return const_tensor(loc, "zeros", argc, argv, 0.0);
}

esk_value esk_prim_ones(const char *loc, int64_t argc, esk_value *argv) {
  return const_tensor(loc, "ones", argc, argv, 1.0);
}

/* (make-tensor shape [fill [dtype]]) */
esk_value esk_prim_make_tensor(const char *loc, int64_t argc, esk_value *argv) {
  int dt = trailing_dtype(loc, "make-tensor", &argc, argv);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t rank = esk_t_shape_args(loc, "make-tensor", 1, argv, dims);
  if (argc > 2) esk_errorf(loc, "make-tensor: expected (make-tensor shape [fill] [dtype])");
  if (argc == 2 && dt == ESK_DT_I64 && argv[1].tag == ESK_T_FIXNUM) {
    esk_tensor *t = esk_t_new(dt, rank, dims);
    for (int64_t i = 0; i < t->size; i++) ((int64_t *)t_base(t))[i] = argv[1].payload;
    return esk_tensor_value(t);
  }
  return filled(dt, rank, dims, argc == 2 ? esk_t_real(loc, "make-tensor", argv[1]) : 0.0);
}

/* (eye n [m] [dtype]) */
esk_value esk_prim_eye(const char *loc, int64_t argc, esk_value *argv) {
  int dt = trailing_dtype(loc, "eye", &argc, argv);
  if (argc < 1 || argc > 2) esk_errorf(loc, "eye: expected (eye n [m] [dtype])");
  int64_t dims[2];
  dims[0] = esk_t_dim(loc, "eye", argv[0]);
  dims[1] = argc == 2 ? esk_t_dim(loc, "eye", argv[1]) : dims[0];
  esk_tensor *t = esk_tensor_zeros(dt, 2, dims);
  int64_t n = dims[0] < dims[1] ? dims[0] : dims[1];
  for (int64_t i = 0; i < n; i++) t_store(t_base(t), dt, i * dims[1] + i, 1.0);
  return esk_tensor_value(t);
}

/* (arange n) | (arange a b) | (arange a b step), end exclusive, with optional dtype. */
esk_value esk_prim_arange(const char *loc, int64_t argc, esk_value *argv) {
  int dt = trailing_dtype(loc, "arange", &argc, argv);
  if (argc < 1 || argc > 3) esk_errorf(loc, "arange: expected (arange n) or (arange start end [step])");
  double a = 0, b, step = 1;
  if (argc == 1) b = esk_t_real(loc, "arange", argv[0]);
  else {
    a = esk_t_real(loc, "arange", argv[0]);
    b = esk_t_real(loc, "arange", argv[1]);
    if (argc == 3) step = esk_t_real(loc, "arange", argv[2]);
  }
  if (step == 0 || !isfinite(step) || !isfinite(a) || !isfinite(b))
    esk_errorf(loc, "arange: step must be a non-zero finite number and the bounds finite");
  double count = ceil((b - a) / step);
  if (count < 0) count = 0;
  if (count > (double)((int64_t)1 << 40)) esk_errorf(loc, "arange: too many elements");
  int64_t n = (int64_t)count;
  esk_tensor *t = esk_t_new(dt, 1, &n);
  for (int64_t i = 0; i < n; i++) t_store(t_base(t), dt, i, a + (double)i * step);
  return esk_tensor_value(t);
}

/* (linspace start end n): n points, both ends included (numpy's formula). */
esk_value esk_prim_linspace(const char *loc, int64_t argc, esk_value *argv) {
  int dt = trailing_dtype(loc, "linspace", &argc, argv);
  if (argc != 3) esk_errorf(loc, "linspace: expected (linspace start end n)");
  double a = esk_t_real(loc, "linspace", argv[0]), b = esk_t_real(loc, "linspace", argv[1]);
  int64_t n = esk_t_dim(loc, "linspace", argv[2]);
  esk_tensor *t = esk_t_new(dt, 1, &n);
  double step = n > 1 ? (b - a) / (double)(n - 1) : 0.0;
  for (int64_t i = 0; i < n; i++) t_store(t_base(t), dt, i, a + (double)i * step);
  if (n > 1) t_store(t_base(t), dt, n - 1, b);
  return esk_tensor_value(t);
}

/* ---- random tensors ------------------------------------------------------------------------ */

static uint64_t rng[4] = {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull,
                          0x2545F4914F6CDD1Dull};
static int rng_have_spare;
static double rng_spare;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(void) {
  uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
  rng[2] ^= rng[0];
  rng[3] ^= rng[1];
  rng[1] ^= rng[2];
  rng[0] ^= rng[3];
  rng[2] ^= t;
  rng[3] = rotl(rng[3], 45);
  return r;
}

void esk_random_seed(uint64_t seed) {
  for (int i = 0; i < 4; i++) { /* splitmix64 */
    uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    rng[i] = z ^ (z >> 31);
  }
  rng_have_spare = 0;
}

double esk_random_uniform(void) { return (double)(rng_next() >> 11) * 0x1.0p-53; }

double esk_random_normal(void) { /* Marsaglia's polar method */
  if (rng_have_spare) {
    rng_have_spare = 0;
    return rng_spare;
  }
  double u, v, s;
  do {
    u = 2.0 * esk_random_uniform() - 1.0;
    v = 2.0 * esk_random_uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  double m = sqrt(-2.0 * log(s) / s);
  rng_spare = v * m;
  rng_have_spare = 1;
  return u * m;
}

static esk_value random_tensor(const char *loc, const char *who, int64_t argc, esk_value *argv,
                               double (*gen)(void)) {
  int dt = trailing_dtype(loc, who, &argc, argv);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t rank = esk_t_shape_args(loc, who, argc, argv, dims);
  esk_tensor *t = esk_t_new(dt, rank, dims);
  for (int64_t i = 0; i < t->size; i++) t_store(t_base(t), dt, i, gen());
  return esk_tensor_value(t);
}

esk_value esk_prim_rand(const char *loc, int64_t argc, esk_value *argv) {
  return random_tensor(loc, "rand", argc, argv, esk_random_uniform);
}

esk_value esk_prim_randn(const char *loc, int64_t argc, esk_value *argv) {
  return random_tensor(loc, "randn", argc, argv, esk_random_normal);
}

esk_value esk_prim_random_tensor(const char *loc, int64_t argc, esk_value *argv) {
  return random_tensor(loc, "random-tensor", argc, argv, esk_random_uniform);
}

esk_value esk_prim_random_seed(const char *loc, esk_value seed) {
  if (seed.tag != ESK_T_FIXNUM) esk_error_type(loc, "random-seed!", "exact integer", seed);
  esk_random_seed((uint64_t)seed.payload);
  return esk_void();
}

/* ---- -like, fill, conversions -------------------------------------------------------------- */

esk_value esk_prim_zeros_like(const char *loc, esk_value a) {
  T_AD_CHECK1("zeros-like", a);
  esk_tensor *t = esk_as_tensor(loc, "zeros-like", a);
  return esk_tensor_value(esk_tensor_zeros(t->dtype, t->rank, t->dims));
}

esk_value esk_prim_ones_like(const char *loc, esk_value a) {
  T_AD_CHECK1("ones-like", a);
  esk_tensor *t = esk_as_tensor(loc, "ones-like", a);
  return filled(t->dtype, t->rank, t->dims, 1.0);
}

/* (tensor-fill t v) fills t in place and returns it; (tensor-fill shape v) makes a new one. */
esk_value esk_prim_tensor_fill(const char *loc, esk_value a, esk_value v) {
  T_AD_CHECK2("tensor-fill", a, v);
  if (esk_is_cuda_tensor(a) || esk_is_cuda_tensor(v)) return esk_cuda_host_call2(loc, esk_prim_tensor_fill, a, v, 1);
  double x = esk_t_real(loc, "tensor-fill", v);
  if (a.tag == ESK_T_TENSOR) {
    esk_t_fill(TENSOR(a), x);
    return a;
  }
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t rank = esk_t_shape_args(loc, "tensor-fill", 1, &a, dims);
  return filled(ESK_DT_F64, rank, dims, x);
}

/* (list->tensor list [dtype]), also vector->tensor: shape from the nesting. */
esk_value esk_prim_list_to_tensor(const char *loc, int64_t argc, esk_value *argv) {
  int dt = argc > 1 ? dtype_arg(loc, "list->tensor", argv[1]) : ESK_DT_F64;
  if (argv[0].tag != ESK_T_PAIR && argv[0].tag != ESK_T_NIL && argv[0].tag != ESK_T_VECTOR)
    esk_error_type(loc, "list->tensor", "list", argv[0]);
  return esk_tensor_value(esk_t_from_nested(loc, "list->tensor", argv[0], dt));
}

esk_value esk_prim_vector_to_tensor(const char *loc, int64_t argc, esk_value *argv) {
  int dt = argc > 1 ? dtype_arg(loc, "vector->tensor", argv[1]) : ESK_DT_F64;
  if (argv[0].tag == ESK_T_TENSOR) return esk_tensor_value(esk_tensor_astype(TENSOR(argv[0]), dt));
  if (argv[0].tag != ESK_T_VECTOR) esk_error_type(loc, "vector->tensor", "vector", argv[0]);
  return esk_tensor_value(esk_t_from_nested(loc, "vector->tensor", argv[0], dt));
}

static esk_value nested_list(const esk_tensor *t, int64_t d, int64_t off) {
  if (d == t->rank) return esk_tensor_elem_value(t, off);
  esk_value r = esk_nil();
  for (int64_t i = t->dims[d] - 1; i >= 0; i--) r = esk_cons(nested_list(t, d + 1, off + i * t->strides[d]), r);
  return r;
}

/* (tensor->list t): nested lists (a rank-0 tensor gives its element). */
esk_value esk_prim_tensor_to_list(const char *loc, esk_value a) {
  T_AD_CHECK1("tensor->list", a);
  esk_tensor *t = esk_to_tensor(loc, "tensor->list", a);
  return nested_list(t, 0, t->offset);
}

/* (tensor->vector t), (tensor-data t): a flat Scheme vector of the elements, row-major. */
esk_value esk_prim_tensor_to_vector(const char *loc, esk_value a) {
  T_AD_CHECK1("tensor->vector", a);
  esk_tensor *t = esk_to_tensor(loc, "tensor->vector", a);
  esk_value r = esk_make_vector(t->size, esk_fixnum(0));
  esk_value *items = ((esk_vector *)esk_ptr(r))->items;
  esk_tensor *c = esk_tensor_contiguous(t);
  for (int64_t i = 0; i < c->size; i++) items[i] = esk_tensor_elem_value(c, c->offset + i);
  return r;
}

/* (tensor-astype t 'f32): a converted copy (t itself when the dtype already matches). */
esk_value esk_prim_tensor_astype(const char *loc, esk_value a, esk_value d) {
  T_AD_CHECK2("tensor-astype", a, d);
  esk_tensor *t = esk_to_tensor(loc, "tensor-astype", a);
  return esk_tensor_value(esk_tensor_astype(t, dtype_arg(loc, "tensor-astype", d)));
}
