"""The ledger's own tests run without the consortium's seats: there, every signed-in user
may read the ledger (the project's rule, a seat, is tested in tests/governance). A history
of entries, keys and checkpoints to export and verify."""

import pytest

from ledger import checkpoints, services
from ledger.keys import log_signer
from ledger.services import Draft


def any_signed_in_user(user) -> bool:
    return user.is_active


@pytest.fixture(autouse=True)
def _ledger_readers(settings):
    settings.LEDGER_READER_CHECK = "tests.ledger.conftest.any_signed_in_user"


@pytest.fixture
def history(sample_signer):
    """62 entries: samples, a second key registered, used and revoked, two checkpoints,
    and entries after the last checkpoint."""
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(30)]
    )
    checkpoints.publish_checkpoint()
    _, second = services.key_register(
        signer=log_signer(), kind="service", owner="second", name="second"
    )
    services.entries_append(
        signer=second, drafts=[Draft("test.sample", {"by": "second", "n": i}) for i in range(5)]
    )
    services.key_revoke(signer=log_signer(), fingerprint=second.fingerprint, reason="retired")
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(30, 45)]
    )
    checkpoints.publish_checkpoint()
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(45, 55)]
    )
    return {"second": second, "sample": sample_signer}
