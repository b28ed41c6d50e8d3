# Everything runs inside .venv, created and filled on first use.
PYTHON_BASE ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON_BASE) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## Start the emulator and the service on 127.0.0.1:3000 with a local store.
run: $(STAMP)
	$(PYTHON) tools/dev_server.py

## Run the whole test suite (starts moto_server and the emulator itself).
test: $(STAMP)
	$(PYTHON) -m pytest

## Measure speed and memory; results go to docs/benchmarks.md.
bench: $(STAMP)
	$(PYTHON) tools/benchmark.py

lint: $(STAMP)
	$(VENV)/bin/ruff check argus tests tools app.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
