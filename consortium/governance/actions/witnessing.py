"""The witness policy: a C2SP tlog-policy text, adopted by an accepted proposal, which
says which witnesses' cosignatures a checkpoint needs before the log serves it to its
clients (docs/witnessing.md)."""

from __future__ import annotations

from consortium.governance.actions.base import Action, exact_fields, registered
from consortium.governance.changes import GovernanceError
from ledger import services as ledger
from ledger.services import WitnessError


@registered
class WitnessPolicyAdopt(Action):
    type = "witness.policy"

    def check(self, action, state):
        exact_fields(action, "policy")
        try:
            ledger.check_policy_text(action["policy"])
        except WitnessError as exc:
            raise GovernanceError(f"witness.policy: {exc}") from exc

    def apply(self, action, *, proposal, index, n):
        ledger.witness_policy_record(text=action["policy"], index=index)

    def describe(self, action):
        lines = [ln.strip() for ln in action["policy"].split("\n")]
        witnesses = sum(1 for ln in lines if ln.split()[:1] == ["witness"])
        quorum = next((ln for ln in lines if ln.split()[:1] == ["quorum"]), "no quorum line")
        return f"Adopt the witness policy ({witnesses} witnesses; {quorum})"
