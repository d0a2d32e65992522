"""DUO terms that DUO couples with a value (a disease, a region, a date, a number of
months, users, a project, an institution, a research type) carry it in the agreement's
terms; a term without its value, or with a value it does not take, is refused."""

from __future__ import annotations

import re

import pytest

from consortium.governance.changes import GovernanceError
from consortium.governance.models import Agreement
from consortium.governance.terms import DUO_PARAMETERS, check_data_use
from ledger.services import Entry
from tests.steps.governance import propose

MEMBERS_TERMS = {"parties": ["FR", "DE"], "effective": {"from": "2026-01-01", "until": None}}


def data_use(permission="DUO:0000042", modifiers=()):
    return {
        "permission": permission,
        "modifiers": list(modifiers),
        "residency": "FR",
        "access_mode": "federated",
    }


def refused(use) -> str:
    with pytest.raises(GovernanceError) as exc:
        check_data_use(use, "terms.data_use")
    assert exc.value.status == 400
    return str(exc.value)


def test_a_data_sharing_agreement_keeps_its_region_disease_and_time_limit(delegates):
    use = data_use(
        {"code": "DUO:0000007", "disease": "MONDO:0005015"},
        [
            {"code": "DUO:0000022", "region": "EU"},
            {"code": "DUO:0000025", "months": 36},
            {"code": "DUO:0000024", "date": "2027-06-30"},
            "DUO:0000018",
        ],
    )
    a = propose(delegates, kind="data_sharing", terms={**MEMBERS_TERMS, "data_use": use})
    assert a.terms["data_use"]["modifiers"][0] == {"code": "DUO:0000022", "region": "EU"}
    assert Entry.objects.get(kind="agreement.proposed").payload["terms"]["data_use"] == use


@pytest.mark.parametrize(
    ("term", "parameter"),
    [
        ("DUO:0000022", "region"),
        ("DUO:0000024", "date"),
        ("DUO:0000025", "months"),
        ("DUO:0000026", "users"),
        ("DUO:0000027", "project"),
        ("DUO:0000028", "institution"),
        ("DUO:0000012", "research_type"),
    ],
)
def test_a_modifier_without_its_value_is_refused_saying_how_to_write_it(term, parameter):
    message = refused(data_use(modifiers=[term]))
    assert f"terms.data_use.modifiers[0]: {term}" in message
    assert f'needs its {parameter}: write {{"code": "{term}", "{parameter}": ' in message


def test_disease_specific_research_needs_its_disease():
    message = refused(data_use("DUO:0000007"))
    assert (
        "terms.data_use.permission: DUO:0000007 (disease specific research) needs its disease"
        in message
    )
    assert '"disease": "MONDO:0005015"' in message


def test_a_refused_proposal_writes_nothing(delegates):
    before = (Entry.objects.count(), Agreement.objects.count())
    terms = {**MEMBERS_TERMS, "data_use": data_use(modifiers=["DUO:0000022"])}
    with pytest.raises(GovernanceError, match=re.escape("needs its region")):
        propose(delegates, kind="data_sharing", terms=terms)
    assert (Entry.objects.count(), Agreement.objects.count()) == before


@pytest.mark.parametrize(
    ("use", "message"),
    [
        (
            data_use(modifiers=[{"code": "DUO:0000018", "region": "EU"}]),
            "DUO:0000018 (not for profit, non commercial use only) takes no parameter: write the plain code 'DUO:0000018'",
        ),
        (data_use({"code": "DUO:0000042"}), "takes no parameter"),
        (
            data_use(modifiers=[{"code": "DUO:0000022", "region": "EU", "months": 3}]),
            "DUO:0000022 takes only region, not months",
        ),
        (
            data_use(modifiers=[{"code": "DUO:0000022", "region": "Europe"}]),
            "modifiers[0].region: 'Europe' is not a region",
        ),
        (
            data_use(modifiers=[{"code": "DUO:0000022", "region": ["FI", "FI"]}]),
            "names a region twice",
        ),
        (
            data_use({"code": "DUO:0000007", "disease": "cancer"}),
            "permission.disease: 'cancer' is not a MONDO disease id",
        ),
        (
            data_use(
                {
                    "code": "DUO:0000007",
                    "disease": "MONDO:\u0660\u0660\u0660\u0665\u0660\u0661\u0665",
                }
            ),
            "not a MONDO disease id",
        ),
        (data_use(modifiers=[{"code": "DUO:0000025", "months": "36"}]), "whole number of months"),
        (data_use(modifiers=[{"code": "DUO:0000025", "months": 0}]), "whole number of months"),
        (
            data_use(modifiers=[{"code": "DUO:0000024", "date": "2027-02-30"}]),
            "not a calendar date",
        ),
        (data_use(modifiers=[{"code": "DUO:0000026", "users": []}]), "approved users"),
        (data_use(modifiers=[{"code": "DUO:0000027", "project": ""}]), "text of 1-200"),
        (
            data_use(modifiers=[{"code": "DUO:9999999", "region": "EU"}]),
            "not a DUO data use modifier",
        ),
        (data_use(modifiers=[{"region": "EU"}]), "None is not a DUO data use modifier"),
        (data_use(modifiers=["DUO:0000018", {"code": "DUO:0000018"}]), "takes no parameter"),
        (
            data_use(
                modifiers=[
                    {"code": "DUO:0000022", "region": "EU"},
                    {"code": "DUO:0000022", "region": "FI"},
                ]
            ),
            "names a modifier twice",
        ),
    ],
)
def test_malformed_parameters_are_refused_naming_the_field(use, message):
    assert message in refused(use)


def test_every_value_a_term_takes_is_accepted():
    modifiers = [
        {"code": "DUO:0000012", "research_type": "cancer genomics"},
        {"code": "DUO:0000022", "region": ["FI", "SE", "EEA"]},
        {"code": "DUO:0000024", "date": "2027-06-30"},
        {"code": "DUO:0000025", "months": 24},
        {"code": "DUO:0000026", "users": ["orcid:0000-0002-1825-0097"]},
        {"code": "DUO:0000027", "project": "NordicLM-2"},
        {"code": "DUO:0000028", "institution": "https://ror.org/040af2s02"},
        "DUO:0000018",
        "DUO:0000021",
    ]
    use = data_use({"code": "DUO:0000007", "disease": "MONDO:0005015"}, modifiers)
    assert check_data_use(use, "terms.data_use") == use
    assert {m["code"] for m in modifiers if isinstance(m, dict)} | {"DUO:0000007"} == set(
        DUO_PARAMETERS
    )


def test_plain_codes_that_take_no_value_stay_valid():
    use = data_use("DUO:0000042", ["DUO:0000018", "DUO:0000021", "DUO:0000046"])
    assert check_data_use(use, "terms.data_use") == use
