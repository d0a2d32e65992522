"""The API's JSON parser: DRF's, refusing what would otherwise fail deep inside."""

from __future__ import annotations

import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _refusal(value) -> str | None:
    """Why no string or key of ``value`` can be stored or echoed, or ``None``: U+0000
    (PostgreSQL refuses it in text), or a lone surrogate (``"\\ud800"`` is valid JSON,
    but no UTF-8 can encode it: an error message echoing it could not be sent).
    Walked without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "U+0000 is not accepted in any string"
            if _LONE_SURROGATE.search(item):
                return "a lone surrogate (\\ud800-\\udfff) is not a character: not accepted"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


class StrictJSONParser(JSONParser):
    """JSON bodies nested too deeply, or holding U+0000 or a lone surrogate, are a 400
    with a clear message rather than an error deep in the stack."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error: the body is nested too deeply") from exc
        why = _refusal(data)
        if why:
            raise ParseError(f"JSON parse error: {why}")
        return data
