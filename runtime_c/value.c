/* Heap objects: allocation on the Boehm collector, constructors, symbol interning. */
#define GC_THREADS
#include <gc.h>
#include <gc/gc_inline.h>
#include <gc/gc_mark.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "eshkol_rt.h"

void *esk_alloc(size_t bytes) {
  void *p = GC_MALLOC(bytes);
  if (!p) esk_error(NULL, "out of memory", 0, NULL);
  return p;
}

void *esk_alloc_atomic(size_t bytes) {
  void *p = GC_MALLOC_ATOMIC(bytes);
  if (!p) esk_error(NULL, "out of memory", 0, NULL);
  return p;
}

void esk_register_roots(void *start, void *end) { GC_add_roots(start, end); }

/* Thread-local storage is not scanned by the collector, so the buffer itself is an
 * uncollectable (hence scanned) object and only the pointer to it lives in TLS. */
static __thread esk_value *argbuf;

esk_value *esk_argbuf(void) {
  if (!argbuf) {
    argbuf = GC_MALLOC_UNCOLLECTABLE(ESK_MAX_ARGS * sizeof(esk_value));
    if (!argbuf) esk_error(NULL, "out of memory", 0, NULL);
  }
  return argbuf;
}

static inline esk_value heap_value(int64_t tag, void *p) {
  return (esk_value){tag, (int64_t)(intptr_t)p};
}

/* Pairs are the hottest allocation.  They have their own collector kind: objects of exactly
 * 32 bytes (the normal kind adds a byte for one-past-the-end pointers, which rounds a pair up
 * to 48) whose descriptor scans just car and cdr.  They are taken from a batch
 * (GC_generic_malloc_many) instead of one collector call each (measured: 1.67 -> 1.17 G
 * instructions for 10^7 conses); the batch is linked through the objects' first words and its
 * head is a static, so a collector root (the runtime's data is registered in esk_init): the
 * reserved pairs are not reclaimed under it; compiled code pops pairs from it inline (the C
 * function only refills it).  One program thread conses at a time today;
 * parallel workers will each need their own batch. */
void *esk_pair_batch; /* also taken from inline by compiled code (lower/fastpaths.py) */
static int pair_kind = -1;

/* Pinned pair blocks.  The collector frees a block whose objects all died and, for the next
 * batch, splits a fresh block off a coalesced free one and lays out its free list: in a loop
 * that conses and drops lists that was ~45% of the run (GC_allochblk_nth, GC_build_fl).  So
 * the first pair of each new pair block, for up to PIN_BLOCKS blocks (32 MB, the initial
 * heap), is kept alive from pair_pins (runtime data: a root): the block never empties, is
 * never freed, and the collector's lazy sweep makes its dead pairs a free list in place
 * (measured: 10^8 conses 1.1 -> 0.75 s).  Costs: one pair in 128, and up to 32 MB that stays
 * pair memory once used. */
#define PIN_BLOCKS 8192
#define PIN_SLOTS (2 * PIN_BLOCKS) /* open addressing, at most half full */
/* volatile: only the collector reads it, so the compiler would drop the stores */
static void *volatile pair_pins[PIN_BLOCKS];
static uintptr_t pinned_blocks[PIN_SLOTS];
static int n_pins;

/* Whether block b (an address >> LOG_HBLKSIZE, never 0) was pinned; records it if not and
 * `record`. */
static int pin_seen(uintptr_t b, int record) {
  size_t i = (size_t)(b * 0x9E3779B97F4A7C15ull) & (PIN_SLOTS - 1);
  for (; pinned_blocks[i]; i = (i + 1) & (PIN_SLOTS - 1))
    if (pinned_blocks[i] == b) return 1;
  if (record) pinned_blocks[i] = b;
  return 0;
}

/* At the start of each collection: the batch is dropped (its pairs are garbage again).  Pairs
 * are not cleared when freed (their car and cdr are always written when they are handed out),
 * so the batch's stale contents would otherwise keep dead objects alive. */
static void GC_CALLBACK drop_pair_batch(void) { esk_pair_batch = NULL; }

void esk_pairs_init(void) {
  if (pair_kind < 0) {
    pair_kind = (int)GC_new_kind(GC_new_free_list(), (GC_word)sizeof(esk_pair) | GC_DS_LENGTH, 0, 0);
    GC_set_start_callback(drop_pair_batch);
  }
}

esk_value esk_cons(esk_value a, esk_value d) {
  void *q = esk_pair_batch;
  if (!q) {
    esk_pairs_init();
    GC_generic_malloc_many(sizeof(esk_pair), pair_kind, &q);
    if (!q) esk_error(NULL, "out of memory", 0, NULL);
    void *next = GC_NEXT(q);
    if (n_pins < PIN_BLOCKS && next && !pin_seen((uintptr_t)q >> 12, 1)) {
      /* cleared: its stale link and fields would keep dead pairs alive */
      memset(q, 0, sizeof(esk_pair));
      pair_pins[n_pins++] = q;
      q = next;
    }
  }
  esk_pair_batch = GC_NEXT(q);
  esk_pair *p = q;
  p->car = a;
  p->cdr = d;
  return heap_value(ESK_T_PAIR, p);
}

esk_string *esk_new_string(int64_t len) {
  esk_string *s = esk_alloc(sizeof *s);
  s->h.type = ESK_T_STRING;
  s->len = len;
  s->data = esk_alloc_atomic((size_t)len + 1);
  s->data[len] = '\0';
  return s;
}

esk_value esk_make_string(const char *utf8, int64_t len) {
  esk_string *s = esk_new_string(len);
  if (len) memcpy(s->data, utf8, (size_t)len);
  return heap_value(ESK_T_STRING, s);
}

esk_value esk_make_string_literal(const char *utf8, int64_t len) {
  esk_string *s = esk_alloc(sizeof *s);
  s->h.type = ESK_T_STRING;
  s->h.flags = ESK_F_IMMUTABLE;
  s->len = len;
  s->data = (char *)utf8;
  return heap_value(ESK_T_STRING, s);
}

esk_value esk_cstring(const char *s) { return esk_make_string(s, (int64_t)strlen(s)); }

/* Open-addressing table of interned symbols.  The pointer lives in this library's data
 * segment, which the collector scans, so the table and every symbol in it stay alive. */
static esk_symbol **symtab;
static size_t symtab_cap, symtab_count;
static pthread_mutex_t symtab_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t hash_bytes(const char *p, int64_t len) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (int64_t i = 0; i < len; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

static void symtab_insert(esk_symbol **tab, size_t cap, esk_symbol *sym) {
  size_t i = hash_bytes(sym->name->data, sym->name->len) & (cap - 1);
  while (tab[i]) i = (i + 1) & (cap - 1);
  tab[i] = sym;
}

static void symtab_grow(void) {
  size_t cap = symtab_cap ? symtab_cap * 2 : 1024;
  esk_symbol **tab = esk_alloc(cap * sizeof *tab);
  for (size_t i = 0; i < symtab_cap; i++)
    if (symtab[i]) symtab_insert(tab, cap, symtab[i]);
  symtab = tab;
  symtab_cap = cap;
}

esk_value esk_intern(const char *utf8, int64_t len) {
  pthread_mutex_lock(&symtab_lock);
  if (2 * (symtab_count + 1) > symtab_cap) symtab_grow();
  uint64_t h = hash_bytes(utf8, len);
  size_t i = h & (symtab_cap - 1);
  esk_symbol *sym;
  while ((sym = symtab[i])) {
    if (sym->name->len == len && memcmp(sym->name->data, utf8, (size_t)len) == 0) goto done;
    i = (i + 1) & (symtab_cap - 1);
  }
  sym = esk_alloc(sizeof *sym);
  sym->h.type = ESK_T_SYMBOL;
  sym->name = (esk_string *)(intptr_t)esk_make_string(utf8, len).payload;
  sym->name->h.flags = ESK_F_IMMUTABLE;
  symtab[i] = sym;
  symtab_count++;
done:
  pthread_mutex_unlock(&symtab_lock);
  return heap_value(ESK_T_SYMBOL, sym);
}

esk_value esk_make_vector(int64_t n, esk_value fill) {
  if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(esk_value) / 2)
    esk_error(NULL, "make-vector: invalid length", 0, NULL);
  esk_vector *v = esk_alloc(sizeof *v);
  v->h.type = ESK_T_VECTOR;
  v->len = n;
  v->items = esk_alloc((size_t)n * sizeof(esk_value));
  for (int64_t i = 0; i < n; i++) v->items[i] = fill;
  return heap_value(ESK_T_VECTOR, v);
}

esk_value esk_make_closure(esk_code code, const char *name, int64_t nfree) {
  esk_closure *c = esk_alloc(sizeof *c + (size_t)nfree * sizeof(esk_value));
  c->h.type = ESK_T_CLOSURE;
  c->code = code;
  c->name = name;
  c->nfree = nfree;
  return heap_value(ESK_T_CLOSURE, c);
}

esk_value esk_make_box(esk_value v) {
  esk_box *b = esk_alloc(sizeof *b);
  b->h.type = ESK_T_BOX;
  b->value = v;
  return heap_value(ESK_T_BOX, b);
}

esk_value esk_list_from_args(int64_t n, esk_value *argv) {
  esk_value r = {ESK_T_NIL, 0};
  for (int64_t i = n - 1; i >= 0; i--) r = esk_cons(argv[i], r);
  return r;
}
