#!/usr/bin/env python3
"""Build ``dist/consortium-witness.pyz``: a member's witness as one file.

    python3 scripts/build_witness.py [--output dist/consortium-witness.pyz]

The archive holds ``ledger.witness`` and the pure modules it imports (``ledger.core``,
and ``ledger.audit`` for the mirror's checks), collected and checked as
``scripts/build_verifier.py`` collects the verifier's: at module level nothing but the
standard library and PyNaCl (``cryptography`` is imported only where an ML-DSA-44 key is
used). It runs ``keygen``, ``serve``, ``mirror`` and ``export`` on any Python 3.11+ with
PyNaCl. The build is reproducible: the same sources give the same bytes.

Needs only the standard library (no virtual environment).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_verifier import ALLOWED_THIRD_PARTY, ROOT, build, command_line

ENTRY_MODULES = ("ledger.witness", "ledger.witness.cli")

MAIN = '''"""consortium-witness: a member's witness of the consortium ledger (C2SP tlog-witness
v1.0.0), and its verified copy of the log.

Python 3.11+ and PyNaCl (and cryptography for ML-DSA-44 keys); no server, no Django.
{version}
"""

import sys

PROG = "consortium-witness.pyz"


def main(argv):
    if argv[:1] == ["version"]:
        print({version!r})
        return 0
    if sys.version_info < (3, 11):
        print("consortium-witness needs Python 3.11 or newer", file=sys.stderr)
        return 2
    try:
        import nacl.signing  # noqa: F401
    except ImportError:
        print("consortium-witness needs PyNaCl: pip install PyNaCl", file=sys.stderr)
        return 2
    from ledger.witness.cli import main as witness

    return witness(argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def main(argv: list[str] | None = None) -> int:
    return command_line(
        argv,
        prog="scripts/build_witness.py",
        description="Build the witness as one file (a Python zip application).",
        output=ROOT / "dist" / "consortium-witness.pyz",
        build_it=lambda output: build(output, ENTRY_MODULES, MAIN, ALLOWED_THIRD_PARTY),
    )


if __name__ == "__main__":
    sys.exit(main())
