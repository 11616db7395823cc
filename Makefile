# Entry points of the project. Each area keeps its targets in mk/<area>.mk.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(VENV_BIN):$(PATH)
# Cache for binaries built from the Go module proxy, keyed by name and version.
export FLASK_K8S_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/flask-k8s

VENV_STAMP := $(VENV)/.requirements-$(shell cat requirements-dev.txt app/requirements.txt requirements/*.txt | sha256sum | cut -c1-12)

.PHONY: help venv test
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## Create the virtual environment from the pinned requirements

$(VENV_STAMP): requirements-dev.txt app/requirements.txt $(wildcard requirements/*.txt)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.requirements-*
	@touch $@

test: ## Run every check that needs no cluster (each area adds its part in mk/)

include $(sort $(wildcard mk/*.mk))
