# The Flask service (app/), its image (Dockerfile) and their tests (tests/app/).

# Base image passed to the Dockerfile; made locally by scripts/build-base-image.sh.
BASE_IMAGE ?= flask-k8s/python-base:bookworm
# Seconds per phase, rounds (phases per contender) and client processes of the API benchmark.
BENCH_DURATION ?= 5
BENCH_ROUNDS ?= 3
BENCH_CLIENTS ?= 4
# Extra pytest arguments for test-app, e.g. PYTEST_ARGS='-k outage'.
PYTEST_ARGS ?=

APP_PY := app tests/app bench

.PHONY: test-app bench-api base-image ferretdb

test: test-app

test-app: venv ## Service checks: ruff, then pytest tests/app against FerretDB and Docker
	ruff check $(APP_PY)
	ruff format --check $(APP_PY)
	@# Build (or find cached) FerretDB before pytest, so no test's timeout pays for it.
	scripts/ferretdb.sh build
	@rc=0; pytest tests/app $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "test-app: pytest collected no tests" >&2; fi; \
	exit $$rc

bench-api: venv ## Benchmark POST /data and GET /data over HTTP against raw pymongo and a bare WSGI floor (BENCH_DURATION, BENCH_ROUNDS, BENCH_CLIENTS)
	python bench/bench_api.py --duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS) --clients $(BENCH_CLIENTS)

base-image: venv ## Build the local base image for the Dockerfile (starts a Docker engine if needed)
	scripts/docker-engine.sh ensure
	BASE_IMAGE=$(BASE_IMAGE) scripts/build-base-image.sh

ferretdb: venv ## Build FerretDB into the binary cache (nothing rebuilt when cached)
	scripts/ferretdb.sh build
