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

.PHONY: all venv build build-debug demo test test-debug test-core-debug core-debug-shard-1 core-debug-shard-2 \
	bench bench-peers soak clean distclean

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

# The tests of the compiled _core modules again, on the debug build (bounds, overflow, None and
# initialisation checks, CEXNODE_DEBUG invariants), in a copy of the working tree (tracked and
# untracked-not-ignored files) under build/debug-tree: the in-place release extensions of this tree
# and build/.mode stay as they are, so `make test` after it rebuilds nothing. The copy keeps its own
# extensions and generated C between runs (incremental, like `make build`). The check before the
# tests: every .pyx has its extension in the copy, built in debug mode (-g3 keeps the macro
# definitions in the debug info, so the string "CEXNODE_DEBUG 1" is in each one), and Python
# imports the copy's extensions, not the release ones through the editable install.
# The tests run in two shards of about equal CPU time side by side (JOBS at a time; their
# output comes shard by shard); PYTEST_ARGS goes to both, and a shard that selects no test fails
# (pytest's exit code 5) like any other failure.
DEBUG_TREE := build/debug-tree
DEBUG_PY    = cd $(DEBUG_TREE) && CEXNODE_DEBUG=1 CEXNODE_JOBS=$(JOBS) PYTHONPATH=$(abspath $(DEBUG_TREE)) $(abspath $(PY))
CORE_TESTS_1 := tests/unit/test_fixedpoint.py tests/unit/test_books_deep.py tests/unit/test_parsers_mexc_fuzz.py \
	tests/unit/test_symbols.py tests/unit/test_router.py tests/unit/test_parsers_mexc.py tests/unit/test_symbols_extend.py
CORE_TESTS_2 := tests/unit/test_parsers_gateio_fuzz.py tests/unit/test_book_sync.py tests/unit/test_book.py \
	tests/unit/test_arb.py tests/unit/test_parsers_mexc_oneof.py tests/unit/test_log_ring.py \
	tests/unit/test_parsers_gateio.py tests/unit/test_book_audit.py tests/integration/test_sim_parsers.py \
	tests/integration/test_ws_feed_listener.py tests/unit/test_feed_set_symbols.py

test-core-debug: $(STAMP)
	@mkdir -p $(DEBUG_TREE)
	git ls-files -z --cached --others --exclude-standard > build/debug-tree.files
	tar -c --null -T build/debug-tree.files --ignore-failed-read -f build/debug-tree.tar
	tar -x -f build/debug-tree.tar -C $(DEBUG_TREE)
	$(DEBUG_PY) setup.py -q build_ext --inplace -j $(JOBS)
	$(DEBUG_PY) -c 'import glob, os, sys, cexnode._core.book as m; \
		pyx = glob.glob("cexnode/_core/**/*.pyx", recursive=True); \
		so = [glob.glob(p[:-4] + ".cpython-*.so") for p in pyx]; \
		bad = [p for p, s in zip(pyx, so) if len(s) != 1 or b"CEXNODE_DEBUG 1" not in open(s[0], "rb").read()]; \
		ok = pyx and not bad and m.__file__.startswith(os.getcwd() + "/"); \
		sys.exit(None if ok else "not the debug build: %s %s" % (m.__file__, bad))'
	@$(MAKE) --no-print-directory -j $(JOBS) --output-sync=target core-debug-shard-1 core-debug-shard-2

core-debug-shard-1 core-debug-shard-2: core-debug-shard-%:
	$(DEBUG_PY) -m pytest -q -p no:cacheprovider --basetemp=.tmp/shard-$* $(PYTEST_ARGS) $(CORE_TESTS_$*)

bench: build
	$(PY) perf/run.py
	$(PY) perf/summary.py --write

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
		nautilus_trader order_book orjson protobuf PyYAML cryptofeed ccxt
	@touch $@

# Then the in-situ side by side: the node, cryptofeed and ccxt.pro on the same simulator streams, each
# in its own process (perf/bench_insitu.py: CPU per frame, ratios, books compared with the simulator).
PEER_BOOKS ?= 300
bench-peers: build $(PEERS)/.deps-stamp
	PYTHONPATH=$(CURDIR) $(PEERS)/bin/python perf/run.py --only gate_spot_parse_apply
	$(PY) perf/bench_insitu.py --universe --venues gateio_spot --books $(PEER_BOOKS) --peers cryptofeed,ccxt \
		--variant warm_off=trading.warm_interval_ms=0

clean:
	rm -rf build .pytest_cache .hypothesis
	find cexnode -name '*.so' -delete
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(PEERS) *.egg-info
