# Every target sets up what it needs on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: dev lint test test-unit test-e2e demo bench bundle world-deps clean

dev: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# The real docker engine, registry and busybox-static the end-to-end tests and demo use.
world-deps: dev
	$(PY) -c 'from tests.world import ensure_installed; ensure_installed()'

lint: dev
	$(VENV)/bin/ruff check safedocker tests bench
	$(VENV)/bin/mypy

test: dev world-deps
	$(PY) -m pytest -q -p no:cacheprovider tests

test-unit: dev
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

test-e2e: dev world-deps
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e

demo: dev world-deps
	$(PY) -m tests.demo

bench: dev world-deps
	$(PY) -m bench.passthrough
	$(PY) -m bench.verify

# The offline bundle for airgapped machines (wheels + install.sh), see packaging/.
bundle: dev
	packaging/build-bundle.sh --python $(PY) --output dist/safe-docker-bundle.tar.gz

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
