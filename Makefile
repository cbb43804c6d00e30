# Everything CI runs is a target here. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install init run api test lint format bench notebook clean

# Installs exactly the lock (requirements.txt: every package pinned with its hashes, the dev
# extra, which includes the API, the dashboard and PostgreSQL's driver), then this package in
# place without fetching anything else. An API-only server installs requirements-api.txt; the
# image (Dockerfile) installs requirements-runtime.txt.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

init: install
	$(PY) -m diamond_model init

run: init
	$(VENV)/bin/streamlit run streamlit_app.py

api: init
	$(PY) -m app.server --port 8000 --workers 2

test: init
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: init
	$(PY) -m benchmarks

notebook: install  # re-execute exploration.ipynb in place, refreshing its committed outputs
	$(PY) -c "import nbformat; from nbclient import NotebookClient; nb = nbformat.read('exploration.ipynb', 4); NotebookClient(nb, timeout=600, kernel_name='python3').execute(); nbformat.write(nb, 'exploration.ipynb')"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
