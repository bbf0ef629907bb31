# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine:
# they install uv if it is missing, then the locked environment (uv sync --frozen).
SHELL := /bin/bash
export UV_COMPILE_BYTECODE := 1
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: bootstrap sync demo test test-slow check lint ui up bench clean

bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: bootstrap
	$(UV) sync --frozen

demo: sync  ## land Jan-Feb 2013, materialize the whole graph, print where to look
	$(UV) run ml-assets demo

test: sync  ## the fast test suite (no slow end-to-end tests)
	$(UV) run pytest -q

test-slow: sync  ## slow end-to-end tests (whole pipeline over several days)
	$(UV) run pytest -q -m slow

check: sync  ## definitions load and validate, lint
	$(UV) run dg check defs
	$(UV) run ruff check ml_assets ml_assets_tests bench
	$(UV) run ruff format --check ml_assets ml_assets_tests bench

ui: sync  ## the Dagster UI on the project's instance: http://127.0.0.1:3000
	DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true $(UV) run dagster dev -h 127.0.0.1 -p 3000

up: sync  ## webserver + daemon (ml-assets up): http://127.0.0.1:3000 once healthy; Ctrl-C stops both
	$(UV) run ml-assets up --host 127.0.0.1 --port 3000

bench: sync  ## Dagster vs plain Python on the same work
	$(UV) run python bench/bench_pipeline.py

clean:
	rm -rf .dagster_home .lake .landing .tmp_dagster_home_*
