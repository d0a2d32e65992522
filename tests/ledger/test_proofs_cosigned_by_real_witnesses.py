"""What members take away, cosigned by the members' witnesses run as real processes:
the tlog-proof of an entry and an audit export, verified against each member's own
policy file; and what happens when the witnesses stop cosigning.

Personas: the signatories of France, Germany and Italy register their member's witness
(``delegates``); the secretariat appends and publishes; Germany's recorder reads the
proofs and the auditor verifies offline with a policy of their own.
"""

from __future__ import annotations

import pytest

from ledger import export
from ledger.audit import run
from ledger.core.policy import parse_policy
from ledger.core.tlogproof import parse_proof, verify_proof
from ledger.models import Entry
from tests import worlds
from tests.steps.api import api_as
from tests.steps.cosigning import Witnesses, adopt, grow, policy
from tests.steps.ledger import log_vkey

delegates = worlds.shared("delegates")


@pytest.fixture
def witnesses(delegates, tmp_path):
    ws = Witnesses(tmp_path)
    for code in ("FR", "DE", "IT"):
        ws.start(code, register=delegates)
    yield ws
    ws.close()


def member_policy(ws: Witnesses, quorum: str) -> str:
    """An auditor's own file: the log's key, the witnesses' keys, and a quorum."""
    lines = [f"log {log_vkey()}"]
    lines += [
        f"witness {label} {w['vkey']} http://{w['addr'][0]}:{w['addr'][1]}"
        for label, w in ws.running.items()
    ]
    return "\n".join([*lines, *quorum.split("\n")]) + "\n"


def test_a_proof_and_an_export_carry_the_witnesses_cosignatures(
    delegates, witnesses, tmp_path, capsys
):
    adopt(policy(witnesses, 2))
    cp = grow(6)
    reader = api_as(delegates["rec_de"])
    index = cp.tree_size - 2
    r = reader.get(f"/api/v1/ledger/entries/{index}/tlog-proof")
    assert r.status_code == 200, r.content
    assert r["Witness-Policy"] == "met"
    proof = parse_proof(r.content)
    assert proof.checkpoint.startswith(cp.note) and proof.checkpoint.count("\u2014 ") == 4
    leaf = bytes(Entry.objects.get(index=index).leaf)
    everyone = parse_policy(
        member_policy(witnesses, "group all-three all fr de it\nquorum all-three")
    )
    got = verify_proof(r.content, leaf, everyone)
    assert (got.ok, got.size, got.cosigned_by) == (True, cp.tree_size, ["fr", "de", "it"])

    path = tmp_path / "export.zip"
    export.build(path, export_id="cosigned")
    mine = tmp_path / "auditor.policy"
    mine.write_text(member_policy(witnesses, "group two 2 fr de it\nquorum two"))
    assert run(["verify", str(path), "--vkey", log_vkey(), "--policy", str(mine)]) == 0
    out = capsys.readouterr().out
    assert (
        f"ok   checkpoints/{cp.tree_size}.note (the anchor): cosigned by fr, de, it, your "
        "policy's quorum two met" in out
    )


def test_when_the_witnesses_stop_the_newest_entries_wait_and_an_export_of_them_is_refused(
    delegates, witnesses, tmp_path, capsys
):
    adopt(policy(witnesses, 2))
    cosigned = grow(4)
    witnesses.stop("de")
    witnesses.stop("it")
    later = grow(3)  # cosigned by France's witness alone: below the log's policy
    reader = api_as(delegates["rec_de"])
    new, old = later.tree_size - 1, cosigned.tree_size - 1
    r = reader.get(f"/api/v1/ledger/entries/{new}/tlog-proof")
    assert r.status_code == 409, r.content
    assert f"(tree size {cosigned.tree_size})" in r.json()["detail"]
    r = reader.get(f"/api/v1/ledger/entries/{old}/tlog-proof")
    assert r.status_code == 200 and parse_proof(r.content).checkpoint.startswith(cosigned.note)

    path = tmp_path / "export.zip"
    export.build(path, export_id="beyond")  # to the newest entry: anchored on `later`
    mine = tmp_path / "auditor.policy"
    mine.write_text(member_policy(witnesses, "group two 2 fr de it\nquorum two"))
    assert run(["verify", str(path), "--vkey", log_vkey(), "--policy", str(mine)]) == 1
    out = capsys.readouterr().out
    assert (
        f"FAIL checkpoints/{later.tree_size}.note (the anchor) is below your policy's quorum: "
        "quorum two not met: group two: 1 of 2 needed (missing: de, it)" in out
    )
