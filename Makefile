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

.PHONY: all venv build build-debug demo test test-debug bench bench-peers soak clean distclean

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

# Memory soak: the node trades against the simulator (its own process) at the demo rate and at the
# simulator's highest rate; RSS per minute, slope after warm-up → perf/results/soak.json + README.
SOAK_MINUTES ?= 10
soak: build
	$(PY) perf/soak.py --minutes $(SOAK_MINUTES)

# The parser benchmarks against nautilus_trader's OrderBook and cryptofeed's `order_book` C extension,
# in a separate virtualenv (their pins conflict with ours; never needed by `make test`). Our in-place
# extensions are imported from the source tree.
PEERS := .venv-peers
$(PEERS)/.deps-stamp: constraints-peers.txt
	@test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS) || python3 -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install -q --disable-pip-version-check -c constraints-peers.txt \
		nautilus_trader order_book orjson protobuf PyYAML
	@touch $@

bench-peers: build $(PEERS)/.deps-stamp
	PYTHONPATH=$(CURDIR) $(PEERS)/bin/python perf/run.py --only gate_spot_parse_apply

clean:
	rm -rf build .pytest_cache .hypothesis
	find cexnode -name '*.so' -delete
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(PEERS) *.egg-info
