"""Eshkol v1.x programs run unchanged (issue #8, COMPAT.md, LANGUAGE.md's compatibility
decisions).

Every ``tests/compat/*.esk`` is a self-checking program in the v1.x style: it prints a
``PASS name`` or ``FAIL name ...`` line per check and its ``main`` returns the exit status (1
on a failure). They all run through the ``eshkol run`` code path in one batch (see
compat_batch.py: one compiler start-up, a forked child per program); a sample is also built
with ``eshkol build`` and must print the same. The module system's command-line side (``-I``,
``$ESHKOL_PATH``, ``--no-stdlib``) and the diagnostics are checked with the CLI itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "tests" / "compat"
PROGRAMS = sorted(p for p in COMPAT.glob("*.esk") if p.name != "check.esk")
BATCH = Path(__file__).with_name("compat_batch.py")
JOBS = int(os.environ.get("ESHKOL_TEST_JOBS", "2"))
BUILD_SAMPLE = ["a24_match.esk", "a19_extern.esk", "c24_json.esk", "r13_ad_tape.esk"]


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared with test_compat_coverage.py: the stdlib libraries are compiled once.
    path = tmp_path_factory.getbasetemp() / "compat-shared-cache"
    path.mkdir(exist_ok=True)
    return path


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def results(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Run every compat program once (in a batch); name → status, stdout, stderr."""
    out = tmp_path_factory.mktemp("compat-results") / "results.json"
    subprocess.run([sys.executable, str(BATCH), str(out), str(JOBS), *map(str, PROGRAMS)],
                   env=_env(cache), check=True, timeout=3600, cwd=COMPAT)
    data = json.loads(out.read_text())
    return {Path(k).name: v for k, v in data.items()}


def test_enough_programs() -> None:
    """Issue #8 asks for at least 150 v1.x-style programs."""
    assert len(PROGRAMS) >= 150, len(PROGRAMS)


@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_program(program: str, results: dict[str, dict]) -> None:
    r = results[program]
    lines = r["stdout"].splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    passed = [line for line in lines if line.startswith("PASS")]
    assert r["status"] == 0 and not failed, (
        f"status {r['status']}\n" + "\n".join(failed) + f"\n{r['stderr'][-2000:]}")
    assert passed, f"no checks ran:\n{r['stdout'][-2000:]}\n{r['stderr'][-2000:]}"
    m = re.search(r"passed: (\d+), failed: 0", r["stdout"])
    assert m and int(m.group(1)) == len(passed)


@pytest.mark.parametrize("program", BUILD_SAMPLE)
def test_build_sample(program: str, results: dict[str, dict], cache: Path, tmp_path: Path) -> None:
    """`eshkol build` makes an executable that prints what `eshkol run` printed."""
    exe = tmp_path / program.replace(".esk", "")
    b = subprocess.run([_eshkol(), "build", program, "-o", str(exe)], capture_output=True,
                       text=True, env=_env(cache), cwd=COMPAT, timeout=600)
    assert b.returncode == 0, b.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, cwd=COMPAT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == results[program]["stdout"]


XLA_SAMPLE = ["n01_nn_activations.esk", "n02_nn_losses.esk", "n05_nn_conv_pool.esk", "n09_tensor_extras_gpu.esk"]


@pytest.mark.parametrize("program", XLA_SAMPLE)
def test_nn_programs_on_the_xla_target(program: str, results: dict[str, dict], cache: Path) -> None:
    """The tensor names behave the same with --target=xla (their tensor chains through XLA)."""
    pytest.importorskip("jax")
    r = subprocess.run([_eshkol(), "run", "--target=xla", program], capture_output=True, text=True,
                       env=_env(cache), cwd=COMPAT, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "FAIL" not in r.stdout
    assert r.stdout == results[program]["stdout"]


# ---- the command line: module search, --no-stdlib, diagnostics, exit status ----------------


def _run(args: list[str], cache: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([_eshkol(), "run", *args], capture_output=True, text=True,
                          env=_env(cache, **env), cwd=cwd, timeout=300)


def _modules(tmp: Path) -> Path:
    """A program folder and module folders elsewhere (for -I and $ESHKOL_PATH)."""
    (tmp / "prog").mkdir()
    (tmp / "inc" / "geo").mkdir(parents=True)
    (tmp / "envpath" / "util").mkdir(parents=True)
    (tmp / "inc" / "geo" / "area.esk").write_text(
        "(provide square-area)\n(define (square-area s) (* s s))\n(define (hidden) 1)\n")
    (tmp / "envpath" / "util" / "greet.esk").write_text(
        '(define (greet n) (string-append "hi " n))\n')
    return tmp / "prog"


def test_include_dirs_and_eshkol_path(cache: Path, tmp_path: Path) -> None:
    prog = _modules(tmp_path)
    (prog / "main.esk").write_text(
        '(require geo.area util.greet)\n(display (square-area 7)) (newline)\n(display (greet "ann"))\n')
    r = _run(["-I", str(tmp_path / "inc"), "main.esk"], cache, prog,
             ESHKOL_PATH=str(tmp_path / "envpath"))
    assert (r.returncode, r.stdout) == (0, "49\nhi ann"), r.stderr


def test_missing_module_is_located_and_lists_the_search(cache: Path, tmp_path: Path) -> None:
    prog = _modules(tmp_path)
    (prog / "main.esk").write_text("(display 1)\n(require geo.area)\n")
    r = _run(["main.esk"], cache, prog)  # no -I: not found
    assert r.returncode == 1
    first = r.stderr.splitlines()[0]
    assert first.startswith("main.esk:2:10: error: cannot find module 'geo.area'"), r.stderr
    assert str(prog / "geo" / "area.esk") in first
    assert "stdlib" in first


def test_provide_hides_other_names(cache: Path, tmp_path: Path) -> None:
    prog = _modules(tmp_path)
    (prog / "main.esk").write_text("(require geo.area)\n(display (hidden))\n")
    r = _run(["-I", str(tmp_path / "inc"), "main.esk"], cache, prog)
    assert r.returncode == 1 and "unbound variable: hidden" in r.stderr


def test_search_order_prefers_the_requiring_files_folder(cache: Path, tmp_path: Path) -> None:
    prog = _modules(tmp_path)
    (prog / "geo").mkdir()
    (prog / "geo" / "area.esk").write_text("(define (square-area s) 'local)\n")
    (prog / "main.esk").write_text("(require geo.area)\n(display (square-area 2))\n")
    r = _run(["-I", str(tmp_path / "inc"), "main.esk"], cache, prog)
    assert (r.returncode, r.stdout) == (0, "local"), r.stderr


def test_no_stdlib(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "p.esk").write_text("(display (string-repeat \"a\" 2))\n")
    assert _run(["p.esk"], cache, tmp_path).stdout == "aa"
    r = _run(["--no-stdlib", "p.esk"], cache, tmp_path)
    assert r.returncode == 1 and "unbound variable: string-repeat" in r.stderr
    (tmp_path / "q.esk").write_text("(require stdlib)\n(display (string-repeat \"b\" 2))\n")
    assert _run(["-n", "q.esk"], cache, tmp_path).stdout == "bb"


def test_load_is_relative_to_the_current_folder(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "data.esk").write_text("(define from-cwd 'cwd)\n")
    (tmp_path / "sub" / "p.esk").write_text('(load "data.esk")\n(display from-cwd)\n')
    r = _run(["sub/p.esk"], cache, tmp_path)
    assert (r.returncode, r.stdout) == (0, "cwd"), r.stderr


def test_main_result_is_the_exit_status(cache: Path, tmp_path: Path) -> None:
    """LANGUAGE.md: a zero-argument main that no top-level form calls runs after the top-level
    forms; an integer result becomes the exit status."""
    (tmp_path / "m.esk").write_text('(display "top ")\n(define (main) (display "main") 3)\n')
    r = _run(["m.esk"], cache, tmp_path)
    assert (r.returncode, r.stdout) == (3, "top main")
    (tmp_path / "called.esk").write_text('(define (main) (display "once") 5)\n(main)\n')
    r = _run(["called.esk"], cache, tmp_path)
    assert (r.returncode, r.stdout) == (0, "once")
    (tmp_path / "args.esk").write_text('(define (main argv) (display "never") 4)\n(display "ok")\n')
    r = _run(["args.esk"], cache, tmp_path)
    assert (r.returncode, r.stdout) == (0, "ok")
    (tmp_path / "sym.esk").write_text("(define (main) 'done)\n")
    assert _run(["sym.esk"], cache, tmp_path).returncode == 0


def test_exit_runs_dynamic_wind_after_thunks(cache: Path, tmp_path: Path) -> None:
    """Kept difference: exit takes 0 or 1 arguments and unwinds dynamic-wind."""
    (tmp_path / "e.esk").write_text(
        '(dynamic-wind (lambda () #f) (lambda () (exit 4)) (lambda () (display "after")))\n')
    r = _run(["e.esk"], cache, tmp_path)
    assert (r.returncode, r.stdout) == (4, "after")
    (tmp_path / "e0.esk").write_text("(exit)\n")
    assert _run(["e0.esk"], cache, tmp_path).returncode == 0


def test_uncaught_error_format(cache: Path, tmp_path: Path) -> None:
    """Kept difference: uncaught errors print file:line:col: error: message irritants."""
    (tmp_path / "u.esk").write_text('(display "x")\n(error "went wrong:" 42)\n')
    r = _run(["u.esk"], cache, tmp_path)
    assert r.returncode == 1 and r.stdout == "x"
    assert re.match(r"u\.esk:2:1: error: went wrong: 42", r.stderr), r.stderr


@pytest.mark.parametrize("source, message", [
    ('(syntax-error "bad use of form" foo)', "error: bad use of form foo"),
    ("(display (diff '(* x x) 'x))", "arguments are written unquoted"),
    ("(extern quux f double)", "unknown C type 'quux'"),
    ("(match)", "bad syntax: (match expression"),
    ("(define (f #:k) 1)", "keyword parameter #:k needs a variable"),
    ('(include "no-such-file.esk")', "cannot find file 'no-such-file.esk' to include"),
])
def test_compile_time_errors(source: str, message: str, cache: Path, tmp_path: Path) -> None:
    (tmp_path / "c.esk").write_text(source + "\n")
    r = _run(["c.esk"], cache, tmp_path)
    assert r.returncode == 1 and message in r.stderr and r.stderr.startswith("c.esk:1:"), r.stderr
