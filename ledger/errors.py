"""What the ledger refuses: the errors of its appends and reads."""


class LedgerError(Exception):
    """An append or read the ledger refuses; the message says why."""


class IdempotencyConflict(LedgerError):
    """An entry id already names a different envelope."""


class EntryTooLarge(LedgerError):
    """An entry whose leaf would be over 65,535 bytes (``MAX_LEAF_BYTES``): a C2SP
    tlog-tiles entry bundle could not hold it. Refused before anything is written."""

    status = 413


class LogBehind(LedgerError):
    """The database is behind, or not a prefix of, the newest checkpoint the log ever
    published (kept outside the database, ``ledger.published``): the log signs and
    appends nothing until the missing entries are re-ingested. The message says what is
    missing."""

    status = 503
