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
- Compute awaiting its facility's attestation, and funds awaiting the treasurer's
  confirmation, are held: shown, not counted. A contribution under an open dispute keeps
  counting (shown as disputed) until the dispute is upheld.

Everything is summed by the database (integers: GPU-seconds, tokens, amounts in
millionths), a handful of queries whatever the number of contributions; the arithmetic
on those sums is ``contributions.costshare``, which ``python -m consortium.audit.figures``
runs on the sums it makes from the entries of an audit export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.db.models import Count, Q, Sum

from consortium.governance.models import Agreement, ValuationTable
from contributions import costshare
from contributions.costshare import CENT, ZERO, Line
from contributions.models import Contribution

# The arithmetic is costshare's, shared with the offline verifier.
_capped = costshare.capped


class ReportError(ValueError):
    """A report that cannot be made (an agreement without cost sharing, say)."""


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
    def total(self):
        return sum((line.delivered for line in self.lines), ZERO)

    def as_dict(self) -> dict:
        return {
            "agreement": str(self.agreement.id),
            "title": self.agreement.title,
            "version": self.agreement.version,
            "accounting_unit": self.unit,
            "method": self.method,
            "period": {
                "from": self.start.isoformat() if self.start else None,
                "to": self.end.isoformat() if self.end else None,
            },
            "valuation_tables": self.tables,
            "total_delivered": str(self.total.quantize(CENT)),
            "members": [ln.as_dict() for ln in self.lines],
            "notes": self.notes,
        }

    CSV_COLUMNS = costshare.CSV_COLUMNS

    def csv_rows(self) -> list[list[str]]:
        return [list(self.CSV_COLUMNS)] + [costshare.csv_row(m) for m in self.as_dict()["members"]]


def _tables(agreement: Agreement) -> list[tuple[int, int | None, dict | None]]:
    adopted = [
        {
            "version": t.version,
            "unit": t.unit,
            "weights": t.weights,
            "adopted_in": t.adopted_in,
            "unit_price": t.unit_price,
            "data_price": t.data_price,
        }
        for t in ValuationTable.objects.order_by("adopted_in")
    ]
    return costshare.windows(agreement.terms.get("valuation"), adopted)


def cost_share_report(
    agreement: Agreement, start: date | None = None, end: date | None = None
) -> Report:
    """The cost-share report of ``agreement`` for the days ``start``-``end``."""

    def scan(codes: list[str]) -> _Scan:
        period = Q(member__in=codes)
        if start:
            period &= Q(delivered_on__gte=start)
        if end:
            period &= Q(delivered_on__lte=end)
        return _Scan(period & Q(state__in=VALUED))

    return assemble(agreement, start, end, scan)


VALUED = [Contribution.State.COUNTED, Contribution.State.REPORTED, Contribution.State.PENDING]


class _Scan:
    """The rows costshare values, summed by the database from the contributions."""

    def __init__(self, where: Q):
        self.where = where

    def _window(self, lo: int, hi: int | None) -> Q:
        window = self.where & Q(recorded_in__gte=lo)
        return window & Q(recorded_in__lt=hi) if hi is not None else window

    def compute(self, lo: int, hi: int | None) -> list[dict]:
        return list(
            Contribution.objects.filter(self._window(lo, hi), kind=Contribution.Kind.COMPUTE)
            .values("member", "accelerator", "state", "disputed")
            .annotate(seconds=Sum("gpu_seconds"))
        )

    def data(self, lo: int, hi: int | None) -> list[dict]:
        return list(
            Contribution.objects.filter(self._window(lo, hi), kind=Contribution.Kind.DATA)
            .values("member", "state", "disputed")
            .annotate(token_sum=Sum("tokens"), untokened=Count("id", filter=Q(tokens__isnull=True)))
        )

    def funds(self) -> list[dict]:
        return _funds(self.where)


def _ordered(rows: list[dict], *keys: str) -> list[dict]:
    # Decimal sums round at 28 digits: the same rows in the same order give the same
    # figure to the last digit, whichever source summed them.
    return sorted(rows, key=lambda r: tuple(r[k] for k in keys))


def assemble(agreement: Agreement, start: date | None, end: date | None, source) -> Report:
    """The report of ``agreement``, valuing the rows ``source(codes)`` gives for the bound
    parties ``codes`` (``_Scan``, or the tallies of ``contributions.balances``)."""
    terms = agreement.terms
    sharing = terms.get("cost_sharing")
    if sharing is None:
        raise ReportError("this agreement shares no cost: its terms have no cost_sharing")
    notes: list[str] = []
    if agreement.state != Agreement.State.IN_FORCE:
        notes.append(
            f"the agreement is {agreement.get_state_display()}: its parties may not be bound by it"
        )
    bound = list(
        agreement.parties.filter(signed_in__isnull=False, withdrawn_in__isnull=True)
        .select_related("member")
        .order_by("member_id")
    )
    codes = [p.member_id for p in bound]
    names = {p.member_id: p.member.name for p in bound}
    figures = {p.member_id: p.member.figures for p in bound}
    shares = costshare.shares_of(terms, codes, figures, notes)
    lines = {c: Line(c, names[c], shares.get(c, ZERO)) for c in codes}
    rows = source(codes)
    used: set = set()
    for lo, hi, table in _tables(agreement):
        compute = _ordered(rows.compute(lo, hi), "member", "accelerator", "state", "disputed")
        costshare.value_compute(compute, table, terms, lines, notes, used)
        data = _ordered(rows.data(lo, hi), "member", "state", "disputed")
        costshare.value_data(data, table, terms, lines, notes, used)
    funds = _ordered(rows.funds(), "member", "currency", "state", "disputed")
    costshare.value_funds(funds, terms, lines, notes)
    costshare.settle(terms, lines)
    tables = [
        {"version": v, "adopted_in": i} for v, i in sorted(used, key=lambda t: (t[1] or -1, t[0]))
    ]
    return Report(
        agreement,
        start,
        end,
        terms.get("accounting_unit", ""),
        sharing["method"],
        list(lines.values()),
        tables,
        sorted(set(notes)),
    )


def _funds(where) -> list[dict]:
    qs = Contribution.objects.filter(where, kind=Contribution.Kind.FUNDS)
    if connection.vendor == "sqlite":
        # SQLite sums integers in 64 bits and fails past 9.2e18 millionths; Python's are
        # exact (the report's speed target is PostgreSQL's, whose sums are numeric).
        sums: dict[tuple, int] = {}
        for *key, micros in qs.values_list(
            "member", "currency", "state", "disputed", "amount_micros"
        ):
            sums[tuple(key)] = sums.get(tuple(key), 0) + micros
        return [
            {"member": m, "currency": c, "state": st, "disputed": d, "micros": v}
            for (m, c, st, d), v in sums.items()
        ]
    return list(
        qs.values("member", "currency", "state", "disputed").annotate(micros=Sum("amount_micros"))
    )
