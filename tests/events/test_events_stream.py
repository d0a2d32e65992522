"""The events stream served by a real ASGI server (uvicorn, a child process) on the test
database, read by a real HTTP client while this process appends: events in order with
their indexes as ids, resumed exactly after Last-Event-ID (no gap, no duplicate) after the
client or the server went away, filtered as the entries list is, refused without a seat."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.renderers import JSONRenderer

from consortium.governance.models import ApiToken
from ledger import services
from ledger.api.serializers import EntrySerializer
from ledger.keys import log_signer
from ledger.models import Entry
from tests.events.servers import EventsServer, Stream, entry_of

pytestmark = pytest.mark.slow


def _append(signer, n: int, kind: str = "test.sample") -> list[int]:
    return [
        services.entry_append(signer=signer, kind=kind, payload={"n": i}).index for i in range(n)
    ]


@pytest.fixture
def world(committed_db):
    services.ledger_init()
    _, fr = services.key_register(signer=log_signer(), kind="service", owner="FR", name="fr")
    _, de = services.key_register(signer=log_signer(), kind="service", owner="DE", name="de")
    reader = get_user_model().objects.create_superuser("events-reader", password="x-unused-9")
    seatless = get_user_model().objects.create_user("events-nobody", password="x-unused-9")
    _, token = ApiToken.issue(user=reader, days=1)
    _, nobody = ApiToken.issue(user=seatless, days=1)
    # On PostgreSQL, nothing but the append's NOTIFY wakes the stream within the client's
    # 20 s timeout (no polling, no keep-alive wake-up); on SQLite, polling does.
    if connection.vendor == "postgresql":
        wake = {"LEDGER_EVENTS_POLL_SECONDS": "600", "LEDGER_EVENTS_KEEPALIVE_SECONDS": "600"}
    else:
        wake = {"LEDGER_EVENTS_POLL_SECONDS": "0.2", "LEDGER_EVENTS_KEEPALIVE_SECONDS": "600"}
    server = EventsServer(**wake).start()
    yield {
        "fr": fr,
        "de": de,
        "auth": {"Authorization": f"Bearer {token}"},
        "nobody": {"Authorization": f"Bearer {nobody}"},
        "server": server,
    }
    server.stop()


def test_a_client_follows_resumes_exactly_after_its_last_event_and_survives_a_restart(world):
    server, auth = world["server"], world["auth"]
    stream = Stream(server.port, headers=auth)
    assert stream.status == 200
    assert stream.response.getheader("Content-Type").startswith("text/event-stream")
    head = stream.next()
    # From now: the stream says where it joined, so a reconnection resumes from there.
    assert head["retry"] == "3000" and int(head["id"]) == services.tree_size() - 1

    first = _append(world["fr"], 3)
    got = [stream.next_event() for _ in first]
    assert [int(m["id"]) for m in got] == first
    assert {m["event"] for m in got} == {"test.sample"}
    # The data is the entry exactly as the entries API renders it.
    entry = Entry.objects.get(index=first[0])
    assert got[0]["data"] == JSONRenderer().render(EntrySerializer(entry).data).decode()

    # The client goes away; entries are appended meanwhile; it comes back with its id.
    stream.close()
    missed = _append(world["fr"], 2)
    stream = Stream(server.port, headers={**auth, "Last-Event-ID": got[-1]["id"]})
    stream.next()  # the head
    assert [int(stream.next_event()["id"]) for _ in missed] == missed
    last = missed[-1]

    # The server stops mid-stream: the client's stream ends; nothing is lost when it
    # reconnects to the new server with its last id.
    server.stop()
    with pytest.raises((EOFError, OSError)):
        while True:
            stream.next()
    stream.close()
    during = _append(world["fr"], 2)
    server.start()
    stream = Stream(server.port, headers={**auth, "Last-Event-ID": str(last)})
    stream.next()
    after = _append(world["fr"], 1)
    assert [int(stream.next_event()["id"]) for _ in during + after] == during + after
    stream.close()


def test_kind_and_member_filter_the_stream_as_they_filter_the_entries_list(world):
    server, auth = world["server"], world["auth"]
    start = services.tree_size() - 1
    _append(world["fr"], 2, kind="test.a")
    _append(world["de"], 2, kind="test.a")
    _append(world["de"], 1, kind="test.b")
    _append(world["fr"], 1, kind="test.c")
    query = f"?after={start}&kind=test.a&kind=test.c&member=DE"
    stream = Stream(server.port, query, headers=auth)
    stream.next()
    first = entry_of(stream.next_event())
    second = entry_of(stream.next_event())
    expected = [
        e.index
        for e in Entry.objects.filter(index__gt=start, kind__in=["test.a", "test.c"])
        if e.author == world["de"].fingerprint
    ]
    assert [first["index"], second["index"]] == expected
    assert {first["author"], second["author"]} == {world["de"].fingerprint}
    # ...and nothing else: the next entry that matches is the next event.
    later = _append(world["de"], 1, kind="test.c")
    assert int(stream.next_event()["id"]) == later[0]
    stream.close()
    # `from` starts at an index; several streams of one server process share one LISTEN.
    streams = [Stream(server.port, f"?from={later[0]}", headers=auth) for _ in range(3)]
    for stream in streams:
        stream.next()
        assert int(stream.next_event()["id"]) == later[0]
    if connection.vendor == "postgresql":
        # Idle, they hold one connection between them: the server's LISTEN.
        deadline = time.monotonic() + 10
        while True:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
                held = [row[0] for row in cur.fetchall()]
            if held == ["LISTEN ledger_entries"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert held == ["LISTEN ledger_entries"]
    for stream in streams:
        stream.close()


def test_the_stream_refuses_without_a_seat_or_with_a_bad_cursor(world):
    port = world["server"].port
    anonymous = Stream(port)
    assert anonymous.status == 401
    assert anonymous.response.getheader("Content-Type") == "application/problem+json"
    assert json.loads(anonymous.response.read())["status"] == 401
    seatless = Stream(port, headers=world["nobody"])
    assert seatless.status == 403
    bad = Stream(port, headers={**world["auth"], "Last-Event-ID": "abc"})
    assert bad.status == 400
    assert "Last-Event-ID" in json.loads(bad.response.read())["detail"]
    assert Stream(port, "?after=x", headers=world["auth"]).status == 400
    assert Stream(port, "?kind=" + "k" * 65, headers=world["auth"]).status == 400


def test_an_idle_stream_is_kept_alive_by_comment_lines(committed_db):
    services.ledger_init()
    reader = get_user_model().objects.create_superuser("events-idle", password="x-unused-9")
    _, token = ApiToken.issue(user=reader, days=1)
    server = EventsServer(LEDGER_EVENTS_KEEPALIVE_SECONDS="0.3").start()
    try:
        stream = Stream(server.port, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        stream.next()
        line = stream.response.readline()
        assert line == b": keep-alive\n"
        stream.close()
    finally:
        server.stop()
