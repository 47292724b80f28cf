# -*- Python -*-
"""lit configuration for Eshkol's FileCheck regression tests.

Run as `.venv/bin/lit -sv tests/lit`: the tools are found next to the Python running lit
(the venv's bin directory), falling back to PATH; FileCheck and `not` come from the LLVM
binaries shipped with the `llvm` Python package.
"""

import os
import shutil
import sys

import lit.formats

config.name = "eshkol"
# Run RUN lines with the external shell (bash): tests use `;`, `$?` and `test`.  lit from
# LLVM 23 on insists that this be asked for explicitly.
try:
    config.test_format = lit.formats.ShTest(True, force_execute_external=True)
except TypeError:  # older lit: no such keyword
    config.test_format = lit.formats.ShTest(True)
config.suffixes = [".esk", ".mlir"]
config.excludes = ["lit.cfg.py", "Output", "Inputs"]

config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "Output")

# A private compile cache, so tests never share (or pollute) the user's cache.
config.environment["XDG_CACHE_HOME"] = os.path.join(config.test_exec_root, "cache")
config.environment["HOME"] = os.environ.get("HOME", config.test_exec_root)

bin_dir = os.path.dirname(os.path.abspath(sys.executable))


def tool(name):
    path = os.path.join(bin_dir, name)
    if os.path.exists(path):
        return path
    found = shutil.which(name)
    if found is None:
        lit_config.fatal(f"cannot find {name} next to {sys.executable} or on PATH")
    return found


path_dirs = [bin_dir]
try:
    import llvm

    path_dirs.insert(0, os.path.join(os.path.dirname(llvm.__file__), "bin"))
except ImportError:
    lit_config.warning("the llvm package is missing; FileCheck and not must be on PATH")
config.environment["PATH"] = os.pathsep.join(path_dirs + [os.environ.get("PATH", "")])

# Longest names first so that %eshkol does not swallow %eshkol-opt.
config.substitutions.append(("%eshkol-translate", tool("eshkol-translate")))
config.substitutions.append(("%eshkol-opt", tool("eshkol-opt")))
config.substitutions.append(("%eshkol", tool("eshkol")))

# Working on the compiler without reinstalling: PYTHONPATH=<checkout> and
# ESHKOL_RUNTIME_DIR=<runtime build> reach the tools.
for var in ("PYTHONPATH", "ESHKOL_RUNTIME_DIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
