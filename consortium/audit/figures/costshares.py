"""Cost shares and balances (``report/cost_shares.csv``): the server's report
(``contributions.report``) and this verifier feed the same pure arithmetic,
``contributions.costshare``, with the same aggregated rows, the server's from its
tables and these from the state recomputed from the entries, so the figures they reach
can be compared to the cent."""

from __future__ import annotations

from consortium.audit.figures import agreements
from consortium.audit.figures.common import DISPUTABLE
from consortium.audit.figures.contributions import Contributions
from consortium.audit.figures.governance import Governance
from consortium.audit.figures.tables import compare, csv_rows, whole_figures
from contributions import costshare
from ledger.audit import Bundle, Result
from ledger.core.keyring import KeyState


class CostShares:
    """Each bound party's cost share and balance, for every agreement in force with
    cost sharing, recomputed with ``contributions.costshare`` from the state
    ``Governance`` and ``Contributions`` recomputed; compared with
    ``report/cost_shares.csv``."""

    kinds = ()

    def __init__(self, governance: Governance, contributions: Contributions):
        self.governance, self.contributions = governance, contributions

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        return None

    def rows(self) -> list[list[str]]:
        g = self.governance
        out = []
        for agreement_id, a in sorted(g.agreements.items(), key=lambda kv: kv[1]["proposed_in"]):
            terms = a["terms"]
            if a["state"] != "in_force" or "cost_sharing" not in terms:
                continue
            codes = sorted(agreements.bound(a))
            notes: list[str] = []
            figures = {c: g.members.get(c, {}).get("figures") or {} for c in codes}
            shares = costshare.shares_of(terms, codes, figures, notes)
            lines = {
                c: costshare.Line(
                    c, g.members.get(c, {}).get("name", ""), shares.get(c, costshare.ZERO)
                )
                for c in codes
            }
            items = [
                i
                for i in self.contributions.items.values()
                if i["member"] in lines and i["state"] in DISPUTABLE
            ]
            used: set = set()
            for lo, hi, table in costshare.windows(terms.get("valuation"), g.tables):
                window = [
                    i
                    for i in items
                    if i["recorded_in"] >= lo and (hi is None or i["recorded_in"] < hi)
                ]
                costshare.value_compute(
                    _group(
                        window,
                        "compute",
                        ("member", "accelerator", "state", "disputed"),
                        seconds=lambda i: i["seconds"],
                    ),
                    table,
                    terms,
                    lines,
                    notes,
                    used,
                )
                data = _group(
                    window,
                    "data",
                    ("member", "state", "disputed"),
                    token_sum=lambda i: i["tokens"] or 0,
                    untokened=lambda i: 1 if i["tokens"] is None else 0,
                )
                costshare.value_data(data, table, terms, lines, notes, used)
            funds = _group(
                items,
                "funds",
                ("member", "currency", "state", "disputed"),
                micros=lambda i: i["micros"],
            )
            costshare.value_funds(funds, terms, lines, notes)
            costshare.settle(terms, lines)
            for ln in lines.values():
                out.append([agreement_id, *costshare.csv_row(ln.as_dict())])
        return out

    def finish(self, bundle: Bundle, result: Result) -> None:
        if whole_figures(bundle, result, "cost shares") is None:
            return
        mine = [[r[0], r[1], *r[3:]] for r in self.rows()]
        name = "report/cost_shares.csv"
        header = csv_rows(bundle, result, name, 2)
        if header is None:
            return
        if header[()] != ["agreement", "member", *costshare.CSV_COLUMNS[2:]]:
            result.fail(f"{name}: not the cost-share table")
            return
        if compare(bundle, result, name, mine, 2):
            result.checks.append(
                f"cost shares and balances of {len(mine)} parties recomputed "
                f"from the entries: as reported"
            )


def _group(items: list[dict], kind: str, by: tuple[str, ...], **sums) -> list[dict]:
    """Rows as the database's GROUP BY gives them: ``by`` fields and the ``sums``."""
    out: dict[tuple, dict] = {}
    for i in items:
        if i["kind"] != kind:
            continue
        key = tuple(i[f] for f in by)
        row = out.setdefault(key, {**dict(zip(by, key, strict=True)), **dict.fromkeys(sums, 0)})
        for name, fn in sums.items():
            row[name] += fn(i)
    return list(out.values())
