"""manage.py demo: load demo data into the configured database (again to add more)."""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from consortium import agreements, governance, proposals
from consortium.models import Agreement, ApiToken, Consortium, Member, Proposal
from ledger import log, services
from ledger.core.envelope import parse_time
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
# The treaty's cost-sharing scale (shares of the fixed cost of training).
SCALE = {"NL": "0.26", "SE": "0.16", "PL": "0.22", "PT": "0.07", "FI": "0.09", "CZ": "0.20"}
TREATY_TEXT = """Treaty establishing the {name}

Article 1. The parties pool supercomputer time, national datasets and funds to train
frontier models together, and share the fixed cost of training by the scale in the
structured terms of this treaty, which are part of it.

Article 2. Each party may run the resulting weights on its own, sovereign inference
infrastructure, under the access rules in the structured terms.

Article 3. Every contribution, decision and authorisation is recorded on the
consortium's signed, append-only ledger, which any party may verify.
"""
DSA_TEXT = """Data-sharing agreement: Nordic and Central European public-sector text corpora

The corpora stay in the country named as residency; training runs reach them by
federated access only. Use is limited to not-for-profit, non-commercial research.
"""
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


def demo_export(accounts: list[str], cluster: str) -> bytes:
    """A SLURM accounting export (sacct --parsable2) of finished GPU jobs, with their
    steps, an array and a job still running, for the given accounts (one job each)."""
    rng = random.Random(cluster)
    lines = ["JobID|JobIDRaw|Cluster|Partition|Account|State|Submit|Start|End|ElapsedRaw|AllocTRES"]
    start = datetime(2026, 9, 1, 8, 0)
    for n, account in enumerate(accounts, start=1000):
        gpus, hours = rng.choice([8, 16, 32, 64]), rng.randint(6, 72)
        begin = start + timedelta(hours=n % 200)
        end = begin + timedelta(hours=hours)
        tres = (
            f"billing={gpus},cpu={gpus * 7},gres/gpu={gpus},mem={gpus * 60}G,node={gpus // 8 or 1}"
        )
        row = (f"{n}|{n}|{cluster}|standard-g|{account}|COMPLETED|{begin:%Y-%m-%dT%H:%M:%S}|"
               f"{begin:%Y-%m-%dT%H:%M:%S}|{end:%Y-%m-%dT%H:%M:%S}|{hours * 3600}|{tres}")  # fmt: skip
        lines.append(row)
        for step in ("batch", "extern", "0"):
            lines.append(row.replace(f"{n}|{n}|", f"{n}.{step}|{n}.{step}|", 1))
    lines.append(f"999|999|{cluster}|standard-g|{accounts[0]}|RUNNING|2026-09-30T10:00:00|"
                 f"2026-09-30T10:00:00|Unknown|3600|gres/gpu=8")  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


class Command(BaseCommand):
    help = (
        "Load demo data: the consortium founded with six members, their keys and the "
        "secretariat key (first run), an administrator holding the secretariat seat, a "
        "signatory for each member, a decided and an open proposal (admitting an applicant), "
        "a treaty in force and a data-sharing agreement awaiting a signature, two facilities with "
        "a SLURM import each, datasets and funds in four currencies, a model with a published "
        "checkpoint, an audit export of everything, a hosted sample key and a few hundred "
        "signed sample entries. Run again to add more samples."
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
        username, password = self._admin()
        User = get_user_model()
        signatories = self._seats(username, password)
        self._proposals(signatories)
        self._agreements(User.objects.get(username=username), signatories)
        self._contributions(User.objects.get(username=username), signatories)
        self._checkpoint()
        export = self._audit_export(User.objects.get(username=username))
        token = self._token(username)
        cp = log.publish_checkpoint() or log.latest_checkpoint()
        size = log.tree_size()
        self.stdout.write(
            self.style.SUCCESS(f"Ledger: {size} entries; checkpoint at size {cp.tree_size}.")
        )
        self.stdout.write("")
        self.stdout.write("Log in at http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  username: {username}")
        self.stdout.write(f"  password: {password}")
        delegates = ", ".join(f"delegate-{c.lower()}" for c, _ in FOUNDERS)
        self.stdout.write(f"  or as a member's signatory, same password: {delegates}")
        self.stdout.write("API docs at http://127.0.0.1:8000/api/v1/docs/ ; try:")
        self.stdout.write(
            f"  curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8000/api/v1/ledger/checkpoint"
        )
        vkey = Key.objects.get(kind=Key.Kind.LOG).verifier_key
        self.stdout.write(f"Verifier key: {vkey}")
        if export is not None and export.status == "done":
            try:
                where = export.file.path
            except NotImplementedError:  # an object store: fetch it from the admin
                where = f"audit-{export.id}.zip"
            self.stdout.write("An audit export of everything; verify it offline with:")
            self.stdout.write(f"  python -m contributions.audit verify {where} --vkey '{vkey}'")

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

    def _seats(self, username: str, password: str) -> dict:
        """The administrator runs the secretariat; a signatory speaks for each member."""
        User = get_user_model()
        admin = User.objects.get(username=username)
        if governance.seat_of(admin) is None:
            governance.seat_assign(actor=None, user=admin, role="secretariat")
        signatories = {}
        for code, _ in FOUNDERS:
            user, created = User.objects.get_or_create(username=f"delegate-{code.lower()}")
            if created:
                if password.startswith("("):
                    user.set_unusable_password()
                else:
                    user.set_password(password)
                user.save()
            if governance.seat_of(user) is None:
                governance.seat_assign(actor=admin, user=user, role="signatory", member=code)
            signatories[code] = user
        return signatories

    def _proposals(self, signatories: dict) -> None:
        """A decided proposal and an open one, the first time round."""
        if Proposal.objects.exists():
            return
        decided = proposals.proposal_open(
            actor=signatories["PL"],
            title="Record Poland's 2026 population",
            actions=[
                {"type": "member.figures", "code": "PL", "figures": {"population": 36_620_000}}
            ],
            deadline=datetime.now(UTC) + timedelta(seconds=3),
        )
        for code, choice in (
            ("NL", "yes"),
            ("PL", "yes"),
            ("SE", "yes"),
            ("CZ", "yes"),
            ("FI", "abstain"),
        ):
            proposals.vote_cast(actor=signatories[code], proposal=decided, choice=choice)
        time.sleep(
            max(0.0, (parse_time(decided.deadline) - datetime.now(UTC)).total_seconds()) + 0.1
        )
        proposals.proposal_decide(proposal=decided)
        austria = governance.member_record(code="AT", figures={"population": 9_160_000})
        if not Member.objects.filter(code="AT").exists():
            governance.member_apply(actor=None, record=austria)
        open_ = proposals.proposal_open(
            actor=signatories["NL"],
            title="Admit Austria",
            actions=[{"type": "member.admit", "member": austria}],
            deadline=datetime.now(UTC) + timedelta(days=14),
        )
        proposals.vote_cast(actor=signatories["NL"], proposal=open_, choice="yes")

    def _agreements(self, admin, signatories: dict) -> None:
        """A treaty in force, signed by all six; a data-sharing agreement still
        collecting signatures (Poland's is awaited)."""
        if Agreement.objects.exists():
            return
        today = datetime.now(UTC).date()
        treaty_doc = agreements.document_store(
            actor=admin, name="treaty.txt", media_type="text/plain",
            content=TREATY_TEXT.format(name=CONSORTIUM).encode(),
        )  # fmt: skip
        treaty = agreements.agreement_propose(
            actor=admin, kind="treaty", title=f"Treaty establishing the {CONSORTIUM}",
            document_sha256=treaty_doc.sha256,
            terms={
                "parties": [c for c, _ in FOUNDERS],
                "effective": {"from": today.isoformat(), "until": None},
                "accounting_unit": "EUR",
                "exchange_rates": {"SEK": "0.087", "PLN": "0.23", "CZK": "0.04"},
                "cost_sharing": {"method": "scale", "shares": SCALE},
                "valuation": {"version": 1, "unit": "H100-hour",
                              "weights": {"h100": "1", "a100": "0.45", "mi250x": "0.4"},
                              "unit_price": {"amount": "2.50", "currency": "EUR"},
                              "data_price": {"amount": "0.02", "currency": "EUR",
                                             "per_tokens": 1_000_000}},
                "access": [
                    {"scope": "full_weights", "tier": "member", "min_balance_ratio": "0.8"},
                    {"scope": "inference_only", "tier": "member", "embargo_days": 90},
                    {"scope": "evaluation", "tier": "evaluator"},
                ],
                "release": {"requires_proposal": True, "requires_evaluation": True},
            },
        )  # fmt: skip
        for code, _ in FOUNDERS:
            self._sign(signatories[code], treaty)
        dsa_doc = agreements.document_store(
            actor=signatories["FI"], name="data-sharing.txt", media_type="text/plain",
            content=DSA_TEXT.encode(),
        )  # fmt: skip
        dsa = agreements.agreement_propose(
            actor=signatories["FI"], kind="data_sharing",
            title="Public-sector text corpora (FI, NL, PL)", document_sha256=dsa_doc.sha256,
            terms={
                "parties": ["FI", "NL", "PL"],
                "effective": {"from": today.isoformat(), "until": None},
                "data_use": {"permission": "DUO:0000042", "modifiers": ["DUO:0000018"],
                             "residency": "FI", "access_mode": "federated"},
            },
        )  # fmt: skip
        for code in ("FI", "NL"):
            self._sign(signatories[code], dsa)

    def _contributions(self, admin, signatories: dict) -> None:
        """Two facilities, a SLURM import at LUMI, datasets and funds in four currencies:
        some members ahead of their share, some behind (the first time round)."""
        from contributions import services as contributions
        from contributions.models import Facility

        if Facility.objects.exists():
            return
        contributions.facility_register(actor=admin, record={
            "code": "lumi", "name": "LUMI", "operator": "FI", "country": "FI",
            "timezone": "Europe/Helsinki", "default_accelerator": "mi250x",
            "partitions": {"standard-g": "mi250x", "small-g": "mi250x"},
            "accounts": {"project_465000001": "FI", "project_465000002": "SE",
                         "project_465000003": "NL", "project_465000004": "PL"},
        })  # fmt: skip
        contributions.facility_register(actor=admin, record={
            "code": "karolina", "name": "Karolina", "operator": "CZ", "country": "CZ",
            "timezone": "Europe/Prague", "default_accelerator": "a100",
            "partitions": {"qgpu": "a100"}, "accounts": {"open-29-1": "CZ", "open-29-2": "PT"},
        })  # fmt: skip
        contributions.sacct_import(actor=signatories["FI"], facility=Facility.objects.get(code="lumi"),
                                   data=demo_export(["project_465000001"] * 5 + ["project_465000002"] * 3
                                                    + ["project_465000003", "project_465000004"], "lumi"))  # fmt: skip
        contributions.sacct_import(actor=signatories["CZ"], facility=Facility.objects.get(code="karolina"),
                                   data=demo_export(["open-29-1"] * 3 + ["open-29-2"], "karolina"))  # fmt: skip
        today = datetime.now(UTC).date().isoformat()
        for code, amount, currency in (("SE", "180000", "SEK"), ("PL", "60000", "PLN"),
                                       ("PT", "4000", "EUR"), ("NL", "5000", "EUR")):  # fmt: skip
            contributions.funds_contribute(actor=signatories[code], amount=amount,
                                           currency=currency, date_paid=today)  # fmt: skip
        for code, name, tokens, licence, residency in (
            ("NL", "Dutch government publications", 40_000_000_000, "CC0-1.0", "NL"),
            ("FI", "Finnish public-sector corpus", 25_000_000_000, "CC-BY-4.0", "FI"),
        ):
            contributions.data_contribute(actor=signatories[code], dataset={
                "name": name, "description": "demo dataset", "size_bytes": tokens * 4,
                "manifest_sha256": hashlib.sha256(name.encode()).hexdigest(), "files": 1200,
                "tokens": tokens, "licence": licence, "residency": residency,
                "duo": {"permission": "DUO:0000042", "modifiers": ["DUO:0000018"]},
                "access_mode": "federated",
            })  # fmt: skip

    def _audit_export(self, admin):
        """An audit export of everything, built in-process when no broker is configured
        (the first time round)."""
        from consortium import audit
        from consortium.models import AuditExport

        earlier = AuditExport.objects.order_by("-created_at").first()
        if earlier is not None:
            return earlier
        export = audit.audit_export_request(actor=admin)
        export.refresh_from_db()
        return export

    def _checkpoint(self) -> None:
        """A model under the treaty, its training run and a small published checkpoint
        (the first time round)."""
        import tempfile

        from consortium import checkpoints
        from consortium.models import TrainedModel
        from contributions.models import Contribution

        if TrainedModel.objects.exists():
            return
        treaty = Agreement.objects.get(kind="treaty")
        model = checkpoints.model_register(actor=None, code="aurora", name="Aurora 7B",
                                           agreement=treaty)  # fmt: skip
        run = checkpoints.training_record(
            actor=None, model=model, name="pretraining, September",
            datasets=[c.dataset["manifest_sha256"] for c in Contribution.objects.filter(kind="data")],
            compute=[str(c.id) for c in Contribution.objects.filter(kind="compute", state="counted")],
        )  # fmt: skip
        rng = random.Random("aurora")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "config.json").write_text('{"layers": 32, "hidden": 4096}')
            for i in range(2):
                (root / f"model-{i + 1:05}-of-00002.safetensors").write_bytes(
                    rng.randbytes(256 * 1024)
                )
            checkpoints.checkpoint_publish(actor=None, model=model, name="step-120000",
                                           directory=root, run=run, workers=1)  # fmt: skip

    @staticmethod
    def _sign(user, agreement) -> None:
        agreement.refresh_from_db()
        agreements.agreement_sign(
            actor=user, agreement=agreement, terms_sha256=agreement.terms_sha256,
            document_sha256=agreement.document_sha256,
        )  # fmt: skip

    def _token(self, username: str) -> str:
        user = get_user_model().objects.get(username=username)
        _, plaintext = ApiToken.issue(
            user=user, name=f"demo {datetime.now(UTC):%Y-%m-%d %H:%M}", days=7
        )
        return plaintext
