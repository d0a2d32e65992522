"""manage.py demo: load demo data into the configured database (again to add more)."""

from __future__ import annotations

import base64
import hashlib
import json as _json
import random
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from consortium.governance import agreements, proposals, selectors
from consortium.governance.documents import document_store
from consortium.governance.members import consortium_found, member_apply, member_record
from consortium.governance.models import Agreement, ApiToken, Consortium, Member, Proposal
from consortium.governance.seats import seat_assign
from consortium.governance.votes import vote_cast
from consortium.management.commands import _demo_data as demo
from consortium.management.commands._demo_second_factor import second_factor
from consortium.management.commands._demo_summary import print_summary, shown, summary
from consortium.web import background
from ledger import services as ledger
from ledger.services import Draft, Key, hosted_signer, log_origin, log_signer


class Command(BaseCommand):
    help = (
        "Load demo data: the consortium founded with six members, their keys and the "
        "secretariat key (first run), an administrator holding the secretariat seat, a "
        "signatory for each member, decided proposals (one releasing the checkpoint) and an "
        "open one awaiting Poland's vote, a treaty in force and a data-sharing agreement "
        "awaiting Poland's signature, two facilities with a SLURM import each, datasets and "
        "funds (confirmed by the secretariat) in four currencies, a model with a published "
        "checkpoint attested by an accredited evaluator, one member entitled to it (and one "
        "download served) and one refused, an audit export of everything, the offline "
        "verifier (dist/consortium-verify.pyz), and a few hundred signed sample entries. Run "
        "again to add more samples. Prints what to try, every command ready to paste."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--entries", type=int, default=300, help="Sample entries to add (default 300)."
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="Where the server will answer, for the printed commands "
            "(default http://127.0.0.1:8000).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object instead (users, passwords, tokens, URLs, commands).",
        )

    def handle(self, *args, **options):
        # The demo shows the export and the checkpoint it made: it waits for them. What it
        # sets up itself mails no one (its own output stays one JSON object with --json);
        # what people then do in the running demo does, to the console (EMAIL_BACKEND).
        with (
            background.inline(),
            override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"),
        ):
            return self._handle(*args, **options)

    def _handle(self, *args, entries, url, json, **options):
        self.quiet = json
        if not Consortium.objects.exists():
            members = [member_record(code=c, figures={"population": p}) for c, p in demo.FOUNDERS]
            consortium_found(name=demo.CONSORTIUM, members=members, rules=demo.RULES)
            self._say(f"Founded {demo.CONSORTIUM}: {', '.join(c for c, _ in demo.FOUNDERS)}.")
        signer = self._sampler()
        members = ["FR", "DE", "IT", "ES", "NL", "SE", "PL", "PT", "FI", "JP"]
        drafts = []
        base = ledger.tree_size()
        for i in range(entries):
            kind, payload = demo.TOPICS[i % len(demo.TOPICS)]
            drafts.append(
                Draft(
                    kind, {**payload, "member": members[(base + i) % len(members)], "n": base + i}
                )
            )
        with transaction.atomic(durable=True):
            ledger.entries_append(signer=signer, drafts=drafts)
        username, password = self._admin()
        User = get_user_model()
        admin = User.objects.get(username=username)
        signatories = self._seats(username, password)
        self._agreements(admin, signatories)
        self._contributions(admin, signatories)
        checkpoint = self._checkpoint()
        self._proposals(signatories, checkpoint)
        evaluator = self._evaluation(admin, checkpoint)
        self._download(signatories[demo.ENTITLED], checkpoint)
        export = self._audit_export(admin)
        tokens = {
            "secretariat": self._token(username),
            demo.ENTITLED: self._token(signatories[demo.ENTITLED].username),
            demo.REFUSED: self._token(signatories[demo.REFUSED].username),
        }
        verifier = self._verifier()
        cp = ledger.publish_checkpoint() or ledger.latest_checkpoint()
        vkey = Key.objects.get(kind=Key.Kind.LOG, revoked_at__isnull=True).verifier_key
        info = summary(
            url=url.rstrip("/"),
            username=username,
            password=password,
            tokens=tokens,
            vkey=vkey,
            checkpoint=checkpoint,
            export=export,
            verifier=verifier,
            evaluator=evaluator,
            signatories=signatories,
            awaiting=self._awaiting("PL"),
        )
        info["ledger"] = {"entries": ledger.tree_size(), "checkpoint_size": cp.tree_size}
        info["second_factor"] = second_factor([admin, *signatories.values()])
        if json:
            self.stdout.write(_json.dumps(info, indent=2))
        else:
            print_summary(self.stdout, self.style, info)

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.stdout.write(text)

    def _awaiting(self, code: str) -> list[str]:
        """What awaits the member: agreements to sign, open proposals without its vote."""
        return [f"signing {p.agreement.title}" for p in selectors.signatures_awaited(code)] + [
            f"a vote on {p.title}" for p in selectors.votes_awaited(code)
        ]

    def _sampler(self):
        key = Key.objects.filter(owner=demo.SAMPLER, revoked_at__isnull=True).first()
        if key is not None:
            return hosted_signer(key.fingerprint)
        _, signer = ledger.key_register(
            signer=log_signer(), kind="service", owner=demo.SAMPLER, name=demo.SAMPLER
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
        if selectors.seat_of(admin) is None:
            seat_assign(actor=None, user=admin, role="secretariat")
        signatories = {}
        for code, _ in demo.FOUNDERS:
            user, created = User.objects.get_or_create(
                username=f"delegate-{code.lower()}",
                # Notices (docs/notifications.md) go to the seat holders' addresses.
                defaults={"email": f"delegate-{code.lower()}@{code.lower()}.demo.example"},
            )
            if created:
                if password.startswith("("):
                    user.set_unusable_password()
                else:
                    user.set_password(password)
                user.save()
            if selectors.seat_of(user) is None:
                seat_assign(actor=admin, user=user, role="signatory", member=code)
            signatories[code] = user
        return signatories

    def _proposals(self, signatories: dict, checkpoint) -> None:
        """Two decided proposals (Poland's population; the checkpoint's release) and an
        open one admitting an applicant, whose vote awaits Poland (the first time round)."""
        if Proposal.objects.exists():
            return
        deadline = datetime.now(UTC) + timedelta(seconds=3)
        figures = proposals.proposal_open(
            actor=signatories["PL"],
            title="Record Poland's 2026 population",
            actions=[
                {"type": "member.figures", "code": "PL", "figures": {"population": 36_620_000}}
            ],
            deadline=deadline,
        )
        release = proposals.proposal_open(
            actor=signatories["FI"],
            title=f"Release {checkpoint.model.name} {checkpoint.name} to the members",
            actions=[
                {
                    "type": "checkpoint.release",
                    "checkpoint": checkpoint.digest,
                    "note": "passed its safety evaluation",
                }
            ],
            deadline=deadline,
        )
        for proposal in (figures, release):
            for code, choice in (
                ("NL", "yes"),
                ("PL", "yes"),
                ("SE", "yes"),
                ("CZ", "yes"),
                ("FI", "abstain" if proposal is figures else "yes"),
            ):
                vote_cast(actor=signatories[code], proposal=proposal, choice=choice)
        time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.1)
        for proposal in (figures, release):
            proposals.proposal_decide(proposal=proposal)
        austria = member_record(code="AT", figures={"population": 9_160_000})
        if not Member.objects.filter(code="AT").exists():
            member_apply(actor=None, record=austria)
        open_ = proposals.proposal_open(
            actor=signatories["NL"],
            title="Admit Austria",
            actions=[{"type": "member.admit", "member": austria}],
            deadline=datetime.now(UTC) + timedelta(days=14),
        )
        for code in ("NL", "SE", "PT", "FI", "CZ"):
            vote_cast(
                actor=signatories[code], proposal=open_, choice="abstain" if code == "CZ" else "yes"
            )

    def _evaluation(self, admin, checkpoint) -> dict:
        """An accredited evaluator, whose key the demo holds (in var/), attests that the
        checkpoint passed its evaluation: signed by the evaluator itself and submitted as
        any partner system would (the first time round)."""
        from consortium.access import checkpoints
        from ledger.core.envelope import key_fingerprint, new_envelope, sign_envelope
        from ledger.keys import EntrySigner
        from ledger.submissions import submit

        path = settings.VAR_DIR / "demo-evaluator.key"
        key = Key.objects.filter(
            kind="evaluator", owner=demo.EVALUATOR, revoked_at__isnull=True
        ).first()
        if key is None or not path.exists():
            signer = EntrySigner.generate(f"evaluator-{demo.EVALUATOR}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            path.chmod(0o600)
            path.write_text(base64.b64encode(bytes(signer.signing_key)).decode())
            if key is None:
                key = checkpoints.evaluator_accredit(
                    actor=admin,
                    code=demo.EVALUATOR,
                    name="Demo AI Safety Institute",
                    public_key=signer.public_key,
                )
        if checkpoint.evaluations.exists():
            return {"code": demo.EVALUATOR, "key_file": shown(path)}
        signing_key = _signing_key(path)
        if key_fingerprint(bytes(signing_key.verify_key)) != key.fingerprint:
            return {"code": demo.EVALUATOR, "key_file": None}  # the key file was replaced
        report = b"Evaluation of " + checkpoint.digest.encode() + b": no finding blocks release.\n"
        env = new_envelope(
            kind="evaluation.attested",
            author=key.fingerprint,
            payload={
                "checkpoint": checkpoint.digest,
                "report_sha256": hashlib.sha256(report).hexdigest(),
                "verdict": "pass",
            },
        )
        # A client signs for the log it submits to: its origin, the checkpoints' first line.
        signed = sign_envelope(env, signing_key, log_origin())
        signature = base64.b64encode(signed.signature).decode()
        submit(envelope=env, signature=signature, submitter=admin)
        return {"code": demo.EVALUATOR, "key_file": shown(path)}

    def _download(self, user, checkpoint) -> None:
        """The entitled member's signatory downloads the checkpoint's configuration, through
        the gate and the serving view, so the access log holds a completed download (the
        first time round)."""
        from django.core import signals
        from django.db import close_old_connections
        from rest_framework.test import APIRequestFactory, force_authenticate

        from consortium.access import downloads
        from consortium.access.api import DownloadView
        from consortium.access.models import DownloadEvent

        if DownloadEvent.objects.filter(outcome="served").exists():
            return
        path = checkpoint.files[0]["path"]
        _, token = downloads.download_authorize(actor=user, checkpoint=checkpoint, files=[path])
        request = APIRequestFactory().get(
            f"/api/v1/downloads/{token}/{path}", REMOTE_ADDR="127.0.0.1"
        )
        force_authenticate(request, user=user)
        response = DownloadView.as_view()(request, token=token, path=path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if (
            response.status_code != 200
            or hashlib.sha256(body).hexdigest() != checkpoint.files[0]["sha256"]
        ):
            raise RuntimeError(f"the demo download failed: {response.status_code}")
        # Close the file it served, without the end-of-request signal closing the database
        # connection under this command (as Django's test client does).
        signals.request_finished.disconnect(close_old_connections)
        try:
            response.close()
        finally:
            signals.request_finished.connect(close_old_connections)

    def _verifier(self) -> str:
        """Build the offline verifier (dist/consortium-verify.pyz); its path as shown."""
        target = settings.BASE_DIR / "dist" / "consortium-verify.pyz"
        done = subprocess.run(  # noqa: S603 (the project's own script, by its own path)
            [
                sys.executable,
                str(settings.BASE_DIR / "scripts" / "build_verifier.py"),
                "--output",
                str(target),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"could not build the offline verifier: {done.stderr.strip()}")
        return shown(target)

    def _agreements(self, admin, signatories: dict) -> None:
        """A treaty in force, signed by all six; a data-sharing agreement still
        collecting signatures (Poland's is awaited)."""
        if Agreement.objects.exists():
            return
        today = datetime.now(UTC).date().isoformat()
        treaty_doc = document_store(
            actor=admin,
            name="treaty.txt",
            media_type="text/plain",
            content=demo.TREATY_TEXT.format(name=demo.CONSORTIUM).encode(),
        )
        treaty = agreements.agreement_propose(
            actor=admin,
            kind="treaty",
            title=f"Treaty establishing the {demo.CONSORTIUM}",
            document_sha256=treaty_doc.sha256,
            terms=demo.treaty_terms(today),
        )
        for code, _ in demo.FOUNDERS:
            self._sign(signatories[code], treaty)
        dsa_doc = document_store(
            actor=signatories["FI"],
            name="data-sharing.txt",
            media_type="text/plain",
            content=demo.DSA_TEXT.encode(),
        )
        dsa = agreements.agreement_propose(
            actor=signatories["FI"],
            kind="data_sharing",
            title="Public-sector text corpora (FI, NL, PL)",
            document_sha256=dsa_doc.sha256,
            terms=demo.dsa_terms(today),
        )
        for code in ("FI", "NL"):
            self._sign(signatories[code], dsa)

    def _contributions(self, admin, signatories: dict) -> None:
        """Two facilities, a SLURM import at LUMI, datasets and funds in four currencies:
        some members ahead of their share, some behind (the first time round)."""
        from contributions import compute, data, facilities, funds
        from contributions.models import Facility

        if Facility.objects.exists():
            return
        for record in demo.FACILITIES:
            facilities.facility_register(actor=admin, record=record)
        for facility, uploader, accounts in demo.SACCT_IMPORTS:
            compute.sacct_import(
                actor=signatories[uploader],
                facility=Facility.objects.get(code=facility),
                data=demo.demo_export(accounts, facility),
            )
        today = datetime.now(UTC).date().isoformat()
        for code, amount, currency in demo.PAYMENTS:
            paid = funds.funds_contribute(
                actor=signatories[code], amount=amount, currency=currency, date_paid=today
            )
            if code not in demo.UNCONFIRMED:
                funds.funds_confirm(actor=admin, contribution=paid)
        for code, dataset in demo.datasets():
            data.data_contribute(actor=signatories[code], dataset=dataset)

    def _audit_export(self, admin):
        """An audit export of everything up to now, built in-process when no broker is
        configured (each run: the ledger grew)."""
        from consortium.audit import exports as audit
        from consortium.audit.models import AuditExport

        everything = AuditExport.objects.filter(
            requested_by=admin,
            member__isnull=True,
            date_from__isnull=True,
            date_to__isnull=True,
            first__isnull=True,
            end__isnull=True,
        )
        building = everything.filter(status__in=("queued", "running")).first()
        if building is not None:  # a worker has it: one export at a time per person
            return building
        export = audit.audit_export_request(actor=admin)
        export.refresh_from_db()
        return export

    def _checkpoint(self):
        """A model under the treaty, its training run and a small published checkpoint
        (the first time round)."""
        import tempfile

        from consortium.access import checkpoints
        from consortium.access.models import ModelCheckpoint, TrainedModel
        from contributions.models import Contribution

        if TrainedModel.objects.exists():
            return ModelCheckpoint.objects.order_by("published_in").first()
        treaty = Agreement.objects.get(kind="treaty")
        model = checkpoints.model_register(
            actor=None, code="aurora", name="Aurora 7B", agreement=treaty
        )
        run = checkpoints.training_record(
            actor=None,
            model=model,
            name="pretraining, September",
            datasets=[
                c.dataset["manifest_sha256"] for c in Contribution.objects.filter(kind="data")
            ],
            compute=[
                str(c.id) for c in Contribution.objects.filter(kind="compute", state="counted")
            ],
        )
        rng = random.Random("aurora")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "config.json").write_text('{"layers": 32, "hidden": 4096}')
            for i in range(2):
                (root / f"model-{i + 1:05}-of-00002.safetensors").write_bytes(
                    rng.randbytes(256 * 1024)
                )
            return checkpoints.checkpoint_publish(
                actor=None, model=model, name="step-120000", directory=root, run=run, workers=1
            )

    @staticmethod
    def _sign(user, agreement) -> None:
        agreement.refresh_from_db()
        agreements.agreement_sign(
            actor=user,
            agreement=agreement,
            terms_sha256=agreement.terms_sha256,
            document_sha256=agreement.document_sha256,
        )

    def _token(self, username: str) -> str:
        user = get_user_model().objects.get(username=username)
        _, plaintext = ApiToken.issue(
            user=user, name=f"demo {datetime.now(UTC):%Y-%m-%d %H:%M}", days=7
        )
        return plaintext


def _signing_key(path: Path):
    from nacl.signing import SigningKey

    return SigningKey(base64.b64decode(path.read_text().strip()))
