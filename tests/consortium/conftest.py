"""Personas shared by the governance tests."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.members import consortium_found, member_record
from consortium.governance.seats import seat_assign
from tests import worlds

User = get_user_model()


@pytest.fixture
def delegates(db):
    """The secretariat, an auditor, signatories of France, Germany and Italy, and a
    recorder of France, in a consortium of those three (with population and gni)."""
    return found_delegates()


@pytest.fixture(scope="module")
def delegates_world(django_db_setup, django_db_blocker):
    """``delegates``, built once for a module that shares it
    (``delegates = worlds.shared("delegates")``)."""
    with worlds.kept_for_the_module(django_db_blocker):
        yield found_delegates()


def found_delegates() -> dict:
    consortium_found(
        name="C",
        members=[
            member_record(code=c, figures={"population": p, "gni": g})
            for c, p, g in (("FR", 68, "3000"), ("DE", 84, "4200"), ("IT", 59, "2100"))
        ],
    )
    p = {n: User.objects.create_user(n) for n in ("ops", "fr", "de", "it", "rec_fr", "aud")}
    seat_assign(actor=None, user=p["ops"], role="secretariat")
    seat_assign(actor=None, user=p["aud"], role="auditor")
    for code in ("fr", "de", "it"):
        seat_assign(actor=p["ops"], user=p[code], role="signatory", member=code.upper())
    seat_assign(actor=p["ops"], user=p["rec_fr"], role="recorder", member="FR")
    return p
