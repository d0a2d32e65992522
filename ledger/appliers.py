"""How the log's own entries change the key registry (the ``Key`` projection).

The keyring rules in ``ledger.core.keyring`` have already accepted the entry by the
time these run, inside the append's transaction.
"""

from __future__ import annotations

import base64

from ledger.log import Appended, applier
from ledger.models import Key
from ledger.replay import projection

projection(Key)


def _create(entry: Appended, desc: dict, valid_from: int) -> None:
    Key.objects.create(
        fingerprint=desc["fingerprint"],
        public_key=base64.b64decode(desc["public_key"]),
        kind=desc["kind"],
        owner=desc["owner"],
        custody=desc["custody"],
        name=desc["name"],
        registered_in=entry.index,
        valid_from=valid_from,
    )


@applier("log.genesis")
def apply_genesis(entry: Appended) -> None:
    _create(entry, entry.payload["key"], valid_from=0)


@applier("key.registered")
def apply_key_registered(entry: Appended) -> None:
    _create(entry, entry.payload["key"], valid_from=entry.index + 1)


@applier("key.rotated")
@applier("log.key_rotated")
def apply_key_rotated(entry: Appended) -> None:
    Key.objects.filter(fingerprint=entry.payload["fingerprint"]).update(revoked_at=entry.index)
    _create(entry, entry.payload["key"], valid_from=entry.index + 1)


@applier("key.revoked")
def apply_key_revoked(entry: Appended) -> None:
    Key.objects.filter(fingerprint=entry.payload["fingerprint"]).update(revoked_at=entry.index)
