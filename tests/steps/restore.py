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


def _admin(sql: str, server: str = PG) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Site:
    """One deployment's files (keys, KEK, the published checkpoint) and the scratch
    databases made for it; dropped at the end."""

    var: Path
    published: Path
    server: str = PG  # the maintenance database's URL on the server used
    databases: list[str] = field(default_factory=list)

    def url(self, db: str) -> str:
        return self.server.rsplit("/", 1)[0] + "/" + db

    def database(self, label: str) -> str:
        name = f"restore_{label}_{uuid.uuid4().hex[:8]}"
        _admin(f'CREATE DATABASE "{name}"', self.server)
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
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', self.server)


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


PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DRILL = ROOT / "scripts" / "restore-drill.sh"


def as_postgres(*args: str) -> list[str]:
    """PostgreSQL refuses to run as root: its programs run as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A scratch PostgreSQL cluster of our own (initdb), archiving its WAL."""

    home: Path
    port: int

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def server(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def sql(self, db: str, statement: str):
        with psycopg.connect(
            f"postgres://postgres@127.0.0.1:{self.port}/{db}", autocommit=True
        ) as c:
            return c.execute(statement).fetchall()

    def switch_wal(self) -> None:
        """Close the current WAL segment and wait until archive_command has copied it."""
        (segment,) = self.sql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")[0]
        for _ in range(300):
            if (self.archive / segment).exists():
                return
            import time

            time.sleep(0.1)
        raise AssertionError(f"WAL segment {segment} was not archived")

    def stop(self) -> None:
        subprocess.run(
            as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            ),
            capture_output=True,
        )
        shutil.rmtree(self.home, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb a cluster in a directory the postgres user owns, archiving to ``archive``."""
    import tempfile

    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"{PG_BIN}/initdb is needed (Debian: postgresql-15)")
    home = Path(tempfile.mkdtemp(prefix="restore-test-", dir="/tmp"))
    cluster = Cluster(home, free_port())
    cluster.archive.mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        shutil.chown(cluster.archive, "postgres", "postgres")
    subprocess.run(
        as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(cluster.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ),
        check=True,
        capture_output=True,
    )
    settings = [
        f"port = {cluster.port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{home}'",
        "wal_level = replica",
        "archive_mode = on",
        f"archive_command = 'cp %p {cluster.archive}/%f'",
        "fsync = off",
    ]
    with open(cluster.data / "postgresql.auto.conf", "a") as f:
        f.write("\n".join(settings) + "\n")
    subprocess.run(
        as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(home / "log"), "-w", "start"
        ),
        check=True,
        capture_output=True,
    )
    return cluster
