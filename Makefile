# The course's front door: every target sets up what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test demo lab release goldens bench clean

setup: $(STAMP)

# Reinstall when the package list changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: setup
	$(BIN)/pytest

demo: setup
	$(BIN)/python -m autograder demo

# JupyterLab on the course root, with nbgrader's Formgrader, Validate button and Assignment list.
lab: setup
	$(BIN)/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root)

release: setup
	$(BIN)/python -m autograder release

# Rebuild the submission fixtures and the demo class from release/ (expected scores are hand-written).
goldens: setup
	$(BIN)/python tests/fixtures/build.py

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf build dist autograded feedback gradebook.db grades.csv
