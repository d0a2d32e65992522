"""What ``manage.py demo`` tells a newcomer: where to log in, the tokens, and every
command to try, ready to paste (as JSON, or for a person at a terminal)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from django.conf import settings

from consortium.management.commands._demo_data import ENTITLED, REFUSED


def summary(
    *,
    url,
    username,
    password,
    tokens,
    vkey,
    checkpoint,
    export,
    verifier,
    evaluator,
    signatories,
    awaiting,
) -> dict:
    """Everything a newcomer needs, with every command ready to paste."""
    from consortium.access.entitlements import entitlement

    python = shown(Path(sys.executable))
    download_dir = shown(settings.VAR_DIR / "demo-download")
    bundle_file = shown(settings.VAR_DIR / "demo-bundle.json")
    answer_file = shown(settings.VAR_DIR / "demo-authorization.json")
    se, nl = tokens[ENTITLED], tokens[REFUSED]
    refused = entitlement(REFUSED, checkpoint)
    auth = "-H " + shlex.quote(f"Authorization: Bearer {tokens['secretariat']}")
    auth_se = "-H " + shlex.quote(f"Authorization: Bearer {se}")
    auth_nl = "-H " + shlex.quote(f"Authorization: Bearer {nl}")
    cp_url = f"{url}/api/v1/checkpoints/{checkpoint.digest}"
    # curl reads the URL and output of each file from a config on its standard input.
    to_config = (
        '\'import json; [print(f"url = \\"'
        + url
        + '{u}\\"\\noutput = \\"'
        + download_dir
        + '/{p}\\"") for p, u in json.load(open("'
        + answer_file
        + '"))["files"].items()]\''
    )
    commands = [
        {
            "what": "fetch the latest signed checkpoint (the secretariat's API token)",
            "command": f"curl -sS --fail {auth} {url}/api/v1/ledger/checkpoint",
        },
        {
            "what": f"may {REFUSED} download the checkpoint? (no: behind on its share)",
            "command": f"curl -sS --fail {auth_nl} "
            f"'{url}/api/v1/access/check?checkpoint={checkpoint.digest}'",
        },
        {
            "what": f"ask to download the checkpoint as {ENTITLED}'s signatory (entitled): an "
            "entry on the ledger and a short-lived token",
            "command": f"curl -sS --fail -X POST {auth_se} -H 'Content-Type: application/json' "
            f'-d \'{{"scope": "full_weights"}}\' -o {answer_file} {cp_url}/downloads',
        },
        {
            "what": f"download every file of it with curl, as {ENTITLED}'s signatory",
            "command": f"{shlex.quote(python)} -c {to_config} | "
            f"curl -sS --fail --create-dirs {auth_se} -K -",
        },
        {
            "what": "fetch the checkpoint's provenance bundle",
            "command": f"curl -sS --fail {auth_se} -o {bundle_file} {cp_url}/bundle",
        },
        {
            "what": "verify the downloaded files offline (Python and PyNaCl only)",
            "command": f"{shlex.quote(python)} {shlex.quote(verifier)} provenance {download_dir} "
            f"--bundle {bundle_file} --vkey {shlex.quote(vkey)}",
        },
    ]
    export_path = None
    if export is not None and export.status == "done":
        try:
            export_path = shown(Path(export.file.path))
        except NotImplementedError:  # an object store: fetch it through the API
            export_path = shown(settings.VAR_DIR / f"audit-{export.id}.zip")
            commands.append(
                {
                    "what": "fetch the audit export of everything",
                    "command": f"curl -sS --fail {auth} -o {export_path} "
                    f"{url}/api/v1/audit/exports/{export.id}/file",
                }
            )
        commands.append(
            {
                "what": "verify the audit export of everything offline, with its figures",
                "command": f"{shlex.quote(python)} {shlex.quote(verifier)} audit {export_path} "
                f"--vkey {shlex.quote(vkey)}",
            }
        )
    return {
        "url": url,
        "admin": {"url": f"{url}/admin/", "username": username, "password": password},
        "delegates": {code: user.username for code, user in signatories.items()},
        "delegates_password": password,
        "api_docs": f"{url}/api/v1/docs/",
        "tokens": tokens,
        "verifier_key": vkey,
        "verifier": verifier,
        "checkpoint": {
            "digest": checkpoint.digest,
            "name": checkpoint.name,
            "model": checkpoint.model_id,
            "files": [f["path"] for f in checkpoint.files],
        },
        "evaluator": evaluator,
        "entitled": ENTITLED,
        "refused": {"member": REFUSED, "rule": refused.rule, "figures": refused.figures},
        "awaiting_poland": awaiting,
        "audit_export": {"id": str(export.id), "file": export_path} if export_path else None,
        "commands": commands,
    }


def print_summary(stdout, style, info: dict) -> None:
    """The summary for a person at a terminal."""
    w = stdout.write
    led = info["ledger"]
    w(
        style.SUCCESS(
            f"Ledger: {led['entries']} entries; checkpoint at size {led['checkpoint_size']}."
        )
    )
    w("")
    w(f"Log in at {info['admin']['url']}")
    w(f"  username: {info['admin']['username']}")
    w(f"  password: {info['admin']['password']}")
    w("  or as a member's signatory, same password: " + ", ".join(info["delegates"].values()))
    waiting = info["awaiting_poland"]
    w(f"  (log in as delegate-pl: {len(waiting)} things await Poland: " + "; ".join(waiting) + ")")
    second = info.get("second_factor")
    if second:
        w("  then the second factor: every demo user has the same authenticator-app secret")
        w(f"    {second['totp_secret']}  ({second['otpauth_url']})")
        w("    type the code your app shows, or the one this prints:")
        w(f"    {second['code_command']}")
        w("    (on the Security page you may then add a passkey, at http://localhost:8000)")
    w(f"API docs at {info['api_docs']}")
    w(f"Verifier key: {info['verifier_key']}")
    w(
        f"Checkpoint {info['checkpoint']['name']} of {info['checkpoint']['model']}: "
        f"{info['entitled']} may download it; {info['refused']['member']} is refused "
        f"({info['refused']['rule']})."
    )
    w("")
    w("Try, with the server running (each command as printed, from this directory):")
    for c in info["commands"]:
        w(f"# {c['what']}")
        w(f"  {c['command']}")
    w("")
    w(
        f"The offline verifier is one file, {info['verifier']}: copy it to any machine with "
        "Python 3.11+ and PyNaCl."
    )


def shown(path: Path) -> str:
    """A path as a newcomer types it: relative to where the command runs, if inside it."""
    # Not resolved: a virtual environment's python is a link that must be kept as named.
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(os.path.abspath(Path.cwd())))
    except ValueError:
        return str(absolute)
