# Set-up and entry points.  `make demo` and `make test` do everything on a fresh Debian
# machine with Python 3.11: system packages (as root, with apt), the .venv, the package.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.eshkol-installed
SOURCES := $(shell find eshkol runtime_c -type f -not -path '*/__pycache__/*') pyproject.toml CMakeLists.txt

.PHONY: demo test install sysdeps lint bench clean

demo: install
	$(BIN)/eshkol run examples/demo.esk

test: install
	$(BIN)/python -m pytest -q
	$(BIN)/lit -sv tests/lit

install: $(STAMP)

# The C runtime needs libgc (Boehm GC) and GMP (bignums, rationals); tests use Chez Scheme as
# an oracle when present.  (Debian keeps gmp.h under /usr/include/<multiarch>/.)
# libopenblas0 (optional) is the BLAS that `eshkol build` executables load at run time; programs
# run through the driver use numpy's bundled OpenBLAS (runtime_c/blas.c).
HAVE_GMP = [ -f /usr/include/gmp.h ] || ls /usr/include/*/gmp.h >/dev/null 2>&1
sysdeps:
	@if [ ! -f /usr/include/gc.h ] || ! $(HAVE_GMP) || ! command -v scheme >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgc-dev libgmp-dev chezscheme libopenblas0 >/dev/null; \
	  elif [ ! -f /usr/include/gc.h ] || ! $(HAVE_GMP); then \
	    echo "missing libgc or GMP: run 'sudo apt-get install libgc-dev libgmp-dev' (and 'chezscheme' for the Scheme oracle)"; exit 1; \
	  else \
	    echo "note: Chez Scheme not found ('sudo apt-get install chezscheme'); its tests will be skipped"; \
	  fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(SOURCES) | sysdeps $(BIN)/python
	$(BIN)/pip install -q ".[test]"
	touch $(STAMP)

lint: install
	$(BIN)/ruff check eshkol tests benchmarks

bench: install
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/scheme.py

clean:
	rm -rf build $(VENV) tests/lit/Output
