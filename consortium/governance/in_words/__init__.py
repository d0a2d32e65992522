"""Agreements and proposals in words, for the people who sign and vote on them: the
terms as sentences (each DUO code with its label and meaning), the parties and their
signatures, the voting rule and the tally so far. Read-only; the admin's agreement and
proposal pages, and their confirmation pages, show what these return."""

from consortium.governance.in_words.agreement import (
    DUO_MEANINGS,
    AgreementInWords,
    agreement_in_words,
    duo_in_words,
    may_sign,
)
from consortium.governance.in_words.people import (
    day,
    entry_time,
    key_label,
    number,
    percent,
    time_left,
    when,
)
from consortium.governance.in_words.proposal import (
    CHOICE_WORDS,
    ProposalInWords,
    may_vote,
    proposal_in_words,
)

__all__ = [
    "CHOICE_WORDS",
    "DUO_MEANINGS",
    "AgreementInWords",
    "ProposalInWords",
    "agreement_in_words",
    "day",
    "duo_in_words",
    "entry_time",
    "key_label",
    "may_sign",
    "may_vote",
    "number",
    "percent",
    "proposal_in_words",
    "time_left",
    "when",
]
