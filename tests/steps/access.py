"""Access steps: a download asked for and the bytes it serves."""

from __future__ import annotations

from tests.steps.api import api_as

# The bytes of the one file (model.safetensors) of the checkpoint tests/personas.py publishes.
WEIGHTS = b"weights" * 1000


def authorize(lumi, digest, who="rec_se", **body):
    """``who`` asks, through the API, to download the checkpoint ``digest``."""
    return api_as(lumi["people"][who]).post(
        f"/api/v1/checkpoints/{digest}/downloads", body, format="json"
    )


def streamed(response) -> bytes:
    """The body of a streamed answer."""
    return b"".join(response.streaming_content)
