"""Audit steps: downloads to export, an export verified offline, and one forged by a
dishonest operator who holds the log key."""

from __future__ import annotations

import hashlib
import io
import zipfile

from consortium.audit import figures as verifier
from ledger.audit import verify
from ledger.core.note import sign_note
from ledger.services import log_signer
from tests.steps.access import authorize
from tests.steps.ledger import log_vkey


def make_downloads(lumi, checkpoint):
    """Sweden is authorised twice; Finland is refused (behind its share)."""
    for _ in range(2):
        assert authorize(lumi, checkpoint.digest).status_code == 201
    assert authorize(lumi, checkpoint.digest, who="rec_fi").status_code == 403
    return checkpoint


def audit_result(path):
    """The offline verifier's result on the export at ``path``, figures included."""
    return verify(path, log_vkey(), extensions=verifier.extensions(), workers=0)


def forge(original: bytes, change, path, extra_manifest_lines=()):
    """Change the bundle's files and sign a fresh MANIFEST over them with the log key."""
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files = change(files)
    head = files["MANIFEST"].decode().split("\n")[:3]
    body = [
        f"{hashlib.sha256(d).hexdigest()} {len(d)} {n}"
        for n, d in sorted(files.items())
        if n != "MANIFEST"
    ]
    files["MANIFEST"] = sign_note(
        "\n".join(head + body + list(extra_manifest_lines)) + "\n", log_signer().note_signer()
    ).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    return path
