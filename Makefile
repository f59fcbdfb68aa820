# Two commands on a fresh machine with Python 3.11: `make run` and `make check`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run check lint test migrate bench clean

run: $(VENV)/.runtime
	$(PY) app.py serve

# What CI runs: lint and format check, then the whole suite (warnings are errors: pytest.ini).
check: lint test

lint: $(VENV)/.test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(VENV)/.test
	$(PY) -m pytest

migrate: $(VENV)/.runtime
	$(PY) app.py migrate

bench: $(VENV)/.test
	$(PY) bench/service.py
	$(PY) bench/hot_path.py
	$(PY) bench/vectors.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test: requirements.txt requirements-test.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.runtime

clean:
	rm -rf $(VENV) .pytest_cache
