# bnn-tf: `make demo` runs the main job, `make test` runs the tests.
# Both do all set-up themselves: a virtualenv in .venv, the pinned stack,
# and (as root on Debian/Ubuntu) the Fashion-MNIST package.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=
# Test processes: most of a test's time is single-threaded (tracing, LCE's converter),
# so 2 processes on 2 cores finish ~1.35x sooner. A file runs in one process
# (module fixtures and test_zoo_parity's worker are shared). TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2

.PHONY: setup data demo test test-slow lint bench jvm-test clean help

help:
	@echo "make demo   train → convert → verify → bench on Fashion-MNIST (writes $(DEMO_OUT)/report.md)"
	@echo "make test   run the test suite (default run, < 20 min on 2 cores)"
	@echo "make lint   ruff"
	@echo "make jvm-test  the Android demo's JUnit tests on a plain JVM (JDK + junit4)"
	@echo "make bench  run the benchmarks (long; writes benchmarks/results/)"

setup: $(STAMP) data

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 10), (3, 11)), "bnn-tf needs Python 3.10 or 3.11 (TensorFlow 2.21 + LCE 0.16); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Fashion-MNIST from Debian's package when we can install it; otherwise the
# loader falls back to the Keras cache/download (see docs/data.md).
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing dataset-fashion-mnist (Debian package)"; \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || \
		echo "warning: could not install dataset-fashion-mnist; Keras' download will be tried"; \
	else echo "note: not root: Fashion-MNIST will come from the Keras cache/download"; fi
	@if [ -f /usr/share/java/junit4.jar ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing junit4 (Debian package; for the Android demo's JVM tests)"; \
		(apt-get install -y -qq junit4 >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq junit4 >/dev/null)) || \
		echo "warning: could not install junit4; tests/test_android_jvm.py will be skipped"; \
	else echo "note: not root: junit4 missing, tests/test_android_jvm.py will be skipped"; fi

demo: setup
	$(BIN)/bnn-tf demo --out $(DEMO_OUT) --check

# pytest exits 5 when it collects no test; make treats that as a failure too.
test: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The Android demo's Android-free classes and their JUnit 4 tests, on a plain JVM.
jvm-test: data
	android_demo/run_jvm_tests.sh

test-slow: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m slow $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
