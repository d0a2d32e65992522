"""Entries members sign with their own keys and submit through the API.

Personas: France's partner system (a signatory seat of France, France's external key),
Germany's partner system (a signatory seat of Germany), an outsider.
"""

from __future__ import annotations

import base64
import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from consortium.governance.models import Seat
from ledger import services
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.core.keyring import descriptor
from ledger.keys import EntrySigner, log_origin
from ledger.services import Entry, Key, log_signer
from tests.steps.api import api_as

User = get_user_model()


@pytest.fixture
def world(delegates):
    """France's and Germany's systems (their signatories' tokens), and France's external key."""
    fr_key = EntrySigner.generate("fr-ext")
    services.key_register(
        signer=log_signer(), kind="member", owner="FR", name="fr-ext", public_key=fr_key.public_key
    )
    return {"fr": api_as(delegates["fr"]), "de": api_as(delegates["de"]), "fr_key": fr_key}


def _signed(key: EntrySigner, kind: str, payload: dict, entry_id: str | None = None) -> dict:
    env = new_envelope(kind=kind, payload=payload, author=key.fingerprint, entry_id=entry_id)
    s = sign_envelope(env, key.signing_key, log_origin())
    return {"envelope": env, "signature": base64.b64encode(s.signature).decode()}


def _seat(member="FR", role="observer") -> dict:
    return {"seat": str(uuid.uuid4()), "member": member, "role": role}


def _post(client, body):
    return client.post("/api/v1/ledger/entries", body, format="json")


def _problem(r, status: int, text: str) -> None:
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith("application/problem+json")
    assert text in r.json()["detail"]


def test_frances_system_assigns_a_french_seat_with_frances_key(world):
    body = _signed(world["fr_key"], "seat.assigned", _seat(), entry_id="fr-seat-1")
    r = _post(world["fr"], body)
    assert r.status_code == 201, r.content
    assert r.json()["author"] == world["fr_key"].fingerprint
    assert Seat.objects.get(id=body["envelope"]["payload"]["seat"]).member_id == "FR"
    again = _post(world["fr"], body)
    assert again.status_code == 200 and again.json()["index"] == r.json()["index"]


def test_germanys_system_cannot_submit_what_france_signed(world):
    before = Entry.objects.count()
    _problem(
        _post(world["de"], _signed(world["fr_key"], "seat.assigned", _seat())),
        403,
        "may not act for FR",
    )
    assert Entry.objects.count() == before


def test_frances_key_cannot_assign_a_german_seat_or_a_staff_seat(world):
    before = Entry.objects.count()
    _problem(
        _post(world["fr"], _signed(world["fr_key"], "seat.assigned", _seat("DE"))),
        403,
        "cannot assign seats of DE",
    )
    staff = {"seat": str(uuid.uuid4()), "member": None, "role": "auditor"}
    _problem(
        _post(world["fr"], _signed(world["fr_key"], "seat.assigned", staff)), 403, "assigns only"
    )
    assert Entry.objects.count() == before


def test_a_hosted_key_cannot_be_used_from_outside(world):
    """Even a valid signature by France's hosted key (say its seed leaked) is refused:
    hosted keys are used only on the server, by an authenticated signatory."""
    from ledger.services import hosted_signer

    hosted = Key.objects.get(kind="member", owner="FR", custody="hosted")
    leaked = hosted_signer(hosted.fingerprint)
    before = Entry.objects.count()
    _problem(
        _post(world["fr"], _signed(leaked, "seat.assigned", _seat())),
        403,
        "hosted keys sign on the server",
    )
    assert Entry.objects.count() == before


@pytest.mark.parametrize(
    ("mutate", "status", "text"),
    [
        (
            lambda b: {**b, "signature": base64.b64encode(bytes(64)).decode()},
            400,
            "does not verify",
        ),
        (lambda b: {**b, "signature": "not base64"}, 400, "signature must be"),
        (lambda b: {**b, "envelope": [1, 2]}, 400, "JSON object"),
        (lambda b: {"signature": b["signature"]}, 400, "envelope"),
        (
            lambda b: {**b, "envelope": {**b["envelope"], "payload": {"member": "FR"}}},
            400,
            "does not verify",
        ),
    ],
)
def test_bad_submissions_get_a_clear_4xx_and_write_nothing(world, mutate, status, text):
    before = Entry.objects.count()
    body = mutate(_signed(world["fr_key"], "seat.assigned", _seat()))
    _problem(_post(world["fr"], body), status, text)
    assert Entry.objects.count() == before


def test_a_kind_without_rules_for_submission_is_refused(world):
    _problem(
        _post(world["fr"], _signed(world["fr_key"], "test.sample", {})), 400, "cannot be submitted"
    )


def test_the_same_id_with_another_envelope_is_a_conflict(world):
    _post(world["fr"], _signed(world["fr_key"], "seat.assigned", _seat(), entry_id="dup"))
    _problem(
        _post(world["fr"], _signed(world["fr_key"], "seat.assigned", _seat(), entry_id="dup")),
        409,
        "already used",
    )


def test_france_rotates_its_external_key_through_the_api(world):
    new = EntrySigner.generate("fr-ext-2")
    desc = descriptor(
        public_key=new.public_key, kind="member", owner="FR", custody="external", name="fr-ext-2"
    )
    r = _post(
        world["fr"],
        _signed(
            world["fr_key"],
            "key.rotated",
            {"fingerprint": world["fr_key"].fingerprint, "key": desc},
        ),
    )
    assert r.status_code == 201, r.content
    assert Key.objects.get(fingerprint=world["fr_key"].fingerprint).revoked_at == r.json()["index"]
    _problem(_post(world["fr"], _signed(world["fr_key"], "seat.assigned", _seat())), 403, "revoked")
    assert _post(world["fr"], _signed(new, "seat.assigned", _seat())).status_code == 201
    from ledger.verify import verify_ledger

    assert verify_ledger(workers=1).ok


def test_an_owner_cannot_claim_the_server_holds_a_key_it_registers(world):
    new = EntrySigner.generate("x")
    desc = descriptor(
        public_key=new.public_key, kind="member", owner="FR", custody="hosted", name="x"
    )
    _problem(
        _post(world["fr"], _signed(world["fr_key"], "key.registered", {"key": desc})),
        400,
        "external",
    )


def test_an_outsider_gets_401(world):
    assert APIClient().post("/api/v1/ledger/entries", {}, format="json").status_code == 401


def test_an_envelope_held_back_and_submitted_late_is_refused(world):
    from datetime import UTC, datetime, timedelta

    env = new_envelope(
        kind="seat.assigned",
        payload=_seat(),
        author=world["fr_key"].fingerprint,
        time=datetime.now(UTC) - timedelta(hours=1),
    )
    sig = base64.b64encode(
        sign_envelope(env, world["fr_key"].signing_key, log_origin()).signature
    ).decode()
    before = Entry.objects.count()
    _problem(_post(world["fr"], {"envelope": env, "signature": sig}), 400, "s ago; new entries")
    assert Entry.objects.count() == before


def test_a_replayed_envelope_changes_nothing(world):
    body = _signed(world["fr_key"], "seat.assigned", _seat())
    first = _post(world["fr"], body)
    assert first.status_code == 201
    before = Entry.objects.count()
    again = _post(world["fr"], body)
    assert again.status_code == 200 and again.json()["index"] == first.json()["index"]
    assert Entry.objects.count() == before


def test_an_owner_never_revokes_its_last_valid_key(world):
    from ledger.services import Key

    valid = Key.objects.filter(kind="member", owner="FR", revoked_at__isnull=True)
    others = [k.fingerprint for k in valid if k.fingerprint != world["fr_key"].fingerprint]
    for fp in others:  # France's other keys go first, signed by its external key
        payload = {"fingerprint": fp, "reason": "retired"}
        assert (
            _post(world["fr"], _signed(world["fr_key"], "key.revoked", payload)).status_code == 201
        )
    last = {"fingerprint": world["fr_key"].fingerprint, "reason": "oops"}
    before = Entry.objects.count()
    _problem(
        _post(world["fr"], _signed(world["fr_key"], "key.revoked", last)), 409, "last valid key"
    )
    assert Entry.objects.count() == before


def test_an_envelope_signed_for_another_log_is_refused_and_writes_nothing(world):
    """France's key is registered on this ledger and on another one: what it signed for
    the other cannot be replayed here (the signature binds the log's origin)."""
    key = world["fr_key"]
    env = new_envelope(
        kind="seat.assigned", payload=_seat(), author=key.fingerprint, entry_id="fr-elsewhere-1"
    )
    elsewhere = sign_envelope(env, key.signing_key, "ledger.other-consortium.example")
    before = Entry.objects.count()
    r = _post(
        world["fr"], {"envelope": env, "signature": base64.b64encode(elsewhere.signature).decode()}
    )
    _problem(r, 400, f"signed for the log's origin, here {log_origin()!r}")
    # Format v1 (no origin in the signed message) is refused the same way.
    v1 = key.signing_key.sign(b"consortium-ledger/entry/v1\n" + elsewhere.envelope_bytes)
    r = _post(world["fr"], {"envelope": env, "signature": base64.b64encode(v1.signature).decode()})
    _problem(r, 400, "does not verify under the author's key for this log")
    assert Entry.objects.count() == before
    assert not Entry.objects.filter(entry_id="fr-elsewhere-1").exists()
    # Signed for this log, the very same envelope is accepted.
    here = sign_envelope(env, key.signing_key, log_origin())
    r = _post(
        world["fr"], {"envelope": env, "signature": base64.b64encode(here.signature).decode()}
    )
    assert r.status_code == 201, r.content
