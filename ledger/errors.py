"""What the ledger refuses: the errors of its appends and reads."""


class LedgerError(Exception):
    """An append or read the ledger refuses; the message says why."""


class IdempotencyConflict(LedgerError):
    """An entry id already names a different envelope."""


class EntryTooLarge(LedgerError):
    """An entry whose leaf would be over 65,535 bytes (``MAX_LEAF_BYTES``): a C2SP
    tlog-tiles entry bundle could not hold it. Refused before anything is written."""

    status = 413
