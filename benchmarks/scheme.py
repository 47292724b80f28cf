"""Scheme benchmarks: ``eshkol run`` (cached) against Chez Scheme, in the same run.

Each case is a (name, source) pair in ``CASES``: fib, tak, nqueens 10, floating-point kernels
(a float loop, mandelbrot, nbody), string building, hash-table counting, sorting 10^6 numbers,
and a 10^7-iteration loop that allocates and drops lists. The same program text is run by both
(Chez gets ``CHEZ_PRELUDE`` in front: the SRFI-69 hash-table names it lacks), the outputs must
agree, and the table shows the median of ``--runs`` wall-clock runs, the ratio eshkol/chez, the
geometric mean of the ratios (targets: each <= 3x, geometric mean <= 1.5x) and the resident
memory of each Eshkol run (the allocating loop must stay under 200 MB). ``--build`` also times
an ``eshkol build`` executable.

Run as ``.venv/bin/python benchmarks/scheme.py [--eshkol PATH] [--runs N] [--build] [CASE ...]``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 3.0
TARGET_GEOMEAN = 1.5

# Chez Scheme 9.5 lacks the SRFI-69 hash-table names and R7RS write-string; the Chez run gets
# these definitions in front of the program (the Eshkol run gets the program alone).
CHEZ_PRELUDE = """
(define (make-hash-table) (make-hashtable equal-hash equal?))
(define hash-table-ref/default hashtable-ref)
(define hash-table-set! hashtable-set!)
(define (hash-table-count t) (hashtable-size t))
(define (write-string s . port) (put-string (if (null? port) (current-output-port) (car port)) s))
"""

# The allocating loop, whose resident memory is reported (it must stay under RSS_LIMIT_MB).
ALLOC_CASE = "alloc-lists-1e7"
RSS_LIMIT_MB = 200

CASES: list[tuple[str, str]] = [
    ("fib", """
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(display (fib 35))
(newline)
"""),
    ("tak", """
(define (tak x y z) (if (not (< y x)) z (tak (tak (- x 1) y z) (tak (- y 1) z x) (tak (- z 1) x y))))
(define (repeat n) (let loop ((i 0) (r 0)) (if (= i n) r (loop (+ i 1) (tak 24 16 8)))))
(display (repeat 20))
(newline)
"""),
    ("nqueens-10", """
(define (ok? row dist placed)
  (or (null? placed)
      (and (not (= (car placed) (+ row dist)))
           (not (= (car placed) (- row dist)))
           (ok? row (+ dist 1) (cdr placed)))))
(define (try-it x y z)
  (if (null? x)
      (if (null? y) 1 0)
      (+ (if (ok? (car x) 1 z) (try-it (append (cdr x) y) '() (cons (car x) z)) 0)
         (try-it (cdr x) (cons (car x) y) z))))
(define (iota1 n) (let loop ((i n) (l '())) (if (= i 0) l (loop (- i 1) (cons i l)))))
(define (queens n) (try-it (iota1 n) '() '()))
(display (let loop ((k 0) (r 0)) (if (= k 50) r (loop (+ k 1) (queens 10)))))
(newline)
"""),
    ("float-loop", """
(display (let loop ((i 0) (x 0.0))
           (if (= i 30000000) x (loop (+ i 1) (+ (* x 0.999999) 1.0)))))
(newline)
"""),
    ("mandelbrot", """
(define (mandel-count size)
  (let rows ((y 0) (total 0))
    (if (= y size)
        total
        (rows (+ y 1)
              (let cols ((x 0) (total total))
                (if (= x size)
                    total
                    (let ((cr (- (/ (* 2.0 x) size) 1.5)) (ci (- (/ (* 2.0 y) size) 1.0)))
                      (let iter ((zr 0.0) (zi 0.0) (i 0))
                        (cond ((= i 50) (cols (+ x 1) (+ total 1)))
                              ((> (+ (* zr zr) (* zi zi)) 4.0) (cols (+ x 1) total))
                              (else (iter (+ (- (* zr zr) (* zi zi)) cr) (+ (* 2.0 zr zi) ci) (+ i 1))))))))))))
(display (mandel-count 600))
(newline)
"""),
    ("nbody", """(define pi 3.141592653589793)
(define solar-mass (* 4.0 pi pi))
(define days-per-year 365.24)
(define (body x y z vx vy vz mass)
  (vector x y z (* vx days-per-year) (* vy days-per-year) (* vz days-per-year) (* mass solar-mass)))
(define bodies
  (vector
   (body 0.0 0.0 0.0 0.0 0.0 0.0 1.0)
   (body 4.84143144246472090e+00 -1.16032004402742839e+00 -1.03622044471123109e-01
         1.66007664274403694e-03 7.69901118419740425e-03 -6.90460016972063023e-05 9.54791938424326609e-04)
   (body 8.34336671824457987e+00 4.12479856412430479e+00 -4.03523417114321381e-01
         -2.76742510726862411e-03 4.99852801234917238e-03 2.30417297573763929e-05 2.85885980666130812e-04)
   (body 1.28943695621391310e+01 -1.51111514016986312e+01 -2.23307578892655734e-01
         2.96460137564761618e-03 2.37847173959480950e-03 -2.96589568540237556e-05 4.36624404335156298e-05)
   (body 1.53796971148509165e+01 -2.59193146099879641e+01 1.79258772950371181e-01
         2.68067772490389322e-03 1.62824170038242295e-03 -9.51592254519715870e-05 5.15138902046611451e-05)))
(define nb (vector-length bodies))
(define (offset-momentum!)
  (let loop ((i 0) (px 0.0) (py 0.0) (pz 0.0))
    (if (= i nb)
        (let ((sun (vector-ref bodies 0)))
          (vector-set! sun 3 (- (/ px solar-mass)))
          (vector-set! sun 4 (- (/ py solar-mass)))
          (vector-set! sun 5 (- (/ pz solar-mass))))
        (let ((b (vector-ref bodies i)))
          (loop (+ i 1)
                (+ px (* (vector-ref b 3) (vector-ref b 6)))
                (+ py (* (vector-ref b 4) (vector-ref b 6)))
                (+ pz (* (vector-ref b 5) (vector-ref b 6))))))))
(define (energy)
  (let loop ((i 0) (e 0.0))
    (if (= i nb)
        e
        (let* ((b (vector-ref bodies i))
               (e (+ e (* 0.5 (vector-ref b 6)
                          (+ (* (vector-ref b 3) (vector-ref b 3))
                             (* (vector-ref b 4) (vector-ref b 4))
                             (* (vector-ref b 5) (vector-ref b 5)))))))
          (let inner ((j (+ i 1)) (e e))
            (if (= j nb)
                (loop (+ i 1) e)
                (let* ((c (vector-ref bodies j))
                       (dx (- (vector-ref b 0) (vector-ref c 0)))
                       (dy (- (vector-ref b 1) (vector-ref c 1)))
                       (dz (- (vector-ref b 2) (vector-ref c 2))))
                  (inner (+ j 1)
                         (- e (/ (* (vector-ref b 6) (vector-ref c 6))
                                 (sqrt (+ (* dx dx) (* dy dy) (* dz dz)))))))))))))
(define (advance! dt)
  (do ((i 0 (+ i 1))) ((= i nb))
    (let ((b (vector-ref bodies i)))
      (do ((j (+ i 1) (+ j 1))) ((= j nb))
        (let* ((c (vector-ref bodies j))
               (dx (- (vector-ref b 0) (vector-ref c 0)))
               (dy (- (vector-ref b 1) (vector-ref c 1)))
               (dz (- (vector-ref b 2) (vector-ref c 2)))
               (d2 (+ (* dx dx) (* dy dy) (* dz dz)))
               (mag (/ dt (* d2 (sqrt d2))))
               (mb (* (vector-ref b 6) mag))
               (mc (* (vector-ref c 6) mag)))
          (vector-set! b 3 (- (vector-ref b 3) (* dx mc)))
          (vector-set! b 4 (- (vector-ref b 4) (* dy mc)))
          (vector-set! b 5 (- (vector-ref b 5) (* dz mc)))
          (vector-set! c 3 (+ (vector-ref c 3) (* dx mb)))
          (vector-set! c 4 (+ (vector-ref c 4) (* dy mb)))
          (vector-set! c 5 (+ (vector-ref c 5) (* dz mb)))))))
  (do ((i 0 (+ i 1))) ((= i nb))
    (let ((b (vector-ref bodies i)))
      (vector-set! b 0 (+ (vector-ref b 0) (* dt (vector-ref b 3))))
      (vector-set! b 1 (+ (vector-ref b 1) (* dt (vector-ref b 4))))
      (vector-set! b 2 (+ (vector-ref b 2) (* dt (vector-ref b 5)))))))
(offset-momentum!)
(display (energy)) (newline)
(do ((k 0 (+ k 1))) ((= k 200000)) (advance! 0.01))
(display (energy)) (newline)
"""),
    ("string-build", """
(define (digits n)
  (let loop ((i 0) (parts '()))
    (if (= i n) (reverse parts) (loop (+ i 1) (cons (number->string i) parts)))))
(define (join-chunks parts)
  ;; string-append of 1000 pieces at a time, then of the chunks
  (let loop ((ps parts) (chunk '()) (k 0) (chunks '()))
    (cond ((null? ps) (apply string-append (reverse (cons (apply string-append (reverse chunk)) chunks))))
          ((= k 1000) (loop ps '() 0 (cons (apply string-append (reverse chunk)) chunks)))
          (else (loop (cdr ps) (cons (car ps) chunk) (+ k 1) chunks)))))
(define (count-char s c)
  (let loop ((i 0) (k 0))
    (if (= i (string-length s)) k (loop (+ i 1) (if (char=? (string-ref s i) c) (+ k 1) k)))))
(define s (join-chunks (digits 1000000)))
(display (string-length s)) (newline)
(display (count-char s #\\7)) (newline)
(define out (open-output-string))
(let loop ((i 0))
  (when (< i 300000)
    (write-string (number->string (* i i)) out)
    (write-char #\\, out)
    (loop (+ i 1))))
(display (string-length (get-output-string out))) (newline)
(display (string-length (list->string (reverse (string->list (substring s 0 100000)))))) (newline)
"""),
    ("hash-count", """
(define t (make-hash-table))
(let loop ((i 0))
  (when (< i 1000000)
    (let ((k (modulo (* i 7919) 10007)))
      (hash-table-set! t k (+ 1 (hash-table-ref/default t k 0))))
    (loop (+ i 1))))
(define s (make-hash-table))
(let loop ((i 0))
  (when (< i 300000)
    (let ((k (number->string (modulo i 5003))))
      (hash-table-set! s k (+ 1 (hash-table-ref/default s k 0))))
    (loop (+ i 1))))
(display (list (hash-table-count t) (hash-table-ref/default t 42 #f)
               (hash-table-count s) (hash-table-ref/default s "42" #f)))
(newline)
"""),
    ("sort-1e6", """
(define (rand-list n)
  (let loop ((i 0) (x 12345) (acc '()))
    (if (= i n) acc
        (let ((x2 (modulo (+ (* x 1103515245) 12345) 2147483648)))
          (loop (+ i 1) x2 (cons x2 acc))))))
(define s (sort < (rand-list 1000000)))
(display (list (car s) (list-ref s 500000) (length s)))
(newline)
"""),
    (ALLOC_CASE, """
(define (make-run i n)
  (let loop ((k 0) (acc '()))
    (if (= k n) acc (loop (+ k 1) (cons (+ i k) acc)))))
(define (go n)
  (let loop ((i 0) (acc 0))
    (if (= i n)
        acc
        (let ((l (make-run i 10)))
          (loop (+ i 1) (+ acc (car l)))))))
(display (go 10000000))
(newline)
"""),
]


def find_eshkol(explicit: str | None) -> str:
    if explicit:
        return explicit
    here = Path(sys.executable).parent / "eshkol"
    if here.exists():
        return str(here)
    found = shutil.which("eshkol")
    if found:
        return found
    sys.exit("eshkol tool not found: run with the venv's python or pass --eshkol")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str, float]:
    """(wall seconds, standard output, peak resident MB) of one run of ``cmd``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.read().decode()}")
        return dt, out.read().decode(), usage.ru_maxrss / 1024


def measure(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, str, float]:
    """Median time, the (single) output, and the largest resident size over ``runs`` runs."""
    times, outs, rss = [], set(), 0.0
    for _ in range(runs):
        dt, out, mb = run(cmd, env)
        times.append(dt)
        outs.add(out)
        rss = max(rss, mb)
    if len(outs) != 1:
        raise RuntimeError(f"{' '.join(cmd)} printed different outputs across runs: {outs}")
    return statistics.median(times), outs.pop(), rss


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eshkol", help="path of the eshkol tool")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--build", action="store_true", help="also time an `eshkol build` executable")
    ap.add_argument("cases", nargs="*", help="case names to run (default: all)")
    args = ap.parse_args()
    eshkol = find_eshkol(args.eshkol)
    chez = shutil.which("scheme")
    cases = [c for c in CASES if not args.cases or c[0] in args.cases]
    if not cases:
        sys.exit(f"no such case; known: {', '.join(n for n, _ in CASES)}")
    if chez is None:
        print("note: `scheme` (Chez Scheme) not found on PATH; skipping the Chez columns")

    rows = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="eshkol-bench-") as tmp:
        env = dict(os.environ, XDG_CACHE_HOME=str(Path(tmp) / "cache"))
        for name, src in cases:
            esk = Path(tmp) / f"{name}.esk"
            ss = Path(tmp) / f"{name}.ss"
            exe = Path(tmp) / name
            esk.write_text(src)
            ss.write_text(CHEZ_PRELUDE + src)
            run([eshkol, "run", str(esk)], env)  # warm-up: fills the compile cache
            t_run, out_run, rss = measure([eshkol, "run", str(esk)], env, args.runs)
            outs = {out_run}
            t_exe = None
            if args.build:
                run([eshkol, "build", str(esk), "-o", str(exe)], env)
                t_exe, out_exe, _ = measure([str(exe)], env, args.runs)
                outs.add(out_exe)
            t_chez = out_chez = None
            if chez is not None:
                t_chez, out_chez, _ = measure([chez, "--script", str(ss)], env, args.runs)
                outs.add(out_chez)
            same = len(outs) == 1
            failures += not same
            rows.append((name, t_run, t_exe, t_chez, rss, same, out_run.strip(),
                         None if out_chez is None else out_chez.strip()))

    print(f"eshkol run vs Chez Scheme (scheme --script): median of {args.runs} runs, wall-clock "
          f"seconds; targets: each <= {TARGET_RATIO:g}x, geometric mean <= {TARGET_GEOMEAN:g}x")
    hdr = f"{'case':<16} {'eshkol':>7}"
    if args.build:
        hdr += f" {'build':>7}"
    hdr += f" {'rss MB':>7}"
    if chez:
        hdr += f" {'chez':>7} {'ratio':>7} {'ok':>4}"
    print(hdr + "  output")
    ratios = []
    for name, t_run, t_exe, t_chez, rss, same, o_run, o_chez in rows:
        line = f"{name:<16} {t_run:7.3f}"
        if args.build:
            line += f" {t_exe:7.3f}"
        line += f" {rss:7.1f}"
        if chez:
            r = t_run / t_chez
            ratios.append(r)
            line += f" {t_chez:7.3f} {r:6.2f}x {'yes' if r <= TARGET_RATIO else 'NO':>4}"
        first = o_run.splitlines()[0] if o_run else ""
        line += f"  {first[:40] if same else 'MISMATCH'}"
        print(line)
        if not same:
            print(f"  outputs differ: eshkol={o_run!r} chez={o_chez!r}")
    if ratios:
        gm = geomean(ratios)
        print(f"geometric mean of eshkol/chez: {gm:.2f}x ({'meets' if gm <= TARGET_GEOMEAN else 'MISSES'} "
              f"the {TARGET_GEOMEAN:g}x target); worst: {max(ratios):.2f}x")
    for name, *_rest in rows:
        if name == ALLOC_CASE:
            rss = _rest[3]
            print(f"{ALLOC_CASE}: resident memory {rss:.1f} MB "
                  f"({'under' if rss < RSS_LIMIT_MB else 'OVER'} the {RSS_LIMIT_MB} MB limit)")
    if failures:
        sys.exit(f"{failures} case(s) printed different outputs")


if __name__ == "__main__":
    main()
