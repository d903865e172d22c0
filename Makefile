# RepScope: `make run` serves the app, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A stamp per dependency set and checkout, so a changed lock file or a new clone reinstalls.
HASH := $(shell cat constraints.txt pyproject.toml | sha256sum | cut -c1-12)-$(shell echo "$(CURDIR)" | sha256sum | cut -c1-8)
RUN_STAMP := $(VENV)/.run-$(HASH)
DEV_STAMP := $(VENV)/.dev-$(HASH)
ARGS ?=
PYTEST_ARGS ?=
# Test files run in this many processes (pytest-xdist; a file's tests stay in one): most tests wait
# on servers, browsers and workers they start, so two keep both cores of a small machine busy.
# Each with one BLAS/OpenMP thread, as are the servers and workers they start: two processes with
# two spinning threads each doubled the suite's CPU time (29 -> 47 CPU-minutes) and gained nothing.
TEST_WORKERS ?= 2
TEST_THREADS ?= 1

.PHONY: run test bench bench-quick check-system zoo clean-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $@

$(DEV_STAMP): $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python app.py $(ARGS)

zoo: $(RUN_STAMP)
	$(BIN)/python -m compute.zoo build --dataset digits

check-system:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "make test needs these Debian packages:$$missing"; \
	  echo "install them with: sudo apt-get update && sudo apt-get install -y$$missing"; \
	  exit 1; \
	fi

test: check-system $(DEV_STAMP)
	OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) OPENBLAS_NUM_THREADS=$(TEST_THREADS) \
	  $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python -m benchmarks $(ARGS)

bench-quick:
	$(MAKE) bench ARGS=--quick

clean-cache:
	rm -rf cache/artifacts cache/jobs
