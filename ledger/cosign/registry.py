"""The witnesses and the policy, as the entries say: what the domain's appliers write
(through ``ledger.services``), and the checks of a witness's description that the
services, the submission handlers and the appliers all run.

A witness is known by its cosignature key's name. Its keys are cosignature keys
(C2SP tlog-cosignature: Ed25519 ``cosignature/v1``, type 0x04, and optionally
ML-DSA-44, type 0x06), not entry-signing keys: they are kept as verifier key strings
and never enter the key registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ledger.core.note import NoteError
from ledger.cosign import egress
from ledger.cosign.models import Witness, WitnessPolicy
from ledger.errors import LedgerError
from ledger.replay import projection
from ledger.witness.cosignature import parse_cosignature_vkey

MAX_URL = 500
MAX_POLICY = 16 * 1024
WITNESS_FIELDS = {"member", "url", "vkey", "mldsa_vkey"}

projection(Witness)
projection(WitnessPolicy)


class WitnessError(LedgerError):
    """A witness description or a policy text that cannot be used."""


@dataclass(frozen=True)
class WitnessSpec:
    """A checked witness description."""

    name: str
    member: str
    url: str
    vkey: str
    mldsa_vkey: str


def check_witness(payload) -> WitnessSpec:
    """Check a ``witness.registered`` payload: ``{member, url, vkey, mldsa_vkey}``
    (``mldsa_vkey`` a string or null). The witness's name is its Ed25519 key's name."""
    if not isinstance(payload, dict) or set(payload) != WITNESS_FIELDS:
        raise WitnessError("witness.registered payload is {member, url, vkey, mldsa_vkey}")
    member, url, vkey, pq = (payload[k] for k in ("member", "url", "vkey", "mldsa_vkey"))
    if not isinstance(member, str) or not member:
        raise WitnessError("member is the code of the member that runs the witness")
    check_url(url)
    if not isinstance(vkey, str) or len(vkey) > 200 or vkey != vkey.strip():
        raise WitnessError("vkey is the witness's Ed25519 cosignature verifier key")
    try:
        verifier = parse_cosignature_vkey(vkey)
    except NoteError as exc:
        raise WitnessError(f"vkey: {exc}") from exc
    if pq is not None:
        check_mldsa_vkey(pq)
    return WitnessSpec(verifier.name, member, url, vkey, pq or "")


def check_url(url) -> None:
    """An http(s) URL without query or fragment: the prefix ``/add-checkpoint`` follows."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL:
        raise WitnessError(f"url is the witness's submission prefix, at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise WitnessError(f"url: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WitnessError("url is an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise WitnessError("url: no user information (user:password@): the URL is public")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        raise WitnessError(f"url: not a valid port ({exc})") from exc
    if parts.query or parts.fragment or url.endswith("/") or any(c.isspace() for c in url):
        raise WitnessError(
            "url is the submission prefix: no query, fragment, spaces or trailing slash "
            "(/add-checkpoint is added to it)"
        )


def check_destination(url: str) -> None:
    """Registration's check of where ``url`` would send the server's requests (the
    settings' networks, :mod:`ledger.cosign.egress`): an IP address the server does not
    reach, or a ``localhost`` name, is refused. Run when a registration is made, not when
    an entry is replayed (the settings are this server's, the record is everyone's);
    names are checked again at each connection."""
    try:
        egress.check_destination(urlsplit(url).hostname)
    except egress.EgressRefused as exc:
        raise WitnessError(f"url: {exc}") from exc


def check_mldsa_vkey(vkey) -> None:
    if not isinstance(vkey, str) or len(vkey) > 2000 or vkey != vkey.strip():
        raise WitnessError("mldsa_vkey is an ML-DSA-44 verifier key, or null")
    # The key's shape is read here without the cryptography package: type 0x06, 1312
    # bytes, and the key id of its name and key.
    from ledger.witness.mldsa import parse_mldsa_vkey

    try:
        parse_mldsa_vkey(vkey)
    except NoteError as exc:
        raise WitnessError(f"mldsa_vkey: {exc}") from exc


def witness_record(*, payload: dict, index: int) -> Witness | None:
    """Write the witness a ``witness.registered`` entry at ``index`` registers. A name
    taken by another witness, retired or not, or a payload that does not check, leaves
    the entry without effect (``None``)."""
    try:
        spec = check_witness(payload)
    except WitnessError:
        return None
    if Witness.objects.filter(name=spec.name).exists():
        return None
    return Witness.objects.create(
        name=spec.name,
        member=spec.member,
        url=spec.url,
        vkey=spec.vkey,
        mldsa_vkey=spec.mldsa_vkey,
        registered_in=index,
    )


def witness_retire_record(*, name: str, index: int) -> bool:
    """Retire the witness ``name`` at ``index`` (no effect if it is unknown or retired)."""
    return bool(Witness.objects.filter(name=name, retired_in__isnull=True).update(retired_in=index))


def check_policy_text(text) -> str:
    """A tlog-policy text as a proposal may carry it: parsed by ``ledger.core.policy``."""
    if not isinstance(text, str) or not 0 < len(text.encode()) <= MAX_POLICY:
        raise WitnessError(f"the policy is a tlog-policy text of at most {MAX_POLICY} bytes")
    from ledger.core.policy import parse_policy

    try:
        parse_policy(text)
    except (ValueError, NoteError) as exc:
        raise WitnessError(f"the policy does not parse: {exc}") from exc
    return text


def witness_policy_record(*, text: str, index: int) -> WitnessPolicy:
    """Record the policy an accepted proposal adopts at ``index``."""
    return WitnessPolicy.objects.create(adopted_in=index, text=text)


def witness_policy_text() -> str | None:
    """The policy in force: the latest adopted, or ``None``."""
    latest = WitnessPolicy.objects.order_by("-adopted_in").first()
    return latest.text if latest else None
