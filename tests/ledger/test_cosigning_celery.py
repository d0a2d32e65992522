"""Cosignatures collected by a real Celery worker on the real Redis broker: a writer
process appends, the worker publishes the checkpoint and then, as a task of its own,
sends it to the member's witness (a real process) and keeps its cosignature. Nothing is
mocked (the fixtures ``broker`` and ``worker`` are tests/conftest.py's)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from consortium.governance.witnesses import witness_register
from ledger import services
from ledger.keys import log_signer
from ledger.models import Checkpoint, Cosignature, Key, WitnessContact
from tests.personas import found_delegates
from tests.steps.ledger import log_vkey, start_writer
from tests.steps.witness import keygen, start_witness, stop

pytestmark = pytest.mark.slow


def test_a_real_worker_publishes_and_collects_the_cosignature(worker, tmp_path):
    delegates = found_delegates()  # this process has no broker: it publishes in-process
    key, vkey = keygen(tmp_path, name="witness.fr.example")
    proc, addr = start_witness(tmp_path, key, [f"{log_signer().name} {log_vkey()}"])
    try:
        witness_register(
            actor=delegates["fr"], member="FR", url=f"http://{addr[0]}:{addr[1]}", vkey=vkey
        )
        before = services.tree_size()
        secretariat = Key.objects.get(kind="service", owner="secretariat")
        # The writer has the broker: only the worker publishes what it appends.
        writer = start_writer("--key", secretariat.fingerprint, "--count", "3", env=worker)
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        size = before + 3
        deadline = time.monotonic() + 45
        cosigned = False
        while time.monotonic() < deadline and not cosigned:
            connection.close()
            cosigned = Cosignature.objects.filter(
                checkpoint__tree_size=size, witness="witness.fr.example"
            ).exists()
            time.sleep(0.5)
        assert Checkpoint.objects.filter(tree_size=size).exists(), "no checkpoint published"
        assert cosigned, "the worker did not collect the cosignature"
        assert WitnessContact.objects.get(witness="witness.fr.example").last_size == size
    finally:
        stop(proc)
