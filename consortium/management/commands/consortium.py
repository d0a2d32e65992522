"""manage.py consortium init: found the consortium on the ledger."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from consortium.governance.changes import GovernanceError, refusals
from consortium.governance.members import consortium_found, member_record
from consortium.governance.models import Member
from consortium.governance.seats import seat_assign


class Command(BaseCommand):
    help = (
        "Found the consortium (init), seat a user as the operator (seat), decide the "
        "proposals whose deadline has passed (decide), and bring signed agreements into "
        "force or expire them on their dates (advance)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        init = sub.add_parser(
            "init",
            help=(
                "Record the consortium's founding (once): its name, rules and founding members, "
                "a hosted key for each member and the secretariat key."
            ),
        )
        init.add_argument("--name", required=True, help="The consortium's name.")
        init.add_argument(
            "--member",
            action="append",
            required=True,
            metavar="CODE[:POPULATION]",
            help="A founding member nation by ISO 3166-1 alpha-2 code, e.g. FR:68170000. Repeat.",
        )
        init.add_argument("--rules", type=Path, help="A JSON file of governance rules.")
        init.add_argument(
            "--secretariat",
            metavar="USERNAME",
            help="Give this existing user the secretariat seat.",
        )
        seat = sub.add_parser(
            "seat",
            help=(
                "Give a user a seat as the operator at the console (signed with the "
                "secretariat key): how a new secretariat is seated after init."
            ),
        )
        seat.add_argument("--user", required=True, help="Username of an existing user.")
        seat.add_argument(
            "--role",
            required=True,
            choices=["secretariat", "auditor", "signatory", "recorder", "observer"],
        )
        seat.add_argument(
            "--member", help="The member, for signatory, recorder and observer seats."
        )
        sub.add_parser(
            "decide",
            help="Decide every open proposal whose deadline has passed (beat does it every minute).",
        )

        sub.add_parser(
            "advance",
            help=(
                "Bring fully signed agreements into force on their effective date and expire "
                "those whose period has ended (beat does it every minute)."
            ),
        )

    def do_advance(self, **_):
        from consortium.governance.agreements import agreements_advance

        done = agreements_advance()
        self.stdout.write(
            f"{len(done['in_force'])} agreement(s) entered into force; "
            f"{len(done['expired'])} expired."
        )

    def do_seat(self, user, role, member=None, **_):
        holder = get_user_model().objects.filter(username=user).first()
        if holder is None:
            raise CommandError(f"no user {user!r}")
        with refusals(CommandError):
            seat = seat_assign(actor=None, user=holder, role=role, member=member)
        self.stdout.write(self.style.SUCCESS(f"{user} now holds the seat {seat} ({seat.id})."))

    def do_decide(self, **_):
        from consortium.governance.tasks import decide_due_proposals

        decided = decide_due_proposals()
        self.stdout.write(f"Decided {len(decided)} proposal(s) whose deadline had passed.")

    def handle(self, *args, action, **options):
        return getattr(self, f"do_{action}")(**options)

    def do_init(self, name, member, rules=None, secretariat=None, **_):
        # Besides the refusals, a rules file that cannot be read or parsed ends the command
        # with its message.
        with refusals(CommandError):
            try:
                records = []
                for spec in member:
                    code, _, population = spec.partition(":")
                    if population and not (population.isascii() and population.isdigit()):
                        raise GovernanceError(
                            f"--member {spec}: the population is a whole number in the digits 0-9"
                        )
                    figures = {"population": int(population)} if population else {}
                    records.append(member_record(code=code.strip(), figures=figures))
                rules_doc = json.loads(rules.read_text()) if rules else {}
                if not isinstance(rules_doc, dict):
                    raise GovernanceError("the rules file holds a JSON object")
                user = None
                if secretariat:
                    user = get_user_model().objects.filter(username=secretariat).first()
                    if user is None:
                        raise GovernanceError(f"no user {secretariat!r}")
                consortium_found(name=name, members=records, rules=rules_doc)
                if user is not None:
                    seat_assign(actor=None, user=user, role="secretariat")
            except (ValueError, OSError) as exc:
                raise CommandError(str(exc)) from exc
        codes = ", ".join(Member.objects.values_list("code", flat=True))
        self.stdout.write(self.style.SUCCESS(f"Founded {name}: {codes}."))
