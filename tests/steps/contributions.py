"""Contribution steps in the LUMI world: a SLURM export, a dataset, treaties in force,
contributions delivered, and entries a member signs with its own key."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

from consortium.governance import agreements
from consortium.governance.documents import document_store
from contributions.compute import sacct_import
from contributions.data import data_contribute
from contributions.funds import funds_confirm, funds_contribute
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.keys import log_origin
from tests.steps.api import api_as

TODAY = datetime.now(UTC).date()
EXPORT_FIELDS = "JobID|JobIDRaw|Cluster|Partition|Account|State|Submit|Start|End|Elapsed|AllocTRES"


def export(*rows: str, header: str = EXPORT_FIELDS) -> bytes:
    """A ``sacct --parsable2`` export of ``rows``."""
    return ("\n".join([header, *rows]) + "\n").encode()


# LUMI's export: Finland 16 mi250x hours (a step line besides), Sweden 2 h100 hours; a
# running job and an unmapped account left out.
JOBS = export(
    "1|1|lumi|standard-g|project_fi|COMPLETED|2026-03-01T10:00:00|2026-03-01T10:00:00|2026-03-01T12:00:00|02:00:00|cpu=8,gres/gpu=8,node=1",
    "1.batch|1.batch|lumi||project_fi|COMPLETED|2026-03-01T10:00:00|2026-03-01T10:00:00|2026-03-01T12:00:00|02:00:00|cpu=8,gres/gpu=8,node=1",
    "2_1|3|lumi|h100-g|project_se|CANCELLED by 42|2026-03-02T09:00:00|2026-03-02T09:00:00|2026-03-02T09:30:00|00:30:00|gres/gpu=4,gres/gpu:h100=4",
    "4|4|lumi|standard-g|project_se|RUNNING|2026-03-03T09:00:00|2026-03-03T09:00:00|Unknown|01:00:00|gres/gpu=2",
    "5|5|lumi|standard-g|project_xx|COMPLETED|2026-03-03T09:00:00|2026-03-03T09:00:00|2026-03-03T10:00:00|01:00:00|gres/gpu=2",
)

DATASET = {
    "name": "Finnish public-sector corpus",
    "description": "Parliament and ministries, 1990-2025",
    "manifest_sha256": "ab" * 32,
    "size_bytes": 812_000_000_000,
    "files": 41_230,
    "tokens": 96_000_000_000,
    "licence": "CC-BY-4.0",
    "duo": {"permission": "DUO:0000042", "modifiers": ["DUO:0000018"]},
    "residency": "FI",
    "access_mode": "federated",
}

VALUATION = {
    "version": 1,
    "unit": "H100-hour",
    "weights": {"mi250x": "0.4", "h100": "1"},
    "unit_price": {"amount": "2.00", "currency": "EUR"},
    "data_price": {"amount": "0.10", "currency": "EUR", "per_tokens": 1_000_000},
}


def treaty(lumi, sharing=None, **extra):
    """A treaty in force today among Finland, Sweden and the Netherlands (scale shares
    0.2, 0.3, 0.5 unless ``sharing``), valued by VALUATION."""
    people = lumi["people"]
    terms = {
        "parties": ["FI", "SE", "NL"],
        "effective": {"from": TODAY.isoformat(), "until": None},
        "accounting_unit": "EUR",
        "exchange_rates": {"SEK": "0.087"},
        "cost_sharing": sharing
        or {"method": "scale", "shares": {"FI": "0.2", "SE": "0.3", "NL": "0.5"}},
        "valuation": VALUATION,
        **extra,
    }
    doc = document_store(actor=people["ops"], name="t.txt", content=b"treaty")
    a = agreements.agreement_propose(
        actor=people["ops"], kind="treaty", title="Treaty", terms=terms, document_sha256=doc.sha256
    )
    for who in ("sig_fi", "sig_se", "sig_nl"):
        a.refresh_from_db()
        agreements.agreement_sign(
            actor=people[who],
            agreement=a,
            terms_sha256=a.terms_sha256,
            document_sha256=a.document_sha256,
        )
    a.refresh_from_db()
    assert a.state == "in_force"
    return a


def deliver(lumi):
    """Contributions of all three: LUMI's JOBS, Sweden's 1,000 SEK and the Netherlands'
    20 EUR (both confirmed), and a Dutch dataset. Returns the Dutch payment."""
    p = lumi["people"]
    sacct_import(actor=p["rec_fi"], facility=lumi["facility"], data=JOBS)  # FI 16 mi250x, SE 2 h100
    sek = funds_contribute(
        actor=p["rec_se"], amount="1000", currency="SEK", date_paid=TODAY.isoformat()
    )
    # Funds count once the treasurer (the secretariat, by default) confirms them.
    funds_confirm(actor=p["ops"], contribution=sek)
    data_contribute(
        actor=p["sig_nl"],
        dataset={
            "name": "Dutch web",
            "description": "",
            "manifest_sha256": "cd" * 32,
            "size_bytes": 1,
            "files": 1,
            "tokens": 100_000_000,
            "licence": "CC0-1.0",
            "duo": {"permission": "DUO:0000042", "modifiers": []},
            "access_mode": "remote",
            "residency": "NL",
        },
    )
    eur = funds_contribute(
        actor=p["sig_nl"], amount="20", currency="EUR", date_paid=TODAY.isoformat()
    )
    return funds_confirm(actor=p["ops"], contribution=eur)


def treaty_from(
    lumi,
    start: date,
    until: date | None = None,
    kind: str = "treaty",
    parties=("FI", "SE", "NL"),
    signers=("sig_fi", "sig_se", "sig_nl"),
):
    """An agreement that shares the cost among ``parties``, in force from ``start``."""
    people = lumi["people"]
    shares = {"FI": "0.2", "SE": "0.3", "NL": "0.5"}
    terms = {
        "parties": list(parties),
        "effective": {"from": start.isoformat(), "until": until.isoformat() if until else None},
        "accounting_unit": "EUR",
        "exchange_rates": {"SEK": "0.087"},
        "cost_sharing": {"method": "pledged", "pledges": dict.fromkeys(parties, "100")}
        if set(parties) != set(shares)
        else {"method": "scale", "shares": shares},
    }
    doc = document_store(
        actor=people["ops"], name=f"{kind}.txt", content=f"{kind} {start}".encode()
    )
    a = agreements.agreement_propose(
        actor=people["ops"], kind=kind, title=kind, terms=terms, document_sha256=doc.sha256
    )
    for who in signers:
        a.refresh_from_db()
        agreements.agreement_sign(
            actor=people[who],
            agreement=a,
            terms_sha256=a.terms_sha256,
            document_sha256=a.document_sha256,
        )
    a.refresh_from_db()
    return a


def paid_under_a_treaty(lumi):
    """Funds are paid under a treaty in force: one since 2026-01-01."""
    treaty_from(lumi, date(2026, 1, 1))


def post_signed(user, key, kind, payload):
    """An entry of ``kind`` signed by ``key``, submitted through the API by ``user``."""
    env = new_envelope(kind=kind, payload=payload, author=key.fingerprint)
    sig = base64.b64encode(sign_envelope(env, key.signing_key, log_origin()).signature).decode()
    return api_as(user).post(
        "/api/v1/ledger/entries", {"envelope": env, "signature": sig}, format="json"
    )
