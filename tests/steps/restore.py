"""Steps of the backup and restore tests: scratch PostgreSQL databases, and the project's
commands run in child processes against them (as an operator runs them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.steps.ledger import ROOT

PG = os.environ.get("RESTORE_TEST_PG", "postgres://postgres@127.0.0.1:5432/postgres")


def pg_or_skip() -> str:
    """The PostgreSQL server the tests make their scratch databases on."""
    try:
        psycopg.connect(PG, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"needs PostgreSQL at {PG} (RESTORE_TEST_PG) with its client tools ({exc})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.fail("pg_dump and pg_restore are needed (Debian: postgresql-client)")
    return PG


def _admin(sql: str) -> None:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Site:
    """One deployment's files (keys, KEK, the published checkpoint) and the scratch
    databases made for it; dropped at the end."""

    var: Path
    published: Path
    databases: list[str] = field(default_factory=list)

    def url(self, db: str) -> str:
        return PG.rsplit("/", 1)[0] + "/" + db

    def database(self, label: str) -> str:
        name = f"restore_{label}_{uuid.uuid4().hex[:8]}"
        _admin(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return name

    def env(self, db: str, **extra: str) -> dict:
        env = dict(os.environ)
        env.pop("CELERY_BROKER_URL", None)
        env.update(
            DEBUG="1",
            VAR_DIR=str(self.var),
            DATABASE_URL=self.url(db),
            LEDGER_PUBLISHED_PATH=str(self.published),
            LEDGER_TILES_WRITE="0",
            LEDGER_PUBLISH_ON_APPEND="0",
            PYTHONPATH=str(ROOT),
        )
        env.update(extra)
        return env

    def manage(self, db: str, *args: str, check: bool = True, **extra: str):
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(db, **extra),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)}: {out.returncode}\n{out.stdout}\n{out.stderr}"
            )
        return out

    def shell(self, db: str, code: str, *, check: bool = True, **extra: str):
        return self.manage(db, "shell", "-v0", "-c", code, check=check, **extra)

    def count(self, db: str) -> int:
        with psycopg.connect(self.url(db)) as conn:
            return conn.execute("SELECT COUNT(*) FROM ledger_entry").fetchone()[0]

    def drop(self) -> None:
        for name in self.databases:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def grow_code(tag: str, n: int) -> str:
    """Python for ``manage.py shell -c``: a service key registered (a projection the
    replay rebuilds) and ``n`` entries it signs."""
    return (
        "from ledger import services\n"
        "from ledger.services import log_signer\n"
        f"_, s = services.key_register(signer=log_signer(), kind='service', owner='{tag}', name='{tag}')\n"
        f"services.entries_append(signer=s, drafts=[services.Draft('test.sample', {{'n': i, 'tag': '{tag}'}}) for i in range({n})])\n"
    )


def export_code(path: Path) -> str:
    """Python for ``manage.py shell -c``: an audit export of the whole log to ``path``."""
    return f"from ledger import export\nexport.build({str(path)!r}, export_id={path.stem!r})\n"
