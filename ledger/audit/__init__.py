"""Verify an audit export, or a single standard artefact, offline.

Needs Python and PyNaCl only: no Django, no database, no network::

    python -m ledger.audit verify <bundle.zip or directory> --vkey '<verifier key>'
                                     [--policy <your C2SP tlog-policy file>]
    python -m ledger.audit copy <directory> --vkey '<verifier key>'
    python -m ledger.audit checkpoint <note file> --vkey '<verifier key>' [--origin O]
    python -m ledger.audit inclusion --index I --size N (--leaf FILE | --leaf-hash H)
                                     --proof FILE (--root R | --checkpoint NOTE --vkey K)
    python -m ledger.audit consistency --old M --new N --proof FILE
                                     (--old-root R --new-root R | --old-checkpoint NOTE
                                      --new-checkpoint NOTE --vkey K)
    python -m ledger.audit tlog-proof <proof file> --leaf FILE --policy FILE [--vkey K]

The export format is described in ``docs/audit-export.md``. ``verify`` checks, and names
what fails (file, entry index, checkpoint size):

0. the log keys: the genesis key and each key a ``log.key_rotated`` entry brings
   (signed by the old key and the new); the verifier key, any of them;
1. ``MANIFEST`` is a signed note by the log key of the anchor checkpoint, every file it
   lists has its size and SHA-256, and the bundle holds no file it does not list;
2. every checkpoint is a C2SP signed note by the log key for its size (the key valid at
   index ``size``), for the log's origin, and consecutive checkpoints are consistent
   (RFC 9162 consistency proofs); with
   ``--policy``, the anchor checkpoint carries the cosignatures the member's own C2SP
   tlog-policy asks for (without it, the output notes that cosignatures were not
   checked);
3. every key entry (``keys.jsonl``) is included in the anchor checkpoint, and replaying
   them gives each entry's author key at its index (registrations, rotations,
   revocations); the genesis registers the log's first key;
4. every entry's leaf has the leaf layout, its index, and a signature by the key valid at
   that index;
5. a contiguous export: the tree rebuilt from the entries (starting from the hashes of
   the subtrees before it) has the signed root at every checkpoint size in range, and is
   a prefix of the anchor checkpoint; a selection: every entry is included in the anchor;
6. what the callers add (``consortium.audit.figures`` recomputes the report's figures from the
   entries and compares them with the CSV files and the report).

Exit status: 0 when everything holds and everything could be checked; 1 when anything
fails; 3 when nothing fails but some checks could not be made on this bundle (each is
listed as SKIP, with the reason); 2 for a usage error.

Where each check is written, for an auditor reading them: ``phases`` runs the phases in
the order above; ``logkeys`` follows the log key (0); ``bundle`` reads the bundle and
checks its MANIFEST (1);
``checkpoints`` (2); ``keys`` (3); ``entries`` reads the entries and checks their leaves
and signatures on a pool of processes (4); ``tree`` rebuilds the tree or proves the
selection (5); ``result`` holds what is found and the interface of the callers' checks
(6). ``artefacts`` checks a single checkpoint, proof or tlog-proof, ``copy`` a log's copy
as a witness's mirror writes it (every entry from index 0 and the log's checkpoint:
checks 2 to 5 on it), and ``cli`` is the command line.
"""

from ledger.audit.artefacts import read_checkpoint, read_proof
from ledger.audit.bundle import ENTRIES, FORMAT, MANIFEST, Bundle, BundleError, read_manifest
from ledger.audit.cli import PARTIAL, parser, run
from ledger.audit.phases import verify
from ledger.audit.result import Extension, Result

__all__ = [
    "ENTRIES",
    "FORMAT",
    "MANIFEST",
    "PARTIAL",
    "Bundle",
    "BundleError",
    "Extension",
    "Result",
    "parser",
    "read_checkpoint",
    "read_manifest",
    "read_proof",
    "run",
    "verify",
]
