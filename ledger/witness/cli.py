"""``python -m ledger.witness``: make a witness key, serve the witness, keep a verified copy
of the logs it witnesses (``mirror``, or ``serve --mirror``), and write that copy out."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ledger.core.note import NoteError, Verifier, b64decode_strict, parse_verifier_key
from ledger.witness.cosignature import generate_cosigner, parse_cosigner_skey


def keygen(args: argparse.Namespace) -> int:
    if args.algorithm == "ml-dsa-44":
        from ledger.witness.mldsa import generate_mldsa_cosigner

        try:
            cosigner = generate_mldsa_cosigner(args.name)
        except NoteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        cosigner = generate_cosigner(args.name)
    try:
        # O_EXCL: an existing key file is never overwritten; 0600: the owner alone reads it.
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"error: {args.out} exists; a witness key is never overwritten", file=sys.stderr)
        return 1
    with os.fdopen(fd, "w") as f:
        f.write(cosigner.skey() + "\n")
    print(cosigner.verifier.vkey())
    return 0


def parse_logs(specs: list[str]) -> dict[str, list[Verifier]]:
    """``"<origin> <log verifier key>"`` options, as origin -> its trusted keys."""
    logs: dict[str, list[Verifier]] = {}
    for spec in specs:
        origin, sep, vkey = spec.rpartition(" ")
        if not sep or not origin:
            raise NoteError(f"--log {spec!r} is '<origin> <log verifier key>'")
        logs.setdefault(origin, []).append(parse_verifier_key(vkey))
    return logs


def read_key(path: str):
    """The cosigner in a key file: Ed25519 (type 0x04) or ML-DSA-44 (type 0x06)."""
    text = Path(path).read_text()
    parts = text.strip().split("+", 4)  # base64 may contain "+"; names may not
    if len(parts) == 5 and b64decode_strict(parts[4], "signer key")[:1] == b"\x06":
        from ledger.witness.mldsa import parse_mldsa_skey

        return parse_mldsa_skey(text)
    return parse_cosigner_skey(text)


def serve(args: argparse.Namespace) -> int:
    from ledger.witness.protocol import Witness
    from ledger.witness.server import make_server
    from ledger.witness.state import State

    try:
        cosigners = [read_key(path) for path in args.key]
        logs = parse_logs(args.log)
    except (OSError, NoteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")
    state = State(args.state)
    witness = Witness(cosigners, state, logs)
    try:
        mirrors = make_mirrors(state, logs, args.mirror, args.token_file)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = make_server(host, int(port), witness, args.rate_limit, args.quiet)
    bound = server.server_address
    for cosigner in cosigners:
        print(f"witness {cosigner.verifier.vkey()}", flush=True)
    follower = None
    if mirrors:
        from ledger.witness.mirror import Follower

        follower = Follower(mirrors, args.mirror_interval, _say)
        follower.start()
        print(f"mirroring {len(mirrors)} log(s) every {args.mirror_interval:g} s", flush=True)
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if follower is not None:
            follower.stop()
        server.server_close()
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def make_mirrors(state, logs: dict[str, list[Verifier]], specs: list[str], token_file: str | None):
    """A ``Mirror`` per ``--mirror``, each on its log's ``--log`` keys."""
    if not specs:
        return []
    from ledger.witness.mirror import Mirror, Tiles, parse_mirror

    token = Path(token_file).read_text().strip() if token_file else None
    mirrors = []
    for spec in specs:
        origin, url = parse_mirror(spec)
        if origin not in logs:
            raise ValueError(f"--mirror {origin!r}: no --log gives that log's key")
        mirrors.append(Mirror(state, origin, logs[origin], Tiles(url, token), _say))
    return mirrors


def mirror(args: argparse.Namespace) -> int:
    """Sync the copies once (``--once``), or every ``--interval`` seconds until stopped."""
    from ledger.witness.mirror import sync_all
    from ledger.witness.state import State

    try:
        logs = parse_logs(args.log)
        state = State(args.state)
        for origin in logs:
            state.add_log(origin)
        mirrors = make_mirrors(state, logs, args.mirror, args.token_file)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    while True:
        evidence, failed = sync_all(mirrors, _say)
        for m in mirrors:
            held = state.held(m.origin)
            print(f"{m.origin}: {held.size} entries verified and kept", flush=True)
        if args.once:
            return 1 if evidence else 3 if failed else 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


def export(args: argparse.Namespace) -> int:
    from ledger.witness.export import ExportError, write_copy
    from ledger.witness.state import State

    try:
        size = write_copy(State(args.state), args.origin, Path(args.out))
    except (OSError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {size} entries of {args.origin}, with the checkpoint that proves them")
    return 0


def parser(prog: str = "python -m ledger.witness") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="A C2SP tlog-witness v1.0.0 witness: cosigns a log's checkpoints "
        "(Ed25519 cosignature/v1) only when they extend what it cosigned before; with "
        "--mirror, also keeps a verified copy of every entry of the log.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="make a witness key file and print its verifier key")
    k.add_argument("--name", required=True, help="the witness's name, e.g. witness.example.org")
    k.add_argument(
        "--out", required=True, help="the key file to create (mode 0600; never overwritten)"
    )
    k.add_argument(
        "--algorithm",
        choices=["ed25519", "ml-dsa-44"],
        default="ed25519",
        help="ed25519: cosignature/v1 (default); ml-dsa-44: where the cryptography package "
        "provides it",
    )
    k.set_defaults(run=keygen)
    s = sub.add_parser("serve", help="serve POST /add-checkpoint and GET /<origin hash>/checkpoint")
    s.add_argument(
        "--key",
        action="append",
        required=True,
        help="a key file keygen wrote (repeat to cosign with several keys, e.g. an Ed25519 "
        "and an ML-DSA-44 one: one cosignature line each)",
    )
    s.add_argument("--state", required=True, help="the SQLite state file (created if absent)")
    s.add_argument(
        "--log",
        action="append",
        required=True,
        metavar='"ORIGIN VKEY"',
        help="a log to witness: its origin line and its verifier key (repeat for more logs, "
        "or for several keys of one log)",
    )
    s.add_argument(
        "--listen", default="127.0.0.1:7380", help="host:port (default %(default)s; port 0: any)"
    )
    s.add_argument(
        "--rate-limit",
        type=float,
        default=100.0,
        metavar="N",
        help="requests a second per client address, in bursts of N (default %(default)s; 0: no limit)",
    )
    s.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    _mirror_options(s, required=False)
    s.add_argument(
        "--mirror-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds between two syncs of the copies (default %(default)s)",
    )
    s.set_defaults(run=serve)
    m = sub.add_parser(
        "mirror",
        help="keep a verified copy of each --mirror log (every entry, every signature, the "
        "root), without serving",
    )
    m.add_argument("--state", required=True, help="the SQLite state file (created if absent)")
    m.add_argument(
        "--log",
        action="append",
        required=True,
        metavar='"ORIGIN VKEY"',
        help="a log and its verifier key, as for serve (repeat)",
    )
    _mirror_options(m, required=True)
    m.add_argument("--once", action="store_true", help="sync once and exit (else: until stopped)")
    m.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds between two syncs (default %(default)s)",
    )
    m.set_defaults(run=mirror)
    e = sub.add_parser(
        "export",
        help="write a log's verified copy (its leaves in order and the log's checkpoint) to a "
        "directory, for consortium-verify.pyz copy",
    )
    e.add_argument("--state", required=True, help="the SQLite state file")
    e.add_argument("--origin", required=True, help="the log's origin line")
    e.add_argument("--out", required=True, help="the directory to create (must not exist)")
    e.set_defaults(run=export)
    return p


def _mirror_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--mirror",
        action="append",
        required=required,
        default=[],
        metavar='"ORIGIN URL"',
        help="keep a verified copy of a witnessed log: its origin and its C2SP tlog-tiles "
        "base URL, e.g. https://ledger.example.org/api/v1/ledger/tlog (repeat for more logs)",
    )
    p.add_argument(
        "--token-file",
        help="a file holding the bearer token the tiles are read with (one line)",
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog or "python -m ledger.witness").parse_args(argv)
    return args.run(args)
