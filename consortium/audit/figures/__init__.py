"""Verify a treaty audit export offline: the log (``ledger.audit``) and the report's figures.

Needs Python and PyNaCl only: no Django, no database, no network::

    python -m consortium.audit.figures verify <bundle.zip or directory> --vkey '<verifier key>'

Besides everything ``python -m ledger.audit verify`` checks, this recomputes from the
signed entries in the bundle, by the rules the appliers follow, the state the report
rests on, and compares it with the report's CSV files:

- downloads authorised per member (``download.authorized`` entries signed by the
  secretariat's key), with ``report/downloads.csv`` and ``report/figures.json``;
- for an export of everything up to the report's state: every contribution's state
  (``contributions.csv``); members, agreements and their signatures, decisions (every
  one recounted from the votes) and access grants; and each party's cost share and
  balance (``cost_shares.csv``, with ``contributions.costshare``);
- ``report/report.html`` is rendered again from the CSV files and compared byte for byte.

Served files and denied requests come from the access log, which is not on the ledger:
they cannot be recomputed. Checks a bundle does not allow (a selection, a later range)
are listed as SKIP, and the exit status is then 3, not 0.

The other checks of ``ledger.audit`` (``checkpoint``, ``inclusion``, ``consistency``)
are available here too.

The parts, in the order an auditor may read them, and the server-side rules each one
mirrors (the appliers, which write the projections the report is read from):

- ``common``: who signed an entry, ids and days as the appliers read them, numbers as the
  report writes them;
- ``tables``: the report's CSV files read out of the bundle and compared with the rows
  recomputed (cells written as ``consortium.audit.report_html.cell`` writes them);
- ``downloads``: the applier of ``download.authorized`` (``consortium.access.downloads``);
- ``members``, ``proposals``, ``agreements``: the appliers of ``consortium.founded`` and
  ``member.applied``, of ``proposal.*`` and ``vote.cast`` with the accepted actions (one
  function per action type), and of ``agreement.*`` (``consortium.governance``);
  ``governance`` holds the state they build and compares it with the report;
- ``contributions``: the appliers of ``facility.*``, ``compute.*``, ``data.contributed``,
  ``funds.*`` and ``contribution.*`` (``contributions.facilities``, ``compute``, ``data``,
  ``funds``, ``disputes``), with the treasurer and who may dispute as
  ``contributions.selectors`` reads them;
- ``costshares``: the cost-share report (``contributions.report``), through the same pure
  arithmetic, ``contributions.costshare``;
- ``page``: the report page (``consortium.audit.report_html``), rendered again.

These modules import only the standard library, PyNaCl, ``ledger.core``, ``ledger.audit``,
``contributions.costshare``, ``consortium.governance.voting`` and
``consortium.audit.report_html``: ``scripts/build_verifier.py`` packs them into one file
and refuses anything else.
"""

from __future__ import annotations

from consortium.audit.figures.common import VERIFY_COMMAND, contribution_bucket, plain
from consortium.audit.figures.contributions import Contributions
from consortium.audit.figures.costshares import CostShares
from consortium.audit.figures.downloads import DownloadCounts
from consortium.audit.figures.governance import Governance
from consortium.audit.figures.page import ReportTables
from ledger.audit import BundleError, run

__all__ = [
    "VERIFY_COMMAND",
    "Contributions",
    "CostShares",
    "DownloadCounts",
    "Governance",
    "ReportTables",
    "contribution_bucket",
    "extensions",
    "main",
    "plain",
]


def extensions() -> list:
    """The checks of the report's figures, to run beside ``ledger.audit``'s own."""
    governance = Governance()
    contributions = Contributions(governance)
    return [
        DownloadCounts(),
        contributions,
        governance,
        CostShares(governance, contributions),
        ReportTables(),
    ]


def main(argv: list[str] | None = None, prog: str = "python -m consortium.audit.figures") -> int:
    try:
        return run(
            argv,
            extensions=extensions(),
            prog=prog,
            what=" with its report's figures recomputed from the entries",
        )
    except BundleError as exc:
        print(f"FAIL {exc}")
        return 1
