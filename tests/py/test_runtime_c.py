"""The C runtime's own test program (runtime_c/test_runtime.c), built with CMake and run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_runtime_c_suite(tmp_path: Path) -> None:
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DESHKOL_BUILD_TESTS=ON",
                    "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "test_runtime", "-j2"],
                   check=True, capture_output=True)
    p = subprocess.run([str(build / "test_runtime")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    last = p.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0 failures"), last
    checks = int(last.split()[0])
    assert checks > 1000  # the suite really ran (random round trips included)
