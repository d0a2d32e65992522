"""Loaded by pytest before Django (see addopts): the environment the tests run in.

Secrets are fresh for each run; DATABASE_URL and CELERY_BROKER_URL come from the
caller (the Makefile runs the suite against SQLite by default and PostgreSQL in CI).
"""

import os
import secrets
import tempfile

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("LEDGER_KEK", secrets.token_bytes(32).hex())
os.environ.setdefault("LEDGER_ORIGIN", "test.ledger.example")
os.environ["DEBUG"] = "0"
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="consortium-media-"))
os.environ.setdefault("TILES_ROOT", tempfile.mkdtemp(prefix="consortium-tlog-"))
# The suite's databases come and go under one tiles directory; the tests of the tiles
# writer turn it on with a directory of their own (tests/ledger/test_tile_store.py).
os.environ.setdefault("LEDGER_TILES_WRITE", "0")
# The suite's witnesses run on 127.0.0.1; tests/ledger/test_witness_egress.py turns this
# off to check the guard against requests to the server's own networks.
os.environ.setdefault("LEDGER_WITNESS_ALLOW_PRIVATE", "1")
# The test client speaks plain HTTP with DEBUG off: no redirect to HTTPS (production's
# default; tests/web/test_csp_and_deploy.py checks that default in a child process).
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
# The invalid-bearer-token throttle counts per address in the cache, which lives as long
# as the test process: tests/web/test_token_throttle.py sets its own limit.
os.environ.setdefault("API_TOKEN_FAILURE_LIMIT", "100000")
# Work handed to the background runs inside the request in the suite, as Celery's eager
# mode does; the tests of the worker thread turn it on (tests/web/test_background.py).
os.environ.setdefault("BACKGROUND_THREADS", "0")
# The suite's servers are other processes (gunicorn, uvicorn, manage.py) asked right after
# the test process changes what they read: a token's decision is not kept between reads
# (tests/governance/test_token_auth_queries.py turns it on), and no connection outlives
# its request, so that in-process servers' threads leave none open when the session drops
# its PostgreSQL database.
os.environ.setdefault("API_TOKEN_CACHE_SECONDS", "0")
os.environ.setdefault("CONN_MAX_AGE", "0")
