"""The webhooks' message: an entry as a CloudEvents 1.0 event in structured JSON mode,
signed by the log key under the Standard Webhooks convention (v1.0.0, the asymmetric
``v1a`` scheme: Ed25519). See docs/events.md for the mapping and how to verify."""

from __future__ import annotations

import base64
import json

from django.conf import settings

from ledger.events.feed import entry_json
from ledger.keys import log_origin, log_signer

SPECVERSION = "1.0"
TYPE_PREFIX = "org.consortium.ledger."


def event_id(index: int) -> str:
    """The CloudEvent's id: the log's origin and the index (unique across logs)."""
    return f"{log_origin()}/{index}"


def webhook_id(index: int) -> str:
    """The ``webhook-id``, the same for every attempt at the same event. Standard Webhooks
    wants no full stop in it (it delimits the signed content): the origin, a host name,
    has some, so it is left to the body's CloudEvent id."""
    return f"entry_{index}"


def cloud_event(entry) -> dict:
    """The entry as a CloudEvent; ``data`` is the entry as the entries API renders it."""
    return {
        "specversion": SPECVERSION,
        "id": event_id(entry.index),
        "source": f"{settings.SITE_URL}/api/v1/ledger",
        "type": TYPE_PREFIX + entry.kind,
        "subject": f"entries/{entry.index}",
        "time": entry.integrated_time,
        "datacontenttype": "application/json",
        "data": json.loads(entry_json(entry)),
    }


def body(entry) -> bytes:
    return json.dumps(cloud_event(entry), separators=(",", ":"), ensure_ascii=False).encode()


def signed_content(msg_id: str, timestamp: int, payload: bytes) -> bytes:
    """What Standard Webhooks signs: ``{id}.{timestamp}.{body}``."""
    return f"{msg_id}.{timestamp}.".encode() + payload


def headers(msg_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """The request's headers: the id, the time it was signed (Unix seconds) and the log
    key's Ed25519 signature (``v1a,<base64>``)."""
    signature = log_signer().signing_key.sign(signed_content(msg_id, timestamp, payload))
    return {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1a," + base64.b64encode(signature.signature).decode(),
    }
