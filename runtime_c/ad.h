/* Runtime automatic differentiation: the interface between ad.c (dual numbers, tape nodes, the
 * generic dispatcher), ad_rules.c (the derivative rules of every differentiable builtin),
 * ad_tensor.c (tensor kernels the rules need) and ad_forms.c (the calculus procedures).
 * Private to the runtime; docs/DESIGN-NOTES.md ("Runtime AD") explains the design.
 *
 * Values under differentiation are "AD values": a dual number (forward mode) or a tape node
 * (reverse mode).  Each carries a perturbation tag, a fresh integer per differentiation call
 * (derivative, gradient, ...); later calls get larger tags.  An AD value with tag t only ever
 * wraps values whose tags are < t (the outermost layer has the largest tag), which is what
 * makes nested differentiation free of perturbation confusion. */
#ifndef ESHKOL_AD_H
#define ESHKOL_AD_H

#include "eshkol_rt.h"

/* The zero tangent / adjoint ("no perturbation").  An exact 0, so a zero derivative of an
 * exact computation stays exact; the rules skip work on it. */
#define AD_ZERO ((esk_value){ESK_T_FIXNUM, 0})
static inline int ad_is_zero(esk_value v) { return v.tag == ESK_T_FIXNUM && v.payload == 0; }
static inline int ad_is_ad(esk_value v) { return v.tag == ESK_T_DUAL || v.tag == ESK_T_ADNODE; }

/* primal + tangent * e_tag */
typedef struct esk_dual {
  esk_header h;        /* ESK_T_DUAL */
  int64_t tag;
  esk_value primal, tangent;
} esk_dual;

typedef struct ad_rule ad_rule;
typedef struct esk_tape esk_tape;

/* One operation recorded on a tape. */
typedef struct esk_adnode {
  esk_header h;        /* ESK_T_ADNODE */
  int64_t tag;         /* == tape->tag */
  esk_tape *tape;
  int64_t index;       /* position on the tape */
  const ad_rule *rule; /* NULL for an input (a gradient's point) */
  esk_value value;     /* the primal (may itself be an AD value of a smaller tag) */
  esk_value adj;       /* accumulated adjoint, AD_ZERO until something flows in */
  int32_t adj_owned;   /* adj is a plain contiguous tensor referenced only here (update in place) */
  int32_t nin;
  esk_value in[];      /* operands; those that are nodes of the same tape are the parents */
} esk_adnode;

/* A tape: the nodes of one reverse-mode differentiation, in creation order. */
struct esk_tape {
  int64_t tag;
  int64_t active;      /* cleared when its gradient call returns: stray nodes become constants */
  int64_t len, cap;
  esk_adnode **nodes;
  esk_tape *outer;     /* the enclosing active tape (checkpoint-segment uses the innermost) */
};

/* The derivative rules of one operation.  `primal` computes the result on plain (non-AD)
 * arguments.  `jvp` returns the result's tangent from the primal arguments p, their tangents d
 * (AD_ZERO for arguments that are not perturbed) and the result r.  `vjp` sets out[i] to the
 * cotangent of argument i, for each i with need[i], from the result's cotangent g.  The rules
 * compute with ad_call and the ad_* helpers, never with raw doubles, so that they are
 * themselves differentiable: that is what makes every nesting (forward over reverse, reverse
 * over reverse, ...) work.  A NULL jvp/vjp means a zero derivative (sign, masks). */
struct ad_rule {
  const char *name;
  esk_value (*primal)(const char *loc, int64_t n, const esk_value *a);
  esk_value (*jvp)(const char *loc, int64_t n, const esk_value *p, const esk_value *d,
                   esk_value r);
  void (*vjp)(const char *loc, int64_t n, const esk_value *p, esk_value r, esk_value g,
              const int *need, esk_value *out);
  /* Optional: add cotangent g of node nd into parent (argument i) in place; returns 1 when
   * done (tensor-get's sparse update), 0 to fall back to vjp. */
  int (*accum)(const char *loc, esk_adnode *nd, esk_value g, int i, esk_adnode *parent);
  /* Optional, scalar rules of at most two arguments: the partial derivatives dp[i] of the
   * result r at double arguments p.  The fast path for flonum operands (no generic calls). */
  void (*partials)(const double *p, double r, double *dp);
};

/* ---- core (ad.c) ------------------------------------------------------------------------- */
static inline esk_dual *ad_dual_of(esk_value v) { return (esk_dual *)esk_ptr(v); }
static inline esk_adnode *ad_node_of(esk_value v) { return (esk_adnode *)esk_ptr(v); }

/* Apply rule r to n arguments, any of which may be AD values: the heart of the runtime. */
esk_value ad_call(const char *loc, const ad_rule *r, int64_t n, const esk_value *args);
esk_value ad_call1(const char *loc, const ad_rule *r, esk_value a);
esk_value ad_call2(const char *loc, const ad_rule *r, esk_value a, esk_value b);
/* Arithmetic for rules: AD-aware, and AD_ZERO-absorbing (0 + x = x, 0 * x = 0). */
esk_value ad_add(const char *loc, esk_value a, esk_value b);
esk_value ad_sub(const char *loc, esk_value a, esk_value b);
esk_value ad_mul(const char *loc, esk_value a, esk_value b);
esk_value ad_div(const char *loc, esk_value a, esk_value b);
esk_value ad_neg(const char *loc, esk_value a);

int64_t ad_new_tag(void);
esk_value ad_make_dual(int64_t tag, esk_value primal, esk_value tangent);
/* The plain value under every AD layer. */
esk_value ad_plain(esk_value v);
/* The coefficient of e_tag in v (AD_ZERO when v does not depend on it). */
esk_value ad_tangent(esk_value v, int64_t tag);
/* v with its e_tag part dropped. */
esk_value ad_primal_at(esk_value v, int64_t tag);

esk_tape *ad_tape_begin(void);           /* a fresh tape with a fresh tag, made innermost */
void ad_tape_end(esk_tape *t);           /* deactivate and pop */
esk_tape *ad_tape_innermost(void);
esk_value ad_tape_input(esk_tape *t, esk_value value);
/* Seed node `out` with adjoint `seed` and propagate back to (and including) index `stop`. */
void ad_backward(const char *loc, esk_tape *t, esk_adnode *out, esk_value seed, int64_t stop);
/* Record the checkpoint node that replaces the nodes [start, len) made by `thunk`. */
esk_value ad_checkpoint(const char *loc, esk_tape *t, int64_t start, esk_value thunk,
                        esk_value result);

/* "who: cannot differentiate through who ..." (also used by esk_error_type for AD values). */
_Noreturn void esk_ad_not_differentiable(const char *loc, const char *who, esk_value got);

/* ---- rules (ad_rules.c) ------------------------------------------------------------------- */
/* The rule of numbers.c's ESK_OP_* with argc operands, or NULL. */
const ad_rule *ad_rule_for_op(int op, int64_t argc);
/* The rule of a builtin by its Eshkol name (tensor prims, exact->inexact, ...), or NULL. */
const ad_rule *ad_rule_by_name(const char *name);
extern const ad_rule ad_r_checkpoint;

/* ---- shapes and tensors (ad_tensor.c) ---------------------------------------------------- */
/* Broadcast x to the shape of `like` / sum x down to the shape of `like` (numpy rules); x
 * itself when the shapes already agree.  Both are AD-aware. */
esk_value ad_bcast_like(const char *loc, esk_value x, esk_value like);
esk_value ad_unbcast_like(const char *loc, esk_value x, esk_value like);
/* A plain zero shaped like the plain value under v: 0 / 0.0 for numbers (exact when
 * `exact`), a zero tensor of the same shape and dtype for tensors. */
esk_value ad_zeros_like(esk_value v, int exact);
/* Stack n values of one shape (AD_ZERO counts as zeros of that shape) as the blocks of a new
 * leading axis: n scalars give a vector, n vectors of length m an n x m matrix.  AD-aware;
 * AD_ZERO when every value is. */
esk_value ad_stack(const char *loc, int64_t n, const esk_value *xs);
/* x's elements in the given shape; a matrix transposed.  AD-aware. */
esk_value ad_reshape(const char *loc, esk_value x, int64_t rank, const int64_t *dims);
esk_value ad_transpose(const char *loc, esk_value x);
/* Element k of a vector / the flat element k of any tensor, AD-aware. */
esk_value ad_flat_ref(const char *loc, esk_value t, int64_t k);
/* A plain tensor shaped like `like`'s plain value with a 1 at flat index k, 0 elsewhere. */
esk_value ad_onehot_like(esk_value like, int64_t k);
/* Number of elements of v's plain value (1 for numbers). */
int64_t ad_size(esk_value v);
/* The point given to a calculus procedure as something f can take: tensors, numbers and AD
 * values as they are; Scheme vectors and lists of numbers as f64 tensors (AD-aware). */
esk_value ad_as_point(const char *loc, const char *who, esk_value v);

/* Plain kernels the scalar rules use on tensors: elementwise sign; the 0/1 mask of where min
 * (want_max 0) or max picks a (fixnum 1/0 when a and b are both numbers). */
esk_value ad_tensor_sign(const char *loc, esk_value p);
esk_value ad_tensor_pick_mask(const char *loc, esk_value a, esk_value b, int want_max);
/* The rule of a tensor builtin by name, or NULL. */
const ad_rule *ad_tensor_rule_by_name(const char *name);
/* Builtins handled by more than one rule application (tensor-apply, tensor): 1 and *out set,
 * or 0. */
int ad_tensor_special(const char *loc, const char *name, int64_t argc, const esk_value *argv,
                      esk_value *out);

/* Tensor builtins (tensor_*.c, registered in eshkol/dialect/prims_tensor.py) the rules call
 * for their plain results; not in the public header. */
esk_value esk_prim_tensor_get(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_ref(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_vref(const char *loc, esk_value v, esk_value k);
esk_value esk_prim_tensor_literal(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_sum(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_mean(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_max(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_min(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_reshape(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_flatten(const char *loc, esk_value a);
esk_value esk_prim_tensor_shape(const char *loc, esk_value a);
esk_value esk_prim_tensor_rank(const char *loc, esk_value a);
esk_value esk_prim_tensor_size(const char *loc, esk_value a);
esk_value esk_prim_tensor_dtype(const char *loc, esk_value a);
esk_value esk_prim_zeros_like(const char *loc, esk_value a);
esk_value esk_prim_ones_like(const char *loc, esk_value a);
esk_value esk_prim_tensor_astype(const char *loc, esk_value a, esk_value dtype);
esk_value esk_prim_tensor_concat(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_stack(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_split(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_slice(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_gather(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_where(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_broadcast(const char *loc, esk_value t, esk_value shape);
esk_value esk_prim_tensor_to_list(const char *loc, esk_value a);
esk_value esk_prim_tensor_to_vector(const char *loc, esk_value a);
esk_value esk_prim_tensor_eq(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_tensor_ne(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_tensor_lt(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_tensor_gt(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_tensor_le(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_tensor_ge(const char *loc, esk_value a, esk_value b);
esk_value esk_prim_tensor_argmax(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_tensor_argmin(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_gpu_to_device(const char *loc, esk_value t);

/* numbers.c functions the rules call that the public header does not declare. */
esk_value esk_prim_cos(const char *loc, esk_value a);
esk_value esk_prim_tan(const char *loc, esk_value a);
esk_value esk_prim_asin(const char *loc, esk_value a);
esk_value esk_prim_acos(const char *loc, esk_value a);
esk_value esk_prim_atan(const char *loc, esk_value a);
esk_value esk_prim_sinh(const char *loc, esk_value a);
esk_value esk_prim_cosh(const char *loc, esk_value a);
esk_value esk_prim_tanh(const char *loc, esk_value a);

/* ---- fast paths for plain contiguous host float tensors (ad_fast.c) -------------------------
 * Each returns 1 with *out set (or the adjoint updated) when it applied, 0 when the generic
 * rule must run. */
int ad_fast_reshape(esk_value x, esk_value like, esk_value *out);     /* a view, no copy */
int ad_fast_gather(esk_value x, int64_t off, esk_value like, esk_value *out);
int ad_fast_bcast(esk_value x, esk_value like, esk_value *out);       /* a number filled */
int ad_fast_unbcast(esk_value x, esk_value like, esk_value *out);     /* leading axes summed */
/* Add g into parent's adjoint at flat offset off, in place (zeros allocated on first use). */
int ad_fast_accum_range(esk_adnode *parent, esk_value g, int64_t off);
/* Add c into parent's adjoint when that is a buffer only the node owns. */
int ad_fast_accumulate(esk_adnode *parent, esk_value c);
int ad_fast_matmul_vjp(const char *loc, const esk_value *p, esk_value g, const int *need,
                       esk_value *out);
int ad_fast_minmax_vjp(const esk_value *p, esk_value g, const int *need, esk_value *out,
                       int want_max);

#endif
