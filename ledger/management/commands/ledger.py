"""manage.py ledger {init,checkpoint,verifier-key,verify,verify-recent,replay,cosign}"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from ledger import checkpoints, proofs, services
from ledger.errors import LedgerError
from ledger.keys import HostedKeyError, log_signer
from ledger.models import Key


class Command(BaseCommand):
    help = "Operate the ledger: initialise it, publish a checkpoint, print the verifier key, verify it."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        init = sub.add_parser("init", help="Create the log key and the genesis entry (once).")
        init.add_argument("--origin", help="The log's name (default: LEDGER_ORIGIN).")
        sub.add_parser("checkpoint", help="Sign and store a checkpoint at the current tree size.")
        sub.add_parser("verifier-key", help="Print the log's verifier key (name+hex8+base64).")
        replay = sub.add_parser(
            "replay",
            help=(
                "Rebuild every projection table from the entries alone, in a scratch "
                "database, and report any difference from the live tables. Exits 1 on any."
            ),
        )
        replay.add_argument(
            "--check",
            action="store_true",
            required=True,
            help="Compare only (the live tables are never written).",
        )
        verify = sub.add_parser(
            "verify",
            help=(
                "Recompute every leaf hash, check every signature under the key valid at its "
                "index, rebuild the tree and check every checkpoint. Exits 1 on any failure."
            ),
        )
        verify.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes for signature checks (default: every core).",
        )
        verify.add_argument(
            "--no-progress", action="store_true", help="No progress bar, even on a terminal."
        )
        verify.add_argument(
            "--strict",
            action="store_true",
            help="Also parse every leaf as JSON and check its canonical form (slower).",
        )

        recent = sub.add_parser(
            "verify-recent",
            help=(
                "Verify the entries appended since the last verification run that passed "
                "(what Celery beat runs on LEDGER_VERIFY_SCHEDULE) and record the run. "
                "Exits 1 on any failure."
            ),
        )
        recent.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes for signature checks (default: every core).",
        )
        recent.add_argument(
            "--limit", type=int, default=None, help="Check at most this many entries."
        )

        cosign = sub.add_parser(
            "cosign",
            help=(
                "Send the latest checkpoint to every registered witness now and print each "
                "one's outcome (cosigned, alarm, error). Exits 1 on an alarm."
            ),
        )
        cosign.add_argument(
            "--missing",
            action="store_true",
            help="Only the witnesses that have not cosigned it (what Celery beat does).",
        )

    def handle(self, *args, action, **options):
        return getattr(self, "do_" + action.replace("-", "_"))(**options)

    def do_init(self, origin=None, **_):
        if Key.objects.filter(kind=Key.Kind.LOG).exists():
            self.stdout.write("The ledger is already initialised.")
            self.stdout.write(log_signer_key())
            return
        try:
            services.ledger_init(origin=origin)
        except LedgerError as exc:
            raise CommandError(str(exc)) from exc
        checkpoints.publish_checkpoint()
        self.stdout.write(self.style.SUCCESS("Created the log key and the genesis entry."))
        self.stdout.write(log_signer_key())

    def do_checkpoint(self, **_):
        try:
            log_signer()
            cp = checkpoints.publish_checkpoint()
        except (HostedKeyError, LedgerError) as exc:
            raise CommandError(str(exc)) from exc
        if cp is None:
            latest = checkpoints.latest_checkpoint()
            self.stdout.write(f"No new entries since the checkpoint at size {latest.tree_size}.")
            self.stdout.write(latest.note, ending="")
            return
        self.stdout.write(cp.note, ending="")

    def do_replay(self, check=True, **_):
        from ledger.replay import projections, replay_check

        report = replay_check()
        names = ", ".join(m._meta.label for m in projections())
        if report.ok and report.skipped:
            self.stdout.write(f"{report.entries} entries replayed; not compared: {report.skipped}.")
            return
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {report.entries} entries replayed; {names} equal the live tables."
                )
            )
            return
        for difference in report.differences[:50]:
            self.stderr.write(f"DIFF: {difference}")
        raise CommandError(
            f"replay differs from the live tables ({len(report.differences)} differences)",
            returncode=1,
        )

    def do_verifier_key(self, **_):
        self.stdout.write(log_signer_key())

    def do_verify(self, workers=None, no_progress=False, strict=False, **_):
        from ledger.verify import verify_ledger

        total = proofs.tree_size()
        bar = None
        if not no_progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, unit="entry", desc="verify", file=sys.stderr)
        try:
            report = verify_ledger(
                workers=workers, progress=bar.update if bar else None, strict=strict
            )
        finally:
            if bar:
                bar.close()
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {report.size} entries and {report.checkpoints} checkpoints verify."
                )
            )
            if report.problems_skipped:
                self.stdout.write(f"Note: {report.problems_skipped}; run it again to compare them.")
            return
        first = report.first_failure()
        if first:
            self.stderr.write(f"FAIL at index {first[0]}: {first[1]}")
        for index, reason in sorted(report.failures)[1:20]:
            self.stderr.write(f"  also index {index}: {reason}")
        for problem in report.problems[:20]:
            self.stderr.write(f"FAIL: {problem}")
        raise CommandError(
            f"verification failed ({len(report.failures)} bad entries, {len(report.problems)} other problems)",
            returncode=1,
        )

    def do_verify_recent(self, workers=None, limit=None, **_):
        from ledger.verify import verify_recent

        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        if not Key.objects.filter(kind=Key.Kind.LOG).exists():
            raise CommandError("the ledger has no log key yet: run `manage.py ledger init`")
        run = verify_recent(workers=workers, limit=limit)
        if run.ok:
            left = proofs.tree_size() - run.size
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: entries {run.first} to {run.size - 1} and {run.checkpoints} "
                    "checkpoints verify."
                )
            )
            if left > 0:
                self.stdout.write(f"{left} entries are left for the next run.")
            return
        if run.failed_index is not None:
            self.stderr.write(f"FAIL at index {run.failed_index}: {run.reason}")
        else:
            self.stderr.write(f"FAIL: {run.reason}")
        raise CommandError(
            f"verification of entries from {run.first} failed ({run.failures} problems); "
            "`manage.py ledger verify` lists them all",
            returncode=1,
        )

    def do_cosign(self, missing=False, **_):
        from ledger.cosign.collect import collect

        cp = checkpoints.latest_checkpoint()
        if cp is None:
            raise CommandError("no checkpoint has been published yet")
        outcomes = collect(cp, only_missing=missing)
        if not outcomes:
            self.stdout.write(f"size {cp.tree_size}: no witness to ask")
        for name, outcome in sorted(outcomes.items()):
            self.stdout.write(f"size {cp.tree_size}: {name}: {outcome}")
        if any(o.startswith("alarm") for o in outcomes.values()):
            raise CommandError(
                "a witness raised an alarm (a fork or a rollback is possible): see the "
                "admin's witness alarms",
                returncode=1,
            )


def log_signer_key() -> str:
    key = Key.objects.filter(kind=Key.Kind.LOG).first()
    if key is None:
        raise CommandError("the ledger has no log key yet: run `manage.py ledger init`")
    return key.verifier_key
