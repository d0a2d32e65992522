"""An audit export built by a real Celery worker on the real Redis broker.

A separate process asks for the export with the broker configured (its commit queues
``consortium.audit_export``); a worker process builds it; the test follows the progress on
the export's row, as the admin and the API do, and verifies the finished bundle offline.
Nothing is mocked.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from consortium.audit.models import AuditExport
from ledger.services import Entry
from tests.personas import found_lumi
from tests.steps.audit import audit_result
from tests.steps.ledger import ROOT, child_env

pytestmark = pytest.mark.slow

ASK = """
import django
django.setup()
from consortium.audit import exports as audit
print(audit.audit_export_request(actor=None).id)
"""


def test_a_real_worker_builds_an_export(worker, tmp_path):
    found_lumi()
    asked = subprocess.run(
        [sys.executable, "-c", ASK],
        cwd=ROOT,
        env=worker,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert asked.returncode == 0, asked.stderr
    export_id = asked.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 120
    export = AuditExport.objects.get(id=export_id)
    while export.status not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        export.refresh_from_db()
    assert export.status == "done", (export.status, export.error)
    assert export.recorded_in == Entry.objects.get(kind="audit.exported").index
    path = tmp_path / "export.zip"
    with export.file.open("rb") as f:
        path.write_bytes(f.read())
    result = audit_result(path)
    assert result.ok, result.failures


ASK_AND_SHOW = """
import django
django.setup()
from consortium.audit import exports as audit
from consortium.audit.models import AuditExport
export = audit.audit_export_request(actor=None)
export.refresh_from_db()
print(export.status, "|", export.error)
"""


def test_an_unreachable_broker_fails_the_export_with_a_reason(committed_db):
    found_lumi()
    env = {**child_env(), "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}  # nothing listens
    done = subprocess.run(
        [sys.executable, "-c", ASK_AND_SHOW],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status, error = done.stdout.strip().splitlines()[-1].split(" | ", 1)
    assert status == "failed" and "task queue could not be reached" in error
    assert AuditExport.objects.get().status == "failed"
