"""Models, training runs and checkpoints on the ledger, and their provenance bundles.

Entry kinds, each with one applier (all signed by the secretariat key):

``model.registered``
    ``{"model": {"code", "name", "agreement"}}``: a model, under the agreement its weights
    are licensed by.
``training.recorded``
    ``{"run": uuid, "model", "name", "datasets": [manifest sha256], "compute":
    [contribution id]}``: the provenance of the weights.
``checkpoint.published``
    ``{"checkpoint": digest, "model", "name", "run": uuid | null, "files": [{path, size,
    sha256}]}``: ``digest`` is the SHA-256 of the files' manifest (the text format of
    ``contributions.manifest``), which the applier recomputes.
``checkpoint.blocked``
    ``{"checkpoint": digest, "reason"}``: a stored file no longer matches its hash (found
    by the re-verification task); downloads of the checkpoint stop.
``evaluator.accredited`` (with the log key registering the evaluator's external key)
    ``{"evaluator": {"code", "name"}}``
``evaluation.attested`` (an accredited evaluator's own key, submitted to
``POST /api/v1/ledger/entries``)
    ``{"checkpoint": digest, "report_sha256", "verdict": "pass" | "fail"}``: the latest
    attestation of a checkpoint is what its release gate reads.

A provenance bundle (``provenance_bundle``) lets anyone check a directory of downloaded
files offline against the log's verifier key: see ``ledger.provenance``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from consortium.access.models import Evaluation, ModelCheckpoint, TrainedModel, TrainingRun
from consortium.governance.changes import (
    GovernanceError,
    by_secretariat,
    idempotency,
    secretariat_only,
    secretariat_signer,
)
from consortium.governance.models import Agreement
from consortium.governance.validators import SHA256_RE, slug_pattern
from consortium.web import storage
from contributions import manifest as manifests
from contributions.models import Contribution
from ledger import services as ledger
from ledger.services import Appended, Entry, Key, applier, log_signer, projection

for _model in (TrainedModel, TrainingRun, ModelCheckpoint, Evaluation):
    projection(_model)

# Model and evaluator codes are kept in 64-character columns.
SLUG_RE = slug_pattern(64)
# A checkpoint's file list travels in one entry, whose leaf is at most 65,535 bytes (what a
# C2SP tlog-tiles entry bundle holds): at most this many files, and the list within
# ledger.MAX_PAYLOAD_BYTES (long paths fill it sooner). More files: pack them.
MAX_FILES = 400
BUNDLE_VERSION = 1


def manifest_text(files: list[dict]) -> bytes:
    """The manifest of ``files`` ([{path, size, sha256}]), as ``contributions.manifest``
    writes it: one ``path\\tsize\\tsha256`` line per file, sorted by the path's bytes."""
    ordered = sorted(files, key=lambda f: f["path"].encode())
    return b"".join(f"{f['path']}\t{f['size']}\t{f['sha256']}\n".encode() for f in ordered)


def manifest_digest(files: list[dict]) -> str:
    return hashlib.sha256(manifest_text(files)).hexdigest()


SECRETARIAT_ONLY = "the secretariat registers models and publishes checkpoints"


# --- appliers ------------------------------------------------------------------------------------


@applier("model.registered")
def apply_model_registered(entry: Appended) -> None:
    m = entry.payload["model"]
    if not by_secretariat(entry.author) or TrainedModel.objects.filter(code=m["code"]).exists():
        return
    if not Agreement.objects.filter(id=uuid.UUID(m["agreement"])).exists():
        return
    TrainedModel.objects.create(
        code=m["code"],
        name=m["name"],
        registered_in=entry.index,
        agreement_id=uuid.UUID(m["agreement"]),
    )


@applier("training.recorded")
def apply_training(entry: Appended) -> None:
    p = entry.payload
    if (
        not by_secretariat(entry.author)
        or not TrainedModel.objects.filter(code=p["model"]).exists()
    ):
        return
    if TrainingRun.objects.filter(id=uuid.UUID(p["run"])).exists():
        return
    TrainingRun.objects.create(
        id=uuid.UUID(p["run"]),
        model_id=p["model"],
        name=p["name"],
        datasets=p["datasets"],
        compute=p["compute"],
        recorded_in=entry.index,
    )


@applier("checkpoint.published")
def apply_published(entry: Appended) -> None:
    p = entry.payload
    if (
        not by_secretariat(entry.author)
        or not TrainedModel.objects.filter(code=p["model"]).exists()
    ):
        return
    if manifest_digest(p["files"]) != p["checkpoint"]:
        return  # the digest must be the files' manifest's: anyone can recompute it
    if ModelCheckpoint.objects.filter(digest=p["checkpoint"]).exists():
        return
    run = uuid.UUID(p["run"]) if p["run"] else None
    if run is not None and not TrainingRun.objects.filter(id=run, model_id=p["model"]).exists():
        return
    ModelCheckpoint.objects.create(
        digest=p["checkpoint"],
        model_id=p["model"],
        name=p["name"],
        run_id=run,
        files=sorted(p["files"], key=lambda f: f["path"].encode()),
        size=sum(f["size"] for f in p["files"]),
        published_in=entry.index,
    )


@applier("checkpoint.blocked")
def apply_blocked(entry: Appended) -> None:
    p = entry.payload
    if not by_secretariat(entry.author):
        return
    ModelCheckpoint.objects.filter(
        digest=p["checkpoint"], state=ModelCheckpoint.State.PUBLISHED
    ).update(
        state=ModelCheckpoint.State.BLOCKED,
        blocked_in=entry.index,
        blocked_reason=p["reason"][:300],
    )


@applier("evaluator.accredited")
def apply_accredited(entry: Appended) -> None:
    return  # the record is the entry itself; the key registration that follows is the role


@applier("evaluation.attested")
def apply_attested(entry: Appended) -> None:
    p = entry.payload
    key = Key.objects.filter(fingerprint=entry.author, kind="evaluator").first()
    if key is None or not ModelCheckpoint.objects.filter(digest=p["checkpoint"]).exists():
        return
    Evaluation.objects.create(
        id=entry.index,
        checkpoint_id=p["checkpoint"],
        evaluator=key.owner,
        report_sha256=p["report_sha256"],
        verdict=p["verdict"],
        attested_at=entry.integrated_time,
    )


# --- services -----------------------------------------------------------------------------------


def model_register(
    *, actor, code: str, name: str, agreement: Agreement, idempotency_key: str | None = None
) -> TrainedModel:
    """Register a model under an agreement (the secretariat; ``actor`` ``None``: console)."""
    secretariat_only(actor, SECRETARIAT_ONLY)
    if not isinstance(code, str) or not SLUG_RE.fullmatch(code):
        raise GovernanceError("code: 2-64 lowercase letters, digits and -")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise GovernanceError("name: 1-200 characters")
    if agreement.state not in (
        Agreement.State.IN_FORCE,
        Agreement.State.SIGNED,
        Agreement.State.OPEN,
    ):
        raise GovernanceError(f"the agreement is {agreement.state}", 409)
    payload = {"model": {"code": code, "name": name, "agreement": str(agreement.id)}}
    idem = idempotency(actor, idempotency_key)
    if idem.earlier("model.registered", payload):
        return TrainedModel.objects.get(code=code)
    with transaction.atomic(durable=True):
        if TrainedModel.objects.filter(code=code).exists():
            raise GovernanceError(f"model {code} exists already", 409)
        ledger.entry_append(
            signer=secretariat_signer(),
            entry_id=idem.entry_id,
            kind="model.registered",
            payload=payload,
        )
    return TrainedModel.objects.get(code=code)


def training_record(
    *,
    actor,
    model: TrainedModel,
    name: str,
    datasets: list,
    compute: list,
    idempotency_key: str | None = None,
) -> TrainingRun:
    """Record what a training run used: datasets (manifest hashes of recorded data
    contributions) and compute (ids of counted compute contributions)."""
    secretariat_only(actor, SECRETARIAT_ONLY)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise GovernanceError("name: 1-200 characters")
    if not isinstance(datasets, list) or not all(
        isinstance(d, str) and SHA256_RE.fullmatch(d) for d in datasets
    ):
        raise GovernanceError("datasets: a list of manifest SHA-256 digests")
    recorded = set(
        Contribution.objects.filter(kind="data", state="counted").values_list(
            "dataset__manifest_sha256", flat=True
        )
    )
    unknown = [d for d in datasets if d not in recorded]
    if unknown:
        raise GovernanceError(f"datasets: no counted data contribution has manifest {unknown[0]}")
    if not isinstance(compute, list) or not all(isinstance(c, str) for c in compute):
        raise GovernanceError("compute: a list of compute contribution ids")
    known = {
        str(c)
        for c in Contribution.objects.filter(
            kind="compute", state="counted", id__in=[c for c in compute if _is_uuid(c)]
        ).values_list("id", flat=True)
    }
    missing = [c for c in compute if c not in known]
    if missing:
        raise GovernanceError(f"compute: {missing[0]!r} is no counted compute contribution")
    idem = idempotency(actor, idempotency_key)
    payload = {
        "run": str(idem.new_id()),
        "model": model.code,
        "name": name,
        "datasets": sorted(set(datasets)),
        "compute": sorted(set(compute)),
    }
    if idem.earlier("training.recorded", payload):
        return TrainingRun.objects.get(id=payload["run"])
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=secretariat_signer(),
            entry_id=idem.entry_id,
            kind="training.recorded",
            payload=payload,
        )
    return TrainingRun.objects.get(id=payload["run"])


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def stored_path(digest: str, path: str) -> str:
    return f"checkpoints/{digest}/{path}"


def checkpoint_publish(
    *,
    actor,
    model: TrainedModel,
    name: str,
    directory: Path,
    run: TrainingRun | None = None,
    workers: int | None = None,
    progress=None,
) -> ModelCheckpoint:
    """Hash every file of ``directory`` (streaming, on every core), store the files
    behind Django's storage API, and publish the checkpoint's manifest digest."""
    secretariat_only(actor, SECRETARIAT_ONLY)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise GovernanceError("name: 1-200 characters")
    if run is not None and run.model_id != model.code:
        raise GovernanceError(f"run {run.id} trained {run.model_id}, not {model.code}")
    try:
        built = manifests.build(Path(directory), workers=workers, progress=progress)
    except (manifests.ManifestError, OSError) as exc:
        raise GovernanceError(str(exc)) from exc
    if not built.files:
        raise GovernanceError("the directory holds no file")
    if len(built.files) > MAX_FILES:
        raise GovernanceError(
            f"the directory holds {len(built.files)} files; a checkpoint has at most "
            f"{MAX_FILES} (its file list is one ledger entry): pack them into fewer files",
            413,
        )
    digest = built.root
    if ModelCheckpoint.objects.filter(digest=digest).exists():
        raise GovernanceError(f"checkpoint {digest} is published already", 409)
    files = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in built.files]
    listed = len(ledger.canonical({"files": files, "model": model.code, "name": name}))
    if listed + 200 > ledger.MAX_PAYLOAD_BYTES:  # 200: the digest, the run and their names
        raise GovernanceError(
            f"the file list of {len(files)} files takes {listed} bytes; a checkpoint's "
            f"entry holds at most {ledger.MAX_PAYLOAD_BYTES - 200}: use shorter paths or "
            "fewer files",
            413,
        )
    for f in built.files:
        target = stored_path(digest, f.path)
        if default_storage.exists(target):
            default_storage.delete(target)  # a copy from an attempt that did not publish
        with open(Path(directory) / f.path, "rb") as handle:
            default_storage.save(target, File(handle, name=f.path))
    payload = {
        "checkpoint": digest,
        "model": model.code,
        "name": name,
        "run": str(run.id) if run else None,
        "files": files,
    }
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=secretariat_signer(), kind="checkpoint.published", payload=payload
        )
        # Re-read what storage holds once the publication is committed.
        transaction.on_commit(lambda: _verify_later(digest))
    return ModelCheckpoint.objects.get(digest=digest)


def evaluator_accredit(*, actor, code: str, name: str, public_key: bytes) -> Key:
    """Accredit an evaluator (the secretariat): its external key, registered by the log
    key, is what makes its attestations count."""
    secretariat_only(actor, SECRETARIAT_ONLY)
    if not isinstance(code, str) or not SLUG_RE.fullmatch(code):
        raise GovernanceError("code: 2-64 lowercase letters, digits and -")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise GovernanceError("name: 1-200 characters")
    with transaction.atomic(durable=True):
        if Key.objects.filter(kind="evaluator", owner=code, revoked_at__isnull=True).exists():
            raise GovernanceError(f"evaluator {code} is accredited already", 409)
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="evaluator.accredited",
            payload={"evaluator": {"code": code, "name": name}},
        )
        entry, _ = ledger.key_register(
            signer=log_signer(),
            kind="evaluator",
            owner=code,
            name=f"evaluator-{code}",
            public_key=public_key,
        )
    return Key.objects.get(fingerprint=entry.payload["key"]["fingerprint"])


@ledger.accepts("evaluation.attested")
def _submitted_evaluation(signed, key, submitter) -> None:
    # The evaluator's signature is what counts: any seat holder may carry it here.
    payload = signed.envelope["payload"]
    if set(payload) != {"checkpoint", "report_sha256", "verdict"}:
        raise ledger.Refused("evaluation.attested payload is {checkpoint, report_sha256, verdict}")
    if key.kind != "evaluator":
        raise ledger.Refused("only an accredited evaluator's key attests evaluations", 403)
    if payload["verdict"] not in ("pass", "fail"):
        raise ledger.Refused("verdict is pass or fail")
    for field in ("checkpoint", "report_sha256"):
        if not isinstance(payload[field], str) or not SHA256_RE.fullmatch(payload[field]):
            raise ledger.Refused(f"{field} is a SHA-256 (64 lowercase hex digits)")
    if not ModelCheckpoint.objects.filter(digest=payload["checkpoint"]).exists():
        raise ledger.Refused("no such checkpoint", 404)


def _verify_later(digest: str) -> None:
    from consortium.access.tasks import verify_checkpoints
    from consortium.web import background

    background.later(verify_checkpoints, digest)


def checkpoints_verify(digest: str | None = None) -> dict[str, list[str]]:
    """Re-hash the stored files of published checkpoints (one, or all); block each one
    whose files no longer match, with a ``checkpoint.blocked`` entry naming them."""
    qs = ModelCheckpoint.objects.filter(state=ModelCheckpoint.State.PUBLISHED)
    if digest:
        qs = qs.filter(digest=digest)
    blocked: dict[str, list[str]] = {}
    for cp in qs:
        bad = verify_stored(cp)
        if not bad:
            continue
        with transaction.atomic(durable=True):
            locked = ModelCheckpoint.objects.select_for_update().get(digest=cp.digest)
            if locked.state != ModelCheckpoint.State.PUBLISHED:
                continue
            ledger.entry_append(
                signer=secretariat_signer(),
                kind="checkpoint.blocked",
                payload={"checkpoint": cp.digest, "reason": "; ".join(bad)[:300]},
            )
        blocked[cp.digest] = bad
    return blocked


# --- provenance bundles ---------------------------------------------------------------------------


def _proven(index: int, size: int) -> dict:
    leaf = bytes(Entry.objects.get(index=index).leaf)
    proof = ledger.inclusion_proof(index, size)
    return {
        "index": index,
        "leaf": base64.b64encode(leaf).decode(),
        "proof": [base64.b64encode(h).decode() for h in proof],
    }


def provenance_bundle(checkpoint: ModelCheckpoint) -> dict:
    """What an offline verifier needs: the manifest, the ``checkpoint.published`` entry
    and the registration of the key that signed it (signed by the log key), the log's
    genesis and log key rotations, each with an inclusion proof, and the signed
    checkpoint of the log they are proven against: the one served as cosigned, with its
    witnesses' cosignatures, when it covers the publication."""
    covering = ledger.checkpoint_covering(checkpoint.published_in + 1)
    if covering is None:
        raise GovernanceError("no signed checkpoint covers this publication yet: try again", 409)
    latest, note = covering
    size = latest.tree_size
    published = Entry.objects.get(index=checkpoint.published_in)
    author = Key.objects.get(fingerprint=published.author)
    return {
        "version": BUNDLE_VERSION,
        "checkpoint": {
            "digest": checkpoint.digest,
            "model": checkpoint.model_id,
            "name": checkpoint.name,
        },
        "manifest": manifest_text(checkpoint.files).decode(),
        "note": note,
        "entries": {
            "published": _proven(checkpoint.published_in, size),
            "author_key": _proven(author.registered_in, size),
            # The genesis and the log key's rotations: which log key signed what.
            "log_keys": [
                _proven(index, size)
                for index in Entry.objects.filter(
                    kind__in=("log.genesis", "log.key_rotated"), index__lt=size
                )
                .order_by("index")
                .values_list("index", flat=True)
            ],
        },
    }


def verify_stored(checkpoint: ModelCheckpoint) -> list[str]:
    """The stored files that no longer match their manifest (streamed, re-hashed)."""
    bad = []
    for f in checkpoint.files:
        target = stored_path(checkpoint.digest, f["path"])
        if not default_storage.exists(target):
            bad.append(f"{f['path']}: missing")
            continue
        digest = hashlib.sha256()
        size = 0
        for chunk in storage.read_range(target):
            digest.update(chunk)
            size += len(chunk)
        if (size, digest.hexdigest()) != (f["size"], f["sha256"]):
            bad.append(f"{f['path']}: stored bytes do not match")
    return bad
