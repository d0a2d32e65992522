"""Drills: what witnessing is for. The operator shows a forked view to some witnesses, or
rolls the log back beneath the application; the witnesses refuse, the alarm fires and
names the sizes, and no checkpoint of the other view meets the policy.

Witnesses are real processes (``python -m ledger.witness serve``); the members'
signatories register them (``delegates``); the operator reaches beneath the ledger's
protections on purpose (``triggers_disabled``).
"""

from __future__ import annotations

import pytest

from ledger import published, services
from ledger.core import merkle
from ledger.core.note import Checkpoint as Body
from ledger.core.note import b64, sign_note
from ledger.core.policy import parse_policy
from ledger.cosign import collect as collection
from ledger.errors import LogBehind
from ledger.keys import log_signer
from ledger.models import Checkpoint, Cosignature, Entry, LogHead, WitnessAlarm
from ledger.proofs import read_hashes
from tests import worlds
from tests.steps.cosigning import Witnesses, adopt, grow, policy, recording
from tests.steps.ledger import log_vkey, triggers_disabled

delegates = worlds.shared("delegates")


@pytest.fixture
def witnesses(tmp_path):
    ws = Witnesses(tmp_path)
    yield ws
    ws.close()


def forked_view(common: int, extra: int):
    """Another tree: the log's first ``common`` leaves and ``extra`` others; its signed
    checkpoint and its consistency proofs, as a dishonest operator would make them."""
    stored, builder = [], merkle.TreeBuilder()
    leaves = Entry.objects.filter(index__lt=common).order_by("index")
    for leaf in leaves.values_list("leaf_hash", flat=True):
        stored.extend(builder.push(bytes(leaf)))
    for i in range(extra):
        stored.extend(builder.push(merkle.leaf_hash(f"forked {i}".encode())))

    def read(indexes):
        return [stored[i] for i in indexes]

    size = common + extra
    body = Body(log_signer().name, size, merkle.tree_root(size, read)).body()
    note = sign_note(body, log_signer().note_signer())
    return note, lambda old: merkle.prove_consistency(old, size, read)


def test_fork_drill_the_second_group_refuses_and_the_forked_view_never_meets_the_policy(
    delegates, witnesses, monkeypatch
):
    for code in ("FR", "DE", "IT"):
        witnesses.start(code, register=delegates)
    text = policy(witnesses, 2)
    adopt(text)
    base = grow(4)  # cosigned by all three
    # The operator shows Italy's witness a forked tree of the size the log is about to
    # reach, with a valid consistency proof from what it cosigned.
    size = base.tree_size + 5
    note, proof = forked_view(base.tree_size, 5)
    body = "\n".join([f"old {base.tree_size}", *(b64(h) for h in proof(base.tree_size))])
    it = witnesses.running["it"]
    reply = collection.post(
        f"http://{it['addr'][0]}:{it['addr'][1]}", (body + "\n\n" + note).encode(), 5
    )
    assert reply.status == 200
    forked_cosigned = note + reply.text
    # Then the honest checkpoint of the same size goes to every witness.
    sent = recording(monkeypatch)
    honest = grow(5)
    assert honest.tree_size == size and honest.note != note
    by_witness = {}
    for url, _, status in sent:
        by_witness.setdefault(url, []).append(status)
    it_url = f"http://{it['addr'][0]}:{it['addr'][1]}"
    assert by_witness.pop(it_url) == [409, 422]  # Italy's witness: "a fork of the log"
    assert sorted(by_witness.values()) == [[200], [200]]
    alarm = WitnessAlarm.objects.get()
    assert (alarm.witness, alarm.kind, alarm.log_size) == ("witness.it.example", "refused", size)
    assert "fork" in alarm.detail
    # The forked view carries one cosignature of the two the policy needs: no client
    # holding the policy accepts it. The honest view has its quorum.
    check = parse_policy(text).check
    forked = check(forked_cosigned, log_signer().name, log_vkeys=(log_vkey(),))
    assert not forked.ok and forked.cosigned_by == ["it"] and "1 of 2 needed" in forked.why
    served = services.cosigned_checkpoint()
    assert served.meets_policy and served.checkpoint == honest
    assert set(check(served.note, log_signer().name, log_vkeys=(log_vkey(),)).cosigned_by) == {
        "fr",
        "de",
    }


def forget_published() -> None:
    """Remove the copies kept outside the database of the newest published checkpoint and
    of the sizes witnesses said they hold (``ledger.published``), as the operator could."""
    for path in (
        published.path(),
        published.path().with_name(published.path().name + ".witnessed"),
    ):
        path.unlink(missing_ok=True)


def roll_back_to(size: int) -> None:
    """Delete every entry from ``size`` on, the stored hashes beyond, the checkpoints
    over them and their cosignatures, and set the log head back: what someone with the
    database's superuser could do, and ``ledger verify`` would not see."""
    frontier = b"".join(read_hashes(merkle.root_indexes(size)))
    with triggers_disabled() as cur:
        cur.execute(
            "DELETE FROM ledger_cosignature WHERE checkpoint_id IN "
            "(SELECT id FROM ledger_checkpoint WHERE tree_size > %s)",
            [size],
        )
        cur.execute("DELETE FROM ledger_checkpoint WHERE tree_size > %s", [size])
        cur.execute('DELETE FROM ledger_entry WHERE "index" >= %s', [size])
        cur.execute("DELETE FROM ledger_treehash WHERE idx >= %s", [merkle.stored_hash_count(size)])
        cur.execute("DELETE FROM ledger_witnesscontact")
        cur.execute(
            "UPDATE ledger_loghead SET size = %s, frontier = %s WHERE id = 1", [size, frontier]
        )


def test_rollback_drill_the_witnesses_refuse_and_the_alarm_names_the_sizes(
    delegates, witnesses, monkeypatch
):
    for code in ("FR", "DE", "IT"):
        witnesses.start(code, register=delegates)
    kept = grow(3)
    gone = grow(6)  # every witness cosigns this size
    assert Cosignature.objects.filter(checkpoint=gone).count() == 3
    roll_back_to(kept.tree_size)
    assert services.tree_size() == kept.tree_size
    assert LogHead.objects.get().size == kept.tree_size
    assert not Checkpoint.objects.filter(tree_size=gone.tree_size).exists()
    # The published checkpoint kept outside the database stops the log first...
    with pytest.raises(LogBehind, match=f"checkpoint {gone.tree_size} was published"):
        grow(2)
    # ...so the operator removes that too: the witnesses are what is left.
    forget_published()

    # A shorter tail than the one rolled back: every witness holds a larger tree.
    sent = recording(monkeypatch)
    short = grow(2)
    assert short.tree_size < gone.tree_size
    assert [status for _, _, status in sent] == [409, 409, 409]
    alarms = WitnessAlarm.objects.order_by("witness")
    assert [(a.kind, a.log_size, a.witness_size) for a in alarms] == [
        ("ahead", short.tree_size, gone.tree_size)
    ] * 3
    assert all(f"holds size {gone.tree_size}" in a.detail for a in alarms)
    assert not Cosignature.objects.filter(checkpoint=short).exists()
    # The log keeps what the witnesses said outside the database, and is read-only...
    with pytest.raises(LogBehind, match=f"cosigned a tree of {gone.tree_size} entries"):
        grow(8)
    forget_published()  # ...until the operator removes that as well.

    # A longer one, sent with a proof from the size each witness said it holds: the
    # proof cannot lead to the root it cosigned.
    sent.clear()
    longer = grow(8)
    assert longer.tree_size > gone.tree_size
    assert [(line, s) for _, line, s in sent] == [(f"old {gone.tree_size}", 422)] * 3
    refused = WitnessAlarm.objects.filter(kind="refused")
    assert [(a.log_size, a.witness_size) for a in refused] == [
        (longer.tree_size, gone.tree_size)
    ] * 3
    assert all(f"from old {gone.tree_size}" in a.detail for a in refused)
    assert not Cosignature.objects.filter(checkpoint=longer).exists()
    # With a policy, nothing after the rollback is served.
    adopt(policy(witnesses, 2))
    served = services.cosigned_checkpoint()
    assert served.checkpoint == kept and served.meets_policy
