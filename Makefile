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

# the registry screenshot test needs a Chromium: installed with apt-get where this runs as root on Debian/Ubuntu
# (CI), otherwise that one test says it is skipped and why
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; } && \
	  echo "make test: installed chromium (apt-get) for the registry screenshot test"; } || \
	echo "make test: no chromium (apt-get install chromium): the registry screenshot test will be skipped"

test: $(STAMP) browser  ## run the test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -ra

repro: $(STAMP)  ## dvc repro with the current params.yaml, whatever profile it holds (no summary, no Prefect server)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro

.PHONY: help install demo test repro browser
