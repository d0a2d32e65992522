"""manage.py checkpoint: publish a model checkpoint, re-verify stored files, write a
provenance bundle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from consortium.access import checkpoints
from consortium.access.models import ModelCheckpoint, TrainedModel, TrainingRun
from consortium.governance.changes import GovernanceError, refusals
from consortium.web import background


class Command(BaseCommand):
    help = (
        "Publish a checkpoint from a directory (publish), re-hash its stored files "
        "(verify-stored), or write its provenance bundle for offline verification (bundle)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        pub = sub.add_parser(
            "publish",
            help="Hash every file of DIR (streaming, on every core), store the files and "
            "publish the manifest's digest as a checkpoint.published entry (the secretariat).",
        )
        pub.add_argument("directory", type=Path)
        pub.add_argument("--model", required=True, help="The model's code.")
        pub.add_argument("--name", required=True, help="The checkpoint's name, e.g. step-120000.")
        pub.add_argument("--run", help="The training run's id.")
        pub.add_argument("--workers", type=int, help="Processes (default: one per core).")
        pub.add_argument("--no-progress", action="store_true", help="No progress bar.")
        ver = sub.add_parser("verify-stored", help="Re-hash a checkpoint's stored files.")
        ver.add_argument("digest")
        bun = sub.add_parser("bundle", help="Write a checkpoint's provenance bundle (JSON).")
        bun.add_argument("digest")
        bun.add_argument("--output", type=Path, help="Default: standard output.")

    def handle(self, *args, action, **options):
        # A published checkpoint's files are re-verified before the command ends.
        with background.inline():
            return getattr(self, "do_" + action.replace("-", "_"))(**options)

    def _checkpoint(self, digest) -> ModelCheckpoint:
        found = ModelCheckpoint.objects.filter(digest=digest).first()
        if found is None:
            raise CommandError(f"no checkpoint {digest}")
        return found

    def do_publish(self, directory, model, name, run=None, workers=None, no_progress=False, **_):
        target = TrainedModel.objects.filter(code=model).first()
        if target is None:
            raise CommandError(f"no model {model!r}")
        training = None
        if run:
            training = TrainingRun.objects.filter(id=run).first() if _uuid(run) else None
            if training is None:
                raise CommandError(f"no training run {run!r}")
        total = (
            sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())
            if Path(directory).is_dir()
            else 0
        )
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        try:
            with refusals(CommandError):
                cp = checkpoints.checkpoint_publish(
                    actor=None,
                    model=target,
                    name=name,
                    directory=directory,
                    run=training,
                    workers=workers,
                    progress=bar.update,
                )
        finally:
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Published {cp.model_id} {cp.name}: {len(cp.files)} files, {cp.size} bytes, "
                f"manifest {cp.digest} at entry {cp.published_in}."
            )
        )

    def do_verify_stored(self, digest, **_):
        bad = checkpoints.verify_stored(self._checkpoint(digest))
        if bad:
            raise CommandError("; ".join(bad))
        self.stdout.write(f"OK: every stored file of {digest} matches its manifest.")

    def do_bundle(self, digest, output=None, **_):
        try:
            bundle = checkpoints.provenance_bundle(self._checkpoint(digest))
        except GovernanceError as exc:
            raise CommandError(str(exc)) from exc
        text = json.dumps(bundle, indent=2)
        if output:
            output.write_text(text)
        else:
            self.stdout.write(text)


def _uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
