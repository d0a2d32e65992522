"""manage.py ledger {init,checkpoint,verifier-key,rotate-log-key,verify,verify-recent,replay,tiles,cosign,ingest,behind}"""

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
        vkey = sub.add_parser(
            "verifier-key", help="Print the log's current verifier key (name+hex8+base64)."
        )
        vkey.add_argument(
            "--history",
            action="store_true",
            help=(
                "Print every log key instead, the genesis key first, one a line: the "
                "verifier key, the entry index it signs from, and through which index "
                "(empty for the current key), tab-separated."
            ),
        )
        sub.add_parser(
            "rotate-log-key",
            help=(
                "Replace the log key: make a new hosted key and seal it, append the "
                "log.key_rotated entry (signed by the old key and the new), then publish a "
                "checkpoint under the new key. The old key's sealed copy stays. Prints the "
                "new verifier key."
            ),
        )
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

        tiles = sub.add_parser(
            "tiles",
            help=(
                "Write the log's C2SP tlog-tiles to the tiles storage (TILES_ROOT or the S3 "
                "bucket): every checkpoint's full and partial tiles and entry bundles, then "
                "the checkpoint file. Files already there are not written again."
            ),
        )
        tiles.add_argument(
            "--write",
            action="store_true",
            required=True,
            help="Write them (from size 0; what the task does after each checkpoint is the same from the stored checkpoint on).",
        )
        tiles.add_argument(
            "--resume",
            action="store_true",
            help="Start after the stored checkpoint's size instead of from size 0.",
        )
        tiles.add_argument(
            "--no-progress", action="store_true", help="No progress bar, even on a terminal."
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

        ingest = sub.add_parser(
            "ingest",
            help=(
                "Append the entries the database lacks (a restored old backup) from an audit "
                "export of a range (its zip or unzipped directory) or a witness's log copy "
                "(python -m ledger.witness export), byte for byte, each checked as `ledger "
                "verify` checks it, with their projections; in one transaction, committed "
                "only if the database then reaches the published checkpoint with its root. "
                "Entries the database holds must be identical (else: fork evidence, exit 1)."
            ),
        )
        ingest.add_argument(
            "source", help="The export's .zip or directory, or the copy's directory."
        )
        ingest.add_argument(
            "--no-progress", action="store_true", help="No progress bar, even on a terminal."
        )
        sub.add_parser(
            "behind",
            help=(
                "Compare the database with the newest checkpoint ever published "
                "(LEDGER_PUBLISHED_PATH) and the sizes witnesses cosigned: exits 0 when it "
                "holds them, 3 saying which entries are missing (re-ingest them), 1 saying "
                "what differs (a fork)."
            ),
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

    def do_verifier_key(self, history=False, **_):
        if not history:
            self.stdout.write(log_signer_key())
            return
        keys = Key.objects.filter(kind=Key.Kind.LOG).order_by("valid_from")
        if not keys:
            raise CommandError("the ledger has no log key yet: run `manage.py ledger init`")
        for key in keys:
            through = "" if key.revoked_at is None else str(key.revoked_at)
            self.stdout.write(f"{key.verifier_key}\t{key.valid_from}\t{through}")

    def do_rotate_log_key(self, **_):
        try:
            entry, new = services.log_key_rotate()
            cp = checkpoints.publish_checkpoint()
        except (HostedKeyError, LedgerError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Rotated the log key at index {entry.index}; checkpoints of more than "
                f"{entry.index} entries are signed by the new key."
            )
        )
        if cp is not None:
            self.stdout.write(f"Published the checkpoint at size {cp.tree_size}.")
        self.stdout.write(Key.objects.get(fingerprint=new.fingerprint).verifier_key)

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

    def do_tiles(self, write=True, resume=False, no_progress=False, **_):
        from ledger import tile_store

        bar = None
        if not no_progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(unit="checkpoint", desc="tiles", file=sys.stderr)

        def progress(done: int, total: int, written) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.set_postfix(written=written.written, present=written.present)
                bar.refresh()

        try:
            done = tile_store.write_tiles(from_start=not resume, progress=progress)
        except LedgerError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Tiles of {done.sizes} checkpoints: {done.written} files written, "
                f"{done.present} already there; the stored checkpoint is at size {done.size}."
            )
        )
        for path in done.unbundlable:
            self.stderr.write(
                f"not written: {path} (a leaf over 65,535 bytes; the view answers 409)"
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

    def do_ingest(self, source, no_progress=False, **_):
        from ledger.ingest import ingest

        bar = None
        if not no_progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(unit="entry", desc="ingest", file=sys.stderr)
        try:
            done = ingest(source, progress=bar.update if bar else None)
        except LedgerError as exc:
            raise CommandError(str(exc), returncode=1) from exc
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Ingested {done.added:,} entries ({done.before:,} to {done.size - 1:,}); "
                f"{done.present:,} the database held were identical. The log holds "
                f"{done.size:,} entries and is no longer behind what it published."
            )
        )

    def do_behind(self, **_):
        from ledger.published import verdict

        missing, reason = verdict()
        if reason is not None:
            raise CommandError(reason, returncode=3 if missing else 1)
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: the database ({proofs.tree_size():,} entries) holds every published entry."
            )
        )


def log_signer_key() -> str:
    """The current log key's verifier key."""
    key = Key.objects.filter(kind=Key.Kind.LOG, revoked_at__isnull=True).first()
    if key is None:
        raise CommandError("the ledger has no log key yet: run `manage.py ledger init`")
    return key.verifier_key
