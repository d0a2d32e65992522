#!/usr/bin/env python
"""Admin pages benchmark: the server time of the pages a delegate uses, on a large log.

    python bench/admin_pages_bench.py [--quick] [--entries 100000] [--runs 20]
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Loads the demo (``manage.py demo``) with 100,000 sample entries on the ledger (--quick:
5,000) into a scratch database: SQLite in a temporary directory by default, or the
database bench_admin_pages made (and afterwards dropped) on the PostgreSQL server named
by --database-url (or DATABASE_URL). A signatory of the Netherlands is signed in on
Django's test Client, in-process, as after a second factor; each page is asked for
twice to warm up, then --runs times. For each page it prints the median and p90 server
time, the number of SQL queries one request makes, and the ratio to the baseline: a
trivial Django view (one HttpResponse) through the same middleware in the same run.

Pages: the index (dashboard), the agreements list and the treaty's page, the proposals
list and a proposal's page, the contributions list, the ledger's entries list and its
latest entry's page, the checkpoints list, and the treaty's cost-share report.
Target: median under 300 ms for each.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCRATCH = "bench_admin_pages"
TARGET_MS = 300.0
DELEGATE = "delegate-nl"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def say(text: str = "") -> None:
    print(text, flush=True)


def setup_env(url: str, var: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["VAR_DIR"] = var  # the demo's files (password, media, tiles), removed after
    os.environ["MEDIA_ROOT"] = str(Path(var) / "media")
    os.environ["TILES_ROOT"] = str(Path(var) / "tlog")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LEDGER_KEK", secrets.token_bytes(32).hex())
    os.environ["LEDGER_PUBLISH_ON_APPEND"] = "0"
    os.environ["LEDGER_WITNESS_FAIL_OPEN"] = "1"
    os.environ["DEBUG"] = "0"
    # The test Client speaks plain HTTP, as a server behind a TLS proxy hears it.
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def scratch_url(server_url: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + SCRATCH


def _admin_connection(url: str):
    import psycopg

    return psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)


def recreate_database(url: str) -> None:
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH}"')


def drop_database(url: str) -> None:
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


def baseline_urls() -> str:
    """A URLconf with the project's URLs and a trivial view, the baseline."""
    from django.http import HttpResponse
    from django.urls import include, path

    module = types.ModuleType("admin_pages_bench_urls")
    module.urlpatterns = [
        path("bench/trivial/", lambda request: HttpResponse("ok")),
        path("", include("consortium.urls")),
    ]
    sys.modules[module.__name__] = module
    return module.__name__


def load(entries: int) -> None:
    """The demo, with ``entries`` sample entries on the ledger."""
    import io

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("demo", entries=entries, json=True, stdout=io.StringIO())
    say(f"demo loaded with {entries:,} sample entries in {time.perf_counter() - started:.1f} s")


def pages() -> list[tuple[str, str]]:
    from consortium.governance.models import Agreement, Proposal
    from ledger.models import Entry

    treaty = Agreement.objects.filter(kind="treaty").order_by("proposed_in").first()
    proposal = Proposal.objects.order_by("-opened_in").first()
    last = Entry.objects.order_by("-index").values_list("index", flat=True).first()
    return [
        ("index (dashboard)", "/admin/"),
        ("agreements list", "/admin/consortium/agreement/"),
        ("the treaty's page", f"/admin/consortium/agreement/{treaty.pk}/change/"),
        ("proposals list", "/admin/consortium/proposal/"),
        ("a proposal's page", f"/admin/consortium/proposal/{proposal.pk}/change/"),
        ("contributions list", "/admin/contributions/contribution/"),
        ("ledger entries list", "/admin/ledger/entry/"),
        ("an entry's page", f"/admin/ledger/entry/{last}/change/"),
        ("checkpoints list", "/admin/ledger/checkpoint/"),
        ("cost-share report", f"/admin/consortium/agreement/{treaty.pk}/cost-shares/"),
    ]


def signed_in_client():
    """A signatory of the Netherlands, signed in as after its second factor (the demo's
    authenticator app, recorded in the session as ``django_otp.login`` does) recently
    enough for a step-up: the session tests/steps/signin.py sets."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from consortium.web import stepup

    user = get_user_model().objects.get(username=DELEGATE)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session[stepup.SESSION_KEY] = int(time.time())
    session.save()
    return client


def measure(client, url: str, runs: int) -> tuple[list[float], int]:
    """Server times of ``runs`` requests (after two to warm up) and the queries of one."""
    from django.db import connection

    for _ in range(2):
        r = client.get(url)
        if r.status_code != 200:
            raise SystemExit(f"{url}: HTTP {r.status_code}")
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    return times, len(queries)


def run(entries: int, runs: int) -> dict:
    from django.conf import settings

    load(entries)
    settings.ROOT_URLCONF = baseline_urls()
    settings.ALLOWED_HOSTS = ["testserver"]
    client = signed_in_client()
    base, base_queries = measure(client, "/bench/trivial/", runs)
    base_median = statistics.median(base)
    say(
        f"\nbaseline, a trivial view: median {base_median * 1000:.2f} ms, "
        f"p90 {pct(base, 0.9) * 1000:.2f} ms, {base_queries} queries\n"
    )
    say(f"{'page':<22} {'median':>9} {'p90':>9} {'queries':>8} {'x baseline':>11}  target")
    results = {"baseline_ms": base_median * 1000, "pages": {}}
    for name, url in pages():
        times, queries = measure(client, url, runs)
        median, p90 = statistics.median(times) * 1000, pct(times, 0.9) * 1000
        ok = median < TARGET_MS
        say(
            f"{name:<22} {median:7.1f}ms {p90:7.1f}ms {queries:>8} {median / (base_median * 1000):>10.0f}x"
            f"  {'ok' if ok else 'MISSED'} (< {TARGET_MS:.0f} ms)"
        )
        results["pages"][name] = {
            "url": url,
            "median_ms": round(median, 2),
            "p90_ms": round(p90, 2),
            "queries": queries,
            "ok": ok,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help=f"A PostgreSQL server (the scratch database {SCRATCH} is made on it); "
        "default: DATABASE_URL, else SQLite in a temporary directory.",
    )
    parser.add_argument("--entries", type=int, help="Sample entries (default 100000).")
    parser.add_argument("--runs", type=int, help="Requests per page (default 20).")
    parser.add_argument(
        "--quick", action="store_true", help="5,000 entries, 5 requests a page: a smoke test."
    )
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-admin-pages.json")
    args = parser.parse_args()
    entries = args.entries or (5_000 if args.quick else 100_000)
    runs = args.runs or (5 if args.quick else 20)
    var = tempfile.mkdtemp(prefix="bench-admin-")
    postgres = args.database_url.startswith(("postgres://", "postgresql://"))
    url = scratch_url(args.database_url) if postgres else f"sqlite:///{var}/bench.sqlite3"
    setup_env(url, var)
    if postgres:
        recreate_database(url)
    engine = "PostgreSQL" if postgres else "SQLite"
    say(f"admin pages benchmark on {engine}, {entries:,} sample entries, {runs} requests a page")
    try:
        import django

        django.setup()
        from consortium.web import background

        with background.inline():
            results = run(entries, runs)
    finally:
        from django.db import connections

        connections.close_all()
        if postgres:
            drop_database(url)
        shutil.rmtree(var, ignore_errors=True)
    results.update(engine=engine, entries=entries, runs=runs)
    missed = [name for name, page in results["pages"].items() if not page["ok"]]
    if missed:
        say(f"\nmissed the target ({TARGET_MS:.0f} ms): {', '.join(missed)}")
    else:
        say(f"\nevery page under {TARGET_MS:.0f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
