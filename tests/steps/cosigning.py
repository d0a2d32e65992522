"""Cosigning steps: members' witnesses run as real processes and registered by their
signatories, the log grown and its checkpoint published (which collects the
cosignatures: tasks are eager in the tests), and a policy over the running witnesses."""

from __future__ import annotations

from consortium.governance.changes import secretariat_signer
from consortium.governance.witnesses import witness_register
from ledger import services
from ledger.cosign import collect as collection
from ledger.keys import log_signer
from ledger.models import Checkpoint
from ledger.services import Draft
from tests.steps.ledger import log_vkey
from tests.steps.witness import keygen, start_witness, stop


class Witnesses:
    """The members' witnesses as processes, started on demand, stopped at the end."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.running = {}

    def start(self, code: str, *, register: dict | None = None, label: str | None = None):
        """Start a witness of member ``code`` (trusting the log's key), named
        ``witness.<label>.example`` (label: the code in lowercase), and register it as the
        member's signatory (``register``: the delegates)."""
        label = label or code.lower()
        home = self.tmp / label
        home.mkdir(exist_ok=True)
        key, vkey = keygen(home, name=f"witness.{label}.example")
        proc, addr = start_witness(home, key, [f"{log_signer().name} {log_vkey()}"])
        name = vkey.split("+", 1)[0]
        self.running[label] = {"proc": proc, "addr": addr, "vkey": vkey, "name": name}
        if register is not None:
            witness_register(
                actor=register[code.lower()],
                member=code,
                url=f"http://{addr[0]}:{addr[1]}",
                vkey=vkey,
            )
        return self.running[label]

    def stop(self, label: str) -> None:
        stop(self.running[label]["proc"])

    def close(self):
        for w in self.running.values():
            stop(w["proc"])


def grow(n: int) -> Checkpoint:
    """``n`` entries by the secretariat, and a checkpoint published over them (which
    collects the cosignatures before it returns)."""
    services.entries_append(
        signer=secretariat_signer(), drafts=[Draft("test.sample", {"n": i}) for i in range(n)]
    )
    return services.publish_checkpoint()


def policy(ws: Witnesses, k: int) -> str:
    """At least ``k`` of the running witnesses."""
    lines = [f"witness {label} {w['vkey']}" for label, w in ws.running.items()]
    names = " ".join(ws.running)
    return "\n".join([*lines, f"group members {k} {names}", "quorum members", ""])


def adopt(text: str) -> None:
    """The policy an accepted proposal adopts, as it leaves it (tests/governance/
    test_witnesses.py adopts one through a real vote)."""
    services.witness_policy_record(text=text, index=services.tree_size())


def recording(monkeypatch) -> list:
    """Record every add-checkpoint the collection sends (the real requests): (url, first
    line, status)."""
    seen = []
    real = collection.post

    def post(url, body, timeout):
        reply = real(url, body, timeout)
        seen.append((url, body.split(b"\n", 1)[0].decode(), reply.status))
        return reply

    monkeypatch.setattr(collection, "post", post)
    return seen
