/* A stand-in CUDA driver for tests on machines without a GPU (tests/py/test_cuda.py).
 *
 * Device memory is real memory that the host cannot touch: one shared mapping seen twice, as
 * PROT_NONE at the addresses handed out as device pointers and read-write here, where the
 * copies go.  So a host read or write of a device pointer faults exactly as on a GPU, and the
 * runtime's host paths (printing, indexing, copies) are exercised for real.  Kernels do not
 * run: a launch fills nothing, so values are meaningless; the point is that no operation on
 * CUDA tensors crashes the process.  Build: cc -shared -fPIC -o libfakecuda.so fake_libcuda.c */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

#define ARENA ((size_t)1 << 32) /* 4 GiB of address space (pages appear when first copied to) */
static char *dev_view, *host_view;
static size_t used;

static int arena(void) {
  if (dev_view) return 1;
  int fd = memfd_create("fake-cuda", 0);
  if (fd < 0 || ftruncate(fd, (off_t)ARENA) != 0) return 0;
  dev_view = mmap(NULL, ARENA, PROT_NONE, MAP_SHARED, fd, 0);
  host_view = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return dev_view != MAP_FAILED && host_view != MAP_FAILED;
}

static void *mine(CUdeviceptr p) { return host_view + ((char *)(uintptr_t)p - dev_view); }

CUresult cuInit(unsigned flags) { (void)flags; return arena() ? 0 : 100; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int i) { *d = i; return 0; }
CUresult cuDeviceGetName(char *name, int len, int d) {
  (void)d;
  strncpy(name, "fake", (size_t)len);
  return 0;
}
CUresult cuDevicePrimaryCtxRetain(void **c, int d) { (void)d; *c = (void *)1; return 0; }
CUresult cuCtxSetCurrent(void *c) { (void)c; return 0; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
  size_t b = (bytes + 255) & ~(size_t)255;
  if (used + b > ARENA) return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
  *p = (CUdeviceptr)(uintptr_t)(dev_view + used);
  used += b;
  return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { (void)p; return 0; }
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
  *free_bytes = ARENA - used;
  *total = ARENA;
  return 0;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { memcpy(mine(dst), src, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { memcpy(dst, mine(src), n); return 0; }
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  memmove(mine(dst), mine(src), n);
  return 0;
}
CUresult cuModuleLoadDataEx(void **m, const void *image, unsigned n, int *o, void **v) {
  (void)image, (void)n, (void)o, (void)v;
  *m = (void *)1;
  return 0;
}
CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
  (void)m, (void)name;
  *f = (void *)1;
  return 0;
}
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void *stream, void **params, void **extra) {
  (void)f, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)shared, (void)stream,
      (void)params, (void)extra;
  return 0;
}
CUresult cuGetErrorString(CUresult r, const char **s) {
  (void)r;
  *s = "fake CUDA error";
  return 0;
}
