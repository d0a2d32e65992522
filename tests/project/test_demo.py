"""`manage.py demo`: a founded consortium with seats, and signed sample entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command

from consortium.governance.models import Member
from consortium.governance.selectors import seat_of
from ledger.services import Entry, latest_checkpoint, tree_size
from ledger.verify import verify_ledger


def test_demo_founds_six_members_seats_people_and_can_run_again(db, capsys, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo", "--entries", "40")
    out = capsys.readouterr().out
    assert "username: admin" in out and "password: " in out and "Bearer clt_" in out
    assert Member.objects.filter(status="member").count() == 6
    assert Member.objects.get(code="AT").status == "applicant"
    User = get_user_model()
    assert seat_of(User.objects.get(username="admin")).role == "secretariat"
    assert seat_of(User.objects.get(username="delegate-nl")).member_id == "NL"
    assert Entry.objects.filter(kind="compute.sample").exists()
    from consortium.governance.models import Proposal

    states = sorted(Proposal.objects.values_list("state", flat=True))
    assert states == ["accepted", "accepted", "open"]
    assert Member.objects.get(code="PL").figures == {"population": 36_620_000}
    from consortium.governance.models import Agreement

    treaty = Agreement.objects.get(kind="treaty")
    assert (
        treaty.state == "in_force" and treaty.parties.filter(signed_in__isnull=False).count() == 6
    )
    dsa = Agreement.objects.get(kind="data_sharing")
    unsigned = dsa.parties.filter(signed_in__isnull=True).values_list("member", flat=True)
    assert dsa.state == "open" and list(unsigned) == ["PL"]
    assert User.objects.get(username="delegate-pl").has_usable_password()
    from contributions.models import Contribution, Facility
    from contributions.report import cost_share_report

    assert Facility.objects.count() == 2
    assert set(Contribution.objects.values_list("kind", flat=True)) == {"compute", "data", "funds"}
    funds = Contribution.objects.filter(kind="funds")
    assert sorted(funds.values_list("state", flat=True)) == ["counted"] * 4 + ["pending"]
    assert funds.get(state="pending").member_id == "CZ"
    statuses = {m["status"] for m in cost_share_report(treaty).as_dict()["members"]}
    assert "on track" in statuses and statuses & {"behind", "critically behind"}
    from consortium.access import checkpoints
    from consortium.access.models import ModelCheckpoint

    cp = ModelCheckpoint.objects.get()
    assert cp.run is not None and cp.run.datasets and checkpoints.verify_stored(cp) == []
    size = tree_size()
    call_command("demo", "--entries", "10")
    assert tree_size() == size + 10  # only samples are added the second time
    assert Proposal.objects.count() == 3 and Agreement.objects.count() == 2
    assert latest_checkpoint().tree_size == size + 10
    assert verify_ledger(workers=1).ok


def test_the_demos_people_get_notices_of_what_is_done_after_it_not_of_its_setup(
    committed_db, capsys, settings, tmp_path, mailoutbox
):
    # Real commits: notices are sent when the facts they tell of are committed.
    settings.VAR_DIR = tmp_path
    call_command("demo", "--entries", "5")
    assert mailoutbox == []  # founding, agreements, proposals: the demo's own setup
    pl = get_user_model().objects.get(username="delegate-pl")
    assert pl.email == "delegate-pl@pl.demo.example"
    from consortium.governance import proposals

    proposals.proposal_open(
        actor=get_user_model().objects.get(username="delegate-fi"),
        title="Record Finland's 2026 population",
        actions=[{"type": "member.figures", "code": "FI", "figures": {"population": 5_600_000}}],
        deadline=datetime.now(UTC) + timedelta(days=7),
    )
    awaiting = [m for m in mailoutbox if "delegate-pl@pl.demo.example" in m.to]
    assert awaiting and "Record Finland's 2026 population" in awaiting[0].body
