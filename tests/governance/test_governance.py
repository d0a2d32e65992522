"""Founding, members and seats, with the permission matrix for every write path.

Personas (the delegates of tests/personas.py): the operator at the console
(``actor=None``), the secretariat, a signatory of France, a recorder of France, an observer
of Germany, a signatory of Germany, an auditor and a newcomer with no seat. Only the secretariat and a member's own signatory assign that member's
seats; only the secretariat assigns consortium-wide seats.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from consortium.governance.changes import GovernanceError
from consortium.governance.members import consortium_found, member_record
from consortium.governance.models import Consortium, Member, Seat, SeatHolder
from consortium.governance.seats import seat_assign, seat_vacate
from consortium.governance.selectors import seat_of, visible_members_of
from ledger.services import Entry, Key
from ledger.verify import verify_ledger
from tests.personas import found_delegates

User = get_user_model()


def _user(name):
    return User.objects.create_user(name)  # no password: these personas act through services


@pytest.fixture
def founded(db):
    # A consortium of its own, not the delegates': these tests are of founding itself.
    members = [
        member_record(code="FR", figures={"population": 68_170_000}),
        member_record(code="DE", figures={"population": 84_480_000}),
        member_record(code="IT", figures={"population": 58_990_000}),
    ]
    consortium_found(name="Frontier AI Consortium", members=members)


def test_founding_records_the_members_their_keys_and_the_secretariat_key(founded):
    assert Consortium.objects.get().name == "Frontier AI Consortium"
    assert list(Member.objects.values_list("code", "status")) == [
        ("DE", "member"),
        ("FR", "member"),
        ("IT", "member"),
    ]
    assert Member.objects.get(code="FR").figures == {"population": 68_170_000}
    assert set(Key.objects.filter(kind="member").values_list("owner", "custody")) == {
        ("FR", "hosted"),
        ("DE", "hosted"),
        ("IT", "hosted"),
    }
    assert Key.objects.filter(kind="service", owner="secretariat").exists()
    assert Entry.objects.get(index=1).kind == "consortium.founded"
    assert verify_ledger(workers=1).ok


def test_the_consortium_is_founded_once(founded):
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="already founded"):
        # A founding of its own: that a second one is refused is what is tested.
        consortium_found(name="Again", members=[member_record(code="ES")])
    assert Entry.objects.count() == before


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"code": "XX"}, "not an ISO 3166-1 alpha-2"),
        ({"code": "fr"}, "not an ISO 3166-1 alpha-2"),
        ({"code": "FRA"}, "not an ISO 3166-1 alpha-2"),
        ({"code": "bsc", "kind": "institution", "country": "ES"}, "needs a name"),
        ({"code": "BSC", "kind": "institution", "country": "ES", "name": "BSC"}, "lowercase"),
        ({"code": "bsc", "kind": "institution", "country": "QQ", "name": "BSC"}, "not an ISO"),
        ({"code": "FR", "kind": "empire"}, "member kind"),
        (
            {"code": "FR", "figures": {"population": 1.5}},
            "non-negative integer, or a decimal string",
        ),
        ({"code": "FR", "figures": {"scale": "lots"}}, "non-negative integer, or a decimal string"),
        (
            {"code": "FR", "figures": {"scale": "1e999999"}},
            "non-negative integer, or a decimal string",
        ),
        (
            {"code": "FR", "figures": {"population": 10**30}},
            "non-negative integer, or a decimal string",
        ),
        ({"code": "fr-inst", "kind": "institution", "name": "I", "country": "fr"}, "ISO 3166-1"),
    ],
)
def test_a_member_record_is_checked(record, message):
    with pytest.raises(GovernanceError, match=message):
        member_record(**record)


# (actor, member, role, allowed)
MATRIX = [
    ("secretariat", "FR", "observer", True),
    ("secretariat", "IT", "signatory", True),
    ("secretariat", None, "auditor", True),
    ("sig_fr", "FR", "recorder", True),
    ("sig_fr", "DE", "recorder", False),
    ("sig_fr", None, "auditor", False),
    ("rec_fr", "FR", "observer", False),
    ("obs_de", "DE", "observer", False),
    ("sig_de", "FR", "signatory", False),
    ("auditor", "FR", "observer", False),
    ("newcomer", "FR", "observer", False),
]


@pytest.mark.parametrize(("actor", "member", "role", "allowed"), MATRIX)
def test_who_may_assign_a_seat(people, actor, member, role, allowed):
    target = _user("target")
    before = Entry.objects.count()
    if allowed:
        seat = seat_assign(actor=people[actor], user=target, role=role, member=member)
        assert (seat.member_id, seat.role, seat.holder.user) == (member, role, target)
        assert Entry.objects.count() == before + 1
    else:
        with pytest.raises(GovernanceError) as caught:
            seat_assign(actor=people[actor], user=target, role=role, member=member)
        assert caught.value.status == 403
        assert Entry.objects.count() == before
        assert not SeatHolder.objects.filter(user=target).exists()


def test_a_signatorys_seat_change_is_signed_by_its_members_key(people):
    seat_assign(actor=people["sig_fr"], user=_user("target"), role="observer", member="FR")
    entry = Entry.objects.order_by("-index").first()
    assert entry.kind == "seat.assigned"
    assert Key.objects.get(fingerprint=entry.author).owner == "FR"
    assert "target" not in bytes(entry.leaf).decode()  # the ledger names seats, not people


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [("secretariat", True), ("sig_fr", True), ("sig_de", False), ("rec_fr", False)],
)
def test_who_may_vacate_a_seat_of_france(people, actor, allowed):
    seat = SeatHolder.objects.get(user=people["rec_fr"]).seat
    if allowed:
        seat_vacate(actor=people[actor], seat=seat, reason="rotation")
        seat.refresh_from_db()
        assert seat.vacated_in is not None
        assert seat_of(people["rec_fr"]) is None
    else:
        with pytest.raises(GovernanceError) as caught:
            seat_vacate(actor=people[actor], seat=seat)
        assert caught.value.status == 403
        assert seat_of(people["rec_fr"]) == seat


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "emperor", "member": "FR"}, "role must be one of"),
        ({"role": "auditor", "member": "FR"}, "consortium-wide role"),
        ({"role": "observer", "member": "ES"}, "no member 'ES'"),
        ({"role": "observer", "member": None}, "no member None"),
    ],
)
def test_bad_seat_requests_are_refused_and_write_nothing(people, kwargs, message):
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match=message):
        seat_assign(actor=people["secretariat"], user=_user("target"), **kwargs)
    assert Entry.objects.count() == before


def test_a_user_holds_one_seat_at_a_time(people):
    with pytest.raises(GovernanceError, match="already holds a seat"):
        seat_assign(
            actor=people["secretariat"], user=people["rec_fr"], role="observer", member="FR"
        )


def test_what_each_persona_may_read(people):
    assert visible_members_of(people["auditor"]) is None
    assert visible_members_of(people["secretariat"]) is None
    assert visible_members_of(people["sig_fr"]) == {"FR"}
    assert visible_members_of(people["obs_de"]) == {"DE"}
    assert visible_members_of(people["newcomer"]) == set()


def test_the_init_command_founds_the_consortium_and_seats_the_secretariat(db, capsys):
    _user("ops")
    call_command(
        "consortium",
        "init",
        "--name",
        "Consortium",
        "--member",
        "FR:68170000",
        "--member",
        "SE",
        "--secretariat",
        "ops",
    )
    assert "Founded Consortium: FR, SE." in capsys.readouterr().out
    assert seat_of(User.objects.get(username="ops")).role == Seat.Role.SECRETARIAT
    with pytest.raises(CommandError, match="already founded"):
        call_command("consortium", "init", "--name", "Consortium", "--member", "FR")


def test_the_init_command_refuses_a_bad_member_code(db):
    with pytest.raises(CommandError, match="not an ISO 3166-1 alpha-2"):
        call_command("consortium", "init", "--name", "C", "--member", "XX")
    assert not Entry.objects.exists()


@pytest.mark.slow
def test_replay_rebuilds_the_consortium_members_and_seats(committed_db):
    from ledger.replay import replay_check

    delegates = found_delegates()
    # Italy's signatory seats a recorder of Italy; the secretariat vacates that seat.
    seat = seat_assign(actor=delegates["it"], user=_user("b"), role="recorder", member="IT")
    seat_vacate(actor=delegates["ops"], seat=seat, reason="moved on")
    report = replay_check()
    assert report.ok, report.differences
    assert verify_ledger(workers=2).ok


def test_the_operator_seats_a_new_secretariat_from_the_console(founded, capsys):
    _user("new-ops")
    call_command("consortium", "seat", "--user", "new-ops", "--role", "secretariat")
    assert "new-ops now holds the seat" in capsys.readouterr().out
    assert seat_of(User.objects.get(username="new-ops")).role == "secretariat"
    with pytest.raises(CommandError, match="no member 'ES'"):
        call_command(
            "consortium", "seat", "--user", "new-ops", "--role", "observer", "--member", "ES"
        )
