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

test: install services lint
	TEST_DATABASE=sqlite $(BIN)/pytest
	TEST_DATABASE=postgres $(BIN)/pytest
	# The GraphQL door on PostgreSQL once more with its compiled read path switched off.
	TEST_DATABASE=postgres GRAPHQL_FAST_PATH=false $(BIN)/pytest tests/schema
