/* Self-test of the C runtime: number printing, display/write, interning, error reports,
 * the fault handler, and bounded memory under heavy allocation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eshkol_rt.h"

static int failures, checks;

static void check_str(const char *what, const char *got, const char *want) {
  checks++;
  if (strcmp(got, want) != 0) {
    failures++;
    printf("FAIL %s: got [%s], want [%s]\n", what, got, want);
  }
}

static void check_double(double d, const char *want) {
  char buf[64];
  esk_format_double(d, buf, sizeof buf);
  check_str("format_double", buf, want);
}

static char *printed(esk_value v, int write) {
  static char *buf;
  size_t size;
  free(buf);
  FILE *f = open_memstream(&buf, &size);
  if (write) esk_write(v, f);
  else esk_display(v, f);
  fclose(f);
  return buf;
}

static esk_value str(const char *s) { return esk_cstring(s); }
static esk_value sym(const char *s) { return esk_intern(s, (int64_t)strlen(s)); }

static void check_print(esk_value v, const char *display, const char *write) {
  check_str("display", printed(v, 0), display);
  check_str("write", printed(v, 1), write);
}

static esk_value s2n(esk_value s) { return esk_prim_string_to_number(NULL, 1, &s); }
static esk_value n2s(esk_value n) { return esk_prim_number_to_string(NULL, 1, &n); }
static esk_value n2s_radix(esk_value n, int radix) {
  esk_value a[2] = {n, esk_fixnum(radix)};
  return esk_prim_number_to_string(NULL, 2, a);
}
static esk_value s2n_radix(const char *s, int radix) {
  esk_value a[2] = {esk_cstring(s), esk_fixnum(radix)};
  return esk_prim_string_to_number(NULL, 2, a);
}
static esk_value num(const char *text) { return esk_make_exact_from_string(text); }
/* Numbers are printed the same by display and write. */
static void check_num(const char *what, esk_value v, const char *want) {
  check_str(what, printed(v, 0), want);
  if (v.tag != ESK_T_STRING) check_str(what, printed(v, 1), want);
}

/* Runs fn in a child process; checks its exit status and the text it wrote to stderr. */
static void check_child(const char *what, void (*fn)(void), int want_status, const char *want_err) {
  int pipefd[2];
  if (pipe(pipefd) != 0) abort();
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    fn();
    _exit(99);
  }
  close(pipefd[1]);
  char err[1024];
  ssize_t n, total = 0;
  while ((n = read(pipefd[0], err + total, sizeof err - 1 - (size_t)total)) > 0) total += n;
  err[total] = '\0';
  close(pipefd[0]);
  int status;
  waitpid(pid, &status, 0);
  checks++;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != want_status) {
    failures++;
    printf("FAIL %s: status %d (signal %d), want exit %d\n", what,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           WIFSIGNALED(status) ? WTERMSIG(status) : 0, want_status);
  }
  check_str(what, err, want_err);
}

static void car_of_five(void) { esk_prim_car("t.esk:3:7", esk_fixnum(5)); }
static void vector_ref_range(void) {
  esk_value v = esk_make_vector(3, esk_fixnum(0));
  esk_prim_vector_ref("t.esk:1:1", v, esk_fixnum(10));
}
static void div_by_zero_loc(void) { esk_prim_div2("t.esk:2:2", esk_fixnum(1), esk_fixnum(0)); }
static void sqrt_negative(void) { esk_prim_sqrt("t.esk:3:3", esk_fixnum(-4)); }
static void div_by_zero(void) { esk_prim_div2(NULL, esk_fixnum(1), esk_fixnum(0)); }
static void user_error(void) {
  esk_value irritants[2] = {str("a\"b"), esk_cons(esk_fixnum(1), esk_fixnum(2))};
  esk_error("u.esk:9:1", "bad thing:", 2, irritants);
}
static void segfault(void) {
  volatile int *p = NULL;
  *p = 1;
}

static int deep(int n) {
  char here;
  if (&here < esk_stack_limit) esk_stack_overflow("r.esk:4:4");
  return deep(n + 1) + 1;
}
static void deep_entry(void) { deep(0); }
static void run_deep(void) { esk_run(deep_entry); }

static int unchecked(int n) {
  volatile char pad[256];
  pad[0] = (char)n;
  return unchecked(n + 1) + pad[0];
}
static void unchecked_entry(void) { unchecked(0); }
static void run_unchecked(void) { esk_run(unchecked_entry); }

static void test_numbers(void) {
  static const struct { double d; const char *s; } cases[] = {
      {1.0, "1.0"}, {10.0, "10.0"}, {1234567890.0, "1234567890.0"},
      {9999999999.5, "9999999999.5"}, {1e10, "1e10"}, {1.5e10, "1.5e10"},
      {1.23456789012e11, "1.23456789012e11"}, {0.001, "0.001"}, {0.0012, "0.0012"},
      {9.99e-4, "9.99e-4"}, {1e-4, "1e-4"}, {1.2e-4, "1.2e-4"}, {1e-7, "1e-7"}, {0.1, "0.1"},
      {1.0 / 3.0, "0.3333333333333333"}, {-0.0, "-0.0"}, {-1234.5, "-1234.5"}, {1e21, "1e21"},
      {1.1805916207174113e21, "1.1805916207174113e21"},
      {5.184705528587072e21, "5.184705528587072e21"},
      {1.2345678901234567e19, "1.2345678901234567e19"},
      {4.503599627370496e15, "4.503599627370496e15"},
      {1.7976931348623157e308, "1.7976931348623157e308"}, {5e-324, "5e-324"},
      {INFINITY, "+inf.0"}, {-INFINITY, "-inf.0"}, {NAN, "+nan.0"}, {-NAN, "+nan.0"},
      {1e100, "1e100"}, {0.0, "0.0"}, {100.0, "100.0"}, {123.456, "123.456"}, {2.0, "2.0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_double(cases[i].d, cases[i].s);

  /* Every double printed must read back exactly. */
  srand(1);
  for (int i = 0; i < 200000; i++) {
    uint64_t bits = (uint64_t)rand() << 42 ^ (uint64_t)rand() << 21 ^ (uint64_t)rand();
    double d;
    memcpy(&d, &bits, sizeof d);
    if (!isfinite(d)) continue;
    char buf[64];
    esk_format_double(d, buf, sizeof buf);
    esk_value back = s2n(esk_cstring(buf));
    checks++;
    if (back.tag != ESK_T_FLONUM || back.payload != (int64_t)bits) {
      failures++;
      printf("FAIL round trip %s\n", buf);
      break;
    }
  }

  check_print(esk_prim_div2(NULL, esk_fixnum(6), esk_fixnum(3)), "2", "2");
  check_print(esk_prim_add2(NULL, esk_fixnum(1), esk_flonum(0.5)), "1.5", "1.5");
  check_print(esk_prim_sqrt(NULL, esk_fixnum(16)), "4", "4");
  check_print(esk_prim_sqrt(NULL, esk_fixnum(INT64_MAX)), "3037000499.97605", "3037000499.97605");
  check_print(esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(62)), "4611686018427387904",
              "4611686018427387904");
  check_print(esk_prim_round(NULL, esk_flonum(2.5)), "2.0", "2.0");
  check_print(esk_prim_round(NULL, esk_flonum(-3.5)), "-4.0", "-4.0");
  check_print(esk_prim_modulo(NULL, esk_fixnum(-7), esk_fixnum(2)), "1", "1");
  check_print(esk_prim_remainder(NULL, esk_fixnum(-7), esk_fixnum(2)), "-1", "-1");
  check_print(esk_prim_max2(NULL, esk_fixnum(1), esk_flonum(2.0)), "2.0", "2.0");
  check_print(esk_prim_min2(NULL, esk_fixnum(1), esk_flonum(2.0)), "1.0", "1.0");
  check_print(esk_prim_exp(NULL, esk_fixnum(0)), "1", "1");
  check_print(esk_prim_gcd2(NULL, esk_fixnum(12), esk_fixnum(-18)), "6", "6");
  check_print(esk_prim_lcm2(NULL, esk_fixnum(4), esk_fixnum(6)), "12", "12");
  check_print(esk_prim_num_lt2(NULL, esk_fixnum(INT64_MAX), esk_flonum(9223372036854775808.0)),
              "#t", "#t");
  check_print(esk_prim_num_eq2(NULL, esk_fixnum(INT64_MAX), esk_flonum(9223372036854775807.0)),
              "#f", "#f");
  check_print(s2n(str("-12")), "-12", "-12");
  check_print(s2n(str("#xff")), "255", "255");
  check_print(s2n(str(".5e1")), "5.0", "5.0");
  check_print(s2n(str("-inf.0")), "-inf.0", "-inf.0");
  check_print(s2n(str("1e")), "#f", "#f");
  check_print(s2n(str("abc")), "#f", "#f");
  check_print(s2n(str("inf")), "#f", "#f");
  check_print(s2n(str("0x10")), "#f", "#f");
  check_print(n2s(esk_flonum(1e21)), "1e21", "\"1e21\"");
}

static void test_bignums(void) {
  /* Expected values: Python ints and fractions.Fraction, cross-checked with Chez Scheme. */
  check_num("esk_prim_add2(NULL, esk_fixnum(INT64_MAX), esk_fixnum(1))", esk_prim_add2(NULL, esk_fixnum(INT64_MAX), esk_fixnum(1)), "9223372036854775808");
  check_num("esk_prim_sub2(NULL, esk_fixnum(INT64_MIN), esk_fixnum(1))", esk_prim_sub2(NULL, esk_fixnum(INT64_MIN), esk_fixnum(1)), "-9223372036854775809");
  check_num("esk_prim_mul2(NULL, esk_fixnum(99999999999), esk_fixnum(99999999999))", esk_prim_mul2(NULL, esk_fixnum(99999999999), esk_fixnum(99999999999)), "9999999999800000000001");
  check_num("esk_prim_neg(NULL, esk_fixnum(INT64_MIN))", esk_prim_neg(NULL, esk_fixnum(INT64_MIN)), "9223372036854775808");
  check_num("esk_prim_abs(NULL, esk_fixnum(INT64_MIN))", esk_prim_abs(NULL, esk_fixnum(INT64_MIN)), "9223372036854775808");
  check_num("esk_prim_sub2(NULL, esk_prim_add2(NULL, esk_fixnum(INT64_MAX), esk_fix", esk_prim_sub2(NULL, esk_prim_add2(NULL, esk_fixnum(INT64_MAX), esk_fixnum(1)), esk_fixnum(1)), "9223372036854775807");
  check_num("esk_prim_neg(NULL, num('9223372036854775808'))", esk_prim_neg(NULL, num("9223372036854775808")), "-9223372036854775808");
  check_num("esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(100))", esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(100)), "1267650600228229401496703205376");
  check_num("esk_prim_expt(NULL, esk_fixnum(-3), esk_fixnum(41))", esk_prim_expt(NULL, esk_fixnum(-3), esk_fixnum(41)), "-36472996377170786403");
  check_num("esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(-2))", esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(-2)), "1/4");
  check_num("esk_prim_expt(NULL, num('2/3'), esk_fixnum(-3))", esk_prim_expt(NULL, num("2/3"), esk_fixnum(-3)), "27/8");
  check_num("esk_prim_expt(NULL, esk_fixnum(0), esk_fixnum(0))", esk_prim_expt(NULL, esk_fixnum(0), esk_fixnum(0)), "1");
  check_num("esk_prim_expt(NULL, esk_flonum(2.0), esk_flonum(0.5))", esk_prim_expt(NULL, esk_flonum(2.0), esk_flonum(0.5)), "1.4142135623730951");
  check_num("esk_prim_expt(NULL, esk_fixnum(-1), num('1000000000000000000000'))", esk_prim_expt(NULL, esk_fixnum(-1), num("1000000000000000000000")), "1");
  check_num("esk_prim_quotient(NULL, num('1000000000000000000000000000000'), esk_fi", esk_prim_quotient(NULL, num("1000000000000000000000000000000"), esk_fixnum(7)), "142857142857142857142857142857");
  check_num("esk_prim_remainder(NULL, num('-1000000000000000000000000000000'), esk_", esk_prim_remainder(NULL, num("-1000000000000000000000000000000"), esk_fixnum(7)), "-1");
  check_num("esk_prim_modulo(NULL, num('-1000000000000000000000000000000'), esk_fix", esk_prim_modulo(NULL, num("-1000000000000000000000000000000"), esk_fixnum(7)), "6");
  check_num("esk_prim_modulo(NULL, num('1000000000000000000000000000000'), num('-30", esk_prim_modulo(NULL, num("1000000000000000000000000000000"), num("-300000000000000000000")), "-200000000000000000000");
  check_num("esk_prim_quotient(NULL, esk_fixnum(INT64_MIN), esk_fixnum(-1))", esk_prim_quotient(NULL, esk_fixnum(INT64_MIN), esk_fixnum(-1)), "9223372036854775808");
  check_num("esk_prim_gcd2(NULL, esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(70))", esk_prim_gcd2(NULL, esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(70)), esk_prim_expt(NULL, esk_fixnum(6), esk_fixnum(30))), "1073741824");
  check_num("esk_prim_lcm2(NULL, num('12345678901234567890'), num('9876543210987654", esk_prim_lcm2(NULL, num("12345678901234567890"), num("98765432109876543210")), "1354807012498094801236261410");
  check_num("esk_prim_gcd2(NULL, esk_fixnum(INT64_MIN), esk_fixnum(0))", esk_prim_gcd2(NULL, esk_fixnum(INT64_MIN), esk_fixnum(0)), "9223372036854775808");
  check_num("esk_prim_div2(NULL, esk_fixnum(1), esk_fixnum(3))", esk_prim_div2(NULL, esk_fixnum(1), esk_fixnum(3)), "1/3");
  check_num("esk_prim_div2(NULL, esk_fixnum(6), esk_fixnum(-4))", esk_prim_div2(NULL, esk_fixnum(6), esk_fixnum(-4)), "-3/2");
  check_num("esk_prim_div2(NULL, esk_fixnum(INT64_MIN), esk_fixnum(-1))", esk_prim_div2(NULL, esk_fixnum(INT64_MIN), esk_fixnum(-1)), "9223372036854775808");
  check_num("esk_prim_add2(NULL, num('1/3'), num('2/3'))", esk_prim_add2(NULL, num("1/3"), num("2/3")), "1");
  check_num("esk_prim_sub2(NULL, num('1/2'), num('1/3'))", esk_prim_sub2(NULL, num("1/2"), num("1/3")), "1/6");
  check_num("esk_prim_mul2(NULL, num('1/3'), esk_fixnum(3))", esk_prim_mul2(NULL, num("1/3"), esk_fixnum(3)), "1");
  check_num("esk_prim_mul2(NULL, num('2/3'), num('9223372036854775807/2'))", esk_prim_mul2(NULL, num("2/3"), num("9223372036854775807/2")), "9223372036854775807/3");
  check_num("esk_prim_div2(NULL, num('100000000000000000000'), num('300000000000000", esk_prim_div2(NULL, num("100000000000000000000"), num("300000000000000000000")), "1/3");
  check_num("num('6/3')", num("6/3"), "2");
  check_num("num('-6/4')", num("-6/4"), "-3/2");
  check_num("num('123456789012345678901234567890')", num("123456789012345678901234567890"), "123456789012345678901234567890");
  check_num("num('-9223372036854775808')", num("-9223372036854775808"), "-9223372036854775808");
  check_num("esk_prim_exact_to_inexact(NULL, num('1/3'))", esk_prim_exact_to_inexact(NULL, num("1/3")), "0.3333333333333333");
  check_num("esk_prim_exact_to_inexact(NULL, num('12345678901234567890123'))", esk_prim_exact_to_inexact(NULL, num("12345678901234567890123")), "1.2345678901234568e22");
  check_num("esk_prim_exact_to_inexact(NULL, num('9007199254740993'))", esk_prim_exact_to_inexact(NULL, num("9007199254740993")), "9.007199254740992e15");
  check_num("esk_prim_exact_to_inexact(NULL, esk_prim_expt(NULL, esk_fixnum(10), es", esk_prim_exact_to_inexact(NULL, esk_prim_expt(NULL, esk_fixnum(10), esk_fixnum(400))), "+inf.0");
  check_num("esk_prim_exact_to_inexact(NULL, esk_prim_div2(NULL, esk_prim_expt(NULL", esk_prim_exact_to_inexact(NULL, esk_prim_div2(NULL, esk_prim_expt(NULL, esk_fixnum(10), esk_fixnum(400)), esk_prim_add2(NULL, esk_fixnum(1), esk_prim_expt(NULL, esk_fixnum(10), esk_fixnum(399))))), "10.0");
  check_num("esk_prim_inexact_to_exact(NULL, esk_flonum(0.1))", esk_prim_inexact_to_exact(NULL, esk_flonum(0.1)), "3602879701896397/36028797018963968");
  check_num("esk_prim_inexact_to_exact(NULL, esk_flonum(1e20))", esk_prim_inexact_to_exact(NULL, esk_flonum(1e20)), "100000000000000000000");
  check_num("esk_prim_inexact_to_exact(NULL, esk_flonum(-1.5))", esk_prim_inexact_to_exact(NULL, esk_flonum(-1.5)), "-3/2");
  check_num("esk_prim_floor(NULL, num('-7/2'))", esk_prim_floor(NULL, num("-7/2")), "-4");
  check_num("esk_prim_ceiling(NULL, num('-7/2'))", esk_prim_ceiling(NULL, num("-7/2")), "-3");
  check_num("esk_prim_truncate(NULL, num('-7/2'))", esk_prim_truncate(NULL, num("-7/2")), "-3");
  check_num("esk_prim_round(NULL, num('5/2'))", esk_prim_round(NULL, num("5/2")), "2");
  check_num("esk_prim_round(NULL, num('7/2'))", esk_prim_round(NULL, num("7/2")), "4");
  check_num("esk_prim_round(NULL, num('-5/2'))", esk_prim_round(NULL, num("-5/2")), "-2");
  check_num("esk_prim_round(NULL, num('-8/3'))", esk_prim_round(NULL, num("-8/3")), "-3");
  check_num("esk_prim_sqrt(NULL, num('1/4'))", esk_prim_sqrt(NULL, num("1/4")), "1/2");
  check_num("esk_prim_sqrt(NULL, esk_prim_expt(NULL, esk_fixnum(10), esk_fixnum(40)", esk_prim_sqrt(NULL, esk_prim_expt(NULL, esk_fixnum(10), esk_fixnum(40))), "100000000000000000000");
  check_num("esk_prim_sqrt(NULL, esk_fixnum(2))", esk_prim_sqrt(NULL, esk_fixnum(2)), "1.4142135623730951");
  check_num("esk_prim_sqrt(NULL, num('1/3'))", esk_prim_sqrt(NULL, num("1/3")), "0.5773502691896257");
  check_num("esk_prim_num_eq2(NULL, num('9007199254740993'), esk_flonum(90071992547", esk_prim_num_eq2(NULL, num("9007199254740993"), esk_flonum(9007199254740992.0)), "#f");
  check_num("esk_prim_num_lt2(NULL, num('1/3'), esk_flonum(0.3333333333333333))", esk_prim_num_lt2(NULL, num("1/3"), esk_flonum(0.3333333333333333)), "#f");
  check_num("esk_prim_num_gt2(NULL, num('1/3'), esk_flonum(0.3333333333333333))", esk_prim_num_gt2(NULL, num("1/3"), esk_flonum(0.3333333333333333)), "#t");
  check_num("esk_prim_num_lt2(NULL, num('-100000000000000000000'), esk_fixnum(INT64", esk_prim_num_lt2(NULL, num("-100000000000000000000"), esk_fixnum(INT64_MIN)), "#t");
  check_num("esk_prim_num_lt2(NULL, num('100000000000000000000'), esk_flonum(INFINI", esk_prim_num_lt2(NULL, num("100000000000000000000"), esk_flonum(INFINITY)), "#t");
  check_num("esk_prim_num_eq2(NULL, num('1/2'), esk_flonum(0.5))", esk_prim_num_eq2(NULL, num("1/2"), esk_flonum(0.5)), "#t");
  check_num("esk_prim_num_eq2(NULL, num('1/2'), esk_prim_div2(NULL, esk_fixnum(2), ", esk_prim_num_eq2(NULL, num("1/2"), esk_prim_div2(NULL, esk_fixnum(2), esk_fixnum(4))), "#t");
  check_num("esk_prim_eqv(NULL, esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(70)),", esk_prim_eqv(NULL, esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(70)), esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(70))), "#t");
  check_num("esk_prim_equal(NULL, num('1/2'), esk_prim_div2(NULL, esk_fixnum(2), es", esk_prim_equal(NULL, num("1/2"), esk_prim_div2(NULL, esk_fixnum(2), esk_fixnum(4))), "#t");
  check_num("esk_prim_eqv(NULL, esk_fixnum(2), esk_flonum(2.0))", esk_prim_eqv(NULL, esk_fixnum(2), esk_flonum(2.0)), "#f");
  check_num("esk_prim_max2(NULL, num('1/2'), esk_flonum(0.25))", esk_prim_max2(NULL, num("1/2"), esk_flonum(0.25)), "0.5");
  check_num("esk_prim_min2(NULL, num('1/2'), num('1/3'))", esk_prim_min2(NULL, num("1/2"), num("1/3")), "1/3");
  check_num("esk_prim_add2(NULL, esk_fixnum(0), esk_flonum(-0.0))", esk_prim_add2(NULL, esk_fixnum(0), esk_flonum(-0.0)), "-0.0");
  check_num("esk_prim_mul2(NULL, esk_fixnum(0), esk_flonum(1.5))", esk_prim_mul2(NULL, esk_fixnum(0), esk_flonum(1.5)), "0");
  check_num("esk_prim_sub2(NULL, esk_fixnum(0), esk_flonum(0.0))", esk_prim_sub2(NULL, esk_fixnum(0), esk_flonum(0.0)), "-0.0");
  check_num("esk_prim_add2(NULL, num('1/2'), esk_flonum(0.5))", esk_prim_add2(NULL, num("1/2"), esk_flonum(0.5)), "1.0");
  check_num("esk_prim_div2(NULL, esk_flonum(1.0), esk_fixnum(0))", esk_prim_div2(NULL, esk_flonum(1.0), esk_fixnum(0)), "+inf.0");
  check_num("esk_prim_numerator(NULL, num('-6/4'))", esk_prim_numerator(NULL, num("-6/4")), "-3");
  check_num("esk_prim_denominator(NULL, num('-6/4'))", esk_prim_denominator(NULL, num("-6/4")), "2");
  check_num("esk_prim_denominator(NULL, esk_flonum(0.5))", esk_prim_denominator(NULL, esk_flonum(0.5)), "2.0");
  check_num("esk_prim_denominator(NULL, esk_fixnum(7))", esk_prim_denominator(NULL, esk_fixnum(7)), "1");
  check_num("esk_prim_is_odd(NULL, esk_prim_add2(NULL, esk_fixnum(1), esk_prim_expt", esk_prim_is_odd(NULL, esk_prim_add2(NULL, esk_fixnum(1), esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(70)))), "#t");
  check_num("esk_prim_is_even(NULL, esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(7", esk_prim_is_even(NULL, esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(70))), "#t");
  check_num("esk_prim_is_integer(NULL, num('1/2'))", esk_prim_is_integer(NULL, num("1/2")), "#f");
  check_num("esk_prim_is_rational(NULL, num('1/2'))", esk_prim_is_rational(NULL, num("1/2")), "#t");
  check_num("esk_prim_is_exact(NULL, num('1/2'))", esk_prim_is_exact(NULL, num("1/2")), "#t");
  check_num("esk_prim_is_exact_integer(NULL, num('100000000000000000000'))", esk_prim_is_exact_integer(NULL, num("100000000000000000000")), "#t");
  check_num("esk_prim_is_negative(NULL, num('-1/2'))", esk_prim_is_negative(NULL, num("-1/2")), "#t");
  check_num("esk_prim_is_zero(NULL, num('1/2'))", esk_prim_is_zero(NULL, num("1/2")), "#f");
  check_num("esk_prim_log(NULL, esk_prim_expt(NULL, esk_fixnum(10), esk_fixnum(400)", esk_prim_log(NULL, esk_prim_expt(NULL, esk_fixnum(10), esk_fixnum(400))), "921.0340371976182");
  check_num("esk_prim_exp(NULL, num('1/2'))", esk_prim_exp(NULL, num("1/2")), "1.6487212707001282");
  check_num("s2n(str('1/3'))", s2n(str("1/3")), "1/3");
  check_num("s2n(str('#x1F'))", s2n(str("#x1F")), "31");
  check_num("s2n(str('1e500'))", s2n(str("1e500")), "+inf.0");
  check_num("s2n(str('#e1.5'))", s2n(str("#e1.5")), "3/2");
  check_num("s2n(str('#i1/3'))", s2n(str("#i1/3")), "0.3333333333333333");
  check_num("s2n(str('1/0'))", s2n(str("1/0")), "#f");
  check_num("s2n(str('-12345678901234567890123'))", s2n(str("-12345678901234567890123")), "-12345678901234567890123");
  check_num("s2n(str('#xff/2'))", s2n(str("#xff/2")), "255/2");
  check_num("s2n(str('#e1.2e-3'))", s2n(str("#e1.2e-3")), "3/2500");
  check_num("s2n(str('#e1e30'))", s2n(str("#e1e30")), "1000000000000000000000000000000");
  check_num("s2n(str('+5'))", s2n(str("+5")), "5");
  check_num("s2n(str('1/-2'))", s2n(str("1/-2")), "#f");
  check_num("s2n(str('9223372036854775808'))", s2n(str("9223372036854775808")), "9223372036854775808");
  check_num("s2n(str('-9223372036854775808'))", s2n(str("-9223372036854775808")), "-9223372036854775808");
  check_num("s2n_radix('ff', 16)", s2n_radix("ff", 16), "255");
  check_num("s2n_radix('-101', 2)", s2n_radix("-101", 2), "-5");
  check_num("s2n_radix('12', 2)", s2n_radix("12", 2), "#f");
  check_num("n2s_radix(esk_fixnum(255), 16)", n2s_radix(esk_fixnum(255), 16), "FF");
  check_num("n2s_radix(esk_fixnum(-255), 16)", n2s_radix(esk_fixnum(-255), 16), "-FF");
  check_num("n2s_radix(num('1/3'), 2)", n2s_radix(num("1/3"), 2), "1/11");
  check_num("n2s_radix(esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(100)), 16)", n2s_radix(esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(100)), 16), "10000000000000000000000000");
  check_num("n2s(esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(100)))", n2s(esk_prim_expt(NULL, esk_fixnum(2), esk_fixnum(100))), "1267650600228229401496703205376");
  /* Text of a number and the value read back agree for bignums and rationals. */
  check_str("number->string", ((esk_string *)esk_ptr(n2s(num("-123456789012345678901/7"))))->data, "-123456789012345678901/7");
  /* GMP allocates on the collector: a million dead 1000-bit bignums stay bounded. */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long before = ru.ru_maxrss;
  esk_value big = esk_prim_expt(NULL, esk_fixnum(3), esk_fixnum(640)), acc = esk_fixnum(0);
  for (int i = 0; i < 1000000; i++) acc = esk_prim_add2(NULL, esk_prim_mul2(NULL, big, esk_fixnum(i)), esk_fixnum(1));
  getrusage(RUSAGE_SELF, &ru);
  checks++;
  if (ru.ru_maxrss - before > 200 * 1024) {
    failures++;
    printf("FAIL bignum garbage not collected: grew %ld KiB\n", ru.ru_maxrss - before);
  }
  check_num("last bignum", esk_prim_num_eq2(NULL, acc, esk_prim_add2(NULL, esk_prim_mul2(NULL, big, esk_fixnum(999999)), esk_fixnum(1))), "#t");
}


static void test_printing(void) {
  esk_value nil = esk_nil();
  esk_value l3 = esk_cons(esk_fixnum(1), esk_cons(esk_fixnum(2), esk_cons(esk_fixnum(3), nil)));
  check_print(l3, "(1 2 3)", "(1 2 3)");
  check_print(esk_cons(esk_fixnum(1), esk_cons(esk_fixnum(2), esk_fixnum(3))), "(1 2 . 3)",
              "(1 2 . 3)");
  check_print(nil, "()", "()");
  check_print(esk_bool(1), "#t", "#t");
  check_print(esk_void(), "", "");
  check_print(esk_prim_list_to_vector(NULL, l3), "#(1 2 3)", "#(1 2 3)");
  check_print(esk_cons(str("a\nb"), esk_cons(esk_char('a'), nil)), "(a\nb a)", "(\"a\\nb\" #\\a)");
  check_print(str("q\"\\\t"), "q\"\\\t", "\"q\\\"\\\\\\t\"");
  check_print(esk_char(' '), " ", "#\\space");
  check_print(esk_char('\n'), "\n", "#\\newline");
  check_print(esk_char(0), "", "#\\nul");
  check_print(esk_char(1), "\x01", "#\\x1");
  check_print(esk_char(0x3BB), "λ", "#\\λ");
  check_print(sym("abc"), "abc", "abc");
  check_print(sym("a b"), "a b", "|a b|");
  check_print(sym(""), "", "||");
  check_print(sym("12"), "12", "|12|");
  check_print(sym("+"), "+", "+");
  check_print(sym("..."), "...", "...");
  check_print(esk_make_closure(NULL, "fact", 0), "#<procedure fact>", "#<procedure fact>");
  check_print(esk_make_closure(NULL, NULL, 0), "#<procedure>", "#<procedure>");
  check_print(esk_make_box(str("x")), "#&x", "#&\"x\"");
  check_print((esk_value){ESK_T_EOF, 0}, "#<eof>", "#<eof>");
  check_print(esk_prim_string_length(NULL, str("aλb")), "3", "3");
  check_print(esk_prim_string_ref(NULL, str("aλb"), esk_fixnum(1)), "λ", "#\\λ");
  esk_value sub[3] = {str("aλbc"), esk_fixnum(1), esk_fixnum(3)};
  check_print(esk_prim_substring(NULL, 3, sub), "λb", "\"λb\"");
  check_print(esk_prim_list_to_string(NULL, esk_prim_string_to_list(NULL, str("héllo"))), "héllo",
              "\"héllo\"");
  esk_value parts[3] = {l3, esk_cons(esk_fixnum(4), nil), esk_fixnum(5)};
  check_print(esk_prim_append(NULL, 3, parts), "(1 2 3 4 . 5)", "(1 2 3 4 . 5)");
  check_print(esk_prim_reverse(NULL, l3), "(3 2 1)", "(3 2 1)");
  check_print(esk_prim_equal(NULL, esk_prim_list(NULL, 3, (esk_value[]){str("a"), l3, esk_flonum(1)}),
                             esk_prim_list(NULL, 3, (esk_value[]){str("a"), l3, esk_flonum(1)})),
              "#t", "#t");
  check_print(esk_prim_equal(NULL, esk_fixnum(2), esk_flonum(2.0)), "#f", "#f");

  esk_value circ = esk_cons(esk_fixnum(1), esk_cons(esk_fixnum(2), nil));
  ((esk_pair *)esk_ptr(esk_prim_cdr(NULL, circ)))->cdr = circ;
  check_print(esk_prim_is_list(NULL, circ), "#f", "#f");
  check_print(circ, "(1 2 1 ...)", "(1 2 1 ...)");
}

static void test_symbols(void) {
  char name[32];
  strcpy(name, "hello");
  esk_value a = esk_intern(name, 5);
  strcpy(name, "HELLO");
  esk_value b = esk_intern("hello", 5);
  checks++;
  if (a.payload != b.payload || !esk_prim_eq(NULL, a, b).payload) {
    failures++;
    printf("FAIL interning identity\n");
  }
  for (int i = 0; i < 100000; i++) {
    snprintf(name, sizeof name, "sym%d", i);
    esk_intern(name, (int64_t)strlen(name));
  }
  esk_value c = esk_prim_string_to_symbol(NULL, str("hello"));
  esk_value d = esk_intern("sym777", 6);
  esk_value e = esk_prim_string_to_symbol(NULL, str("sym777"));
  checks++;
  if (c.payload != a.payload || d.payload != e.payload || a.payload == d.payload) {
    failures++;
    printf("FAIL interning after growth\n");
  }
  check_print(esk_prim_symbol_to_string(NULL, a), "hello", "\"hello\"");
}

static void test_errors(void) {
  check_child("car error", car_of_five, 1, "t.esk:3:7: error: car: expected pair, got 5\n");
  check_child("vector-ref range", vector_ref_range, 1,
              "t.esk:1:1: error: vector-ref: index 10 out of range for vector of length 3\n");
  check_child("division by zero at", div_by_zero_loc, 1, "t.esk:2:2: error: /: division by zero\n");
  check_child("sqrt of negative", sqrt_negative, 1,
              "t.esk:3:3: error: sqrt: negative argument -4 (complex numbers are not supported)\n");
  check_child("division by zero", div_by_zero, 1, "error: /: division by zero\n");
  check_child("error irritants", user_error, 1, "u.esk:9:1: error: bad thing: \"a\\\"b\" (1 . 2)\n");
  check_child("segfault", segfault, 1, "error: stack overflow or memory fault\n");
  check_child("deep recursion", run_deep, 1,
              "r.esk:4:4: error: stack overflow (recursion too deep)\n");
  check_child("unchecked recursion", run_unchecked, 1, "error: stack overflow or memory fault\n");
}

/* Values reachable only from the program thread's stack and from the argument buffer must
 * survive collections triggered by heavy allocation on that thread. */
static int thread_roots_ok;
static void thread_roots_entry(void) {
  esk_value list = esk_nil();
  for (int64_t i = 0; i < 100000; i++) list = esk_cons(esk_fixnum(i), list);
  esk_value *args = esk_argbuf();
  args[7] = esk_cons(esk_cstring("kept"), esk_nil());
  for (int64_t i = 0; i < 3000000; i++) esk_cons(esk_fixnum(i), esk_nil());
  int64_t sum = 0, n = 0;
  for (esk_value l = list; l.tag == ESK_T_PAIR; l = ((esk_pair *)esk_ptr(l))->cdr, n++)
    sum += ((esk_pair *)esk_ptr(l))->car.payload;
  thread_roots_ok = n == 100000 && sum == 99999LL * 100000 / 2 &&
                    !strcmp(printed(args[7], 1), "(\"kept\")");
}

static void test_program_thread(void) {
  esk_run(thread_roots_entry);
  checks++;
  if (!thread_roots_ok) {
    failures++;
    printf("FAIL roots on the program thread\n");
  }
}

static void test_memory(void) {
  const int64_t n = 10000000;
  esk_value keep = esk_nil();
  for (int64_t i = 0; i < n; i++) {
    esk_value l = esk_cons(esk_fixnum(i), esk_cons(esk_flonum((double)i), esk_nil()));
    if (i % 1000000 == 0) keep = esk_cons(l, keep);
  }
  /* Resident now, not the peak: earlier tests (deep stacks in this process) raise the peak.
   * The end-to-end bound on a whole program's peak is tested from Python (test_cli.py). */
  long pages = 0, resident = 0;
  FILE *statm = fopen("/proc/self/statm", "r");
  if (!statm || fscanf(statm, "%ld %ld", &pages, &resident) != 2) resident = 0;
  if (statm) fclose(statm);
  long rss_mib = resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
  printf("allocated %lld two-element lists (%lld MiB); resident %ld MiB\n", (long long)n,
         (long long)(n * 2 * 48 >> 20), rss_mib);
  check_print(esk_prim_length(NULL, keep), "10", "10");
  checks++;
  if (rss_mib > 200) {
    failures++;
    printf("FAIL memory not bounded\n");
  }
}

static void expect(int ok, const char *what) {
  checks++;
  if (!ok) {
    failures++;
    printf("FAIL %s\n", what);
  }
}

static void test_arena(void) {
  esk_arena *a = esk_arena_new(0);
  size_t before = esk_arena_bytes_live();
  unsigned char *first = esk_arena_alloc(a, 3);
  unsigned char *second = esk_arena_alloc(a, 40);
  expect(((uintptr_t)first & 15) == 0 && ((uintptr_t)second & 15) == 0, "arena alignment");
  expect(second - first == 16, "arena bump allocation is contiguous");
  expect(second[39] == 0, "arena memory is zeroed");
  /* Far more than one chunk: the arena grows and still hands out distinct memory. */
  unsigned char *last = NULL;
  for (int i = 0; i < 100000; i++) {
    unsigned char *p = esk_arena_alloc(a, 48);
    p[0] = (unsigned char)i;
    last = p;
  }
  expect(last != NULL && esk_arena_allocated(a) == 16 + 48 + 100000 * 48, "arena accounting");
  expect(esk_arena_bytes_live() > before, "arena chunks counted");
  esk_arena_free(a);
  expect(esk_arena_bytes_live() == before - (size_t)(64 * 1024), "arena frees every chunk");
  /* Regions nest per thread. */
  esk_region_enter(1 << 20);
  esk_arena *outer = esk_region_current();
  esk_region_enter(0);
  expect(esk_region_current() != outer, "inner region is current");
  esk_region_exit();
  expect(esk_region_current() == outer, "exit restores the outer region");
  esk_region_exit();
  expect(esk_region_current() == NULL, "no region after the last exit");
}

int main(int argc, char **argv) {
  esk_init(argc, argv);
  test_arena();
  test_numbers();
  test_bignums();
  test_printing();
  test_symbols();
  test_errors();
  test_program_thread();
  test_memory();
  printf("%d checks, %d failures\n", checks, failures);
  esk_flush();
  return failures != 0;
}
