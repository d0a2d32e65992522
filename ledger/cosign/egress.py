"""Where the server may send its requests to witnesses: the guard against a registered
URL that points the server at its own network (server-side request forgery).

A witness's URL is chosen by a member's signatory; the server then POSTs every
checkpoint to it. Unless the settings allow it, an address that is not a global one is
refused: loopback, private, link-local (cloud metadata at 169.254.169.254), shared
(100.64.0.0/10), multicast, reserved, unspecified, and the IPv6 forms that carry such an
IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64).

- ``LEDGER_WITNESS_ALLOW_PRIVATE``: every address is allowed (development and tests,
  where witnesses run on 127.0.0.1);
- ``LEDGER_WITNESS_ALLOWED_NETWORKS``: networks (CIDRs) allowed even though they are
  not global, for a consortium whose witnesses sit on a private network.

At registration (:func:`check_destination`) a host written as an IP address, or a
``localhost`` name, is checked without any lookup. The real guard is at connection time
(:func:`permitted_addresses`): the host is resolved, every address checked, and the
connection is made to a checked address itself, so no second lookup can answer
otherwise (no DNS rebinding).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class EgressRefused(Exception):
    """The server will not connect there; the message says which address and why."""


def _embedded(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4, Teredo, NAT64)."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def why_refused(address: Address) -> str | None:
    """Why ``address`` is not a global address the server may reach by default, or
    ``None`` if it is one."""
    inner = _embedded(address)
    if inner is not None:
        reason = why_refused(inner)
        return f"it carries {inner}, {reason}" if reason else None
    for name in (
        "unspecified",
        "loopback",
        "link_local",
        "multicast",
        "reserved",
        "private",
        "site_local",
    ):
        if getattr(address, f"is_{name}", False):
            return name.replace("_", "-")
    if not address.is_global:
        return "not a global address"
    return None


def refusal(address: Address) -> str | None:
    """Why the settings refuse ``address``, or ``None`` if the server may connect to it."""
    if settings.LEDGER_WITNESS_ALLOW_PRIVATE:
        return None
    reason = why_refused(address)
    if reason is None:
        return None
    inner = _embedded(address)
    for network in settings.LEDGER_WITNESS_ALLOWED_NETWORKS:
        if address in network or (inner is not None and inner in network):
            return None
    return reason


def literal(host: str) -> Address | None:
    """``host`` as an IP address if it is written as one (an IPv6 zone is dropped)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def check_destination(host: str) -> None:
    """Registration's check of a URL's host: an IP address the settings refuse, a
    ``localhost`` name, or an IPv4 address not in four decimal numbers (``127.1``,
    ``0x7f000001``: the resolver reads them as addresses) is refused. Other names are
    checked each time the server connects."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        if not settings.LEDGER_WITNESS_ALLOW_PRIVATE:
            raise EgressRefused(f"{host} is the server itself (loopback)")
        return
    address = literal(host)
    if address is None:
        try:
            socket.inet_aton(host)
        except OSError:
            return
        raise EgressRefused(f"{host} is an IPv4 address: write it as four decimal numbers")
    reason = refusal(address)
    if reason:
        raise EgressRefused(f"{address} is refused ({reason}): {_HINT}")


_HINT = (
    "the server does not send requests to its own networks "
    "(LEDGER_WITNESS_ALLOWED_NETWORKS lists those a consortium's witnesses are on)"
)


def permitted_addresses(host: str, port: int) -> list[tuple]:
    """Resolve ``host`` and return the ``getaddrinfo`` results the server may connect
    to, in the resolver's order. Raises :class:`EgressRefused` naming every address and
    why when none is permitted (and ``OSError`` when the name does not resolve)."""
    found = socket.getaddrinfo(host.split("%", 1)[0], port, type=socket.SOCK_STREAM)
    permitted, refused = [], []
    for family, kind, proto, _, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        reason = refusal(address)
        if reason:
            refused.append(f"{address} ({reason})")
        else:
            permitted.append((family, kind, proto, sockaddr))
    if not permitted:
        listed = ", ".join(dict.fromkeys(refused)) or "no address"
        raise EgressRefused(f"refused to connect: {host} resolves to {listed}; {_HINT}")
    return permitted


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to a permitted address of ``host`` (the first that answers)."""
    error: OSError | None = None
    for family, kind, proto, sockaddr in permitted_addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    assert error is not None
    raise error


class PinnedConnection(http.client.HTTPConnection):
    """HTTP to the address :func:`connect` checked (the host resolved once, there); the
    Host header, and with ``tls`` the SNI and the certificate's check, are for the host
    name. The witnesses' requests and the webhooks' deliveries go through it."""

    def __init__(self, host, port, *, timeout, tls: ssl.SSLContext | None):
        super().__init__(host, port, timeout=timeout)
        self._tls = tls

    def connect(self):
        sock = connect(self.host, self.port, self.timeout)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


class PinnedTLSConnection(PinnedConnection):
    default_port = http.client.HTTPS_PORT
