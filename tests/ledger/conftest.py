"""The ledger app's own tests run without the consortium's seats: there, every signed-in
user may read the ledger (the project's rule, a seat, is tested in tests/consortium)."""

import pytest


def any_signed_in_user(user) -> bool:
    return user.is_active


@pytest.fixture(autouse=True)
def _ledger_readers(settings):
    settings.LEDGER_READER_CHECK = "tests.ledger.conftest.any_signed_in_user"
