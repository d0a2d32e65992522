"""The ledger's own cursor over its entries: the index a client has, and how many more.

Offline tooling follows it as it is (docs/ledger-format.md): ``?after=<index>&limit=<n>``
answers ``{"entries", "next", "tree_size"}``, where ``next`` repeats ``limit`` (and the
list's filters) with ``after`` set to the last index returned. Each page is one index
range scan, however long the log.
"""

from __future__ import annotations

from urllib.parse import urlencode

from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from ledger.api.serializers import EntriesQuery
from ledger.proofs import tree_size


class EntryIndexPagination(BasePagination):
    """Pages of entries in index order, after the index a client already has."""

    def paginate_queryset(self, queryset, request, view=None):
        query = EntriesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        self.request, self.limit = request, query.validated_data["limit"]
        rows = list(
            queryset.filter(index__gt=query.validated_data["after"]).order_by("index")[
                : self.limit + 1
            ]
        )
        self.page, self.more = rows[: self.limit], len(rows) > self.limit
        filterset = getattr(view, "filterset_class", None)
        self.filters = list(filterset.base_filters) if filterset is not None else []
        return self.page

    def get_paginated_response(self, data) -> Response:
        next_url = None
        if self.more:
            params = [("after", self.page[-1].index), ("limit", self.limit)]
            for name in self.filters:
                # A repeated filter (kind=a&kind=b) goes on with every value.
                params += [(name, v) for v in self.request.query_params.getlist(name) if v]
            next_url = self.request.build_absolute_uri(f"{self.request.path}?{urlencode(params)}")
        return Response({"entries": data, "next": next_url, "tree_size": tree_size()})

    def get_paginated_response_schema(self, schema) -> dict:
        return {
            "type": "object",
            "required": ["entries", "next", "tree_size"],
            "properties": {
                "entries": schema,
                "next": {
                    "type": "string",
                    "nullable": True,
                    "description": "URL of the next page, if any.",
                },
                "tree_size": {"type": "integer"},
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": name,
                "required": False,
                "in": "query",
                "description": str(field.help_text),
                "schema": {
                    "type": "integer",
                    "minimum": field.min_value,
                    "maximum": field.max_value,
                    **({"format": "int64"} if field.max_value > 2**31 - 1 else {}),
                    "default": field.default,
                },
            }
            for name, field in EntriesQuery().fields.items()
        ]
