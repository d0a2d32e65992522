"""Test helpers that reach beneath the ledger's protections, on purpose."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from django.db import connection, transaction

ROOT = Path(__file__).resolve().parents[2]
# The tables the database guards: append-only, never removed (the log head), or changed
# only to gain a revocation (the key registry).
APPEND_ONLY = [
    "ledger_entry",
    "ledger_treehash",
    "ledger_checkpoint",
    "ledger_sealedkey",
    "ledger_verificationrun",
    "consortium_downloadevent",
]
NEVER_REMOVED = ["ledger_loghead"]
GUARDED = [*APPEND_ONLY, *NEVER_REMOVED, "ledger_key"]


@contextlib.contextmanager
def triggers_disabled():
    """Run the body with the database's guards off (as only a superuser could).

    PostgreSQL: ``session_replication_role = replica`` for the transaction switches every
    trigger off. SQLite: every trigger is dropped and recreated from its own SQL inside
    one transaction, so the body sees no guard and the guards come back as they were.
    """
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
            yield cur
        return
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        triggers = cur.fetchall()
        for name, _ in triggers:
            cur.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
        yield cur
        for _, sql in triggers:
            cur.execute(sql)


def wipe_database() -> None:
    """Empty every table (the append-only ones too), keeping the schema."""
    tables = [t for t in connection.introspection.table_names() if t != "django_migrations"]
    with triggers_disabled() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "TRUNCATE "
                + ", ".join(connection.ops.quote_name(t) for t in tables)
                + " RESTART IDENTITY CASCADE"
            )
        else:
            for t in tables:
                cur.execute(f"DELETE FROM {connection.ops.quote_name(t)}")
    # The log head is a row the migrations create; an empty log has it at size 0.
    from ledger.models import LogHead

    LogHead.objects.create(id=1, size=0, frontier=b"")


def database_url() -> str:
    """DATABASE_URL of the database the tests use, for child processes."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = f"{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{s['NAME']}"


def child_env() -> dict:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url()
    env["PYTHONPATH"] = str(ROOT)
    env.pop("CELERY_BROKER_URL", None)
    return env


def start_writer(*args: str, env: dict | None = None) -> subprocess.Popen:
    """A separate process appending entries through the Python API (tests/ledger/writer.py)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.writer", *args],
        cwd=ROOT,
        env=env or child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
