"""Rebuild the projections from the entries alone, in a scratch database, and compare.

Every table that is a projection of the log (today the key registry; the domain apps
register theirs) is rebuilt by running each entry's applier, in index order, against a
freshly migrated scratch database, then compared row by row with the live table. A
difference means an applier is not a pure function of the entries, or a live table was
changed behind the services' back.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.management import call_command
from django.db import connection, connections, models

from ledger.core.envelope import parse_leaf
from ledger.log import Appended, apply
from ledger.models import Entry

ALIAS = "ledger_replay"
_projections: list[type[models.Model]] = []
_local = threading.local()


def projection(model: type[models.Model]) -> type[models.Model]:
    """Declare a model a projection of the log: replay rebuilds and compares it."""
    if model not in _projections:
        _projections.append(model)
    return model


def projections() -> list[type[models.Model]]:
    return list(_projections)


class ReplayRouter:
    """While a replay runs in this thread, every ORM query goes to the scratch database."""

    def db_for_read(self, model, **hints):
        return ALIAS if getattr(_local, "active", False) else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, **hints):
        return None


@dataclass
class ReplayReport:
    entries: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


@contextlib.contextmanager
def _scratch_database() -> Iterator[None]:
    """A migrated, empty copy of the schema under the alias ``ledger_replay``."""
    settings = dict(connection.settings_dict)
    tmpdir = None
    if connection.vendor == "postgresql":
        import psycopg

        name = f"{settings['NAME']}_replay_{uuid.uuid4().hex[:8]}"[:63]
        params = {
            "dbname": "postgres",
            "user": settings["USER"] or None,
            "password": settings["PASSWORD"] or None,
            "host": settings["HOST"] or None,
            "port": settings["PORT"] or None,
            "autocommit": True,
        }
        with psycopg.connect(**params) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        settings["NAME"] = name
    else:
        tmpdir = tempfile.mkdtemp(prefix="ledger-replay-")
        settings["NAME"] = os.path.join(tmpdir, "replay.sqlite3")
    settings["TEST"] = {}
    connections.databases[ALIAS] = settings
    try:
        call_command("migrate", database=ALIAS, verbosity=0, interactive=False)
        yield
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]
        connections.databases.pop(ALIAS, None)
        if connection.vendor == "postgresql":
            with psycopg.connect(**params) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif tmpdir:
            for f in os.listdir(tmpdir):
                os.unlink(os.path.join(tmpdir, f))
            os.rmdir(tmpdir)


def _entries(batch: int = 2000) -> Iterator[Appended]:
    after = -1
    while True:
        rows = list(
            Entry.objects.using("default").filter(index__gt=after).order_by("index")[:batch]
        )
        if not rows:
            return
        for e in rows:
            leaf = parse_leaf(bytes(e.leaf))
            env = leaf.envelope
            yield Appended(
                index=e.index,
                entry_id=env["id"],
                kind=env["kind"],
                author=env["author"],
                payload=env["payload"],
                time=env["time"],
                integrated_time=leaf.integrated_time,
                leaf_hash=bytes(e.leaf_hash),
            )
        after = rows[-1].index


def _rows(model: type[models.Model], alias: str) -> dict:
    fields = [f.attname for f in model._meta.concrete_fields]
    out = {}
    for values in model.objects.using(alias).order_by("pk").values_list(*fields):
        row = dict(zip(fields, values, strict=True))
        out[row[model._meta.pk.attname]] = {
            k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()
        }
    return out


def replay_check(progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Rebuild every projection from the entries in a scratch database and compare."""
    report = ReplayReport()
    with _scratch_database():
        for entry in _entries():
            _local.active = True
            try:
                apply(entry)
            finally:
                _local.active = False
            report.entries += 1
            if progress and report.entries % 1000 == 0:
                progress(1000)
        for model in projections():
            live, rebuilt = _rows(model, "default"), _rows(model, ALIAS)
            name = model._meta.label
            for pk in sorted(live.keys() - rebuilt.keys(), key=str)[:20]:
                report.differences.append(
                    f"{name} {pk}: in the live table, not rebuilt from the entries"
                )
            for pk in sorted(rebuilt.keys() - live.keys(), key=str)[:20]:
                report.differences.append(
                    f"{name} {pk}: rebuilt from the entries, missing from the live table"
                )
            for pk in sorted(live.keys() & rebuilt.keys(), key=str):
                diff = [k for k in live[pk] if live[pk][k] != rebuilt[pk][k]]
                if diff:
                    report.differences.append(f"{name} {pk}: {', '.join(diff)} differ")
    return report
