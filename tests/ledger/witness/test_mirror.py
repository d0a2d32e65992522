"""``--mirror``: a witness keeps a verified copy of the log, read from its tlog-tiles.

The ledger is a real one (tests/ledger/conftest.py's ``history``); its checkpoint and entry
bundles are read from the tiles view and served over real HTTP by a small server in the
test (tests/steps/witness.py's ``TileServer``), which a test may make lie. The witness
runs as a process with Django unimportable.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest
from rest_framework.test import APIClient

from ledger.checkpoints import publish_checkpoint
from ledger.core import tiles
from ledger.core.note import (
    Checkpoint,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    split_note,
)
from ledger.keys import log_signer
from ledger.models import Entry
from ledger.proofs import root_at
from ledger.services import Draft, entries_append
from ledger.witness.cosignature import generate_cosigner
from ledger.witness.protocol import Witness
from ledger.witness.state import State
from tests.steps.ledger import log_vkey
from tests.steps.witness import (
    PYTHON,
    ROOT,
    TileServer,
    add,
    keygen,
    run_witness,
    start_witness,
    stop,
)

TOKEN = "mirror-test-token"


@pytest.fixture
def api(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner[2]}")
    return client


class Log:
    """The ledger as its tiles serve it, over HTTP, for a mirror in ``tmp``."""

    def __init__(self, api, tmp):
        self.api, self.tmp = api, tmp
        self.files: dict[str, bytes] = {}
        self.server = TileServer(self.files, TOKEN)
        self.vkey = log_vkey()
        self.token_file = tmp / "token"
        self.token_file.write_text(TOKEN + "\n")
        self.state = tmp / "state.sqlite"
        self.publish()

    def publish(self) -> int:
        """Publish a checkpoint and read the view's checkpoint and bundles into the server."""
        publish_checkpoint()
        r = self.api.get("/api/v1/ledger/tlog/checkpoint")
        assert r.status_code == 200
        self.note = r.content.decode()
        cp = parse_checkpoint(split_note(self.note)[0])
        self.origin, self.size, self.root = cp.origin, cp.size, cp.root
        self.files["checkpoint"] = r.content
        for n in range(-(-self.size // tiles.WIDTH)):
            path = tiles.tile_path(tiles.ENTRIES, n, min(tiles.WIDTH, self.size - n * tiles.WIDTH))
            r = self.api.get(f"/api/v1/ledger/tlog/{path}")
            assert r.status_code == 200, r.content
            self.files[path] = r.content
        return self.size

    @property
    def log(self) -> str:
        return f"{self.origin} {self.vkey}"

    def mirror_once(self, state=None) -> subprocess.CompletedProcess:
        return run_witness(
            "mirror",
            "--state",
            str(state or self.state),
            "--log",
            self.log,
            "--mirror",
            f"{self.origin} {self.server.url}",
            "--token-file",
            str(self.token_file),
            "--once",
        )

    def signed(self, size: int, root: bytes) -> str:
        """A checkpoint the log's key signs, of any size and root."""
        return sign_note(Checkpoint(self.origin, size, root).body(), log_signer().note_signer())

    def rows(self, state=None) -> int:
        with sqlite3.connect(state or self.state) as db:
            return db.execute("SELECT COUNT(*) FROM mirror_entries").fetchone()[0]


@pytest.fixture
def log(history, api, tmp_path):
    log = Log(api, tmp_path)
    yield log
    log.server.close()


def leaves_in_the_database(size: int) -> list[bytes]:
    return [
        bytes(leaf)
        for leaf in Entry.objects.filter(index__lt=size)
        .order_by("index")
        .values_list("leaf", flat=True)
    ]


def verify_copy(path, vkey) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "ledger.audit", "copy", str(path), "--vkey", vkey, "--workers", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_mirror_keeps_every_entry_and_its_copy_verifies_offline(log, tmp_path):
    done = log.mirror_once()
    assert done.returncode == 0, done.stderr
    assert f"{log.origin}: {log.size} entries verified and kept" in done.stdout
    assert log.server.asked[0] == "checkpoint"
    state = State(log.state)
    held = state.held(log.origin)
    assert (held.size, held.root, held.checkpoint) == (log.size, log.root, log.note)
    assert list(state.leaves(log.origin, log.size)) == leaves_in_the_database(log.size)

    out = tmp_path / "copy"
    exported = run_witness(
        "export", "--state", str(log.state), "--origin", log.origin, "--out", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    assert (out / "entries.jsonl").read_bytes() == b"".join(
        leaf + b"\n" for leaf in leaves_in_the_database(log.size)
    )
    verified = verify_copy(out, log.vkey)
    assert verified.returncode == 0, verified.stdout
    assert "VERIFIED" in verified.stdout

    # The verifier is not taken in by a changed entry.
    text = (out / "entries.jsonl").read_bytes()
    (out / "entries.jsonl").write_bytes(text.replace(b'"n":3}', b'"n":4}', 1))
    refused = verify_copy(out, log.vkey)
    assert refused.returncode == 1
    assert "signature does not verify" in refused.stdout


def test_the_mirror_fetches_only_what_it_lacks_and_resumes_after_a_restart(log, history):
    assert log.mirror_once().returncode == 0
    first = log.size
    entries_append(
        signer=history["sample"], drafts=[Draft("test.sample", {"more": i}) for i in range(300)]
    )
    second = log.publish()
    log.server.asked.clear()
    assert log.mirror_once().returncode == 0
    assert log.server.asked == [
        "checkpoint",
        "tile/entries/000",
        "tile/entries/001.p/" + str(second - 256),
    ]
    assert first < 256 < second

    # A sync killed after writing entries it had not verified yet leaves rows past the
    # verified size; the next one drops them and goes on from what is verified.
    state = State(log.state)
    state.stage(log.origin, [(second, "test.sample", b"not a leaf", b"\0" * 32)])
    entries_append(
        signer=history["sample"], drafts=[Draft("test.sample", {"last": i}) for i in range(300)]
    )
    third = log.publish()
    log.server.asked.clear()
    done = log.mirror_once()
    assert done.returncode == 0, done.stderr
    # Bundle 000 is not read again: the copy holds all of it.
    assert log.server.asked == [
        "checkpoint",
        "tile/entries/001",
        "tile/entries/002.p/" + str(third - 512),
    ]
    assert state.held(log.origin).size == third == log.rows()
    assert list(state.leaves(log.origin, third)) == leaves_in_the_database(third)

    log.server.asked.clear()
    assert log.mirror_once().returncode == 0
    assert log.server.asked == ["checkpoint"]
    # The copy's root at any size, rebuilt from the nearest size a sync verified.
    for size in (1, first - 1, first, first + 1, 300, second, second + 7, third - 1, third):
        assert state.root_at(log.origin, size) == root_at(size), size


def _tamper(log) -> tuple[int, bytes]:
    """Change one byte of a leaf's payload in the bundle served: (its index, the leaf)."""
    path = tiles.tile_path(tiles.ENTRIES, 0, log.size)
    leaves = tiles.read_entry_bundle(log.files[path])
    index = next(i for i, leaf in enumerate(leaves) if b'"n":7}' in leaf)
    leaves[index] = leaves[index].replace(b'"n":7}', b'"n":8}')
    log.files[path] = tiles.entry_bundle(leaves)
    return index, leaves[index]


def test_a_tampered_entry_is_kept_as_evidence_and_the_witness_refuses_the_log(log, tmp_path):
    index, leaf = _tamper(log)
    done = log.mirror_once()
    assert done.returncode == 1
    assert "MIRROR ALARM (NEW EVIDENCE)" in done.stderr
    assert f"at {index}): the author's signature does not verify" in done.stderr
    state = State(log.state)
    [fault] = state.mirror_faults(log.origin)
    assert (fault["kind"], fault["position"], fault["evidence"]) == ("entry", index, leaf)
    assert fault["checkpoint"] == log.note
    # Nothing of the bad sync is kept: not the entries before the bad one either.
    assert state.held(log.origin).size == 0 and log.rows() == 0

    again = log.mirror_once()
    assert again.returncode == 1 and "MIRROR ALARM (evidence held)" in again.stderr
    assert len(state.mirror_faults(log.origin)) == 1

    key, _ = keygen(tmp_path)
    proc, addr = start_witness(tmp_path, key, [log.log], state=log.state)
    try:
        status, _, body, _ = add(addr, b"old 0\n\n" + log.note.encode())
    finally:
        stop(proc)
    assert status == 422
    assert f"mirror fault #{fault['id']}, entry at {index}" in body
    assert State(log.state).latest(log.origin).size == 0
    # The same checkpoint, to a witness without that evidence, is cosigned.
    other = tmp_path / "other"
    other.mkdir()
    proc, addr = start_witness(other, key, [log.log])
    try:
        assert add(addr, b"old 0\n\n" + log.note.encode())[0] == 200
    finally:
        stop(proc)


def test_a_root_the_entries_do_not_give_is_evidence(log):
    log.files["checkpoint"] = log.signed(log.size, b"\x01" * 32).encode()
    done = log.mirror_once()
    assert done.returncode == 1
    assert "do not give the root the log signed" in done.stderr
    [fault] = State(log.state).mirror_faults(log.origin)
    assert (fault["kind"], fault["position"]) == ("root", log.size)
    assert State(log.state).held(log.origin).size == 0 and log.rows() == 0


def test_a_smaller_checkpoint_must_have_the_copys_root_at_its_size(log):
    assert log.mirror_once().returncode == 0
    real = log.files["checkpoint"]
    smaller = log.size - 5
    # The root of that size as the database's tree has it (not the copy's).
    log.files["checkpoint"] = log.signed(smaller, root_at(smaller)).encode()
    assert log.mirror_once().returncode == 0
    log.files["checkpoint"] = log.signed(smaller, b"\x02" * 32).encode()
    done = log.mirror_once()
    assert done.returncode == 1 and "a fork or a rollback" in done.stderr
    [fault] = State(log.state).mirror_faults(log.origin)
    assert (fault["kind"], fault["position"]) == ("root", smaller)
    log.files["checkpoint"] = real
    assert State(log.state).held(log.origin).size == log.size  # the copy is kept


def test_a_cosigned_checkpoint_the_entries_contradict_is_evidence(log):
    # The log showed the witness a history (size 20, another root) that its tiles do not.
    state = State(log.state)
    witness = Witness(
        [generate_cosigner("witness.example.org/w1")],
        state,
        {log.origin: [parse_verifier_key(log.vkey)]},
    )
    assert (
        witness.add_checkpoint(b"old 0\n\n" + log.signed(20, b"\x03" * 32).encode()).status == 200
    )
    done = log.mirror_once()
    assert done.returncode == 1
    assert "this witness cosigned" in done.stderr
    [fault] = state.mirror_faults(log.origin)
    assert (fault["kind"], fault["position"]) == ("cosigned", 20)
    assert state.held(log.origin).size == 0


def test_serve_mirrors_in_the_background_and_keeps_up_with_the_log(log, history, tmp_path):
    key, _ = keygen(tmp_path)
    extra = [
        "--mirror",
        f"{log.origin} {log.server.url}",
        "--token-file",
        str(log.token_file),
        "--mirror-interval",
        "0.2",
    ]
    proc, addr = start_witness(tmp_path, key, [log.log], state=log.state, extra=extra)
    try:
        state = State(log.state)
        _wait(lambda: state.held(log.origin).size == log.size)
        assert add(addr, b"old 0\n\n" + log.note.encode())[0] == 200
        entries_append(
            signer=history["sample"], drafts=[Draft("test.sample", {"on": i}) for i in range(40)]
        )
        grown = log.publish()
        _wait(lambda: state.held(log.origin).size == grown)
        assert list(state.leaves(log.origin, grown)) == leaves_in_the_database(grown)
    finally:
        stop(proc)


def _wait(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the mirror did not get there in time"
        time.sleep(0.1)


def test_the_one_file_witness_mirrors_and_exports_with_pynacl_alone(log, tmp_path):
    witness_pyz, verify_pyz = tmp_path / "consortium-witness.pyz", tmp_path / "verify.pyz"
    for script, out in (("build_witness.py", witness_pyz), ("build_verifier.py", verify_pyz)):
        subprocess.run(
            [sys.executable, f"scripts/{script}", "--output", str(out)], cwd=ROOT, check=True
        )
    env = {"PATH": "/usr/bin:/bin"}  # no PYTHONPATH

    def pyz(*argv):
        return subprocess.run(
            [PYTHON, "-I", str(witness_pyz), *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    made = pyz("keygen", "--name", "witness.example.org/pyz", "--out", "w.key")
    assert made.returncode == 0 and made.stdout.startswith("witness.example.org/pyz+")
    assert pyz("serve", "--help").returncode == 0
    synced = pyz(
        "mirror",
        "--state",
        "s.sqlite",
        "--log",
        log.log,
        "--mirror",
        f"{log.origin} {log.server.url}",
        "--token-file",
        str(log.token_file),
        "--once",
    )
    assert synced.returncode == 0, synced.stderr
    assert (
        pyz("export", "--state", "s.sqlite", "--origin", log.origin, "--out", "copy").returncode
        == 0
    )
    verified = subprocess.run(
        [PYTHON, "-I", str(verify_pyz), "copy", "copy", "--vkey", log.vkey, "--workers", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout
    # What ran is the archive's code, and Django was never imported.
    where = subprocess.run(
        [
            PYTHON,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import ledger.witness.mirror, "
            "ledger.witness.cli; print(ledger.witness.mirror.__file__); "
            "print('django' in sys.modules)",
            str(witness_pyz),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.split() == [str(witness_pyz / "ledger/witness/mirror.py"), "False"]


def test_a_key_the_mirror_comes_to_trust_is_trusted_by_the_witness_too(tmp_path):
    """Following a log key rotation is one call, ``Mirror.trust``: the witness serving
    beside the mirror then accepts checkpoints under the new key."""
    from ledger.witness.cli import make_mirrors, parse_logs
    from tests.steps.witness import TestLog

    old, new = TestLog("example.org/rotating"), TestLog("example.org/rotating")
    logs = parse_logs([f"{old.origin} {old.vkey}"])
    state = State(tmp_path / "state.sqlite")
    witness = Witness([generate_cosigner("witness.example.org/w1")], state, logs)
    [mirror] = make_mirrors(state, logs, [f"{old.origin} http://127.0.0.1:9/tlog"], None)
    assert witness.add_checkpoint(new.body(0, 3)).status == 403
    mirror.trust(parse_verifier_key(new.vkey))
    assert witness.add_checkpoint(new.body(0, 3)).status == 200


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mirror", "other.example http://127.0.0.1:9/tlog"], "no --log gives that log's key"),
        (["--mirror", "example.org/x ftp://127.0.0.1/tlog"], "'<origin> <tiles base URL>'"),
        (
            ["--mirror", "example.org/x http://127.0.0.1:9/tlog", "--token-file", "/nonexistent"],
            "No such file",
        ),
    ],
)
def test_a_mirror_misconfigured_is_a_usage_error(tmp_path, argv, message):
    from tests.steps.witness import TestLog

    log = TestLog("example.org/x")
    done = run_witness(
        "mirror",
        "--state",
        str(tmp_path / "s.sqlite"),
        "--log",
        f"{log.origin} {log.vkey}",
        *argv,
        "--once",
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_an_unreachable_log_is_not_evidence(tmp_path):
    from tests.steps.witness import TestLog

    log = TestLog("example.org/x")
    done = run_witness(
        "mirror",
        "--state",
        str(tmp_path / "s.sqlite"),
        "--log",
        f"{log.origin} {log.vkey}",
        "--mirror",
        f"{log.origin} http://127.0.0.1:9/tlog",
        "--once",
    )
    assert done.returncode == 3 and "could not sync" in done.stderr
    assert State(tmp_path / "s.sqlite").mirror_faults() == []


def test_a_checkpoint_cosigned_after_the_copy_passed_its_size_is_compared_with_it(log, tmp_path):
    def witness(state):
        return Witness(
            [generate_cosigner("witness.example.org/w1")],
            state,
            {log.origin: [parse_verifier_key(log.vkey)]},
        )

    state = State(log.state)
    assert log.mirror_once().returncode == 0
    assert (
        witness(state).add_checkpoint(b"old 0\n\n" + log.signed(20, root_at(20)).encode()).status
        == 200
    )
    assert log.mirror_once().returncode == 0
    assert state.held(log.origin).checked_cosigned == 20 and state.mirror_faults() == []

    other = tmp_path / "other.sqlite"
    assert log.mirror_once(other).returncode == 0
    lie = log.signed(30, b"\x04" * 32).encode()
    assert witness(State(other)).add_checkpoint(b"old 0\n\n" + lie).status == 200
    done = log.mirror_once(other)
    assert done.returncode == 1 and "this witness cosigned" in done.stderr
    [fault] = State(other).mirror_faults(log.origin)
    assert (fault["kind"], fault["position"]) == ("cosigned", 30)


def test_the_mirror_follows_a_log_key_rotation_and_the_witness_with_it(log, history, tmp_path):
    """Started with the first log key only: the rotation's entry (signed by the old key and
    the new) is what makes the witness trust the new key, not the operator's word."""
    import base64

    from ledger.proofs import consistency_proof
    from ledger.services import log_key_rotate

    key, _ = keygen(tmp_path)
    extra = [
        "--mirror",
        f"{log.origin} {log.server.url}",
        "--token-file",
        str(log.token_file),
        "--mirror-interval",
        "0.2",
    ]
    proc, addr = start_witness(tmp_path, key, [log.log], state=log.state, extra=extra)
    try:
        state = State(log.state)
        _wait(lambda: state.held(log.origin).size == log.size)
        old = log.size
        assert add(addr, b"old 0\n\n" + log.note.encode())[0] == 200
        log_key_rotate()
        entries_append(
            signer=history["sample"], drafts=[Draft("test.sample", {"after": i}) for i in range(5)]
        )
        grown = log.publish()
        assert log_vkey() != log.vkey  # the new checkpoint is the new key's alone
        _wait(lambda: state.held(log.origin).size == grown)
        proof = [base64.b64encode(h).decode() for h in consistency_proof(old, grown)]
        body = ("\n".join([f"old {old}", *proof]) + "\n\n" + log.note).encode()
        status, _, answer, _ = add(addr, body)
        assert status == 200, answer
    finally:
        stop(proc)


def test_a_checkpoint_by_a_key_no_rotation_introduced_is_refused_and_nothing_kept(log, history):
    from ledger.keys import EntrySigner

    assert log.mirror_once().returncode == 0
    before = log.rows()
    entries_append(
        signer=history["sample"], drafts=[Draft("test.sample", {"more": i}) for i in range(3)]
    )
    log.publish()
    stranger = EntrySigner.generate(log.origin)
    body = split_note(log.note)[0]
    log.files["checkpoint"] = sign_note(body, stranger.note_signer()).encode()
    done = log.mirror_once()
    assert done.returncode != 0
    assert "does not verify" in done.stderr + done.stdout
    assert "no log key rotation" in done.stderr + done.stdout
    assert log.rows() == before
