/* Hash tables (LANGUAGE.md: equal?-based by default; SRFI-69/R7RS-ish names plus the v1.x
 * aliases of COMPAT.md).  Entries are kept in insertion order, so keys/values/alist list
 * them in the order they were first added. */
#include <stdarg.h>
#include <string.h>

#include "eshkol_rt.h"

#define NIL ((esk_value){ESK_T_NIL, 0})
#define VOID ((esk_value){ESK_T_VOID, 0})
#define FALSE ((esk_value){ESK_T_BOOL, 0})
#define PAIR(v) ((esk_pair *)esk_ptr(v))
#define DEFAULTED(argc, i, argv) ((argc) <= (i) || (argv)[i].tag == ESK_T_DEFAULT)

enum { K_EQUAL, K_EQV, K_EQ, K_STRING };

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static uint64_t hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
  return h;
}

static uint64_t hash_value(esk_value v, int kind, int depth) {
  uint64_t t = (uint64_t)v.tag * 0x9E3779B97F4A7C15ULL;
  switch (v.tag) {
    case ESK_T_NIL: case ESK_T_VOID: case ESK_T_EOF: case ESK_T_DEFAULT: case ESK_T_UNBOUND:
      return mix(t);
    case ESK_T_BIGNUM:
    case ESK_T_RATIONAL:
      if (kind == K_EQ) break;
      {
        char *text = esk_number_to_cstring(v, 16);
        return mix(t ^ hash_bytes(text, strlen(text)));
      }
    case ESK_T_STRING:
      if (kind == K_EQUAL || kind == K_STRING) {
        esk_string *s = esk_ptr(v);
        return mix(t ^ hash_bytes(s->data, (size_t)s->len));
      }
      break;
    case ESK_T_BYTEVECTOR:
      if (kind == K_EQUAL) {
        esk_bytevector *b = esk_ptr(v);
        return mix(t ^ hash_bytes(b->data, (size_t)b->len));
      }
      break;
    case ESK_T_PAIR:
      if (kind == K_EQUAL) {
        if (depth > 8) return mix(t);
        return mix(t ^ hash_value(PAIR(v)->car, kind, depth + 1) * 31 ^
                   hash_value(PAIR(v)->cdr, kind, depth + 1));
      }
      break;
    case ESK_T_VECTOR:
      if (kind == K_EQUAL) {
        esk_vector *vec = esk_ptr(v);
        uint64_t h = t ^ (uint64_t)vec->len;
        if (depth > 8) return mix(h);
        for (int64_t i = 0; i < vec->len && i < 8; i++) h = h * 31 ^ hash_value(vec->items[i], kind, depth + 1);
        return mix(h);
      }
      break;
    case ESK_T_BOX:
      if (kind == K_EQUAL) return hash_value(((esk_box *)esk_ptr(v))->value, kind, depth + 1);
      break;
    default:
      break;
  }
  return mix(t ^ (uint64_t)v.payload);
}

static int same(int kind, esk_value a, esk_value b) {
  switch (kind) {
    case K_EQUAL: return esk_equal(a, b);
    case K_EQV: return (int)esk_prim_eqv(NULL, a, b).payload;
    case K_EQ: return (int)esk_prim_eq(NULL, a, b).payload;
    default:
      if (a.tag == ESK_T_STRING && b.tag == ESK_T_STRING) return esk_equal(a, b);
      return (int)esk_prim_eqv(NULL, a, b).payload;
  }
}

static esk_value make_table(int kind, int64_t cap) {
  esk_hashtable *t = esk_alloc(sizeof *t);
  t->h.type = ESK_T_HASHTABLE;
  t->kind = kind;
  if (cap < 8) cap = 8;
  t->ecap = cap;
  t->entries = esk_alloc((size_t)cap * sizeof(esk_hash_entry));
  int64_t icap = 16;
  while (icap < 2 * cap) icap *= 2;
  t->icap = icap;
  t->index = esk_alloc_atomic((size_t)icap * sizeof(int64_t));
  memset(t->index, 0xff, (size_t)icap * sizeof(int64_t));
  return (esk_value){ESK_T_HASHTABLE, (int64_t)(intptr_t)t};
}

static esk_hashtable *need_table(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_HASHTABLE) esk_error_type(loc, who, "hash table", v);
  return esk_ptr(v);
}

static esk_hashtable *mutable_table(const char *loc, const char *who, esk_value v) {
  esk_hashtable *t = need_table(loc, who, v);
  if (t->h.flags & ESK_F_IMMUTABLE) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: attempt to modify an immutable hash table:", who);
    esk_raise_error(loc, msg, 1, &v);
  }
  return t;
}

/* Entry number of key, or -1. */
static int64_t find(esk_hashtable *t, esk_value key, uint64_t h) {
  for (int64_t i = (int64_t)(h & (uint64_t)(t->icap - 1));; i = (i + 1) & (t->icap - 1)) {
    int64_t e = t->index[i];
    if (e < 0) return -1;
    esk_hash_entry *en = &t->entries[e];
    if (en->live && en->hash == h && same((int)t->kind, en->key, key)) return e;
  }
}

/* Compacts the live entries into a table sized for them plus room to grow. */
static void rebuild(esk_hashtable *t) {
  int64_t ecap = t->count * 2 + 8;
  esk_hash_entry *entries = esk_alloc((size_t)ecap * sizeof(esk_hash_entry));
  int64_t n = 0;
  for (int64_t i = 0; i < t->used; i++)
    if (t->entries[i].live) entries[n++] = t->entries[i];
  int64_t icap = 16;
  while (icap < 2 * ecap) icap *= 2;
  int64_t *index = esk_alloc_atomic((size_t)icap * sizeof(int64_t));
  memset(index, 0xff, (size_t)icap * sizeof(int64_t));
  for (int64_t e = 0; e < n; e++) {
    int64_t i = (int64_t)(entries[e].hash & (uint64_t)(icap - 1));
    while (index[i] >= 0) i = (i + 1) & (icap - 1);
    index[i] = e;
  }
  t->entries = entries;
  t->ecap = ecap;
  t->used = n;
  t->index = index;
  t->icap = icap;
}

static void put(esk_hashtable *t, esk_value key, esk_value value) {
  uint64_t h = hash_value(key, (int)t->kind, 0);
  int64_t e = find(t, key, h);
  if (e >= 0) {
    t->entries[e].value = value;
    return;
  }
  if (t->used == t->ecap) rebuild(t);
  e = t->used++;
  t->entries[e] = (esk_hash_entry){key, value, h, 1};
  t->count++;
  int64_t i = (int64_t)(h & (uint64_t)(t->icap - 1));
  while (t->index[i] >= 0) i = (i + 1) & (t->icap - 1);
  t->index[i] = e;
}

static esk_hash_entry *get(esk_hashtable *t, esk_value key) {
  int64_t e = find(t, key, hash_value(key, (int)t->kind, 0));
  return e < 0 ? NULL : &t->entries[e];
}

/* ---- constructors ------------------------------------------------------------------------------ */

/* (make-hash-table [equiv-proc-or-size ...]): equal?-based unless given eq?/eqv?/string=?. */
esk_value esk_prim_make_hash_table(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc;
  int kind = K_EQUAL;
  for (int64_t i = 0; i < argc; i++) {
    esk_value a = argv[i];
    if (a.tag != ESK_T_CLOSURE) continue;
    const char *name = ((esk_closure *)esk_ptr(a))->name;
    if (!name) continue;
    if (!strcmp(name, "eq?")) kind = K_EQ;
    else if (!strcmp(name, "eqv?") || !strcmp(name, "=")) kind = K_EQV;
    else if (!strcmp(name, "string=?")) kind = K_STRING;
  }
  return make_table(kind, 8);
}

esk_value esk_prim_make_eq_hash_table(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc, (void)argc, (void)argv;
  return make_table(K_EQ, 8);
}
esk_value esk_prim_make_eqv_hash_table(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc, (void)argc, (void)argv;
  return make_table(K_EQV, 8);
}
esk_value esk_prim_make_string_hash_table(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc, (void)argc, (void)argv;
  return make_table(K_STRING, 8);
}

esk_value esk_prim_is_hash_table(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_HASHTABLE);
}

/* ---- access ------------------------------------------------------------------------------------ */

esk_value esk_prim_hash_table_set(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  put(mutable_table(loc, "hash-table-set!", argv[0]), argv[1], argv[2]);
  return VOID;
}

/* (hash-table-ref h k [failure-thunk [success-proc]]) */
esk_value esk_prim_hash_table_ref(const char *loc, int64_t argc, esk_value *argv) {
  esk_hash_entry *e = get(need_table(loc, "hash-table-ref", argv[0]), argv[1]);
  if (!e) {
    if (!DEFAULTED(argc, 2, argv)) return esk_call(loc, argv[2], 0, NULL);
    esk_raise_error(loc, "hash-table-ref: key not found:", 1, &argv[1]);
  }
  if (!DEFAULTED(argc, 3, argv)) return esk_call(loc, argv[3], 1, &e->value);
  return e->value;
}

esk_value esk_prim_hash_table_ref_default(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_hash_entry *e = get(need_table(loc, "hash-table-ref/default", argv[0]), argv[1]);
  return e ? e->value : argv[2];
}

/* (hash-ref h k [default]) -> value, default, or #f (v1.x). */
esk_value esk_prim_hash_ref(const char *loc, int64_t argc, esk_value *argv) {
  esk_hash_entry *e = get(need_table(loc, "hash-ref", argv[0]), argv[1]);
  if (e) return e->value;
  return DEFAULTED(argc, 2, argv) ? FALSE : argv[2];
}

/* Deletes key; returns whether it was there (v1.x returns a boolean). */
esk_value esk_prim_hash_table_delete(const char *loc, esk_value h, esk_value k) {
  esk_hashtable *t = mutable_table(loc, "hash-table-delete!", h);
  int64_t e = find(t, k, hash_value(k, (int)t->kind, 0));
  if (e < 0) return FALSE;
  t->entries[e].live = 0;
  t->entries[e].key = VOID;
  t->entries[e].value = VOID;
  t->count--;
  return esk_bool(1);
}

esk_value esk_prim_hash_table_contains(const char *loc, esk_value h, esk_value k) {
  return esk_bool(get(need_table(loc, "hash-table-contains?", h), k) != NULL);
}

esk_value esk_prim_hash_table_count(const char *loc, esk_value h) {
  return esk_fixnum(need_table(loc, "hash-table-count", h)->count);
}

static esk_value listing(const char *loc, const char *who, esk_value h, int what) {
  esk_hashtable *t = need_table(loc, who, h);
  esk_value head = NIL, *tail = &head;
  for (int64_t i = 0; i < t->used; i++) {
    esk_hash_entry *e = &t->entries[i];
    if (!e->live) continue;
    esk_value item = what == 0 ? e->key : what == 1 ? e->value : esk_cons(e->key, e->value);
    *tail = esk_cons(item, NIL);
    tail = &PAIR(*tail)->cdr;
  }
  return head;
}

esk_value esk_prim_hash_table_keys(const char *loc, esk_value h) {
  return listing(loc, "hash-table-keys", h, 0);
}
esk_value esk_prim_hash_table_values(const char *loc, esk_value h) {
  return listing(loc, "hash-table-values", h, 1);
}
esk_value esk_prim_hash_table_to_alist(const char *loc, esk_value h) {
  return listing(loc, "hash-table->alist", h, 2);
}

/* (hash-table-update! h k proc [default]): default is a thunk (SRFI-69) or, if not a
 * procedure, the value itself. */
esk_value esk_prim_hash_table_update(const char *loc, int64_t argc, esk_value *argv) {
  esk_hashtable *t = mutable_table(loc, "hash-table-update!", argv[0]);
  esk_hash_entry *e = get(t, argv[1]);
  esk_value cur;
  if (e) cur = e->value;
  else if (DEFAULTED(argc, 3, argv))
    esk_raise_error(loc, "hash-table-update!: key not found:", 1, &argv[1]);
  else if (argv[3].tag == ESK_T_CLOSURE) cur = esk_call(loc, argv[3], 0, NULL);
  else cur = argv[3];
  esk_value nv = esk_call(loc, argv[2], 1, &cur);
  put(t, argv[1], nv);
  return VOID;
}

esk_value esk_prim_hash_table_update_default(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_hashtable *t = mutable_table(loc, "hash-table-update!/default", argv[0]);
  esk_hash_entry *e = get(t, argv[1]);
  esk_value cur = e ? e->value : argv[3];
  esk_value nv = esk_call(loc, argv[2], 1, &cur);
  put(t, argv[1], nv);
  return VOID;
}

/* (hash-table-walk h proc): proc gets key and value. Entries added meanwhile may be skipped. */
esk_value esk_prim_hash_table_walk(const char *loc, esk_value h, esk_value proc) {
  esk_hashtable *t = need_table(loc, "hash-table-walk", h);
  for (int64_t i = 0; i < t->used; i++) {
    esk_hash_entry *e = &t->entries[i];
    if (!e->live) continue;
    esk_value args[2] = {e->key, e->value};
    esk_call(loc, proc, 2, args);
  }
  return VOID;
}

esk_value esk_prim_hash_table_clear(const char *loc, esk_value h) {
  esk_hashtable *t = mutable_table(loc, "hash-table-clear!", h);
  esk_value fresh = make_table((int)t->kind, 8);
  esk_hashtable *f = esk_ptr(fresh);
  t->count = 0;
  t->used = 0;
  t->ecap = f->ecap;
  t->entries = f->entries;
  t->icap = f->icap;
  t->index = f->index;
  return VOID;
}

esk_value esk_prim_hash_table_copy(const char *loc, int64_t argc, esk_value *argv) {
  esk_hashtable *t = need_table(loc, "hash-table-copy", argv[0]);
  esk_value r = make_table((int)t->kind, t->count + 1);
  esk_hashtable *c = esk_ptr(r);
  for (int64_t i = 0; i < t->used; i++)
    if (t->entries[i].live) put(c, t->entries[i].key, t->entries[i].value);
  if (argc < 2 || !esk_is_true(argv[1])) { /* R7RS-large / SRFI-69: mutable unless asked */ }
  return r;
}

/* (hash-table-fold h kons knil): (kons key value acc). */
esk_value esk_prim_hash_table_fold(const char *loc, int64_t argc, esk_value *argv) {
  (void)argc;
  esk_hashtable *t = need_table(loc, "hash-table-fold", argv[0]);
  esk_value acc = argv[2];
  for (int64_t i = 0; i < t->used; i++) {
    esk_hash_entry *e = &t->entries[i];
    if (!e->live) continue;
    esk_value args[3] = {e->key, e->value, acc};
    acc = esk_call(loc, argv[1], 3, args);
  }
  return acc;
}

/* (alist->hash-table alist [equiv]) */
esk_value esk_prim_alist_to_hash_table(const char *loc, int64_t argc, esk_value *argv) {
  esk_value r = esk_prim_make_hash_table(loc, argc - 1, argv + 1);
  esk_hashtable *t = esk_ptr(r);
  for (esk_value l = argv[0]; l.tag == ESK_T_PAIR; l = PAIR(l)->cdr) {
    esk_value item = PAIR(l)->car;
    if (item.tag != ESK_T_PAIR) esk_error_type(loc, "alist->hash-table", "pair", item);
    if (!get(t, PAIR(item)->car)) put(t, PAIR(item)->car, PAIR(item)->cdr);
  }
  return r;
}
