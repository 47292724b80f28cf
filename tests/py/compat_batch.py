"""Run many Eshkol programs through the `eshkol run` code path in one process tree.

``python compat_batch.py OUT.json JOBS PROGRAM...`` imports the compiler once, then forks one
child per program (at most JOBS at a time); each child runs ``driver.run_program`` exactly as
``eshkol run`` does, with its stdout/stderr captured in files, and exits with the program's
status. Results (status, stdout, stderr, seconds) go to OUT.json. This saves the interpreter
and MLIR start-up per program, which otherwise dominates the compat suite's time.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

TIMEOUT = 180.0


def _child(path: str, out: str, err: str) -> None:
    fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    fe = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fo, 1)
    os.dup2(fe, 2)
    status = 1
    try:
        from eshkol.driver import Options, run_program
        from eshkol.syntax.diagnostics import EshkolError

        os.chdir(os.path.dirname(os.path.abspath(path)))
        try:
            status = run_program(os.path.basename(path), [], Options())
        except EshkolError as e:
            print(e.render(), file=sys.stderr)
            status = 1
        except Exception as e:  # noqa: BLE001 - reported as the program's failure
            print(f"error: internal compiler error: {type(e).__name__}: {e}", file=sys.stderr)
            status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def main(argv: list[str]) -> int:
    out_json, jobs, programs = argv[0], int(argv[1]), argv[2:]
    import mlir.ir  # noqa: F401

    import eshkol.driver  # noqa: F401 - load the compiler (and MLIR) before forking

    tmp = tempfile.mkdtemp(prefix="compat-batch-")
    results: dict[str, dict] = {}
    pending = list(programs)
    running: dict[int, tuple[str, str, str, float]] = {}
    while pending or running:
        while pending and len(running) < jobs:
            path = pending.pop(0)
            base = os.path.join(tmp, str(len(results) + len(running)) + os.path.basename(path))
            out, err = base + ".out", base + ".err"
            pid = os.fork()
            if pid == 0:
                _child(path, out, err)
            running[pid] = (path, out, err, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for p, (_, _, _, start) in list(running.items()):
                if now - start > TIMEOUT:
                    os.kill(p, 9)
            time.sleep(0.01)
            continue
        path, out, err, start = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        with open(out, encoding="utf-8", errors="replace") as f:
            stdout = f.read()
        with open(err, encoding="utf-8", errors="replace") as f:
            stderr = f.read()
        results[path] = {"status": code, "stdout": stdout, "stderr": stderr,
                         "seconds": round(time.monotonic() - start, 2)}
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
