"""Error cases of the data-type and I/O builtins (runtime_c/strings.c, hash.c, ports.c).

Every builtin rejects a wrong argument type or a bad index with a catchable error whose
message names the procedure. One program runs all the cases under `guard` (one subprocess,
so the suite stays fast); a few uncaught cases check the exit status and the
``file:line:col: error:`` report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


ESHKOL = _eshkol()

# (expression, text the error message must contain)
CASES = [
    # characters
    ('(char-upcase "a")', "char-upcase: expected char"),
    ("(char-downcase 1)", "char-downcase: expected char"),
    ("(char-alphabetic? 1)", "char-alphabetic?: expected char"),
    ("(char-numeric? 'a)", "char-numeric?: expected char"),
    ('(char-whitespace? " ")', "char-whitespace?: expected char"),
    ("(char-upper-case? 1)", "char-upper-case?: expected char"),
    ("(char-lower-case? 1)", "char-lower-case?: expected char"),
    ("(digit-value 7)", "digit-value: expected char"),
    ("(char->digit 7)", "char->digit: expected char"),
    ("(char=? #\\a 1)", "char=?: expected char"),
    ("(char<? 1 #\\a)", "char<?: expected char"),
    ("(char-ci=? #\\a \"a\")", "char-ci=?: expected char"),
    # strings
    ("(string-upcase 'a)", "string-upcase: expected string"),
    ("(string-downcase 1)", "string-downcase: expected string"),
    ('(string=? "a" 1)', "string=?: expected string"),
    ("(string<? 'a \"b\")", "string<?: expected string"),
    ('(string-ci=? "a" #\\a)', "string-ci=?: expected string"),
    ('(string-copy "abc" 2 7)', "string-copy: range 2..7 out of bounds"),
    ("(string-copy 5)", "string-copy: expected string"),
    ("(make-string -1)", "make-string: expected non-negative exact integer"),
    ('(make-string 2 "a")', "make-string: expected char"),
    ('(string-set! "abc" 0 #\\x)', "string-set!: attempt to modify an immutable string"),
    ("(string-set! (make-string 2) 5 #\\x)", "string-set!: index 5 out of range"),
    ("(string-set! (make-string 2) 0 1)", "string-set!: expected char"),
    ('(string-fill! "abc" #\\x)', "string-fill!: attempt to modify an immutable string"),
    ("(string-fill! (make-string 2) #\\x 0 9)", "string-fill!: range 0..9 out of bounds"),
    ('(string-copy! (make-string 2) 1 "abc")', "string-copy!: 3 characters do not fit"),
    ("(string-split 5 #\\,)", "string-split: expected string"),
    ('(string-split "a" 5)', "string-split: expected string or char"),
    ("(string-join '(\"a\" 1) \",\")", "string-join: expected string"),
    ('(string-join 5 ",")', "string-join: expected proper list"),
    ('(string-contains 1 "a")', "string-contains: expected string"),
    ('(string-index "abc" 1)', "string-index: expected string or char"),
    ('(string-search-forward 1 "abc" 0)', "string-search-forward: expected string"),
    ("(string-trim 1)", "string-trim: expected string"),
    ('(string-prefix? 1 "a")', "string-prefix?: expected string"),
    ('(string-suffix? "a" 1)', "string-suffix?: expected string"),
    ("(string->vector 1)", "string->vector: expected string"),
    ("(vector->string (vector 1))", "vector->string: expected char"),
    ("(symbol-append 'a \"b\")", "symbol-append: expected symbol"),
    ("(gensym 5)", "gensym: expected string or symbol"),
    # vectors
    ("(vector-copy '(1))", "vector-copy: expected vector"),
    ("(vector-copy (vector 1 2) 3)", "vector-copy: range 3..2 out of bounds"),
    ("(vector-append (vector 1) '(2))", "vector-append: expected vector"),
    ("(vector->list (vector 1 2) 0 5)", "vector->list: range 0..5 out of bounds"),
    ("(subvector (vector 1 2) 1 0)", "subvector: range 1..0 out of bounds"),
    ("(vector-fill! 5 0)", "vector-fill!: expected vector"),
    ("(vector-copy! (vector 1) 0 (vector 1 2))", "vector-copy!: 2 elements do not fit"),
    ("(vector-grow (vector 1 2) 1)", "vector-grow: new length 1 is smaller"),
    # bytevectors
    ("(make-bytevector 2 256)", "make-bytevector: expected byte"),
    ("(bytevector 1 -1)", "bytevector: expected byte"),
    ("(bytevector-u8-ref (bytevector 1) 1)", "bytevector-u8-ref: index 1 out of range"),
    ("(bytevector-u8-ref (vector 1) 0)", "bytevector-u8-ref: expected bytevector"),
    ("(bytevector-u8-set! (bytevector 1) 0 300)", "bytevector-u8-set!: expected byte"),
    ('(bytevector-length "a")', "bytevector-length: expected bytevector"),
    ("(bytevector-copy (bytevector 1) 0 2)", "bytevector-copy: range 0..2 out of bounds"),
    ("(bytevector-append (bytevector 1) 2)", "bytevector-append: expected bytevector"),
    ('(utf8->string "a")', "utf8->string: expected bytevector"),
    ("(string->utf8 'a)", "string->utf8: expected string"),
    # hash tables
    ("(hash-table-set! '() 1 2)", "hash-table-set!: expected hash table"),
    ("(hash-table-ref (make-hash-table) 'k)", "hash-table-ref: key not found"),
    ("(hash-table-ref 5 'k)", "hash-table-ref: expected hash table"),
    ("(hash-table-ref/default 5 'k 0)", "hash-table-ref/default: expected hash table"),
    ("(hash-table-delete! 5 'k)", "hash-table-delete!: expected hash table"),
    ("(hash-table-contains? 5 'k)", "hash-table-contains?: expected hash table"),
    ("(hash-table-count 5)", "hash-table-count: expected hash table"),
    ("(hash-table-keys 5)", "hash-table-keys: expected hash table"),
    ("(hash-table-values 5)", "hash-table-values: expected hash table"),
    ("(hash-table->alist 5)", "hash-table->alist: expected hash table"),
    ("(hash-table-update! (make-hash-table) 'k (lambda (x) x))", "hash-table-update!: key not found"),
    ("(hash-table-walk 5 list)", "hash-table-walk: expected hash table"),
    ("(hash-table-clear! 5)", "hash-table-clear!: expected hash table"),
    ("(hash-table-copy 5)", "hash-table-copy: expected hash table"),
    ("(hash-ref 5 1)", "hash-ref: expected hash table"),
    ("(alist->hash-table '(1))", "alist->hash-table: expected pair"),
    # ports and I/O
    ('(display 1 "port")', "display: expected output port"),
    ("(write 1 5)", "write: expected output port"),
    ("(newline 5)", "newline: expected output port"),
    ("(write-string 5)", "write-string: expected string"),
    ("(write-char \"a\")", "write-char: expected char"),
    ("(write-char #\\a (open-input-string \"\"))", "write-char: expected output port"),
    ("(get-output-string (open-input-string \"x\"))", "get-output-string: expected string output port"),
    ("(open-input-string 5)", "open-input-string: expected string"),
    ('(open-input-file "/nonexistent/dir/file.txt")', "open-input-file: cannot open file"),
    ('(open-output-file "/nonexistent/dir/file.txt")', "open-output-file: cannot open file"),
    ("(open-input-file 5)", "open-input-file: expected string (file name)"),
    ("(read-line (open-output-string))", "read-line: expected input port"),
    ("(read-char 5)", "read-char: expected input port"),
    ("(peek-char 5)", "peek-char: expected input port"),
    ("(read-string -1 (open-input-string \"\"))", "read-string: expected non-negative exact integer"),
    ("(read (open-input-string \"(1 2\"))", "read: unexpected end of input in a list"),
    ("(read (open-input-string \")\"))", "read: unexpected ')'"),
    ("(read (open-input-string \"\\\"abc\"))", "read: unterminated string"),
    ("(let ((p (open-input-string \"x\"))) (close-port p) (read-char p))", "input port is closed"),
    ("(close-port 5)", "close-port: expected port"),
    ('(delete-file "/nonexistent/dir/file.txt")', "delete-file: cannot delete file"),
    ('(file-exists? 5)', "file-exists?: expected string (file name)"),
    ('(format #f "~a ~a" 1)', "format: too few arguments"),
    ('(format #f "~a" 1 2)', "format: too many arguments"),
    ('(format #f "~q" 1)', "format: unknown directive ~q"),
    ('(format #f "~d" "x")', "format: expected number"),
    ("(format 5 \"x\")", "format: expected output port"),
    ('(printf 5)', "printf: expected format string"),
    ("(current-output-port 5)", "current-output-port: expected output port"),
    ("(call-with-output-string 5)", "attempt to call a non-procedure"),
]

# Uncaught errors: (program, the error line's message part)
UNCAUGHT = [
    ('(define s "lit")\n(string-set! s 0 #\\x)\n', "2:1: error: string-set!: attempt to modify an immutable string"),
    ("(display (vector-copy (vector 1) 0 5))\n", "1:10: error: vector-copy: range 0..5 out of bounds"),
    ("(hash-table-ref (make-hash-table) \"k\")\n", '1:1: error: hash-table-ref: key not found: "k"'),
    ("(bytevector-u8-ref (bytevector) 0)\n", "1:1: error: bytevector-u8-ref: index 0 out of range"),
    ('(open-input-file "/nonexistent/x.txt")\n', "1:1: error: open-input-file: cannot open file"),
    ("(char-upcase 5)\n", "1:1: error: char-upcase: expected char, got 5"),
    ('(display (format #f "~a"))\n', "1:10: error: format: too few arguments"),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return dict(os.environ, XDG_CACHE_HOME=str(cache))


def run(path: Path, env) -> subprocess.CompletedProcess:
    return subprocess.run([ESHKOL, "run", str(path)], capture_output=True, text=True, env=env, timeout=120)


def test_error_messages(tmp_path, env):
    lines = ["(define (try thunk)",
             "  (display (guard (e ((error-object? e) (error-object-message e)) (#t 'raised))",
             "             (thunk) 'no-error))",
             "  (newline))"]
    for expr, _ in CASES:
        lines.append(f"(try (lambda () {expr}))")
    prog = tmp_path / "errors.esk"
    prog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = run(prog, env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == len(CASES), proc.stdout
    bad = [(expr, want, got) for (expr, want), got in zip(CASES, out, strict=True) if want not in got]
    assert not bad, "\n".join(f"{e}: wanted {w!r}, got {g!r}" for e, w, g in bad)


@pytest.mark.parametrize("source,message", UNCAUGHT)
def test_uncaught_error_reports_location(tmp_path, env, source, message):
    prog = tmp_path / "prog.esk"
    prog.write_text(source, encoding="utf-8")
    proc = run(prog, env)
    assert proc.returncode == 1
    assert f"{prog}:{message}" in proc.stderr, proc.stderr
