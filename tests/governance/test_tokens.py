"""Bearer tokens: stored hashed, expire, can be revoked, shown once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from consortium.governance.models import ApiToken
from consortium.governance.seats import seat_assign, seat_vacate


@pytest.fixture
def operator(db):
    """An operator: a superuser with no seat, and a token."""
    user = get_user_model().objects.create_superuser("operator", password="unused-pass-123")
    token, plaintext = ApiToken.issue(user=user, name="operations", days=30)
    return user, token, plaintext


def _get(plaintext: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.get("/api/v1/ledger/keys")


def test_only_the_hash_of_a_token_is_stored(operator):
    import hashlib

    _, token, plaintext = operator
    # clt_<12 hex key id>_<secret>; the secret itself may contain "_".
    prefix, key_id, secret = plaintext.split("_", 2)
    assert (prefix, key_id) == ("clt", token.key_id)
    stored = (
        ApiToken.objects.filter(pk=token.pk)
        .values_list(*[f.attname for f in ApiToken._meta.concrete_fields])
        .get()
    )
    assert not any(secret in str(value) for value in stored)
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert _get(plaintext).status_code == 200


def test_an_expired_token_is_refused(partner):
    _, token, plaintext = partner
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = _get(plaintext)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_a_revoked_token_is_refused(partner):
    _, token, plaintext = partner
    token.revoke()
    r = _get(plaintext)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_a_token_of_a_deactivated_user_is_refused(partner):
    user, _, plaintext = partner
    user.is_active = False
    user.save()
    assert _get(plaintext).status_code == 401


def test_a_token_with_the_right_id_but_wrong_secret_is_refused(partner):
    _, _, plaintext = partner
    forged = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    assert _get(forged).status_code == 401


def test_the_command_prints_a_token_once_and_revokes_it(db, capsys):
    get_user_model().objects.create_superuser("partner-fr")
    call_command("apitoken", "create", "--user", "partner-fr", "--name", "scheduler", "--days", "7")
    out = capsys.readouterr()
    plaintext = out.out.strip()
    assert plaintext.startswith("clt_") and "shown once" in out.err
    token = ApiToken.objects.get()
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert _get(plaintext).status_code == 200
    call_command("apitoken", "list")
    assert plaintext not in capsys.readouterr().out
    call_command("apitoken", "revoke", token.key_id)
    assert _get(plaintext).status_code == 401


@pytest.mark.parametrize("days", ["0", "10000"])
def test_the_command_refuses_lifetimes_out_of_range(db, days):
    get_user_model().objects.create_user("partner-fr")
    with pytest.raises(CommandError, match="between 1 and"):
        call_command("apitoken", "create", "--user", "partner-fr", "--days", days)
    assert not ApiToken.objects.exists()


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user"):
        call_command("apitoken", "create", "--user", "ghost")


# --- tokens of delegates: they carry the seat they were issued for --------------------------


@pytest.fixture
def delegate(delegates):
    """France's signatory (tests/personas.py) and a token issued to them."""
    user = delegates["fr"]
    token, plaintext = ApiToken.issue(user=user, name="France's system", days=30)
    return user, token, plaintext


def _vacate(token) -> None:
    ops = get_user_model().objects.get(username="ops")
    seat_vacate(actor=ops, seat=token.seat, reason="left the delegation")


def test_a_delegates_token_carries_its_member_and_role(delegate):
    user, token, plaintext = delegate
    assert (token.seat.member_id, token.seat.role) == ("FR", "signatory")
    assert token.seat == user.seat_holder.seat
    assert _get(plaintext).status_code == 200


def test_a_token_stops_working_once_its_seat_is_vacated(delegate):
    user, token, plaintext = delegate
    _vacate(token)
    r = _get(plaintext)
    assert r.status_code == 401 and "no longer holds" in r.json()["detail"]
    # Seated again, the user needs a new token: the old one stays refused.
    seat_assign(actor=None, user=user, role="observer", member="FR")
    assert _get(plaintext).status_code == 401
    _, fresh = ApiToken.issue(user=user, days=1)
    assert _get(fresh).status_code == 200


def test_an_expired_delegates_token_is_refused(delegate):
    _, token, plaintext = delegate
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = _get(plaintext)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_an_operators_token_has_no_seat_and_keeps_working(operator):
    _, token, plaintext = operator
    assert token.seat is None
    assert _get(plaintext).status_code == 200


def test_a_token_of_a_user_without_a_seat_authenticates_but_reads_nothing(partner):
    _, _, plaintext = partner
    r = _get(plaintext)
    assert r.status_code == 403 and r.json()["detail"] == "you hold no seat in the consortium"


def test_the_command_lists_each_tokens_member_and_role(delegate, partner, capsys):
    _, token, _ = delegate
    call_command("apitoken", "list")
    rows = {line.split()[0]: line.split()[1:5] for line in capsys.readouterr().out.splitlines()}
    assert rows[token.key_id] == ["fr", "FR", "signatory", "active"]
    assert rows[partner[1].key_id] == ["partner-jp", "-", "-", "active"]
    _vacate(token)
    call_command("apitoken", "list", "--user", "fr")
    assert capsys.readouterr().out.split()[1:5] == ["fr", "FR", "signatory", "unseated"]


def test_the_admin_lists_each_tokens_seat(delegate, admin_client):
    body = admin_client.get("/admin/consortium/apitoken/").content.decode()
    assert "signatory of FR" in body
    # Which seat a token was issued for is not something to edit.
    _, token, _ = delegate
    page = admin_client.get(f"/admin/consortium/apitoken/{token.pk}/change/")
    assert page.status_code == 200 and 'name="seat"' not in page.content.decode()


def test_a_token_issued_without_a_seat_does_not_pick_up_a_later_one(delegates):
    ops, user = delegates["ops"], delegates["newcomer"]
    _, plaintext = ApiToken.issue(user=user, days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/api/v1/members").status_code == 403
    seat_assign(actor=ops, user=user, role="signatory", member="FR")
    r = client.get("/api/v1/delegates/self")
    assert r.status_code == 401 and "before its user held a seat" in r.json()["detail"]
