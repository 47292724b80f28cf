"""End-to-end tests of the command-line tools (``eshkol run/build``, ``eshkol-translate``,
``eshkol-opt``) as real subprocesses, each test with a private compile cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    here = BIN / name
    return str(here) if here.exists() else (shutil.which(name) or name)


ESHKOL = tool("eshkol")
LIMIT_MB = 200


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def run(cmd: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def max_rss_mb(cmd: list[str], env: dict[str, str], timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd`` under a fresh Python whose only child it is, so RUSAGE_CHILDREN's max RSS is its own."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(p.stdout)\n"
        "sys.stderr.write(p.stderr)\n"
        "sys.stderr.write('\\nMAXRSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(p.returncode)\n"
    )
    proc = run([sys.executable, "-c", wrapper, *cmd], env, timeout)
    head, _, kb = proc.stderr.rpartition("MAXRSS_KB=")
    proc.stderr = head
    return proc, int(kb) / 1024


HELLO = '(display "hello, world")\n(newline)\n(write (list 1 2.5 "s" #\\a))\n(newline)\n'
HELLO_OUT = 'hello, world\n(1 2.5 "s" #\\a)\n'


def test_run_prints_output(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run([ESHKOL, "run", str(write(tmp_path, "hello.esk", HELLO))], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == HELLO_OUT


def test_cache_miss_then_hit_and_hit_is_faster(tmp_path: Path, env: dict[str, str]) -> None:
    prog = str(write(tmp_path, "hello.esk", HELLO))
    t0 = time.perf_counter()
    first = run([ESHKOL, "run", "-v", prog], env)
    t1 = time.perf_counter()
    second = run([ESHKOL, "run", "-v", prog], env)
    t2 = time.perf_counter()
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    assert "cache miss" in first.stderr
    assert "cache hit" in second.stderr
    assert first.stdout == second.stdout == HELLO_OUT
    assert t2 - t1 < t1 - t0, f"cached run {t2 - t1:.3f}s not faster than compiling run {t1 - t0:.3f}s"


def test_build_executable_runs_without_python(tmp_path: Path, env: dict[str, str]) -> None:
    src = HELLO + "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n(display (fib 20))\n"
    prog = write(tmp_path, "prog.esk", src)
    exe = tmp_path / "prog"
    built = run([ESHKOL, "build", str(prog), "-o", str(exe)], env)
    assert built.returncode == 0, built.stderr
    assert os.access(exe, os.X_OK)
    via_run = run([ESHKOL, "run", str(prog)], env)
    native = subprocess.run([str(exe)], capture_output=True, text=True, env={}, timeout=60)
    assert native.returncode == 0, native.stderr
    assert native.stdout == via_run.stdout == HELLO_OUT + "6765"


def test_translate_to_llvm(tmp_path: Path, env: dict[str, str]) -> None:
    prog = write(tmp_path, "one.esk", "(display (+ 1 2))\n")
    proc = run([tool("eshkol-translate"), "--target=llvm", str(prog)], env)
    assert proc.returncode == 0, proc.stderr
    assert "define " in proc.stdout


def test_opt_help_lists_passes(env: dict[str, str]) -> None:
    proc = run([tool("eshkol-opt"), "--help"], env)
    assert proc.returncode == 0, proc.stderr
    for name in ("--eshkol-fold-constants", "--eshkol-dce", "--eshkol-to-llvm", "--eshkol-cpu"):
        assert name in proc.stdout


def test_program_arguments(tmp_path: Path, env: dict[str, str]) -> None:
    prog = write(tmp_path, "args.esk", "(write (command-line))\n(newline)\n")
    proc = run([ESHKOL, "run", str(prog), "alpha", "b c", "-v"], env)
    if proc.returncode != 0 and "command-line" in proc.stderr:
        pytest.skip("no `command-line` builtin yet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith('"alpha" "b c" "-v")')


def test_missing_file_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run([ESHKOL, "run", str(tmp_path / "no-such-file.esk")], env)
    assert proc.returncode == 1
    assert "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def alloc_program(iterations: int) -> str:
    return f"""
(define (build n acc) (if (= n 0) acc (build (- n 1) (cons n acc))))
(define (go i total)
  (if (= i {iterations}) total (go (+ i 1) (+ total (length (build 100 '()))))))
(display (go 0 0))
(newline)
"""


def check_alloc_loop(tmp_path: Path, env: dict[str, str], iterations: int) -> None:
    prog = str(write(tmp_path, "alloc.esk", alloc_program(iterations)))
    warm = run([ESHKOL, "build", prog, "-o", str(tmp_path / "alloc")], env)  # compile outside the measurement
    assert warm.returncode == 0, warm.stderr
    proc, rss = max_rss_mb([str(tmp_path / "alloc")], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{iterations * 100}\n"
    assert rss < LIMIT_MB, f"max RSS {rss:.0f} MB"


def test_allocation_loop_memory_bounded_fast(tmp_path: Path, env: dict[str, str]) -> None:
    check_alloc_loop(tmp_path, env, 200_000)


@pytest.mark.slow
def test_allocation_loop_memory_bounded(tmp_path: Path, env: dict[str, str]) -> None:
    check_alloc_loop(tmp_path, env, 10_000_000)


def test_allocation_loop_memory_bounded_under_run(tmp_path: Path, env: dict[str, str]) -> None:
    """The same through a cached ``eshkol run`` (the compile itself is not measured)."""
    prog = str(write(tmp_path, "alloc.esk", alloc_program(200_000)))
    assert run([ESHKOL, "run", prog], env).returncode == 0
    proc, rss = max_rss_mb([ESHKOL, "run", prog], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "20000000\n"
    assert rss < LIMIT_MB, f"max RSS {rss:.0f} MB"


def test_named_let_1e8_at_O0_constant_stack(tmp_path: Path, env: dict[str, str]) -> None:
    prog = write(tmp_path, "loop.esk", "(display (let loop ((i 0)) (if (= i 100000000) i (loop (+ i 1)))))\n")
    proc = run([ESHKOL, "run", "-O0", str(prog)], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "100000000"


SUM = "(define (sum n) (if (= n 0) 0 (+ n (sum (- n 1)))))\n(display (sum {n}))\n(newline)\n"


def test_deep_non_tail_recursion(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run([ESHKOL, "run", str(write(tmp_path, "deep.esk", SUM.format(n=10**6)))], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{10**6 * (10**6 + 1) // 2}\n"


def test_too_deep_recursion_is_a_stack_overflow_error(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run([ESHKOL, "run", str(write(tmp_path, "deeper.esk", SUM.format(n=10**8)))], env)
    assert proc.returncode == 1, proc.stdout
    assert "error:" in proc.stderr and "stack overflow" in proc.stderr
    assert proc.stdout == ""
