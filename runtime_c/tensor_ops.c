/* Elementwise tensor operations with numpy broadcasting: the arithmetic that + - * / and the
 * math functions dispatch to (esk_tensor_arith), the named builtins (tensor-add ... tensor-log,
 * tensor-apply) and the in-place forms (tensor-add! tensor-scale! tensor-axpy! ...).
 *
 * Every operation runs through one iterator: the operands' strides are aligned to the result
 * shape (0 along broadcast dimensions), size-1 dimensions dropped and adjacent dimensions
 * merged where all operands allow it, so the innermost loop is as long as possible; the inner
 * kernels have unit-stride and scalar-operand cases written as plain loops that the C compiler
 * vectorizes.  float64 runs in typed kernels; other dtypes go through a per-element path
 * (int64 arithmetic stays exact for + - * neg abs square min max).
 *
 * dtype of a result (numpy's rules, with Scheme numbers as "weak" scalars): f64 with anything
 * is f64, f32 with f32 (or with a number) is f32, i64 with i64 (or with an exact integer) is
 * i64, i64 with f32 or an inexact number is f64; / expt atan and the transcendental functions
 * of i64 give f64. */
#include "tensor_internal.h"

enum { NARY_MAX = 3 };

/* ---- operands ------------------------------------------------------------------------------ */

/* A Scheme number seen as a rank-0 tensor without allocating. */
typedef struct {
  esk_tensor t;
  esk_tensor_buf b;
  union { double d; int64_t i; } x;
  int weak;
} operand;

static esk_tensor *scalar_operand(esk_value v, operand *o) {
  memset(&o->t, 0, sizeof o->t);
  memset(&o->b, 0, sizeof o->b);
  o->t.h.type = ESK_T_TENSOR;
  o->t.rank = 0;
  o->t.size = 1;
  o->t.buf = &o->b;
  o->b.base = &o->x;
  o->weak = 1;
  if (v.tag == ESK_T_FIXNUM) {
    o->x.i = v.payload;
    o->t.dtype = ESK_DT_I64;
  } else {
    o->x.d = esk_t_real(NULL, "", v);
    o->t.dtype = ESK_DT_F64;
  }
  return &o->t;
}

static esk_tensor *operand_of(const char *loc, const char *who, esk_value v, operand *o) {
  o->weak = 0;
  if (v.tag == ESK_T_TENSOR) {
    esk_tensor *t = TENSOR(v);
    if (t->device != ESK_DEV_HOST)
      esk_errorf(loc, "%s: the tensor is on a GPU; move it to the host first (gpu-to-host!)", who);
    return t;
  }
  if (t_is_real(v)) return scalar_operand(v, o);
  if (v.tag == ESK_T_PAIR || v.tag == ESK_T_VECTOR) return esk_as_tensor(loc, who, v);
  esk_error_type(loc, who, "tensor or number", v);
}

/* ---- result dtypes ------------------------------------------------------------------------- */

static int float_only(int op) {
  return !(op == ESK_OP_ADD || op == ESK_OP_SUB || op == ESK_OP_MUL || op == ESK_OP_NEG ||
           op == ESK_OP_ABS || op == ESK_OP_SQUARE || op == ESK_OP_MIN || op == ESK_OP_MAX);
}

static int binary_dtype(int op, const esk_tensor *a, int wa, const esk_tensor *b, int wb) {
  int da = a->dtype, db = b->dtype, r;
  if (wa && wb) r = da == ESK_DT_I64 && db == ESK_DT_I64 ? ESK_DT_I64 : ESK_DT_F64;
  else if (wa) r = db == ESK_DT_I64 && da != ESK_DT_I64 ? ESK_DT_F64 : db;
  else if (wb) r = da == ESK_DT_I64 && db != ESK_DT_I64 ? ESK_DT_F64 : da;
  else r = da == db ? da : ESK_DT_F64;
  if (r == ESK_DT_I64 && float_only(op)) r = ESK_DT_F64;
  return r;
}

static int unary_dtype(int op, const esk_tensor *a) {
  return a->dtype == ESK_DT_I64 && float_only(op) ? ESK_DT_F64 : a->dtype;
}

/* ---- broadcasting -------------------------------------------------------------------------- */

/* The broadcast shape of a and b into dims; returns the rank, or -1 when incompatible. */
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

/* The stride of t along result dimension d (of a result of rank r): 0 when broadcast. */
static inline int64_t bstride(const esk_tensor *t, int64_t d, int64_t r) {
  int64_t sd = d - (r - t->rank);
  return sd < 0 || t->dims[sd] == 1 ? 0 : t->strides[sd];
}

/* Inner loop over n elements: element offsets off[k] and strides st[k] per operand
 * (operand 0 is the result). */
typedef void (*inner_fn)(void *ctx, int64_t n, const int64_t *off, const int64_t *st);

/* Run `fn` over the shape of ops[0] (ops[1..] broadcast to it), inner dimension last. */
static void iterate(int nops, esk_tensor *const *ops, inner_fn fn, void *ctx) {
  const esk_tensor *out = ops[0];
  if (out->size == 0) return;
  int64_t r = 0, dims[ESK_TENSOR_MAX_RANK], st[NARY_MAX][ESK_TENSOR_MAX_RANK];
  for (int64_t d = 0; d < out->rank; d++) {
    if (out->dims[d] == 1) continue;
    int64_t w = r;
    /* Merge into the previous kept dimension when every operand is linear across both. */
    int merge = r > 0;
    for (int k = 0; k < nops && merge; k++)
      merge = st[k][r - 1] == bstride(ops[k], d, out->rank) * out->dims[d];
    if (merge) w = r - 1;
    for (int k = 0; k < nops; k++) st[k][w] = bstride(ops[k], d, out->rank);
    dims[w] = merge ? dims[w] * out->dims[d] : out->dims[d];
    if (!merge) r++;
  }
  if (r == 0) {
    dims[0] = 1;
    for (int k = 0; k < nops; k++) st[k][0] = 0;
    r = 1;
  }
  int64_t off[NARY_MAX], inner_st[NARY_MAX], idx[ESK_TENSOR_MAX_RANK] = {0};
  for (int k = 0; k < nops; k++) {
    off[k] = ops[k]->offset;
    inner_st[k] = st[k][r - 1];
  }
  for (;;) {
    fn(ctx, dims[r - 1], off, inner_st);
    int64_t d = r - 2;
    for (; d >= 0; d--) {
      for (int k = 0; k < nops; k++) off[k] += st[k][d];
      if (++idx[d] < dims[d]) break;
      for (int k = 0; k < nops; k++) off[k] -= st[k][d] * dims[d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

/* ---- scalar semantics (the per-element path) -------------------------------------------- */

static inline double max_d(double x, double y) { return (x != x || x > y) ? x : y; }
static inline double min_d(double x, double y) { return (x != x || x < y) ? x : y; }

static double apply2_d(int op, double x, double y) {
  switch (op) {
    case ESK_OP_ADD: return x + y;
    case ESK_OP_SUB: return x - y;
    case ESK_OP_MUL: return x * y;
    case ESK_OP_DIV: return x / y;
    case ESK_OP_EXPT: return pow(x, y);
    case ESK_OP_ATAN: return atan2(x, y);
    case ESK_OP_MAX: return max_d(x, y);
    case ESK_OP_MIN: return min_d(x, y);
    default: return NAN;
  }
}

static int64_t apply2_i(int op, int64_t x, int64_t y) {
  uint64_t ux = (uint64_t)x, uy = (uint64_t)y; /* wrap around as numpy does */
  switch (op) {
    case ESK_OP_ADD: return (int64_t)(ux + uy);
    case ESK_OP_SUB: return (int64_t)(ux - uy);
    case ESK_OP_MUL: return (int64_t)(ux * uy);
    case ESK_OP_MAX: return x > y ? x : y;
    case ESK_OP_MIN: return x < y ? x : y;
    default: return 0;
  }
}

static double apply1_d(int op, double x) {
  switch (op) {
    case ESK_OP_NEG: return -x;
    case ESK_OP_ABS: return fabs(x);
    case ESK_OP_SQUARE: return x * x;
    case ESK_OP_SQRT: return sqrt(x);
    case ESK_OP_EXP: return exp(x);
    case ESK_OP_LOG: return log(x);
    case ESK_OP_SIN: return sin(x);
    case ESK_OP_COS: return cos(x);
    case ESK_OP_TAN: return tan(x);
    case ESK_OP_ASIN: return asin(x);
    case ESK_OP_ACOS: return acos(x);
    case ESK_OP_ATAN: return atan(x);
    case ESK_OP_SINH: return sinh(x);
    case ESK_OP_COSH: return cosh(x);
    case ESK_OP_TANH: return tanh(x);
    default: return NAN;
  }
}

static int64_t apply1_i(int op, int64_t x) {
  uint64_t ux = (uint64_t)x;
  switch (op) {
    case ESK_OP_NEG: return (int64_t)(0 - ux);
    case ESK_OP_ABS: return x < 0 ? (int64_t)(0 - ux) : x;
    case ESK_OP_SQUARE: return (int64_t)(ux * ux);
    default: return 0;
  }
}

/* ---- typed float64 kernels ----------------------------------------------------------------- */

#define BIN_LOOPS(EXPR)                                                                  \
  do {                                                                                   \
    if (so == 1 && sa == 1 && sb == 1) {                                                 \
      for (int64_t i = 0; i < n; i++) { double x = a[i], y = b[i]; o[i] = (EXPR); }      \
    } else if (so == 1 && sa == 0 && sb == 1) {                                          \
      double x = a[0];                                                                   \
      for (int64_t i = 0; i < n; i++) { double y = b[i]; o[i] = (EXPR); }                \
    } else if (so == 1 && sa == 1 && sb == 0) {                                          \
      double y = b[0];                                                                   \
      for (int64_t i = 0; i < n; i++) { double x = a[i]; o[i] = (EXPR); }                \
    } else {                                                                             \
      for (int64_t i = 0; i < n; i++) {                                                  \
        double x = a[i * sa], y = b[i * sb];                                             \
        o[i * so] = (EXPR);                                                              \
      }                                                                                  \
    }                                                                                    \
  } while (0)

/* Built for AVX2 and for the baseline, chosen when the program loads (GCC ifunc): 2.5x on
 * cache-resident operands where the CPU has AVX2, and still runs everywhere. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define T_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define T_CLONES
#endif

T_CLONES static void bin_f64(int op, int64_t n, double *o, int64_t so, const double *a, int64_t sa,
                    const double *b, int64_t sb) {
  /* Contiguous/scalar operands: the generated kernel library when loaded (kernels.c). */
  if (so == 1 && esk_kernel_elementwise(op, ESK_DT_F64, n, o, a, sa, b, sb)) return;
  switch (op) {
    case ESK_OP_ADD: BIN_LOOPS(x + y); break;
    case ESK_OP_SUB: BIN_LOOPS(x - y); break;
    case ESK_OP_MUL: BIN_LOOPS(x * y); break;
    case ESK_OP_DIV: BIN_LOOPS(x / y); break;
    case ESK_OP_MAX: BIN_LOOPS(max_d(x, y)); break;
    case ESK_OP_MIN: BIN_LOOPS(min_d(x, y)); break;
    case ESK_OP_EXPT: BIN_LOOPS(pow(x, y)); break;
    case ESK_OP_ATAN: BIN_LOOPS(atan2(x, y)); break;
    default: for (int64_t i = 0; i < n; i++) o[i * so] = NAN; break;
  }
}

/* float32 operands (a weak number operand arrives as a 0-d f64: cast to f32 as numpy does),
 * computed in f32: the generic per-element path converts every element to double and back.
 * Returns 0 for the operations it does not cover. */
#define BIN_LOOPS_F32(EXPR)                                                              \
  do {                                                                                   \
    if (so == 1 && sa == 1 && sb == 1) {                                                 \
      for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); }       \
    } else if (so == 1 && sa == 1 && sb == 0) {                                          \
      float y = b[0];                                                                    \
      for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }                 \
    } else {                                                                             \
      for (int64_t i = 0; i < n; i++) {                                                  \
        float x = a[i * sa], y = b[i * sb];                                              \
        o[i * so] = (EXPR);                                                              \
      }                                                                                  \
    }                                                                                    \
  } while (0)

static inline float max_f(float x, float y) { return (x != x || x > y) ? x : y; }
static inline float min_f(float x, float y) { return (x != x || x < y) ? x : y; }

T_CLONES static int bin_f32(int op, int64_t n, float *o, int64_t so, const float *a, int64_t sa,
                            const float *b, int64_t sb) {
  switch (op) {
    case ESK_OP_ADD: BIN_LOOPS_F32(x + y); return 1;
    case ESK_OP_SUB: BIN_LOOPS_F32(x - y); return 1;
    case ESK_OP_MUL: BIN_LOOPS_F32(x * y); return 1;
    case ESK_OP_DIV: BIN_LOOPS_F32(x / y); return 1;
    case ESK_OP_MAX: BIN_LOOPS_F32(max_f(x, y)); return 1;
    case ESK_OP_MIN: BIN_LOOPS_F32(min_f(x, y)); return 1;
    default: return 0;
  }
}

#define UN_LOOPS(EXPR)                                                                   \
  do {                                                                                   \
    if (so == 1 && sa == 1) {                                                            \
      for (int64_t i = 0; i < n; i++) { double x = a[i]; o[i] = (EXPR); }                \
    } else {                                                                             \
      for (int64_t i = 0; i < n; i++) { double x = a[i * sa]; o[i * so] = (EXPR); }      \
    }                                                                                    \
  } while (0)

T_CLONES static void un_f64(int op, int64_t n, double *o, int64_t so, const double *a, int64_t sa) {
  if (so == 1 && esk_kernel_elementwise(op, ESK_DT_F64, n, o, a, sa, NULL, 0)) return;
  switch (op) {
    case ESK_OP_NEG: UN_LOOPS(-x); break;
    case ESK_OP_ABS: UN_LOOPS(fabs(x)); break;
    case ESK_OP_SQUARE: UN_LOOPS(x * x); break;
    case ESK_OP_SQRT: UN_LOOPS(sqrt(x)); break;
    case ESK_OP_EXP: UN_LOOPS(exp(x)); break;
    case ESK_OP_LOG: UN_LOOPS(log(x)); break;
    case ESK_OP_SIN: UN_LOOPS(sin(x)); break;
    case ESK_OP_COS: UN_LOOPS(cos(x)); break;
    case ESK_OP_TAN: UN_LOOPS(tan(x)); break;
    case ESK_OP_ASIN: UN_LOOPS(asin(x)); break;
    case ESK_OP_ACOS: UN_LOOPS(acos(x)); break;
    case ESK_OP_ATAN: UN_LOOPS(atan(x)); break;
    case ESK_OP_SINH: UN_LOOPS(sinh(x)); break;
    case ESK_OP_COSH: UN_LOOPS(cosh(x)); break;
    case ESK_OP_TANH: UN_LOOPS(tanh(x)); break;
    default: for (int64_t i = 0; i < n; i++) o[i * so] = NAN; break;
  }
}

/* ---- the inner functions ------------------------------------------------------------------- */

typedef struct {
  int op;
  esk_tensor *const *ops;
  int all_f64, int_path;
} ew_ctx;

static void inner_binary(void *vc, int64_t n, const int64_t *off, const int64_t *st) {
  ew_ctx *c = vc;
  void *ob = t_base(c->ops[0]);
  const void *ab = t_base(c->ops[1]), *bb = t_base(c->ops[2]);
  if (c->all_f64) {
    bin_f64(c->op, n, (double *)ob + off[0], st[0], (const double *)ab + off[1], st[1],
            (const double *)bb + off[2], st[2]);
    return;
  }
  int od = c->ops[0]->dtype, ad = c->ops[1]->dtype, bd = c->ops[2]->dtype;
  if (od == ESK_DT_F32 && (ad == ESK_DT_F32 || (ad == ESK_DT_F64 && st[1] == 0)) &&
      (bd == ESK_DT_F32 || (bd == ESK_DT_F64 && st[2] == 0)) && (ad == ESK_DT_F32 || bd == ESK_DT_F32)) {
    float x0 = ad == ESK_DT_F64 ? (float)((const double *)ab)[off[1]] : 0.0f;
    float y0 = bd == ESK_DT_F64 ? (float)((const double *)bb)[off[2]] : 0.0f;
    const float *ap = ad == ESK_DT_F64 ? &x0 : (const float *)ab + off[1];
    const float *bp = bd == ESK_DT_F64 ? &y0 : (const float *)bb + off[2];
    if (bin_f32(c->op, n, (float *)ob + off[0], st[0], ap, st[1], bp, st[2])) return;
  }
  if (c->int_path) {
    for (int64_t i = 0; i < n; i++)
      ((int64_t *)ob)[off[0] + i * st[0]] =
          apply2_i(c->op, ((const int64_t *)ab)[off[1] + i * st[1]], ((const int64_t *)bb)[off[2] + i * st[2]]);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    t_store(ob, od, off[0] + i * st[0],
            apply2_d(c->op, t_load(ab, ad, off[1] + i * st[1]), t_load(bb, bd, off[2] + i * st[2])));
}

static void inner_unary(void *vc, int64_t n, const int64_t *off, const int64_t *st) {
  ew_ctx *c = vc;
  void *ob = t_base(c->ops[0]);
  const void *ab = t_base(c->ops[1]);
  if (c->all_f64) {
    un_f64(c->op, n, (double *)ob + off[0], st[0], (const double *)ab + off[1], st[1]);
    return;
  }
  int od = c->ops[0]->dtype, ad = c->ops[1]->dtype;
  if (c->int_path) {
    for (int64_t i = 0; i < n; i++)
      ((int64_t *)ob)[off[0] + i * st[0]] = apply1_i(c->op, ((const int64_t *)ab)[off[1] + i * st[1]]);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    t_store(ob, od, off[0] + i * st[0], apply1_d(c->op, t_load(ab, ad, off[1] + i * st[1])));
}

/* out = a op b elementwise; out already has the broadcast shape. */
static void binary_into(int op, esk_tensor *out, esk_tensor *a, esk_tensor *b) {
  esk_tensor *ops[3] = {out, a, b};
  ew_ctx c = {.op = op, .ops = ops};
  c.all_f64 = out->dtype == ESK_DT_F64 && a->dtype == ESK_DT_F64 && b->dtype == ESK_DT_F64;
  c.int_path = out->dtype == ESK_DT_I64 && a->dtype == ESK_DT_I64 && b->dtype == ESK_DT_I64;
  iterate(3, ops, inner_binary, &c);
}

static void unary_into(int op, esk_tensor *out, esk_tensor *a) {
  esk_tensor *ops[2] = {out, a};
  ew_ctx c = {.op = op, .ops = ops};
  c.all_f64 = out->dtype == ESK_DT_F64 && a->dtype == ESK_DT_F64;
  c.int_path = out->dtype == ESK_DT_I64 && a->dtype == ESK_DT_I64;
  iterate(2, ops, inner_unary, &c);
}

/* ---- out-of-place operations ------------------------------------------------------------- */

static esk_value binary(const char *loc, const char *who, int op, esk_value va, esk_value vb) {
  if (esk_is_cuda_tensor(va) || esk_is_cuda_tensor(vb)) return esk_cuda_binary(loc, who, op, va, vb);
  operand oa, ob;
  esk_tensor *a = operand_of(loc, who, va, &oa), *b = operand_of(loc, who, vb, &ob);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t r = broadcast_shape(a, b, dims);
  if (r < 0) esk_error_shapes(loc, who, a, b);
  esk_tensor *out = esk_t_new(binary_dtype(op, a, oa.weak, b, ob.weak), r, dims);
  binary_into(op, out, a, b);
  return esk_tensor_value(out);
}

static esk_value unary(const char *loc, const char *who, int op, esk_value va) {
  if (esk_is_cuda_tensor(va)) return esk_cuda_unary(loc, who, op, va);
  operand oa;
  esk_tensor *a = operand_of(loc, who, va, &oa);
  esk_tensor *out = esk_t_new(unary_dtype(op, a), a->rank, a->dims);
  unary_into(op, out, a);
  return esk_tensor_value(out);
}

static const char *op_name(int op) {
  static const char *names[ESK_OP_COUNT] = {
      [ESK_OP_ADD] = "+", [ESK_OP_SUB] = "-", [ESK_OP_MUL] = "*", [ESK_OP_DIV] = "/",
      [ESK_OP_NEG] = "-", [ESK_OP_EXP] = "exp", [ESK_OP_LOG] = "log", [ESK_OP_SIN] = "sin",
      [ESK_OP_COS] = "cos", [ESK_OP_TAN] = "tan", [ESK_OP_SQRT] = "sqrt", [ESK_OP_ABS] = "abs",
      [ESK_OP_ASIN] = "asin", [ESK_OP_ACOS] = "acos", [ESK_OP_ATAN] = "atan",
      [ESK_OP_SINH] = "sinh", [ESK_OP_COSH] = "cosh", [ESK_OP_TANH] = "tanh",
      [ESK_OP_SQUARE] = "square", [ESK_OP_EXPT] = "expt", [ESK_OP_MIN] = "min",
      [ESK_OP_MAX] = "max"};
  return op >= 0 && op < ESK_OP_COUNT && names[op] ? names[op] : "arithmetic";
}

/* + - * / expt atan min max and the math functions when an operand is a tensor (numbers.c). */
int esk_tensor_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out) {
  for (int64_t i = 0; i < argc; i++)
    if (args[i].tag != ESK_T_TENSOR && !t_is_real(args[i])) return 0;
  if (argc == 1) {
    if (op == ESK_OP_ADD || op == ESK_OP_MUL || op >= ESK_OP_LT) return 0;
    *out = unary(loc, op_name(op), op, args[0]);
    return 1;
  }
  if (argc != 2) return 0;
  switch (op) {
    case ESK_OP_ADD: case ESK_OP_SUB: case ESK_OP_MUL: case ESK_OP_DIV: case ESK_OP_EXPT:
    case ESK_OP_ATAN: case ESK_OP_MIN: case ESK_OP_MAX:
      *out = binary(loc, op_name(op), op, args[0], args[1]);
      return 1;
    default:
      return 0;
  }
}

/* ---- named builtins ------------------------------------------------------------------------ */

#define NAMED_BINARY(CNAME, NAME, OP)                                                    \
  esk_value esk_prim_##CNAME(const char *loc, esk_value a, esk_value b) {                \
    T_AD_CHECK2(NAME, a, b);                                                             \
    return binary(loc, NAME, OP, a, b);                                                  \
  }
NAMED_BINARY(tensor_add, "tensor-add", ESK_OP_ADD)
NAMED_BINARY(tensor_sub, "tensor-sub", ESK_OP_SUB)
NAMED_BINARY(tensor_mul, "tensor-mul", ESK_OP_MUL)
NAMED_BINARY(tensor_div, "tensor-div", ESK_OP_DIV)
NAMED_BINARY(tensor_pow, "tensor-pow", ESK_OP_EXPT)
NAMED_BINARY(tensor_maximum, "tensor-maximum", ESK_OP_MAX)
NAMED_BINARY(tensor_minimum, "tensor-minimum", ESK_OP_MIN)

/* (tensor-scale t k) */
esk_value esk_prim_tensor_scale(const char *loc, esk_value t, esk_value k) {
  T_AD_CHECK2("tensor-scale", t, k);
  if (!t_is_real(k) && t.tag != ESK_T_TENSOR) esk_error_type(loc, "tensor-scale", "tensor", t);
  return binary(loc, "tensor-scale", ESK_OP_MUL, t, k);
}

#define NAMED_UNARY(CNAME, NAME, OP)                                                     \
  esk_value esk_prim_##CNAME(const char *loc, esk_value a) {                             \
    T_AD_CHECK1(NAME, a);                                                                \
    return unary(loc, NAME, OP, a);                                                      \
  }
NAMED_UNARY(tensor_neg, "tensor-neg", ESK_OP_NEG)
NAMED_UNARY(tensor_abs, "tensor-abs", ESK_OP_ABS)
NAMED_UNARY(tensor_sqrt, "tensor-sqrt", ESK_OP_SQRT)
NAMED_UNARY(tensor_exp, "tensor-exp", ESK_OP_EXP)
NAMED_UNARY(tensor_log, "tensor-log", ESK_OP_LOG)
NAMED_UNARY(tensor_sin, "tensor-sin", ESK_OP_SIN)
NAMED_UNARY(tensor_cos, "tensor-cos", ESK_OP_COS)
NAMED_UNARY(tensor_tan, "tensor-tan", ESK_OP_TAN)
NAMED_UNARY(tensor_tanh, "tensor-tanh", ESK_OP_TANH)
NAMED_UNARY(tensor_square, "tensor-square", ESK_OP_SQUARE)

/* (tensor-apply f t) or (tensor-apply t f): f on every element, a float64 tensor of the
 * results (an i64 tensor when t is i64 and every result is an exact integer). */
esk_value esk_prim_tensor_apply(const char *loc, esk_value a, esk_value b) {
  T_AD_CHECK2("tensor-apply", a, b);
  esk_value f = a, tv = b;
  if (!esk_is_true(esk_prim_is_procedure(loc, a)) && esk_is_true(esk_prim_is_procedure(loc, b))) {
    f = b;
    tv = a;
  }
  if (!esk_is_true(esk_prim_is_procedure(loc, f))) esk_error_type(loc, "tensor-apply", "procedure", f);
  operand o;
  esk_tensor *t = operand_of(loc, "tensor-apply", tv, &o);
  esk_tensor *src = esk_tensor_contiguous(t);
  esk_tensor *out = esk_t_new(ESK_DT_F64, t->rank, t->dims);
  double *p = t_base(out);
  for (int64_t i = 0; i < src->size; i++) {
    esk_value x = esk_tensor_elem_value(src, src->offset + i);
    esk_value y = esk_call(loc, f, 1, &x);
    if (!t_is_real(y)) {
      /* f closes over dual numbers or tape nodes: redo the whole application AD-aware. */
      if (y.tag == ESK_T_DUAL || y.tag == ESK_T_ADNODE) return esk_ad_tensor_apply(loc, a, b);
      if (!t_is_real(y)) esk_error_type(loc, "tensor-apply", "real number result", y);
    }
    p[i] = esk_t_real(loc, "tensor-apply", y);
  }
  return esk_tensor_value(out);
}

/* ---- in place ------------------------------------------------------------------------------ */

static esk_tensor *mutable_tensor(const char *loc, const char *who, esk_value v) {
  esk_tensor *t = esk_to_tensor(loc, who, v);
  if (t->h.flags & ESK_F_IMMUTABLE) esk_error_with(loc, "attempt to modify a constant tensor:", v);
  if (t->device != ESK_DEV_HOST)
    esk_errorf(loc, "%s: the tensor is on a GPU; move it to the host first (gpu-to-host!)", who);
  return t;
}

/* dst op= src, src broadcast to dst's shape; dst keeps its dtype. */
static void binary_in_place(const char *loc, const char *who, int op, esk_tensor *dst, esk_value vsrc) {
  operand o;
  esk_tensor *src = operand_of(loc, who, vsrc, &o);
  int64_t dims[ESK_TENSOR_MAX_RANK];
  int64_t r = broadcast_shape(dst, src, dims);
  if (r != dst->rank || memcmp(dims, dst->dims, (size_t)r * sizeof(int64_t)))
    esk_error_shapes(loc, who, dst, src);
  if (src->buf == dst->buf && src != dst) { /* a view of the same data: read from a copy */
    esk_tensor *c = esk_t_new(src->dtype, src->rank, src->dims);
    esk_t_copy_into(c, src);
    src = c;
  }
  binary_into(op, dst, dst, src);
}

#define NAMED_IN_PLACE(CNAME, NAME, OP)                                                  \
  esk_value esk_prim_##CNAME(const char *loc, esk_value a, esk_value b) {                \
    T_AD_CHECK2(NAME, a, b);                                                             \
    binary_in_place(loc, NAME, OP, mutable_tensor(loc, NAME, a), b);                     \
    return a;                                                                            \
  }
NAMED_IN_PLACE(tensor_add_bang, "tensor-add!", ESK_OP_ADD)
NAMED_IN_PLACE(tensor_sub_bang, "tensor-sub!", ESK_OP_SUB)
NAMED_IN_PLACE(tensor_mul_bang, "tensor-mul!", ESK_OP_MUL)
NAMED_IN_PLACE(tensor_div_bang, "tensor-div!", ESK_OP_DIV)

esk_value esk_prim_tensor_scale_bang(const char *loc, esk_value t, esk_value k) {
  T_AD_CHECK2("tensor-scale!", t, k);
  if (!t_is_real(k)) esk_error_type(loc, "tensor-scale!", "real number", k);
  binary_in_place(loc, "tensor-scale!", ESK_OP_MUL, mutable_tensor(loc, "tensor-scale!", t), k);
  return t;
}

/* (tensor-axpy! y a x) or BLAS order (tensor-axpy! a x y): y += a*x; returns y. */
esk_value esk_prim_tensor_axpy_bang(const char *loc, int64_t argc, esk_value *argv) {
  T_AD_CHECK("tensor-axpy!", argc, argv);
  esk_value y = argv[0], a = argv[1], x = argv[2];
  if (t_is_real(argv[0])) {
    a = argv[0];
    x = argv[1];
    y = argv[2];
  }
  if (!t_is_real(a)) esk_error_type(loc, "tensor-axpy!", "real number (the scale a)", a);
  esk_tensor *dst = mutable_tensor(loc, "tensor-axpy!", y);
  operand o;
  esk_tensor *src = operand_of(loc, "tensor-axpy!", x, &o);
  if (dst->dtype == ESK_DT_F64 && src->dtype == ESK_DT_F64 && src->buf != dst->buf &&
      esk_tensor_is_contiguous(dst) && esk_tensor_is_contiguous(src) && src->rank == dst->rank &&
      !memcmp(src->dims, dst->dims, (size_t)dst->rank * sizeof(int64_t))) {
    double k = esk_t_real(loc, "tensor-axpy!", a), *yp = (double *)t_base(dst) + dst->offset;
    const double *xp = (const double *)t_base(src) + src->offset;
    for (int64_t i = 0; i < dst->size; i++) yp[i] += k * xp[i];
    return y;
  }
  esk_value scaled = binary(loc, "tensor-axpy!", ESK_OP_MUL, x, a);
  binary_in_place(loc, "tensor-axpy!", ESK_OP_ADD, dst, scaled);
  return y;
}
