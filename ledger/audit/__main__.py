"""``python -m ledger.audit``: see ``ledger.audit``."""

import sys

from ledger.audit.cli import run

if __name__ == "__main__":
    sys.exit(run())
