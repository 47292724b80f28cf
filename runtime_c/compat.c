/* Builtins of Eshkol v1.x (COMPAT.md section B) that are best written in C: extra math
 * functions, bitwise operations on exact integers, binary port I/O, the system interface
 * (environment, files and paths, time) and random numbers.  Registered in
 * eshkol/dialect/prims_compat.py. */
#define _GNU_SOURCE
#include <gmp.h>

#include "eshkol_rt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define FALSE ((esk_value){ESK_T_BOOL, 0})
#define TRUE ((esk_value){ESK_T_BOOL, 1})
#define VOID ((esk_value){ESK_T_VOID, 0})
#define EOFV ((esk_value){ESK_T_EOF, 0})
#define DEFAULTED(argc, i, argv) ((argc) <= (i) || (argv)[i].tag == ESK_T_DEFAULT)

static double real_arg(const char *loc, const char *who, esk_value v) {
  if (v.tag == ESK_T_FIXNUM) return (double)v.payload;
  if (v.tag == ESK_T_FLONUM) return esk_flonum_value(v);
  if (v.tag == ESK_T_BIGNUM || v.tag == ESK_T_RATIONAL) return esk_number_to_double(v);
  esk_error_type(loc, who, "real number", v);
}

static const char *str_arg(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_STRING) esk_error_type(loc, who, "string", v);
  return ((esk_string *)esk_ptr(v))->data;
}

/* ---- math ------------------------------------------------------------------------------- */

#define UNARY_D(cname, who, expr)                                  \
  esk_value esk_prim_##cname(const char *loc, esk_value a) {       \
    double x = real_arg(loc, who, a);                              \
    return esk_flonum(expr);                                       \
  }
UNARY_D(v1_fabs, "fabs", fabs(x))
/* cbrt with one Newton step: libm's cbrt may miss exact cubes by an ulp (cbrt(27) = 3). */
static double cbrt_exact(double x) {
  double r = cbrt(x);
  if (r != 0 && isfinite(r)) {
    double better = r - (r * r * r - x) / (3 * r * r);
    if (fabs(better * better * better - x) < fabs(r * r * r - x)) r = better;
  }
  return r;
}
UNARY_D(v1_cbrt, "cbrt", cbrt_exact(x))
UNARY_D(v1_exp2, "exp2", exp2(x))
UNARY_D(v1_log10, "log10", log10(x))
UNARY_D(v1_log2, "log2", log2(x))
UNARY_D(v1_asinh, "asinh", asinh(x))
UNARY_D(v1_acosh, "acosh", acosh(x))
UNARY_D(v1_atanh, "atanh", atanh(x))

/* (log x [base]): natural logarithm (elementwise on tensors, through esk_prim_log), or
 * log base b as (/ (log x) (log b)). */
esk_value esk_prim_v1_log(const char *loc, int64_t argc, esk_value *argv) {
  esk_value l = esk_prim_log(loc, argv[0]);
  if (DEFAULTED(argc, 1, argv)) return l;
  return esk_prim_div2(loc, l, esk_prim_log(loc, argv[1]));
}

/* (make-rational n d), (/rational n d): the exact quotient of two exact integers. */
esk_value esk_prim_v1_make_rational(const char *loc, esk_value n, esk_value d) {
  if (!esk_is_true(esk_prim_is_exact_integer(loc, n))) esk_error_type(loc, "make-rational", "exact integer", n);
  if (!esk_is_true(esk_prim_is_exact_integer(loc, d))) esk_error_type(loc, "make-rational", "exact integer", d);
  return esk_prim_div2(loc, n, d);
}

esk_value esk_prim_v1_is_exact_rational(const char *loc, esk_value x) {
  (void)loc;
  return esk_bool(x.tag == ESK_T_FIXNUM || x.tag == ESK_T_BIGNUM || x.tag == ESK_T_RATIONAL);
}

/* (void arg ...): the unspecified value. */
esk_value esk_prim_v1_void(const char *loc, int64_t argc, esk_value *argv) {
  (void)loc, (void)argc, (void)argv;
  return VOID;
}

/* ---- bitwise operations on exact integers (two's complement, any size) --------------------- */

static void get_int(const char *loc, const char *who, mpz_t r, esk_value v) {
  if (v.tag == ESK_T_FIXNUM) mpz_set_si(r, v.payload);
  else if (v.tag == ESK_T_BIGNUM) mpz_set(r, ((esk_bignum *)esk_ptr(v))->z);
  else esk_error_type(loc, who, "exact integer", v);
}

static esk_value from_mpz(mpz_t z) {
  if (mpz_fits_slong_p(z)) return esk_fixnum(mpz_get_si(z));
  char *s = mpz_get_str(NULL, 10, z);
  esk_value v = esk_make_exact_from_string(s);
  void (*freefn)(void *, size_t);
  mp_get_memory_functions(NULL, NULL, &freefn);
  freefn(s, strlen(s) + 1);
  return v;
}

typedef void (*mpz_binop)(mpz_ptr, mpz_srcptr, mpz_srcptr);

static esk_value bitop(const char *loc, const char *who, int64_t argc, esk_value *argv,
                       mpz_binop op, long identity) {
  int all_fix = 1;
  for (int64_t i = 0; i < argc; i++) all_fix &= argv[i].tag == ESK_T_FIXNUM;
  if (all_fix) {
    int64_t acc = identity;
    for (int64_t i = 0; i < argc; i++) {
      int64_t x = argv[i].payload;
      acc = op == mpz_and ? (acc & x) : op == mpz_ior ? (acc | x) : (acc ^ x);
    }
    return esk_fixnum(acc);
  }
  mpz_t acc, x;
  mpz_init_set_si(acc, identity);
  mpz_init(x);
  for (int64_t i = 0; i < argc; i++) {
    get_int(loc, who, x, argv[i]);
    op(acc, acc, x);
  }
  esk_value r = from_mpz(acc);
  mpz_clear(acc);
  mpz_clear(x);
  return r;
}

esk_value esk_prim_v1_bitwise_and(const char *loc, int64_t argc, esk_value *argv) {
  return bitop(loc, "bitwise-and", argc, argv, mpz_and, -1);
}
esk_value esk_prim_v1_bitwise_or(const char *loc, int64_t argc, esk_value *argv) {
  return bitop(loc, "bitwise-or", argc, argv, mpz_ior, 0);
}
esk_value esk_prim_v1_bitwise_xor(const char *loc, int64_t argc, esk_value *argv) {
  return bitop(loc, "bitwise-xor", argc, argv, mpz_xor, 0);
}

esk_value esk_prim_v1_bitwise_not(const char *loc, esk_value a) {
  if (a.tag == ESK_T_FIXNUM) return esk_fixnum(~a.payload);
  mpz_t z;
  mpz_init(z);
  get_int(loc, "bitwise-not", z, a);
  mpz_com(z, z);
  esk_value r = from_mpz(z);
  mpz_clear(z);
  return r;
}

/* (arithmetic-shift n k): n * 2^k, flooring for negative k. */
esk_value esk_prim_v1_arithmetic_shift(const char *loc, esk_value n, esk_value k) {
  if (k.tag != ESK_T_FIXNUM) esk_error_type(loc, "arithmetic-shift", "fixnum shift count", k);
  int64_t s = k.payload;
  if (n.tag == ESK_T_FIXNUM && s <= 0) {
    if (s <= -63) return esk_fixnum(n.payload < 0 ? -1 : 0);
    return esk_fixnum(n.payload >> -s);
  }
  if (s > 1 << 24) esk_errorf(loc, "arithmetic-shift: shift count %lld is too large", (long long)s);
  mpz_t z;
  mpz_init(z);
  get_int(loc, "arithmetic-shift", z, n);
  if (s >= 0) mpz_mul_2exp(z, z, (mp_bitcnt_t)s);
  else mpz_fdiv_q_2exp(z, z, (mp_bitcnt_t)-s);
  esk_value r = from_mpz(z);
  mpz_clear(z);
  return r;
}

esk_value esk_prim_v1_shift_left(const char *loc, esk_value n, esk_value k) {
  if (k.tag != ESK_T_FIXNUM || k.payload < 0) esk_error_type(loc, "bit-shift-left", "non-negative fixnum", k);
  return esk_prim_v1_arithmetic_shift(loc, n, k);
}

esk_value esk_prim_v1_shift_right(const char *loc, esk_value n, esk_value k) {
  if (k.tag != ESK_T_FIXNUM || k.payload < 0) esk_error_type(loc, "bit-shift-right", "non-negative fixnum", k);
  return esk_prim_v1_arithmetic_shift(loc, n, esk_fixnum(-k.payload));
}

/* (bit-count n): number of 1 bits of n >= 0 (of ~n for negative n, as SRFI-151). */
esk_value esk_prim_v1_bit_count(const char *loc, esk_value n) {
  if (n.tag == ESK_T_FIXNUM)
    return esk_fixnum(__builtin_popcountll((uint64_t)(n.payload < 0 ? ~n.payload : n.payload)));
  mpz_t z;
  mpz_init(z);
  get_int(loc, "bit-count", z, n);
  if (mpz_sgn(z) < 0) mpz_com(z, z);
  esk_value r = esk_fixnum((int64_t)mpz_popcount(z));
  mpz_clear(z);
  return r;
}

/* ---- binary ports ------------------------------------------------------------------------- */

/* ports.c */
esk_value esk_prim_current_input_port(const char *loc, int64_t argc, esk_value *argv);
esk_value esk_prim_current_output_port(const char *loc, int64_t argc, esk_value *argv);

static esk_port *port_arg(const char *loc, const char *who, int64_t argc, esk_value *argv, int i,
                          int input) {
  esk_value v;
  if (DEFAULTED(argc, i, argv)) {
    esk_value none[1];
    v = input ? esk_prim_current_input_port(loc, 0, none) : esk_prim_current_output_port(loc, 0, none);
  } else {
    v = argv[i];
  }
  if (v.tag != ESK_T_PORT || !(input ? ((esk_port *)esk_ptr(v))->input : ((esk_port *)esk_ptr(v))->output))
    esk_error_type(loc, who, input ? "input port" : "output port", v);
  esk_port *p = esk_ptr(v);
  if (p->closed) esk_raise_error(loc, "port is closed:", 1, &v);
  return p;
}

static int get_byte(esk_port *p, int peek) {
  if (p->peeked >= 0) {  /* a peeked character: only ASCII can be handed back as a byte */
    int c = (int)p->peeked;
    if (!peek) p->peeked = -1;
    return c;
  }
  int c;
  if (p->f) {
    c = getc(p->f);
    if (peek && c != EOF) ungetc(c, p->f);
  } else {
    c = p->spos < p->slen ? (unsigned char)p->sdata[p->spos] : EOF;
    if (!peek && c != EOF) p->spos++;
  }
  return c;
}

esk_value esk_prim_v1_read_u8(const char *loc, int64_t argc, esk_value *argv) {
  int c = get_byte(port_arg(loc, "read-u8", argc, argv, 0, 1), 0);
  return c == EOF ? EOFV : esk_fixnum(c);
}

esk_value esk_prim_v1_peek_u8(const char *loc, int64_t argc, esk_value *argv) {
  int c = get_byte(port_arg(loc, "peek-u8", argc, argv, 0, 1), 1);
  return c == EOF ? EOFV : esk_fixnum(c);
}

esk_value esk_prim_v1_u8_ready(const char *loc, int64_t argc, esk_value *argv) {
  port_arg(loc, "u8-ready?", argc, argv, 0, 1);
  return TRUE;
}

esk_value esk_prim_v1_read_bytevector(const char *loc, int64_t argc, esk_value *argv) {
  if (argv[0].tag != ESK_T_FIXNUM || argv[0].payload < 0)
    esk_error_type(loc, "read-bytevector", "non-negative integer", argv[0]);
  esk_port *p = port_arg(loc, "read-bytevector", argc, argv, 1, 1);
  int64_t k = argv[0].payload, n = 0;
  uint8_t *tmp = esk_alloc_atomic((size_t)k + 1);
  for (; n < k; n++) {
    int c = get_byte(p, 0);
    if (c == EOF) break;
    tmp[n] = (uint8_t)c;
  }
  if (n == 0 && k > 0) return EOFV;
  esk_value bv = esk_prim_bytevector(loc, 0, NULL);
  esk_bytevector *b = esk_ptr(bv);
  b->data = tmp;
  b->len = n;
  return bv;
}

esk_value esk_prim_v1_write_u8(const char *loc, int64_t argc, esk_value *argv) {
  if (argv[0].tag != ESK_T_FIXNUM || argv[0].payload < 0 || argv[0].payload > 255)
    esk_error_type(loc, "write-u8", "byte", argv[0]);
  fputc((int)argv[0].payload, esk_output_file(loc, "write-u8", DEFAULTED(argc, 1, argv) ? (esk_value){ESK_T_DEFAULT, 0} : argv[1]));
  return VOID;
}

esk_value esk_prim_v1_write_bytevector(const char *loc, int64_t argc, esk_value *argv) {
  if (argv[0].tag != ESK_T_BYTEVECTOR) esk_error_type(loc, "write-bytevector", "bytevector", argv[0]);
  esk_bytevector *b = esk_ptr(argv[0]);
  int64_t start = DEFAULTED(argc, 2, argv) ? 0 : argv[2].payload;
  int64_t end = DEFAULTED(argc, 3, argv) ? b->len : argv[3].payload;
  if (start < 0 || end > b->len || start > end) esk_errorf(loc, "write-bytevector: bad range");
  FILE *f = esk_output_file(loc, "write-bytevector", DEFAULTED(argc, 1, argv) ? (esk_value){ESK_T_DEFAULT, 0} : argv[1]);
  fwrite(b->data + start, 1, (size_t)(end - start), f);
  return VOID;
}

esk_value esk_prim_v1_input_port_open(const char *loc, esk_value p) {
  if (p.tag != ESK_T_PORT) esk_error_type(loc, "input-port-open?", "port", p);
  esk_port *x = esk_ptr(p);
  return esk_bool(x->input && !x->closed);
}

esk_value esk_prim_v1_output_port_open(const char *loc, esk_value p) {
  if (p.tag != ESK_T_PORT) esk_error_type(loc, "output-port-open?", "port", p);
  esk_port *x = esk_ptr(p);
  return esk_bool(x->output && !x->closed);
}

esk_value esk_prim_v1_is_binary_port(const char *loc, esk_value p) {
  (void)loc;
  return esk_bool(p.tag == ESK_T_PORT && !((esk_port *)esk_ptr(p))->is_string);
}

esk_value esk_prim_v1_is_string_port(const char *loc, esk_value p) {
  (void)loc;
  return esk_bool(p.tag == ESK_T_PORT && ((esk_port *)esk_ptr(p))->is_string);
}

/* (write-line x [port]): x as `write` writes it, then a newline. */
esk_value esk_prim_v1_write_line(const char *loc, int64_t argc, esk_value *argv) {
  FILE *f = esk_output_file(loc, "write-line", DEFAULTED(argc, 1, argv) ? (esk_value){ESK_T_DEFAULT, 0} : argv[1]);
  esk_write(argv[0], f);
  fputc('\n', f);
  return VOID;
}

/* ---- files and paths ------------------------------------------------------------------------- */

static esk_value read_whole(const char *loc, const char *who, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) esk_errorf(loc, "%s: cannot open %s: %s", who, path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t k;
  while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  esk_value s = esk_make_string(buf, (int64_t)n);
  free(buf);
  return s;
}

/* (read-file path) and (file-mmap path): the file's contents as a string. */
esk_value esk_prim_v1_read_file(const char *loc, esk_value path) {
  return read_whole(loc, "read-file", str_arg(loc, "read-file", path));
}

/* (write-file path string) -> #t on success. */
esk_value esk_prim_v1_write_file(const char *loc, esk_value path, esk_value data) {
  const char *p = str_arg(loc, "write-file", path);
  esk_string *s = esk_ptr(data);
  if (data.tag != ESK_T_STRING) esk_error_type(loc, "write-file", "string", data);
  FILE *f = fopen(p, "wb");
  if (!f) return FALSE;
  int ok = fwrite(s->data, 1, (size_t)s->len, f) == (size_t)s->len;
  ok &= fclose(f) == 0;
  return esk_bool(ok);
}

esk_value esk_prim_v1_rename_file(const char *loc, esk_value from, esk_value to) {
  return esk_bool(rename(str_arg(loc, "rename-file", from), str_arg(loc, "rename-file", to)) == 0);
}

esk_value esk_prim_v1_file_copy(const char *loc, esk_value from, esk_value to) {
  FILE *in = fopen(str_arg(loc, "file-copy", from), "rb");
  if (!in) return FALSE;
  FILE *out = fopen(str_arg(loc, "file-copy", to), "wb");
  if (!out) {
    fclose(in);
    return FALSE;
  }
  char buf[65536];
  size_t k;
  int ok = 1;
  while ((k = fread(buf, 1, sizeof buf, in)) > 0) ok &= fwrite(buf, 1, k, out) == k;
  fclose(in);
  ok &= fclose(out) == 0;
  return esk_bool(ok);
}

esk_value esk_prim_v1_mkdir_recursive(const char *loc, esk_value path) {
  const char *p = str_arg(loc, "mkdir-recursive", path);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", p);
  for (char *q = tmp + 1; *q; q++) {
    if (*q == '/') {
      *q = 0;
      if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return FALSE;
      *q = '/';
    }
  }
  return esk_bool(mkdir(tmp, 0777) == 0 || errno == EEXIST);
}

static int remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return -1;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char sub[PATH_MAX];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      remove_tree(sub);
    }
    closedir(d);
    return rmdir(path);
  }
  return unlink(path);
}

esk_value esk_prim_v1_directory_delete_recursive(const char *loc, esk_value path) {
  return esk_bool(remove_tree(str_arg(loc, "directory-delete-recursive", path)) == 0);
}

esk_value esk_prim_v1_file_mtime(const char *loc, esk_value path) {
  struct stat st;
  if (stat(str_arg(loc, "file-mtime", path), &st) != 0) return FALSE;
  return esk_fixnum((int64_t)st.st_mtime);
}

esk_value esk_prim_v1_mkstemp(const char *loc, esk_value templ) {
  const char *t = str_arg(loc, "mkstemp", templ);
  size_t n = strlen(t);
  char *buf = malloc(n + 8);
  strcpy(buf, t);
  if (n < 6 || strcmp(buf + n - 6, "XXXXXX") != 0) strcat(buf, "XXXXXX");
  int fd = mkstemp(buf);
  if (fd < 0) {
    free(buf);
    return FALSE;
  }
  close(fd);
  esk_value r = esk_cstring(buf);
  free(buf);
  return r;
}

esk_value esk_prim_v1_realpath(const char *loc, esk_value path) {
  char buf[PATH_MAX];
  if (!realpath(str_arg(loc, "realpath", path), buf)) return FALSE;
  return esk_cstring(buf);
}

esk_value esk_prim_v1_symlink_create(const char *loc, esk_value target, esk_value link) {
  return esk_bool(symlink(str_arg(loc, "symlink-create", target), str_arg(loc, "symlink-create", link)) == 0);
}

esk_value esk_prim_v1_symlink_read(const char *loc, esk_value link) {
  char buf[PATH_MAX];
  ssize_t n = readlink(str_arg(loc, "symlink-read", link), buf, sizeof buf - 1);
  if (n < 0) return FALSE;
  return esk_make_string(buf, n);
}

esk_value esk_prim_v1_glob_match(const char *loc, esk_value pattern, esk_value path) {
  return esk_bool(fnmatch(str_arg(loc, "glob-match", pattern), str_arg(loc, "glob-match", path), 0) == 0);
}

esk_value esk_prim_v1_is_directory(const char *loc, esk_value path) {
  struct stat st;
  return esk_bool(stat(str_arg(loc, "directory?", path), &st) == 0 && S_ISDIR(st.st_mode));
}

/* (directory-list path) -> names in the folder (sorted), without . and .. */
static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

esk_value esk_prim_v1_directory_list(const char *loc, esk_value path) {
  DIR *d = opendir(str_arg(loc, "directory-list", path));
  if (!d) return FALSE;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == cap) names = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmpstr);
  esk_value out = esk_nil();
  for (size_t i = n; i-- > 0;) {
    out = esk_cons(esk_cstring(names[i]), out);
    free(names[i]);
  }
  free(names);
  return out;
}

esk_value esk_prim_v1_executable_exists(const char *loc, esk_value name) {
  const char *n = str_arg(loc, "executable-exists?", name);
  if (strchr(n, '/')) return esk_bool(access(n, X_OK) == 0);
  const char *path = getenv("PATH");
  if (!path) return FALSE;
  char *copy = strdup(path), *save = NULL;
  int found = 0;
  for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s/%s", dir, n);
    found = access(full, X_OK) == 0;
  }
  free(copy);
  return esk_bool(found);
}

/* ---- the system ---------------------------------------------------------------------------- */

esk_value esk_prim_v1_getenv(const char *loc, esk_value name) {
  const char *v = getenv(str_arg(loc, "getenv", name));
  return v ? esk_cstring(v) : FALSE;
}

esk_value esk_prim_v1_setenv(const char *loc, esk_value name, esk_value value) {
  return esk_bool(setenv(str_arg(loc, "setenv", name), str_arg(loc, "setenv", value), 1) == 0);
}

esk_value esk_prim_v1_getpid(const char *loc) {
  (void)loc;
  return esk_fixnum(getpid());
}

esk_value esk_prim_v1_hostname(const char *loc) {
  (void)loc;
  char buf[256];
  if (gethostname(buf, sizeof buf) != 0) return FALSE;
  buf[sizeof buf - 1] = 0;
  return esk_cstring(buf);
}

esk_value esk_prim_v1_username(const char *loc) {
  (void)loc;
  const char *u = getenv("USER");
  if (!u) {
    struct passwd *pw = getpwuid(getuid());
    u = pw ? pw->pw_name : NULL;
  }
  return u ? esk_cstring(u) : FALSE;
}

esk_value esk_prim_v1_home_directory(const char *loc) {
  (void)loc;
  const char *h = getenv("HOME");
  if (!h) {
    struct passwd *pw = getpwuid(getuid());
    h = pw ? pw->pw_dir : "/";
  }
  return esk_cstring(h);
}

esk_value esk_prim_v1_temp_directory(const char *loc) {
  (void)loc;
  const char *t = getenv("TMPDIR");
  return esk_cstring(t && *t ? t : "/tmp");
}

esk_value esk_prim_v1_os_type(const char *loc) {
  (void)loc;
#if defined(__APPLE__)
  return esk_cstring("macos");
#elif defined(__linux__)
  return esk_cstring("linux");
#else
  return esk_cstring("unix");
#endif
}

esk_value esk_prim_v1_os_arch(const char *loc) {
  (void)loc;
  struct utsname u;
  if (uname(&u) != 0) return esk_cstring("unknown");
  return esk_cstring(u.machine);
}

esk_value esk_prim_v1_cpu_count(const char *loc) {
  (void)loc;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return esk_fixnum(n > 0 ? n : 1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* R7RS time: current-second (TAI approximated by UTC), current-jiffy in microseconds. */
esk_value esk_prim_v1_current_second(const char *loc) {
  (void)loc;
  return esk_flonum((double)now_ns() / 1e9);
}
esk_value esk_prim_v1_current_jiffy(const char *loc) {
  (void)loc;
  return esk_fixnum(mono_ns() / 1000);
}
esk_value esk_prim_v1_jiffies_per_second(const char *loc) {
  (void)loc;
  return esk_fixnum(1000000);
}
/* v1.x clocks: wall-clock microseconds/nanoseconds since the epoch. */
esk_value esk_prim_v1_time_us(const char *loc) {
  (void)loc;
  return esk_fixnum(now_ns() / 1000);
}
esk_value esk_prim_v1_time_ns(const char *loc) {
  (void)loc;
  return esk_fixnum(now_ns());
}

/* (system command) -> exit status of a shell command. */
esk_value esk_prim_v1_system(const char *loc, esk_value cmd) {
  fflush(NULL);
  int r = system(str_arg(loc, "system", cmd));
  return esk_fixnum(r < 0 ? -1 : WIFEXITED(r) ? WEXITSTATUS(r) : 128 + WTERMSIG(r));
}

/* ---- random numbers ------------------------------------------------------------------------- */

/* (random) -> double in [0, 1); (random n) -> integer in [0, n) for an exact n, double in [0, n)
 * for an inexact one.  Shares the tensor runtime's generator (random-seed! seeds both). */
esk_value esk_prim_v1_random(const char *loc, int64_t argc, esk_value *argv) {
  double u = esk_random_uniform();
  if (DEFAULTED(argc, 0, argv)) return esk_flonum(u);
  esk_value n = argv[0];
  if (n.tag == ESK_T_FIXNUM) {
    if (n.payload <= 0) esk_error_type(loc, "random", "positive integer", n);
    return esk_fixnum((int64_t)(u * (double)n.payload) % n.payload);
  }
  if (n.tag == ESK_T_FLONUM && esk_flonum_value(n) > 0) return esk_flonum(u * esk_flonum_value(n));
  esk_error_type(loc, "random", "positive number", n);
}

/* A PRNG object (splitmix64): a bytevector of 8 bytes holding the state, tagged by a record
 * would need a type; a one-element vector headed by 'prng keeps it printable and simple. */
esk_value esk_prim_v1_prng_next(const char *loc, esk_value state) {
  if (state.tag != ESK_T_VECTOR || ((esk_vector *)esk_ptr(state))->len != 2)
    esk_error_type(loc, "prng-random", "prng", state);
  esk_vector *v = esk_ptr(state);
  uint64_t z = (uint64_t)v->items[1].payload + 0x9E3779B97F4A7C15ull;
  v->items[1] = esk_fixnum((int64_t)z);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return esk_flonum((double)(z >> 11) * 0x1.0p-53);
}

/* Entropy from the operating system (v1.x's quantum-random draws from an entropy source). */
esk_value esk_prim_v1_entropy_random(const char *loc) {
  (void)loc;
  uint64_t x = 0;
  int fd = open("/dev/urandom", O_RDONLY);
  if (fd >= 0) {
    if (read(fd, &x, sizeof x) != (ssize_t)sizeof x) x = (uint64_t)mono_ns() * 0x9E3779B97F4A7C15ull;
    close(fd);
  } else {
    x = (uint64_t)mono_ns() * 0x9E3779B97F4A7C15ull;
  }
  return esk_flonum((double)(x >> 11) * 0x1.0p-53);
}

/* ---- member / assoc with R7RS's optional comparison ---------------------------------------- */

/* (member x list [compare]), (assoc key alist [compare]): with two arguments the core
 * builtins (equal?); a third argument is called as (compare x element). */
esk_value esk_prim_v1_member(const char *loc, int64_t argc, esk_value *argv) {
  if (DEFAULTED(argc, 2, argv)) return esk_prim_member(loc, argv[0], argv[1]);
  esk_value x = argv[0], cmp = argv[2];
  for (esk_value p = argv[1]; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) {
    esk_value args[2] = {x, ((esk_pair *)esk_ptr(p))->car};
    if (esk_is_true(esk_call(loc, cmp, 2, args))) return p;
  }
  return FALSE;
}

esk_value esk_prim_v1_assoc(const char *loc, int64_t argc, esk_value *argv) {
  if (DEFAULTED(argc, 2, argv)) return esk_prim_assoc(loc, argv[0], argv[1]);
  esk_value x = argv[0], cmp = argv[2];
  for (esk_value p = argv[1]; p.tag == ESK_T_PAIR; p = ((esk_pair *)esk_ptr(p))->cdr) {
    esk_value entry = ((esk_pair *)esk_ptr(p))->car;
    if (entry.tag != ESK_T_PAIR) esk_error_type(loc, "assoc", "association list", argv[1]);
    esk_value args[2] = {x, ((esk_pair *)esk_ptr(entry))->car};
    if (esk_is_true(esk_call(loc, cmp, 2, args))) return entry;
  }
  return FALSE;
}
