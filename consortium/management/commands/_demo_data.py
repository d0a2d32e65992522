"""The demo's data: the consortium, its members and rules, the agreements' terms and
texts, the facilities, payments and datasets, and the SLURM exports the facilities
send (``manage.py demo`` loads them)."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

SAMPLER = "demo-sampler"
EVALUATOR = "demo-evaluator"
# Sweden is ahead of its share and may download the checkpoint; the Netherlands is behind.
ENTITLED, REFUSED = "SE", "NL"
CONSORTIUM = "Frontier AI Consortium (demo)"
# Six mid-sized economies, with their populations for the voting rules.
FOUNDERS = [
    ("NL", 17_900_000),
    ("SE", 10_550_000),
    ("PL", 36_750_000),
    ("PT", 10_470_000),
    ("FI", 5_600_000),
    ("CZ", 10_900_000),
]
# The treaty's cost-sharing scale (shares of the fixed cost of training).
SCALE = {"NL": "0.26", "SE": "0.16", "PL": "0.22", "PT": "0.07", "FI": "0.09", "CZ": "0.20"}
TREATY_TEXT = """Treaty establishing the {name}

Article 1. The parties pool supercomputer time, national datasets and funds to train
frontier models together, and share the fixed cost of training by the scale in the
structured terms of this treaty, which are part of it.

Article 2. Each party may run the resulting weights on its own, sovereign inference
infrastructure, under the access rules in the structured terms.

Article 3. Every contribution, decision and authorisation is recorded on the
consortium's signed, append-only ledger, which any party may verify.
"""
DSA_TEXT = """Data-sharing agreement: Nordic and Central European public-sector text corpora

The corpora stay in the country named as residency; training runs reach them by
federated access only. Use is limited to not-for-profit, non-commercial research.
"""
RULES = {
    "voting": {
        "default": {
            "kind": "double_majority",
            "weight": "population",
            "members_threshold": "0.55",
            "weight_threshold": "0.65",
            "quorum": "0.5",
        },
        "unanimity": {"kind": "unanimity"},
    },
    "default": "default",
}
TOPICS = [
    ("compute.sample", {"facility": "LUMI", "accelerator": "mi250x", "gpu_hours": 1200}),
    ("compute.sample", {"facility": "Leonardo", "accelerator": "a100", "gpu_hours": 800}),
    ("compute.sample", {"facility": "MareNostrum 5", "accelerator": "h100", "gpu_hours": 640}),
    (
        "data.sample",
        {"dataset": "national-corpus", "tokens": 1_000_000_000, "licence": "CC-BY-4.0"},
    ),
    ("funds.sample", {"amount": "250000.00", "currency": "EUR"}),
]


def demo_export(accounts: list[str], cluster: str) -> bytes:
    """A SLURM accounting export (sacct --parsable2) of finished GPU jobs, with their
    steps, an array and a job still running, for the given accounts (one job each)."""
    rng = random.Random(cluster)
    lines = ["JobID|JobIDRaw|Cluster|Partition|Account|State|Submit|Start|End|ElapsedRaw|AllocTRES"]
    start = datetime(2026, 9, 1, 8, 0)
    for n, account in enumerate(accounts, start=1000):
        gpus, hours = rng.choice([8, 16, 32, 64]), rng.randint(6, 72)
        begin = start + timedelta(hours=n % 200)
        end = begin + timedelta(hours=hours)
        tres = (
            f"billing={gpus},cpu={gpus * 7},gres/gpu={gpus},mem={gpus * 60}G,node={gpus // 8 or 1}"
        )
        row = (
            f"{n}|{n}|{cluster}|standard-g|{account}|COMPLETED|{begin:%Y-%m-%dT%H:%M:%S}|"
            f"{begin:%Y-%m-%dT%H:%M:%S}|{end:%Y-%m-%dT%H:%M:%S}|{hours * 3600}|{tres}"
        )
        lines.append(row)
        for step in ("batch", "extern", "0"):
            lines.append(row.replace(f"{n}|{n}|", f"{n}.{step}|{n}.{step}|", 1))
    lines.append(
        f"999|999|{cluster}|standard-g|{accounts[0]}|RUNNING|2026-09-30T10:00:00|"
        f"2026-09-30T10:00:00|Unknown|3600|gres/gpu=8"
    )
    return ("\n".join(lines) + "\n").encode()


def treaty_terms(today: str) -> dict:
    """The treaty's structured terms, in force from ``today`` (an ISO date)."""
    return {
        "parties": [c for c, _ in FOUNDERS],
        "effective": {"from": today, "until": None},
        "accounting_unit": "EUR",
        "exchange_rates": {"SEK": "0.087", "PLN": "0.23", "CZK": "0.04"},
        "cost_sharing": {"method": "scale", "shares": SCALE},
        "valuation": {
            "version": 1,
            "unit": "H100-hour",
            "weights": {"h100": "1", "a100": "0.45", "mi250x": "0.4"},
            "unit_price": {"amount": "2.50", "currency": "EUR"},
            "data_price": {"amount": "0.02", "currency": "EUR", "per_tokens": 1_000_000},
        },
        "access": [
            {"scope": "full_weights", "tier": "member", "min_balance_ratio": "0.8"},
            {"scope": "inference_only", "tier": "member", "embargo_days": 90},
            {"scope": "evaluation", "tier": "evaluator"},
        ],
        "release": {"requires_proposal": True, "requires_evaluation": True},
    }


def dsa_terms(today: str) -> dict:
    """The data-sharing agreement's terms, effective from ``today`` (an ISO date)."""
    return {
        "parties": ["FI", "NL", "PL"],
        "effective": {"from": today, "until": None},
        "data_use": {
            "permission": "DUO:0000042",
            "modifiers": ["DUO:0000018"],
            "residency": "FI",
            "access_mode": "federated",
        },
    }


FACILITIES = [
    {
        "code": "lumi",
        "name": "LUMI",
        "operator": "FI",
        "country": "FI",
        "timezone": "Europe/Helsinki",
        "default_accelerator": "mi250x",
        "partitions": {"standard-g": "mi250x", "small-g": "mi250x"},
        "accounts": {
            "project_465000001": "FI",
            "project_465000002": "SE",
            "project_465000003": "NL",
            "project_465000004": "PL",
        },
    },
    {
        "code": "karolina",
        "name": "Karolina",
        "operator": "CZ",
        "country": "CZ",
        "timezone": "Europe/Prague",
        "default_accelerator": "a100",
        "partitions": {"qgpu": "a100"},
        "accounts": {"open-29-1": "CZ", "open-29-2": "PT"},
    },
]
# Each facility's SLURM import: who uploads it, and one job per account listed.
SACCT_IMPORTS = [
    (
        "lumi",
        "FI",
        ["project_465000001"] * 5
        + ["project_465000002"] * 3
        + ["project_465000003", "project_465000004"],
    ),
    ("karolina", "CZ", ["open-29-1"] * 3 + ["open-29-2"]),
]
# Payments count once the treasurer (the secretariat, here) confirms them against its
# books; Czechia's latest is still pending.
PAYMENTS = [
    ("SE", "180000", "SEK"),
    ("PL", "60000", "PLN"),
    ("PT", "4000", "EUR"),
    ("NL", "5000", "EUR"),
    ("CZ", "2000", "EUR"),
]
UNCONFIRMED = {"CZ"}


def datasets() -> list[tuple[str, dict]]:
    """The datasets members contribute: (member, dataset record)."""
    return [
        (
            code,
            {
                "name": name,
                "description": "demo dataset",
                "size_bytes": tokens * 4,
                "manifest_sha256": hashlib.sha256(name.encode()).hexdigest(),
                "files": 1200,
                "tokens": tokens,
                "licence": licence,
                "residency": residency,
                "duo": {"permission": "DUO:0000042", "modifiers": ["DUO:0000018"]},
                "access_mode": "federated",
            },
        )
        for code, name, tokens, licence, residency in (
            ("NL", "Dutch government publications", 40_000_000_000, "CC0-1.0", "NL"),
            ("FI", "Finnish public-sector corpus", 25_000_000_000, "CC-BY-4.0", "FI"),
        )
    ]
