"""Ledger steps: the public vectors, an audit export built and rewritten, writers in other
processes, and helpers that reach beneath the ledger's protections, on purpose."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from django.db import connection, transaction

from ledger import export
from ledger.core.note import sign_note, verifier_key
from ledger.keys import log_signer

ROOT = Path(__file__).resolve().parents[2]
# The public test vectors (tests/vectors/SOURCES.md names where each comes from).
VECTORS = json.loads((ROOT / "tests" / "vectors" / "public.json").read_text(encoding="utf-8"))

# The tables the database guards: append-only, never removed (the log head), or changed
# only to gain a revocation (the key registry).
APPEND_ONLY = [
    "ledger_entry",
    "ledger_treehash",
    "ledger_checkpoint",
    "ledger_sealedkey",
    "ledger_verificationrun",
    "ledger_cosignature",
    "ledger_witnessalarm",
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


def log_vkey() -> str:
    """The log key's verifier key, as an auditor is given it."""
    signer = log_signer()
    return verifier_key(signer.name, signer.public_key)


def export_bundle(tmp_path, name="bundle.zip", **kwargs) -> Path:
    """An audit export of the whole ledger (``ledger.export``), written to ``tmp_path``."""
    path = tmp_path / name
    export.build(path, export_id=name.split(".")[0], **kwargs)
    return path


def rewrite_bundle(path: Path, change, *, resign: bool = False) -> None:
    """Rewrite the zip with ``change(files) -> files``; with ``resign``, sign a fresh
    MANIFEST with the log key (a dishonest operator, who holds it)."""
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files = change(files)
    if resign:
        text = files["MANIFEST"].decode().split("\n\n")[0] + "\n"
        head = text.split("\n")[:3]
        lines = [
            f"{hashlib.sha256(d).hexdigest()} {len(d)} {n}"
            for n, d in sorted(files.items())
            if n != "MANIFEST"
        ]
        files["MANIFEST"] = sign_note(
            "\n".join(head + lines) + "\n", log_signer().note_signer()
        ).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
