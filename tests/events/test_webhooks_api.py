"""Subscribing through the API: who sees and manages which subscriptions (France's
delegates never see Germany's), what is refused before anything is written, and the
delivery log an owner reads after a real delivery to a receiver on this machine."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from consortium.webhooks import sending
from consortium.webhooks.models import WebhookDelivery, WebhookSubscription
from ledger import services
from tests.steps.api import api_as

URL = "https://partner.example/hooks"


def _subscribe(user, **body):
    return api_as(user).post("/api/v1/webhooks", {"url": URL, **body}, format="json")


def test_a_members_delegates_see_and_manage_its_subscriptions_and_no_one_elses(delegates):
    made = _subscribe(delegates["fr"], kinds=["vote.cast"])
    assert made.status_code == 201, made.content
    hook = made.json()
    assert hook["owner"] == "FR" and hook["kinds"] == ["vote.cast"] and hook["state"] == "active"
    assert hook["cursor"] == services.tree_size() - 1  # from now
    path = f"/api/v1/webhooks/{hook['id']}"
    assert _subscribe(delegates["rec_de"]).json()["owner"] == "DE"

    def listed(user):
        return {h["owner"] for h in api_as(user).get("/api/v1/webhooks").json()["results"]}

    assert listed(delegates["rec_fr"]) == {"FR"}
    assert listed(delegates["de"]) == {"DE"}
    assert listed(delegates["aud"]) == listed(delegates["ops"]) == {"FR", "DE"}
    # Germany's delegates neither read nor touch France's: not found, as if not there.
    for user in ("de", "rec_de", "obs_de"):
        client = api_as(delegates[user])
        assert client.get(path).status_code == 404
        assert client.get(path + "/deliveries").status_code == 404
        assert client.delete(path).status_code == 404
        assert client.post(path + "/resume", {}, format="json").status_code == 404
    # Readers who may not manage: an observer and the auditor subscribe nothing.
    assert _subscribe(delegates["obs_de"]).status_code == 403
    assert _subscribe(delegates["aud"]).status_code == 403
    assert api_as(delegates["aud"]).delete(path).status_code == 403
    assert _subscribe(delegates["newcomer"]).status_code == 403
    assert APIClient().get("/api/v1/webhooks").status_code == 401
    # France's recorder manages France's.
    assert api_as(delegates["rec_fr"]).get(path + "/deliveries").json()["results"] == []
    assert api_as(delegates["rec_fr"]).delete(path).status_code == 204
    assert not WebhookSubscription.objects.filter(owner="FR").exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"url": "http://partner.example/hooks"}, "not an https URL"),
        ({"url": "https://127.0.0.1/hooks"}, "loopback"),
        ({"url": "https://10.1.2.3/hooks"}, "private"),
        ({"url": "https://169.254.169.254/latest"}, "link-local"),
        ({"url": "https://localhost/hooks"}, "loopback"),
        ({"url": "https://user:pw@partner.example/"}, "user information"),
        ({"url": "https://[::1/hooks"}, "is not a URL"),
        ({"url": "https://partner.example:99999/"}, "not a valid port"),
        ({"url": URL, "kinds": ["k" * 65]}, "no more than 64 characters"),
        ({"url": URL, "after": 10**6}, "beyond the last entry"),
        ({"url": URL, "secret": "x"}, "unknown field"),
    ],
)
def test_a_bad_subscription_is_refused_and_nothing_is_written(delegates, settings, body, detail):
    settings.LEDGER_WITNESS_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOW_HTTP = False
    answer = api_as(delegates["fr"]).post("/api/v1/webhooks", body, format="json")
    assert answer.status_code == 400, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert detail in answer.json()["detail"]
    assert not WebhookSubscription.objects.exists()


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[dict] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.seen.append(dict(self.headers))
        self.send_response(_Receiver.answers.pop(0) if _Receiver.answers else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_owner_reads_every_attempt_in_the_delivery_log(delegates, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.answers, _Receiver.seen = [503], []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        made = _subscribe(delegates["fr"], url=url, after=services.tree_size() - 2)
        hook = made.json()
        index = hook["cursor"] + 1
        # One run: the 503 is recorded and the next attempt put off; a run before then
        # sends nothing; once due, the same event goes again and is delivered.
        assert sending.deliver(hook["id"]) == 0
        assert sending.deliver(hook["id"]) == 0
        WebhookSubscription.objects.filter(pk=hook["id"]).update(next_attempt_at=None)
        assert sending.deliver(hook["id"]) == 1
    finally:
        server.shutdown()
    assert [h["webhook-id"] for h in _Receiver.seen] == [f"entry_{index}"] * 2
    log = api_as(delegates["fr"]).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
    assert [
        (d["index"], d["attempt"], d["status_code"], d["delivered"]) for d in log["results"]
    ] == [
        (index, 2, 204, True),
        (index, 1, 503, False),
    ]
    assert log["results"][1]["error"] == "answered 503" and log["results"][1]["next_attempt_at"]
    sub = WebhookSubscription.objects.get(pk=hook["id"])
    assert sub.cursor == index and sub.failures == 0
    assert WebhookDelivery.objects.count() == 2


def test_the_wsgi_server_answers_a_bounded_stream(delegates):
    """Under WSGI the stream is what is there after the cursor, then it ends."""
    answer = api_as(delegates["de"]).get(
        "/api/v1/ledger/events?after=0&kind=seat.assigned", HTTP_ACCEPT="text/event-stream"
    )
    assert answer.status_code == 200 and answer["Content-Type"] == "text/event-stream"
    text = b"".join(answer.streaming_content).decode()
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    expected = list(
        services.Entry.objects.filter(index__gt=0, kind="seat.assigned").values_list(
            "index", flat=True
        )
    )
    assert text.startswith("retry: 3000\nid: 0\n\n")
    assert ids[1:] == expected and len(expected) > 3


def test_the_entries_list_takes_several_kinds_and_a_member_and_pages_on_with_them(delegates):
    api = api_as(delegates["it"])
    kinds = ["seat.assigned", "member.admitted"]
    expected = list(services.Entry.objects.filter(kind__in=kinds).values_list("index", flat=True))
    page = api.get("/api/v1/ledger/entries?kind=seat.assigned&kind=member.admitted&limit=2").json()
    assert [e["index"] for e in page["entries"]] == expected[:2]
    assert page["next"].endswith(
        f"after={expected[1]}&limit=2&kind=seat.assigned&kind=member.admitted"
    )
    secretariat = services.Key.objects.get(kind="service", owner="secretariat").fingerprint
    signed = api.get("/api/v1/ledger/entries?member=secretariat&limit=1000").json()["entries"]
    assert signed and {e["author"] for e in signed} == {secretariat}
    assert api.get("/api/v1/ledger/entries?member=nobody").json()["entries"] == []


def test_a_subscription_passes_over_what_its_filters_leave_out_and_old_attempts_are_forgotten(
    delegates, settings
):
    hook = _subscribe(delegates["fr"], kinds=["no.such.kind"], after=-1).json()
    # Nothing matches: no request is made (partner.example is never resolved), and the
    # cursor moves to the head, so the fan-out stops waking it.
    assert sending.deliver(hook["id"]) == 0
    assert WebhookSubscription.objects.get(pk=hook["id"]).cursor == services.tree_size() - 1
    assert sending.behind() == []
    assert not WebhookDelivery.objects.exists()

    sub = WebhookSubscription.objects.get(pk=hook["id"])
    now = timezone.now()
    for days in (31, 29):
        WebhookDelivery.objects.create(
            subscription=sub,
            index=0,
            event_id="entry_0",
            attempt=1,
            status_code=500,
            duration_ms=1,
            attempted_at=now - timedelta(days=days),
            delivered=False,
        )
    assert sending.prune() == 1
    assert WebhookDelivery.objects.count() == 1


def test_a_subscription_failing_again_and_again_is_paused_and_its_member_told(
    delegates, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.LANGUAGE_CODE = "fr"
    delegates["rec_fr"].email = "rec@fr.example"
    delegates["rec_fr"].save()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.answers, _Receiver.seen = [500, 500], []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks?token=partner-secret"
        hook = _subscribe(delegates["fr"], url=url, after=services.tree_size() - 2).json()
        with django_capture_on_commit_callbacks(execute=True):
            sending.deliver(hook["id"])
            WebhookSubscription.objects.filter(pk=hook["id"]).update(next_attempt_at=None)
            sending.deliver(hook["id"])
            WebhookSubscription.objects.filter(pk=hook["id"]).update(next_attempt_at=None)
            assert sending.deliver(hook["id"]) == 0  # paused: nothing more is sent
    finally:
        server.shutdown()
    assert len(_Receiver.seen) == 2
    sub = WebhookSubscription.objects.get(pk=hook["id"])
    assert sub.state == "failing" and sub.next_attempt_at is None
    assert [m.to for m in mailoutbox] == [["rec@fr.example"]]
    notice = mailoutbox[0]
    assert notice.subject.endswith(f"Webhook suspendu : {sub.id}")
    assert "2 tentatives échouées" in notice.body and "partner-secret" not in notice.body
    # Its member's delegate resumes it, and the next attempt is made.
    _Receiver.answers = []
    resumed = api_as(delegates["rec_fr"]).post(
        f"/api/v1/webhooks/{sub.id}/resume", {}, format="json"
    )
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"


def test_a_url_the_settings_no_longer_allow_is_not_called_and_the_attempt_says_why(
    delegates, settings
):
    settings.WEBHOOK_ALLOW_HTTP = True
    hook = _subscribe(
        delegates["fr"], url="http://127.0.0.1:9/hooks", after=services.tree_size() - 2
    ).json()
    settings.LEDGER_WITNESS_ALLOW_PRIVATE = False
    assert sending.deliver(hook["id"]) == 0
    attempt = WebhookDelivery.objects.get(subscription_id=hook["id"])
    assert attempt.status_code is None and not attempt.delivered
    assert attempt.error.startswith("EgressRefused: 127.0.0.1 is refused (loopback)")
