"""The arithmetic of cost shares, in pure Python (no Django): shares, valuation, balances.

``contributions.report`` feeds it from the database (sums made by the database);
``consortium.audit.figures`` feeds it from the entries of an audit export, offline. Both give
it the same aggregated rows, so the figures they reach can be compared to the cent.

Rows, per valuation window (the table in force when the contributions were recorded):

- compute: ``{"member", "accelerator", "state", "disputed", "seconds"}`` (GPU-seconds
  summed);
- data: ``{"member", "state", "disputed", "token_sum", "untokened"}`` (tokens summed, and
  how many datasets have no token count);
- funds (whatever the window): ``{"member", "currency", "state", "disputed", "micros"}``
  (millionths).

``state`` is ``counted``, or anything else for what is held (compute reported and
awaiting its facility's attestation, funds pending their treasurer's confirmation).
``disputed`` is true under an open dispute: what is counted still counts (one member
cannot stop another's contributions from counting), and is shown as disputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")
DEFAULT_THRESHOLDS = {"behind": "1.0", "critical": "0.4"}
COUNTED = "counted"


@dataclass
class Line:
    member: str
    name: str
    share: Decimal
    obligation: Decimal = ZERO
    compute: Decimal = ZERO
    data: Decimal = ZERO
    funds: Decimal = ZERO
    held: Decimal = ZERO
    disputed: Decimal = ZERO
    gpu_hours: dict[str, Decimal] = field(default_factory=dict)
    reference_hours: Decimal = ZERO
    tokens: int = 0
    paid: dict[str, Decimal] = field(default_factory=dict)
    pending: dict[str, Decimal] = field(default_factory=dict)
    ratio: Decimal | None = None
    status: str = ""

    @property
    def delivered(self) -> Decimal:
        return self.compute + self.data + self.funds

    @property
    def balance(self) -> Decimal:
        return self.delivered - self.obligation

    def as_dict(self) -> dict:
        def money(v):
            return str(v.quantize(CENT))

        return {
            "member": self.member,
            "name": self.name,
            "share": str(self.share),
            "obligation": money(self.obligation),
            "delivered": {
                "compute": money(self.compute),
                "data": money(self.data),
                "funds": money(self.funds),
                "total": money(self.delivered),
            },
            "balance": money(self.balance),
            "ratio": None if self.ratio is None else str(self.ratio.quantize(Decimal("0.001"))),
            "status": self.status,
            "held": money(self.held),
            "gpu_hours": {k: str(v) for k, v in sorted(self.gpu_hours.items())},
            "reference_hours": str(self.reference_hours.quantize(Decimal("0.000001"))),
            "tokens": self.tokens,
            "funds_paid": {k: str(v) for k, v in sorted(self.paid.items())},
            "funds_pending": {k: str(v) for k, v in sorted(self.pending.items())},
            "disputed": money(self.disputed),
        }


CSV_COLUMNS = (
    "member",
    "name",
    "share",
    "obligation",
    "compute",
    "data",
    "funds",
    "delivered",
    "balance",
    "ratio",
    "status",
    "held",
    "disputed",
)


def csv_row(m: dict) -> list[str]:
    """A line's ``as_dict()`` as a row of ``CSV_COLUMNS``."""
    d = m["delivered"]
    return [
        m["member"],
        m["name"],
        m["share"],
        m["obligation"],
        d["compute"],
        d["data"],
        d["funds"],
        d["total"],
        m["balance"],
        m["ratio"] or "",
        m["status"],
        m["held"],
        m["disputed"],
    ]


def capped(weights: dict[str, Decimal], cap: Decimal | None) -> dict[str, Decimal]:
    """Shares in proportion to ``weights``, none above ``cap``: what a capped party does
    not carry is shared by the others in proportion to their weights, until no share is
    over the cap. A party of weight 0 carries nothing; if the cap cannot hold (too few
    parties with weight), the shares are left uncapped: the caller notes it."""
    shares = dict.fromkeys(weights, ZERO)
    weighted = {c: w for c, w in weights.items() if w > 0}
    if cap is not None and cap * len(weighted) < 1:
        cap = None
    free = dict(weighted)
    left = Decimal(1)
    while free:
        total = sum(free.values(), ZERO)
        proposed = {c: left * w / total for c, w in free.items()}
        over = {c for c, v in proposed.items() if cap is not None and v > cap}
        if not over:
            shares.update(proposed)
            break
        for c in over:
            shares[c] = cap
            left -= cap
            del free[c]
    return shares


def rate(terms: dict, currency: str) -> Decimal | None:
    """One unit of ``currency`` in the accounting unit, as the terms fix it."""
    if currency == terms.get("accounting_unit"):
        return Decimal(1)
    value = terms.get("exchange_rates", {}).get(currency)
    return Decimal(value) if value is not None else None


def price(table: dict | None, name: str, terms: dict, notes: list, what: str) -> Decimal | None:
    p = (table or {}).get(name)
    if p is None:
        notes.append(f"{what} is not valued: the valuation table in force has no {name}")
        return None
    r = rate(terms, p["currency"])
    if r is None:
        notes.append(f"{what} is not valued: no exchange rate for {p['currency']}")
        return None
    return Decimal(p["amount"]) * r


def shares_of(
    terms: dict, codes: list[str], figures: dict[str, dict], notes: list
) -> dict[str, Decimal]:
    """Each bound party's share, by the terms' method (codes in member order)."""
    sharing = terms["cost_sharing"]
    method = sharing["method"]
    if method == "scale":
        return capped({c: Decimal(sharing["shares"][c]) for c in codes}, None)
    if method == "figure":
        weights = {}
        for c in codes:
            value = figures.get(c, {}).get(sharing["figure"])
            if value is None:
                notes.append(f"{c} has no figure {sharing['figure']}: its share is 0")
            weights[c] = Decimal(value) if value is not None else ZERO
        cap = Decimal(sharing["cap"]) if "cap" in sharing else None
        weighted = sum(1 for w in weights.values() if w > 0)
        if cap is not None and cap * weighted < 1:
            notes.append(
                f"the cap of {cap} cannot hold over {weighted} bound parties with "
                f"{sharing['figure']}: the shares are not capped"
            )
        return capped(weights, cap)
    pledges = {c: Decimal(sharing["pledges"][c]) for c in codes}
    total = sum(pledges.values(), ZERO)
    return {c: (p / total if total else ZERO) for c, p in pledges.items()}


def value_compute(rows: list[dict], table, terms, lines, notes, used) -> None:
    if not rows:
        return
    p = price(table, "unit_price", terms, notes, "compute")
    weights = (table or {}).get("weights", {})
    if table is not None:
        used.add((table["version"], table["adopted_in"]))
    for r in rows:
        hours = Decimal(r["seconds"]) / 3600
        weight = weights.get(r["accelerator"])
        if weight is None:
            notes.append(f"{r['accelerator']} GPU-hours are not valued: no weight for that type")
        ref = hours * Decimal(weight) if weight is not None else ZERO
        value = ref * p if p is not None else ZERO
        ln = lines[r["member"]]
        if r["state"] == COUNTED:
            ln.gpu_hours[r["accelerator"]] = ln.gpu_hours.get(
                r["accelerator"], ZERO
            ) + hours.quantize(Decimal("0.000001"))
            ln.reference_hours += ref
            ln.compute += value
            ln.disputed += value if r.get("disputed") else ZERO
        else:
            ln.held += value


def value_data(rows: list[dict], table, terms, lines, notes, used) -> None:
    if not rows:
        return
    p = price(table, "data_price", terms, notes, "data")
    if table is not None:
        used.add((table["version"], table["adopted_in"]))
    per = Decimal((table or {}).get("data_price", {}).get("per_tokens", 1))
    for r in rows:
        if r["untokened"]:
            notes.append("datasets known by their records, not their tokens, are not valued")
        tokens = r["token_sum"] or 0
        value = Decimal(tokens) / per * p if p is not None else ZERO
        ln = lines[r["member"]]
        if r["state"] == COUNTED:
            ln.tokens += tokens
            ln.data += value
            ln.disputed += value if r.get("disputed") else ZERO
        else:
            ln.held += value


def value_funds(rows: list[dict], terms, lines, notes) -> None:
    for r in rows:
        amount = Decimal(r["micros"]) / 1_000_000
        rt = rate(terms, r["currency"])
        if rt is None:
            notes.append(f"funds in {r['currency']} are not valued: the terms fix no rate for it")
        value = amount * rt if rt is not None else ZERO
        ln = lines[r["member"]]
        if r["state"] == COUNTED:
            ln.paid[r["currency"]] = ln.paid.get(r["currency"], ZERO) + amount
            ln.funds += value
            ln.disputed += value if r.get("disputed") else ZERO
        else:
            ln.pending[r["currency"]] = ln.pending.get(r["currency"], ZERO) + amount
            ln.held += value


def settle(terms: dict, lines: dict[str, Line]) -> None:
    """Obligations, ratios and statuses, once every line holds what it delivered."""
    sharing = terms["cost_sharing"]
    total = sum((ln.delivered for ln in lines.values()), ZERO)
    thresholds = terms.get("balance_thresholds", DEFAULT_THRESHOLDS)
    behind, critical = Decimal(thresholds["behind"]), Decimal(thresholds["critical"])
    for ln in lines.values():
        if sharing["method"] == "pledged":
            ln.obligation = Decimal(sharing["pledges"][ln.member])
        else:
            ln.obligation = ln.share * total
        if ln.obligation == 0:
            ln.ratio, ln.status = None, "nothing owed yet" if total == 0 else "no obligation"
            continue
        ln.ratio = ln.delivered / ln.obligation
        ln.status = (
            "critically behind"
            if ln.ratio < critical
            else "behind"
            if ln.ratio < behind
            else "on track"
        )


def windows(own: dict | None, adopted: list[dict]) -> list[tuple[int, int | None, dict | None]]:
    """(from index, to index, table) intervals: each contribution is valued by the table
    in force when it was recorded; before any table adopted by vote (``adopted``, in
    adoption order, each with ``adopted_in``), the agreement's own (``own``)."""
    bounds = [(0, {**own, "adopted_in": None} if own else None)] + [
        (
            t["adopted_in"],
            {
                "version": t["version"],
                "unit": t["unit"],
                "weights": t["weights"],
                "adopted_in": t["adopted_in"],
                **({"unit_price": t["unit_price"]} if t.get("unit_price") else {}),
                **({"data_price": t["data_price"]} if t.get("data_price") else {}),
            },
        )
        for t in adopted
    ]
    return [
        (lo, bounds[i + 1][0] if i + 1 < len(bounds) else None, table)
        for i, (lo, table) in enumerate(bounds)
    ]
