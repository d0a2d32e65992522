#!/usr/bin/env python
"""Mirror benchmark: entries a second a witness's ``--mirror`` verifies and keeps.

    python bench/mirror_bench.py [--entries 20000] [--quick]

Builds a log of signed entries with ``ledger.core`` (a genesis, a service key registered
by the log key, then entries signed by it), writes its checkpoint and entry bundles as
static files, and serves them with ``python -m http.server`` in its own process (as
nginx serves tiles written to storage). The mirror (``ledger.witness.mirror``, the code
``python -m ledger.witness mirror`` runs) then syncs from the empty copy: every bundle
fetched over HTTP, every leaf checked (layout, index, key history, signature), the tree
rebuilt and its root compared with the checkpoint's, every leaf written to its SQLite
state, on one process. A second sync with nothing new shows the cost of staying current.

Baselines, same run, same leaves: the Ed25519 signature checks alone (PyNaCl, one
process, best of three passes), the ceiling the mirror cannot pass; and the offline verifier checking the copy
the mirror exports (``ledger.audit copy``, one process).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ORIGIN = "bench.ledger.example"


def say(text: str = "") -> None:
    print(text, flush=True)


def build_log(entries: int):
    """(leaves, signed checkpoint, the log's verifier key, (message, signature, key) per leaf)."""
    from datetime import UTC, datetime

    from nacl.signing import SigningKey

    from ledger.core import merkle
    from ledger.core.envelope import (
        build_leaf,
        format_time,
        key_fingerprint,
        new_envelope,
        sign_envelope,
        signing_message,
    )
    from ledger.core.keyring import descriptor
    from ledger.core.note import Checkpoint, Signer, sign_note

    log_key, service = SigningKey.generate(), SigningKey.generate()
    now = format_time(datetime.now(UTC))
    leaves, checks = [], []

    def append(kind: str, payload: dict, key: SigningKey) -> None:
        author = key_fingerprint(bytes(key.verify_key))
        signed = sign_envelope(new_envelope(kind=kind, payload=payload, author=author), key, ORIGIN)
        leaves.append(build_leaf(signed.envelope_bytes, len(leaves), now, signed.signature))
        checks.append(
            (
                signing_message(signed.envelope_bytes, ORIGIN),
                signed.signature,
                bytes(key.verify_key),
            )
        )

    log_desc = descriptor(
        public_key=bytes(log_key.verify_key),
        kind="log",
        owner="operator",
        custody="hosted",
        name=ORIGIN,
    )
    append("log.genesis", {"origin": ORIGIN, "key": log_desc}, log_key)
    service_desc = descriptor(
        public_key=bytes(service.verify_key),
        kind="service",
        owner="bench",
        custody="hosted",
        name="bench",
    )
    append("key.registered", {"key": service_desc}, log_key)
    for i in range(entries - 2):
        append("bench.sample", {"n": i, "note": "an entry of about the size of the log's"}, service)
    builder = merkle.TreeBuilder()
    for leaf in leaves:
        builder.push(merkle.leaf_hash(leaf))
    signer = Signer(ORIGIN, log_key)
    note = sign_note(Checkpoint(ORIGIN, len(leaves), builder.root()).body(), signer)
    return leaves, note, signer.verifier_key(), checks


def write_tiles(directory: Path, leaves: list[bytes], note: str) -> None:
    from ledger.core import tiles

    base = directory / "tlog"
    base.mkdir(parents=True)
    (base / "checkpoint").write_text(note)
    for n in range(-(-len(leaves) // tiles.WIDTH)):
        chunk = leaves[n * tiles.WIDTH : (n + 1) * tiles.WIDTH]
        path = base / tiles.tile_path(tiles.ENTRIES, n, len(chunk))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tiles.entry_bundle(chunk))


def serve(directory: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(directory),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
    port = int(line.split(" port ")[1].split(" ")[0])
    return proc, f"http://127.0.0.1:{port}/tlog"


def bare_rate(checks) -> float:
    """Signature checks a second, the best of three passes (the machine may be shared)."""
    from nacl.signing import VerifyKey

    keys: dict[bytes, VerifyKey] = {}
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for message, signature, key in checks:
            vk = keys.get(key) or keys.setdefault(key, VerifyKey(key))
            vk.verify(message, signature)
        best = max(best, len(checks) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="2,000 entries: a smoke test")
    args = parser.parse_args()
    entries = 2000 if args.quick else args.entries

    from ledger.audit.copy import verify_copy
    from ledger.core.note import parse_verifier_key
    from ledger.witness.export import write_copy
    from ledger.witness.mirror import Mirror, Tiles
    from ledger.witness.state import State

    say(f"== mirror: {entries:,} entries, from the empty copy")
    leaves, note, vkey, checks = build_log(entries)
    with tempfile.TemporaryDirectory(prefix="mirror-bench-") as tmp:
        tmp = Path(tmp)
        write_tiles(tmp / "www", leaves, note)
        server, url = serve(tmp / "www")
        try:
            state = State(tmp / "state.sqlite")
            mirror = Mirror(state, ORIGIN, [parse_verifier_key(vkey)], Tiles(url), say)
            started = time.perf_counter()
            done = mirror.sync()
            seconds = time.perf_counter() - started
            if done.fault is not None or done.after != entries:
                raise SystemExit(f"the mirror did not verify the log: {done}")
            started = time.perf_counter()
            again = mirror.sync()
            idle = time.perf_counter() - started
            if again.fetched or again.fault is not None:
                raise SystemExit(f"a sync with nothing new did something: {again}")
        finally:
            server.terminate()
            server.wait()
        write_copy(state, ORIGIN, tmp / "copy")
        started = time.perf_counter()
        result = verify_copy(tmp / "copy", vkey, workers=0)
        offline = time.perf_counter() - started
        if not result.complete:
            raise SystemExit(f"the exported copy does not verify: {result.failures}")
        bare = bare_rate(checks)
    rate = entries / seconds
    say(
        f"  mirror sync (fetch, check, rebuild, store)   {rate:>10,.0f} entries/s  ({seconds:.2f} s)"
    )
    say(f"  a sync with nothing new                      {idle * 1000:>10.1f} ms")
    say(f"  offline verifier of the copy, one process    {entries / offline:>10,.0f} entries/s")
    say(f"  Ed25519 signature checks alone (ceiling)     {bare:>10,.0f} entries/s")
    say(f"  mirror / signature checks alone              {rate / bare:>10.2f}")
    say(f"  mirror / offline verifier                    {rate / (entries / offline):>10.2f}")


if __name__ == "__main__":
    main()
