# dynosim-tui — everything runs from a local virtualenv (.venv) that `make` creates.
# Two commands set up a fresh machine (Python 3.11+ and a C compiler):
#   make run    build (mypyc-compiled engine), then replay the bundled trace
#   make test   build, then run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# Extras installed with the package (CI adds ray and search: `make test EXTRAS=test,ray,search`).
EXTRAS ?= test
SOURCES := $(wildcard engine/*.py dynosim/*.py dynosim/*/*.py planner/*.py tui/*.py tui/*.tcss) pyproject.toml setup.py

.PHONY: all install run tui test test-fast test-interpreted check snapshot-update bench clean

all: install

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# A normal (non-editable) install: the engine is compiled with mypyc.
# build/ is cleared first: setuptools reuses it, and files of modules since renamed or removed
# would land in the wheel (and be shipped to Ray workers).
$(STAMP): $(PY) $(SOURCES)
	rm -rf build
	$(PIP) install -q ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dynosim-tui traces/synthetic_trace.jsonl --num-workers 4 --export out/synthetic_w4

# The live view on the same run (needs a terminal).
tui: $(STAMP)
	$(VENV)/bin/dynosim-tui traces/synthetic_trace.jsonl --num-workers 4

# Tests import the installed (compiled) package; run from tests/ so the source tree's
# packages are not picked up ahead of it.
test: $(STAMP)
	cd tests && ../$(PY) -m pytest -q -p no:cacheprovider --rootdir=. .

# The quick loop: everything but the statistical and full-trace parity cases marked slow.
test-fast: $(STAMP)
	cd tests && ../$(PY) -m pytest -q -p no:cacheprovider --rootdir=. -m "not slow" .

# Static checks: strict mypy over every package and bench/, and the layering contracts (tests/contracts).
check: $(STAMP)
	$(PY) -m mypy --strict engine planner dynosim tui bench
	cd tests && ../$(PY) -m pytest -q -p no:cacheprovider --rootdir=. contracts

# The same tests against the interpreted engine (DYNOSIM_INTERPRETED=1).
test-interpreted: $(STAMP)
	cd tests && DYNOSIM_INTERPRETED=1 ../$(PY) -m pytest -q -p no:cacheprovider --rootdir=. .

# Re-record the TUI screen snapshots (review the SVG diffs before committing them).
snapshot-update: $(STAMP)
	cd tests && ../$(PY) -m pytest -q -p no:cacheprovider --rootdir=. tui/test_tui_snapshots.py --snapshot-update

bench: $(STAMP)
	$(PY) bench/bench.py

clean:
	rm -rf build dist *.egg-info .mypy_cache .pytest_cache out tests/artifacts
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o \( -name '*.so' -o -name '*.c' \) -type f -exec rm -f {} +
	rm -rf $(VENV)
