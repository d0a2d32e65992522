"""Actions on the members and the rules: admissions, changes of standing and figures, a
change of the voting rules."""

from __future__ import annotations

from typing import ClassVar

from consortium.governance import effects
from consortium.governance.actions.base import Action, Simulation, figures_in_words, registered
from consortium.governance.auth import forget_recent_reads
from consortium.governance.changes import GovernanceError
from consortium.governance.members import MEMBER_FIELDS, member_record
from consortium.governance.models import Consortium, Member, Seat
from consortium.governance.rules import check_rules, check_weights
from ledger import services as ledger
from ledger.services import log_signer

# --- members -----------------------------------------------------------------------------------


@registered
class MemberAdmit(Action):
    type = "member.admit"

    def check(self, action, state):
        if set(action) != {"type", "member"} or not isinstance(action["member"], dict):
            raise GovernanceError("member.admit is {type, member}")
        if set(action["member"]) != MEMBER_FIELDS:
            raise GovernanceError(
                f"member.admit takes a complete member record: {', '.join(sorted(MEMBER_FIELDS))}"
            )
        record = member_record(**action["member"])
        if record != action["member"]:
            raise GovernanceError("member.admit takes a complete member record")
        known = state.members.get(record["code"])
        if known is not None and known["status"] != Member.Status.APPLICANT:
            raise GovernanceError(f"{record['code']} is already {known['status']}")
        check_weights(state.rules, {record["code"]: record["figures"]})
        state.members[record["code"]] = {**record, "status": Member.Status.MEMBER}

    def apply(self, action, *, proposal, index, n):
        code, fields = action["member"]["code"], effects.admitted(action, index)
        # An applicant becomes a member; a member admitted directly is registered here.
        if not Member.objects.filter(code=code).update(**fields):
            Member.objects.create(code=code, registered_in=index, **fields)

    def sign_with_decision(self, action, proposal):
        # Its first (hosted) key, so that its signatory can act.
        code = action["member"]["code"]
        ledger.key_register(signer=log_signer(), kind="member", owner=code, name=f"member-{code}")

    def describe(self, action):
        m = action["member"]
        kind = Member.Kind(m["kind"]).label
        return f"Admit {m['name']} ({m['code']}), {kind}; figures: {figures_in_words(m['figures'])}"


class MemberChange(Action):
    """A change of one member's standing (or, ``member.figures``, of its figures)."""

    fields: ClassVar[frozenset[str]] = frozenset({"type", "code"})

    @property
    def needs(self) -> str | None:
        """The standing the member must have (none: any)."""
        return effects.STANDING_NEEDED.get(self.type)

    @property
    def becomes(self) -> dict:
        """What the change writes."""
        return {"status": effects.STANDING_AFTER[self.type]}

    def check(self, action, state):
        if set(action) != self.fields:
            raise GovernanceError(f"{self.type} is {{{', '.join(sorted(self.fields))}}}")
        code = action["code"]
        member = state.members.get(code) if isinstance(code, str) else None
        if member is None:
            raise GovernanceError(f"no member {code!r}")
        if self.needs and member["status"] != self.needs:
            raise GovernanceError(f"{code} is {member['status']}")
        self.simulate(action, member, state)

    def simulate(self, action: dict, member: dict, state: Simulation) -> None:
        member["status"] = self.becomes["status"]

    def apply(self, action, *, proposal, index, n):
        Member.objects.filter(code=action["code"]).update(changed_in=index, **self.becomes)
        forget_recent_reads()  # a suspended member's tokens read no more


@registered
class MemberSuspend(MemberChange):
    type = "member.suspend"

    def describe(self, action):
        return f"Suspend {action['code']}"


@registered
class MemberReinstate(MemberChange):
    type = "member.reinstate"

    def describe(self, action):
        return f"Reinstate {action['code']}"


@registered
class MemberWithdraw(MemberChange):
    type = "member.withdraw"

    def simulate(self, action, member, state):
        if member["status"] == Member.Status.WITHDRAWN:
            raise GovernanceError(f"{action['code']} has already withdrawn")
        super().simulate(action, member, state)

    def apply(self, action, *, proposal, index, n):
        super().apply(action, proposal=proposal, index=index, n=n)
        # A member that has left holds no seats: its delegates (and their tokens) read
        # and act no more.
        Seat.objects.filter(member_id=action["code"], vacated_in__isnull=True).update(
            vacated_in=index
        )
        forget_recent_reads()

    def describe(self, action):
        return f"Record that {action['code']} leaves the consortium (its seats are vacated)"


@registered
class MemberFigures(MemberChange):
    type = "member.figures"
    fields = frozenset({"type", "code", "figures"})

    def simulate(self, action, member, state):
        code = action["code"]
        checked = member_record(
            code=code,
            kind=member["kind"],
            name=member["name"],
            country=member["country"],
            figures=action["figures"],
        )
        if checked["figures"] != action["figures"]:
            raise GovernanceError("figures are integers or decimal strings")
        check_weights(state.rules, {code: checked["figures"]})
        member["figures"] = checked["figures"]

    def apply(self, action, *, proposal, index, n):
        Member.objects.filter(code=action["code"]).update(
            changed_in=index, figures=action.get("figures")
        )

    def describe(self, action):
        return f"Set {action['code']}'s figures: {figures_in_words(action['figures'])}"


# --- the rules ---------------------------------------------------------------------------------


@registered
class RulesChange(Action):
    type = "rules.change"

    def check(self, action, state):
        if set(action) != {"type", "rules"}:
            raise GovernanceError("rules.change is {type, rules}")
        new = check_rules(action["rules"])
        check_weights(new, state.live_figures())
        state.rules = new

    def apply(self, action, *, proposal, index, n):
        Consortium.objects.filter(id=1).update(rules=action["rules"])

    def describe(self, action):
        rules = action["rules"]
        names = ", ".join(f"{name} ({spec.get('kind')})" for name, spec in rules["voting"].items())
        return f"Change the voting rules to {names}; the default is {rules['default']}"
