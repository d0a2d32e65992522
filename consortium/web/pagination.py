"""Cursor pagination of every list of the API: pages in a stable order, never a list cut
short without saying so.

A page is ``{"next", "previous", "results"}``; ``next`` and ``previous`` are the URLs of
the neighbouring pages (``null`` at either end), each holding an opaque ``cursor``. The
order is the view's ``ordering`` (a tuple of fields; the first says where a page starts,
the others break its ties). A cursor is signed: one the API did not give is a 400, never
a query on whatever position it claims.
"""

from __future__ import annotations

from django.core import signing
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.utils.urls import replace_query_param

SALT = "consortium.web.pagination.cursor"


class CursorPagination(pagination.CursorPagination):
    """Pages of ``page_size`` items (100 unless asked, 1,000 at most), in the view's
    ``ordering``."""

    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"
    page_size_query_description = "How many items at most (1-1000, default 100)."
    cursor_query_description = "Where the page starts: as given in `next` or `previous`."

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        ordering = getattr(view, "ordering", None)
        assert ordering, f"{type(view).__name__}: a list in cursor pages needs an ordering"
        return tuple(ordering)

    def get_page_size(self, request) -> int:
        value = request.query_params.get(self.page_size_query_param)
        if not value:  # an empty parameter reads as absent, as every optional one does
            return self.page_size
        # isdecimal() alone takes other scripts' digits: what a request says is ASCII.
        if not (value.isascii() and value.isdecimal()) or not (
            1 <= int(value) <= self.max_page_size
        ):
            raise ValidationError(
                f"{self.page_size_query_param} is a whole number from 1 to "
                f"{self.max_page_size}, written with the digits 0-9"
            )
        return int(value)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return None
        try:
            offset, reverse, position = signing.loads(encoded, salt=SALT)
        except (signing.BadSignature, TypeError, ValueError) as exc:
            raise ValidationError(
                f"{self.cursor_query_param}: not a cursor this list gave "
                "(follow next and previous as they are)"
            ) from exc
        return pagination.Cursor(offset=offset, reverse=reverse, position=position)

    def encode_cursor(self, cursor) -> str:
        encoded = signing.dumps([cursor.offset, cursor.reverse, cursor.position], salt=SALT)
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(
                    minimum=1, maximum=self.max_page_size, default=self.page_size
                )
        return parameters
