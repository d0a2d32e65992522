"""The API's JSON parser: DRF's, refusing what would otherwise fail deep inside."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _has_nul(value) -> bool:
    """Whether any string or key in ``value`` holds U+0000 (walked without recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class StrictJSONParser(JSONParser):
    """JSON bodies nested too deeply, or holding U+0000 (which PostgreSQL cannot store),
    are a 400 with a clear message rather than an error deep in the stack."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error: the body is nested too deeply") from exc
        if _has_nul(data):
            raise ParseError("JSON parse error: U+0000 is not accepted in any string")
        return data
