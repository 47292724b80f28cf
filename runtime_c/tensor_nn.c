/* Tensor files of the v1.x neural-network builtins (COMPAT.md section B): tensor-save,
 * tensor-load, model-save, model-load.  The rest of the nn builtins (activations, losses,
 * layers, optimizers) are Eshkol source in stdlib/builtins/nn_*.esk on top of the tensor
 * builtins; only the binary file format needs C.
 *
 * Format (host byte order, little-endian on every supported machine):
 *   tensor file:  "ESKT" u32 version(1) | record
 *   model file:   "ESKM" u32 version(1) u64 count | count x (u8 kind u32 len name[len] record)
 *                 kind 0: the name was a string, 1: a symbol (model-load gives it back as such)
 *   record:       u32 dtype (ESK_DT_*) u32 rank | i64 dims[rank] | data (size x dtype bytes)
 * A CUDA tensor is saved from a host copy; loading always gives a host tensor. */

#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "eshkol_rt.h"
#include "tensor_internal.h"

#define NN_VERSION 1u

static const char *path_of(const char *loc, const char *who, esk_value p) {
  if (p.tag != ESK_T_STRING) esk_error_type(loc, who, "path string", p);
  return ((esk_string *)esk_ptr(p))->data;
}

/* One record: header then contiguous data.  Returns 0 on an I/O error. */
static int write_record(FILE *f, esk_tensor *t) {
  esk_tensor *c = esk_tensor_contiguous(t);
  uint32_t hdr[2] = {(uint32_t)c->dtype, (uint32_t)c->rank};
  if (fwrite(hdr, sizeof hdr, 1, f) != 1) return 0;
  if (c->rank && fwrite(c->dims, sizeof(int64_t), (size_t)c->rank, f) != (size_t)c->rank) return 0;
  size_t n = (size_t)c->size;
  return n == 0 || fwrite(esk_tensor_data(c), esk_dtype_size(c->dtype), n, f) == n;
}

/* The next record as a fresh host tensor, or NULL when the file is short or malformed. */
static esk_tensor *read_record(FILE *f) {
  uint32_t hdr[2];
  if (fread(hdr, sizeof hdr, 1, f) != 1) return NULL;
  if ((hdr[0] != ESK_DT_F64 && hdr[0] != ESK_DT_F32 && hdr[0] != ESK_DT_I64) ||
      hdr[1] > ESK_TENSOR_MAX_RANK)
    return NULL;
  int64_t dims[ESK_TENSOR_MAX_RANK];
  if (hdr[1] && fread(dims, sizeof(int64_t), hdr[1], f) != hdr[1]) return NULL;
  for (uint32_t d = 0; d < hdr[1]; d++)
    if (dims[d] < 0 || dims[d] > ((int64_t)1 << 40)) return NULL;
  esk_tensor *t = esk_tensor_new((int)hdr[0], (int64_t)hdr[1], dims);
  size_t n = (size_t)t->size;
  if (n && fread(esk_tensor_data(t), esk_dtype_size(t->dtype), n, f) != n) return NULL;
  return t;
}

static esk_tensor *host_tensor(const char *loc, const char *who, esk_value v) {
  if (esk_is_cuda_tensor(v)) return esk_tensor_on_host(loc, esk_ptr(v));
  return esk_as_tensor(loc, who, v);
}

/* (tensor-save path t) -> #t; an I/O failure raises a catchable error. */
esk_value esk_prim_tensor_save(const char *loc, esk_value path, esk_value tv) {
  const char *p = path_of(loc, "tensor-save", path);
  esk_tensor *t = host_tensor(loc, "tensor-save", tv);
  FILE *f = fopen(p, "wb");
  if (!f) esk_errorf(loc, "tensor-save: cannot open %s for writing", p);
  uint32_t version = NN_VERSION;
  int ok = fwrite("ESKT", 4, 1, f) == 1 && fwrite(&version, 4, 1, f) == 1 && write_record(f, t);
  if (fclose(f) != 0) ok = 0;
  if (!ok) esk_errorf(loc, "tensor-save: write to %s failed", p);
  return esk_bool(1);
}

static FILE *open_checked(const char *loc, const char *who, const char *p, const char *magic) {
  FILE *f = fopen(p, "rb");
  if (!f) esk_errorf(loc, "%s: cannot open %s", who, p);
  char m[4];
  uint32_t version;
  if (fread(m, 4, 1, f) != 1 || memcmp(m, magic, 4) != 0 || fread(&version, 4, 1, f) != 1 ||
      version != NN_VERSION) {
    fclose(f);
    esk_errorf(loc, "%s: %s is not an Eshkol %s file", who, p,
               magic[3] == 'T' ? "tensor" : "model");
  }
  return f;
}

/* (tensor-load path) -> the tensor tensor-save wrote. */
esk_value esk_prim_tensor_load(const char *loc, esk_value path) {
  const char *p = path_of(loc, "tensor-load", path);
  FILE *f = open_checked(loc, "tensor-load", p, "ESKT");
  esk_tensor *t = read_record(f);
  fclose(f);
  if (!t) esk_errorf(loc, "tensor-load: %s is truncated or malformed", p);
  return esk_tensor_value(t);
}

/* (model-save path alist) -> #t, or #f when the file cannot be written.  Each entry is
 * (name . tensor) with a string or symbol name; a number is saved as a rank-0 tensor. */
esk_value esk_prim_model_save(const char *loc, esk_value path, esk_value alist) {
  const char *p = path_of(loc, "model-save", path);
  uint64_t count = 0;
  for (esk_value l = alist; l.tag == ESK_T_PAIR; l = ((esk_pair *)esk_ptr(l))->cdr) {
    esk_value e = ((esk_pair *)esk_ptr(l))->car;
    if (e.tag != ESK_T_PAIR) esk_error_type(loc, "model-save", "(name . tensor) entry", e);
    esk_value name = ((esk_pair *)esk_ptr(e))->car;
    if (name.tag != ESK_T_STRING && name.tag != ESK_T_SYMBOL)
      esk_error_type(loc, "model-save", "string or symbol name", name);
    count++;
  }
  FILE *f = fopen(p, "wb");
  if (!f) return esk_bool(0);
  uint32_t version = NN_VERSION;
  int ok = fwrite("ESKM", 4, 1, f) == 1 && fwrite(&version, 4, 1, f) == 1 &&
           fwrite(&count, 8, 1, f) == 1;
  for (esk_value l = alist; ok && l.tag == ESK_T_PAIR; l = ((esk_pair *)esk_ptr(l))->cdr) {
    esk_pair *e = esk_ptr(((esk_pair *)esk_ptr(l))->car);
    uint8_t kind = e->car.tag == ESK_T_SYMBOL;
    esk_string *s = kind ? ((esk_symbol *)esk_ptr(e->car))->name : esk_ptr(e->car);
    uint32_t len = (uint32_t)s->len;
    esk_tensor *t = host_tensor(loc, "model-save", e->cdr);
    ok = fwrite(&kind, 1, 1, f) == 1 && fwrite(&len, 4, 1, f) == 1 &&
         (len == 0 || fwrite(s->data, len, 1, f) == 1) && write_record(f, t);
  }
  if (fclose(f) != 0) ok = 0;
  return esk_bool(ok);
}

/* (model-load path) -> list of (name . tensor) in the saved order. */
esk_value esk_prim_model_load(const char *loc, esk_value path) {
  const char *p = path_of(loc, "model-load", path);
  FILE *f = open_checked(loc, "model-load", p, "ESKM");
  uint64_t count;
  if (fread(&count, 8, 1, f) != 1) goto bad;
  esk_value head = esk_nil(), *tail = &head;
  for (uint64_t i = 0; i < count; i++) {
    uint8_t kind;
    uint32_t len;
    if (fread(&kind, 1, 1, f) != 1 || kind > 1 || fread(&len, 4, 1, f) != 1 || len > (1u << 20))
      goto bad;
    char *buf = esk_alloc_atomic(len + 1);
    if (len && fread(buf, len, 1, f) != 1) goto bad;
    esk_tensor *t = read_record(f);
    if (!t) goto bad;
    esk_value name = kind ? esk_intern(buf, len) : esk_make_string(buf, len);
    *tail = esk_cons(esk_cons(name, esk_tensor_value(t)), esk_nil());
    tail = &((esk_pair *)esk_ptr(*tail))->cdr;
  }
  fclose(f);
  return head;
bad:
  fclose(f);
  esk_errorf(loc, "model-load: %s is truncated or malformed", p);
}
