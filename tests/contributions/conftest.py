"""Personas for the contribution tests: Finland runs LUMI; Sweden and the Netherlands
contribute there; the secretariat, an auditor, recorders and signatories."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from consortium.governance import members as governance
from contributions.facilities import facility_register
from tests import worlds

User = get_user_model()
EXPORT_FIELDS = "JobID|JobIDRaw|Cluster|Partition|Account|State|Submit|Start|End|Elapsed|AllocTRES"


@pytest.fixture
def lumi(db):
    """The consortium (FI, SE, NL), its people, and LUMI (run by Finland, hosted key)."""
    return found_lumi()


@pytest.fixture(scope="module")
def lumi_world(django_db_setup, django_db_blocker):
    """``lumi``, built once for a module that shares it (``lumi = worlds.shared("lumi")``)."""
    with worlds.kept_for_the_module(django_db_blocker):
        yield found_lumi()


def found_lumi() -> dict:
    governance.consortium_found(
        name="C",
        members=[
            governance.member_record(code=c, figures={"population": p})
            for c, p in (("FI", 5), ("SE", 10), ("NL", 18))
        ],
    )
    people = {
        n: User.objects.create_user(n)
        for n in ("ops", "aud", "rec_fi", "sig_fi", "rec_se", "sig_se", "obs_nl", "sig_nl")
    }
    governance.seat_assign(actor=None, user=people["ops"], role="secretariat")
    governance.seat_assign(actor=None, user=people["aud"], role="auditor")
    for name, role, member in (
        ("rec_fi", "recorder", "FI"),
        ("sig_fi", "signatory", "FI"),
        ("rec_se", "recorder", "SE"),
        ("sig_se", "signatory", "SE"),
        ("obs_nl", "observer", "NL"),
        ("sig_nl", "signatory", "NL"),
    ):
        governance.seat_assign(actor=people["ops"], user=people[name], role=role, member=member)
    facility = facility_register(
        actor=people["ops"],
        record={
            "code": "lumi",
            "name": "LUMI",
            "operator": "FI",
            "country": "FI",
            "timezone": "Europe/Helsinki",
            "default_accelerator": "mi250x",
            "partitions": {"standard-g": "mi250x", "h100-g": "h100"},
            "accounts": {"project_fi": "FI", "project_se": "SE"},
        },
    )
    return {"people": people, "facility": facility}


def export(*rows: str, header: str = EXPORT_FIELDS) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


@pytest.fixture(scope="module")
def published_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """``lumi`` and its ``checkpoint`` (tests/contributions/test_access.py), built once for a
    module that shares them."""
    from tests.contributions.test_access import publish

    with worlds.kept_for_the_module(django_db_blocker):
        lumi = found_lumi()
        yield {"lumi": lumi, "checkpoint": publish(lumi, tmp_path_factory.mktemp("weights"))}
