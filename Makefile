# aslfs: the two commands of the README are `make demo` and `make test`; both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[dev,torch,jax]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install aslfs with its pinned dependencies

demo: $(STAMP)  ## run the demo profile on the embedded dataset (dvc repro) and print a summary
	$(VENV)/bin/aslfs demo

test: $(STAMP)  ## run the test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -ra

repro: $(STAMP)  ## dvc repro with the current params.yaml, whatever profile it holds (no summary, no Prefect server)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro

.PHONY: help install demo test repro
