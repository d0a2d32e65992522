"""Models, training runs and checkpoints; provenance bundles verified offline."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from consortium.access import checkpoints
from consortium.access.models import ModelCheckpoint
from consortium.governance.changes import GovernanceError
from ledger.keys import log_origin
from ledger.provenance import verify
from ledger.services import Entry, Key
from tests.personas import found_delegates
from tests.steps.api import api_as
from tests.steps.governance import propose

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def weights(tmp_path):
    d = tmp_path / "step-1000"
    (d / "shards").mkdir(parents=True)
    (d / "config.json").write_text('{"layers": 48}')
    for i in range(3):
        (d / "shards" / f"model-{i:05}.safetensors").write_bytes(bytes([i]) * (200_000 + i))
    return d


@pytest.fixture
def published(delegates, weights):
    treaty = propose(delegates)
    model = checkpoints.model_register(
        actor=delegates["ops"], code="aurora", name="Aurora", agreement=treaty
    )
    cp = checkpoints.checkpoint_publish(
        actor=delegates["ops"], model=model, name="step-1000", directory=weights, workers=1
    )
    return cp


def _vkey() -> str:
    return Key.objects.get(kind="log", revoked_at__isnull=True).verifier_key


def test_publication_records_the_manifest_digest_and_stores_the_files(published, weights):
    assert len(published.files) == 4 and published.size == sum(f["size"] for f in published.files)
    entry = Entry.objects.get(kind="checkpoint.published")
    assert entry.payload["checkpoint"] == published.digest
    assert published.digest == checkpoints.manifest_digest(published.files)
    assert checkpoints.verify_stored(published) == []


def test_the_same_checkpoint_twice_is_refused(delegates, published, weights):
    with pytest.raises(GovernanceError, match="published already"):
        checkpoints.checkpoint_publish(
            actor=delegates["ops"],
            model=published.model,
            name="again",
            directory=weights,
            workers=1,
        )


def test_only_the_secretariat_publishes(delegates, published, weights):
    with pytest.raises(GovernanceError, match="the secretariat") as exc:
        checkpoints.checkpoint_publish(
            actor=delegates["fr"], model=published.model, name="x", directory=weights, workers=1
        )
    assert exc.value.status == 403


def test_a_bundle_verifies_the_downloaded_files_offline(published, weights):
    bundle = checkpoints.provenance_bundle(published)
    result = verify(weights, bundle, _vkey())
    assert result.ok, result.failures
    assert any("checkpoint.published" in c for c in result.checks)


def test_a_changed_file_is_named(published, weights):
    bundle = checkpoints.provenance_bundle(published)
    shard = weights / "shards" / "model-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[100] ^= 1
    shard.write_bytes(bytes(data))
    (weights / "extra.bin").write_bytes(b"x")
    result = verify(weights, bundle, _vkey())
    assert not result.ok
    assert any(f.startswith("shards/model-00001.safetensors: SHA-256") for f in result.failures)
    assert "extra.bin: not in the manifest" in result.failures


@pytest.mark.parametrize("tamper", ["leaf", "proof", "manifest", "note", "vkey"])
def test_a_tampered_bundle_is_refused_and_says_where(published, weights, tamper):
    bundle = checkpoints.provenance_bundle(published)
    vkey = _vkey()
    if tamper == "leaf":
        leaf = base64.b64decode(bundle["entries"]["published"]["leaf"]).replace(
            b"step-1000", b"step-9999"
        )
        bundle["entries"]["published"]["leaf"] = base64.b64encode(leaf).decode()
    elif tamper == "proof":
        bundle["entries"]["published"]["proof"][0] = base64.b64encode(b"\0" * 32).decode()
    elif tamper == "manifest":
        bundle["manifest"] = bundle["manifest"].replace("config.json", "config.jsom")
    elif tamper == "note":
        bundle["note"] = bundle["note"].replace("\n", "\n1", 1)
    else:
        from ledger.keys import EntrySigner
        from ledger.services import verifier_key

        other = EntrySigner.generate("x")
        vkey = verifier_key(vkey.split("+")[0], other.public_key)
    result = verify(weights, bundle, vkey)
    assert not result.ok and result.failures


def test_the_verifier_runs_without_django(published, weights, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(checkpoints.provenance_bundle(published)))
    code = (
        "import sys; sys.modules['django'] = None; from ledger.provenance import main; "
        f"sys.exit(main(['verify', {str(weights)!r}, '--bundle', {str(path)!r}, "
        f"'--vkey', {_vkey()!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   checkpoint: signed by" in done.stdout


def test_a_stored_file_that_changes_is_found(published):
    from django.core.files.storage import default_storage

    target = checkpoints.stored_path(published.digest, "config.json")
    with default_storage.open(target, "wb") as f:
        f.write(b'{"layers": 47}')
    assert checkpoints.verify_stored(published) == ["config.json: stored bytes do not match"]


@pytest.mark.slow
def test_replay_rebuilds_models_runs_and_checkpoints(committed_db, weights):
    from consortium.governance import agreements
    from consortium.governance.documents import document_store
    from ledger.replay import replay_check

    ops = found_delegates()["ops"]
    doc = document_store(actor=ops, name="l.txt", content=b"licence")
    licence = agreements.agreement_propose(
        actor=ops,
        kind="model_licence",
        title="Licence",
        document_sha256=doc.sha256,
        terms={
            "parties": ["FR"],
            "effective": {"from": "2026-01-01", "until": None},
            "access": [{"scope": "full_weights", "tier": "member"}],
        },
    )
    model = checkpoints.model_register(actor=ops, code="aurora", name="Aurora", agreement=licence)
    run = checkpoints.training_record(
        actor=ops, model=model, name="pretraining", datasets=[], compute=[]
    )
    cp = checkpoints.checkpoint_publish(
        actor=ops, model=model, name="step-1000", directory=weights, run=run, workers=1
    )
    from ledger import submissions
    from ledger.core.envelope import new_envelope, sign_envelope
    from ledger.keys import EntrySigner

    evaluator = EntrySigner.generate("aisi")
    checkpoints.evaluator_accredit(
        actor=ops, code="aisi", name="AISI", public_key=evaluator.public_key
    )
    env = new_envelope(
        kind="evaluation.attested",
        author=evaluator.fingerprint,
        payload={"checkpoint": cp.digest, "report_sha256": "ab" * 32, "verdict": "pass"},
    )
    signed = sign_envelope(env, evaluator.signing_key, log_origin())
    submissions.submit(
        envelope=env, signature=base64.b64encode(signed.signature).decode(), submitter=ops
    )
    report = replay_check()
    assert report.ok, report.differences
    assert ModelCheckpoint.objects.get().run_id == run.id


def test_a_training_run_names_only_recorded_datasets_and_compute(delegates, published):
    with pytest.raises(GovernanceError, match="no counted data contribution has manifest"):
        checkpoints.training_record(
            actor=delegates["ops"],
            model=published.model,
            name="r",
            datasets=["ab" * 32],
            compute=[],
        )
    with pytest.raises(GovernanceError, match="is no counted compute contribution"):
        checkpoints.training_record(
            actor=delegates["ops"],
            model=published.model,
            name="r",
            datasets=[],
            compute=["not-a-uuid"],
        )


def test_the_verification_task_blocks_a_checkpoint_whose_stored_file_changed(published):
    from django.core.files.storage import default_storage

    from consortium.access.tasks import verify_checkpoints

    assert verify_checkpoints() == {}  # runs in-process without a broker
    with default_storage.open(checkpoints.stored_path(published.digest, "config.json"), "wb") as f:
        f.write(b"{}")
    blocked = verify_checkpoints()
    published.refresh_from_db()
    assert blocked == {published.digest: ["config.json: stored bytes do not match"]}
    assert published.state == "blocked" and published.blocked_in is not None
    assert Entry.objects.filter(kind="checkpoint.blocked").count() == 1
    assert verify_checkpoints() == {}  # blocked once, recorded once


def test_the_api_lists_checkpoints_and_serves_their_bundle(delegates, published, weights):
    api = api_as(delegates["rec_fr"])
    listed = api.get("/api/v1/checkpoints?model=aurora").json()["results"]
    assert [c["digest"] for c in listed] == [published.digest]
    assert api.get("/api/v1/checkpoints?state=lost").status_code == 400
    bundle = api.get(f"/api/v1/checkpoints/{published.digest}/bundle")
    assert bundle.status_code == 200 and verify(weights, bundle.json(), _vkey()).ok
    assert api.get(f"/api/v1/checkpoints/{'0' * 64}").status_code == 404
    assert [m["code"] for m in api.get("/api/v1/models").json()["results"]] == ["aurora"]


def test_the_command_publishes_and_writes_a_bundle(delegates, weights, tmp_path, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    treaty = propose(delegates)
    checkpoints.model_register(actor=None, code="borealis", name="Borealis", agreement=treaty)
    call_command(
        "checkpoint",
        "publish",
        str(weights),
        "--model",
        "borealis",
        "--name",
        "s1",
        "--workers",
        "1",
        "--no-progress",
    )
    assert "Published borealis s1: 4 files" in capsys.readouterr().out
    cp = ModelCheckpoint.objects.get(model="borealis")
    out = tmp_path / "b.json"
    call_command("checkpoint", "bundle", cp.digest, "--output", str(out))
    assert verify(weights, json.loads(out.read_text()), _vkey()).ok
    call_command("checkpoint", "verify-stored", cp.digest)
    assert "every stored file" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no model 'nope'"):
        call_command("checkpoint", "publish", str(weights), "--model", "nope", "--name", "x")


# --- the file list fits one ledger entry (a leaf of at most 65,535 bytes) ---------------------


def _model(delegates):
    treaty = propose(delegates)
    return checkpoints.model_register(
        actor=delegates["ops"], code="aurora", name="Aurora", agreement=treaty
    )


def _stored_names():
    from django.core.files.storage import default_storage

    return (
        default_storage.listdir("checkpoints")[0] if default_storage.exists("checkpoints") else []
    )


def test_a_checkpoint_of_max_files_fits_one_entry_and_one_more_is_refused(delegates, tmp_path):
    model = _model(delegates)
    d = tmp_path / "many"
    (d / "shards").mkdir(parents=True)
    for i in range(checkpoints.MAX_FILES):
        (d / "shards" / f"model-{i:05}-of-{checkpoints.MAX_FILES:05}.safetensors").write_bytes(b"w")
    cp = checkpoints.checkpoint_publish(
        actor=delegates["ops"], model=model, name="many", directory=d, workers=1
    )
    leaf = bytes(Entry.objects.get(kind="checkpoint.published").leaf)
    assert len(cp.files) == checkpoints.MAX_FILES and len(leaf) <= 65535
    (d / "one-more.json").write_text("{}")
    before = (Entry.objects.count(), _stored_names())
    with pytest.raises(GovernanceError, match=f"at most {checkpoints.MAX_FILES}") as refused:
        checkpoints.checkpoint_publish(
            actor=delegates["ops"], model=model, name="more", directory=d, workers=1
        )
    assert refused.value.status == 413
    assert (Entry.objects.count(), _stored_names()) == before


def test_a_file_list_too_long_for_one_entry_is_refused_before_anything_is_stored(
    delegates, tmp_path
):
    model = _model(delegates)
    d = tmp_path / "deep"
    deep = d.joinpath(*["d" * 200] * 4)  # paths of about 800 characters
    deep.mkdir(parents=True)
    for i in range(90):
        (deep / f"{i:03}.bin").write_bytes(b"w")
    before = (Entry.objects.count(), _stored_names())
    with pytest.raises(GovernanceError, match="use shorter paths or fewer files") as refused:
        checkpoints.checkpoint_publish(
            actor=delegates["ops"], model=model, name="deep", directory=d, workers=1
        )
    assert refused.value.status == 413 and "bytes" in str(refused.value)
    assert (Entry.objects.count(), _stored_names()) == before


def test_a_bundle_verifies_across_a_log_key_rotation(published, weights):
    """The publishing key was registered by the first log key; the bundle's checkpoint is
    the new key's. Either key verifies it; the rotation's leaf is what links them."""
    from ledger.core.note import sign_note
    from ledger.services import log_key_rotate, log_signer

    old_signer = log_signer()
    old = _vkey()
    log_key_rotate()
    new = _vkey()
    bundle = checkpoints.provenance_bundle(published)
    rotated_at = Entry.objects.get(kind="log.key_rotated").index
    assert [e["index"] for e in bundle["entries"]["log_keys"]] == [0, rotated_at]
    for vkey in (old, new):
        result = verify(weights, bundle, vkey)
        assert result.ok, result.failures
        assert "2 log keys, each rotation signed by both keys" in result.checks
    # The same checkpoint signed by the old key after its rotation: refused.
    body = bundle["note"].split("\n\n")[0] + "\n"
    forged = {**bundle, "note": sign_note(body, old_signer.note_signer())}
    for vkey in (old, new):
        result = verify(weights, forged, vkey)
        assert not result.ok and "the log key for its size" in result.failures[0]
    # Without the rotation's leaf the new key's checkpoint cannot be checked with the old.
    bundle["entries"]["log_keys"] = bundle["entries"]["log_keys"][:1]
    result = verify(weights, bundle, old)
    assert not result.ok and "the log key for its size" in result.failures[0]
    # And the new key alone, without the rotation, does not vouch for the old key's
    # registration of the publishing key.
    assert not verify(weights, bundle, new).ok
