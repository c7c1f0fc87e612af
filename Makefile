# EcoMap Xiamen — the two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help run test stop db setup lint bench bench-auth bench-generalize bench-monitoring bench-rls bench-scaleout clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: ## Install what is missing (apt packages, .venv, frontend build)
	@scripts/bootstrap.sh

run: setup ## Set up and serve the map on http://$${HOST:-127.0.0.1}:$${PORT:-8000}
	@scripts/run.sh

test: ## Set up and run the whole test suite against a real PostGIS and Chromium
	@scripts/bootstrap.sh --test
	@scripts/pgcluster.sh start
	@.venv/bin/pytest $(PYTEST_ARGS)

db: ## Start the local PostGIS cluster only
	@scripts/pgcluster.sh start

stop: ## Stop the local PostGIS cluster
	@scripts/pgcluster.sh stop

lint: ## Lint and check formatting
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: ## Run the benchmarks (see bench/README.md); results in bench/results/
	@scripts/bootstrap.sh --test
	@scripts/pgcluster.sh start
	@[ -x .bench-venv/bin/python ] || (python3 -m venv .bench-venv && .bench-venv/bin/pip install -q "tipg==1.6.1" "asyncpg==0.32.0" "uvicorn[standard]==0.54.0")
	@.venv/bin/python -m bench.tiles_bench

bench-auth: ## Tile throughput with a bearer token against anonymous (bench/results/auth_tiles.md)
	@scripts/bootstrap.sh --test
	@scripts/pgcluster.sh start
	@.venv/bin/python -m bench.auth_tiles_bench

bench-rls: ## Row-level security for area-scoped reads against the scope's SQL (bench/results/rls.md)
	@scripts/bootstrap.sh --test
	@scripts/pgcluster.sh start
	@.venv/bin/python -m bench.rls_bench

bench-generalize: ## Incremental generalization of one edit vs the full recomputation (bench/results/generalize.md)
	@scripts/pgcluster.sh start
	@.venv/bin/python -m bench.generalize_bench $(BENCH_ARGS)

bench-monitoring: ## Observation ingest and 100 M-row store benchmarks (bench/README.md); results in bench/results/
	@scripts/bootstrap.sh --test
	@scripts/pgcluster.sh start
	@.venv/bin/python -m bench.ingest_bench
	@.venv/bin/python -m bench.observations_bench $(BENCH_ARGS)

bench-scaleout: ## nginx + Varnish over two instances vs one, purge to fresh, replica vs primary (bench/results/scaleout.md)
	@scripts/bootstrap.sh --test
	@scripts/pgcluster.sh start
	@.venv/bin/python -m bench.scaleout_bench $(BENCH_ARGS)

clean: stop ## Stop the database and remove local state (.data, .venv, frontend build)
	rm -rf .data .venv frontend/node_modules frontend/dist
