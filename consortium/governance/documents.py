"""Agreement documents: the signed texts, stored here under their SHA-256 (local data, not
on the ledger, which carries only the hash, when an agreement is proposed). Who may read
one is ``selectors.readable_document``."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from consortium.governance.changes import GovernanceError
from consortium.governance.models import Document
from consortium.governance.selectors import acting_for, in_good_standing

_NAME_RE = re.compile(r"[^/\\\x00-\x1f]{1,200}")


def document_store(*, actor, name: str, content: bytes, media_type: str = "") -> Document:
    """Store an agreement document under its SHA-256 (the same bytes twice: one file).

    The secretariat and members' signatories upload documents.
    """
    scope = acting_for(actor)
    if scope is False:
        raise GovernanceError("only the secretariat or a member's signatory uploads documents", 403)
    if scope and not in_good_standing(scope):
        raise GovernanceError(f"{scope} is not a member in good standing: it cannot act", 403)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise GovernanceError("a document's name is 1-200 characters, with no / or \\")
    limit = settings.AGREEMENT_DOCUMENT_MAX_BYTES
    if not content:
        raise GovernanceError("the document is empty")
    if len(content) > limit:
        raise GovernanceError(f"the document is larger than {limit} bytes", 413)
    media_type = media_type or "application/octet-stream"
    if len(media_type) > 100 or "/" not in media_type:
        raise GovernanceError("media_type is a MIME type such as application/pdf")
    sha256 = hashlib.sha256(content).hexdigest()
    doc = Document.objects.filter(sha256=sha256).first()
    if doc is None:
        doc = Document(
            sha256=sha256, name=name, media_type=media_type, size=len(content), uploaded_by=actor
        )
        doc.file.save(sha256, ContentFile(content), save=False)
        try:
            with transaction.atomic():
                doc.save()
        except IntegrityError:
            # Uploaded concurrently by someone else: same bytes, same name on disk.
            doc = Document.objects.get(sha256=sha256)
    if scope:
        # Whoever uploads the bytes holds them already: they may read the stored copy.
        doc.holders.add(scope)
    return doc
