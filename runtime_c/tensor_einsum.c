/* (einsum "spec" T ...): Einstein summation, numpy's notation without ellipses.
 *
 * Two-operand contractions without repeated letters inside an operand ("ij,jk->ik",
 * "bij,bjk->bik", "i,i->", "ij,kj->ik", "i,j->ij", ...) become one batched matrix product:
 * the operands are permuted to (batch, free, contracted) / (batch, contracted, free) order and
 * multiplied by the runtime's gemm (BLAS for large ones).  Everything else (one operand,
 * traces "ii->", three or more operands) runs a direct loop over all index letters. */
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"
#include "tensor_linalg.h"

#define MAXOPS 8
#define NLET 52

typedef struct {
  int nops;
  int rank[MAXOPS];
  int let[MAXOPS][ESK_TENSOR_MAX_RANK]; /* letter ids 0..51 */
  int out_rank;
  int out[ESK_TENSOR_MAX_RANK];
} spec_t;

static int letter_id(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -1;
}

static void parse_spec(const char *loc, const char *s, int nops, spec_t *sp) {
  memset(sp, 0, sizeof *sp);
  const char *arrow = strstr(s, "->");
  int op = 0, count[NLET] = {0};
  for (const char *p = s; *p && p != arrow; p++) {
    if (*p == ' ') continue;
    if (*p == ',') {
      if (++op >= MAXOPS) esk_errorf(loc, "einsum: at most %d operands", MAXOPS);
      continue;
    }
    if (*p == '.') esk_errorf(loc, "einsum: '...' (ellipsis) is not supported");
    int id = letter_id(*p);
    if (id < 0) esk_errorf(loc, "einsum: invalid character '%c' in \"%s\"", *p, s);
    if (sp->rank[op] == ESK_TENSOR_MAX_RANK) esk_errorf(loc, "einsum: too many indices");
    sp->let[op][sp->rank[op]++] = id;
    count[id]++;
  }
  sp->nops = op + 1;
  if (sp->nops != nops)
    esk_errorf(loc, "einsum: \"%s\" names %d operand(s) but %d tensor(s) were given", s,
               sp->nops, nops);
  if (arrow) {
    for (const char *p = arrow + 2; *p; p++) {
      if (*p == ' ') continue;
      int id = letter_id(*p);
      if (id < 0) esk_errorf(loc, "einsum: invalid character '%c' in \"%s\"", *p, s);
      if (!count[id]) esk_errorf(loc, "einsum: output index '%c' is not an input index", *p);
      for (int k = 0; k < sp->out_rank; k++)
        if (sp->out[k] == id) esk_errorf(loc, "einsum: output index '%c' repeated", *p);
      if (sp->out_rank == ESK_TENSOR_MAX_RANK) esk_errorf(loc, "einsum: too many indices");
      sp->out[sp->out_rank++] = id;
    }
  } else { /* implicit output: letters used once, alphabetical */
    for (int id = 0; id < NLET; id++)
      if (count[id] == 1) {
        if (sp->out_rank == ESK_TENSOR_MAX_RANK) esk_errorf(loc, "einsum: too many indices");
        sp->out[sp->out_rank++] = id;
      }
  }
}

static int has(const int *xs, int n, int id) {
  for (int i = 0; i < n; i++)
    if (xs[i] == id) return 1;
  return 0;
}

static int pos(const int *xs, int n, int id) {
  for (int i = 0; i < n; i++)
    if (xs[i] == id) return i;
  return -1;
}

/* The batched-matmul form of a two-operand contraction, or NULL when it does not apply. */
static esk_value *try_matmul(const spec_t *sp, esk_tensor **ts, const int64_t *size,
                             esk_value *out) {
  if (sp->nops != 2) return NULL;
  const int *la = sp->let[0], *lb = sp->let[1];
  int ra = sp->rank[0], rb = sp->rank[1];
  for (int i = 0; i < ra; i++)
    if (pos(la, ra, la[i]) != i) return NULL;
  for (int i = 0; i < rb; i++)
    if (pos(lb, rb, lb[i]) != i) return NULL;
  /* Classify letters; a letter in only one operand and not in the output would need a
   * reduction first: not this path. */
  int batch[ESK_TENSOR_MAX_RANK], fa[ESK_TENSOR_MAX_RANK], fb[ESK_TENSOR_MAX_RANK],
      con[ESK_TENSOR_MAX_RANK];
  int nbt = 0, nfa = 0, nfb = 0, ncon = 0;
  for (int i = 0; i < ra; i++) {
    int id = la[i], inb = has(lb, rb, id), ino = has(sp->out, sp->out_rank, id);
    if (inb && ino) batch[nbt++] = id;
    else if (inb) con[ncon++] = id;
    else if (ino) fa[nfa++] = id;
    else return NULL;
  }
  for (int i = 0; i < rb; i++) {
    int id = lb[i];
    if (has(la, ra, id)) continue;
    if (!has(sp->out, sp->out_rank, id)) return NULL;
    fb[nfb++] = id;
  }
  /* Permute A to (batch, fa, con) and B to (batch, con, fb), contiguous. */
  int64_t pa[ESK_TENSOR_MAX_RANK], pb[ESK_TENSOR_MAX_RANK];
  int k = 0;
  for (int i = 0; i < nbt; i++) pa[k++] = pos(la, ra, batch[i]);
  for (int i = 0; i < nfa; i++) pa[k++] = pos(la, ra, fa[i]);
  for (int i = 0; i < ncon; i++) pa[k++] = pos(la, ra, con[i]);
  k = 0;
  for (int i = 0; i < nbt; i++) pb[k++] = pos(lb, rb, batch[i]);
  for (int i = 0; i < ncon; i++) pb[k++] = pos(lb, rb, con[i]);
  for (int i = 0; i < nfb; i++) pb[k++] = pos(lb, rb, fb[i]);
  int dt = esk_la_result_dtype(ts[0], ts[1]);
  esk_tensor *A = ts[0]->dtype == dt ? ts[0] : esk_tensor_astype(ts[0], dt);
  esk_tensor *B = ts[1]->dtype == dt ? ts[1] : esk_tensor_astype(ts[1], dt);
  A = esk_la_permute(A, pa);
  B = esk_la_permute(B, pb);
  int64_t NB = 1, M = 1, N = 1, K = 1;
  for (int i = 0; i < nbt; i++) NB *= size[batch[i]];
  for (int i = 0; i < nfa; i++) M *= size[fa[i]];
  for (int i = 0; i < nfb; i++) N *= size[fb[i]];
  for (int i = 0; i < ncon; i++) K *= size[con[i]];
  /* Product in (batch, fa, fb) order, then permuted to the output order. */
  int64_t pdims[ESK_TENSOR_MAX_RANK];
  int prank = 0, plet[ESK_TENSOR_MAX_RANK];
  for (int i = 0; i < nbt; i++) plet[prank] = batch[i], pdims[prank++] = size[batch[i]];
  for (int i = 0; i < nfa; i++) plet[prank] = fa[i], pdims[prank++] = size[fa[i]];
  for (int i = 0; i < nfb; i++) plet[prank] = fb[i], pdims[prank++] = size[fb[i]];
  esk_tensor *P = K == 0 ? esk_tensor_zeros(dt, prank, pdims) : esk_tensor_new(dt, prank, pdims);
  size_t es = esk_dtype_size(dt);
  if (K > 0 && P->size > 0)
    for (int64_t b = 0; b < NB; b++)
      esk_la_gemm(dt, M, N, K, (char *)esk_tensor_data(A) + b * M * K * (int64_t)es, K, 1,
                  (char *)esk_tensor_data(B) + b * K * N * (int64_t)es, N, 1,
                  (char *)esk_tensor_data(P) + b * M * N * (int64_t)es, N);
  int64_t perm[ESK_TENSOR_MAX_RANK];
  int identity = 1;
  for (int i = 0; i < sp->out_rank; i++) {
    perm[i] = pos(plet, prank, sp->out[i]);
    identity &= perm[i] == i;
  }
  if (!identity) P = esk_la_permute(P, perm);
  if (P->rank == 0) *out = esk_tensor_elem_value(P, P->offset);
  else *out = esk_tensor_value(P);
  return out;
}

/* Direct evaluation: for each output index, the sum over the other letters of the product. */
static esk_value direct(const spec_t *sp, esk_tensor **ts, const int64_t *size) {
  int all[NLET], nall = 0, dt = ts[0]->dtype;
  for (int i = 0; i < sp->out_rank; i++) all[nall++] = sp->out[i];
  for (int o = 0; o < sp->nops; o++) {
    for (int i = 0; i < sp->rank[o]; i++)
      if (!has(all, nall, sp->let[o][i])) all[nall++] = sp->let[o][i];
    if (ts[o]->dtype != dt) dt = ESK_DT_F64;
  }
  /* stride[o][j]: element stride of operand o along letter all[j] (summed over repeats, which
   * walks the diagonal for "ii"). */
  int64_t stride[MAXOPS][NLET];
  memset(stride, 0, sizeof stride);
  for (int o = 0; o < sp->nops; o++)
    for (int i = 0; i < sp->rank[o]; i++)
      stride[o][pos(all, nall, sp->let[o][i])] += ts[o]->strides[i];
  int64_t odims[ESK_TENSOR_MAX_RANK];
  for (int i = 0; i < sp->out_rank; i++) odims[i] = size[sp->out[i]];
  esk_tensor *R = esk_tensor_new(dt, sp->out_rank, odims);
  int64_t nsum = 1;
  for (int j = sp->out_rank; j < nall; j++) nsum *= size[all[j]];
  int64_t idx[NLET] = {0};
  for (int64_t n = 0; n < R->size; n++) {
    double acc = 0;
    int64_t iacc = 0;
    for (int j = sp->out_rank; j < nall; j++) idx[j] = 0;
    for (int64_t s = 0; s < nsum; s++) {
      double prod = 1;
      int64_t iprod = 1;
      for (int o = 0; o < sp->nops; o++) {
        int64_t off = ts[o]->offset;
        for (int j = 0; j < nall; j++) off += idx[j] * stride[o][j];
        if (dt == ESK_DT_I64) iprod *= ((const int64_t *)ts[o]->buf->base)[off];
        else {
          const esk_tensor *t = ts[o];
          prod *= t->dtype == ESK_DT_F32 ? ((const float *)t->buf->base)[off]
                : t->dtype == ESK_DT_I64 ? (double)((const int64_t *)t->buf->base)[off]
                                         : ((const double *)t->buf->base)[off];
        }
      }
      acc += prod;
      iacc += iprod;
      for (int j = nall - 1; j >= sp->out_rank; j--) {
        if (++idx[j] < size[all[j]]) break;
        idx[j] = 0;
      }
    }
    void *d = esk_tensor_data(R);
    if (dt == ESK_DT_I64) ((int64_t *)d)[n] = iacc;
    else if (dt == ESK_DT_F32) ((float *)d)[n] = (float)acc;
    else ((double *)d)[n] = acc;
    for (int j = sp->out_rank - 1; j >= 0; j--) {
      if (++idx[j] < size[all[j]]) break;
      idx[j] = 0;
    }
  }
  if (R->rank == 0) return esk_tensor_elem_value(R, R->offset);
  return esk_tensor_value(R);
}

esk_value esk_prim_einsum(const char *loc, int64_t argc, esk_value *argv) {
  if (esk_ad_any(argc, argv)) return esk_ad_tensor_prim(loc, "einsum", argc, argv);
  if (argc < 2) esk_errorf(loc, "einsum: expected a spec string and at least one tensor");
  if (argv[0].tag != ESK_T_STRING) esk_error_type(loc, "einsum", "spec string", argv[0]);
  const char *s = ((esk_string *)esk_ptr(argv[0]))->data;
  int nops = (int)(argc - 1);
  if (nops > MAXOPS) esk_errorf(loc, "einsum: at most %d operands", MAXOPS);
  spec_t sp;
  parse_spec(loc, s, nops, &sp);
  esk_tensor *ts[MAXOPS];
  int64_t size[NLET];
  for (int i = 0; i < NLET; i++) size[i] = -1;
  for (int o = 0; o < nops; o++) {
    ts[o] = esk_la_arg(loc, "einsum", argv[o + 1]);
    if (ts[o]->rank != sp.rank[o]) {
      char sh[256];
      esk_errorf(loc, "einsum: operand %d has shape %s but \"%s\" gives it %d indices", o + 1,
                 esk_shape_text(ts[o], sh, sizeof sh), s, sp.rank[o]);
    }
    for (int i = 0; i < sp.rank[o]; i++) {
      int id = sp.let[o][i];
      if (size[id] >= 0 && size[id] != ts[o]->dims[i])
        esk_errorf(loc, "einsum: index '%c' has sizes %lld and %lld",
                   id < 26 ? 'a' + id : 'A' + id - 26, (long long)size[id],
                   (long long)ts[o]->dims[i]);
      size[id] = ts[o]->dims[i];
    }
  }
  esk_value r;
  if (try_matmul(&sp, ts, size, &r)) return r;
  return direct(&sp, ts, size);
}
