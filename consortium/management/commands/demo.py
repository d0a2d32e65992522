"""manage.py demo: load demo data into the configured database (again to add more)."""

from __future__ import annotations

import base64
import hashlib
import json as _json
import os
import random
import secrets
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from consortium.governance import agreements, proposals
from consortium.governance import members as governance
from consortium.governance.models import Agreement, ApiToken, Consortium, Member, Proposal
from ledger import log, services
from ledger.keys import hosted_signer, log_signer
from ledger.models import Key
from ledger.services import Draft

SAMPLER = "demo-sampler"
EVALUATOR = "demo-evaluator"
# Sweden is ahead of its share and may download the checkpoint; the Netherlands is behind.
ENTITLED, REFUSED = "SE", "NL"
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
        row = (
            f"{n}|{n}|{cluster}|standard-g|{account}|COMPLETED|{begin:%Y-%m-%dT%H:%M:%S}|"
            f"{begin:%Y-%m-%dT%H:%M:%S}|{end:%Y-%m-%dT%H:%M:%S}|{hours * 3600}|{tres}"
        )
        lines.append(row)
        for step in ("batch", "extern", "0"):
            lines.append(row.replace(f"{n}|{n}|", f"{n}.{step}|{n}.{step}|", 1))
    lines.append(
        f"999|999|{cluster}|standard-g|{accounts[0]}|RUNNING|2026-09-30T10:00:00|"
        f"2026-09-30T10:00:00|Unknown|3600|gres/gpu=8"
    )
    return ("\n".join(lines) + "\n").encode()


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

    def handle(self, *args, entries, url, json, **options):
        self.quiet = json
        if not Consortium.objects.exists():
            members = [
                governance.member_record(code=c, figures={"population": p}) for c, p in FOUNDERS
            ]
            governance.consortium_found(name=CONSORTIUM, members=members, rules=RULES)
            self._say(f"Founded {CONSORTIUM}: {', '.join(c for c, _ in FOUNDERS)}.")
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
        admin = User.objects.get(username=username)
        signatories = self._seats(username, password)
        self._agreements(admin, signatories)
        self._contributions(admin, signatories)
        checkpoint = self._checkpoint()
        self._proposals(signatories, checkpoint)
        evaluator = self._evaluation(admin, checkpoint)
        self._download(signatories[ENTITLED], checkpoint)
        export = self._audit_export(admin)
        tokens = {
            "secretariat": self._token(username),
            ENTITLED: self._token(signatories[ENTITLED].username),
            REFUSED: self._token(signatories[REFUSED].username),
        }
        verifier = self._verifier()
        cp = log.publish_checkpoint() or log.latest_checkpoint()
        vkey = Key.objects.get(kind=Key.Kind.LOG).verifier_key
        info = self._summary(
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
        )
        info["ledger"] = {"entries": log.tree_size(), "checkpoint_size": cp.tree_size}
        if json:
            self.stdout.write(_json.dumps(info, indent=2))
        else:
            self._print(info)

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.stdout.write(text)

    def _summary(
        self,
        *,
        url,
        username,
        password,
        tokens,
        vkey,
        checkpoint,
        export,
        verifier,
        evaluator,
        signatories,
    ) -> dict:
        """Everything a newcomer needs, with every command ready to paste."""
        from consortium.access.entitlements import entitlement

        python = _shown(Path(sys.executable))
        download_dir = _shown(settings.VAR_DIR / "demo-download")
        bundle_file = _shown(settings.VAR_DIR / "demo-bundle.json")
        answer_file = _shown(settings.VAR_DIR / "demo-authorization.json")
        se, nl = tokens[ENTITLED], tokens[REFUSED]
        refused = entitlement(REFUSED, checkpoint)
        auth = "-H " + shlex.quote(f"Authorization: Bearer {tokens['secretariat']}")
        auth_se = "-H " + shlex.quote(f"Authorization: Bearer {se}")
        auth_nl = "-H " + shlex.quote(f"Authorization: Bearer {nl}")
        cp_url = f"{url}/api/v1/checkpoints/{checkpoint.digest}"
        # curl reads the URL and output of each file from a config on its standard input.
        to_config = (
            '\'import json; [print(f"url = \\"'
            + url
            + '{u}\\"\\noutput = \\"'
            + download_dir
            + '/{p}\\"") for p, u in json.load(open("'
            + answer_file
            + '"))["files"].items()]\''
        )
        commands = [
            {
                "what": "fetch the latest signed checkpoint (the secretariat's API token)",
                "command": f"curl -sS --fail {auth} {url}/api/v1/ledger/checkpoint",
            },
            {
                "what": f"may {REFUSED} download the checkpoint? (no: behind on its share)",
                "command": f"curl -sS --fail {auth_nl} "
                f"'{url}/api/v1/access/check?checkpoint={checkpoint.digest}'",
            },
            {
                "what": f"ask to download the checkpoint as {ENTITLED}'s signatory (entitled): an "
                "entry on the ledger and a short-lived token",
                "command": f"curl -sS --fail -X POST {auth_se} -H 'Content-Type: application/json' "
                f'-d \'{{"scope": "full_weights"}}\' -o {answer_file} {cp_url}/downloads',
            },
            {
                "what": f"download every file of it with curl, as {ENTITLED}'s signatory",
                "command": f"{shlex.quote(python)} -c {to_config} | "
                f"curl -sS --fail --create-dirs {auth_se} -K -",
            },
            {
                "what": "fetch the checkpoint's provenance bundle",
                "command": f"curl -sS --fail {auth_se} -o {bundle_file} {cp_url}/bundle",
            },
            {
                "what": "verify the downloaded files offline (Python and PyNaCl only)",
                "command": f"{shlex.quote(python)} {shlex.quote(verifier)} provenance {download_dir} "
                f"--bundle {bundle_file} --vkey {shlex.quote(vkey)}",
            },
        ]
        export_path = None
        if export is not None and export.status == "done":
            try:
                export_path = _shown(Path(export.file.path))
            except NotImplementedError:  # an object store: fetch it through the API
                export_path = _shown(settings.VAR_DIR / f"audit-{export.id}.zip")
                commands.append(
                    {
                        "what": "fetch the audit export of everything",
                        "command": f"curl -sS --fail {auth} -o {export_path} "
                        f"{url}/api/v1/audit/exports/{export.id}/file",
                    }
                )
            commands.append(
                {
                    "what": "verify the audit export of everything offline, with its figures",
                    "command": f"{shlex.quote(python)} {shlex.quote(verifier)} audit {export_path} "
                    f"--vkey {shlex.quote(vkey)}",
                }
            )
        return {
            "url": url,
            "admin": {"url": f"{url}/admin/", "username": username, "password": password},
            "delegates": {code: user.username for code, user in signatories.items()},
            "delegates_password": password,
            "api_docs": f"{url}/api/v1/docs/",
            "tokens": tokens,
            "verifier_key": vkey,
            "verifier": verifier,
            "checkpoint": {
                "digest": checkpoint.digest,
                "name": checkpoint.name,
                "model": checkpoint.model_id,
                "files": [f["path"] for f in checkpoint.files],
            },
            "evaluator": evaluator,
            "entitled": ENTITLED,
            "refused": {"member": REFUSED, "rule": refused.rule, "figures": refused.figures},
            "awaiting_poland": self._awaiting("PL"),
            "audit_export": {"id": str(export.id), "file": export_path} if export_path else None,
            "commands": commands,
        }

    def _print(self, info: dict) -> None:
        w = self.stdout.write
        led = info["ledger"]
        w(
            self.style.SUCCESS(
                f"Ledger: {led['entries']} entries; checkpoint at size {led['checkpoint_size']}."
            )
        )
        w("")
        w(f"Log in at {info['admin']['url']}")
        w(f"  username: {info['admin']['username']}")
        w(f"  password: {info['admin']['password']}")
        w("  or as a member's signatory, same password: " + ", ".join(info["delegates"].values()))
        waiting = info["awaiting_poland"]
        w(
            f"  (log in as delegate-pl: {len(waiting)} things await Poland: "
            + "; ".join(waiting)
            + ")"
        )
        w(f"API docs at {info['api_docs']}")
        w(f"Verifier key: {info['verifier_key']}")
        w(
            f"Checkpoint {info['checkpoint']['name']} of {info['checkpoint']['model']}: "
            f"{info['entitled']} may download it; {info['refused']['member']} is refused "
            f"({info['refused']['rule']})."
        )
        w("")
        w("Try, with the server running (each command as printed, from this directory):")
        for c in info["commands"]:
            w(f"# {c['what']}")
            w(f"  {c['command']}")
        w("")
        w(
            f"The offline verifier is one file, {info['verifier']}: copy it to any machine with "
            "Python 3.11+ and PyNaCl."
        )

    def _awaiting(self, code: str) -> list[str]:
        """What awaits the member: agreements to sign, open proposals without its vote."""
        from consortium.governance.models import Vote

        waiting = [
            f"signing {a.title}"
            for a in Agreement.objects.filter(
                state=Agreement.State.OPEN, parties__member_id=code, parties__signed_in__isnull=True
            )
        ]
        voted = Vote.objects.filter(member_id=code).values_list("proposal_id", flat=True)
        waiting += [
            f"a vote on {p.title}"
            for p in Proposal.objects.filter(state="open").exclude(id__in=voted)
        ]
        return waiting

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
                proposals.vote_cast(actor=signatories[code], proposal=proposal, choice=choice)
        time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.1)
        for proposal in (figures, release):
            proposals.proposal_decide(proposal=proposal)
        austria = governance.member_record(code="AT", figures={"population": 9_160_000})
        if not Member.objects.filter(code="AT").exists():
            governance.member_apply(actor=None, record=austria)
        open_ = proposals.proposal_open(
            actor=signatories["NL"],
            title="Admit Austria",
            actions=[{"type": "member.admit", "member": austria}],
            deadline=datetime.now(UTC) + timedelta(days=14),
        )
        for code in ("NL", "SE", "PT", "FI", "CZ"):
            proposals.vote_cast(
                actor=signatories[code], proposal=open_, choice="abstain" if code == "CZ" else "yes"
            )

    def _evaluation(self, admin, checkpoint) -> dict:
        """An accredited evaluator, whose key the demo holds (in var/), attests that the
        checkpoint passed its evaluation: signed by the evaluator itself and submitted as
        any partner system would (the first time round)."""
        from consortium.access import checkpoints
        from ledger import submissions
        from ledger.core.envelope import key_fingerprint, new_envelope, sign_envelope
        from ledger.keys import EntrySigner

        path = settings.VAR_DIR / "demo-evaluator.key"
        key = Key.objects.filter(kind="evaluator", owner=EVALUATOR, revoked_at__isnull=True).first()
        if key is None or not path.exists():
            signer = EntrySigner.generate(f"evaluator-{EVALUATOR}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            path.chmod(0o600)
            path.write_text(base64.b64encode(bytes(signer.signing_key)).decode())
            if key is None:
                key = checkpoints.evaluator_accredit(
                    actor=admin,
                    code=EVALUATOR,
                    name="Demo AI Safety Institute",
                    public_key=signer.public_key,
                )
        if checkpoint.evaluations.exists():
            return {"code": EVALUATOR, "key_file": _shown(path)}
        signing_key = _signing_key(path)
        if key_fingerprint(bytes(signing_key.verify_key)) != key.fingerprint:
            return {"code": EVALUATOR, "key_file": None}  # the key file was replaced
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
        signature = base64.b64encode(sign_envelope(env, signing_key).signature).decode()
        submissions.submit(envelope=env, signature=signature, submitter=admin)
        return {"code": EVALUATOR, "key_file": _shown(path)}

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
        return _shown(target)

    def _agreements(self, admin, signatories: dict) -> None:
        """A treaty in force, signed by all six; a data-sharing agreement still
        collecting signatures (Poland's is awaited)."""
        if Agreement.objects.exists():
            return
        today = datetime.now(UTC).date()
        treaty_doc = agreements.document_store(
            actor=admin,
            name="treaty.txt",
            media_type="text/plain",
            content=TREATY_TEXT.format(name=CONSORTIUM).encode(),
        )
        treaty = agreements.agreement_propose(
            actor=admin,
            kind="treaty",
            title=f"Treaty establishing the {CONSORTIUM}",
            document_sha256=treaty_doc.sha256,
            terms={
                "parties": [c for c, _ in FOUNDERS],
                "effective": {"from": today.isoformat(), "until": None},
                "accounting_unit": "EUR",
                "exchange_rates": {"SEK": "0.087", "PLN": "0.23", "CZK": "0.04"},
                "cost_sharing": {"method": "scale", "shares": SCALE},
                "valuation": {
                    "version": 1,
                    "unit": "H100-hour",
                    "weights": {"h100": "1", "a100": "0.45", "mi250x": "0.4"},
                    "unit_price": {"amount": "2.50", "currency": "EUR"},
                    "data_price": {"amount": "0.02", "currency": "EUR", "per_tokens": 1_000_000},
                },
                "access": [
                    {"scope": "full_weights", "tier": "member", "min_balance_ratio": "0.8"},
                    {"scope": "inference_only", "tier": "member", "embargo_days": 90},
                    {"scope": "evaluation", "tier": "evaluator"},
                ],
                "release": {"requires_proposal": True, "requires_evaluation": True},
            },
        )
        for code, _ in FOUNDERS:
            self._sign(signatories[code], treaty)
        dsa_doc = agreements.document_store(
            actor=signatories["FI"],
            name="data-sharing.txt",
            media_type="text/plain",
            content=DSA_TEXT.encode(),
        )
        dsa = agreements.agreement_propose(
            actor=signatories["FI"],
            kind="data_sharing",
            title="Public-sector text corpora (FI, NL, PL)",
            document_sha256=dsa_doc.sha256,
            terms={
                "parties": ["FI", "NL", "PL"],
                "effective": {"from": today.isoformat(), "until": None},
                "data_use": {
                    "permission": "DUO:0000042",
                    "modifiers": ["DUO:0000018"],
                    "residency": "FI",
                    "access_mode": "federated",
                },
            },
        )
        for code in ("FI", "NL"):
            self._sign(signatories[code], dsa)

    def _contributions(self, admin, signatories: dict) -> None:
        """Two facilities, a SLURM import at LUMI, datasets and funds in four currencies:
        some members ahead of their share, some behind (the first time round)."""
        from contributions import services as contributions
        from contributions.models import Facility

        if Facility.objects.exists():
            return
        contributions.facility_register(
            actor=admin,
            record={
                "code": "lumi",
                "name": "LUMI",
                "operator": "FI",
                "country": "FI",
                "timezone": "Europe/Helsinki",
                "default_accelerator": "mi250x",
                "partitions": {"standard-g": "mi250x", "small-g": "mi250x"},
                "accounts": {
                    "project_465000001": "FI",
                    "project_465000002": "SE",
                    "project_465000003": "NL",
                    "project_465000004": "PL",
                },
            },
        )
        contributions.facility_register(
            actor=admin,
            record={
                "code": "karolina",
                "name": "Karolina",
                "operator": "CZ",
                "country": "CZ",
                "timezone": "Europe/Prague",
                "default_accelerator": "a100",
                "partitions": {"qgpu": "a100"},
                "accounts": {"open-29-1": "CZ", "open-29-2": "PT"},
            },
        )
        contributions.sacct_import(
            actor=signatories["FI"],
            facility=Facility.objects.get(code="lumi"),
            data=demo_export(
                ["project_465000001"] * 5
                + ["project_465000002"] * 3
                + ["project_465000003", "project_465000004"],
                "lumi",
            ),
        )
        contributions.sacct_import(
            actor=signatories["CZ"],
            facility=Facility.objects.get(code="karolina"),
            data=demo_export(["open-29-1"] * 3 + ["open-29-2"], "karolina"),
        )
        today = datetime.now(UTC).date().isoformat()
        # Payments count once the treasurer (the secretariat, here) confirms them against
        # its books; Czechia's latest is still pending.
        for code, amount, currency in (
            ("SE", "180000", "SEK"),
            ("PL", "60000", "PLN"),
            ("PT", "4000", "EUR"),
            ("NL", "5000", "EUR"),
            ("CZ", "2000", "EUR"),
        ):
            paid = contributions.funds_contribute(
                actor=signatories[code], amount=amount, currency=currency, date_paid=today
            )
            if code != "CZ":
                contributions.funds_confirm(actor=admin, contribution=paid)
        for code, name, tokens, licence, residency in (
            ("NL", "Dutch government publications", 40_000_000_000, "CC0-1.0", "NL"),
            ("FI", "Finnish public-sector corpus", 25_000_000_000, "CC-BY-4.0", "FI"),
        ):
            contributions.data_contribute(
                actor=signatories[code],
                dataset={
                    "name": name,
                    "description": "demo dataset",
                    "size_bytes": tokens * 4,
                    "manifest_sha256": hashlib.sha256(name.encode()).hexdigest(),
                    "files": 1200,
                    "tokens": tokens,
                    "licence": licence,
                    "residency": residency,
                    "duo": {"permission": "DUO:0000042", "modifiers": ["DUO:0000018"]},
                    "access_mode": "federated",
                },
            )

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


def _shown(path: Path) -> str:
    """A path as a newcomer types it: relative to where the command runs, if inside it."""
    # Not resolved: a virtual environment's python is a link that must be kept as named.
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(os.path.abspath(Path.cwd())))
    except ValueError:
        return str(absolute)


def _signing_key(path: Path):
    from nacl.signing import SigningKey

    return SigningKey(base64.b64decode(path.read_text().strip()))
