"""A writer process for the concurrency and crash tests.

    python -m tests.ledger.writer --key <fingerprint> --count N [--batch B] [--tag T]

Appends ``count`` sample entries signed by the hosted key, ``batch`` per transaction,
printing the index of each committed transaction's last entry, one per line.
"""

import argparse
import os
import sys

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tag", default="w")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")
    django.setup()
    from django.db import transaction

    from ledger import services
    from ledger.keys import hosted_signer

    signer = hosted_signer(args.key)
    done = 0
    while done < args.count:
        n = min(args.batch, args.count - done)
        drafts = [
            services.Draft("test.sample", {"writer": args.tag, "n": done + i}) for i in range(n)
        ]
        with transaction.atomic(durable=True):
            out = services.entries_append(signer=signer, drafts=drafts)
        done += n
        print(out[-1].index, flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
