"""manage.py apitoken {create,list,revoke}"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from consortium.governance.changes import GovernanceError
from consortium.governance.models import ApiToken
from consortium.governance.tokens import token_issue, token_revoke


class Command(BaseCommand):
    help = "Issue, list and revoke API bearer tokens. A token is shown once, at creation."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = sub.add_parser("create", help="Issue a token and print it once.")
        create.add_argument("--user", required=True, help="Username the token acts as.")
        create.add_argument("--name", default="", help="What the token is for.")
        create.add_argument(
            "--days",
            type=int,
            default=None,
            help="Lifetime in days (default from API_TOKEN_DEFAULT_DAYS).",
        )
        lst = sub.add_parser("list", help="List tokens (never their secrets).")
        lst.add_argument("--user", help="Only this user's tokens.")
        revoke = sub.add_parser("revoke", help="Revoke a token by its key id.")
        revoke.add_argument("key_id")

    def handle(self, *args, action, **options):
        return getattr(self, f"do_{action}")(**options)

    def do_create(self, user, name, days, **_):
        try:
            owner = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user {user!r}") from exc
        try:
            token, plaintext = token_issue(actor=None, user=owner, name=name, days=days)
        except GovernanceError as exc:
            raise CommandError(str(exc)) from exc
        seat = f" as {token.seat}" if token.seat_id else " (no seat)"
        self.stderr.write(
            f"Token {token.key_id} for {owner.username}{seat}, "
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC."
        )
        if token.seat_id:
            self.stderr.write("It works while they hold that seat.")
        self.stderr.write("It is shown once; store it now.")
        self.stdout.write(plaintext)

    def do_list(self, user=None, **_):
        qs = ApiToken.objects.select_related("user", "seat")
        if user:
            qs = qs.filter(user__username=user)
        for t in qs:
            if t.revoked_at:
                state = "revoked"
            elif not t.is_usable:
                state = "expired"
            else:
                state = "unseated" if t.seat_lost else "active"
            # The seat the token carries: member (- for consortium-wide) and role.
            member = (t.seat.member_id or "-") if t.seat else "-"
            role = t.seat.role if t.seat else "-"
            self.stdout.write(
                f"{t.key_id}  {t.user.username:<20} {member:<8} {role:<11} {state:<8} "
                f"expires {t.expires_at:%Y-%m-%d}  {t.name}"
            )

    def do_revoke(self, key_id, **_):
        token = ApiToken.objects.filter(key_id=key_id).first()
        if token is None:
            raise CommandError(f"no token {key_id}")
        token_revoke(actor=None, token=token)
        self.stdout.write(f"Revoked {key_id}.")
