"""A transparency-log witness a member runs on its own machine (C2SP tlog-witness v1.0.0).

Standard library, PyNaCl and ``ledger.core`` only: ``python -m ledger.witness`` needs
neither Django nor this project's server. See docs/witness.md.
"""
