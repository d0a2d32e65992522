"""The client's address, as the lockout and the bearer-token throttle key on it."""

from __future__ import annotations

from django.conf import settings


def client_address(request) -> str | None:
    """REMOTE_ADDR, unless ``TRUSTED_PROXY_COUNT`` reverse proxies stand in front of the
    server. Each of those appends the address it saw to X-Forwarded-For, so the client's
    is that many entries from the end; whatever comes before was written by the client
    and is never read (a forged header cannot change the key). A header shorter than the
    count did not come through the proxies: REMOTE_ADDR then."""
    remote = request.META.get("REMOTE_ADDR")
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    if len(hops) < count:
        return remote
    return hops[-count]
