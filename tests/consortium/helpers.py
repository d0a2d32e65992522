"""Helpers shared by the governance tests."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from consortium.governance import proposals
from ledger.core.envelope import parse_time


def decide_after_deadline(proposal):
    """Decide ``proposal`` with the clock moved just past its deadline, as the beat
    task would (the decision entry then carries that integration time)."""
    with time_machine.travel(parse_time(proposal.deadline) + timedelta(seconds=1)):
        return proposals.proposal_decide(proposal=proposal)
