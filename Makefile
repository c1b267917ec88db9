# Two commands do everything on a fresh Linux machine with Python 3.11:
#   make run   -- create/reuse .venv, install, run the main job (natsbench-gym search $(RUN_ARGS))
#   make test  -- create/reuse .venv, install, run the test suite (fast and slow tests)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# torch is pinned in the same pip command as stable-baselines3 (a CPU wheel; an unpinned torch pulls CUDA).
TORCH_PIN ?= torch==2.13.0
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test test-fast lint bench install clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/natsbench-gym search $(RUN_ARGS)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q $(PYTEST_ARGS)
	$(PY) -m pytest -m "slow" -q $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_table.py

clean:
	rm -rf $(VENV) build dist *.egg-info
