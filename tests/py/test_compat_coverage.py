"""Every name of COMPAT.md sections A-C is bound in a fresh program (issue #8's coverage check).

The names come from ../shared/COMPAT.md when it is present (and must then equal the checked-in
copy tests/compat/COMPAT_NAMES.txt), else from the copy. A name is bound when it is a special
form or auxiliary keyword of the expander, a builtin of the primitive registry, or a name the
implicit standard library exports; names of section C's require-only modules must be exported
by their module. Names still missing are listed in MISSING as strict xfails with the reason, so
that binding one later makes its entry fail until it is removed from the list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compat_names  # noqa: E402

NAMES = compat_names.load()
# Auxiliary syntax: meaningful only inside other forms (cond/case/guard, syntax-rules, types).
AUX = {"else", "=>", "_", "...", "->"}

# Names not bound yet, with the reason (strict xfails: remove an entry once the name works).
CALCULUS = "calculus (autodiff helper's area, runtime_c/ad.c); not bound yet"
MISSING: dict[str, str] = {}


def _eshkol() -> str:
    here = Path(sys.executable).parent / "eshkol"
    return str(here) if here.exists() else (shutil.which("eshkol") or "eshkol")


def _require_modules() -> list[str]:
    return sorted({module for _, module, _ in NAMES if module})


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared with test_compat.py (same folder): the stdlib libraries are compiled once.
    path = tmp_path_factory.getbasetemp() / "compat-shared-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def bound(cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """name, module → bound? (resolution only: nothing is compiled)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        from eshkol import driver
        from eshkol.dialect.primitives import PRIMITIVES
        from eshkol.expand.expander import Expander

        folder = tmp_path_factory.mktemp("coverage")
        _, plain, _ = driver._resolve("", str(folder / "fresh.esk"))
        with_modules = {}
        for m in _require_modules():
            text = f"(require {m})\n"
            _, vis, _ = driver._resolve(text, str(folder / "fresh.esk"))
            with_modules[m] = vis
        special = set(Expander().special)
    finally:
        if old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old

    def is_bound(name: str, module: str) -> bool:
        if name in AUX or name in special:
            return True
        if name in PRIMITIVES and (not name.startswith("%") or name == "%"):
            return True
        return name in (with_modules[module] if module else plain)

    return is_bound


def test_copy_matches_compat_md() -> None:
    if not compat_names.COMPAT_MD.exists():
        pytest.skip("../shared/COMPAT.md is not present; the checked-in copy is used")
    assert compat_names.read_copy() == compat_names.parse(compat_names.COMPAT_MD.read_text(encoding="utf-8")), \
        "tests/compat/COMPAT_NAMES.txt is out of date: run python tests/py/compat_names.py"


def test_name_list_is_complete() -> None:
    """The parser finds the documented names of every kind (guards against a parser that
    silently finds nothing)."""
    names = {n for _, _, n in NAMES}
    assert len(NAMES) > 800
    for n in ("define", "match", "with-region", "gradient", "display", "tensor-set!", "fold",
              "run-tests", "zset-empty?", "zset=?", "blc-S-bits", "blc-term->bytes", "->", ":"):
        assert n in names, n


@pytest.mark.parametrize("section, module, name", [
    pytest.param(*row, marks=pytest.mark.xfail(strict=True, reason=MISSING[row[2]]))
    if row[2] in MISSING else row
    for row in NAMES
], ids=[f"{s}-{n}" for s, _, n in NAMES])
def test_bound(section: str, module: str, name: str, bound) -> None:
    assert bound(name, module), f"{name} (section {section}{', ' + module if module else ''}) is not bound"


def test_missing_list_only_names_known() -> None:
    names = {n for _, _, n in NAMES}
    assert set(MISSING) <= names


def test_bound_names_have_values(cache: Path, tmp_path: Path, bound) -> None:
    """A program referencing every bound procedure/variable name (not the special forms)
    compiles, links and runs: each name has a value at run time."""
    from eshkol.dialect.primitives import PRIMITIVES
    from eshkol.expand.expander import Expander

    special = set(Expander().special) | AUX
    values = [n for _, m, n in NAMES if n not in MISSING and n not in special and bound(n, m)]
    assert len(values) > 500
    mods = " ".join(_require_modules())
    body = "\n".join(f"  {n}" for n in values)
    src = f"(require {mods})\n(define everything (list\n{body}))\n(display (length everything))\n"
    (tmp_path / "all.esk").write_text(src)
    r = subprocess.run([_eshkol(), "run", "all.esk"], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, XDG_CACHE_HOME=str(cache)), timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == str(len(values))
    assert PRIMITIVES  # the registry was loaded
