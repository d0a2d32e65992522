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
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.management import call_command
from django.db import connection, connections, models

from ledger.core.envelope import EnvelopeError, parse_leaf
from ledger.log import Appended, apply
from ledger.models import Entry

_projections: list[type[models.Model]] = []
_local = threading.local()


def projection(model: type[models.Model]) -> type[models.Model]:
    """Declare a model a projection of the log: replay rebuilds and compares it."""
    if model not in _projections:
        _projections.append(model)
    return model


def projections() -> list[type[models.Model]]:
    return list(_projections)


def replaying() -> bool:
    """Whether a replay runs in this thread: appliers then rebuild tables, and nothing
    outside them (an e-mail, say) may happen again."""
    return getattr(_local, "alias", None) is not None


class ReplayRouter:
    """While a replay runs in this thread, every ORM query goes to its scratch database."""

    def db_for_read(self, model, **hints):
        return getattr(_local, "alias", None)

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, **hints):
        return None


@dataclass
class ReplayReport:
    entries: int = 0
    differences: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.differences


def _admin_params(settings: dict) -> dict:
    options = {
        k: v
        for k, v in (settings.get("OPTIONS") or {}).items()
        if k in {"sslmode", "sslrootcert", "sslcert", "sslkey", "passfile", "service"}
    }
    return {
        "dbname": "postgres",
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "autocommit": True,
        **options,
    }


@contextlib.contextmanager
def _scratch_database() -> Iterator[str]:
    """A migrated, empty copy of the schema, under an alias of its own."""
    alias = f"ledger_replay_{uuid.uuid4().hex[:8]}"
    settings = dict(connection.settings_dict)
    tmpdir = name = None
    if connection.vendor == "postgresql":
        import psycopg

        name = f"{settings['NAME'][:40]}_replay_{alias[-8:]}"
        with psycopg.connect(**_admin_params(settings)) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        settings["NAME"] = name
    else:
        tmpdir = tempfile.mkdtemp(prefix="ledger-replay-")
        settings["NAME"] = os.path.join(tmpdir, "replay.sqlite3")
    settings["TEST"] = {}
    connections.databases[alias] = settings
    try:
        call_command("migrate", database=alias, verbosity=0, interactive=False)
        # The registry guard checks revocations against entries, which the scratch
        # database does not hold: it has nothing to guard there.
        from ledger.migrations import _triggers

        with connections[alias].cursor() as cur:
            for sql in _triggers.key_remove_sql(connections[alias].vendor):
                cur.execute(sql)
        yield alias
    finally:
        try:
            connections[alias].close()
        finally:
            del connections[alias]
            connections.databases.pop(alias, None)
            if name is not None:
                with psycopg.connect(**_admin_params(connection.settings_dict)) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            elif tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)


def _no_live_writes(execute, sql, params, many, context):
    """While replaying, an applier writing to the live database is a bug: refuse it."""
    if getattr(_local, "alias", None) and sql.lstrip()[:6].upper() in {
        "INSERT",
        "UPDATE",
        "DELETE",
    }:
        raise RuntimeError(
            "an applier wrote to the live database during replay; appliers must use the ORM"
        )
    return execute(sql, params, many, context)


def _entries(top: int, report: ReplayReport, batch: int = 2000) -> Iterator[Appended]:
    after = -1
    while True:
        rows = list(
            Entry.objects.using("default")
            .filter(index__gt=after, index__lte=top)
            .order_by("index")[:batch]
        )
        if not rows:
            return
        for e in rows:
            try:
                leaf = parse_leaf(bytes(e.leaf))
            except EnvelopeError as exc:
                report.differences.append(
                    f"entry {e.index} cannot be read: {exc} (run ledger verify)"
                )
                continue
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
    """Rows by primary key. Projections key their rows by natural keys (fingerprints,
    codes), which replay reproduces; an auto-increment key would not compare."""
    fields = [f.attname for f in model._meta.concrete_fields]
    out = {}
    for values in model.objects.using(alias).order_by("pk").values_list(*fields):
        row = dict(zip(fields, values, strict=True))
        out[row[model._meta.pk.attname]] = {
            k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()
        }
    return out


def replay_check(progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Rebuild every projection from the entries in a scratch database and compare.

    The log as it stood when the replay began is replayed; if it grew meanwhile, the
    live tables have moved on and are not compared (run it again).
    """
    report = ReplayReport()
    top = Entry.objects.using("default").order_by("-index").values_list("index", flat=True).first()
    top = -1 if top is None else top
    with _scratch_database() as alias, connections["default"].execute_wrapper(_no_live_writes):
        for entry in _entries(top, report):
            _local.alias = alias
            try:
                apply(entry)
            finally:
                _local.alias = None
            report.entries += 1
            if progress and report.entries % 1000 == 0:
                progress(1000)
        grown = Entry.objects.using("default").filter(index__gt=top).exists()
        if grown:
            report.skipped = "the log grew during the replay; run it again to compare"
            return report
        for model in projections():
            live, rebuilt = _rows(model, "default"), _rows(model, alias)
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
