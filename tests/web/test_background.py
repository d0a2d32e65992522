"""Long work off the request without a broker: an auditor asks for an audit export in the
admin, the page comes back at once, and a worker thread of the process builds the export
while the page's progress bar follows it (consortium.web.background).

The thread has its own database connection: the tests commit (``committed_db``) so that
it sees what they wrote, and they poll the export's row as the page's script does.
"""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest
from django.db import transaction

from consortium.audit.models import AuditExport
from consortium.web import background
from ledger import services
from ledger.services import Draft, Entry, key_register, log_signer
from tests.personas import found_lumi
from tests.steps.signin import sign_in

pytestmark = pytest.mark.slow

ENTRIES = 3000


@pytest.fixture
def threads(settings, committed_db):
    """No broker, and long work on this process's worker threads (the demo's setup)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.BACKGROUND_THREADS = True
    yield
    background.wait()  # nothing is left running into the next test's database


@pytest.fixture
def auditor(threads):
    """LUMI's consortium with a log long enough for its export to take a while; its
    auditor, signed in to the admin."""
    people = found_lumi()["people"]
    _, signer = key_register(signer=log_signer(), kind="service", owner="bulk", name="bulk")
    with transaction.atomic(durable=True):
        services.entries_append(
            signer=signer, drafts=[Draft("demo.note", {"n": n}) for n in range(ENTRIES)]
        )
    return people["aud"]


def _follow(client, url, *, timeout=120.0):
    """Poll the progress view as the page does until the work ends; every answer."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(url).json()
        seen.append(state)
        if state["status"] in ("done", "failed"):
            return seen
        time.sleep(0.01)
    pytest.fail(f"the export did not finish in {timeout} s: {seen[-1]}")


def test_the_request_returns_before_the_export_is_built(client, auditor):
    sign_in(client, auditor)
    asked = time.monotonic()
    r = client.post("/admin/consortium/auditexport/ask/", {"member": ""})
    answered = time.monotonic() - asked
    assert r.status_code == 302
    export = AuditExport.objects.get()
    # Right after the answer the export is still being built, in the background.
    assert export.status in ("queued", "running"), export.status
    page = client.get(r["Location"]).content.decode()
    progress_url = f"/admin/consortium/auditexport/{export.pk}/progress/"
    assert f'data-progress-url="{progress_url}"' in page
    assert "<progress " in page and "consortium/progress.js" in page
    assert 'http-equiv="refresh"' not in page and "<script>" not in page

    seen = _follow(client, progress_url)
    done = seen[-1]
    assert done["status"] == "done", done
    assert done["percent"] == 100 and done["file"].endswith(f"/{export.pk}/file/")
    # The bar moved through real values on the way, never backwards.
    percents = [s["percent"] for s in seen]
    assert percents == sorted(percents)
    assert percents[0] < 100 and any(0 < p < 100 for p in percents), percents
    entries_done = [s["done"] for s in seen if s["total"]]
    assert entries_done == sorted(entries_done) and max(entries_done) == done["total"]
    # The request did not wait for the build.
    export.refresh_from_db()
    assert answered < (export.finished_at - export.created_at).total_seconds()
    assert Entry.objects.filter(kind="audit.exported").count() == 1
    finished = client.get(f"/admin/consortium/auditexport/{export.pk}/change/").content.decode()
    assert (
        "consortium/progress.js" not in finished and f"audit-{str(export.pk)[:8]}.zip" in finished
    )
    got = client.get(done["file"])
    assert got.status_code == 200 and b"".join(got.streaming_content).startswith(b"PK")


def test_a_failed_build_is_shown_on_the_page(client, auditor, settings, tmp_path):
    # The bundle cannot be stored: the media directory is under a file.
    (tmp_path / "a-file").write_text("")
    settings.MEDIA_ROOT = str(tmp_path / "a-file" / "media")
    sign_in(client, auditor)
    r = client.post("/admin/consortium/auditexport/ask/", {"member": ""})
    export = AuditExport.objects.get()
    failed = _follow(client, f"/admin/consortium/auditexport/{export.pk}/progress/")[-1]
    assert failed["status"] == "failed" and failed["error"] and failed["file"] is None
    page = client.get(r["Location"]).content.decode()
    assert failed["error"][:20] in page
    assert not Entry.objects.filter(kind="audit.exported").exists()


def test_a_delegate_does_not_follow_another_members_export(client, auditor):
    sign_in(client, auditor)
    client.post("/admin/consortium/auditexport/ask/", {"member": "SE"})
    export = AuditExport.objects.get()
    from django.contrib.auth import get_user_model

    sign_in(client, get_user_model().objects.get(username="rec_fi"))
    assert client.get(f"/admin/consortium/auditexport/{export.pk}/progress/").status_code == 404


def test_a_checkpoints_re_verification_runs_on_the_worker_thread(threads, tmp_path):
    """The secretariat publishes a checkpoint; its stored file is then changed on disk.
    The re-verification handed to the background blocks it, after ``later`` returned."""
    from django.core.files.storage import default_storage

    from consortium.access import checkpoints
    from consortium.access.models import ModelCheckpoint
    from consortium.access.tasks import verify_checkpoints
    from tests.personas import found_delegates
    from tests.steps.governance import propose

    delegates = found_delegates()
    weights = tmp_path / "step-1"
    weights.mkdir()
    (weights / "config.json").write_text('{"layers": 48}')
    model = checkpoints.model_register(
        actor=delegates["ops"], code="aurora", name="Aurora", agreement=propose(delegates)
    )
    cp = checkpoints.checkpoint_publish(
        actor=delegates["ops"], model=model, name="step-1", directory=weights, workers=1
    )
    background.wait()  # the verification its publication asked for (files intact)
    assert ModelCheckpoint.objects.get(digest=cp.digest).state == "published"
    with default_storage.open(checkpoints.stored_path(cp.digest, "config.json"), "wb") as f:
        f.write(b"{}")
    job = background.later(verify_checkpoints, cp.digest)
    assert isinstance(job, Future)  # handed over to the thread, not run here
    job.result(timeout=60)
    blocked = ModelCheckpoint.objects.get(digest=cp.digest)
    assert blocked.state == "blocked" and blocked.blocked_in is not None
    assert Entry.objects.filter(kind="checkpoint.blocked").count() == 1
