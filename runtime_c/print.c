/* display and write (LANGUAGE.md, Printing), and the shortest round-trip double format. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eshkol_rt.h"

/* Splits "[-]D[.DDD]e[+-]XX" into at most maxd digits and the decimal exponent of the first. */
static int split_sci(const char *p, int maxd, char *digits, int *exp10) {
  int nd = 0;
  if (*p == '-') p++;
  for (; *p != 'e'; p++)
    if (*p != '.' && nd < maxd) digits[nd++] = *p;
  *exp10 = atoi(p + 1);
  return nd;
}

/* When d lies exactly halfway between two (prec+1)-digit decimals, %e rounds to even but
 * Chez Scheme, our reference for printing, rounds away from zero: this rewrites digits to
 * Chez's choice.  A tie's exact expansion ends with a 5 right after the kept digits, so the
 * short print filters almost every case before the exact one (at most 767 digits). */
static void round_ties_away(double d, int prec, char *digits, int *nd, int *exp10) {
  char buf[800];
  snprintf(buf, sizeof buf, "%.*e", prec + 1, d);
  if (strchr(buf, 'e')[-1] != '5') return;
  snprintf(buf, sizeof buf, "%.770e", d);
  const char *next = strchr(buf, '.') + 1 + prec;
  if (*next != '5') return;
  for (const char *z = next + 1; *z != 'e'; z++)
    if (*z != '0') return;
  *nd = split_sci(buf, prec + 1, digits, exp10);
  int i = *nd - 1;
  while (i >= 0 && digits[i] == '9') digits[i--] = '0';
  if (i >= 0) {
    digits[i]++;
  } else {
    digits[0] = '1';
    (*exp10)++;
  }
}

/* d with mid+1 significant digits as "%e" text, a tie rounded as Chez does: the candidate a
 * round trip is tried on (an exact tie rounded to even can fail to read back where the
 * rounding away succeeds: 2^-24 is 5.960464477539063e-8, not 17 digits). */
static void sci_ties_away(double d, int prec, char *out, size_t size) {
  char digits[24];
  int exp10;
  snprintf(out, size, "%.*e", prec, d);
  int nd = split_sci(out, prec + 1, digits, &exp10);
  round_ties_away(d, prec, digits, &nd, &exp10);
  digits[nd] = '\0';
  snprintf(out, size, "%s%c.%se%d", signbit(d) ? "-" : "", digits[0], digits + 1, exp10);
}

int esk_format_double(double d, char *buf, size_t size) {
  if (isnan(d)) return snprintf(buf, size, "+nan.0");
  if (isinf(d)) return snprintf(buf, size, d > 0 ? "+inf.0" : "-inf.0");

  /* Fewest significant digits that read back as d.  %e rounds correctly, so the digits are
   * those a shortest-output algorithm picks, and round-tripping is monotone in the
   * precision (the p-digit result is also a p+1-digit candidate), so binary search works;
   * 17 digits always round-trip. */
  char sci[40], trial[40];
  snprintf(sci, sizeof sci, "%.16e", d);
  int lo = 0, hi = 16;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    sci_ties_away(d, mid, trial, sizeof trial);
    if (strtod(trial, NULL) == d) {
      hi = mid;
      memcpy(sci, trial, sizeof sci);
    } else {
      lo = mid + 1;
    }
  }

  char digits[24];
  int exp10;
  int nd = split_sci(sci, 17, digits, &exp10);
  round_ties_away(d, lo, digits, &nd, &exp10);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = '\0';

  char out[64];
  char *o = out;
  if (signbit(d)) *o++ = '-';
  double mag = fabs(d);
  if (mag == 0 || (mag >= 1e-3 && mag < 1e10)) {
    if (exp10 >= 0) {
      for (int i = 0; i <= exp10; i++) *o++ = i < nd ? digits[i] : '0';
      *o++ = '.';
      if (nd > exp10 + 1)
        for (int i = exp10 + 1; i < nd; i++) *o++ = digits[i];
      else
        *o++ = '0';
    } else {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -exp10 - 1; i++) *o++ = '0';
      for (int i = 0; i < nd; i++) *o++ = digits[i];
    }
    *o = '\0';
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      for (int i = 1; i < nd; i++) *o++ = digits[i];
    }
    sprintf(o, "e%d", exp10);
  }
  return snprintf(buf, size, "%s", out);
}

static void put_utf8(uint32_t c, FILE *out) {
  char b[4];
  int n;
  if (c < 0x80) { b[0] = (char)c; n = 1; }
  else if (c < 0x800) { b[0] = (char)(0xC0 | c >> 6); b[1] = (char)(0x80 | (c & 0x3F)); n = 2; }
  else if (c < 0x10000) {
    b[0] = (char)(0xE0 | c >> 12); b[1] = (char)(0x80 | (c >> 6 & 0x3F));
    b[2] = (char)(0x80 | (c & 0x3F)); n = 3;
  } else {
    b[0] = (char)(0xF0 | c >> 18); b[1] = (char)(0x80 | (c >> 12 & 0x3F));
    b[2] = (char)(0x80 | (c >> 6 & 0x3F)); b[3] = (char)(0x80 | (c & 0x3F)); n = 4;
  }
  fwrite(b, 1, (size_t)n, out);
}

static const struct { uint32_t code; const char *name; } char_names[] = {
    {0, "nul"},      {7, "alarm"},   {8, "backspace"}, {9, "tab"},    {10, "newline"},
    {11, "vtab"},    {12, "page"},   {13, "return"},   {27, "esc"},   {32, "space"},
    {127, "delete"},
};

static void write_char_literal(uint32_t c, FILE *out) {
  fputs("#\\", out);
  for (size_t i = 0; i < sizeof char_names / sizeof char_names[0]; i++)
    if (char_names[i].code == c) {
      fputs(char_names[i].name, out);
      return;
    }
  if (c < 0x20 || (c >= 0x80 && c < 0xA0) || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000))
    fprintf(out, "x%x", c);
  else
    put_utf8(c, out);
}

static void write_string_literal(const esk_string *s, FILE *out) {
  putc('"', out);
  for (int64_t i = 0; i < s->len; i++) {
    unsigned char c = (unsigned char)s->data[i];
    switch (c) {
      case '"': fputs("\\\"", out); break;
      case '\\': fputs("\\\\", out); break;
      case '\a': fputs("\\a", out); break;
      case '\b': fputs("\\b", out); break;
      case '\t': fputs("\\t", out); break;
      case '\n': fputs("\\n", out); break;
      case '\r': fputs("\\r", out); break;
      default:
        if (c < 0x20 || c == 0x7F) fprintf(out, "\\x%X;", c);
        else putc(c, out);
    }
  }
  putc('"', out);
}

/* A symbol needs |bars| when the reader would not read its name back as that symbol. */
static int symbol_needs_bars(const esk_string *n) {
  if (n->len == 0) return 1;
  const unsigned char *p = (const unsigned char *)n->data;
  int keyword = n->len > 2 && p[0] == '#' && p[1] == ':';  /* #:name reads back as itself */
  if ((p[0] == '#' && !keyword) || (p[0] >= '0' && p[0] <= '9')) return 1;
  if (n->len == 1 && p[0] == '.') return 1;
  for (int64_t i = 0; i < n->len; i++)
    if (p[i] <= ' ' || p[i] == 0x7F || strchr("()[]{}\"';`,|\\", p[i])) return 1;
  return esk_looks_like_number(n->data, n->len);
}

static void write_symbol(const esk_string *n, FILE *out) {
  if (!symbol_needs_bars(n)) {
    fwrite(n->data, 1, (size_t)n->len, out);
    return;
  }
  putc('|', out);
  for (int64_t i = 0; i < n->len; i++) {
    char c = n->data[i];
    if (c == '|' || c == '\\') putc('\\', out);
    putc(c, out);
  }
  putc('|', out);
}

static void print(esk_value v, FILE *out, int write);

/* A cdr-circular list ends in "..." once Floyd's check sees the cycle, so printing (and error
 * messages that print their irritants) always terminates. */
static void print_list(esk_pair *p, FILE *out, int write) {
  esk_pair *slow = p;
  putc('(', out);
  for (int64_t n = 1;; n++) {
    print(p->car, out, write);
    esk_value d = p->cdr;
    if (d.tag == ESK_T_NIL) break;
    if (d.tag != ESK_T_PAIR || !d.payload) {
      fputs(" . ", out);
      print(d, out, write);
      break;
    }
    p = esk_ptr(d);
    if (n % 2 == 0) slow = esk_ptr(slow->cdr);
    if (p == slow) {
      fputs(" ...", out);
      break;
    }
    putc(' ', out);
  }
  putc(')', out);
}

static void print(esk_value v, FILE *out, int write) {
  if (v.tag >= ESK_T_FIRST_HEAP && !v.payload) {
    fprintf(out, "#<null object %lld>", (long long)v.tag);
    return;
  }
  void *obj = (void *)(intptr_t)v.payload;
  switch (v.tag) {
    case ESK_T_NIL: fputs("()", out); break;
    case ESK_T_VOID: break;
    case ESK_T_BOOL: fputs(v.payload ? "#t" : "#f", out); break;
    case ESK_T_CHAR:
      if (write) write_char_literal((uint32_t)v.payload, out);
      else put_utf8((uint32_t)v.payload, out);
      break;
    case ESK_T_FIXNUM: fprintf(out, "%lld", (long long)v.payload); break;
    case ESK_T_FLONUM: {
      char buf[64];
      double d;
      memcpy(&d, &v.payload, sizeof d);
      esk_format_double(d, buf, sizeof buf);
      fputs(buf, out);
      break;
    }
    case ESK_T_EOF: fputs("#<eof>", out); break;
    case ESK_T_DEFAULT: fputs("#<default>", out); break;
    case ESK_T_UNBOUND: fputs("#<unbound>", out); break;
    case ESK_T_PAIR: print_list(obj, out, write); break;
    case ESK_T_STRING: {
      esk_string *s = obj;
      if (write) write_string_literal(s, out);
      else fwrite(s->data, 1, (size_t)s->len, out);
      break;
    }
    case ESK_T_SYMBOL: {
      esk_string *n = ((esk_symbol *)obj)->name;
      if (write) write_symbol(n, out);
      else fwrite(n->data, 1, (size_t)n->len, out);
      break;
    }
    case ESK_T_VECTOR: {
      esk_vector *vec = obj;
      fputs("#(", out);
      for (int64_t i = 0; i < vec->len; i++) {
        if (i) putc(' ', out);
        print(vec->items[i], out, write);
      }
      putc(')', out);
      break;
    }
    case ESK_T_CLOSURE: {
      const char *name = ((esk_closure *)obj)->name;
      if (name && *name) fprintf(out, "#<procedure %s>", name);
      else fputs("#<procedure>", out);
      break;
    }
    case ESK_T_BOX:
      fputs("#&", out);
      print(((esk_box *)obj)->value, out, write);
      break;
    case ESK_T_BIGNUM:
    case ESK_T_RATIONAL: fputs(esk_number_to_cstring(v, 10), out); break;
    case ESK_T_HASHTABLE:
      fprintf(out, "#<hash-table %lld>", (long long)((esk_hashtable *)obj)->count);
      break;
    case ESK_T_BYTEVECTOR: {
      esk_bytevector *b = obj;
      fputs("#u8(", out);
      for (int64_t i = 0; i < b->len; i++) fprintf(out, i ? " %u" : "%u", b->data[i]);
      putc(')', out);
      break;
    }
    case ESK_T_RECORD: if (!esk_print_record(v, out, write)) fputs("#<record>", out); break;
    case ESK_T_TENSOR: if (!esk_print_tensor(v, out, write)) fputs("#<tensor>", out); break;
    case ESK_T_DUAL:
    case ESK_T_ADNODE: esk_print_ad(v, out, write); break;
    case ESK_T_PROMISE: fputs("#<promise>", out); break;
    case ESK_T_ERROR: fputs("#<condition>", out); break;
    case ESK_T_PORT: fputs("#<port>", out); break;
    default: fprintf(out, "#<unknown tag %lld>", (long long)v.tag); break;
  }
}

void esk_display(esk_value v, FILE *out) { print(v, out, 0); }
void esk_write(esk_value v, FILE *out) { print(v, out, 1); }
