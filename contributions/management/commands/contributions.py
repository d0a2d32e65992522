"""manage.py contributions: import SLURM accounting, build dataset manifests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from consortium.governance.changes import refusals
from contributions import manifest as manifests
from contributions.compute import by_account, reading_summary, sacct_import
from contributions.models import Facility
from contributions.sacct import gpu_hours


class Command(BaseCommand):
    help = (
        "Import a SLURM accounting export for a facility (import-sacct), or build the "
        "manifest of a dataset's directory (manifest)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        imp = sub.add_parser(
            "import-sacct",
            help=(
                "Read `sacct --parsable2` (or --parsable) output and record each member's "
                "GPU-hours per accelerator type as one entry, with the export's SHA-256."
            ),
        )
        imp.add_argument("file", type=Path, help="The export; - reads standard input.")
        imp.add_argument("--facility", required=True, help="The facility's code.")
        imp.add_argument(
            "--fields",
            help="The field list when the export has no header (sacct --noheader --format), "
            "e.g. JobID,Account,State,Start,End,Elapsed,AllocTRES (commas or |).",
        )
        imp.add_argument("--tz", help="The zone of the export's times (default: the facility's).")
        imp.add_argument(
            "--dry-run", action="store_true", help="Print what would be recorded; record nothing."
        )
        imp.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        imp.add_argument(
            "--as",
            dest="username",
            help="Act as this user (a recorder or signatory of the facility's operator); "
            "default: the secretariat at the console, whose import awaits the facility's "
            "attestation.",
        )
        man = sub.add_parser(
            "manifest",
            help="Hash every file of a directory (streaming, on every core) and print its "
            "manifest root: register the dataset by it, its bytes never leave.",
        )
        man.add_argument("directory", type=Path)
        man.add_argument("--output", type=Path, help="Write the manifest's text to this file.")
        man.add_argument("--workers", type=int, help="Processes (default: one per core).")
        man.add_argument("--json", action="store_true", help="Print JSON.")
        man.add_argument(
            "--no-progress", action="store_true", help="No progress bar, even on a terminal."
        )

    def handle(self, *args, action, **options):
        return getattr(self, "do_" + action.replace("-", "_"))(**options)

    # --- import-sacct -----------------------------------------------------------------------

    def do_import_sacct(
        self, file, facility, fields=None, tz=None, dry_run=False, json=False, username=None, **_
    ):
        target = Facility.objects.filter(code=facility).first()
        if target is None:
            raise CommandError(f"no facility {facility!r}")
        actor = None
        if username:
            actor = get_user_model().objects.filter(username=username).first()
            if actor is None:
                raise CommandError(f"no user {username!r}")
        data = sys.stdin.buffer.read() if str(file) == "-" else _read(file)
        field_list = [f.strip() for f in fields.replace("|", ",").split(",")] if fields else None
        with refusals(CommandError):
            reading, rows, imported = sacct_import(
                actor=actor,
                facility=target,
                data=data,
                fields=field_list,
                tz=tz,
                dry_run=dry_run,
            )
        if json:
            self.stdout.write(_json_report(reading, rows, imported))
        else:
            self._table(reading, rows, imported, dry_run)

    def _table(self, reading, rows, imported, dry_run):
        out = self.stdout.write
        out(
            f"Export {reading.sha256}: {reading.lines} lines, {reading.steps} steps skipped, "
            f"{reading.duplicates} repeated allocations counted once."
        )
        out(
            f"{'account':<24} {'member':<8} {'accelerator':<20} {'allocations':>12} {'GPU-hours':>16}"
        )
        for r in by_account(reading):
            out(
                f"{r['account']:<24} {r['member']:<8} {r['accelerator']:<20} "
                f"{r['allocations']:>12} {r['gpu_hours']:>16}"
            )
        out("Recorded per member:" if not dry_run else "Would be recorded per member:")
        for r in rows:
            hours = gpu_hours(r["gpu_seconds"])
            out(f"  {r['member']:<8} {r['accelerator']:<20} {r['allocations']:>12} {hours:>16}")
        if reading.left_out_counts:
            out("Left out:")
            for reason, count in sorted(reading.left_out_counts.items()):
                out(f"  {count:>8}  {reason}")
            for account, count in sorted(reading.unmapped.items()):
                out(f"    account {account}: {count} allocation(s), not mapped to a member")
            for row in reading.left_out:
                out(f"    line {row.line}: job {row.job}: {row.reason}")
        if dry_run:
            out("Dry run: nothing was recorded.")
        else:
            state = (
                "attested by the facility"
                if imported.attested_in
                else ("reported; it counts once the facility attests it")
            )
            out(self.style.SUCCESS(f"Recorded at entry {imported.recorded_in}, {state}."))

    # --- manifest -------------------------------------------------------------------------------

    def do_manifest(self, directory, output=None, workers=None, json=False, no_progress=False, **_):
        if workers is not None and workers < 1:
            raise CommandError("--workers is 1 or more")
        try:
            files = manifests.list_files(directory)
        except (manifests.ManifestError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        total = sum(size for _, _, size in files)
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        try:
            result = manifests.build(directory, workers=workers, progress=bar.update)
        except (manifests.ManifestError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        if output:
            output.write_bytes(result.text)
        if json:
            self.stdout.write(
                _dumps(
                    {
                        "manifest_sha256": result.root,
                        "files": len(result.files),
                        "size_bytes": result.size,
                    }
                )
            )
        else:
            self.stdout.write(f"{len(result.files)} files, {result.size} bytes")
            self.stdout.write(f"manifest_sha256: {result.root}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc


def _dumps(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def _json_report(reading, rows, imported) -> str:
    return _dumps(
        {
            **reading_summary(reading, rows),
            "recorded": None
            if imported is None
            else {
                "import": str(imported.id),
                "entry": imported.recorded_in,
                "attested": imported.attested_in is not None,
            },
        }
    )
