"""The server's requests to witnesses go only where the settings allow (no server-side
request forgery): registration refuses what it can see in the URL, and every connection
resolves the host once, checks each address and connects to a checked one. Real sockets
throughout: HTTP(S) servers on loopback that record what reaches them, and a witness as
a real process.

The suite runs with ``LEDGER_WITNESS_ALLOW_PRIVATE`` on (its witnesses are on
127.0.0.1); these tests turn it off.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consortium.governance.changes import member_signer
from consortium.governance.witnesses import witness_register
from ledger import services
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.cosign import egress
from ledger.cosign.collect import post
from ledger.keys import log_origin, log_signer
from ledger.models import Cosignature, Entry, Witness, WitnessAlarm, WitnessContact
from ledger.witness.cosignature import generate_cosigner
from tests import worlds
from tests.steps.api import api_as
from tests.steps.cosigning import grow
from tests.steps.governance import italy_with_an_external_key
from tests.steps.ledger import log_vkey
from tests.steps.witness import keygen, start_witness, stop

delegates = worlds.shared("delegates")

net = ipaddress.ip_network


@pytest.fixture
def guarded(settings):
    """The production default: only global addresses."""
    settings.LEDGER_WITNESS_ALLOW_PRIVATE = False
    settings.LEDGER_WITNESS_ALLOWED_NETWORKS = ()
    return settings


class Recorder:
    """An HTTP server on loopback that answers 404 and records each request's Host."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        seen = self.seen = []
        self.sni = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append((self.path, self.headers.get("Host")))
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "9")
                self.end_headers()
                self.wfile.write(b"not here\n")

            def log_message(self, *args):
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family})
        self.server = server_class((host, 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    servers = []

    def start(host="127.0.0.1", tls=None):
        servers.append(Recorder(host, tls))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


# --- registration ---------------------------------------------------------------------


def body(url: str, name: str = "witness.fr.example") -> dict:
    vkey = generate_cosigner(name).verifier.vkey()
    return {"member": "FR", "url": url, "vkey": vkey, "mldsa_vkey": None}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://user:secret@witness.fr.example", "user information"),
        ("https://witness.fr.example@10.0.0.1", "user information"),
        ("https://witness.fr.example#here", "fragment"),
        ("https://witness.fr.example?a=1", "query"),
        ("gopher://witness.fr.example", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://witness.fr.example:99999", "port"),
        ("http://127.0.0.1:6379", "127.0.0.1 is refused (loopback)"),
        ("http://10.1.2.3:5432", "10.1.2.3 is refused (private)"),
        ("http://192.168.1.1", "(private)"),
        ("http://169.254.169.254", "169.254.169.254 is refused (link-local)"),
        ("http://0.0.0.0:8000", "(unspecified)"),
        ("http://224.0.0.1", "(multicast)"),
        ("http://240.0.0.1", "(reserved)"),
        ("http://100.64.0.1", "(not a global address)"),
        ("http://[::1]:8000", "::1 is refused (loopback)"),
        ("http://[fe80::1%25eth0]", "(link-local)"),
        ("http://[fd00::1]", "(private)"),
        ("http://[::ffff:127.0.0.1]", "it carries 127.0.0.1, loopback"),
        ("http://[::ffff:169.254.169.254]", "it carries 169.254.169.254, link-local"),
        ("http://[2002:a00:1::1]", "it carries 10.0.0.1, private"),
        ("http://[64:ff9b::a9fe:a9fe]", "it carries 169.254.169.254, link-local"),
        ("http://2130706433", "four decimal numbers"),
        ("http://127.1", "four decimal numbers"),
        ("http://0x7f.0.0.1", "four decimal numbers"),
        ("http://localhost:8000", "the server itself"),
        ("http://admin.localhost", "the server itself"),
    ],
)
def test_registration_refuses_where_the_server_must_not_send(delegates, guarded, url, why):
    before = Entry.objects.count()
    r = api_as(delegates["fr"]).post("/api/v1/witnesses", body(url), format="json")
    assert r.status_code == 400, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert why in r.json()["detail"], r.json()
    assert Entry.objects.count() == before
    assert not Witness.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://witness.fr.example",
        "https://93.184.215.14:8443/witness",
        "http://[2606:4700:4700::1111]",
    ],
)
def test_registration_takes_names_and_global_addresses(delegates, guarded, url):
    r = api_as(delegates["fr"]).post("/api/v1/witnesses", body(url), format="json")
    assert r.status_code == 201, r.content
    assert Witness.objects.get().url == url


def test_a_listed_network_may_be_registered(delegates, guarded):
    guarded.LEDGER_WITNESS_ALLOWED_NETWORKS = (net("10.20.0.0/16"), net("fd00:1::/32"))
    fr = api_as(delegates["fr"])
    assert (
        fr.post("/api/v1/witnesses", body("http://10.20.3.4:8080"), format="json").status_code
        == 201
    )
    r = fr.post(
        "/api/v1/witnesses", body("http://10.21.0.1", "witness.fr.example/2"), format="json"
    )
    assert r.status_code == 400 and "10.21.0.1 is refused (private)" in r.json()["detail"]
    r = fr.post(
        "/api/v1/witnesses", body("http://[fd00:1::5]", "witness.fr.example/3"), format="json"
    )
    assert r.status_code == 201, r.content


def test_a_members_own_signed_registration_is_held_to_the_same_check(delegates, guarded):
    it_key, it_user = italy_with_an_external_key(delegates)
    payload = {**body("http://169.254.169.254", "witness.it.example"), "member": "IT"}
    env = new_envelope(kind="witness.registered", payload=payload, author=it_key.fingerprint)
    sig = sign_envelope(env, it_key.signing_key, log_origin()).signature
    before = Entry.objects.count()
    r = api_as(it_user).post(
        "/api/v1/ledger/entries",
        {"envelope": env, "signature": base64.b64encode(sig).decode()},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert "169.254.169.254 is refused (link-local)" in r.json()["detail"]
    assert Entry.objects.count() == before


def test_what_the_record_says_does_not_depend_on_the_settings_but_the_guard_holds(
    delegates, guarded, recorder
):
    """An entry already on the ledger (another server's settings, or an older one) is
    applied as it says on replay: the projection is everyone's, the settings are this
    server's. The connection is what is refused."""
    target = recorder()
    services.entry_append(
        signer=member_signer("FR"),
        kind="witness.registered",
        payload=body(f"http://127.0.0.1:{target.port}"),
    )
    assert Witness.objects.get().url == f"http://127.0.0.1:{target.port}"
    grow(1)
    assert target.seen == []
    error = WitnessContact.objects.get(witness="witness.fr.example").last_error
    assert "resolves to 127.0.0.1 (loopback)" in error


# --- the addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.2", "loopback"),
        ("172.16.0.1", "private"),
        ("169.254.0.1", "link-local"),
        ("198.18.0.1", "private"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("ff02::1", "multicast"),
        ("fec0::1", "site-local"),
        ("2001:db8::1", "private"),
        ("::ffff:10.0.0.1", "it carries 10.0.0.1, private"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "it carries 127.0.0.1, loopback"),
    ],
)
def test_why_an_address_is_refused(address, why):
    assert egress.why_refused(ipaddress.ip_address(address)) == why


# --- connecting ------------------------------------------------------------------------


def test_a_name_resolving_to_loopback_is_refused_at_connection_and_nothing_is_sent(
    delegates, settings, recorder, caplog
):
    """Registered while private addresses were allowed, then the guard is on: the name
    ``localhost`` is resolved at each connection, its address refused, nothing reaches
    the server behind it; the witness's last error says which address and why, and it
    is no alarm."""
    target = recorder()
    witness_register(actor=delegates["fr"], **body(f"http://localhost:{target.port}"))
    settings.LEDGER_WITNESS_ALLOW_PRIVATE = False
    settings.LEDGER_WITNESS_ALLOWED_NETWORKS = ()
    with caplog.at_level(logging.WARNING, logger="ledger.log"):
        grow(2)
    assert target.seen == []
    error = WitnessContact.objects.get(witness="witness.fr.example").last_error
    assert "refused to connect: localhost resolves to" in error
    assert "127.0.0.1 (loopback)" in error
    assert "refused to connect: localhost" in caplog.text
    assert not WitnessAlarm.objects.exists()
    # The same server, once its network is listed, is reached by name.
    settings.LEDGER_WITNESS_ALLOWED_NETWORKS = (net("127.0.0.0/8"),)
    grow(1)
    assert target.seen == [("/add-checkpoint", f"localhost:{target.port}")]
    assert WitnessContact.objects.get(witness="witness.fr.example").last_error.startswith("404")


def test_a_real_witness_on_a_listed_network_cosigns(delegates, guarded, tmp_path):
    guarded.LEDGER_WITNESS_ALLOWED_NETWORKS = (net("127.0.0.0/8"),)
    key, vkey = keygen(tmp_path, "witness.fr.example")
    proc, addr = start_witness(tmp_path, key, [f"{log_signer().name} {log_vkey()}"])
    try:
        witness_register(
            actor=delegates["fr"], member="FR", url=f"http://{addr[0]}:{addr[1]}", vkey=vkey
        )
        cp = grow(2)
        assert Cosignature.objects.filter(checkpoint=cp, witness="witness.fr.example").exists()
        # Off the list again: the next checkpoint is not sent, and that is an error only.
        guarded.LEDGER_WITNESS_ALLOWED_NETWORKS = ()
        cp = grow(1)
    finally:
        stop(proc)
    assert not Cosignature.objects.filter(checkpoint=cp).exists()
    error = WitnessContact.objects.get(witness="witness.fr.example").last_error
    assert f"resolves to {addr[0]} (loopback)" in error
    assert not WitnessAlarm.objects.exists()


def test_ipv6_loopback_and_ipv4_mapped_addresses(guarded, recorder):
    v6 = recorder("::1")
    v4 = recorder("127.0.0.1")
    with pytest.raises(egress.EgressRefused, match=r"::1 \(loopback\)"):
        post(f"http://[::1]:{v6.port}", b"x", 2)
    with pytest.raises(egress.EgressRefused, match=r"it carries 127.0.0.1, loopback"):
        post(f"http://[::ffff:127.0.0.1]:{v4.port}", b"x", 2)
    assert v6.seen == v4.seen == []
    # ::1 listed: IPv6 loopback is reached, IPv4 loopback (mapped or not) still refused.
    guarded.LEDGER_WITNESS_ALLOWED_NETWORKS = (net("::1/128"),)
    assert post(f"http://[::1]:{v6.port}", b"x", 2).status == 404
    assert v6.seen == [("/add-checkpoint", f"[::1]:{v6.port}")]
    with pytest.raises(egress.EgressRefused, match=r"it carries 127\.0\.0\.1"):
        post(f"http://[::ffff:127.0.0.1]:{v4.port}", b"x", 2)
    # 127.0.0.0/8 listed: the mapped form of a listed address is reached (as IPv4).
    guarded.LEDGER_WITNESS_ALLOWED_NETWORKS = (net("127.0.0.0/8"),)
    assert post(f"http://[::ffff:127.0.0.1]:{v4.port}", b"x", 2).status == 404
    assert len(v4.seen) == 1


def test_no_url_with_user_information_or_another_scheme_is_requested(settings, recorder):
    """Witnesses registered before these checks are held to them when they are asked."""
    target = recorder()
    with pytest.raises(egress.EgressRefused, match="user information"):
        post(f"http://u:p@127.0.0.1:{target.port}", b"x", 2)
    with pytest.raises(egress.EgressRefused, match="not an http"):
        post(f"ftp://127.0.0.1:{target.port}", b"x", 2)
    with pytest.raises(egress.EgressRefused, match="not a valid port"):
        post("http://127.0.0.1:99999", b"x", 2)
    assert target.seen == []


def _certificate(tmp_path, name: str):
    """A self-signed certificate for ``name``: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / f"{name}.pem").write_bytes(pem)
    (tmp_path / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
    client = ssl.create_default_context(cadata=pem.decode())
    return server, client


def test_https_to_the_checked_address_keeps_sni_and_the_certificate_check_for_the_name(
    guarded, recorder, tmp_path
):
    """The connection goes to the address the guard checked, but TLS is for the URL's
    host name: its SNI, and a certificate that must be valid for that name."""
    guarded.LEDGER_WITNESS_ALLOWED_NETWORKS = (net("127.0.0.0/8"),)
    server_tls, client_tls = _certificate(tmp_path, "localhost")
    good = recorder("127.0.0.1", server_tls)
    assert post(f"https://localhost:{good.port}", b"x", 2, tls=client_tls).status == 404
    assert good.sni == ["localhost"]
    assert good.seen == [("/add-checkpoint", f"localhost:{good.port}")]
    # A certificate for another name: refused by the client, nothing sent.
    other_tls, other_client = _certificate(tmp_path, "witness.other.example")
    wrong = recorder("127.0.0.1", other_tls)
    with pytest.raises(ssl.SSLCertVerificationError):
        post(f"https://localhost:{wrong.port}", b"x", 2, tls=other_client)
    assert wrong.sni == ["localhost"]
    assert wrong.seen == []
