"""Data: datasets a member contributes, known by their manifest hash (their bytes need
never leave the member), with their licence and the data use they allow.

Entry kind, with its applier:

``data.contributed`` (the member's key)
    ``{"contribution": uuid, "dataset": {name, description, manifest_sha256, size_bytes,
    files, tokens, records, licence, duo: {permission, modifiers}, residency,
    access_mode}}``
"""

from __future__ import annotations

import uuid

from consortium.governance.changes import GovernanceError
from consortium.governance.terms import check_data_use
from consortium.governance.validators import SHA256_RE
from contributions.balances import tally_added
from contributions.common import (
    member_key_owner,
    new_contribution,
    new_contribution_id,
    refuse,
    submitting_recorder,
    text,
)
from contributions.licences import LicenceError, canonical
from contributions.models import Contribution
from ledger import services as ledger
from ledger.core.envelope import parse_time
from ledger.services import Appended, applier


def _count(value, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise GovernanceError(f"{path}: a whole number, 0 or more")
    return value


def licence(value, path: str = "licence") -> str:
    """An SPDX licence id or expression, in its canonical form (MIT, CC-BY-4.0,
    LicenseRef-NLOD-2.0, GPL-2.0-only WITH Classpath-exception-2.0, ...)."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise GovernanceError(f"{path}: an SPDX licence id such as CC-BY-4.0")
    try:
        written = canonical(value)
    except LicenceError as exc:
        raise GovernanceError(f"{path}: {exc}") from exc
    if written != value:
        raise GovernanceError(f"{path}: write it as SPDX does: {written}")
    return value


def dataset_record(dataset) -> dict:
    """A checked dataset description for ``data.contributed``."""
    fields = {
        "name",
        "description",
        "manifest_sha256",
        "size_bytes",
        "files",
        "tokens",
        "records",
        "licence",
        "duo",
        "residency",
        "access_mode",
    }
    if not isinstance(dataset, dict):
        raise GovernanceError("dataset: an object")
    optional = {"records", "tokens", "residency"}
    missing, unknown = fields - optional - set(dataset), set(dataset) - fields
    if missing:
        raise GovernanceError(f"dataset: missing {', '.join(sorted(missing))}")
    if unknown:
        raise GovernanceError(f"dataset: unknown field {', '.join(sorted(unknown))}")
    text(dataset["name"], "dataset.name", 200)
    text(dataset["description"], "dataset.description", required=False)
    digest = dataset["manifest_sha256"]
    if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
        raise GovernanceError("dataset.manifest_sha256: 64 lowercase hex digits")
    for field in ("size_bytes", "files"):
        _count(dataset[field], f"dataset.{field}")
    if "tokens" not in dataset and "records" not in dataset:
        raise GovernanceError("dataset: give its tokens or its records (or both)")
    for field in ("tokens", "records"):
        if field in dataset:
            _count(dataset[field], f"dataset.{field}")
    licence(dataset["licence"], "dataset.licence")
    duo = dataset["duo"]
    if not isinstance(duo, dict) or set(duo) != {"permission", "modifiers"}:
        raise GovernanceError("dataset.duo: {permission, modifiers}")
    use = {**duo, "access_mode": dataset["access_mode"]}
    if "residency" in dataset:
        use["residency"] = dataset["residency"]
    check_data_use(use, "dataset", "dataset.duo")
    return dataset


def data_contribute(*, actor, dataset: dict, idempotency_key: str | None = None) -> Contribution:
    """Record a dataset the actor's member contributes (its recorder or signatory): known
    by its manifest hash; its bytes need never leave the member."""
    return new_contribution(
        actor, idempotency_key, "data.contributed", {"dataset": dataset_record(dataset)}
    )


@applier("data.contributed")
def apply_data(entry: Appended) -> None:
    member = member_key_owner(entry)
    if member is None or Contribution.objects.filter(id=entry.payload["contribution"]).exists():
        return
    d = entry.payload["dataset"]
    made = Contribution.objects.create(
        id=uuid.UUID(entry.payload["contribution"]),
        kind=Contribution.Kind.DATA,
        member_id=member,
        state=Contribution.State.COUNTED,
        recorded_in=entry.index,
        recorded_at=entry.integrated_time,
        dataset=d,
        tokens=d.get("tokens"),
        delivered_on=parse_time(entry.integrated_time).date(),
    )
    tally_added([made])


# --- entries signed by their authors' own keys (POST /api/v1/ledger/entries) -------------------


@ledger.accepts("data.contributed")
def _submitted_data(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    submitting_recorder(key, submitter)
    if set(payload) != {"contribution", "dataset"}:
        raise ledger.Refused("data.contributed payload is {contribution, dataset}")
    new_contribution_id(payload)
    refuse(dataset_record, payload["dataset"])
