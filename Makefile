# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint schema bench bench-quick verifier witness clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Set everything up and start the system with demo data on SQLite at http://127.0.0.1:8000
demo: install
	env -u DATABASE_URL -u CELERY_BROKER_URL DEBUG=1 $(PY) manage.py migrate --noinput
	env -u DATABASE_URL -u CELERY_BROKER_URL DEBUG=1 $(PY) manage.py demo
	env -u DATABASE_URL -u CELERY_BROKER_URL DEBUG=1 LEDGER_WITNESS_FAIL_OPEN=1 $(PY) manage.py runserver 127.0.0.1:8000

## Run the whole test suite (SQLite unless DATABASE_URL names PostgreSQL)
test: install node_modules/.package-lock.json
	$(PY) -m pytest $(PYTEST_ARGS)

# axe-core for the browser journeys (tests/browser), at the version package-lock.json pins;
# without npm the journeys say what is missing (and Chromium: apt-get install chromium).
node_modules/.package-lock.json: package-lock.json
	-command -v npm >/dev/null 2>&1 && npm ci --no-audit --no-fund --loglevel=error

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

schema: install
	DEBUG=1 $(PY) manage.py spectacular --validate --fail-on-warn --file $(or $(OUT),var/openapi.yaml)

## The offline verifier as one file, for any Python 3.11+ with PyNaCl: dist/consortium-verify.pyz
verifier:
	$(PYTHON) scripts/build_verifier.py

## A member's witness as one file, for any Python 3.11+ with PyNaCl: dist/consortium-witness.pyz
witness:
	$(PYTHON) scripts/build_witness.py

## Benchmarks on PostgreSQL (see docs/performance.md); bench-quick: small sizes, a smoke test
# They speak plain HTTP on loopback, as an app server behind a TLS-terminating proxy hears
# it: no redirect to HTTPS (production's default when DEBUG is off).
bench bench-quick: export SECURE_SSL_REDIRECT = 0
bench: install
	$(PY) bench/ledger_bench.py
	$(PY) bench/contributions_bench.py
	$(PY) bench/downloads_bench.py
	$(PY) bench/audit_bench.py
	$(PY) bench/witness_bench.py
	$(PY) bench/mirror_bench.py
	$(PY) bench/tiles_bench.py
	$(PY) bench/cosign_bench.py
	$(PY) bench/admin_pages_bench.py
	$(PY) bench/restore_drill_bench.py
	$(PY) bench/read_bench.py
	$(PY) bench/load_mix.py

bench-quick: install
	$(PY) bench/ledger_bench.py --quick
	$(PY) bench/contributions_bench.py --quick
	$(PY) bench/downloads_bench.py --quick
	$(PY) bench/audit_bench.py --quick
	$(PY) bench/witness_bench.py --quick
	$(PY) bench/mirror_bench.py --quick
	$(PY) bench/tiles_bench.py --quick
	$(PY) bench/cosign_bench.py --quick
	$(PY) bench/admin_pages_bench.py --quick
	$(PY) bench/restore_drill_bench.py --quick
	$(PY) bench/read_bench.py --quick
	$(PY) bench/load_mix.py --quick

clean:
	rm -rf $(VENV) var/*.sqlite3* .pytest_cache dist
