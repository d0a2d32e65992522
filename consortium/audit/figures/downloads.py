"""Downloads authorised per member (``report/downloads.csv`` and ``report/figures.json``).

Served files and denied requests come from the access log, which is not on the ledger:
they cannot be recomputed, and are not checked here."""

from __future__ import annotations

import json
from collections import Counter

from consortium.audit.figures.common import secretariat
from consortium.audit.figures.tables import csv_rows
from ledger.audit import Bundle, Result
from ledger.core.keyring import KeyState


class DownloadCounts:
    """Downloads authorised per member, recomputed from the entries: a
    ``download.authorized`` entry counts when the secretariat's key signed it, as its
    applier (``consortium.access.downloads``) records it only then."""

    kinds = ("download.authorized",)

    def __init__(self):
        self.counts: Counter[str] = Counter()

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        if not secretariat(author):
            return  # the applier gives such an entry no effect
        member = leaf["entry"].get("payload", {}).get("member")
        if isinstance(member, str):
            self.counts[member] += 1

    def finish(self, bundle: Bundle, result: Result) -> None:
        name = "report/downloads.csv"
        rows = csv_rows(bundle, result, name, 1)
        if rows is None:
            return
        if rows.pop(())[:2] != ["member", "authorized"]:
            result.fail(f"{name}: not the downloads table")
            return
        bad = 0
        try:
            reported = {m[0]: int(r[1]) for m, r in rows.items()}
        except ValueError:
            result.fail(f"{name}: a count that is not a number")
            return
        for member in sorted(set(reported) | set(self.counts)):
            if reported.get(member, 0) != self.counts.get(member, 0):
                bad += 1
                result.fail(
                    f"{name}: {member} authorised {reported.get(member, 0)}, the entries "
                    f"say {self.counts.get(member, 0)}"
                )
        figures = json.loads(bundle.read("report/figures.json"))
        stated = {m: v["authorized"] for m, v in figures["downloads"].items()}
        for member in sorted(set(stated) | set(self.counts)):
            if stated.get(member, 0) != self.counts.get(member, 0):
                bad += 1
                result.fail(
                    f"report/figures.json: {member} authorised {stated.get(member, 0)}, "
                    f"the entries say {self.counts.get(member, 0)}"
                )
        if not bad:
            result.checks.append(
                f"downloads authorised per member recomputed from the entries "
                f"({sum(self.counts.values())} in all): as reported"
            )
