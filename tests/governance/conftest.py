"""The governance tests' personas: as their seat matrices name them, and as API clients."""

import pytest

from tests.steps.api import api_as


@pytest.fixture
def people(delegates):
    """The delegates (tests/personas.py) as the seat tests name them: the secretariat, a
    signatory and a recorder of France, an observer and a signatory of Germany, an auditor
    and a newcomer with no seat."""
    names = {"secretariat": "ops", "sig_fr": "fr", "sig_de": "de", "auditor": "aud"}
    return {
        name: delegates[names.get(name, name)]
        for name in ("secretariat", "sig_fr", "rec_fr", "obs_de", "sig_de", "auditor", "newcomer")
    }


@pytest.fixture
def clients(delegates):
    """The delegates, each calling the API with a token of their own."""
    return {n: api_as(u) for n, u in delegates.items()}
