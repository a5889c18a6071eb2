# Two commands: `make run` and `make test`. Both set themselves up first.
PY := .venv/bin/python

.PHONY: setup run test test-unit test-integration test-e2e bench clean

setup:
	@bash scripts/bootstrap.sh

run: setup
	@$(PY) -m ops.launcher

test: setup
	@$(PY) -m pytest

test-unit: setup
	@$(PY) -m pytest tests/unit

test-integration: setup
	@$(PY) -m pytest tests/integration

test-e2e: setup
	@$(PY) -m pytest tests/e2e

bench: setup
	@$(PY) bench/worker_per_candle.py

clean:
	rm -rf var test-results .pytest_cache .hypothesis
