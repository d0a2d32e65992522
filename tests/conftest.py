"""Fixtures shared by the whole suite.

Personas used across the tests: the *log operator* (holds the log key, signs
checkpoints and key registrations), a *partner system* (reads the API with a bearer
token) and an *outsider* (no credentials, or a bad token).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.models import ApiToken
from ledger import services
from ledger.keys import log_signer
from tests import worlds
from tests.ledger.helpers import wipe_database


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


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests log users in by the hundred; a slow hash only slows them down."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
    """A partner system's user and a valid bearer token for it."""
    user = get_user_model().objects.create_user("partner-jp", password="unused-pass-123")
    token, plaintext = ApiToken.issue(user=user, name="partner system of Japan", days=30)
    return user, token, plaintext
