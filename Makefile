# shikong: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
DATA  ?= $(or $(SHIKONG_DATA),./data)
SCALE ?= small
PORT  ?= 5000

# Find an interpreter >= 3.12: pyenv's 3.12 on our machines, else python3.13/3.12/python3.
PYTHON ?= $(shell for c in "env PYENV_VERSION=3.12.1 python3.12" python3.13 python3.12 python3; do \
	  $$c -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1 && { echo "$$c"; break; }; done)

.PHONY: venv demo test lint clean-data

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: shikong needs Python >= 3.12 (python3.12 or python3.13 on PATH)"; exit 1; }
	@echo "[1/3] creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "[2/3] upgrading pip"
	$(PY) -m pip install --quiet --upgrade pip
	@echo "[3/3] installing shikong and its dependencies (the first time takes a few minutes)"
	$(PY) -m pip install -e '.[test]'
	@# ogctests pins versions older than ours (pyarrow, httpx, pytest); it runs with ours
	$(PY) -m pip install --no-deps ogctests==0.1.15
	@echo "installed: $(VENV)/bin/shikong"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/shikong demo build --scale $(SCALE) --data $(DATA)
	$(VENV)/bin/shikong demo run --data $(DATA) --port $(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the suite on TEST_WORKERS processes (pytest-xdist), one test module per worker at a time
# (module fixtures start once), the longest modules first (tests/conftest.py SLOW_FIRST);
# TEST_WORKERS=0 runs it in this process
TEST_WORKERS ?= 2
test: venv lint
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

clean-data:
	rm -rf $(DATA)
