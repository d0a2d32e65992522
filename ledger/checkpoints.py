"""Checkpoints: signed by the log key at the tree's size, each extending the one before.

Appends ask for one when they commit (debounced, as a background task); the
publication itself refuses to sign a tree that does not extend the latest checkpoint.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from ledger import published
from ledger.core import merkle
from ledger.core.note import Checkpoint as Body
from ledger.core.note import NoteError, Verifier, key_id, open_checkpoint, sign_note
from ledger.errors import LedgerError
from ledger.keys import HostedKeyError, hosted_signer, log_key_for_size
from ledger.models import Checkpoint
from ledger.proofs import consistency_proof, root_at, tree_size

# The log's messages, appends and checkpoints alike, go to one logger.
log = logging.getLogger("ledger.log")


def request_checkpoint() -> None:
    """After a commit: ask for a checkpoint, at most one pending at a time."""
    from django.conf import settings
    from django.core.cache import cache

    from ledger.tasks import publish_checkpoint

    if not settings.LEDGER_PUBLISH_ON_APPEND:
        return
    debounce = settings.LEDGER_CHECKPOINT_DEBOUNCE
    try:
        if cache.add("ledger:checkpoint-pending", 1, timeout=debounce + 60):
            try:
                publish_checkpoint.apply_async(countdown=debounce)
            except Exception:
                cache.delete("ledger:checkpoint-pending")
                raise
    except Exception:
        # The scheduled publication will cover these entries; an unreachable broker
        # or cache must not fail a write that has already committed.
        log.exception("could not queue a checkpoint publication")


def publish_checkpoint() -> Checkpoint | None:
    """Sign and store a checkpoint at the current tree size, if it has grown.

    Refuses to sign a tree that is not an extension of the latest checkpoint: that
    would mean stored history changed, and the log must never sign a fork. The signer
    is the log key for the size (the one valid at index ``size``): after a rotation,
    the new key.
    """
    size = tree_size()
    # Never sign from a database behind (or not a prefix of) what was already published:
    # a restored old backup would fork the log (ledger.published, docs/backups.md).
    published.refuse_if_behind(size)
    latest = Checkpoint.objects.order_by("-tree_size").first()
    if latest is not None:
        _check_latest(latest, size)
    if size == 0 or (latest is not None and latest.tree_size == size):
        return None
    key = log_key_for_size(size)
    if key is None:
        raise HostedKeyError(f"no log key is valid for a checkpoint of size {size}")
    signer = hosted_signer(key.fingerprint)
    root = root_at(size)
    if latest is not None:
        proof = consistency_proof(latest.tree_size, size)
        try:
            merkle.verify_consistency(latest.tree_size, size, bytes(latest.root_hash), root, proof)
        except merkle.ProofError as exc:
            raise LedgerError(
                f"refusing to sign size {size}: not consistent with the checkpoint at "
                f"size {latest.tree_size} ({exc})"
            ) from exc
    note = sign_note(Body(signer.name, size, root).body(), signer.note_signer())
    try:
        with transaction.atomic():
            cp = Checkpoint.objects.create(
                tree_size=size, root_hash=root, note=note, published_at=datetime.now(UTC)
            )
            # Kept outside the database before the commit makes the row visible (why a
            # failed commit cannot block the log: ledger.published.record_published).
            published.record_published(note)
    except IntegrityError:
        # Another publisher signed this size first; the note is identical
        # (Ed25519 signatures are deterministic).
        return Checkpoint.objects.get(tree_size=size)
    request_cosignatures(cp)
    return cp


def request_cosignatures(cp: Checkpoint) -> None:
    """After a publication: send the checkpoint to the registered witnesses (a task; run
    here, before publication returns, when tasks are eager)."""
    from ledger.cosign.models import Witness
    from ledger.tasks import collect_cosignatures

    if not Witness.objects.filter(retired_in__isnull=True).exists():
        return
    try:
        collect_cosignatures.delay(cp.tree_size)
    except Exception:
        if getattr(collect_cosignatures.app.conf, "task_always_eager", False):
            raise
        # The scheduled collection will ask for it; a broker that is down must not fail
        # a checkpoint that is signed and stored.
        log.exception("could not queue the collection of cosignatures")


def _check_latest(latest: Checkpoint, size: int) -> None:
    """Never build on a checkpoint this log did not sign (under the log key for its
    size), nor on one ahead of the tree."""
    key = log_key_for_size(latest.tree_size)
    if key is None:
        raise LedgerError(f"no log key is valid for the checkpoint at size {latest.tree_size}")
    public_key = bytes(key.public_key)
    verifier = Verifier(key.name, key_id(key.name, public_key), public_key)
    try:
        signed = open_checkpoint(latest.note, verifier, origin=key.name)
    except NoteError as exc:
        raise LedgerError(
            f"the stored checkpoint at size {latest.tree_size} is not the log's: {exc}"
        ) from exc
    if (signed.size, signed.root) != (latest.tree_size, bytes(latest.root_hash)):
        raise LedgerError(f"the stored checkpoint at size {latest.tree_size} differs from its note")
    if latest.tree_size > size:
        raise LedgerError(
            f"the latest checkpoint is at size {latest.tree_size} but the tree has {size} entries"
        )


def latest_checkpoint() -> Checkpoint | None:
    """The latest checkpoint within the tree (one beyond it would not be the log's)."""
    return Checkpoint.objects.filter(tree_size__lte=tree_size()).order_by("-tree_size").first()
