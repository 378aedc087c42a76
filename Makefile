PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.installed-core
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# torch first: 2.13.0 is a CPU build on disk here; any newer torch pulls a multi-GB CUDA build.
# The examples need the package and matplotlib only; the test extras (faiss, PostgreSQL,
# dask) come with `make test`.
$(CORE): $(PY) pyproject.toml
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[plot]"
	touch $(CORE)

$(STAMP): $(CORE)
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

demo: $(CORE)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m pytest -q

docs: $(STAMP)
	$(PY) -m pip install -e ".[docs]"
	$(VENV)/bin/sphinx-build -W -b html docs docs/_build/html

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info docs/_build
