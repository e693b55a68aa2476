# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Each creates .venv if it is missing and installs the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fer-study-installed

.PHONY: demo test install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) cli.py demo

# Tests run on JOBS workers (pytest-xdist), each taking the next test as it frees up, the longest first
# (tests/conftest.py); JOBS=0 runs them in this one process.
JOBS ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --maxschedchunk 1 $(PYTEST_ARGS)

clean:
	rm -rf runs studies reports/out .pytest_cache
