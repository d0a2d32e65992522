"""Cost shares and balances: what each party to an agreement delivered, valued by the
agreed rules, against its share of the cost.

For an agreement and a period (days, inclusive):

- **Parties** are those bound by the agreement (signed, not withdrawn).
- **Value delivered** is in the agreement's accounting unit: compute as reference
  accelerator-hours (GPU-hours x the weight of the accelerator type in the valuation
  table in force when the contribution was recorded: the latest adopted by vote, else the
  agreement's own) x the table's unit price; data as tokens x the table's data price;
  funds at the exchange rates the terms fix. What cannot be valued (no price, no rate, a
  type without a weight) is reported, not guessed.
- **Obligation**: with a scale or a figure (such as national income, capped), the party's
  share (renormalised over the bound parties) of the total the parties delivered; with
  pledges, the amount pledged.
- **Balance** = delivered - obligation; **ratio** = delivered / obligation, judged against
  the terms' thresholds (default: under 1.0 behind, under 0.4 critically behind).
- Contributions under dispute, and compute awaiting its facility's attestation, are held:
  shown, not counted.

Everything is summed by the database (integers: GPU-seconds, tokens, amounts in
millionths), a handful of queries whatever the number of contributions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, Sum

from consortium.models import Agreement, Member, ValuationTable
from contributions.models import Contribution

ZERO = Decimal(0)
CENT = Decimal("0.01")
DEFAULT_THRESHOLDS = {"behind": "1.0", "critical": "0.4"}


class ReportError(ValueError):
    """A report that cannot be made (an agreement without cost sharing, say)."""


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
    gpu_hours: dict[str, Decimal] = field(default_factory=dict)
    reference_hours: Decimal = ZERO
    tokens: int = 0
    paid: dict[str, Decimal] = field(default_factory=dict)
    ratio: Decimal | None = None
    status: str = ""

    @property
    def delivered(self) -> Decimal:
        return self.compute + self.data + self.funds

    @property
    def balance(self) -> Decimal:
        return self.delivered - self.obligation


@dataclass
class Report:
    agreement: Agreement
    start: date | None
    end: date | None
    unit: str
    method: str
    lines: list[Line]
    tables: list[dict]
    notes: list[str]

    @property
    def total(self) -> Decimal:
        return sum((line.delivered for line in self.lines), ZERO)

    def as_dict(self) -> dict:
        def money(v):
            return str(v.quantize(CENT))

        return {
            "agreement": str(self.agreement.id), "title": self.agreement.title,
            "version": self.agreement.version, "accounting_unit": self.unit,
            "method": self.method,
            "period": {"from": self.start.isoformat() if self.start else None,
                       "to": self.end.isoformat() if self.end else None},
            "valuation_tables": self.tables, "total_delivered": money(self.total),
            "members": [
                {"member": ln.member, "name": ln.name, "share": str(ln.share),
                 "obligation": money(ln.obligation),
                 "delivered": {"compute": money(ln.compute), "data": money(ln.data),
                               "funds": money(ln.funds), "total": money(ln.delivered)},
                 "balance": money(ln.balance),
                 "ratio": None if ln.ratio is None else str(ln.ratio.quantize(Decimal("0.001"))),
                 "status": ln.status, "held": money(ln.held),
                 "gpu_hours": {k: str(v) for k, v in sorted(ln.gpu_hours.items())},
                 "reference_hours": str(ln.reference_hours.quantize(Decimal("0.000001"))),
                 "tokens": ln.tokens,
                 "funds_paid": {k: str(v) for k, v in sorted(ln.paid.items())}}
                for ln in self.lines
            ],
            "notes": self.notes,
        }  # fmt: skip

    CSV_COLUMNS = ("member", "name", "share", "obligation", "compute", "data", "funds",
                   "delivered", "balance", "ratio", "status", "held")  # fmt: skip

    def csv_rows(self) -> list[list[str]]:
        rows = [list(self.CSV_COLUMNS)]
        for m in self.as_dict()["members"]:
            d = m["delivered"]
            rows.append([m["member"], m["name"], m["share"], m["obligation"], d["compute"],
                         d["data"], d["funds"], d["total"], m["balance"], m["ratio"] or "",
                         m["status"], m["held"]])  # fmt: skip
        return rows


def _capped(weights: dict[str, Decimal], cap: Decimal | None) -> dict[str, Decimal]:
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


def _rate(terms: dict, currency: str) -> Decimal | None:
    """One unit of ``currency`` in the accounting unit, as the terms fix it."""
    if currency == terms.get("accounting_unit"):
        return Decimal(1)
    rate = terms.get("exchange_rates", {}).get(currency)
    return Decimal(rate) if rate is not None else None


def _tables(agreement: Agreement) -> list[tuple[int, int | None, dict | None]]:
    """(from index, to index, table) intervals: each contribution is valued by the table
    in force when it was recorded. Before any adopted table, the agreement's own."""
    adopted = list(ValuationTable.objects.order_by("adopted_in"))
    own = agreement.terms.get("valuation")
    bounds = [(0, {**own, "adopted_in": None} if own else None, None)] + [
        (t.adopted_in, {"version": t.version, "unit": t.unit, "weights": t.weights,
                        "adopted_in": t.adopted_in,
                        **({"unit_price": t.unit_price} if t.unit_price else {}),
                        **({"data_price": t.data_price} if t.data_price else {})}, t.version)
        for t in adopted
    ]  # fmt: skip
    out = []
    for i, (lo, table, _) in enumerate(bounds):
        hi = bounds[i + 1][0] if i + 1 < len(bounds) else None
        out.append((lo, hi, table))
    return out


def cost_share_report(agreement: Agreement, start: date | None = None,
                      end: date | None = None) -> Report:  # fmt: skip
    """The cost-share report of ``agreement`` for the days ``start``-``end``."""
    terms = agreement.terms
    sharing = terms.get("cost_sharing")
    if sharing is None:
        raise ReportError("this agreement shares no cost: its terms have no cost_sharing")
    unit = terms.get("accounting_unit", "")
    notes_state = []
    if agreement.state != Agreement.State.IN_FORCE:
        notes_state.append(f"the agreement is {agreement.get_state_display()}: "
                           "its parties may not be bound by it")  # fmt: skip
    bound = list(
        agreement.parties.filter(signed_in__isnull=False, withdrawn_in__isnull=True)
        .select_related("member").order_by("member_id")
    )  # fmt: skip
    codes = [p.member_id for p in bound]
    names = {p.member_id: p.member.name for p in bound}
    method = sharing["method"]
    notes: list[str] = list(notes_state)
    if method == "scale":
        raw = {c: Decimal(sharing["shares"][c]) for c in codes}
        shares = _capped(raw, None)
    elif method == "figure":
        figures = {m.code: m.figures for m in Member.objects.filter(code__in=codes)}
        weights = {}
        for c in codes:
            value = figures.get(c, {}).get(sharing["figure"])
            if value is None:
                notes.append(f"{c} has no figure {sharing['figure']}: its share is 0")
            weights[c] = Decimal(value) if value is not None else ZERO
        cap = Decimal(sharing["cap"]) if "cap" in sharing else None
        weighted = sum(1 for w in weights.values() if w > 0)
        if cap is not None and cap * weighted < 1:
            notes.append(f"the cap of {cap} cannot hold over {weighted} bound parties with "
                         f"{sharing['figure']}: the shares are not capped")  # fmt: skip
        shares = _capped(weights, cap)
    else:
        pledges = {c: Decimal(sharing["pledges"][c]) for c in codes}
        total_pledged = sum(pledges.values(), ZERO)
        shares = {c: (p / total_pledged if total_pledged else ZERO) for c, p in pledges.items()}
    lines = {c: Line(c, names[c], shares.get(c, ZERO)) for c in codes}

    period = Q(member__in=codes)
    if start:
        period &= Q(delivered_on__gte=start)
    if end:
        period &= Q(delivered_on__lte=end)
    counted = Q(state=Contribution.State.COUNTED)
    held = Q(state__in=[Contribution.State.DISPUTED, Contribution.State.REPORTED])
    used_tables = set()
    for lo, hi, table in _tables(agreement):
        window = period & Q(recorded_in__gte=lo)
        if hi is not None:
            window &= Q(recorded_in__lt=hi)
        _value_compute(window, counted, held, table, terms, lines, notes, used_tables)
        _value_data(window, counted, held, table, terms, lines, notes, used_tables)
    _value_funds(period, counted, held, terms, lines, notes)

    total = sum((ln.delivered for ln in lines.values()), ZERO)
    thresholds = terms.get("balance_thresholds", DEFAULT_THRESHOLDS)
    behind, critical = Decimal(thresholds["behind"]), Decimal(thresholds["critical"])
    for ln in lines.values():
        ln.obligation = pledges[ln.member] if method == "pledged" else ln.share * total
        if ln.obligation == 0:
            ln.ratio, ln.status = None, "nothing owed yet" if total == 0 else "no obligation"
            continue
        ln.ratio = ln.delivered / ln.obligation
        ln.status = ("critically behind" if ln.ratio < critical
                     else "behind" if ln.ratio < behind else "on track")  # fmt: skip
    tables = [
        {"version": v, "adopted_in": i}
        for v, i in sorted(used_tables, key=lambda t: (t[1] or -1, t[0]))
    ]
    return Report(agreement, start, end, unit, method, list(lines.values()), tables,
                  sorted(set(notes)))  # fmt: skip


def _price(table: dict | None, name: str, terms: dict, notes: list, what: str) -> Decimal | None:
    price = (table or {}).get(name)
    if price is None:
        notes.append(f"{what} is not valued: the valuation table in force has no {name}")
        return None
    rate = _rate(terms, price["currency"])
    if rate is None:
        notes.append(f"{what} is not valued: no exchange rate for {price['currency']}")
        return None
    return Decimal(price["amount"]) * rate


def _value_compute(window, counted, held, table, terms, lines, notes, used) -> None:
    rows = (
        Contribution.objects.filter(window, kind=Contribution.Kind.COMPUTE)
        .filter(counted | held)
        .values("member", "accelerator", "state")
        .annotate(seconds=Sum("gpu_seconds"))
    )
    rows = list(rows)
    if not rows:
        return
    price = _price(table, "unit_price", terms, notes, "compute")
    weights = (table or {}).get("weights", {})
    if table is not None:
        used.add((table["version"], table["adopted_in"]))
    for r in rows:
        hours = Decimal(r["seconds"]) / 3600
        weight = weights.get(r["accelerator"])
        if weight is None:
            notes.append(f"{r['accelerator']} GPU-hours are not valued: no weight for that type")
        ref = hours * Decimal(weight) if weight is not None else ZERO
        value = ref * price if price is not None else ZERO
        ln = lines[r["member"]]
        if r["state"] == Contribution.State.COUNTED:
            ln.gpu_hours[r["accelerator"]] = ln.gpu_hours.get(
                r["accelerator"], ZERO
            ) + hours.quantize(Decimal("0.000001"))
            ln.reference_hours += ref
            ln.compute += value
        else:
            ln.held += value


def _value_data(window, counted, held, table, terms, lines, notes, used) -> None:
    rows = list(
        Contribution.objects.filter(window, kind=Contribution.Kind.DATA)
        .filter(counted | held)
        .values("member", "state")
        .annotate(token_sum=Sum("tokens"), untokened=Count("id", filter=Q(tokens__isnull=True)))
    )
    if not rows:
        return
    price = _price(table, "data_price", terms, notes, "data")
    if table is not None:
        used.add((table["version"], table["adopted_in"]))
    per = Decimal((table or {}).get("data_price", {}).get("per_tokens", 1))
    for r in rows:
        if r["untokened"]:
            notes.append("datasets known by their records, not their tokens, are not valued")
        tokens = r["token_sum"] or 0
        value = Decimal(tokens) / per * price if price is not None else ZERO
        ln = lines[r["member"]]
        if r["state"] == Contribution.State.COUNTED:
            ln.tokens += tokens
            ln.data += value
        else:
            ln.held += value


def _value_funds(period, counted, held, terms, lines, notes) -> None:
    qs = Contribution.objects.filter(period, kind=Contribution.Kind.FUNDS).filter(counted | held)
    if connection.vendor == "sqlite":
        # SQLite sums integers in 64 bits and fails past 9.2e18 millionths; Python's are
        # exact (the report's speed target is PostgreSQL's, whose sums are numeric).
        sums: dict[tuple, int] = {}
        for member, currency, state, micros in qs.values_list("member", "currency", "state",
                                                               "amount_micros"):  # fmt: skip
            key = (member, currency, state)
            sums[key] = sums.get(key, 0) + micros
        rows = [{"member": m, "currency": c, "state": st, "micros": v}
                for (m, c, st), v in sums.items()]  # fmt: skip
    else:
        rows = qs.values("member", "currency", "state").annotate(micros=Sum("amount_micros"))
    for r in rows:
        amount = Decimal(r["micros"]) / 1_000_000
        rate = _rate(terms, r["currency"])
        if rate is None:
            notes.append(f"funds in {r['currency']} are not valued: the terms fix no rate for it")
        value = amount * rate if rate is not None else ZERO
        ln = lines[r["member"]]
        if r["state"] == Contribution.State.COUNTED:
            ln.paid[r["currency"]] = ln.paid.get(r["currency"], ZERO) + amount
            ln.funds += value
        else:
            ln.held += value
