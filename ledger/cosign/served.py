"""The checkpoint the log serves to its clients: the newest that meets the adopted
witness policy, with every cosignature kept for it appended to the note (C2SP
tlog-cosignature: cosignatures are further signature lines of the checkpoint's note).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from ledger.checkpoints import latest_checkpoint
from ledger.cosign.models import Cosignature, Witness
from ledger.cosign.registry import witness_policy_text
from ledger.models import Checkpoint, Key
from ledger.proofs import tree_size

# How many of the newest cosigned checkpoints are tried against the policy.
SCAN = 64


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint and its note with the cosignatures appended.

    ``meets_policy``: the note meets the adopted policy (with no policy adopted, every
    checkpoint does). When no checkpoint meets it, ``checkpoint`` is the latest the log
    signed, ``meets_policy`` is false, ``why`` says what the policy missed and
    ``missing`` names the active registered witnesses that have not cosigned it;
    ``fail_open`` says whether the setting lets it be served anyway.
    """

    checkpoint: Checkpoint
    note: str
    meets_policy: bool
    policy: str | None = None
    cosigned_by: tuple[str, ...] = ()
    why: str = ""
    missing: tuple[str, ...] = ()
    fail_open: bool = False


def cosigned_note(checkpoint: Checkpoint) -> str:
    """The checkpoint's note with the cosignature lines kept for it, by witness name."""
    lines = Cosignature.objects.filter(checkpoint=checkpoint).order_by("witness", "key_id")
    return checkpoint.note + "".join(c.line for c in lines)


def cosigned_checkpoint() -> CosignedCheckpoint | None:
    """The newest checkpoint that meets the adopted policy, or (see
    :class:`CosignedCheckpoint`) the latest with ``meets_policy`` false; ``None`` when
    the log has published no checkpoint."""
    latest = latest_checkpoint()
    if latest is None:
        return None
    text = witness_policy_text()
    if text is None:
        return CosignedCheckpoint(latest, cosigned_note(latest), True)
    from ledger.core.policy import parse_policy

    policy = parse_policy(text)
    # The origin is the log key's name, what the checkpoints' first line says; the log's
    # key is trusted beside any the policy lists (tlog-policy may leave logs out).
    log_key = Key.objects.filter(kind=Key.Kind.LOG).first()
    origin, log_vkeys = log_key.name, (log_key.verifier_key,)
    candidates = (
        Checkpoint.objects.filter(tree_size__lte=tree_size(), cosignatures__isnull=False)
        .distinct()
        .order_by("-tree_size")[:SCAN]
    )
    for cp in candidates:
        note = cosigned_note(cp)
        result = policy.check(note, origin, log_vkeys=log_vkeys)
        if result.ok:
            return CosignedCheckpoint(
                cp, note, True, text, cosigned_by=tuple(sorted(result.cosigned_by))
            )
    note = cosigned_note(latest)
    result = policy.check(note, origin, log_vkeys=log_vkeys)
    done = set(Cosignature.objects.filter(checkpoint=latest).values_list("witness", flat=True))
    active = Witness.objects.filter(retired_in__isnull=True).values_list("name", flat=True)
    return CosignedCheckpoint(
        latest,
        note,
        False,
        text,
        cosigned_by=tuple(sorted(result.cosigned_by)),
        why=result.why,
        missing=tuple(sorted(set(active) - done)),
        fail_open=settings.LEDGER_WITNESS_FAIL_OPEN,
    )
