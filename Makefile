# cexnode — the two set-up commands are `make demo` and `make test`; everything else is a helper.
# The first call creates .venv from constraints.txt and builds the Cython extensions; later calls
# are incremental (pip only re-runs when constraints/pyproject change; Cython only rebuilds what changed).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.deps-stamp
JOBS   ?= 2
PYTEST_ARGS ?=
DEMO_DURATION ?= 30

.PHONY: all venv build build-debug demo test test-debug bench clean distclean

all: build

$(STAMP): constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q -c constraints.txt "pip>=23" setuptools wheel
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# build/.mode remembers whether the in-place extensions are the release or the debug build, so that
# switching between `make test` and `make test-debug` recompiles everything instead of mixing modes.
build: $(STAMP)
	@mkdir -p build
	@if [ "$$(cat build/.mode 2>/dev/null)" != release ]; then force=--force; fi; \
	CEXNODE_JOBS=$(JOBS) $(PY) setup.py -q build_ext --inplace -j $(JOBS) $$force
	@echo release > build/.mode
	@test -f $(VENV)/bin/cexnode || $(PIP) install -q --no-build-isolation --no-deps -e . >/dev/null

build-debug: $(STAMP)
	@mkdir -p build
	@if [ "$$(cat build/.mode 2>/dev/null)" != debug ]; then force=--force; fi; \
	CEXNODE_DEBUG=1 CEXNODE_JOBS=$(JOBS) $(PY) setup.py -q build_ext --inplace -j $(JOBS) $$force
	@echo debug > build/.mode
	@test -f $(VENV)/bin/cexnode || $(PIP) install -q --no-build-isolation --no-deps -e . >/dev/null

demo: build
	$(PY) -m cexnode --config configs/demo.yaml --duration $(DEMO_DURATION)

test: build
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-debug: build-debug
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: build
	$(PY) perf/run.py

clean:
	rm -rf build .pytest_cache .hypothesis
	find cexnode -name '*.so' -delete
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
