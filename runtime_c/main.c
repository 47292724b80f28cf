/* Program entry: collector start-up, output buffering, the big program stack, and the
 * last-resort fault handler. */
#define _GNU_SOURCE /* pthread_getattr_np */
#define GC_THREADS
#include <gc.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eshkol_rt.h"

char *esk_stack_limit;
int esk_argc;
char **esk_argv;

#define PROGRAM_STACK_SIZE ((size_t)1 << 30)
/* Room left below the limit for the error path (printing, libc) once the check fires. */
#define STACK_MARGIN ((size_t)256 << 10)
#define ALTSTACK_SIZE ((size_t)64 << 10)
#define INITIAL_HEAP ((size_t)32 << 20)

/* The collector's roots are the stacks, the main program's data, and what the runtime
 * registers: compiled modules' globals (esk_init_globals) and, below, the runtime library's own
 * data.  It does not scan every shared object's data: inside `eshkol run` those are Python's
 * and MLIR's, tens of megabytes with no Eshkol pointers, and scanning them on each collection
 * doubled the time of allocation-heavy programs. */
static int register_runtime_data(struct dl_phdr_info *info, size_t size, void *self) {
  (void)size;
  uintptr_t addr = (uintptr_t)self;
  int mine = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && addr >= lo && addr < lo + ph->p_memsz) mine = 1;
  }
  if (!mine) return 0;
  /* The shared runtime, or the executable it is linked into (with dynamic-library scanning
   * off, the collector does not scan the executable's data by itself either). */
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
      char *lo = (char *)(info->dlpi_addr + ph->p_vaddr);
      GC_add_roots(lo, lo + ph->p_memsz);
    }
  }
  return 1;
}

static void fault_handler(int sig) {
  (void)sig;
  static const char msg[] = "error: stack overflow or memory fault\n";
  fflush(stdout);
  if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
  _exit(1);
}

/* The alternate signal stack is per thread, so every thread that runs Scheme code needs one
 * for the handler to run after its own stack overflowed. */
static void *install_altstack(void) {
  stack_t ss = {.ss_sp = malloc(ALTSTACK_SIZE), .ss_size = ALTSTACK_SIZE};
  if (ss.ss_sp) sigaltstack(&ss, NULL);
  return ss.ss_sp;
}

static void remove_altstack(void *mem) {
  stack_t ss = {.ss_flags = SS_DISABLE};
  sigaltstack(&ss, NULL);
  free(mem);
}

void esk_init(int argc, char **argv) {
  static int initialised;
  if (initialised) return;
  initialised = 1;
  /* One marker thread: Eshkol programs mostly drop what they allocate, so each collection has
   * little to mark and parallel markers only add hand-offs (measured: a cons-heavy loop ran
   * 2x faster with one marker on 2 cores).  GC_MARKERS in the environment still overrides. */
  if (!getenv("GC_MARKERS")) GC_set_markers_count(1);
  GC_set_no_dls(1);
  GC_INIT();
  dl_iterate_phdr(register_runtime_data, (void *)&esk_argbuf_main);
  esk_numbers_init();
  /* The collector's default starting heap is tiny, so allocation-heavy programs begin with a
   * burst of collections; a modest head start measured ~2x faster on cons-heavy loops. */
  if (!getenv("GC_INITIAL_HEAP_SIZE")) GC_expand_hp(INITIAL_HEAP);
  setvbuf(stdout, NULL, _IOFBF, 64 << 10);
  esk_argc = argc;
  esk_argv = argv;

  install_altstack();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fault_handler;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
}

void esk_flush(void) {
  fflush(stdout);
  fflush(stderr);
}

static void set_stack_limit(void) {
  pthread_attr_t attr;
  void *lo;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  if (pthread_attr_getstack(&attr, &lo, &size) == 0 && size > 2 * STACK_MARGIN)
    esk_stack_limit = (char *)lo + STACK_MARGIN;
  pthread_attr_destroy(&attr);
}

static void *program_thread(void *entry) {
  void *altstack = install_altstack();
  set_stack_limit();
  ((void (*)(void))entry)();
  esk_flush();
  /* A stale limit would make code later called on another stack (the JIT's caller) see a
   * false overflow. */
  esk_stack_limit = NULL;
  remove_altstack(altstack);
  return NULL;
}

int esk_run(void (*entry)(void)) {
  /* The stack is mmap'd and only touched pages cost memory; under a tight address-space
   * limit fall back to smaller stacks, and finally to the calling thread. */
  for (size_t size = PROGRAM_STACK_SIZE; size >= ((size_t)16 << 20); size /= 4) {
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, size);
    int rc = pthread_create(&t, &attr, program_thread, (void *)entry);
    pthread_attr_destroy(&attr);
    if (rc == 0) {
      pthread_join(t, NULL);
      return 0;
    }
  }
  /* The calling thread keeps its alternate stack from esk_init; only set the limit. */
  set_stack_limit();
  entry();
  esk_flush();
  esk_stack_limit = NULL;
  return 0;
}
