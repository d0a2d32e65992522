"""Fixtures shared by the whole suite, declared once so that every directory may use them:
the database, the ledger's keys, the worlds of tests/personas.py (per test, or built once
for a module: tests/worlds.py), and a real Celery worker on a real broker.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis
from django.contrib.auth import get_user_model

from consortium.governance.models import ApiToken
from ledger import services
from ledger.services import log_signer
from tests import personas, worlds
from tests.steps.ledger import ROOT, child_env, wipe_database


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb):
    """Always create the test database, even when only ``committed_db`` tests run.

    pytest-django creates databases only for tests that ask for ``db`` or carry the
    marker; ``committed_db`` needs neither (it must avoid the flush at teardown, which
    the append-only triggers refuse).
    """
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=verbosity, interactive=False, keepdb=django_db_keepdb, aliases={"default"}
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=verbosity)


# --- the published checkpoint kept outside the database (ledger.published) ------------------
# Each module, and each test, publishes into a file of its own: a database rolled back or
# wiped between tests must not find itself behind the checkpoints of an earlier one.


@pytest.fixture(scope="module", autouse=True)
def published_file_per_module(tmp_path_factory):
    """The module's file; servers a module starts for all its tests are given it too."""
    from django.test import override_settings

    path = tmp_path_factory.mktemp("published") / "published-checkpoint"
    before = os.environ.get("LEDGER_PUBLISHED_PATH")
    os.environ["LEDGER_PUBLISHED_PATH"] = str(path)
    try:
        with override_settings(LEDGER_PUBLISHED_PATH=path):
            yield path
    finally:
        if before is None:
            os.environ.pop("LEDGER_PUBLISHED_PATH", None)
        else:
            os.environ["LEDGER_PUBLISHED_PATH"] = before


@pytest.fixture(autouse=True)
def published_file(published_file_per_module, tmp_path_factory, settings, monkeypatch):
    """This test's file; child processes started by the test are given it too."""
    path = tmp_path_factory.mktemp("published") / "published-checkpoint"
    settings.LEDGER_PUBLISHED_PATH = path
    monkeypatch.setenv("LEDGER_PUBLISHED_PATH", str(path))
    return path


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests log users in by the hundred; a slow hash only slows them down."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's ``admin_client``, signed in past the second factor (tests/steps/signin.py)."""
    from tests.steps.signin import sign_in

    return sign_in(client, admin_user)


@pytest.fixture
def log_key(db):
    """An initialised ledger (genesis entry at index 0); the log key's signer."""
    services.ledger_init()
    return log_signer()


@pytest.fixture
def sample_signer(log_key):
    """A hosted service key registered at index 1 (so it may sign from index 2)."""
    _, signer = services.key_register(
        signer=log_key, kind="service", owner="sampler", name="sampler"
    )
    return signer


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Real commits, visible to other processes; wiped afterwards despite the triggers."""
    if worlds.is_open():
        pytest.fail("a test that commits cannot run in a module sharing a world (tests/worlds.py)")
    with django_db_blocker.unblock():
        wipe_database()
        yield
        wipe_database()


@pytest.fixture
def committed_signer(committed_db):
    """Like ``sample_signer``, but committed: other processes and threads see it."""
    services.ledger_init()
    _, signer = services.key_register(
        signer=log_signer(), kind="service", owner="writers", name="writers"
    )
    return signer


@pytest.fixture
def partner(db):
    """A partner system's user and a valid bearer token for it: it authenticates, holds no
    seat, and so reads nothing of the consortium."""
    user = get_user_model().objects.create_user("partner-jp", password="unused-pass-123")
    token, plaintext = ApiToken.issue(user=user, name="partner system of Japan", days=30)
    return user, token, plaintext


# --- the worlds of tests/personas.py ----------------------------------------------------------


@pytest.fixture
def delegates(db):
    """The governance world's people by username (tests/personas.py)."""
    return personas.found_delegates()


@pytest.fixture(scope="module")
def delegates_world(django_db_setup, django_db_blocker):
    """``delegates``, built once for a module that shares it
    (``delegates = worlds.shared("delegates")``)."""
    with worlds.kept_for_the_module(django_db_blocker):
        yield personas.found_delegates()


@pytest.fixture
def lumi(db):
    """The LUMI world: its people and the facility (tests/personas.py)."""
    return personas.found_lumi()


@pytest.fixture(scope="module")
def lumi_world(django_db_setup, django_db_blocker):
    """``lumi``, built once for a module that shares it (``lumi = worlds.shared("lumi")``)."""
    with worlds.kept_for_the_module(django_db_blocker):
        yield personas.found_lumi()


@pytest.fixture
def checkpoint(lumi, tmp_path, request):
    """A checkpoint published in ``lumi`` (``personas.publish``); a test parametrized
    indirectly gives the treaty's ``release`` terms."""
    return personas.publish(lumi, tmp_path, getattr(request, "param", None))


@pytest.fixture(scope="module")
def published_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """``lumi`` and its ``checkpoint``, built once for a module that shares them."""
    with worlds.kept_for_the_module(django_db_blocker):
        lumi = personas.found_lumi()
        yield {
            "lumi": lumi,
            "checkpoint": personas.publish(lumi, tmp_path_factory.mktemp("weights")),
        }


# --- a real Celery worker ---------------------------------------------------------------------

BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def broker():
    """The Redis broker the worker and the writers share, emptied before and after."""
    client = redis.Redis.from_url(BROKER)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        reason = (
            f"needs Redis at {BROKER} for a real Celery worker ({exc}); start one, or run "
            f"with CELERY_TEST_BROKER_URL=redis://host:6379/15"
        )
        # CI starts Redis itself: there a missing broker is a failure, never a skip.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    client.flushdb()
    yield BROKER
    client.flushdb()


@pytest.fixture
def worker(broker, committed_db):
    """A Celery worker process on ``broker``; the environment a child process needs to
    reach it and the test database."""
    env = {**child_env(), "CELERY_BROKER_URL": broker, "LEDGER_CHECKPOINT_DEBOUNCE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "consortium",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield env
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
