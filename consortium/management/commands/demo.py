"""manage.py demo: load demo data into the configured database (again to add more)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from consortium import governance
from consortium.models import ApiToken, Consortium
from ledger import log, services
from ledger.keys import hosted_signer, log_signer
from ledger.models import Key
from ledger.services import Draft

SAMPLER = "demo-sampler"
CONSORTIUM = "Frontier AI Consortium (demo)"
# Six mid-sized economies, with their populations for the voting rules.
FOUNDERS = [
    ("NL", 17_900_000),
    ("SE", 10_550_000),
    ("PL", 36_750_000),
    ("PT", 10_470_000),
    ("FI", 5_600_000),
    ("CZ", 10_900_000),
]
RULES = {
    "voting": {
        "default": {
            "kind": "double_majority",
            "weight": "population",
            "members_threshold": "0.55",
            "weight_threshold": "0.65",
            "quorum": "0.5",
        },
        "unanimity": {"kind": "unanimity"},
    },
    "default": "default",
}
TOPICS = [
    ("compute.sample", {"facility": "LUMI", "accelerator": "mi250x", "gpu_hours": 1200}),
    ("compute.sample", {"facility": "Leonardo", "accelerator": "a100", "gpu_hours": 800}),
    ("compute.sample", {"facility": "MareNostrum 5", "accelerator": "h100", "gpu_hours": 640}),
    (
        "data.sample",
        {"dataset": "national-corpus", "tokens": 1_000_000_000, "licence": "CC-BY-4.0"},
    ),
    ("funds.sample", {"amount": "250000.00", "currency": "EUR"}),
]


class Command(BaseCommand):
    help = (
        "Load demo data: the consortium founded with six members, their keys and the "
        "secretariat key (first run), an administrator holding the secretariat seat, a "
        "signatory for the Netherlands, a hosted sample key and a few hundred signed "
        "sample entries. Run again to add more."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--entries", type=int, default=300, help="Sample entries to add (default 300)."
        )

    def handle(self, *args, entries, **options):
        if not Consortium.objects.exists():
            members = [
                governance.member_record(code=c, figures={"population": p}) for c, p in FOUNDERS
            ]
            governance.consortium_found(name=CONSORTIUM, members=members, rules=RULES)
            self.stdout.write(f"Founded {CONSORTIUM}: {', '.join(c for c, _ in FOUNDERS)}.")
        signer = self._sampler()
        members = ["FR", "DE", "IT", "ES", "NL", "SE", "PL", "PT", "FI", "JP"]
        drafts = []
        base = log.tree_size()
        for i in range(entries):
            kind, payload = TOPICS[i % len(TOPICS)]
            drafts.append(
                Draft(
                    kind, {**payload, "member": members[(base + i) % len(members)], "n": base + i}
                )
            )
        with transaction.atomic(durable=True):
            services.entries_append(signer=signer, drafts=drafts)
        cp = log.publish_checkpoint() or log.latest_checkpoint()
        username, password = self._admin()
        self._seats(username)
        token = self._token(username)
        size = log.tree_size()
        self.stdout.write(
            self.style.SUCCESS(f"Ledger: {size} entries; checkpoint at size {cp.tree_size}.")
        )
        self.stdout.write("")
        self.stdout.write("Log in at http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  username: {username}")
        self.stdout.write(f"  password: {password}")
        self.stdout.write("API docs at http://127.0.0.1:8000/api/v1/docs/ ; try:")
        self.stdout.write(
            f"  curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8000/api/v1/ledger/checkpoint"
        )
        self.stdout.write(f"Verifier key: {Key.objects.get(kind=Key.Kind.LOG).verifier_key}")

    def _sampler(self):
        key = Key.objects.filter(owner=SAMPLER, revoked_at__isnull=True).first()
        if key is not None:
            return hosted_signer(key.fingerprint)
        _, signer = services.key_register(
            signer=log_signer(), kind="service", owner=SAMPLER, name=SAMPLER
        )
        return signer

    def _admin(self) -> tuple[str, str]:
        """The demo administrator; its password lives in var/ so every run can print it."""
        path = settings.VAR_DIR / "demo_password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        password = path.read_text().strip()
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None:
            User.objects.create_superuser("admin", "admin@consortium.example", password)
        elif not user.check_password(password):
            password = "(unchanged: the admin user existed before this demo)"  # noqa: S105
        return "admin", password

    def _seats(self, username: str) -> None:
        """The administrator runs the secretariat; a signatory speaks for the Netherlands."""
        User = get_user_model()
        admin = User.objects.get(username=username)
        if governance.seat_of(admin) is None:
            governance.seat_assign(actor=None, user=admin, role="secretariat")
        nl, created = User.objects.get_or_create(username="delegate-nl")
        if created:
            nl.set_unusable_password()
            nl.save()
        if governance.seat_of(nl) is None:
            governance.seat_assign(actor=admin, user=nl, role="signatory", member="NL")

    def _token(self, username: str) -> str:
        user = get_user_model().objects.get(username=username)
        _, plaintext = ApiToken.issue(
            user=user, name=f"demo {datetime.now(UTC):%Y-%m-%d %H:%M}", days=7
        )
        return plaintext
