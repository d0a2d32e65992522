"""Actions on the decisions later stages act on: valuation tables, access grants,
checkpoint releases, the end of an agreement in force, a lost member key."""

from __future__ import annotations

import uuid

from django.db.models import Max

from consortium.governance import effects
from consortium.governance.actions.base import Action, exact_fields, registered, require_reason
from consortium.governance.agreements import close_agreement
from consortium.governance.changes import GovernanceError
from consortium.governance.models import (
    AccessGrant,
    Agreement,
    Member,
    ReleaseApproval,
    ValuationTable,
)
from consortium.governance.terms import ACCESS_SCOPES, check_valuation, parse_date
from consortium.governance.validators import SHA256_RE
from ledger import services as ledger
from ledger.services import Key, log_signer

# --- decisions later stages act on -------------------------------------------------------------


@registered
class ValuationAdopt(Action):
    type = "valuation.adopt"

    def check(self, action, state):
        exact_fields(action, "table")
        table = check_valuation(action["table"], "valuation.adopt: table")
        latest = ValuationTable.objects.aggregate(v=Max("version"))["v"] or 0
        if table["version"] <= latest:
            raise GovernanceError(
                f"valuation.adopt: version {table['version']} is taken (latest {latest})"
            )

    def apply(self, action, *, proposal, index, n):
        ValuationTable.objects.create(**effects.valuation_table(action, index), proposal=proposal)

    def describe(self, action):
        t = action["table"]
        weights = ", ".join(f"{k} {v}" for k, v in t["weights"].items())
        return f"Adopt valuation table v{t['version']} in {t['unit']}: {weights}"


@registered
class AccessGrantAction(Action):
    type = "access.grant"

    def check(self, action, state):
        exact_fields(action, "member", "scope", "reason", optional=("checkpoints", "until"))
        code = action["member"]
        member = state.members.get(code) if isinstance(code, str) else None
        if member is None or member["status"] == Member.Status.WITHDRAWN:
            raise GovernanceError(f"access.grant: no member {action['member']!r}")
        if action["scope"] not in ACCESS_SCOPES:
            raise GovernanceError(f"access.grant: scope is one of {', '.join(ACCESS_SCOPES)}")
        digests = action.get("checkpoints")
        if digests is not None and (
            not isinstance(digests, list)
            or not digests
            or not all(isinstance(d, str) and SHA256_RE.fullmatch(d) for d in digests)
        ):
            raise GovernanceError(
                "access.grant: checkpoints lists manifest SHA-256 digests (or is left out for all)"
            )
        if action.get("until") is not None:
            until = parse_date(action["until"], "access.grant: until")
            if until < state.today:
                raise GovernanceError("access.grant: until has passed")
        require_reason(action)

    def apply(self, action, *, proposal, index, n):
        grant = effects.access_grant(action, index)
        AccessGrant.objects.create(
            id=effects.grant_id(str(proposal.id), n), member_id=grant.pop("member"), **grant
        )

    def describe(self, action):
        digests = action.get("checkpoints")
        which = f"{len(digests)} checkpoint(s)" if digests else "every checkpoint"
        until = f" until {action['until']}" if action.get("until") else ""
        return (
            f"Grant {action['member']} {action['scope']} access to {which}{until}: "
            f"{action['reason']}"
        )


@registered
class AccessRevoke(Action):
    type = "access.revoke"

    def check(self, action, state):
        exact_fields(action, "grant", "reason")
        grant = (
            AccessGrant.objects.filter(id=action["grant"]).first()
            if isinstance(action["grant"], str)
            else None
        )
        if grant is None or grant.revoked_in is not None:
            raise GovernanceError(f"access.revoke: no standing grant {action['grant']!r}")
        require_reason(action)

    def apply(self, action, *, proposal, index, n):
        AccessGrant.objects.filter(id=action["grant"], revoked_in__isnull=True).update(
            revoked_in=index
        )

    def describe(self, action):
        return f"Revoke the access grant {action['grant']}: {action['reason']}"


@registered
class CheckpointRelease(Action):
    type = "checkpoint.release"

    def check(self, action, state):
        exact_fields(action, "checkpoint", optional=("note",))
        digest = action["checkpoint"]
        if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
            raise GovernanceError("checkpoint.release: checkpoint is its manifest's SHA-256 (hex)")
        if ReleaseApproval.objects.filter(checkpoint=digest).exists():
            raise GovernanceError(
                "checkpoint.release: that checkpoint's release is approved already"
            )
        note = action.get("note", "")
        if not isinstance(note, str) or len(note) > 300:
            raise GovernanceError("checkpoint.release: note is at most 300 characters")

    def apply(self, action, *, proposal, index, n):
        ReleaseApproval.objects.create(
            checkpoint=action["checkpoint"],
            note=action.get("note", ""),
            approved_in=index,
            proposal=proposal,
        )

    def describe(self, action):
        note = f": {action['note']}" if action.get("note") else ""
        return f"Release the checkpoint {action['checkpoint']}{note}"


@registered
class AgreementTerminate(Action):
    type = "agreement.terminate"

    def check(self, action, state):
        exact_fields(action, "agreement", "reason")
        agreement = None
        if isinstance(action["agreement"], str):
            try:
                agreement = Agreement.objects.filter(id=uuid.UUID(action["agreement"])).first()
            except ValueError:
                agreement = None
        if agreement is None:
            raise GovernanceError(f"agreement.terminate: no agreement {action['agreement']!r}")
        if agreement.state != Agreement.State.IN_FORCE:
            raise GovernanceError(f"agreement.terminate: the agreement is {agreement.state}")
        require_reason(action)

    def apply(self, action, *, proposal, index, n):
        close_agreement(
            uuid.UUID(action["agreement"]), Agreement.State.TERMINATED, index, action["reason"]
        )

    def describe(self, action):
        return f"Terminate the agreement {action['agreement']}: {action['reason']}"


@registered
class KeyRevoke(Action):
    type = "key.revoke"

    def check(self, action, state):
        exact_fields(action, "fingerprint", "reason")
        key = (
            Key.objects.filter(fingerprint=action["fingerprint"], kind="member").first()
            if isinstance(action["fingerprint"], str)
            else None
        )
        if key is None:
            raise GovernanceError("key.revoke: no member key with that fingerprint")
        if key.revoked_at is not None:
            raise GovernanceError("key.revoke: that key is revoked already")
        if key.owner not in state.members:
            raise GovernanceError(f"key.revoke: {key.owner} is not a member")
        require_reason(action)

    def sign_with_decision(self, action, proposal):
        # A lost key: the log key revokes it and gives its member a fresh hosted key,
        # which the member may later rotate to one of its own.
        key = Key.objects.get(fingerprint=action["fingerprint"])
        ledger.key_revoke(
            signer=log_signer(),
            fingerprint=key.fingerprint,
            reason=f"proposal {proposal.id}: {action['reason']}",
        )
        ledger.key_register(
            signer=log_signer(), kind="member", owner=key.owner, name=f"member-{key.owner}"
        )

    def describe(self, action):
        return (
            f"Revoke the member key {action['fingerprint']} and register a fresh hosted key "
            f"for its member: {action['reason']}"
        )
