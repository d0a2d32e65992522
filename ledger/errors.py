"""What the ledger refuses: the errors of its appends and reads."""


class LedgerError(Exception):
    """An append or read the ledger refuses; the message says why."""


class IdempotencyConflict(LedgerError):
    """An entry id already names a different envelope."""
