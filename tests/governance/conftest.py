"""The governance tests' personas by the names their seat matrices use."""

import pytest


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
