"""The dashboard's witness status, against a member's witness run as a real process:
France's signatory registers it; after a checkpoint it shows the size and time it last
cosigned; Germany, without a witness, is told it has none."""

from __future__ import annotations

import re

import pytest

from tests import worlds
from tests.steps.cosigning import Witnesses, grow
from tests.steps.signin import sign_in

delegates = worlds.shared("delegates")


@pytest.fixture
def witnesses(tmp_path):
    ws = Witnesses(tmp_path)
    yield ws
    ws.close()


def witness_section(client, user) -> str:
    sign_in(client, user)
    page = client.get("/admin/").content.decode()
    start = page.index('id="witness-status"')
    return page[start : page.index('<div class="module', start + 1)]


def test_a_member_sees_when_its_witness_last_cosigned(client, delegates, witnesses):
    witnesses.start("FR", register=delegates)
    cp = grow(3)
    status = witness_section(client, delegates["fr"])
    assert "witness.fr.example" in status
    assert f"last cosigned the tree at size {cp.tree_size:,}" in status
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", status)
    assert "No alarm." in status
    assert "registered no witness" in witness_section(client, delegates["de"])
