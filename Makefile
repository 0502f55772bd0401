# Every target sets up what it needs on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: dev lint test test-unit test-min test-e2e demo bench bundle world-deps clean

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
	$(VENV)/bin/ruff check safedocker tests bench tools
	$(VENV)/bin/mypy

test: dev world-deps
	$(PY) -m pytest -q -p no:cacheprovider -n 2 tests

test-unit: dev
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

# The unit tests against the LOWEST version of every runtime dependency pyproject.toml
# declares (tools/min_constraints.py turns its >= floors into name==floor constraints),
# in a venv of their own: a floor that is too low fails here, not on a user's machine.
VENV_MIN ?= .venv-min
test-min: $(VENV_MIN)/.installed
	$(VENV_MIN)/bin/python -m pytest -q -p no:cacheprovider -n 2 tests/unit

$(VENV_MIN)/.installed: pyproject.toml tools/min_constraints.py
	@rm -rf $(VENV_MIN)
	@$(PYTHON) -m venv $(VENV_MIN) 2>/dev/null || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV_MIN); }
	$(VENV_MIN)/bin/python -m pip install -q --upgrade pip
	$(PYTHON) tools/min_constraints.py pyproject.toml > $(VENV_MIN)/constraints.txt
	$(VENV_MIN)/bin/python -m pip install -q -c $(VENV_MIN)/constraints.txt -e '.[dev]'
	$(VENV_MIN)/bin/python tools/min_constraints.py --check pyproject.toml
	@touch $@

test-e2e: dev world-deps
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e

demo: dev world-deps
	$(PY) -m tests.demo

bench: dev world-deps
	$(PY) -m bench.passthrough
	$(PY) -m bench.verify
	$(PY) -m bench.summary

# The offline bundle for airgapped machines (wheels + install.sh), see packaging/.
bundle: dev
	packaging/build-bundle.sh --python $(PY) --output dist/safe-docker-bundle.tar.gz

clean:
	rm -rf $(VENV) $(VENV_MIN) build dist .mypy_cache .ruff_cache .pytest_cache
