"""The log key rotated by an entry signed by the old key and the new; checkpoints after
it under the new key; every verifier follows the rotation from the key history. And the
log's origin bound into every entry signature (format v2)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from nacl.signing import SigningKey

from ledger import audit, checkpoints, services
from ledger.core import merkle
from ledger.core.envelope import build_leaf, new_envelope, sign_envelope
from ledger.core.keyring import (
    KeyringError,
    descriptor,
    read_log_key_rotation,
    rotation_message,
)
from ledger.core.note import Checkpoint as Body
from ledger.core.note import sign_note, verifier_key
from ledger.errors import LedgerError
from ledger.keys import EntrySigner, log_origin, log_signer
from ledger.models import Checkpoint, Entry, Key, SealedKey
from ledger.services import Draft
from ledger.verify import verify_ledger
from tests.steps.ledger import export_bundle, rewrite_bundle, triggers_disabled

ROOT = Path(__file__).resolve().parents[2]


def _vkey(signer: EntrySigner) -> str:
    return verifier_key(signer.name, signer.public_key)


@pytest.fixture
def rotated(history, capsys):
    """The history, its log key rotated by the command, then more entries and a
    checkpoint under the new key."""
    old = log_signer()
    call_command("ledger", "rotate-log-key")
    out = capsys.readouterr().out
    new = log_signer()
    at = Entry.objects.get(kind="log.key_rotated").index
    services.entries_append(
        signer=history["sample"], drafts=[Draft("test.sample", {"after": i}) for i in range(7)]
    )
    checkpoints.publish_checkpoint()
    return {"old": old, "new": new, "at": at, "out": out, **history}


def _note_size(note: str) -> int:
    return int(note.split("\n")[1])


def test_the_command_rotates_seals_and_publishes_under_the_new_key(rotated):
    old, new, at = rotated["old"], rotated["new"], rotated["at"]
    assert old.fingerprint != new.fingerprint and new.name == old.name == log_origin()
    assert f"Rotated the log key at index {at}" in rotated["out"]
    assert _vkey(new) in rotated["out"] and f"checkpoint at size {at + 1}" in rotated["out"]
    keys = {k.fingerprint: k for k in Key.objects.filter(kind="log")}
    assert (keys[old.fingerprint].revoked_at, keys[new.fingerprint].valid_from) == (at, at + 1)
    # Both sealed copies stay; the old one is never used to sign again.
    assert SealedKey.objects.filter(key_id__in=[old.fingerprint, new.fingerprint]).count() == 2
    # The checkpoint holding the rotation and every later one are the new key's; the
    # earlier ones stay the old key's.
    for cp in Checkpoint.objects.all():
        signer = new if cp.tree_size > at else old
        assert cp.note.endswith("\n") and f"— {signer.name} " in cp.note
        kid = base64.b64decode(cp.note.rstrip("\n").rsplit(" ", 1)[1])[:4]
        assert kid == _key_id(signer), cp.tree_size
    assert Checkpoint.objects.filter(tree_size=at + 1).exists()
    assert Checkpoint.objects.filter(tree_size__gt=at + 1).exists()


def _key_id(signer: EntrySigner) -> bytes:
    from ledger.core.note import key_id

    return key_id(signer.name, signer.public_key)


def test_verifier_key_prints_the_current_key_and_the_history(rotated, capsys):
    call_command("ledger", "verifier-key")
    assert capsys.readouterr().out.strip() == _vkey(rotated["new"])
    call_command("ledger", "verifier-key", "--history")
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    at = rotated["at"]
    assert lines == [f"{_vkey(rotated['old'])}\t0\t{at}", f"{_vkey(rotated['new'])}\t{at + 1}\t"]


def test_ledger_verify_passes_across_the_rotation(rotated, capsys):
    call_command("ledger", "verify", "--workers", "1", "--no-progress")
    out = capsys.readouterr().out
    assert (
        f"OK: {Entry.objects.count()} entries and {Checkpoint.objects.count()} checkpoints" in out
    )


def test_replay_and_verify_on_workers_across_the_rotation(committed_signer, capsys):
    services.log_key_rotate()
    services.entries_append(signer=committed_signer, drafts=[Draft("test.sample", {"n": 1})])
    checkpoints.publish_checkpoint()
    call_command("ledger", "replay", "--check")
    out = capsys.readouterr().out
    assert out.startswith("OK:") and "ledger.Key" in out
    call_command("ledger", "verify", "--workers", "2", "--no-progress")
    assert "OK:" in capsys.readouterr().out


def test_an_export_verifies_offline_under_the_old_or_the_new_key(rotated, tmp_path):
    path = export_bundle(tmp_path)
    for signer in (rotated["old"], rotated["new"]):
        result = audit.verify(path, _vkey(signer), workers=0)
        assert result.ok, result.failures
        assert any("2 log keys, each rotation signed by both keys" in c for c in result.checks)
    # A range that starts after the rotation still follows the key history from genesis.
    later = export_bundle(tmp_path, "later.zip", first=rotated["at"] + 2)
    assert audit.verify(later, _vkey(rotated["new"]), workers=0).ok


def test_an_entry_signed_by_the_old_log_key_after_the_rotation_is_refused(rotated):
    before = Entry.objects.count()
    with pytest.raises(LedgerError, match=f"was revoked at index {rotated['at']}"):
        services.entry_append(signer=rotated["old"], kind="test.sample", payload={"late": 1})
    with pytest.raises(LedgerError, match="revoked"):
        services.key_register(signer=rotated["old"], kind="service", owner="x", name="x")
    assert Entry.objects.count() == before


def _old_key_checkpoint(rotated) -> Checkpoint:
    """The old key signs the current tree after its rotation, and the row is stored."""
    from ledger.proofs import root_at, tree_size

    size = tree_size()
    note = sign_note(Body(log_origin(), size, root_at(size)).body(), rotated["old"].note_signer())
    return Checkpoint.objects.create(
        tree_size=size, root_hash=root_at(size), note=note, published_at=datetime.now(UTC)
    )


def test_a_checkpoint_signed_by_the_old_key_after_the_rotation_is_refused_everywhere(
    rotated, tmp_path, capsys
):
    services.entries_append(signer=rotated["sample"], drafts=[Draft("test.sample", {"z": 1})])
    forged = _old_key_checkpoint(rotated)
    # ledger verify
    report = verify_ledger(workers=1)
    assert any(f"checkpoint at size {forged.tree_size}" in p for p in report.problems)
    # the server, before it signs the next checkpoint
    services.entries_append(signer=rotated["sample"], drafts=[Draft("test.sample", {"z": 2})])
    with pytest.raises(LedgerError, match="is not the log's"):
        checkpoints.publish_checkpoint()
    # the single-checkpoint verifier, under the new key
    note = tmp_path / "forged.note"
    note.write_bytes(forged.note.encode())
    assert audit.run(["checkpoint", str(note), "--vkey", _vkey(rotated["new"])]) != 0
    assert "no signature by a known key" in capsys.readouterr().out
    # the audit export verifier (under either key)
    path = tmp_path / "forged.zip"
    with pytest.raises(LedgerError, match="is not the log's"):
        export_bundle(tmp_path, "forged.zip")
    good = export_bundle(tmp_path, "good.zip", end=forged.tree_size - 1)

    def with_forged(files):
        files[f"checkpoints/{forged.tree_size}.note"] = forged.note.encode()
        return files

    rewrite_bundle(good, with_forged, resign=True)
    failures = "\n".join(audit.verify(good, _vkey(rotated["old"]), workers=0).failures)
    assert (
        f"checkpoints/{forged.tree_size}.note: not a checkpoint signed by the log key" in failures
    )
    assert not path.exists()


def test_a_checkpoint_before_the_rotation_signed_by_the_new_key_is_refused(rotated):
    at = rotated["at"]
    from ledger.proofs import root_at

    note = sign_note(Body(log_origin(), at, root_at(at)).body(), rotated["new"].note_signer())
    Checkpoint.objects.create(
        tree_size=at, root_hash=root_at(at), note=note, published_at=datetime.now(UTC)
    )
    report = verify_ledger(workers=1)
    assert any(f"checkpoint at size {at}:" in p for p in report.problems), report.problems


def _rotation_payload(old: EntrySigner, new: EntrySigner, *, sign_with: SigningKey) -> dict:
    origin = log_origin()
    desc = descriptor(
        public_key=new.public_key, kind="log", owner=origin, custody="hosted", name=origin
    )
    message = rotation_message(origin, old.fingerprint, new.fingerprint)
    return {
        "fingerprint": old.fingerprint,
        "key": desc,
        "signature": base64.b64encode(sign_with.sign(message).signature).decode(),
    }


def test_a_rotation_without_the_new_keys_signature_is_refused(history):
    old, new = log_signer(), EntrySigner.generate(log_origin())
    before = Entry.objects.count()
    for wrong in (old.signing_key, SigningKey.generate()):
        payload = _rotation_payload(old, new, sign_with=wrong)
        with pytest.raises(LedgerError, match="the new key's signature over the rotation"):
            services.entry_append(signer=old, kind="log.key_rotated", payload=payload)
    # Over another message (another origin) it is refused too.
    payload = _rotation_payload(old, new, sign_with=new.signing_key)
    payload["signature"] = base64.b64encode(
        new.signing_key.sign(
            rotation_message("another.example", old.fingerprint, new.fingerprint)
        ).signature
    ).decode()
    with pytest.raises(LedgerError, match="the new key's signature over the rotation"):
        services.entry_append(signer=old, kind="log.key_rotated", payload=payload)
    # Only the current log key may rotate it, and key.rotated never moves the log key.
    with pytest.raises(LedgerError, match="must be signed by the current log key"):
        services.entry_append(
            signer=history["sample"],
            kind="log.key_rotated",
            payload=_rotation_payload(old, new, sign_with=new.signing_key),
        )
    with pytest.raises(LedgerError, match=r"rotated by log\.key_rotated"):
        services.key_rotate(signer=old)
    assert Entry.objects.count() == before
    assert Key.objects.filter(kind="log").count() == 1


def test_the_database_holds_one_valid_log_key(history):
    new = EntrySigner.generate(log_origin())
    with pytest.raises(IntegrityError), transaction.atomic():
        Key.objects.create(
            fingerprint=new.fingerprint,
            public_key=new.public_key,
            kind="log",
            owner=log_origin(),
            custody="hosted",
            name=log_origin(),
            valid_from=999,
            registered_in=998,
        )


# --- read_log_key_rotation: what a witness uses -------------------------------------------


def test_read_log_key_rotation_gives_the_new_verifier_key(rotated):
    leaf = bytes(Entry.objects.get(kind="log.key_rotated").leaf)
    old, new = rotated["old"], rotated["new"]
    assert read_log_key_rotation(leaf, log_origin(), old.public_key) == _vkey(new)
    with pytest.raises(KeyringError, match="not signed by that log key"):
        read_log_key_rotation(leaf, log_origin(), new.public_key)
    with pytest.raises(KeyringError, match="signature over the entry does not verify"):
        read_log_key_rotation(leaf, "ledger.another.example", old.public_key)
    other = bytes(Entry.objects.get(index=5).leaf)
    with pytest.raises(KeyringError, match=r"not log\.key_rotated"):
        read_log_key_rotation(other, log_origin(), old.public_key)
    # One byte of the new key's signature changed: the old key's signature breaks first.
    tampered = leaf.replace(b'"signature":"', b'"signature":"A', 1)
    with pytest.raises(KeyringError):
        read_log_key_rotation(tampered, log_origin(), old.public_key)


def test_read_log_key_rotation_refuses_a_bad_new_key_signature_even_if_the_old_key_signed(
    history,
):
    """An old key that signs a rotation to a key that did not accept it: refused."""
    old, new = log_signer(), EntrySigner.generate(log_origin())
    payload = _rotation_payload(old, new, sign_with=SigningKey.generate())
    env = new_envelope(kind="log.key_rotated", payload=payload, author=old.fingerprint)
    signed = sign_envelope(env, old.signing_key, log_origin())
    leaf = build_leaf(signed.envelope_bytes, 70, "2026-01-31T12:00:00.000000Z", signed.signature)
    with pytest.raises(KeyringError, match="the new key's signature over the rotation"):
        read_log_key_rotation(leaf, log_origin(), old.public_key)


def test_read_log_key_rotation_needs_neither_django_nor_rfc8785(rotated):
    leaf = bytes(Entry.objects.get(kind="log.key_rotated").leaf)
    code = (
        "import sys, base64\n"
        "sys.modules['django'] = None\n"
        "sys.modules['rfc8785'] = None\n"
        "from ledger.core.keyring import read_log_key_rotation\n"
        "print(read_log_key_rotation(base64.b64decode(sys.argv[1]), sys.argv[2],"
        " base64.b64decode(sys.argv[3])))\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            base64.b64encode(leaf).decode(),
            log_origin(),
            base64.b64encode(rotated["old"].public_key).decode(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == _vkey(rotated["new"])


# --- the origin in every signature ----------------------------------------------------------


def _resigned_for(origin: str, index: int, signer: EntrySigner) -> bytes:
    """The leaf at ``index`` with its envelope signed by ``signer`` for ``origin``."""
    entry = Entry.objects.get(index=index)
    leaf = bytes(entry.leaf)
    envelope = leaf[9 : leaf.rfind(b',"index":')]
    from ledger.core.envelope import signing_message

    sig = signer.signing_key.sign(signing_message(envelope, origin)).signature
    return build_leaf(envelope, index, entry.integrated_time, sig)


def test_verifiers_refuse_an_entry_signed_for_another_log(history, tmp_path):
    index = 10
    foreign = _resigned_for("ledger.other-consortium.example", index, history["sample"])
    path = export_bundle(tmp_path)

    def swap(files):
        lines = files["entries.jsonl"].split(b"\n")
        lines[index] = foreign
        files["entries.jsonl"] = b"\n".join(lines)
        return files

    rewrite_bundle(path, swap, resign=True)
    failures = "\n".join(audit.verify(path, _vkey(log_signer()), workers=0).failures)
    assert f"entry {index}: the author's signature does not verify" in failures
    with triggers_disabled() as cur:
        cur.execute(
            "UPDATE ledger_entry SET leaf = %s, leaf_hash = %s WHERE " + '"index" = %s',
            [foreign, merkle.leaf_hash(foreign), index],
        )
    report = verify_ledger(workers=1)
    assert (index, "the author's signature does not verify") in report.failures


def test_the_rotate_command_needs_an_initialised_ledger(db):
    with pytest.raises(CommandError, match="no log key"):
        call_command("ledger", "rotate-log-key")


def test_the_log_never_stores_a_signature_made_for_another_origin(history):
    """Whatever signs before the lock, the append checks the origin it signed for."""
    from ledger import log
    from ledger.keys import hosted_signer

    signer = hosted_signer(history["sample"].fingerprint)
    assert signer.origin == log_origin()  # unsealed here, it knows the log's origin
    env = new_envelope(kind="test.sample", payload={"n": 1}, author=signer.fingerprint)
    foreign = sign_envelope(env, signer.signing_key, "ledger.other-consortium.example")
    before = Entry.objects.count()
    with pytest.raises(
        LedgerError, match=re.escape("signed for the log 'ledger.other-consortium.example'")
    ):
        log.append_signed([foreign])
    assert Entry.objects.count() == before
    assert log.append_signed([sign_envelope(env, signer.signing_key, log_origin())])[0].created
