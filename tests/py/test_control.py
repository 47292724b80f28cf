"""Control features against Chez Scheme: conditions, guard, dynamic-wind, escaping
continuations, multiple values, parameters, promises and case-lambda.

Each program is plain Scheme that Chez (`scheme --script`) also runs; the output of
`eshkol run` must be the same text.  Programs that only Eshkol (R7RS) runs have their expected
output written out.  The Chez comparisons are skipped when `scheme` is not installed.
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


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("control-cache")


def _run(cmd: list[str], source: str, path: Path, cache: Path) -> subprocess.CompletedProcess:
    path.write_text(source)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, env=env, timeout=300)


# Plain Scheme programs whose output must match Chez Scheme's.
CHEZ_PROGRAMS: dict[str, str] = {
    "guard-clauses": """
(define (classify thunk)
  (guard (e ((symbol? e) (list 'symbol e))
            ((and (pair? e) (assq 'code e)) => cdr)
            ((string? e) (string-length e)))
    (thunk)))
(display (classify (lambda () (raise 'boom)))) (newline)
(display (classify (lambda () (raise (list (cons 'code 404)))))) (newline)
(display (classify (lambda () (raise "four")))) (newline)
(display (guard (e (#t (list 'outer e))) (classify (lambda () (raise 42))))) (newline)
(display (classify (lambda () 'fine))) (newline)
""",
    "handlers": """
(display (with-exception-handler
  (lambda (e) (* e 10))
  (lambda () (+ 1 (raise-continuable 5)))))
(newline)
(display (with-exception-handler
  (lambda (e) (list 'outer e))
  (lambda ()
    (with-exception-handler
      (lambda (e) (raise-continuable (list 'inner e)))
      (lambda () (raise-continuable 'x))))))
(newline)
(define (try thunk)
  (call/cc (lambda (k) (with-exception-handler (lambda (e) (k (list 'caught e))) thunk))))
(display (list (try (lambda () (raise 'oops))) (try (lambda () 'ok)))) (newline)
""",
    "dynamic-wind-escapes": """
(define trace '())
(define (note x) (set! trace (cons x trace)))
(define v
  (dynamic-wind
    (lambda () (note 'outer-in))
    (lambda ()
      (call/cc
        (lambda (k)
          (dynamic-wind
            (lambda () (note 'a-in))
            (lambda ()
              (dynamic-wind (lambda () (note 'b-in)) (lambda () (k 'escaped)) (lambda () (note 'b-out))))
            (lambda () (note 'a-out))))))
    (lambda () (note 'outer-out))))
(display v) (newline)
(display (reverse trace)) (newline)
(set! trace '())
(display (guard (e (#t (note (list 'handler e)) 'recovered))
  (dynamic-wind (lambda () (note 'in)) (lambda () (raise 'boom)) (lambda () (note 'out)))))
(newline)
(display (reverse trace)) (newline)
""",
    "call-cc": """
(define (find-first pred lst)
  (call-with-current-continuation
    (lambda (return) (for-each (lambda (x) (if (pred x) (return x))) lst) #f)))
(display (list (find-first negative? '(3 -4 5)) (find-first negative? '(1 2)))) (newline)
(display (+ 1 (call/cc (lambda (k) (+ 10 (k 5)))))) (newline)
(call-with-values (lambda () (call/cc (lambda (k) (k 1 2 3)))) (lambda args (display args) (newline)))
""",
    "values": """
(call-with-values (lambda () (values 1 2 3)) (lambda (a b c) (display (list a b c)) (newline)))
(display (call-with-values (lambda () (values)) list)) (newline)
(let-values (((a b) (values 1 2)) ((c . d) (values 3 4 5)) (all (values 6 7)))
  (display (list a b c d all)) (newline))
(let*-values (((a b) (values 1 2)) ((c) (values (+ a b)))) (display c) (newline))
(define-values (q r) (values 17 5))
(display (list q r)) (newline)
(define (f) (define-values (x . y) (values 1 2 3)) (list x y))
(display (f)) (newline)
""",
    "parameters-promises": """
(define radix (make-parameter 10))
(display (list (radix) (parameterize ((radix 2)) (radix)) (radix))) (newline)
(display (guard (e (#t (radix))) (parameterize ((radix 8)) (raise 'x)))) (newline)
(define count 0)
(define p (delay (begin (set! count (+ count 1)) 'value)))
(let* ((a (force p)) (b (force p))) (display (list a b count)) (newline))
(define (ints n) (cons n (delay (ints (+ n 1)))))
(define (take-s s k) (if (= k 0) '() (cons (car s) (take-s (force (cdr s)) (- k 1)))))
(display (take-s (ints 1) 5)) (newline)
""",
    "case-lambda": """
(define area (case-lambda ((r) (* 3 r r)) ((w h) (* w h)) ((a b c . rest) (list a b c rest))))
(display (list (area 2) (area 3 4) (area 1 2 3 4))) (newline)
""",
    "exit-runs-after-thunks": """
(dynamic-wind
  (lambda () (display "in") (newline))
  (lambda () (exit 3))
  (lambda () (display "out") (newline)))
(display "not reached")
""",
}

# Programs that need R7RS (error objects, promise?, ...) or Eshkol's own messages.
EXPECTED: dict[str, tuple[str, str, int]] = {
    "error-objects": ("""
(define e (guard (c (#t c)) (error "bad thing:" 42 'foo)))
(display (list (error-object? e) (error-object-message e) (error-object-irritants e)))
(newline)
(display (guard (c ((error-object? c) (error-object-message c))) (car 5)))
(newline)
""", "(#t bad thing: (42 foo))\ncar: expected pair, got 5\n", 0),
    "uncaught-error": ("""(display "a")
(newline)
(error "boom" 1 "two")
""", "a\n", 1),
    "uncaught-raise": ("(raise 21)\n", "", 1),
}


@pytest.mark.parametrize("name", sorted(CHEZ_PROGRAMS))
def test_matches_chez(name: str, tmp_path: Path, cache: Path) -> None:
    if shutil.which("scheme") is None:
        pytest.skip("Chez Scheme (scheme) is not installed")
    source = CHEZ_PROGRAMS[name]
    ours = _run([_eshkol(), "run"], source, tmp_path / f"{name}.esk", cache)
    chez = _run(["scheme", "--script"], source, tmp_path / f"{name}.ss", cache)
    assert ours.stdout == chez.stdout, ours.stderr
    assert (ours.returncode == 0) == (chez.returncode == 0)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_output(name: str, tmp_path: Path, cache: Path) -> None:
    source, out, rc = EXPECTED[name]
    proc = _run([_eshkol(), "run"], source, tmp_path / f"{name}.esk", cache)
    assert proc.stdout == out
    assert proc.returncode == rc, proc.stderr
    if rc:
        assert f"{name}.esk:" in proc.stderr and "error: " in proc.stderr


def test_uncaught_messages(tmp_path: Path, cache: Path) -> None:
    proc = _run([_eshkol(), "run"], "(define x 1)\n(raise (list x 'two))\n", tmp_path / "u.esk", cache)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{tmp_path / 'u.esk'}:2:1: error: uncaught exception: (1 two)"
    proc = _run([_eshkol(), "run"], '(error "boom:" 1 "two" \'three)\n', tmp_path / "e.esk", cache)
    assert proc.stderr.strip() == f'{tmp_path / "e.esk"}:1:1: error: boom: 1 "two" three'


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("cc") is None
                    or shutil.which("pkg-config") is None, reason="cmake, cc or pkg-config missing")
def test_control_c_selftest(tmp_path: Path) -> None:
    """runtime_c/test_control.c: guard leaves the arena regions its body entered, escapes run
    after thunks, values and record printing (checked from C)."""
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "eshkol_rt_static", "-j4"],
                   check=True, capture_output=True)
    gc = subprocess.run(["pkg-config", "--libs", "bdw-gc"], check=True, capture_output=True,
                        text=True).stdout.split()
    exe = tmp_path / "test_control"
    subprocess.run(["cc", "-O1", "-I", str(ROOT / "runtime_c" / "include"),
                    str(ROOT / "runtime_c" / "test_control.c"), str(build / "libeshkol_rt.a"),
                    *gc, "-lgmp", "-lm", "-lpthread", "-o", str(exe)], check=True, capture_output=True)
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip().endswith(" 0 failures")
