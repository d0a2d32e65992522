"""Witnessing end to end, every step over real HTTP between separate processes, as a
consortium runs it: the application served by gunicorn (against the test database, its
data committed), and three members' witnesses (``python -m ledger.witness serve``, Django
unimportable), each with its own key, its own SQLite state and its own port, each keeping
a verified copy of the log (``--mirror``) read from the application's tlog-tiles with a
bearer token of its member's delegate.

The server runs as a deployment without a broker does (``CELERY_BROKER_URL`` unset, the
README's "tasks run in-process"): the request that appends an entry publishes the
checkpoint and collects the witnesses' cosignatures before it answers. With a broker, a
Celery worker runs the same two tasks (tests/ledger/test_cosigning_celery.py). What Celery
beat would run on its schedule, deciding the proposals past their deadline and offering
the latest checkpoint to the witnesses that missed it, is run by hand as the operator
would: ``manage.py consortium decide`` and ``manage.py ledger cosign --missing`` as
processes of their own.

Personas (``personas.found_delegates``): the signatories of France, Germany and Italy
register their member's witness and vote; the secretariat opens the proposal adopting
the witness policy and seats people (entries); France's recorder, Germany's observer and
Italy's signatory lend their member's witness a token to read the tiles; the auditor
fetches the checkpoint and a tlog-proof and checks them with a policy file of its own.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.models import ApiToken
from ledger.core.note import b64decode_strict
from ledger.core.policy import parse_policy
from ledger.keys import log_signer
from ledger.models import Entry, Witness
from tests import personas
from tests.steps.ledger import ROOT, child_env, log_vkey
from tests.steps.nginx import app_server, free_port
from tests.steps.witness import keygen, start_witness, stop

pytestmark = pytest.mark.slow

MEMBERS = {"FR": "fr", "DE": "de", "IT": "it"}
# Whose token each member's witness reads the tiles with: a delegate of that member.
READERS = {"FR": "rec_fr", "DE": "obs_de", "IT": "it"}


def http(url: str, token: str | None, body: dict | None = None):
    """One request (a JSON POST when ``body``): (status, headers, body bytes)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data)  # noqa: S310 - a local server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:  # noqa: S310 - a local server
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def manage(*argv: str) -> subprocess.CompletedProcess:
    """``manage.py <argv>`` as its own process, on the test database, with no broker."""
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


class Consortium:
    """The people and their tokens, the server's environment and the members' witnesses."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.people = personas.found_delegates()
        names = ["ops", "aud", *MEMBERS.values(), *READERS.values()]
        self.tokens = {n: ApiToken.issue(user=self.people[n], days=1)[1] for n in set(names)}
        self.origin = log_signer().name
        self.vkey = log_vkey()
        self.witnesses: dict[str, dict] = {}
        self.base = ""

    def env(self, **extra: str) -> dict:
        env = {**child_env(), "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "0"}
        env.pop("LEDGER_WITNESS_FAIL_OPEN", None)
        return {**env, **extra}

    def get(self, path: str, who: str = "aud"):
        return http(self.base + path, self.tokens[who])

    def post(self, path: str, who: str, body: dict):
        return http(self.base + path, self.tokens[who], body)

    def prepare_witness(self, code: str) -> dict:
        """Member ``code``'s witness home: its key (keygen), its token file, a port."""
        label = code.lower()
        home = self.tmp / label
        home.mkdir()
        key, vkey = keygen(home, name=f"witness.{label}.example")
        token_file = home / "mirror.token"
        token_file.write_text(self.tokens[READERS[code]] + "\n")
        token_file.chmod(0o600)
        w = {"home": home, "key": key, "vkey": vkey, "name": vkey.split("+", 1)[0]}
        w.update(port=free_port(), token_file=token_file, state=home / "witness.sqlite")
        self.witnesses[code] = w
        return w

    def start_witness(self, code: str) -> dict:
        w = self.witnesses[code]
        mirror = f"{self.origin} {self.base}/api/v1/ledger/tlog"
        w["proc"], _ = start_witness(
            w["home"],
            w["key"],
            [f"{self.origin} {self.vkey}"],
            state=w["state"],
            port=w["port"],
            extra=[
                "--mirror",
                mirror,
                "--token-file",
                str(w["token_file"]),
                "--mirror-interval",
                "0.3",
            ],
        )
        return w

    def stop_witness(self, code: str) -> None:
        stop(self.witnesses[code].pop("proc"))

    def close(self) -> None:
        for w in self.witnesses.values():
            if "proc" in w:
                stop(w["proc"])

    def register(self, code: str, who: str | None = None):
        w = self.witnesses[code]
        body = {"member": code, "url": f"http://127.0.0.1:{w['port']}", "vkey": w["vkey"]}
        return self.post("/api/v1/witnesses", who or MEMBERS[code], body)

    def seat(self, username: str, role: str, member: str) -> int:
        """The secretariat seats a new user: one entry, and (no broker) the checkpoint
        published over it and cosigned before the answer. Returns the tree's size."""
        get_user_model().objects.create_user(username)
        status, _, body = self.post(
            "/api/v1/seats", "ops", {"username": username, "role": role, "member": member}
        )
        assert status == 201, body
        return self.latest_size()

    def latest_size(self) -> int:
        status, _, note = self.get("/api/v1/ledger/checkpoint/latest")
        assert status == 200, note
        return int(note.decode().split("\n")[1])

    def policy_text(self, k: int, *, log: bool = False) -> str:
        """``k`` of the three witnesses; with ``log``, the log's key first (a member's
        own file)."""
        lines = [f"log {self.vkey}"] if log else []
        lines += [f"witness {c.lower()} {w['vkey']}" for c, w in self.witnesses.items()]
        return "\n".join([*lines, f"group members {k} fr de it", "quorum members", ""])


@pytest.fixture
def consortium(committed_db, tmp_path):
    c = Consortium(tmp_path)
    yield c
    c.close()


def served_checkpoint(c: Consortium):
    """``GET /api/v1/ledger/checkpoint``: (status, Witness-Policy, size, note text)."""
    status, headers, body = c.get("/api/v1/ledger/checkpoint")
    text = body.decode()
    size = int(text.split("\n")[1]) if status == 200 else None
    return status, headers.get("witness-policy"), size, text


def cosigners(c: Consortium, note: str, policy_text: str) -> list[str]:
    """Who cosigned ``note``, checked by ``ledger.core.policy`` against the member's own
    policy file; fails if the quorum is not met."""
    got = parse_policy(policy_text).check(note, c.origin)
    assert got.ok, got.why
    return sorted(got.cosigned_by)


def adopt_by_proposal(c: Consortium, text: str) -> None:
    """The secretariat opens a proposal adopting ``text``; France and Germany vote yes
    before its deadline; once it has passed, ``manage.py consortium decide`` (what beat
    runs every minute) accepts it: the policy is adopted."""
    deadline = datetime.now(UTC) + timedelta(seconds=3)
    status, _, body = c.post(
        "/api/v1/proposals",
        "ops",
        {
            "title": "Two of the three members' witnesses cosign every checkpoint",
            "actions": [{"type": "witness.policy", "policy": text}],
            "deadline": deadline.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    )
    assert status == 201, body
    proposal = json.loads(body)["id"]
    for who in ("fr", "de"):
        status, _, body = c.post(f"/api/v1/proposals/{proposal}/votes", who, {"choice": "yes"})
        assert status == 201, body
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.2)
    done = manage("consortium", "decide")
    assert done.returncode == 0, done.stderr
    status, _, body = c.get(f"/api/v1/proposals/{proposal}")
    assert status == 200 and json.loads(body)["state"] == "accepted", body


def wait_for_copy(w: dict, origin: str, size: int, seconds: float = 20) -> int:
    """The size the witness's verified copy holds, once it reaches ``size``."""
    deadline = time.monotonic() + seconds
    held = 0
    while time.monotonic() < deadline:
        if w["state"].exists():
            db = sqlite3.connect(f"file:{w['state']}?mode=ro", uri=True, timeout=5)
            try:
                row = db.execute(
                    "SELECT size FROM mirror_logs WHERE origin = ?", (origin,)
                ).fetchone()
            except sqlite3.OperationalError:
                row = None  # the witness has not made its tables yet
            finally:
                db.close()
            held = row[0] if row else 0
            if held >= size:
                return held
        time.sleep(0.2)
    raise AssertionError(f"{w['name']}'s copy holds {held} entries, not {size}")


def copied_leaves(w: dict, origin: str, size: int) -> list[bytes]:
    db = sqlite3.connect(f"file:{w['state']}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute(
            "SELECT idx, leaf FROM mirror_entries WHERE origin = ? AND idx < ? ORDER BY idx",
            (origin, size),
        ).fetchall()
    finally:
        db.close()
    assert [i for i, _ in rows] == list(range(size))
    return [bytes(leaf) for _, leaf in rows]


def check_tlog_proof(c: Consortium, index: int, policy_file: Path) -> subprocess.CompletedProcess:
    """The entry's tlog-proof and its leaf, fetched over HTTP, checked by the offline
    verifier in a process of its own against the member's policy file."""
    status, headers, proof = c.get(f"/api/v1/ledger/entries/{index}/tlog-proof")
    assert status == 200, proof
    assert headers["witness-policy"] == "met"
    status, _, entry = c.get(f"/api/v1/ledger/entries/{index}")
    assert status == 200, entry
    leaf = b64decode_strict(json.loads(entry)["leaf"], "leaf")
    (c.tmp / "entry.tlog-proof").write_bytes(proof)
    (c.tmp / "entry.leaf").write_bytes(leaf)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.audit",
            "tlog-proof",
            str(c.tmp / "entry.tlog-proof"),
            "--leaf",
            str(c.tmp / "entry.leaf"),
            "--policy",
            str(policy_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_three_members_witnesses_cosign_the_served_checkpoint_over_http(consortium):
    c = consortium
    for code in MEMBERS:
        c.prepare_witness(code)
    with app_server(c.env()) as port:
        c.base = f"http://127.0.0.1:{port}"
        for code in MEMBERS:
            c.start_witness(code)

        # Each member's signatory registers its own witness; Germany's cannot register
        # France's: 403, problem+json, nothing written.
        entries, size = Entry.objects.count(), c.latest_size()
        status, headers, body = c.register("FR", who="de")
        assert status == 403, body
        assert headers["content-type"] == "application/problem+json"
        assert (Entry.objects.count(), c.latest_size()) == (entries, size)
        assert not Witness.objects.exists()
        registered = {}
        for code in MEMBERS:
            status, _, body = c.register(code)
            assert status == 201, body
            registered[code] = json.loads(body)
            assert registered[code]["name"] == c.witnesses[code]["name"]

        # Two of the three, adopted by an accepted proposal.
        adopt_by_proposal(c, c.policy_text(2))

        # The decision is an entry: its checkpoint, cosigned by all three.
        size = c.latest_size()
        status, state, served_size, note = served_checkpoint(c)
        assert (status, state, served_size) == (200, "met", size), note
        assert note.count("\n\u2014 ") == 4  # the log's signature and three cosignatures
        mine = c.tmp / "member.policy"
        mine.write_text(c.policy_text(2, log=True))
        assert cosigners(c, note, mine.read_text()) == ["de", "fr", "it"]
        # A tlog-proof of France's registration, checked offline in its own process.
        done = check_tlog_proof(c, registered["FR"]["registered_in"], mine)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "witness.registered" in done.stdout
        # Each witness's copy reaches the checkpoint's size, and holds the log's leaves.
        leaves = [bytes(e.leaf) for e in Entry.objects.filter(index__lt=size).order_by("index")]
        for w in c.witnesses.values():
            assert wait_for_copy(w, c.origin, size) >= size
            assert copied_leaves(w, c.origin, size) == leaves

        # Italy's witness stops: the next checkpoint still meets two of three.
        c.stop_witness("IT")
        grown = c.seat("obs_fr", "observer", "FR")
        assert grown > size
        status, state, served_size, note = served_checkpoint(c)
        assert (status, state, served_size) == (200, "met", grown), note
        assert cosigners(c, note, mine.read_text()) == ["de", "fr"]
        # A member whose own policy asks for all three refuses a proof against it.
        all_three = c.tmp / "all-three.policy"
        all_three.write_text(c.policy_text(3, log=True))
        done = check_tlog_proof(c, grown - 1, all_three)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "2 of 3 needed (missing: it)" in done.stdout + done.stderr

        # Germany's stops too: the new checkpoint has France's cosignature alone, so the
        # log goes on serving the newest one that meets the policy, and refuses to serve
        # a proof of the new entry against a checkpoint that does not.
        c.stop_witness("DE")
        newest = c.seat("obs_it", "observer", "IT")
        assert newest > grown
        status, state, served_size, note = served_checkpoint(c)
        assert (status, state, served_size) == (200, "met", grown), note
        status, _, body = c.get(f"/api/v1/ledger/entries/{newest - 1}/tlog-proof")
        assert status == 409 and f"(tree size {grown})" in json.loads(body)["detail"]
        status, _, body = c.get("/api/v1/ledger/witnesses")
        listed = {w["name"]: w for w in json.loads(body)["results"]}
        assert listed[c.witnesses["FR"]["name"]]["last_size"] == newest
        for code in ("DE", "IT"):
            assert listed[c.witnesses[code]["name"]]["last_error"], listed
        # France's copy follows the log past what is cosigned enough.
        assert wait_for_copy(c.witnesses["FR"], c.origin, newest) == newest


def test_below_the_policy_the_server_fails_closed_or_open_as_configured(consortium):
    """A consortium that starts before two of its three witnesses are online."""
    c = consortium
    for code in MEMBERS:
        c.prepare_witness(code)
    with app_server(c.env()) as port:
        c.base = f"http://127.0.0.1:{port}"
        c.start_witness("FR")
        for code in MEMBERS:
            status, _, body = c.register(code)
            assert status == 201, body
        adopt_by_proposal(c, c.policy_text(2))
        size = c.latest_size()
        status, headers, body = c.get("/api/v1/ledger/checkpoint")
        assert status == 503 and headers["content-type"] == "application/problem+json"
        detail = json.loads(body)["detail"]
        assert f"size {size}" in detail and "1 of 2 needed" in detail
        assert "witness.de.example, witness.it.example" in detail
        status, _, _ = c.get(f"/api/v1/ledger/entries/{size - 1}/tlog-proof")
        assert status == 503

    # The same server restarted with LEDGER_WITNESS_FAIL_OPEN=1 serves the latest, saying so.
    with app_server(c.env(LEDGER_WITNESS_FAIL_OPEN="1")) as port:
        c.base = f"http://127.0.0.1:{port}"
        status, state, served_size, note = served_checkpoint(c)
        assert (status, state, served_size) == (200, "unmet; fail-open", size), note
        got = parse_policy(c.policy_text(2, log=True)).check(note, c.origin)
        assert not got.ok and got.cosigned_by == ["fr"]

        # Germany's witness comes online; the operator offers it the latest checkpoint
        # (what beat does every LEDGER_WITNESS_SCHEDULE seconds): the policy is met.
        c.start_witness("DE")
        done = manage("ledger", "cosign", "--missing")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{c.witnesses['DE']['name']}: cosigned" in done.stdout
        status, state, served_size, note = served_checkpoint(c)
        assert (status, state, served_size) == (200, "met", size), note
        assert cosigners(c, note, c.policy_text(2, log=True)) == ["de", "fr"]
