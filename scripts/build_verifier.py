#!/usr/bin/env python3
"""Build ``dist/consortium-verify.pyz``: the offline verifiers as one file.

    python3 scripts/build_verifier.py [--output dist/consortium-verify.pyz]

The archive holds the project's pure modules (the ones ``ledger.audit``,
``ledger.provenance`` and ``consortium.audit.figures`` import, found by reading their import
statements) and a ``__main__`` that dispatches to them. It runs on any Python 3.11+
where PyNaCl is installed, and needs nothing else: the build refuses a module that
imports, at module level, anything but the standard library, PyNaCl and the project's
own pure modules. A package that is itself imported for its names (``ledger.audit``,
whose ``__init__`` gathers the verifier's public names from its modules) keeps its
``__init__``, collected and checked like any module; every other package on the way is
given an empty ``__init__``, so importing ``consortium.governance.voting`` does not import
the Django project.

The build is reproducible: the same sources give the same bytes (entries sorted, fixed
timestamps), so two auditors can compare the archive's SHA-256.

Needs only the standard library (no virtual environment).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "consortium", "contributions")
ENTRY_MODULES = ("ledger.audit", "ledger.provenance", "consortium.audit.figures")
# Imported at module level by the verifiers besides the standard library.
ALLOWED_THIRD_PARTY = {"nacl"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)

MAIN = '''"""consortium-verify: check the consortium ledger's artefacts offline.

Python 3.11+ and PyNaCl; no server, no Django, no network. {version}
"""

import sys

USAGE = """usage: consortium-verify.pyz COMMAND ...

commands:
  audit EXPORT.zip --vkey KEY [--policy POLICY]
                                     an audit export: manifest, checkpoints, key history,
                                     every entry's signature, the rebuilt tree, and the
                                     report's figures recomputed from the entries
  provenance DIR --bundle FILE --vkey KEY [--policy POLICY]
                                     downloaded checkpoint files against their provenance
                                     bundle
  tlog-proof FILE --leaf LEAF --policy POLICY
                                     a C2SP tlog-proof: an entry, its inclusion proof and
                                     the checkpoint's cosignatures against your policy
  copy DIR --vkey KEY                a log's copy, as a member's witness writes it
                                     (python -m ledger.witness export): every entry's
                                     signature, the key history, the rebuilt tree
  checkpoint NOTE --vkey KEY         a C2SP signed checkpoint
  inclusion ...                      an RFC 9162 inclusion proof
  consistency ...                    an RFC 9162 consistency proof
  version                            what this archive was built from

KEY is the log's verifier key, name+hex8+base64. For audit and provenance any key the
log has had will do: the log key's rotations, each signed by the old key and the new,
are followed from the genesis.

POLICY is your own C2SP tlog-policy file (the logs and witnesses you trust and the
quorum of cosignatures you require); without it, cosignatures are not checked.

Each command takes --help. Exit status: 0 verified; 1 something failed; 2 usage error;
3 (audit) nothing failed but some checks could not be made on this bundle.
"""
PROG = "consortium-verify.pyz"


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in ("audit", "provenance") and rest[:1] == ["verify"]:
        rest = rest[1:]  # as the subcommand's own usage line writes it
    if command == "version":
        print({version!r})
        return 0
    if sys.version_info < (3, 11):
        print("consortium-verify needs Python 3.11 or newer", file=sys.stderr)
        return 2
    try:
        import nacl.signing  # noqa: F401
    except ImportError:
        print("consortium-verify needs PyNaCl: pip install PyNaCl", file=sys.stderr)
        return 2
    if command == "audit":
        from consortium.audit.figures import main as audit

        return audit(["verify", *rest], prog=PROG + " audit")
    if command == "provenance":
        from ledger.provenance import main as provenance

        return provenance(["verify", *rest], prog=PROG + " provenance")
    if command in ("checkpoint", "inclusion", "consistency", "tlog-proof", "copy"):
        from consortium.audit.figures import main as audit

        return audit([command, *rest], prog=PROG)
    print(f"unknown command {{command!r}}\\n", file=sys.stderr)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


class BuildError(Exception):
    pass


def module_path(name: str) -> Path:
    base = ROOT.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    raise BuildError(f"no module {name} in {ROOT}")


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(every module imported anywhere in the file, those imported at module level)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    everywhere: set[str] = set()
    top: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        everywhere.update(names)
        if node in tree.body:
            top.update(names)
    return everywhere, top


def collect(
    entry_modules: tuple[str, ...] = ENTRY_MODULES, allowed: set[str] = ALLOWED_THIRD_PARTY
) -> dict[str, Path]:
    """The project modules the entry modules need, following their imports (those inside
    functions too, for the project's own modules)."""
    found: dict[str, Path] = {}
    todo = list(entry_modules)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = module_path(name)
        found[name] = path
        everywhere, top = imports(path)
        for imported in sorted(everywhere):
            root = imported.split(".")[0]
            if root in PACKAGES:
                # "from ledger.core import merkle" names a module or an attribute.
                try:
                    module_path(imported)
                except BuildError:
                    imported = imported.rsplit(".", 1)[0]
                if imported not in PACKAGES:
                    todo.append(imported)
            elif imported not in top:
                continue  # a library imported lazily, where only producing needs it
            elif root not in sys.stdlib_module_names and root not in allowed:
                raise BuildError(
                    f"{name} imports {imported} at module level: the archive may need only "
                    f"the standard library and {', '.join(sorted(allowed))}"
                )
    return found


def version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = f"{project['name']} {project['version']}"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        text += f", commit {commit}{' (modified)' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return text


def build(
    output: Path,
    entry_modules: tuple[str, ...] = ENTRY_MODULES,
    main: str = MAIN,
    allowed: set[str] = ALLOWED_THIRD_PARTY,
) -> str:
    """Write the archive of ``entry_modules`` and ``main`` (``{version}`` filled in) to
    ``output``; its SHA-256."""
    modules = collect(entry_modules, allowed)
    # A collected package (imported for its names) is its own __init__, kept as it is.
    files: dict[str, bytes] = {
        path.relative_to(ROOT).as_posix(): path.read_bytes() for path in modules.values()
    }
    # Every other package on the way gets an empty __init__ (the real ones may import
    # Django); a collected one must not be emptied, or its names would be lost.
    for name in modules:
        parts = name.split(".")
        for depth in range(1, len(parts)):
            init = "/".join(parts[:depth]) + "/__init__.py"
            if init not in files:
                files[init] = b""
    files["__main__.py"] = main.format(version=version()).encode()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    with open(tmp, "wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w") as zf:
            for arcname in sorted(files):
                info = zipfile.ZipInfo(arcname, FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, files[arcname])
    tmp.chmod(0o755)
    tmp.replace(output)
    return hashlib.sha256(output.read_bytes()).hexdigest()


def command_line(argv, *, prog: str, description: str, output: Path, build_it) -> int:
    """The command line both builders share: ``--output``, then ``build_it(output)``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--output",
        type=Path,
        default=output,
        help=f"Where to write it (default {output.relative_to(ROOT)}).",
    )
    args = parser.parse_args(argv)
    try:
        digest = build_it(args.output)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        shown = args.output.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = args.output
    print(f"{shown}  sha256 {digest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return command_line(
        argv,
        prog="scripts/build_verifier.py",
        description="Build the offline verifier as one file (a Python zip application).",
        output=ROOT / "dist" / "consortium-verify.pyz",
        build_it=build,
    )


if __name__ == "__main__":
    sys.exit(main())
