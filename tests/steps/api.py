"""Calling the REST API as a persona, with a bearer token as a partner system would."""

from __future__ import annotations

from rest_framework.test import APIClient

from consortium.governance.models import ApiToken


def api_as(user, *, raise_request_exception: bool = True) -> APIClient:
    """A client holding a fresh one-day token of ``user``. With
    ``raise_request_exception=False`` it answers as a server with DEBUG off would: a view's
    exception is a response (500), not raised into the test."""
    _, token = ApiToken.issue(user=user, days=1)
    c = APIClient(raise_request_exception=raise_request_exception)
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return c
