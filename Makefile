# Two commands a newcomer needs: `make serve` and `make test` (README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install serve test lint services

# Re-installs only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

serve: install
	$(BIN)/chat-gateway serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

services:
	scripts/ensure-services

# The suite on SQLite and on PostgreSQL side by side, then the GraphQL door on PostgreSQL
# once more with its compiled read path switched off (scripts/run-tests).
test: install services lint
	PYTEST=$(BIN)/pytest scripts/run-tests
