"""The hot reads through a real nginx with deploy/nginx/ledger-reads.conf in front of the
application (gunicorn): every request checked by the application (auth_request, refusals
its own problem+json), the checkpoint and proofs kept by URL and answered from nginx's
cache, a 304 for a client's ETag, a new checkpoint through within a second, and nothing
but 200s kept.

nginx must be installed (apt-get install -y nginx-light): without it these tests fail,
saying so."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.models import ApiToken
from ledger import proofs, services
from ledger.checkpoints import publish_checkpoint
from ledger.services import Draft
from tests.steps.ledger import child_env, wipe_database
from tests.steps.nginx import app_server, readable_dir
from tests.steps.nginx_reads import reads_nginx


def _get(url: str, token: str | None = None, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 - a local server
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker):
    """A log of 40 entries with a checkpoint, a superuser's token and a seatless user's;
    the application under gunicorn and nginx with the snippet in front of it."""
    static = readable_dir("read-caching-static-")
    with django_db_blocker.unblock():
        wipe_database()
        try:
            services.ledger_init()
            _, signer = services.key_register(
                signer=services.log_signer(), kind="service", owner="sampler", name="sampler"
            )
            services.entries_append(
                signer=signer, drafts=[Draft("test.sample", {"n": i}) for i in range(38)]
            )
            publish_checkpoint()
            User = get_user_model()
            admin = User.objects.create_superuser("ops", password="unused-pass-123")
            outsider = User.objects.create_user("partner", password="unused-pass-123")
            tokens = {
                "admin": ApiToken.issue(user=admin, days=1)[1],
                "outsider": ApiToken.issue(user=outsider, days=1)[1],
                "revocable": ApiToken.issue(user=admin, days=1),
            }
            env = {**child_env(), "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "0"}
            with app_server(env) as app_port, reads_nginx(app_port, static) as port:
                yield {
                    "base": f"http://127.0.0.1:{port}/api/v1/ledger",
                    "tokens": tokens,
                    "signer": signer,
                }
        finally:
            wipe_database()
            import shutil

            shutil.rmtree(static, ignore_errors=True)


def test_every_request_is_checked_and_refusals_are_the_applications(served):
    for path in ("/checkpoint", "/proofs/inclusion?index=3&tree_size=40"):
        status, headers, body = _get(served["base"] + path)
        assert status == 401 and headers["content-type"].startswith("application/problem+json")
        status, headers, body = _get(served["base"] + path, served["tokens"]["outsider"])
        assert status == 403 and b"you hold no seat" in body


def test_the_checkpoint_is_kept_and_revalidated_from_nginx(served):
    url, token = served["base"] + "/checkpoint", served["tokens"]["admin"]
    _get(url, token)
    status, headers, body = _get(url, token)
    assert status == 200 and body.decode().splitlines()[1] in ("40", "41")
    assert headers["x-cache-status"] in ("HIT", "UPDATING", "REVALIDATED", "EXPIRED", "MISS")
    assert headers["cache-control"] == "no-cache" and headers["witness-policy"] == "none"
    again, again_headers, again_body = _get(url, token, **{"If-None-Match": headers["etag"]})
    assert again == 304 and again_body == b"" and again_headers["etag"] == headers["etag"]


def test_a_proof_is_kept_by_url_for_every_reader(served):
    url = served["base"] + "/proofs/inclusion?index=11&tree_size=40"
    first = _get(url, served["tokens"]["admin"])
    second = _get(url, served["tokens"]["admin"])
    assert first[0] == second[0] == 200 and first[2] == second[2]
    assert (first[1]["x-cache-status"], second[1]["x-cache-status"]) == ("MISS", "HIT")
    assert second[1]["cache-control"] == "private, max-age=31536000, immutable"
    import json

    expected = [base64.b64encode(h).decode() for h in proofs.inclusion_proof(11, 40)]
    assert json.loads(second[2])["proof"] == expected
    # The seatless user gets no kept answer: the check comes first.
    assert _get(url, served["tokens"]["outsider"])[0] == 403


def test_only_answers_are_kept_not_refusals_of_a_size_the_log_has_not_reached(served):
    url = served["base"] + "/proofs/inclusion?index=1&tree_size=4000"
    for _ in range(2):
        status, headers, body = _get(url, served["tokens"]["admin"])
        assert status == 400 and b"larger than the tree" in body
        assert headers.get("x-cache-status") in (None, "MISS")


def test_a_new_checkpoint_is_served_within_a_second_or_two(served):
    url, token = served["base"] + "/checkpoint", served["tokens"]["admin"]
    _get(url, token)
    services.entries_append(signer=served["signer"], drafts=[Draft("test.sample", {"n": -1})])
    publish_checkpoint()
    deadline = time.monotonic() + 5
    while True:
        status, headers, body = _get(url, token)
        assert status == 200
        if body.decode().splitlines()[1] == "41":
            assert headers["etag"].startswith('"41-')
            break
        assert time.monotonic() < deadline, "the new checkpoint did not come through nginx"
        time.sleep(0.2)


def test_a_revoked_token_stops_reading_within_the_ten_seconds_its_yes_is_kept(served):
    token, plaintext = served["tokens"]["revocable"]
    url = served["base"] + "/proofs/inclusion?index=2&tree_size=40"
    assert _get(url, plaintext)[0] == 200
    token.revoke()  # (the module's fixture keeps the database open to it)
    revoked_at = time.monotonic()
    while True:
        status, _, body = _get(url, plaintext)
        if status == 401:
            assert b"revoked" in body  # the application's own refusal
            break
        assert status == 200
        assert time.monotonic() - revoked_at < 12, "still reading 12 s after revocation"
        time.sleep(0.5)
