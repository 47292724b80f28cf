/* Runtime automatic differentiation: dual numbers (forward mode), tapes (reverse mode) and the
 * one dispatcher, ad_call, through which every differentiable builtin goes when an operand is
 * an AD value.  The fallback for code the dialect transformation cannot see, and the reference
 * semantics that transformation must match (docs/DESIGN-NOTES.md, "Runtime AD").
 *
 * ad_call(rule, args): let t be the largest tag among the arguments.
 *   - none: the rule's plain computation;
 *   - t belongs to a dual: split each argument into its e_t primal and tangent, ad_call the
 *     rule on the primals (they may still hold smaller tags) and build dual(t, result, jvp);
 *   - t belongs to a tape node: ad_call the rule on the node values and record a new node on
 *     that tape; ad_backward later runs the rules' vjps from the output back to the inputs.
 * Rules compute tangents and cotangents with ad_call again, so they differentiate too. */
#include <stdatomic.h>
#include <string.h>

#include "ad.h"

static inline esk_value heap(int64_t tag, void *p) { return (esk_value){tag, (int64_t)(intptr_t)p}; }

/* ---- tags --------------------------------------------------------------------------------- */

static _Atomic int64_t next_tag = 1;

int64_t ad_new_tag(void) { return atomic_fetch_add(&next_tag, 1); }

esk_value ad_make_dual(int64_t tag, esk_value primal, esk_value tangent) {
  esk_dual *d = esk_alloc(sizeof *d);
  d->h.type = ESK_T_DUAL;
  d->tag = tag;
  d->primal = primal;
  d->tangent = tangent;
  return heap(ESK_T_DUAL, d);
}

/* A node of a finished gradient call is a constant: its value. */
static inline esk_value live(esk_value v) {
  while (v.tag == ESK_T_ADNODE && !ad_node_of(v)->tape->active) v = ad_node_of(v)->value;
  return v;
}

static inline int64_t tag_of(esk_value v) {
  if (v.tag == ESK_T_DUAL) return ad_dual_of(v)->tag;
  if (v.tag == ESK_T_ADNODE) return ad_node_of(v)->tag;
  return 0;
}

esk_value ad_plain(esk_value v) {
  for (;;) {
    if (v.tag == ESK_T_DUAL) v = ad_dual_of(v)->primal;
    else if (v.tag == ESK_T_ADNODE) v = ad_node_of(v)->value;
    else return v;
  }
}

esk_value esk_ad_primal(esk_value v) { return ad_plain(v); }

int esk_ad_any(int64_t argc, const esk_value *argv) {
  for (int64_t i = 0; i < argc; i++)
    if (ad_is_ad(argv[i])) return 1;
  return 0;
}

/* ---- tapes -------------------------------------------------------------------------------- */

/* The stack of active tapes, per thread (parallel gradient calls each see their own).  Not a
 * collector root: every tape on it is also held by its gradient call's frame. */
static __thread esk_tape *innermost;

esk_tape *ad_tape_begin(void) {
  esk_tape *t = esk_alloc(sizeof *t);
  t->tag = ad_new_tag();
  t->active = 1;
  t->cap = 64;
  t->nodes = esk_alloc(t->cap * sizeof *t->nodes);
  t->outer = innermost;
  innermost = t;
  return t;
}

void ad_tape_end(esk_tape *t) {
  t->active = 0;
  /* Pop t and anything above it (tapes of calls an error escaped from). */
  for (esk_tape *s = innermost; s; s = s->outer)
    if (s == t) {
      innermost = t->outer;
      break;
    }
  t->nodes = NULL;
  t->len = t->cap = 0;
}

esk_tape *ad_tape_innermost(void) {
  while (innermost && !innermost->active) innermost = innermost->outer;
  return innermost;
}

static esk_adnode *new_node(esk_tape *t, const ad_rule *r, int64_t n, const esk_value *in,
                            esk_value value) {
  esk_adnode *nd = esk_alloc(sizeof *nd + (size_t)n * sizeof(esk_value));
  nd->h.type = ESK_T_ADNODE;
  nd->tag = t->tag;
  nd->tape = t;
  nd->rule = r;
  nd->value = value;
  nd->adj = AD_ZERO;
  nd->nin = (int32_t)n;
  for (int64_t i = 0; i < n; i++) nd->in[i] = in[i];
  if (t->len == t->cap) {
    esk_adnode **grown = esk_alloc(2 * t->cap * sizeof *grown);
    memcpy(grown, t->nodes, t->len * sizeof *grown);
    t->nodes = grown;
    t->cap *= 2;
  }
  nd->index = t->len;
  t->nodes[t->len++] = nd;
  return nd;
}

esk_value ad_tape_input(esk_tape *t, esk_value value) {
  return heap(ESK_T_ADNODE, new_node(t, NULL, 0, NULL, value));
}

/* ---- the dispatcher ------------------------------------------------------------------------ */

/* Flonum fast path: doubles for the n <= 2 numbers in v (flonums, or fixnums beside them). */
static int as_doubles(int64_t n, const esk_value *v, double *out) {
  for (int64_t i = 0; i < n; i++) {
    if (v[i].tag == ESK_T_FLONUM) out[i] = esk_flonum_value(v[i]);
    else if (v[i].tag == ESK_T_FIXNUM) out[i] = (double)v[i].payload;
    else return 0;
  }
  return 1;
}

/* The dual-number step of a scalar rule when every primal and tangent is a flonum: the
 * tangent is sum_i dr/dp_i d_i in doubles.  Returns 0 (nothing done) otherwise. */
static int fast_jvp(const char *loc, const ad_rule *r, int64_t tag, int64_t n, const esk_value *p,
                    const esk_value *d, esk_value *out) {
  double pv[2], dp[2];
  if (!r->partials || n > 2 || !as_doubles(n, p, pv)) return 0;
  for (int64_t i = 0; i < n; i++)
    if (!ad_is_zero(d[i]) && d[i].tag != ESK_T_FLONUM) return 0;
  esk_value res = r->primal(loc, n, p);
  if (res.tag != ESK_T_FLONUM) return 0;  /* an exact result: the generic rule keeps it exact */
  r->partials(pv, esk_flonum_value(res), dp);
  double t = 0;
  for (int64_t i = 0; i < n; i++)
    if (!ad_is_zero(d[i])) t += dp[i] * esk_flonum_value(d[i]);
  *out = ad_make_dual(tag, res, esk_flonum(t));
  return 1;
}

esk_value ad_call(const char *loc, const ad_rule *r, int64_t n, const esk_value *args) {
  esk_value small[3 * 6];
  esk_value *a = n <= 6 ? small : esk_alloc(3 * (size_t)n * sizeof *a);
  esk_value *p = a + n, *d = a + 2 * n;
  int64_t top = 0;
  int top_node = 0;
  for (int64_t i = 0; i < n; i++) {
    a[i] = live(args[i]);
    int64_t t = tag_of(a[i]);
    if (t > top) {
      top = t;
      top_node = a[i].tag == ESK_T_ADNODE;
    }
  }
  if (!top) return r->primal(loc, n, a);
  if (!top_node) {
    for (int64_t i = 0; i < n; i++) {
      if (a[i].tag == ESK_T_DUAL && ad_dual_of(a[i])->tag == top) {
        p[i] = ad_dual_of(a[i])->primal;
        d[i] = ad_dual_of(a[i])->tangent;
      } else {
        p[i] = a[i];
        d[i] = AD_ZERO;
      }
    }
    esk_value fast;
    if (fast_jvp(loc, r, top, n, p, d, &fast)) return fast;
    esk_value res = ad_call(loc, r, n, p);
    esk_value tan = r->jvp ? r->jvp(loc, n, p, d, res) : AD_ZERO;
    return ad_is_zero(tan) ? res : ad_make_dual(top, res, tan);
  }
  esk_tape *tape = NULL;
  for (int64_t i = 0; i < n; i++) {
    if (a[i].tag == ESK_T_ADNODE && ad_node_of(a[i])->tag == top) {
      tape = ad_node_of(a[i])->tape;
      p[i] = ad_node_of(a[i])->value;
    } else {
      p[i] = a[i];
    }
  }
  esk_value res = ad_call(loc, r, n, p);
  if (!r->vjp) return res;  /* zero derivative: nothing to record */
  return heap(ESK_T_ADNODE, new_node(tape, r, n, a, res));
}

esk_value ad_call1(const char *loc, const ad_rule *r, esk_value a) { return ad_call(loc, r, 1, &a); }
esk_value ad_call2(const char *loc, const ad_rule *r, esk_value a, esk_value b) {
  esk_value v[2] = {a, b};
  return ad_call(loc, r, 2, v);
}

/* Rules' arithmetic: the generic operators (which reach ad_call for AD operands and the tensor
 * runtime for tensors), skipping work on AD_ZERO. */
esk_value ad_add(const char *loc, esk_value a, esk_value b) {
  if (ad_is_zero(a)) return b;
  if (ad_is_zero(b)) return a;
  return esk_prim_add2(loc, a, b);
}
esk_value ad_sub(const char *loc, esk_value a, esk_value b) {
  if (ad_is_zero(b)) return a;
  if (ad_is_zero(a)) return esk_prim_neg(loc, b);
  return esk_prim_sub2(loc, a, b);
}
esk_value ad_mul(const char *loc, esk_value a, esk_value b) {
  if (ad_is_zero(a) || ad_is_zero(b)) return AD_ZERO;
  return esk_prim_mul2(loc, a, b);
}
esk_value ad_div(const char *loc, esk_value a, esk_value b) {
  if (ad_is_zero(a)) return AD_ZERO;
  return esk_prim_div2(loc, a, b);
}
esk_value ad_neg(const char *loc, esk_value a) {
  if (ad_is_zero(a)) return AD_ZERO;
  return esk_prim_neg(loc, a);
}

/* ---- extraction ----------------------------------------------------------------------------- */

static esk_value remake(int64_t tag, esk_value p, esk_value d) {
  return ad_is_zero(d) ? p : ad_make_dual(tag, p, d);
}

esk_value ad_tangent(esk_value v, int64_t tag) {
  v = live(v);
  if (v.tag == ESK_T_DUAL) {
    esk_dual *x = ad_dual_of(v);
    if (x->tag == tag) return x->tangent;
    /* A dual of a later tag that escaped its own call (a closure returned from an inner
     * derivative): its parts may still depend on e_tag. */
    if (x->tag > tag) return remake(x->tag, ad_tangent(x->primal, tag), ad_tangent(x->tangent, tag));
  } else if (v.tag == ESK_T_ADNODE && ad_node_of(v)->tag > tag) {
    return ad_tangent(ad_node_of(v)->value, tag);
  }
  return AD_ZERO;
}

esk_value ad_primal_at(esk_value v, int64_t tag) {
  v = live(v);
  if (v.tag == ESK_T_DUAL) {
    esk_dual *x = ad_dual_of(v);
    if (x->tag == tag) return x->primal;
    if (x->tag > tag) return remake(x->tag, ad_primal_at(x->primal, tag), ad_primal_at(x->tangent, tag));
  }
  return v;
}

/* ---- reverse pass ------------------------------------------------------------------------------ */

static void accumulate(const char *loc, esk_adnode *parent, esk_value c) {
  if (ad_is_zero(c)) return;
  if (ad_is_zero(parent->adj)) {
    parent->adj = c;
    parent->adj_owned = 0;
    return;
  }
  if (ad_fast_accumulate(parent, c)) return;
  esk_value old = parent->adj;
  parent->adj = ad_add(loc, old, c);
  /* A sum of two plain tensors is a fresh tensor nothing else holds: later index reads may
   * add into it in place. */
  parent->adj_owned = parent->adj.tag == ESK_T_TENSOR && parent->adj.payload != c.payload &&
                      parent->adj.payload != old.payload && !ad_is_ad(c) && !ad_is_ad(old);
}

static void checkpoint_backward(const char *loc, esk_tape *t, esk_adnode *nd);

/* The reverse step of a scalar rule when the cotangent, the value and the operands are
 * flonums (fixnum operands allowed): contributions g dr/dp_i added in doubles. */
static int fast_vjp(const char *loc, esk_tape *t, esk_adnode *nd) {
  const ad_rule *r = nd->rule;
  int64_t n = nd->nin;
  double pv[2], dp[2];
  esk_value vals[2];
  if (!r->partials || n > 2 || nd->adj.tag != ESK_T_FLONUM || nd->value.tag != ESK_T_FLONUM) return 0;
  for (int64_t i = 0; i < n; i++) {
    esk_value x = nd->in[i];
    vals[i] = x.tag == ESK_T_ADNODE && ad_node_of(x)->tape == t ? ad_node_of(x)->value : x;
  }
  if (!as_doubles(n, vals, pv)) return 0;
  r->partials(pv, esk_flonum_value(nd->value), dp);
  double g = esk_flonum_value(nd->adj);
  for (int64_t i = 0; i < n; i++) {
    esk_value x = nd->in[i];
    if (x.tag != ESK_T_ADNODE || ad_node_of(x)->tape != t) continue;
    esk_adnode *par = ad_node_of(x);
    double c = g * dp[i];
    if (ad_is_zero(par->adj)) par->adj = esk_flonum(c);
    else if (par->adj.tag == ESK_T_FLONUM) par->adj = esk_flonum(esk_flonum_value(par->adj) + c);
    else accumulate(loc, par, esk_flonum(c));
  }
  return 1;
}

void ad_backward(const char *loc, esk_tape *t, esk_adnode *out, esk_value seed, int64_t stop) {
  out->adj = ad_is_zero(out->adj) ? seed : ad_add(loc, out->adj, seed);
  for (int64_t k = out->index; k >= stop; k--) {
    esk_adnode *nd = t->nodes[k];
    if (!nd || !nd->rule || ad_is_zero(nd->adj)) continue;
    if (nd->rule == &ad_r_checkpoint) {
      checkpoint_backward(loc, t, nd);
    } else if (fast_vjp(loc, t, nd)) {
    } else {
      int64_t n = nd->nin;
      int need_small[8];
      esk_value small[16];
      int *need = n <= 8 ? need_small : esk_alloc((size_t)n * sizeof *need);
      esk_value *vals = n <= 8 ? small : esk_alloc(2 * (size_t)n * sizeof *vals);
      esk_value *out_c = vals + n;
      int any = 0;
      for (int64_t i = 0; i < n; i++) {
        esk_value x = nd->in[i];
        need[i] = x.tag == ESK_T_ADNODE && ad_node_of(x)->tape == t;
        vals[i] = need[i] ? ad_node_of(x)->value : x;
        out_c[i] = AD_ZERO;
        if (need[i] && nd->rule->accum && nd->rule->accum(loc, nd, nd->adj, (int)i, ad_node_of(x)))
          need[i] = 0;
        any |= need[i];
      }
      if (any) {
        nd->rule->vjp(loc, n, vals, nd->value, nd->adj, need, out_c);
        for (int64_t i = 0; i < n; i++)
          if (need[i]) accumulate(loc, ad_node_of(nd->in[i]), out_c[i]);
      }
    }
    /* Done with this node: let the collector have what only the tape kept alive. */
    if (nd != out) t->nodes[k] = NULL;
  }
}

/* ---- checkpoint-segment ----------------------------------------------------------------------- */

/* The segment's nodes [start, len) are replaced by one node whose operands are the thunk and
 * the earlier nodes the segment read.  Its backward re-runs the thunk (recording on the same
 * tape, past its end), propagates the adjoint through that fresh piece and drops it again. */
esk_value ad_checkpoint(const char *loc, esk_tape *t, int64_t start, esk_value thunk,
                        esk_value result) {
  esk_value r = live(result);
  if (r.tag != ESK_T_ADNODE || ad_node_of(r)->tape != t || ad_node_of(r)->index < start)
    return result;  /* not computed in the segment on this tape */
  int64_t cap = 8, n = 1;
  esk_value *ins = esk_alloc(cap * sizeof *ins);
  ins[0] = thunk;
  for (int64_t k = start; k < t->len; k++) {
    esk_adnode *nd = t->nodes[k];
    for (int32_t i = 0; i < nd->nin; i++) {
      esk_value x = nd->in[i];
      if (x.tag != ESK_T_ADNODE || ad_node_of(x)->tape != t || ad_node_of(x)->index >= start)
        continue;
      int seen = 0;
      for (int64_t j = 1; j < n && !seen; j++) seen = ins[j].payload == x.payload;
      if (seen) continue;
      if (n == cap) {
        esk_value *g = esk_alloc(2 * cap * sizeof *g);
        memcpy(g, ins, n * sizeof *g);
        ins = g;
        cap *= 2;
      }
      ins[n++] = x;
    }
  }
  esk_value value = ad_node_of(r)->value;
  for (int64_t k = start; k < t->len; k++) t->nodes[k] = NULL;
  t->len = start;
  return heap(ESK_T_ADNODE, new_node(t, &ad_r_checkpoint, n, ins, value));
}

static void checkpoint_backward(const char *loc, esk_tape *t, esk_adnode *nd) {
  int64_t mark = t->len;
  esk_value r = live(esk_call(loc, nd->in[0], 0, NULL));
  if (r.tag == ESK_T_ADNODE && ad_node_of(r)->tape == t && ad_node_of(r)->index >= mark)
    ad_backward(loc, t, ad_node_of(r), nd->adj, mark);
  for (int64_t k = mark; k < t->len; k++) t->nodes[k] = NULL;
  t->len = mark;
}

static esk_value checkpoint_primal(const char *loc, int64_t n, const esk_value *a) {
  (void)loc; (void)n; (void)a;
  return AD_ZERO;  /* never called: checkpoint nodes are made by ad_checkpoint only */
}
static void checkpoint_vjp(const char *loc, int64_t n, const esk_value *p, esk_value r,
                           esk_value g, const int *need, esk_value *out) {
  (void)loc; (void)n; (void)p; (void)r; (void)g; (void)need; (void)out;
}
const ad_rule ad_r_checkpoint = {"checkpoint-segment", checkpoint_primal, NULL, checkpoint_vjp, NULL};

/* ---- entry points from numbers.c and the tensor runtime ------------------------------------ */

int esk_ad_arith(const char *loc, int op, int64_t argc, const esk_value *args, esk_value *out) {
  const ad_rule *r = ad_rule_for_op(op, argc);
  if (!r) return 0;
  *out = ad_call(loc, r, argc, args);
  return 1;
}

esk_value esk_ad_tensor_prim(const char *loc, const char *name, int64_t argc, const esk_value *argv) {
  esk_value out;
  if (ad_tensor_special(loc, name, argc, argv, &out)) return out;
  const ad_rule *r = ad_rule_by_name(name);
  if (r) return ad_call(loc, r, argc, argv);
  for (int64_t i = 0; i < argc; i++)
    if (ad_is_ad(argv[i])) esk_ad_not_differentiable(loc, name, argv[i]);
  esk_errorf(loc, "%s: no derivative rule", name);
}

_Noreturn void esk_ad_not_differentiable(const char *loc, const char *who, esk_value got) {
  esk_errorf(loc, "%s: cannot differentiate through this operation (an argument is a %s)", who,
             got.tag == ESK_T_DUAL ? "dual number from forward-mode differentiation"
                                   : "tape node from reverse-mode differentiation");
}

/* ---- printing ----------------------------------------------------------------------------------- */

int esk_print_ad(esk_value v, FILE *out, int write) {
  if (v.tag == ESK_T_DUAL) {
    fputs("(dual ", out);
    (write ? esk_write : esk_display)(ad_dual_of(v)->primal, out);
    fputc(' ', out);
    (write ? esk_write : esk_display)(ad_dual_of(v)->tangent, out);
    fputc(')', out);
    return 1;
  }
  if (v.tag == ESK_T_ADNODE) {
    fputs("#<ad-node>", out);
    return 1;
  }
  return 0;
}
