"""C2SP tlog-proof (ledger.core.tlogproof): the file's format, its verification against a
member's policy, the API endpoint that serves it, and the offline command (in a checkout
and in the one-file verifier, with PyNaCl alone)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from ledger import services
from ledger.audit import run
from ledger.checkpoints import publish_checkpoint
from ledger.core import merkle
from ledger.core.note import split_note
from ledger.core.policy import parse_policy
from ledger.core.tlogproof import (
    HEADER,
    TlogProofError,
    format_proof,
    parse_proof,
    verify_proof,
)
from ledger.models import Entry
from ledger.services import Draft
from ledger.witness.cosignature import generate_cosigner
from tests.steps.cosigned import policy_text, serve_cosigned, witnesses, write_policy
from tests.steps.witness import TestLog

ROOT = Path(__file__).resolve().parents[2]
T = 1_700_000_000

# The example of C2SP tlog-proof (main at ab17a74): its signatures are elided ("[...]")
# in the spec, so it is read here as a proof file, not verified.
SPEC_EXAMPLE = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u2014 example.com/fancylog hI2DJw[...]1roloI=
\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==
"""


def test_the_spec_example_reads_and_writes_back_byte_for_byte():
    proof = parse_proof(SPEC_EXAMPLE)
    assert proof.index == 73894 and len(proof.proof) == 5
    assert proof.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert proof.checkpoint.startswith("example.com/fancylog\n109482\n")
    assert proof.text() == SPEC_EXAMPLE


# --- a test log, pure ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log():
    log = TestLog("example.org/proof-log")
    log.grow(13)
    return log


@pytest.fixture(scope="module")
def ws():
    return {n: generate_cosigner(f"{n.lower()}.witness.example") for n in ("A", "B", "C")}


def _policy(log, ws, quorum="group two 2 A B C\ntwo"):
    lines = [f"log {log.vkey}"] + [f"witness {n} {c.verifier.vkey()}" for n, c in ws.items()]
    *groups, name = quorum.split("\n")
    return parse_policy("\n".join([*lines, *groups, f"quorum {name}"]) + "\n")


def _proof_file(log, index, size, *cosigners, note=None):
    note = note or log.checkpoint(size)
    body, _ = split_note(note)
    note += "".join(c.cosign(body, T) for c in cosigners)
    return format_proof(index, merkle.prove_inclusion(index, size, log._read), note)


def test_the_file_is_header_index_hashes_blank_line_checkpoint(log, ws):
    text = _proof_file(log, 5, 13, ws["A"])
    lines = text.split("\n")
    proof = merkle.prove_inclusion(5, 13, log._read)
    assert lines[0] == HEADER and lines[1] == "index 5"
    assert lines[2 : 2 + len(proof)] == [base64.b64encode(h).decode() for h in proof]
    assert lines[2 + len(proof)] == ""
    assert "\n".join(lines[3 + len(proof) :]).startswith(log.checkpoint(13))
    assert parse_proof(text.encode()).text() == text


def test_a_proof_with_a_quorum_verifies(log, ws):
    got = verify_proof(_proof_file(log, 5, 13, ws["C"], ws["A"]), b"leaf 5", _policy(log, ws))
    assert (got.ok, got.why, got.index, got.size, got.cosigned_by) == (
        True,
        "",
        5,
        13,
        ["A", "C"],
    )
    assert got.checks[-1] == f"leaf {merkle.leaf_hash(b'leaf 5').hex()} included at index 5"


def test_a_proof_below_the_quorum_names_what_is_missing(log, ws):
    got = verify_proof(_proof_file(log, 5, 13, ws["B"]), b"leaf 5", _policy(log, ws))
    assert not got.ok and got.cosigned_by == ["B"]
    assert got.why == (
        "the checkpoint is below the policy's quorum: quorum two not met: "
        "group two: 1 of 2 needed (missing: A, C)"
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("another leaf", "the leaf is not at index 5 of the checkpoint's tree"),
        ("another index", "the leaf is not at index 6 of the checkpoint's tree"),
        ("a shorter proof", "the leaf is not at index 5 of the checkpoint's tree"),
        ("another origin", "the checkpoint's origin is 'example.org/proof-log', not 'x.example'"),
        ("a forged root", "invalid log signature by example.org/proof-log"),
        ("cosigned elsewhere", "quorum two not met: group two: 0 of 2 needed (missing: A, B, C)"),
    ],
)
def test_what_fails_is_named(log, ws, change, why):
    text, leaf, origin = _proof_file(log, 5, 13, ws["A"], ws["B"]), b"leaf 5", None
    if change == "another leaf":
        leaf = b"leaf 6"
    elif change == "another index":
        text = text.replace("index 5\n", "index 6\n")
    elif change == "a shorter proof":
        first_hash = text.split("\n")[2]
        text = text.replace(first_hash + "\n", "", 1)
    elif change == "another origin":
        origin = "x.example"
    elif change == "a forged root":
        root = base64.b64encode(log.root(13)).decode()
        text = text.replace(root, base64.b64encode(bytes(32)).decode())
    else:  # cosignatures on the checkpoint at size 12, moved onto this one
        other = _proof_file(log, 5, 12, ws["A"], ws["B"])
        lines = [
            line
            for line in other.split("\n")
            if line.startswith("\u2014 a.") or line.startswith("\u2014 b.")
        ]
        text = _proof_file(log, 5, 13) + "\n".join(lines) + "\n"
    got = verify_proof(text, leaf, _policy(log, ws), origin=origin)
    assert not got.ok
    assert why in got.why


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("c2sp.org/tlog-proof@v2\nindex 1\n\nx\n", "line 1 is not c2sp.org/tlog-proof@v1"),
        (f"{HEADER}\nindex 01\n\nx\n", "line 2: the index is a decimal without leading zeros"),
        (f"{HEADER}\nindex -1\n\nx\n", "line 2: the index is a decimal without leading zeros"),
        (f"{HEADER}\nextra %%%\nindex 1\n\nx\n", "line 2: the extra data is not standard base64"),
        (f"{HEADER}\n\nx\n", "line 2 is not 'index <n>'"),
        (f"{HEADER}\nindex 1\nAAAA\n\nx\n", "line 3: a proof hash is 32 bytes"),
        (f"{HEADER}\nindex 1\nnot base64!\n\nx\n", "line 3: a proof hash is not standard base64"),
        (f"{HEADER}\nindex 1\n", "no empty line between the proof and the checkpoint"),
        (f"{HEADER}\nindex 1\n\n", "the checkpoint is missing after the empty line"),
        (f"{HEADER}\r\nindex 1\r\n\r\nx\r\n", "line 1 of the note has a CRLF line end"),
        (
            f"{HEADER}\nindex 1\n" + (base64.b64encode(bytes(32)).decode() + "\n") * 64 + "\nx\n",
            "64 proof hashes; a proof has at most 63",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_the_line(text, message):
    with pytest.raises(TlogProofError) as caught:
        parse_proof(text)
    assert str(caught.value).startswith(message)
    got = verify_proof(text, b"", parse_policy("quorum none\n"))
    assert not got.ok and got.why.startswith("not a tlog-proof: ")


# --- the endpoint ----------------------------------------------------------------------------


@pytest.fixture
def api(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner[2]}")
    return client


@pytest.fixture
def history(sample_signer):
    """Entries 0-31 under a checkpoint at 32, then 33-41 under one at 42."""
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(30)]
    )
    publish_checkpoint()
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(30, 40)]
    )
    publish_checkpoint()
    return sample_signer


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == status
    return response.json()["detail"]


def test_the_endpoint_serves_the_proof_against_the_cosigned_checkpoint(api, history, monkeypatch):
    ws = witnesses("NL", "SE", "PL")
    served = serve_cosigned(monkeypatch, ws["NL"], ws["PL"], size=32)
    r = api.get("/api/v1/ledger/entries/7/tlog-proof")
    assert r.status_code == 200, r.content
    assert r["Content-Type"] == "text/plain; charset=utf-8"
    assert r["Content-Disposition"] == 'attachment; filename="entry-7.tlog-proof"'
    assert r["Witness-Policy"] == "met"
    proof = parse_proof(r.content)
    assert (proof.index, proof.checkpoint) == (7, served)
    leaf = bytes(Entry.objects.get(index=7).leaf)
    policy = parse_policy(policy_text(ws, "group two-thirds 2 NL SE PL\ntwo-thirds"))
    got = verify_proof(r.content, leaf, policy)
    assert (got.ok, got.size, got.cosigned_by) == (True, 32, ["NL", "PL"]), got.why
    strict = parse_policy(policy_text(ws, "group all-three all NL SE PL\nall-three"))
    assert verify_proof(r.content, leaf, strict).why.endswith(
        "group all-three: 2 of 3 needed (missing: SE)"
    )


def test_an_entry_beyond_the_cosigned_checkpoint_is_a_409_and_an_unknown_one_a_404(
    api, history, monkeypatch
):
    serve_cosigned(monkeypatch, *witnesses("NL").values(), size=32)
    assert _problem(api.get("/api/v1/ledger/entries/35/tlog-proof"), 409) == (
        "entry 35 is not yet covered by the checkpoint the log serves as cosigned "
        "(tree size 32); ask again after the next checkpoint"
    )
    assert api.get("/api/v1/ledger/entries/31/tlog-proof").status_code == 200
    assert _problem(api.get("/api/v1/ledger/entries/42/tlog-proof"), 404) == (
        "there is no entry at index 42"
    )
    assert APIClient().get("/api/v1/ledger/entries/3/tlog-proof").status_code == 401


def test_when_no_checkpoint_meets_the_logs_policy_it_fails_closed_or_open(
    api, history, monkeypatch
):
    ws = witnesses("NL", "SE")
    serve_cosigned(monkeypatch, ws["NL"], meets=False)
    assert _problem(api.get("/api/v1/ledger/entries/3/tlog-proof"), 503) == (
        "no checkpoint meets the witness policy, and the log serves none without: ask again "
        "once the witnesses have cosigned"
    )
    served = serve_cosigned(monkeypatch, ws["NL"], meets=False, fail_open=True)
    r = api.get("/api/v1/ledger/entries/3/tlog-proof")
    assert r.status_code == 200 and parse_proof(r.content).checkpoint == served
    assert r["Witness-Policy"] == "unmet; fail-open"
    leaf = bytes(Entry.objects.get(index=3).leaf)
    got = verify_proof(r.content, leaf, parse_policy(policy_text(ws, "group g all NL SE\ng")))
    assert got.why.endswith("group g: 1 of 2 needed (missing: SE)")


def test_before_any_checkpoint_an_entry_is_a_409(api, sample_signer):
    assert "not yet covered" in _problem(api.get("/api/v1/ledger/entries/1/tlog-proof"), 409)


def test_without_cosignatures_a_witness_policy_refuses_the_proof(api, history):
    """What the log serves with no witness registered and no policy adopted: its own
    checkpoint, which a policy of quorum none accepts and one that asks for a witness
    refuses."""
    r = api.get("/api/v1/ledger/entries/40/tlog-proof")
    assert r.status_code == 200 and r["Witness-Policy"] == "none"
    leaf = bytes(Entry.objects.get(index=40).leaf)
    assert verify_proof(r.content, leaf, parse_policy(policy_text({}, "none"))).ok
    ws = witnesses("NL")
    got = verify_proof(r.content, leaf, parse_policy(policy_text(ws, "NL")))
    assert got.why == (
        "the checkpoint is below the policy's quorum: quorum NL not met: witness NL did not cosign"
    )


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def files(api, history, monkeypatch, tmp_path):
    ws = witnesses("NL", "SE", "PL")
    serve_cosigned(monkeypatch, ws["NL"], ws["SE"])
    proof = tmp_path / "entry-12.tlog-proof"
    proof.write_bytes(api.get("/api/v1/ledger/entries/12/tlog-proof").content)
    leaf = tmp_path / "leaf.bin"
    leaf.write_bytes(bytes(Entry.objects.get(index=12).leaf))
    return ws, proof, leaf


def test_the_command_verifies_and_refuses(files, tmp_path, capsys):
    ws, proof, leaf = files
    good = write_policy(tmp_path, ws, "group g 2 NL SE PL\ng")
    assert run(["tlog-proof", str(proof), "--leaf", str(leaf), "--policy", str(good)]) == 0
    out = capsys.readouterr().out
    assert "ok   cosigned by NL, SE: the policy's quorum met" in out
    assert "ok   the leaf is this ledger's entry 12: test.sample, integrated" in out
    assert out.rstrip().endswith("VERIFIED")
    strict = write_policy(tmp_path, ws, "group g all NL SE PL\ng")
    assert run(["tlog-proof", str(proof), "--leaf", str(leaf), "--policy", str(strict)]) == 1
    assert "group g: 2 of 3 needed (missing: PL)" in capsys.readouterr().out
    other = tmp_path / "other.bin"
    other.write_bytes(bytes(Entry.objects.get(index=13).leaf))
    assert run(["tlog-proof", str(proof), "--leaf", str(other), "--policy", str(good)]) == 1
    assert "the leaf is not at index 12" in capsys.readouterr().out
    broken = tmp_path / "broken.policy"
    broken.write_text("quorum NL\n")
    assert run(["tlog-proof", str(proof), "--leaf", str(leaf), "--policy", str(broken)]) == 2
    assert "line 1: quorum 'NL' is not defined on an earlier line" in capsys.readouterr().out


def test_the_one_file_verifier_checks_a_proof_with_pynacl_alone(files, tmp_path):
    ws, proof, leaf = files
    pyz = tmp_path / "consortium-verify.pyz"
    subprocess.run(
        [sys.executable, "scripts/build_verifier.py", "--output", str(pyz)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    import nacl

    site = str(Path(nacl.__file__).parent.parent)

    def verify(policy: Path) -> subprocess.CompletedProcess:
        argv = ["consortium-verify.pyz", "tlog-proof", str(proof), "--leaf", str(leaf)]
        code = (
            "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p"
            f" and 'dist-packages' not in p] + [{site!r}]; "
            "sys.modules['django'] = sys.modules['rfc8785'] = None; "
            f"sys.argv = {[*argv, '--policy', str(policy)]!r}; sys.path.insert(0, {str(pyz)!r}); "
            "import runpy; runpy.run_path(sys.path[0], run_name='__main__')"
        )
        return subprocess.run(
            [sys.executable, "-I", "-c", code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = verify(write_policy(tmp_path, ws, "group g any NL PL\ng"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("VERIFIED")
    done = verify(write_policy(tmp_path, ws, "PL"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "quorum PL not met: witness PL did not cosign" in done.stdout
