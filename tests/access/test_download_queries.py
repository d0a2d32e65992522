"""The download gate's cost does not grow with history: authorising a download and
serving a range take the same few queries after a handful of contributions and after
many more."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from contributions.compute import sacct_import
from contributions.data import data_contribute
from contributions.funds import funds_confirm, funds_contribute
from contributions.models import Contribution
from tests.steps.access import WEIGHTS, authorize, streamed
from tests.steps.api import api_as
from tests.steps.contributions import DATASET, JOBS, TODAY

# Token and seat, checkpoint with its model and agreement, standing, grants, party,
# publication, the balance (parties, tallies, valuation tables), the access-log line, and
# the API token's authentication: none of them depends on the number of contributions.
MAX_SERVE_QUERIES = 16
# On a decision kept (consortium.access.gate): the look at the ledger, the API token's
# authentication (never kept under the tests) and the access-log line.
MAX_KEPT_RANGE_QUERIES = 3


def counted(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def more_history(lumi, rounds: int) -> None:
    """``rounds`` more of everyone's contributions, each through its service."""
    people = lumi["people"]
    done = lumi.setdefault("rounds", 0)
    lumi["rounds"] = done + rounds
    for i in range(done, done + rounds):
        data = JOBS.replace(b"|1|lumi|", f"|{1000 + 2 * i}|lumi|".encode())
        data = data.replace(b"|3|lumi|", f"|{1001 + 2 * i}|lumi|".encode())
        sacct_import(actor=people["rec_fi"], facility=lumi["facility"], data=data)
        paid = funds_contribute(
            actor=people["rec_se"],
            amount=f"{200_000 + i}.5",
            currency="SEK",
            date_paid=TODAY.isoformat(),
        )
        funds_confirm(actor=people["ops"], contribution=paid)
        data_contribute(actor=people["sig_nl"], dataset={**DATASET, "manifest_sha256": f"{i:064x}"})


def test_authorising_and_serving_a_range_take_the_same_queries_whatever_the_history(
    lumi, checkpoint
):
    api = api_as(lumi["people"]["rec_se"])
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]

    def serve_range():
        r = api.get(url, HTTP_RANGE="bytes=10-19")
        assert r.status_code == 206 and streamed(r) == WEIGHTS[10:20]

    def allow():
        assert authorize(lumi, checkpoint.digest).status_code == 201

    def measured():
        """Queries of: an authorisation decided afresh (a contribution was just
        recorded), a range served on the decision kept, a range decided afresh."""
        more_history(lumi, 1)
        fresh_allow = counted(allow)
        serve_range()  # the log key read again too
        kept_range = counted(serve_range)
        more_history(lumi, 1)
        return fresh_allow, kept_range, counted(serve_range)

    serve_range()  # caches warmed (content types, keys)
    before = (*measured(), Contribution.objects.count())
    more_history(lumi, 15)
    after = (*measured(), Contribution.objects.count())
    assert after[3] >= before[3] + 50
    assert after[:3] == before[:3]
    assert before[2] <= MAX_SERVE_QUERIES
    assert before[1] <= MAX_KEPT_RANGE_QUERIES
