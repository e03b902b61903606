# Two commands: `make run` starts the bot, `make test` runs the whole suite.
# Both create .venv and install the project on first use, from the hash-checked
# lock files (`make lock` re-resolves them from pyproject.toml).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# One resolution valid for every Python >= 3.11 and every platform (the Docker
# image runs 3.13, CI and developers 3.11+); the dev lock is constrained to the
# runtime one so both pin the same versions. LOCK_FLAGS=--upgrade re-resolves
# everything to the newest allowed; by default the current pins are kept.
LOCK   := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
          --generate-hashes --quiet $(LOCK_FLAGS)

.PHONY: run test lint typecheck bench clean lock digest-preview pgbouncer

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/socialops run

# The storage and job-engine tests also run through PgBouncer in transaction mode
# (tests/pgbouncer.py). Without it, install Debian's package (as root, or with sudo).
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || test -n "$$PGBOUNCER" || { \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$sudo apt-get install -y --no-install-recommends pgbouncer \
	  || { $$sudo apt-get update -q && $$sudo apt-get install -y --no-install-recommends pgbouncer; }; }

test: $(STAMP) pgbouncer
	$(BIN)/ruff check bot agent integrations storage tests bench
	$(BIN)/ruff format --check bot agent integrations storage tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# A sample digest as a person sees it: the chart PNG and the Slack/Discord payloads.
digest-preview: $(STAMP)
	$(BIN)/socialops digest-preview --out .socialops/preview

lint: $(STAMP)
	$(BIN)/ruff check bot agent integrations storage tests bench
	$(BIN)/ruff format --check bot agent integrations storage tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Every bench runs even when one misses its target (each says so and exits 1); their
# figures land in bench/results.json, from which the README's table is rewritten
# (bench/_*.py are helpers the benches share, not benches).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	status=0; for f in bench/[!_]*.py; do \
	  [ $$f = bench/results.py ] || $(BIN)/python $$f || status=1; \
	done; $(BIN)/python bench/results.py && exit $$status

lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -c requirements.lock -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
