"""Contributions in the admin: scoped lists, read-only, and the cost-share page."""

from __future__ import annotations

from contributions.models import Contribution
from tests.contributions.test_report import deliver, treaty


def test_a_delegate_sees_its_own_members_contributions(client, lumi):
    deliver(lumi)
    client.force_login(lumi["people"]["rec_se"])
    body = client.get("/admin/contributions/contribution/").content.decode()
    se = Contribution.objects.filter(member="SE").first()
    fi = Contribution.objects.filter(member="FI").first()
    assert str(se.id) in body and str(fi.id) not in body
    client.force_login(lumi["people"]["aud"])
    body = client.get("/admin/contributions/contribution/").content.decode()
    assert str(se.id) in body and str(fi.id) in body


def test_contributions_cannot_be_added_or_changed_in_the_admin(client, lumi):
    deliver(lumi)
    client.force_login(lumi["people"]["ops"])
    assert client.get("/admin/contributions/contribution/add/").status_code == 403
    c = Contribution.objects.first()
    page = client.get(f"/admin/contributions/contribution/{c.id}/change/").content.decode()
    assert 'name="_save"' not in page


def test_the_cost_share_page_shows_the_table_and_the_chart(client, lumi):
    a = treaty(lumi)
    deliver(lumi)
    client.force_login(lumi["people"]["obs_nl"])
    agreement_page = client.get(f"/admin/consortium/agreement/{a.id}/change/").content.decode()
    assert f"/admin/consortium/agreement/{a.id}/cost-shares/" in agreement_page
    page = client.get(f"/admin/consortium/agreement/{a.id}/cost-shares/").content.decode()
    assert "<svg" in page and "133.80" in page and "behind" in page
    assert "<script" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]
    march = client.get(
        f"/admin/consortium/agreement/{a.id}/cost-shares/?from=2026-03-01&to=2026-03-31"
    )
    assert "16.80" in march.content.decode()
    assert client.get(f"/admin/consortium/agreement/{a.id}/cost-shares/?from=x").status_code == 404
