# The two set-up commands: `make run` and `make test`. Both create .venv and install the project first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run listen test lint format install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalls when pyproject.toml changes.
# The extras are the PostgreSQL and MySQL client libraries (the PostgreSQL store, change capture); the tests use
# them all.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres,mysql,dev]'
	touch $@

install: $(VENV)/.installed

# `make run RUN_ARGS=--allow-private-endpoints` lets endpoints on this machine (such as `make listen`) be used.
RUN_ARGS ?=
LISTEN_ARGS ?=

run: install
	$(BIN)/webhook-manager serve $(RUN_ARGS)

# A local receiver that prints each webhook with its signatures checked: `make listen LISTEN_ARGS="--secret S"`.
listen: install
	$(BIN)/webhook-manager listen $(LISTEN_ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
