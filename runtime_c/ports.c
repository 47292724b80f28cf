/* Ports (ESK_T_PORT): output to a FILE* (files, stdout/stderr, or an open_memstream buffer
 * for string ports) and input from a FILE* or a string; display/write and friends with an
 * optional port; `read`; `format` and `printf`. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eshkol_rt.h"

#define NIL ((esk_value){ESK_T_NIL, 0})
#define VOID ((esk_value){ESK_T_VOID, 0})
#define FALSE ((esk_value){ESK_T_BOOL, 0})
#define EOFV ((esk_value){ESK_T_EOF, 0})
#define PAIR(v) ((esk_pair *)esk_ptr(v))
#define DEFAULTED(argc, i, argv) ((argc) <= (i) || (argv)[i].tag == ESK_T_DEFAULT)


static esk_value port_value(esk_port *p) { return (esk_value){ESK_T_PORT, (int64_t)(intptr_t)p}; }

static esk_port *new_port(int input, int output, const char *name) {
  esk_port *p = esk_alloc(sizeof *p);
  p->h.type = ESK_T_PORT;
  p->input = input;
  p->output = output;
  p->peeked = -1;
  p->name = name;
  return p;
}

/* The standard ports and the current ones (this file's data is scanned by the collector). */
static esk_port *std_out, *std_err, *std_in;
static esk_value cur_out, cur_in;

static void init_std(void) {
  if (std_out) return;
  std_out = new_port(0, 1, "stdout");
  std_out->f = stdout;
  std_err = new_port(0, 1, "stderr");
  std_err->f = stderr;
  std_in = new_port(1, 0, "stdin");
  std_in->f = stdin;
  cur_out = port_value(std_out);
  cur_in = port_value(std_in);
}

static esk_port *out_port(const char *loc, const char *who, esk_value v) {
  init_std();
  if (v.tag == ESK_T_DEFAULT) v = cur_out;
  if (v.tag != ESK_T_PORT || !((esk_port *)esk_ptr(v))->output)
    esk_error_type(loc, who, "output port", v);
  esk_port *p = esk_ptr(v);
  if (p->closed) esk_raise_error(loc, "output port is closed:", 1, &v);
  return p;
}

static esk_port *in_port(const char *loc, const char *who, esk_value v) {
  init_std();
  if (v.tag == ESK_T_DEFAULT) v = cur_in;
  if (v.tag != ESK_T_PORT || !((esk_port *)esk_ptr(v))->input)
    esk_error_type(loc, who, "input port", v);
  esk_port *p = esk_ptr(v);
  if (p->closed) esk_raise_error(loc, "input port is closed:", 1, &v);
  return p;
}

FILE *esk_output_file(const char *loc, const char *who, esk_value port) {
  return out_port(loc, who, port)->f;
}

static esk_value opt(int64_t argc, esk_value *argv, int64_t i) {
  return argc > i ? argv[i] : (esk_value){ESK_T_DEFAULT, 0};
}

/* ---- output ------------------------------------------------------------------------------------ */

esk_value esk_prim_display_port(const char *loc, int64_t argc, esk_value *argv) {
  esk_display(argv[0], out_port(loc, "display", opt(argc, argv, 1))->f);
  return VOID;
}

esk_value esk_prim_write_port(const char *loc, int64_t argc, esk_value *argv) {
  esk_write(argv[0], out_port(loc, "write", opt(argc, argv, 1))->f);
  return VOID;
}

esk_value esk_prim_newline_port(const char *loc, int64_t argc, esk_value *argv) {
  putc('\n', out_port(loc, "newline", opt(argc, argv, 0))->f);
  return VOID;
}

/* (write-string s [port [start end]]) */
esk_value esk_prim_write_string_port(const char *loc, int64_t argc, esk_value *argv) {
  if (argv[0].tag != ESK_T_STRING) esk_error_type(loc, "write-string", "string", argv[0]);
  FILE *f = out_port(loc, "write-string", opt(argc, argv, 1))->f;
  esk_value s = argv[0];
  if (argc > 2) {
    esk_value args[3] = {argv[0], argv[2], argc > 3 ? argv[3] : (esk_value){ESK_T_DEFAULT, 0}};
    s = esk_prim_substring(loc, argc > 3 ? 3 : 2, args);
  }
  esk_string *str = esk_ptr(s);
  fwrite(str->data, 1, (size_t)str->len, f);
  return VOID;
}

esk_value esk_prim_write_char_port(const char *loc, int64_t argc, esk_value *argv) {
  if (argv[0].tag != ESK_T_CHAR) esk_error_type(loc, "write-char", "char", argv[0]);
  esk_display(argv[0], out_port(loc, "write-char", opt(argc, argv, 1))->f);
  return VOID;
}

/* (write-line x [port]): display then newline. */
esk_value esk_prim_write_line(const char *loc, int64_t argc, esk_value *argv) {
  FILE *f = out_port(loc, "write-line", opt(argc, argv, 1))->f;
  esk_display(argv[0], f);
  putc('\n', f);
  return VOID;
}

esk_value esk_prim_flush_output_port(const char *loc, int64_t argc, esk_value *argv) {
  fflush(out_port(loc, "flush-output-port", opt(argc, argv, 0))->f);
  return VOID;
}

/* (current-output-port [port]): with an argument, makes port current (as Chez parameters do). */
esk_value esk_prim_current_output_port(const char *loc, int64_t argc, esk_value *argv) {
  init_std();
  if (argc > 0 && argv[0].tag != ESK_T_DEFAULT) {
    out_port(loc, "current-output-port", argv[0]);
    cur_out = argv[0];
    return VOID;
  }
  return cur_out;
}

esk_value esk_prim_current_input_port(const char *loc, int64_t argc, esk_value *argv) {
  init_std();
  if (argc > 0 && argv[0].tag != ESK_T_DEFAULT) {
    in_port(loc, "current-input-port", argv[0]);
    cur_in = argv[0];
    return VOID;
  }
  return cur_in;
}

esk_value esk_prim_current_error_port(const char *loc) {
  (void)loc;
  init_std();
  return port_value(std_err);
}

esk_value esk_prim_open_output_string(const char *loc) {
  esk_port *p = new_port(0, 1, "string");
  p->is_string = 1;
  p->f = open_memstream(&p->mem, &p->memsize);
  if (!p->f) esk_errorf(loc, "open-output-string: out of memory");
  return port_value(p);
}

esk_value esk_prim_get_output_string(const char *loc, esk_value v) {
  if (v.tag != ESK_T_PORT || !((esk_port *)esk_ptr(v))->is_string ||
      !((esk_port *)esk_ptr(v))->output)
    esk_error_type(loc, "get-output-string", "string output port", v);
  esk_port *p = esk_ptr(v);
  fflush(p->f);
  return esk_make_string(p->mem ? p->mem : "", (int64_t)p->memsize);
}

esk_value esk_prim_open_input_string(const char *loc, esk_value s) {
  if (s.tag != ESK_T_STRING) esk_error_type(loc, "open-input-string", "string", s);
  esk_string *str = esk_ptr(s);
  esk_port *p = new_port(1, 0, "string");
  p->is_string = 1;
  char *copy = esk_alloc_atomic((size_t)str->len + 1);
  memcpy(copy, str->data, (size_t)str->len);
  p->sdata = copy;
  p->slen = str->len;
  return port_value(p);
}

static const char *need_path(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_STRING) esk_error_type(loc, who, "string (file name)", v);
  return ((esk_string *)esk_ptr(v))->data;
}

static _Noreturn void file_fail(const char *loc, const char *who, esk_value path) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: cannot open file (%s):", who, strerror(errno));
  esk_raise_error(loc, msg, 1, &path);
}

static esk_value open_file(const char *loc, const char *who, esk_value path, const char *mode) {
  const char *name = need_path(loc, who, path);
  FILE *f = fopen(name, mode);
  if (!f) file_fail(loc, who, path);
  esk_port *p = new_port(mode[0] == 'r', mode[0] != 'r', name);
  p->f = f;
  return port_value(p);
}

esk_value esk_prim_open_input_file(const char *loc, esk_value path) {
  return open_file(loc, "open-input-file", path, "r");
}

/* (open-output-file path [append?]) */
esk_value esk_prim_open_output_file(const char *loc, int64_t argc, esk_value *argv) {
  int append = argc > 1 && argv[1].tag != ESK_T_DEFAULT && esk_is_true(argv[1]);
  return open_file(loc, "open-output-file", argv[0], append ? "a" : "w");
}

static void close_port(const char *loc, const char *who, esk_value v) {
  if (v.tag != ESK_T_PORT) esk_error_type(loc, who, "port", v);
  esk_port *p = esk_ptr(v);
  init_std();
  if (p->closed || p == std_out || p == std_err || p == std_in) return;
  if (p->f && !p->is_string) {
    fclose(p->f);
    p->f = NULL;
  }
  if (!p->is_string || p->input) p->closed = 1;
  /* A closed string output port keeps its text for get-output-string. */
  if (p->is_string && p->output) p->closed = 1;
}

esk_value esk_prim_close_port(const char *loc, esk_value v) {
  close_port(loc, "close-port", v);
  return VOID;
}
esk_value esk_prim_close_input_port(const char *loc, esk_value v) {
  close_port(loc, "close-input-port", v);
  return VOID;
}
esk_value esk_prim_close_output_port(const char *loc, esk_value v) {
  close_port(loc, "close-output-port", v);
  return VOID;
}

/* (call-with-output-string proc): proc gets a string port; returns its text. */
esk_value esk_prim_call_with_output_string(const char *loc, esk_value proc) {
  esk_value port = esk_prim_open_output_string(loc);
  esk_call(loc, proc, 1, &port);
  return esk_prim_get_output_string(loc, port);
}

/* (call-with-output-file path proc), (call-with-input-file path proc): the port is closed
 * when proc returns. */
esk_value esk_prim_call_with_output_file(const char *loc, esk_value path, esk_value proc) {
  esk_value port = open_file(loc, "call-with-output-file", path, "w");
  esk_value r = esk_call(loc, proc, 1, &port);
  close_port(loc, "call-with-output-file", port);
  return r;
}
esk_value esk_prim_call_with_input_file(const char *loc, esk_value path, esk_value proc) {
  esk_value port = open_file(loc, "call-with-input-file", path, "r");
  esk_value r = esk_call(loc, proc, 1, &port);
  close_port(loc, "call-with-input-file", port);
  return r;
}
esk_value esk_prim_call_with_port(const char *loc, esk_value port, esk_value proc) {
  if (port.tag != ESK_T_PORT) esk_error_type(loc, "call-with-port", "port", port);
  esk_value r = esk_call(loc, proc, 1, &port);
  close_port(loc, "call-with-port", port);
  return r;
}

esk_value esk_prim_is_port(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_PORT);
}
esk_value esk_prim_is_input_port(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_PORT && ((esk_port *)esk_ptr(v))->input);
}
esk_value esk_prim_is_output_port(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_PORT && ((esk_port *)esk_ptr(v))->output);
}

esk_value esk_prim_file_exists(const char *loc, esk_value path) {
  return esk_bool(access(need_path(loc, "file-exists?", path), F_OK) == 0);
}

esk_value esk_prim_delete_file(const char *loc, esk_value path) {
  if (unlink(need_path(loc, "delete-file", path)) != 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "delete-file: cannot delete file (%s):", strerror(errno));
    esk_raise_error(loc, msg, 1, &path);
  }
  return VOID;
}

/* ---- input ------------------------------------------------------------------------------------- */

static int getb(esk_port *p) {
  if (p->f) return getc(p->f);
  return p->spos < p->slen ? (unsigned char)p->sdata[p->spos++] : EOF;
}

/* The next code point, or -1 at end of input (invalid UTF-8 reads as U+FFFD). */
static int64_t read_cp(esk_port *p) {
  if (p->peeked >= 0) {
    int64_t c = p->peeked;
    p->peeked = -1;
    return c;
  }
  int c = getb(p);
  if (c == EOF) return -1;
  if (c < 0x80) return c;
  int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
  if (n < 0) return 0xFFFD;
  uint32_t v = (uint32_t)c & (n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07);
  for (int k = 0; k < n; k++) {
    int d = getb(p);
    if (d == EOF || (d & 0xC0) != 0x80) {
      if (d != EOF) {
        if (p->f) ungetc(d, p->f);
        else p->spos--;
      }
      return 0xFFFD;
    }
    v = v << 6 | ((uint32_t)d & 0x3F);
  }
  return v;
}

static int64_t peek_cp(esk_port *p) {
  if (p->peeked < 0) p->peeked = read_cp(p);
  return p->peeked;
}


/* A growable byte buffer on the collected heap. */
typedef struct { char *d; int64_t n, cap; } buf;
static void bput(buf *b, const char *s, int64_t n) {
  if (b->n + n + 1 > b->cap) {
    int64_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *d = esk_alloc_atomic((size_t)cap);
    if (b->n) memcpy(d, b->d, (size_t)b->n);
    b->d = d;
    b->cap = cap;
  }
  memcpy(b->d + b->n, s, (size_t)n);
  b->n += n;
  b->d[b->n] = 0;
}
static void bput_cp(buf *b, uint32_t c) {
  char e[4];
  bput(b, e, esk_utf8_encode(c, e));
}

esk_value esk_prim_read_char(const char *loc, int64_t argc, esk_value *argv) {
  int64_t c = read_cp(in_port(loc, "read-char", opt(argc, argv, 0)));
  return c < 0 ? EOFV : esk_char((uint32_t)c);
}

esk_value esk_prim_peek_char(const char *loc, int64_t argc, esk_value *argv) {
  int64_t c = peek_cp(in_port(loc, "peek-char", opt(argc, argv, 0)));
  return c < 0 ? EOFV : esk_char((uint32_t)c);
}

esk_value esk_prim_char_ready(const char *loc, int64_t argc, esk_value *argv) {
  in_port(loc, "char-ready?", opt(argc, argv, 0));
  return esk_bool(1);
}

esk_value esk_prim_read_line(const char *loc, int64_t argc, esk_value *argv) {
  esk_port *p = in_port(loc, "read-line", opt(argc, argv, 0));
  buf b = {0};
  int64_t c = read_cp(p);
  if (c < 0) return EOFV;
  for (; c >= 0 && c != '\n'; c = read_cp(p)) bput_cp(&b, (uint32_t)c);
  return esk_make_string(b.d ? b.d : "", b.n);
}

/* (read-string k [port]); Chez's (read-string port k) order is accepted too. */
esk_value esk_prim_read_string(const char *loc, int64_t argc, esk_value *argv) {
  esk_value k = argv[0], port = opt(argc, argv, 1);
  if (k.tag == ESK_T_PORT) {
    esk_value t = k;
    k = port;
    port = t;
  }
  if (k.tag != ESK_T_FIXNUM || k.payload < 0)
    esk_error_type(loc, "read-string", "non-negative exact integer", k);
  esk_port *p = in_port(loc, "read-string", port);
  buf b = {0};
  int64_t i = 0;
  for (; i < k.payload; i++) {
    int64_t c = read_cp(p);
    if (c < 0) break;
    bput_cp(&b, (uint32_t)c);
  }
  if (i == 0 && k.payload > 0) return EOFV;
  return esk_make_string(b.d ? b.d : "", b.n);
}

esk_value esk_prim_eof_object(const char *loc) {
  (void)loc;
  return EOFV;
}

esk_value esk_prim_is_eof_object(const char *loc, esk_value v) {
  (void)loc;
  return esk_bool(v.tag == ESK_T_EOF);
}

/* ---- read: a datum reader ---------------------------------------------------------------------- */

static esk_value read_datum(const char *loc, esk_port *p, int *closer);

static int delimiter(int64_t c) {
  return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(' ||
         c == ')' || c == '[' || c == ']' || c == '"' || c == ';' || c == '\'' || c == '`' ||
         c == ',';
}

static _Noreturn void read_fail(const char *loc, const char *msg) {
  char m[160];
  snprintf(m, sizeof m, "read: %s", msg);
  esk_raise_error(loc, m, 0, NULL);
}

/* Skips whitespace and comments; returns the next code point without consuming it. */
static int64_t skip_ws(const char *loc, esk_port *p) {
  for (;;) {
    int64_t c = peek_cp(p);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
      read_cp(p);
    } else if (c == ';') {
      while (c >= 0 && c != '\n') c = read_cp(p);
    } else if (c == '#') {
      /* #| ... |# and #; need a second character: look without losing the '#'. */
      read_cp(p);
      int64_t d = peek_cp(p);
      if (d == '|') {
        read_cp(p);
        int depth = 1;
        int64_t prev = 0;
        while (depth > 0) {
          int64_t x = read_cp(p);
          if (x < 0) read_fail(loc, "unterminated block comment");
          if (prev == '|' && x == '#') depth--, x = 0;
          else if (prev == '#' && x == '|') depth++, x = 0;
          prev = x;
        }
      } else if (d == ';') {
        read_cp(p);
        int closer = 0;
        read_datum(loc, p, &closer);
      } else {
        /* Not a comment: push the '#' back in front of d. */
        p->peeked = -1;
        if (d >= 0) {
          /* put d back: string ports rewind, file ports ungetc its bytes */
          char e[4];
          int n = esk_utf8_encode((uint32_t)d, e);
          if (p->f) for (int i = n - 1; i >= 0; i--) ungetc((unsigned char)e[i], p->f);
          else p->spos -= n;
        }
        p->peeked = '#';
        return '#';
      }
    } else {
      return c;
    }
  }
}

static esk_value read_token(esk_port *p, buf *b) {
  while (!delimiter(peek_cp(p))) bput_cp(b, (uint32_t)read_cp(p));
  return VOID;
}

static const struct { const char *name; uint32_t code; } names[] = {
    {"nul", 0},      {"null", 0},      {"alarm", 7},   {"backspace", 8}, {"tab", 9},
    {"newline", 10}, {"linefeed", 10}, {"vtab", 11},   {"page", 12},     {"return", 13},
    {"esc", 27},     {"escape", 27},   {"space", 32},  {"delete", 127},  {"rubout", 127},
};

static esk_value list_until(const char *loc, esk_port *p, int close) {
  esk_value head = NIL, *tail = &head;
  for (;;) {
    int closer = 0;
    int64_t c = skip_ws(loc, p);
    if (c < 0) read_fail(loc, "unexpected end of input in a list");
    if (c == ')' || c == ']') {
      read_cp(p);
      if (c != close) read_fail(loc, "mismatched closing bracket");
      return head;
    }
    if (c == '.') {
      read_cp(p);
      if (delimiter(peek_cp(p))) {
        if (head.tag == ESK_T_NIL) read_fail(loc, "unexpected '.'");
        *tail = read_datum(loc, p, &closer);
        if (closer) read_fail(loc, "missing datum after '.'");
        int64_t e = skip_ws(loc, p);
        if (e != close) read_fail(loc, "expected ')' after dotted tail");
        read_cp(p);
        return head;
      }
      /* a token starting with '.', e.g. ... or .5 */
      buf b = {0};
      bput(&b, ".", 1);
      read_token(p, &b);
      esk_value arg = esk_make_string(b.d, b.n);
      esk_value num = esk_prim_string_to_number(loc, 1, &arg);
      *tail = esk_cons(num.tag == ESK_T_BOOL ? esk_intern(b.d, b.n) : num, NIL);
      tail = &PAIR(*tail)->cdr;
      continue;
    }
    esk_value d = read_datum(loc, p, &closer);
    *tail = esk_cons(d, NIL);
    tail = &PAIR(*tail)->cdr;
  }
}

static esk_value read_datum(const char *loc, esk_port *p, int *closer) {
  int64_t c = skip_ws(loc, p);
  if (c < 0) return EOFV;
  read_cp(p);
  switch (c) {
    case '(': return list_until(loc, p, ')');
    case '[': return list_until(loc, p, ']');
    case ')': case ']': read_fail(loc, "unexpected ')'");
    case '\'': case '`': case ',': {
      const char *name = c == '\'' ? "quote" : c == '`' ? "quasiquote" : "unquote";
      if (c == ',' && peek_cp(p) == '@') {
        read_cp(p);
        name = "unquote-splicing";
      }
      esk_value d = read_datum(loc, p, closer);
      if (d.tag == ESK_T_EOF) read_fail(loc, "unexpected end of input after quote");
      return esk_cons(esk_intern(name, (int64_t)strlen(name)), esk_cons(d, NIL));
    }
    case '"': {
      buf b = {0};
      for (;;) {
        int64_t x = read_cp(p);
        if (x < 0) read_fail(loc, "unterminated string");
        if (x == '"') break;
        if (x == '\\') {
          x = read_cp(p);
          switch (x) {
            case 'n': x = '\n'; break;
            case 't': x = '\t'; break;
            case 'r': x = '\r'; break;
            case 'a': x = 7; break;
            case 'b': x = 8; break;
            case '0': x = 0; break;
            case 'x': case 'X': {
              uint32_t v = 0;
              int64_t h;
              while ((h = read_cp(p)) >= 0 && h != ';') {
                int dv = h >= '0' && h <= '9' ? (int)(h - '0') : (h | 32) >= 'a' && (h | 32) <= 'f' ? (int)((h | 32) - 'a' + 10) : -1;
                if (dv < 0) read_fail(loc, "bad \\x escape in string");
                v = v * 16 + (uint32_t)dv;
              }
              x = v;
              break;
            }
            case '\n':
              while (peek_cp(p) == ' ' || peek_cp(p) == '\t') read_cp(p);
              continue;
            default:
              if (x < 0) read_fail(loc, "unterminated string");
              break;
          }
        }
        bput_cp(&b, (uint32_t)x);
      }
      return esk_make_string(b.d ? b.d : "", b.n);
    }
    case '|': {
      buf b = {0};
      for (int64_t x; (x = read_cp(p)) != '|';) {
        if (x < 0) read_fail(loc, "unterminated |symbol|");
        if (x == '\\') x = read_cp(p);
        bput_cp(&b, (uint32_t)x);
      }
      return esk_intern(b.d ? b.d : "", b.n);
    }
    case '#': {
      int64_t d = peek_cp(p);
      if (d == '(') {
        read_cp(p);
        return esk_prim_list_to_vector(loc, list_until(loc, p, ')'));
      }
      if (d == '\\') {
        read_cp(p);
        int64_t first = read_cp(p);
        if (first < 0) read_fail(loc, "unexpected end of input in a character");
        buf b = {0};
        bput_cp(&b, (uint32_t)first);
        read_token(p, &b);
        if (b.n == 1 || esk_utf8_encode((uint32_t)first, (char[4]){0}) == b.n) return esk_char((uint32_t)first);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
          if (!strcmp(b.d, names[i].name)) return esk_char(names[i].code);
        if (first == 'x' || first == 'U' || first == 'u') {
          char *end;
          long v = strtol(b.d + 1, &end, 16);
          if (*end == 0) return esk_char((uint32_t)v);
        }
        read_fail(loc, "unknown character name");
      }
      if (d == 'u') {
        buf b = {0};
        read_token(p, &b);
        if (strcmp(b.d ? b.d : "", "u8") || peek_cp(p) != '(') read_fail(loc, "bad # syntax");
        read_cp(p);
        esk_value l = list_until(loc, p, ')');
        int64_t n = 0;
        for (esk_value x = l; x.tag == ESK_T_PAIR; x = PAIR(x)->cdr) n++;
        esk_value *items = esk_alloc((size_t)(n + 1) * sizeof(esk_value));
        n = 0;
        for (esk_value x = l; x.tag == ESK_T_PAIR; x = PAIR(x)->cdr) items[n++] = PAIR(x)->car;
        return esk_prim_bytevector(loc, n, items);
      }
      buf b = {0};
      bput(&b, "#", 1);
      read_token(p, &b);
      if (!strcmp(b.d, "#t") || !strcmp(b.d, "#true")) return esk_bool(1);
      if (!strcmp(b.d, "#f") || !strcmp(b.d, "#false")) return esk_bool(0);
      if (!strcmp(b.d, "#!eof")) return EOFV;
      esk_value arg = esk_make_string(b.d, b.n);
      esk_value num = esk_prim_string_to_number(loc, 1, &arg);
      if (num.tag != ESK_T_BOOL) return num;
      read_fail(loc, "bad # syntax");
    }
    default: {
      buf b = {0};
      bput_cp(&b, (uint32_t)c);
      read_token(p, &b);
      esk_value arg = esk_make_string(b.d, b.n);
      esk_value num = esk_prim_string_to_number(loc, 1, &arg);
      if (num.tag != ESK_T_BOOL) return num;
      return esk_intern(b.d, b.n);
    }
  }
}

esk_value esk_prim_read(const char *loc, int64_t argc, esk_value *argv) {
  esk_port *p = in_port(loc, "read", opt(argc, argv, 0));
  int closer = 0;
  return read_datum(loc, p, &closer);
}

/* ---- format and printf ------------------------------------------------------------------------- */

static void format_to(const char *loc, const char *who, FILE *out, esk_value fmtv, int64_t argc,
                      esk_value *argv) {
  if (fmtv.tag != ESK_T_STRING) esk_error_type(loc, who, "format string", fmtv);
  esk_string *fmt = esk_ptr(fmtv);
  int64_t ai = 0;
  for (int64_t i = 0; i < fmt->len; i++) {
    char c = fmt->data[i];
    if (c != '~') {
      putc(c, out);
      continue;
    }
    if (++i >= fmt->len) esk_errorf(loc, "%s: format string ends in ~", who);
    char d = fmt->data[i];
    if (d == '%' || d == 'n' || d == 'N') { putc('\n', out); continue; }
    if (d == '~') { putc('~', out); continue; }
    if (!strchr("aAsSdDxXoObBcC", d)) esk_errorf(loc, "%s: unknown directive ~%c", who, d);
    if (ai >= argc) esk_errorf(loc, "%s: too few arguments for the format string", who);
    esk_value v = argv[ai++];
    switch (d | 32) {
      case 'a': case 'c': esk_display(v, out); break;
      case 's': esk_write(v, out); break;
      default: {
        int radix = (d | 32) == 'd' ? 10 : (d | 32) == 'x' ? 16 : (d | 32) == 'o' ? 8 : 2;
        char *text = esk_number_to_cstring(v, radix);
        if (!text) esk_error_type(loc, who, "number", v);
        for (char *t = text; *t; t++) putc(radix == 16 && *t >= 'A' && *t <= 'Z' ? *t + 32 : *t, out);
      }
    }
  }
  if (ai < argc) esk_errorf(loc, "%s: too many arguments for the format string", who);
}

/* (format #f fmt arg...) -> string; (format #t ...) to the current output port;
 * (format port ...); (format fmt arg...) -> string. */
esk_value esk_prim_format(const char *loc, int64_t argc, esk_value *argv) {
  esk_value dest = argv[0];
  if (dest.tag == ESK_T_STRING) {
    esk_value port = esk_prim_open_output_string(loc);
    format_to(loc, "format", ((esk_port *)esk_ptr(port))->f, dest, argc - 1, argv + 1);
    return esk_prim_get_output_string(loc, port);
  }
  if (argc < 2) esk_errorf(loc, "format: missing format string");
  if (dest.tag == ESK_T_BOOL && !dest.payload) {
    esk_value port = esk_prim_open_output_string(loc);
    format_to(loc, "format", ((esk_port *)esk_ptr(port))->f, argv[1], argc - 2, argv + 2);
    return esk_prim_get_output_string(loc, port);
  }
  FILE *f;
  if (dest.tag == ESK_T_BOOL) f = out_port(loc, "format", (esk_value){ESK_T_DEFAULT, 0})->f;
  else f = out_port(loc, "format", dest)->f;
  format_to(loc, "format", f, argv[1], argc - 2, argv + 2);
  return VOID;
}

esk_value esk_prim_printf(const char *loc, int64_t argc, esk_value *argv) {
  format_to(loc, "printf", out_port(loc, "printf", (esk_value){ESK_T_DEFAULT, 0})->f, argv[0],
            argc - 1, argv + 1);
  return VOID;
}
