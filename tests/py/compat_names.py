"""The names of COMPAT.md sections A-C (Eshkol v1.x special forms, builtins and library
procedures), parsed from the document.

``parse(text)`` returns ``[(section, module, name), ...]`` in document order, where module is
``""`` for names that need no ``require`` (sections A and B, and the auto-loaded stdlib of C)
and the module (``core.testing``, ...) for the require-only procedures of section C. A
checked-in copy (tests/compat/COMPAT_NAMES.txt) lets the tests run where ../shared is absent;
``python tests/py/compat_names.py`` regenerates it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPAT_MD = ROOT.parent / "shared" / "COMPAT.md"
NAMES_FILE = ROOT / "tests" / "compat" / "COMPAT_NAMES.txt"

_TICK = re.compile(r"`([^`]+)`")
# Backticked words that are not names: examples, outputs, file names, options.
_NOT_NAMES = {"eshkol-run", "--no-stdlib", "-bits", "?x", "?", "()", "+i", "-i"}


def _section(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i:text.index(end, i)]


def _is_name(t: str) -> bool:
    if t in _NOT_NAMES or " " in t or t[0] in "#('\"" or "*" in t:
        return False
    if re.fullmatch(r"[+-]?[0-9][0-9./e+-]*", t):
        return False
    if t.startswith(("lib/", "docs/", "runtime_")) or t.endswith((".esk", ".cpp", ".md")):
        return False
    return "." not in t or t == "..."


def _expand(t: str, after: str) -> list[str]:
    """Names a backticked token stands for: `blc-I/K/S/U`, `blc-term->byte(s)`, `zset-*` (a b)."""
    if t == "blc-I/K/S/U":
        base = ["blc-I", "blc-K", "blc-S", "blc-U"]
        return base + [b + "-bits" for b in base] if "-bits" in after[:40] else base
    if t.endswith("(s)"):
        return [t[:-3], t[:-3] + "s"]
    if t.endswith("-*"):
        m = re.match(r"\s*\(([^)]*)\)", after)
        if m:
            stem = t[:-2]
            return [stem + s if s.startswith("=") else f"{stem}-{s}" for s in m.group(1).split()]
        return []
    return [t] if _is_name(t) else []


def _names_in(line: str) -> list[str]:
    out = []
    for m in _TICK.finditer(line):
        out += _expand(m.group(1), line[m.end():])
    return out


def parse(text: str) -> list[tuple[str, str, str]]:
    """(section, module or "", name) for every name of sections A-C, without repeats."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()

    def add(sec: str, module: str, name: str) -> None:
        if name not in seen:
            seen.add(name)
            out.append((sec, module, name))

    for sec, body in (("A", _section(text, "## A.", "## B.")), ("B", _section(text, "## B.", "## C.")),
                      ("C", _section(text, "## C.", "## 1."))):
        for line in body.splitlines():
            if line.startswith("| `"):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
                name = _TICK.match(cells[0]).group(1)
                module = ""
                if sec == "C" and cells[-1].endswith("(require)"):
                    module = cells[-1].split()[0]
                add(sec, module, name)
            elif line.startswith("|"):
                continue
            elif line.startswith("- **require-only modules:**"):
                # "core.testing: `a` `b` ...; core.logging: ..."
                for part in re.split(r";\s*(?=core\.)", line.split(":**", 1)[1]):
                    m = re.match(r"\s*(core\.[\w.]+)", part)
                    module = m.group(1) if m else ""
                    for n in _names_in(part):
                        add(sec, module, n)
            else:
                for n in _names_in(line):
                    add(sec, "", n)
    return out


def load() -> list[tuple[str, str, str]]:
    """The names: from ../shared/COMPAT.md when present, else the checked-in copy."""
    if COMPAT_MD.exists():
        return parse(COMPAT_MD.read_text(encoding="utf-8"))
    return read_copy()


def read_copy() -> list[tuple[str, str, str]]:
    rows = []
    for line in NAMES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            sec, module, name = line.split("\t")
            rows.append((sec, module, name))
    return rows


def write_copy(rows: list[tuple[str, str, str]]) -> None:
    lines = ["# Names of COMPAT.md sections A-C: section, module (empty: no require), name.",
             "# Regenerate with: python tests/py/compat_names.py"]
    lines += ["\t".join(r) for r in rows]
    NAMES_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if not COMPAT_MD.exists():
        sys.exit(f"{COMPAT_MD} not found")
    rows = parse(COMPAT_MD.read_text(encoding="utf-8"))
    write_copy(rows)
    print(f"{len(rows)} names written to {NAMES_FILE}")
