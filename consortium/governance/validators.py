"""The shapes of values on the ledger that several domains check: codes, tags, digests,
decimals, UUIDs and reasons, each written once."""

from __future__ import annotations

import re
import uuid


def slug_pattern(longest: int) -> re.Pattern:
    """A lowercase slug of 2 to ``longest`` letters, digits and -, not starting with -."""
    return re.compile(rf"[a-z0-9][a-z0-9-]{{1,{longest - 1}}}")


# Codes kept in 32-character columns: an institution's member code, a facility's code.
# (A model's code and an evaluator's, in 64-character columns, are ``slug_pattern(64)``.)
SLUG_RE = slug_pattern(32)
# A tag such as an accelerator type, a tier or a member figure's name.
TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
COUNTRY_RE = re.compile(r"[A-Z]{2}")  # the shape of an ISO 3166-1 alpha-2 code
# A non-negative decimal written as digits: at most 18 before the point and 18 after.
DECIMAL_RE = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?")
REASON_MAX = 300


def is_canonical_uuid(value) -> bool:
    """Is ``value`` a UUID written in its canonical form (lowercase, hyphens)?"""
    try:
        return str(uuid.UUID(str(value))) == value
    except ValueError:
        return False


def is_reason(value) -> bool:
    """Is ``value`` a reason as the ledger keeps one: 1-300 characters?"""
    return isinstance(value, str) and 0 < len(value) <= REASON_MAX
