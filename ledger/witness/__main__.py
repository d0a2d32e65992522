import sys

from ledger.witness.cli import main

sys.exit(main())
