"""What an accepted proposal does: its actions, one class per type, in one registry.

Each type says how an action is checked (its shape, and whether it applies to the
members and rules as the proposal's earlier actions leave them), how the
``proposal.decided`` applier applies it to the projections, what the decision's service
signs with it, and what it does in words, for people (the admin's proposal page):

``member.admit`` {member}, ``member.suspend`` / ``member.reinstate`` /
``member.withdraw`` {code}, ``member.figures`` {code, figures}, ``rules.change``
{rules}, ``valuation.adopt`` {table}, ``access.grant`` {member, scope, checkpoints?,
until?, reason}, ``access.revoke`` {grant, reason}, ``checkpoint.release``
{checkpoint, note?}, ``agreement.terminate`` {agreement, reason}, ``key.revoke``
{fingerprint, reason} (a lost member key: the log key revokes it and registers a fresh
hosted key for the member, in the decision's transaction), ``witness.policy`` {policy}
(a C2SP tlog-policy text: the cosignatures a checkpoint needs before it is served).
"""

from consortium.governance.actions import (  # noqa: F401  (the types register)
    decisions,
    members,
    witnessing,
)
from consortium.governance.actions.base import ACTIONS, check_actions, describe

__all__ = ["ACTIONS", "check_actions", "describe"]
