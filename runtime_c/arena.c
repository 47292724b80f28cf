/* Arena regions: O(1) bump allocation, freed whole at the region's exit.
 *
 * Chunks come from the collector as uncollectable (scanned) memory, so an arena object may
 * point into the collected heap.  Only allocations the compiler proves do not outlive the
 * region may be placed here; everything else goes to the collected heap (esk_alloc). */
#define GC_THREADS
#include <gc.h>

#include "eshkol_rt.h"

#include <string.h>

#define ARENA_MIN_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

typedef struct esk_chunk {
  struct esk_chunk *prev;
  size_t size;  /* usable bytes after this header */
  size_t used;
  _Alignas(ARENA_ALIGN) unsigned char data[];
} esk_chunk;

struct esk_arena {
  esk_chunk *chunk;
  size_t chunk_size;  /* size of the next chunk to allocate */
  size_t allocated;   /* bytes handed out, for memory-stats */
  struct esk_arena *outer;  /* enclosing region on this thread */
};

static __thread esk_arena *current_region;
static size_t arena_bytes_live;  /* chunk bytes held by all arenas (statistics only) */

static esk_chunk *new_chunk(size_t size) {
  esk_chunk *c = GC_MALLOC_UNCOLLECTABLE(sizeof(esk_chunk) + size);
  if (!c) esk_error(NULL, "out of memory (arena)", 0, NULL);
  c->size = size;
  c->used = 0;
  c->prev = NULL;
  __atomic_add_fetch(&arena_bytes_live, size, __ATOMIC_RELAXED);
  return c;
}

esk_arena *esk_arena_new(size_t size_hint) {
  esk_arena *a = GC_MALLOC_UNCOLLECTABLE(sizeof *a);
  if (!a) esk_error(NULL, "out of memory (arena)", 0, NULL);
  a->chunk_size = size_hint > ARENA_MIN_CHUNK ? size_hint : ARENA_MIN_CHUNK;
  a->chunk = new_chunk(a->chunk_size);
  a->allocated = 0;
  a->outer = NULL;
  return a;
}

void *esk_arena_alloc(esk_arena *a, size_t bytes) {
  bytes = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  esk_chunk *c = a->chunk;
  if (c->used + bytes > c->size) {
    /* Grow geometrically so a region that allocates a lot needs few chunks. */
    size_t size = a->chunk_size * 2;
    if (size < bytes) size = bytes;
    a->chunk_size = size;
    esk_chunk *n = new_chunk(size);
    n->prev = c;
    a->chunk = c = n;
  }
  void *p = c->data + c->used;
  c->used += bytes;
  a->allocated += bytes;
  memset(p, 0, bytes);
  return p;
}

size_t esk_arena_allocated(const esk_arena *a) { return a->allocated; }

void esk_arena_free(esk_arena *a) {
  for (esk_chunk *c = a->chunk; c;) {
    esk_chunk *prev = c->prev;
    __atomic_sub_fetch(&arena_bytes_live, c->size, __ATOMIC_RELAXED);
    GC_FREE(c);
    c = prev;
  }
  GC_FREE(a);
}

size_t esk_arena_bytes_live(void) { return __atomic_load_n(&arena_bytes_live, __ATOMIC_RELAXED); }

void esk_region_enter(size_t size_hint) {
  esk_arena *a = esk_arena_new(size_hint);
  a->outer = current_region;
  current_region = a;
}

void esk_region_exit(void) {
  esk_arena *a = current_region;
  if (!a) return;
  current_region = a->outer;
  esk_arena_free(a);
}

esk_arena *esk_region_current(void) { return current_region; }
