"""Macro-expansion speed: a generated 2000-line program of macro uses, expanded by Eshkol's
expander and by Chez Scheme's ``expand`` (when ``scheme`` is installed); prints both times and
the ratio. Target: under 1 s for Eshkol.

Run as ``.venv/bin/python benchmarks/expand.py [--lines N]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.0

MACROS = """\
(define-syntax swap! (syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp)))))
(define-syntax my-or
  (syntax-rules () ((_) #f) ((_ e) e) ((_ e r ...) (let ((t e)) (if t t (my-or r ...))))))
(define-syntax my-and (syntax-rules () ((_) #t) ((_ e) e) ((_ e r ...) (if e (my-and r ...) #f))))
(define-syntax while (syntax-rules () ((_ c body ...) (let lp () (when c body ... (lp))))))
(define-syntax for
  (syntax-rules (in)
    ((_ x in lst body ...) (let loop ((l lst)) (if (pair? l) (let ((x (car l))) body ... (loop (cdr l))))))))
(define-syntax my-let*
  (syntax-rules ()
    ((_ () body ...) (let () body ...))
    ((_ ((x v) rest ...) body ...) (let ((x v)) (my-let* (rest ...) body ...)))))
(define-syntax table (syntax-rules () ((_ (k v ...) ...) '((k v ...) ...))))
"""

LINES = [
    "(define (f{i} a b) (swap! a b) (my-or (my-and a b) (list a b) {i}))",
    "(define (g{i} n) (let ((i 0) (s 0)) (while (< i n) (set! s (+ s i)) (set! i (+ i 1))) s))",
    "(define (h{i} xs) (let ((acc 0)) (for x in xs (set! acc (+ acc x))) acc))",
    "(define (k{i} x) (my-let* ((a x) (b (+ a 1)) (c (* b 2)) (d (- c a))) (list a b c d)))",
    "(define t{i} (table (a 1 2) (b 3) (c {i} 4 5)))",
]


def generate(lines: int) -> str:
    """A program of ``lines`` lines: a few macro definitions, then one macro-using define a line."""
    out = [MACROS]
    n = lines - MACROS.count("\n")
    for i in range(n):
        out.append(LINES[i % len(LINES)].format(i=i) + "\n")
    return "".join(out)


CHEZ_DRIVER = """
(define forms
  (call-with-input-file "{path}"
    (lambda (p) (let loop ((acc '())) (let ((x (read p))) (if (eof-object? x) (reverse acc) (loop (cons x acc))))))))
(define start (real-time))
(for-each (lambda (f) (if (and (pair? f) (eq? (car f) 'define-syntax)) (eval f) (expand f))) forms)
(display (- (real-time) start))
(newline)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from eshkol.expand.expander import expand_program
    from eshkol.syntax.reader import read_syntax

    text = generate(a.lines)
    best_read = best_expand = float("inf")
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        forms = read_syntax(text, "bench.esk")
        t1 = time.perf_counter()
        expand_program(forms)
        t2 = time.perf_counter()
        best_read, best_expand = min(best_read, t1 - t0), min(best_expand, t2 - t1)
    print(f"program: {a.lines} lines, {len(text)} bytes")
    print(f"eshkol read:   {best_read * 1000:8.1f} ms")
    print(f"eshkol expand: {best_expand * 1000:8.1f} ms  (target < {TARGET * 1000:.0f} ms: "
          f"{'ok' if best_expand < TARGET else 'SLOW'})")
    chez = shutil.which("scheme")
    if chez is None:
        print("chez: not installed")
        return 0 if best_expand < TARGET else 1
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "bench.ss"
        src.write_text(text)
        drv = Path(d) / "drive.ss"
        drv.write_text(CHEZ_DRIVER.replace("{path}", str(src)))
        times = []
        for _ in range(a.repeat):
            p = subprocess.run([chez, "--script", str(drv)], capture_output=True, text=True, check=True)
            times.append(int(p.stdout.split()[-1]) / 1000)
    chez_t = min(times)
    print(f"chez expand:   {chez_t * 1000:8.1f} ms")
    print(f"ratio eshkol/chez: {best_expand / chez_t:.1f}x" if chez_t > 0 else "ratio: chez took 0 ms")
    return 0 if best_expand < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
