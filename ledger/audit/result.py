"""What a verification finds, and the interface of the checks a caller adds (check 6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ledger.core.keyring import KeyState

if TYPE_CHECKING:
    from ledger.audit.bundle import Bundle

# Past this many failures of one kind, the rest are counted, not listed.
LISTED = 20


@dataclass
class Result:
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Checks that could not be made on this bundle (and why): nothing failed, but not
    # everything was verified.
    skipped: list[str] = field(default_factory=list)
    # What the reader should know that is neither a check nor a failure (e.g. that
    # cosignatures were not checked, no policy having been given).
    notes: list[str] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def complete(self) -> bool:
        """Everything held, and everything could be checked."""
        return self.ok and not self.skipped

    def fail(self, message: str, group: str | None = None) -> None:
        """Record a failure; failures of one ``group`` are listed up to ``LISTED``."""
        if group is not None:
            n = self._counts[group] = self._counts.get(group, 0) + 1
            if n > LISTED:
                return
        self.failures.append(message)

    def close(self) -> None:
        for group, n in sorted(self._counts.items()):
            if n > LISTED:
                self.failures.append(f"... and {n - LISTED} more: {group}")
        self._counts.clear()


class Extension(Protocol):
    """A check that needs the payloads of some entries (the domain's figures)."""

    kinds: tuple[str, ...]  # kinds, or prefixes ending with "."

    def take(self, index: int, leaf: dict, author: KeyState | None) -> None:
        """An entry of one of ``kinds``: its leaf as JSON (``entry``, ``index``,
        ``integrated_time``, ``signature``), and its author's key state (``None`` if the
        author could not sign it)."""

    def finish(self, bundle: Bundle, result: Result) -> None: ...
