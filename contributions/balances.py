"""Balances at a constant cost: the tallies the cost-share report needs over all time,
kept by the contribution appliers as they record and change contributions.

A ``ContributionTally`` row sums the contributions of one member, kind, accelerator (compute)
or currency (funds), state, dispute flag and valuation epoch: the ``adopted_in`` of the
valuation table in force when they were recorded (0 before any table adopted by vote). The
report windows contributions by the table in force when they were recorded, and windows
begin where a table was adopted, so every epoch falls in exactly one window: the rows
``costshare`` values are the tallies summed per window, the same integers the report sums
from the contributions (``balance_report`` equals ``cost_share_report`` without a period,
to the last digit). The gate (``consortium.access.entitlements.balance_ratio``) reads them:
a handful of queries whatever the number of contributions.

Appliers call ``tally_added`` after creating contributions and wrap an update in
``tallied``; replay rebuilds the table through them, and ``tally_rebuild`` makes it from
the contributions as they stand (the migration that introduced it runs it).
"""

from __future__ import annotations

import contextlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator

from django.db.models import F, QuerySet

from consortium.governance.models import Agreement, ValuationTable
from contributions.models import Contribution, ContributionTally
from contributions.report import VALUED, Report, assemble

_FIELDS = (
    "member_id",
    "kind",
    "accelerator",
    "currency",
    "state",
    "disputed",
    "recorded_in",
    "gpu_seconds",
    "tokens",
    "amount_micros",
)
_SUMS = ("contributions", "gpu_seconds", "tokens", "untokened", "amount_micros")


def _epochs() -> list[int]:
    return sorted(ValuationTable.objects.values_list("adopted_in", flat=True))


def _epoch(recorded_in: int, epochs: list[int]) -> int:
    i = bisect_right(epochs, recorded_in)
    return epochs[i - 1] if i else 0


def tally_key(member, kind, accelerator, currency, state, disputed, epoch) -> str:
    return f"{member}/{kind}/{epoch}/{state}/{'disputed' if disputed else 'clear'}/{accelerator or currency}"


def _sums(rows: Iterable[tuple], epochs: list[int]) -> dict[tuple, list[int]]:
    """Contributions (``_FIELDS`` tuples) summed per tally, in Python: exact integers."""
    out: dict[tuple, list[int]] = {}
    for member, kind, accelerator, currency, state, disputed, recorded_in, s, t, m in rows:
        group = (member, kind, accelerator or "", currency or "", state, bool(disputed))
        sums = out.setdefault((*group, _epoch(recorded_in, epochs)), [0, 0, 0, 0, 0])
        sums[0] += 1
        sums[1] += s or 0
        sums[2] += t or 0
        sums[3] += 1 if kind == Contribution.Kind.DATA and t is None else 0
        sums[4] += m or 0
    return out


def _apply(sums: dict[tuple, list[int]], sign: int) -> None:
    for group, values in sums.items():
        key = tally_key(*group)
        deltas = {name: F(name) + sign * v for name, v in zip(_SUMS, values, strict=True)}
        if ContributionTally.objects.filter(key=key).update(**deltas):
            if sign < 0:
                ContributionTally.objects.filter(key=key, contributions=0).delete()
            continue
        if sign < 0:
            raise RuntimeError(f"no tally {key} to take contributions from")
        member, kind, accelerator, currency, state, disputed, epoch = group
        ContributionTally.objects.create(
            key=key,
            member_id=member,
            kind=kind,
            accelerator=accelerator,
            currency=currency,
            state=state,
            disputed=disputed,
            epoch=epoch,
            **dict(zip(_SUMS, values, strict=True)),
        )


def tally_added(contributions: Iterable[Contribution]) -> None:
    """Count contributions just created."""
    rows = [tuple(getattr(c, f) for f in _FIELDS) for c in contributions]
    _apply(_sums(rows, _epochs()), +1)


@contextlib.contextmanager
def tallied(contributions: QuerySet) -> Iterator[None]:
    """Around an update of ``contributions`` (a queryset whose filter the update does not
    change: by id, by import): their old figures leave the tallies, their new ones enter."""
    epochs = _epochs()
    _apply(_sums(contributions.values_list(*_FIELDS), epochs), -1)
    yield
    _apply(_sums(contributions.values_list(*_FIELDS), epochs), +1)


def tally_rebuild(
    contribution=Contribution, tally=ContributionTally, tables=ValuationTable, using="default"
) -> int:
    """Make the tallies again from the contributions as they stand in database ``using``
    (the models may be a migration's); the number of tallies."""
    epochs = sorted(tables.objects.using(using).values_list("adopted_in", flat=True))
    rows = contribution.objects.using(using).order_by().values_list(*_FIELDS)
    tally.objects.using(using).all().delete()
    sums = _sums(rows.iterator(chunk_size=10_000), epochs)
    tally.objects.using(using).bulk_create(
        tally(
            key=tally_key(*group),
            member_id=group[0],
            kind=group[1],
            accelerator=group[2],
            currency=group[3],
            state=group[4],
            disputed=group[5],
            epoch=group[6],
            **dict(zip(_SUMS, values, strict=True)),
        )
        for group, values in sums.items()
    )
    return len(sums)


class _Tallies:
    """The rows costshare values, summed from the tallies of the bound parties (one query)."""

    def __init__(self, codes: list[str]):
        self.rows = list(
            ContributionTally.objects.filter(member_id__in=codes, state__in=VALUED).values(
                "member_id", "kind", "accelerator", "currency", "state", "disputed", "epoch", *_SUMS
            )
        )

    def _grouped(self, kind, keys, sums, lo=0, hi=None) -> list[dict]:
        out: dict[tuple, dict] = {}
        for r in self.rows:
            if r["kind"] != kind or r["epoch"] < lo or (hi is not None and r["epoch"] >= hi):
                continue
            group = tuple(r["member_id"] if k == "member" else r[k] for k in keys)
            row = out.setdefault(
                group, {**dict(zip(keys, group, strict=True)), **dict.fromkeys(sums, 0)}
            )
            for name, field in sums.items():
                row[name] += r[field]
        return list(out.values())

    def compute(self, lo: int, hi: int | None) -> list[dict]:
        keys = ("member", "accelerator", "state", "disputed")
        return self._grouped(Contribution.Kind.COMPUTE, keys, {"seconds": "gpu_seconds"}, lo, hi)

    def data(self, lo: int, hi: int | None) -> list[dict]:
        sums = {"token_sum": "tokens", "untokened": "untokened"}
        return self._grouped(Contribution.Kind.DATA, ("member", "state", "disputed"), sums, lo, hi)

    def funds(self) -> list[dict]:
        keys = ("member", "currency", "state", "disputed")
        return self._grouped(Contribution.Kind.FUNDS, keys, {"micros": "amount_micros"})


def balance_report(agreement: Agreement) -> Report:
    """The cost-share report of ``agreement`` over all time, from the tallies: the figures
    of ``cost_share_report(agreement)`` in a constant number of queries."""
    return assemble(agreement, None, None, _Tallies)
