"""The checkpoint the log serves to its clients: the newest that meets the adopted
witness policy, with every cosignature kept for it appended to the note (C2SP
tlog-cosignature: cosignatures are further signature lines of the checkpoint's note).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import router

from ledger.checkpoints import latest_checkpoint
from ledger.cosign.models import Cosignature, Witness, WitnessPolicy
from ledger.cosign.registry import witness_policy_text
from ledger.models import Checkpoint, Key, LogHead
from ledger.proofs import tree_size
from ledger.reads import reader

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


def _q(model) -> str:
    return model._meta.db_table


# Everything the answer depends on, in one statement: the log (its size and right edge,
# which change with every entry, adopted policies and witnesses included), the newest
# checkpoint, the cosignatures kept, the policies and the witnesses retired.
_STATE_SQL = (
    f"SELECT h.size, h.frontier,"
    f" (SELECT MAX(id) FROM {_q(Checkpoint)}),"
    f" (SELECT COUNT(*) FROM {_q(Cosignature)}), (SELECT MAX(id) FROM {_q(Cosignature)}),"
    f" (SELECT COUNT(*) FROM {_q(WitnessPolicy)}),"
    f" (SELECT MAX(adopted_in) FROM {_q(WitnessPolicy)}),"
    f" (SELECT COUNT(*) FROM {_q(Witness)}), (SELECT COUNT(retired_in) FROM {_q(Witness)})"
    f" FROM {_q(LogHead)} h WHERE h.id = 1"
)
# The last answer and the state it was computed from (one per process).
_memo: tuple[tuple, CosignedCheckpoint | None] | None = None


def _state() -> tuple:
    connection = reader()
    with connection.cursor() as cur:
        cur.execute(_STATE_SQL)
        row = cur.fetchone()
    settings_dict = connection.settings_dict
    where = (settings_dict.get("NAME"), settings_dict.get("HOST"), settings_dict.get("PORT"))
    row = tuple(bytes(v) if isinstance(v, memoryview) else v for v in row or ())
    return (where, settings.LEDGER_WITNESS_FAIL_OPEN, row)


def cosigned_checkpoint() -> CosignedCheckpoint | None:
    """The newest checkpoint that meets the adopted policy, or (see
    :class:`CosignedCheckpoint`) the latest with ``meets_policy`` false; ``None`` when
    the log has published no checkpoint.

    Checking up to ``SCAN`` checkpoints against the policy costs milliseconds, and every
    admin page asks while a policy is adopted: the answer is kept while the state it was
    computed from (one query) has not changed."""
    global _memo
    if router.db_for_read(Checkpoint) != reader().alias:
        return _cosigned_checkpoint()  # a replay's scratch database: never kept
    state = _state()
    memo = _memo
    if memo is not None and memo[0] == state:
        return memo[1]
    served = _cosigned_checkpoint()
    _memo = (state, served)
    return served


def _cosigned_checkpoint() -> CosignedCheckpoint | None:
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
