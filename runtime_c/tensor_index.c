/* Tensor inspection and indexing: tensor-shape/rank/size/dtype, tensor-get (elements and
 * sub-tensor views), tensor-set! (value last), tensor-ref (flat or multi-index), vref,
 * reshape/flatten, and the v1.x vector/list procedures on tensors (vector-ref, vector-set!,
 * vector-length, car, cdr) that prims.c forwards here. */
#include "tensor_internal.h"

/* ---- inspection ----------------------------------------------------------------------------- */

esk_value esk_prim_is_tensor(const char *loc, esk_value a) {
  (void)loc;
  return esk_bool(a.tag == ESK_T_TENSOR || (esk_ad_any(1, &a) && esk_ad_primal(a).tag == ESK_T_TENSOR));
}

esk_value esk_prim_tensor_shape(const char *loc, esk_value a) {
  T_AD_CHECK1("tensor-shape", a);
  esk_tensor *t = esk_to_tensor(loc, "tensor-shape", a);
  esk_value r = esk_nil();
  for (int64_t i = t->rank - 1; i >= 0; i--) r = esk_cons(esk_fixnum(t->dims[i]), r);
  return r;
}

esk_value esk_prim_tensor_rank(const char *loc, esk_value a) {
  T_AD_CHECK1("tensor-rank", a);
  return esk_fixnum(esk_to_tensor(loc, "tensor-rank", a)->rank);
}

esk_value esk_prim_tensor_size(const char *loc, esk_value a) {
  T_AD_CHECK1("tensor-size", a);
  return esk_fixnum(esk_to_tensor(loc, "tensor-size", a)->size);
}

esk_value esk_prim_tensor_dtype(const char *loc, esk_value a) {
  T_AD_CHECK1("tensor-dtype", a);
  const char *n = esk_dtype_name(esk_to_tensor(loc, "tensor-dtype", a)->dtype);
  return esk_intern(n, (int64_t)strlen(n));
}

/* ---- indexing ------------------------------------------------------------------------------ */

/* The view t[i0, ..., ik-1] (k <= rank): shares t's buffer. */
static esk_tensor *sub_view(const char *loc, const char *who, esk_tensor *t, int64_t k,
                            const esk_value *idx) {
  int64_t off = t->offset;
  for (int64_t d = 0; d < k; d++) off += esk_t_index(loc, who, idx[d], t->dims[d], d) * t->strides[d];
  esk_tensor *v = esk_t_view(t);
  v->rank = t->rank - k;
  v->offset = off;
  memmove(v->dims, t->dims + k, (size_t)v->rank * sizeof(int64_t));
  memmove(v->strides, t->strides + k, (size_t)v->rank * sizeof(int64_t));
  v->size = 1;
  for (int64_t d = 0; d < v->rank; d++) v->size *= v->dims[d];
  return v;
}

static void too_many_indices(const char *loc, const char *who, esk_tensor *t, int64_t k) {
  char s[256];
  esk_errorf(loc, "%s: %lld indices for a tensor of shape %s", who, (long long)k,
             esk_shape_text(t, s, sizeof s));
}

/* (tensor-get t i j ...): an element for a full index, a sub-tensor view for fewer. */
esk_value esk_prim_tensor_get(const char *loc, int64_t argc, esk_value *argv) {
  T_AD_CHECK("tensor-get", argc, argv);
  esk_tensor *t = esk_to_tensor(loc, "tensor-get", argv[0]);
  int64_t k = argc - 1;
  if (k > t->rank) too_many_indices(loc, "tensor-get", t, k);
  if (k == t->rank) {
    int64_t off = t->offset;
    for (int64_t d = 0; d < k; d++)
      off += esk_t_index(loc, "tensor-get", argv[1 + d], t->dims[d], d) * t->strides[d];
    return esk_tensor_elem_value(t, off);
  }
  return esk_tensor_value(sub_view(loc, "tensor-get", t, k, argv + 1));
}

/* Store v (a number, or a tensor broadcast to the sub-tensor's shape) into dst. */
static void assign(const char *loc, const char *who, esk_tensor *dst, esk_value v) {
  if (v.tag == ESK_T_TENSOR) {
    esk_tensor *src = TENSOR(v);
    /* Broadcast src to dst's shape by zero strides (numpy rules, src may have lower rank). */
    if (src->rank > dst->rank) esk_error_shapes(loc, who, dst, src);
    esk_tensor b = *src;
    b.rank = dst->rank;
    int64_t lead = dst->rank - src->rank;
    for (int64_t d = 0; d < dst->rank; d++) {
      int64_t sd = d - lead;
      int64_t n = sd >= 0 ? src->dims[sd] : 1, st = sd >= 0 ? src->strides[sd] : 0;
      if (n != dst->dims[d] && n != 1) esk_error_shapes(loc, who, dst, src);
      b.dims[d] = dst->dims[d];
      b.strides[d] = n == 1 ? 0 : st;
    }
    b.size = dst->size;
    if (src->buf == dst->buf) { /* overlapping: go through a copy */
      esk_tensor *c = esk_tensor_contiguous(esk_t_view(src));
      if (c == src || c->buf == dst->buf) {
        c = esk_t_new(src->dtype, src->rank, src->dims);
        esk_t_copy_into(c, src);
      }
      b.buf = c->buf;
      b.offset = c->offset;
      int64_t st[ESK_TENSOR_MAX_RANK];
      esk_t_row_major(c->rank, c->dims, st);
      for (int64_t d = 0; d < dst->rank; d++) {
        int64_t sd = d - lead;
        b.strides[d] = (sd >= 0 && src->dims[sd] != 1) ? st[sd] : 0;
      }
    }
    esk_t_copy_into(dst, &b);
    return;
  }
  if (dst->dtype == ESK_DT_I64 && v.tag == ESK_T_FIXNUM && dst->rank == 0) {
    ((int64_t *)t_base(dst))[dst->offset] = v.payload;
    return;
  }
  esk_t_fill(dst, esk_t_real(loc, who, v));
}

static esk_value set_indexed(const char *loc, const char *who, int64_t argc, esk_value *argv) {
  esk_tensor *t = esk_to_tensor(loc, who, argv[0]);
  if (t->h.flags & ESK_F_IMMUTABLE) esk_error_with(loc, "attempt to modify a constant tensor:", argv[0]);
  int64_t k = argc - 2;
  if (k > t->rank) too_many_indices(loc, who, t, k);
  esk_value v = argv[argc - 1];
  if (k == t->rank && v.tag != ESK_T_TENSOR) {
    int64_t off = t->offset;
    for (int64_t d = 0; d < k; d++) off += esk_t_index(loc, who, argv[1 + d], t->dims[d], d) * t->strides[d];
    if (t->dtype == ESK_DT_I64 && v.tag == ESK_T_FIXNUM) ((int64_t *)t_base(t))[off] = v.payload;
    else t_store(t_base(t), t->dtype, off, esk_t_real(loc, who, v));
    return argv[0];
  }
  assign(loc, who, sub_view(loc, who, t, k, argv + 1), v);
  return argv[0];
}

/* (tensor-set! t i j ... v): value LAST; fewer indices assign a sub-tensor (v broadcast). */
esk_value esk_prim_tensor_set(const char *loc, int64_t argc, esk_value *argv) {
  T_AD_CHECK("tensor-set!", argc, argv);
  if (esk_cuda_any(argc, argv)) return esk_cuda_host_call(loc, esk_prim_tensor_set, argc, argv, 1);
  return set_indexed(loc, "tensor-set!", argc, argv);
}

/* (tensor-ref t i): element at flat row-major index i; (tensor-ref t i j ...): multi-index. */
esk_value esk_prim_tensor_ref(const char *loc, int64_t argc, esk_value *argv) {
  T_AD_CHECK("tensor-ref", argc, argv);
  esk_tensor *t = esk_to_tensor(loc, "tensor-ref", argv[0]);
  if (argc == 2 && t->rank != 1) {
    int64_t i = esk_t_index(loc, "tensor-ref", argv[1], t->size, 0), off = t->offset;
    for (int64_t d = t->rank - 1; d >= 0; d--) {
      off += (i % t->dims[d]) * t->strides[d];
      i /= t->dims[d];
    }
    return esk_tensor_elem_value(t, off);
  }
  if (argc - 1 != t->rank) too_many_indices(loc, "tensor-ref", t, argc - 1);
  return esk_prim_tensor_get(loc, argc, argv);
}

/* ---- v1.x vector procedures on tensors ------------------------------------------------------ */

/* (vector-ref t k): a double for rank 1, the row view t[k] for higher ranks. */
esk_value esk_tensor_vector_ref(const char *loc, const char *who, esk_value v, esk_value k) {
  esk_tensor *t = TENSOR(v);
  if (t->rank == 0) esk_errorf(loc, "%s: index into a rank-0 tensor", who);
  esk_value args[2] = {v, k};
  if (t->rank == 1) {
    int64_t i = esk_t_index(loc, who, k, t->dims[0], 0);
    return esk_tensor_elem_value(t, t->offset + i * t->strides[0]);
  }
  return esk_tensor_value(sub_view(loc, who, t, 1, args + 1));
}

esk_value esk_tensor_vector_set(const char *loc, esk_value v, esk_value k, esk_value x) {
  esk_value args[3] = {v, k, x};
  if (TENSOR(v)->rank == 0) esk_errorf(loc, "vector-set!: index into a rank-0 tensor");
  return set_indexed(loc, "vector-set!", 3, args);
}

/* (vref v k): 1-D element access for vectors and tensors (AD-aware through the check). */
esk_value esk_prim_vref(const char *loc, esk_value v, esk_value k) {
  T_AD_CHECK2("vref", v, k);
  if (v.tag == ESK_T_TENSOR) return esk_tensor_vector_ref(loc, "vref", v, k);
  if (v.tag == ESK_T_VECTOR) return esk_prim_vector_ref(loc, v, k);
  esk_error_type(loc, "vref", "vector or tensor", v);
}

/* (car t): element 0 (or row 0); (cdr t): a fresh tensor of the rest along axis 0. */
esk_value esk_tensor_car(const char *loc, esk_value v) {
  T_AD_CHECK1("car", v);
  esk_tensor *t = TENSOR(v);
  if (t->rank == 0 || t->dims[0] == 0) esk_error_with(loc, "car: empty tensor:", v);
  return esk_tensor_vector_ref(loc, "car", v, esk_fixnum(0));
}

esk_value esk_tensor_cdr(const char *loc, esk_value v) {
  T_AD_CHECK1("cdr", v);
  if (esk_is_cuda_tensor(v)) return esk_cuda_host_call1(loc, esk_tensor_cdr, v);
  esk_tensor *t = TENSOR(v);
  if (t->rank == 0 || t->dims[0] == 0) esk_error_with(loc, "cdr: empty tensor:", v);
  esk_tensor *rest = esk_t_view(t);
  rest->dims[0]--;
  rest->offset += t->strides[0];
  rest->size = t->size / t->dims[0] * rest->dims[0];
  esk_tensor *r = esk_t_new(t->dtype, t->rank, rest->dims);
  esk_t_copy_into(r, rest);
  return esk_tensor_value(r);
}

/* ---- reshape, flatten ---------------------------------------------------------------------- */

/* (reshape t d1 d2 ...) | (reshape t shape-list): a view when t is contiguous (else a copy),
 * one dimension may be -1 (inferred). */
esk_value esk_prim_reshape(const char *loc, int64_t argc, esk_value *argv) {
  T_AD_CHECK("reshape", argc, argv);
  esk_tensor *t = argv[0].tag == ESK_T_VECTOR ? esk_as_tensor(loc, "reshape", argv[0])
                                              : esk_to_tensor(loc, "reshape", argv[0]);
  int64_t dims[ESK_TENSOR_MAX_RANK], rank = 0, infer = -1, prod = 1;
  esk_value list = argc == 2 && (argv[1].tag == ESK_T_PAIR || argv[1].tag == ESK_T_NIL ||
                                 argv[1].tag == ESK_T_VECTOR)
                       ? argv[1] : esk_list_from_args(argc - 1, argv + 1);
  if (list.tag == ESK_T_VECTOR) {
    esk_vector *vec = esk_ptr(list);
    list = esk_list_from_args(vec->len, vec->items);
  }
  for (; list.tag == ESK_T_PAIR; list = ((esk_pair *)esk_ptr(list))->cdr) {
    esk_value d = ((esk_pair *)esk_ptr(list))->car;
    if (rank == ESK_TENSOR_MAX_RANK)
      esk_errorf(loc, "reshape: at most %d dimensions are supported", ESK_TENSOR_MAX_RANK);
    if (d.tag == ESK_T_FIXNUM && d.payload == -1 && infer < 0) {
      infer = rank;
      dims[rank++] = 1;
      continue;
    }
    dims[rank] = esk_t_dim(loc, "reshape", d);
    prod *= dims[rank++];
  }
  if (infer >= 0) {
    if (prod == 0 || t->size % prod) goto mismatch;
    dims[infer] = t->size / prod;
    prod *= dims[infer];
  }
  if (prod != t->size) goto mismatch;
  {
    esk_tensor *c = esk_tensor_contiguous(t);
    esk_tensor *v = esk_t_view(c);
    v->rank = rank;
    memcpy(v->dims, dims, sizeof v->dims);
    esk_t_row_major(rank, dims, v->strides);
    return esk_tensor_value(v);
  }
mismatch:;
  char a[256], b[256];
  esk_tensor want = {.rank = rank};
  memcpy(want.dims, dims, sizeof want.dims);
  if (infer >= 0) want.dims[infer] = -1;
  esk_errorf(loc, "reshape: cannot reshape a tensor of shape %s into shape %s",
             esk_shape_text(t, a, sizeof a), esk_shape_text(&want, b, sizeof b));
}

esk_value esk_prim_flatten(const char *loc, esk_value a) {
  T_AD_CHECK1("flatten", a);
  esk_tensor *t = esk_to_tensor(loc, "flatten", a);
  esk_tensor *v = esk_t_view(esk_tensor_contiguous(t));
  v->rank = 1;
  v->dims[0] = t->size;
  v->strides[0] = 1;
  return esk_tensor_value(v);
}
