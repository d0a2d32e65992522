"""What the collection makes of each answer: a witness with an ML-DSA-44 key beside its
Ed25519 one (a real process), and witnesses that misbehave (real HTTP servers on
loopback answering what a broken or hostile witness would): a cosignature by another
key, a 409 without its size, a size that never settles, an HTML error page."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from consortium.governance.witnesses import witness_register
from ledger.keys import log_signer
from ledger.models import Cosignature, WitnessAlarm, WitnessContact
from ledger.witness import mldsa
from ledger.witness.cosignature import generate_cosigner
from tests import worlds
from tests.steps.cosigning import grow, recording
from tests.steps.ledger import log_vkey
from tests.steps.witness import keygen, start_witness, stop

delegates = worlds.shared("delegates")


def test_an_ml_dsa_cosignature_is_verified_and_kept_beside_the_ed25519_one(delegates, tmp_path):
    ed_key, ed_vkey = keygen(tmp_path, "witness.fr.example")
    pq_key, pq_vkey = keygen(tmp_path, "witness.fr.example/pq", "ml-dsa-44")
    proc, addr = start_witness(tmp_path, [ed_key, pq_key], [f"{log_signer().name} {log_vkey()}"])
    try:
        witness_register(
            actor=delegates["fr"],
            member="FR",
            url=f"http://{addr[0]}:{addr[1]}",
            vkey=ed_vkey,
            mldsa_vkey=pq_vkey,
        )
        cp = grow(2)
    finally:
        stop(proc)
    kept = Cosignature.objects.filter(checkpoint=cp)
    assert kept.count() == 2
    assert {c.key_id for c in kept} == {
        mldsa.parse_mldsa_vkey(pq_vkey).key_id.hex(),
        ed_vkey.split("+")[1],
    }
    assert all(c.timestamp > 0 and c.line.endswith("\n") for c in kept)


def test_where_ml_dsa_cannot_be_checked_only_the_ed25519_cosignature_is_kept(
    delegates, tmp_path, monkeypatch
):
    ed_key, ed_vkey = keygen(tmp_path, "witness.fr.example")
    pq_key, pq_vkey = keygen(tmp_path, "witness.fr.example/pq", "ml-dsa-44")
    proc, addr = start_witness(tmp_path, [ed_key, pq_key], [f"{log_signer().name} {log_vkey()}"])
    # This server, not the witness, lacks ML-DSA-44.
    monkeypatch.setattr(mldsa, "AVAILABLE", False)
    try:
        witness_register(
            actor=delegates["fr"],
            member="FR",
            url=f"http://{addr[0]}:{addr[1]}",
            vkey=ed_vkey,
            mldsa_vkey=pq_vkey,
        )
        cp = grow(2)
    finally:
        stop(proc)
    assert [c.key_id for c in Cosignature.objects.filter(checkpoint=cp)] == [ed_vkey.split("+")[1]]
    assert WitnessContact.objects.get().last_error == ""


class Misbehaving:
    """A loopback HTTP server answering every add-checkpoint with ``answer(body)``:
    (status, content type, text)."""

    def __init__(self, answer):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, ctype, text = answer(body)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                outer.bodies.append(body)

            def log_message(self, *args):
                pass

        self.bodies = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def impostor():
    servers = []

    def make(answer):
        servers.append(Misbehaving(answer))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def register(delegates, url: str, name: str = "witness.fr.example"):
    cosigner = generate_cosigner(name)
    witness_register(actor=delegates["fr"], member="FR", url=url, vkey=cosigner.verifier.vkey())
    return cosigner


def test_a_cosignature_by_another_key_is_refused_and_nothing_kept(delegates, impostor):
    other = generate_cosigner("witness.fr.example")  # the same name, another key

    def answer(body):
        note = body.decode().split("\n\n", 1)[1]
        text = note[: note.rindex("\n\n") + 1]
        return 200, "text/plain; charset=utf-8", other.cosign(text, 1_700_000_000)

    server = impostor(answer)
    register(delegates, server.url)
    cp = grow(2)
    assert not Cosignature.objects.filter(checkpoint=cp).exists()
    assert "not a registered key" in WitnessContact.objects.get().last_error
    assert not WitnessAlarm.objects.exists()


def test_a_409_without_its_size_is_an_error_not_a_retry(delegates, impostor):
    server = impostor(lambda body: (409, "text/plain", "conflict\n"))
    register(delegates, server.url)
    grow(2)
    assert len(server.bodies) == 1
    assert "409 without a text/x.tlog.size body" in WitnessContact.objects.get().last_error


def test_a_size_that_never_settles_stops_after_the_retries(delegates, impostor, settings):
    settings.LEDGER_WITNESS_RETRIES = 2
    sizes = iter(range(1, 100))
    # Always "the size is another one", each below the checkpoint's.
    server = impostor(lambda body: (409, "text/x.tlog.size", f"{next(sizes)}\n"))
    register(delegates, server.url)
    grow(5)
    assert len(server.bodies) == 3  # the first request and two retries
    assert [b.split(b"\n", 1)[0] for b in server.bodies] == [b"old 0", b"old 1", b"old 2"]
    assert "still 409 after 3 requests" in WitnessContact.objects.get().last_error
    assert not WitnessAlarm.objects.exists()


def test_an_html_error_page_is_not_quoted(delegates, impostor, monkeypatch):
    server = impostor(lambda body: (500, "text/html", "<h1>internal secrets</h1>"))
    register(delegates, server.url)
    sent = recording(monkeypatch)
    grow(2)
    assert [s for _, _, s in sent] == [500]
    error = WitnessContact.objects.get().last_error
    assert error == "500: (no text/plain answer)"
