"""The house rules that keep the layers apart, checked on every run.

Layers, lowest first; a module may import its own layer and those below it, never one
above, at module level or inside a function (see docs/architecture.md):

    ledger  <  consortium.web  <  consortium.governance  <  contributions
            <  consortium.access  <  consortium.audit  <  the project (consortium itself)

The layers above the ledger reach it through its surface (``ledger.services``) and the
few modules made to be used from outside it, never through its internals.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "consortium", "contributions")

# (prefix, layer): the longest matching prefix wins.
LAYERS = [
    ("ledger", 0),
    ("consortium.web", 1),
    ("consortium.governance", 2),
    ("contributions", 3),
    ("consortium.access", 4),
    ("consortium.audit", 5),
    ("consortium", 6),  # the project: settings, urls, celery, the demo and console commands
]
NAMES = {
    0: "ledger",
    1: "web",
    2: "governance",
    3: "contributions",
    4: "access",
    5: "audit",
    6: "project",
}
MAX_LINES = 500
# A module longer than MAX_LINES says why it is kept whole, in a comment near its top.
KEPT_WHOLE = "kept whole:"


def layer_of(module: str) -> int | None:
    for prefix, layer in sorted(LAYERS, key=lambda p: -len(p[0])):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield name.removesuffix(".__init__"), path


def imports_of(path: Path):
    """Every absolute import in the file, at module level or inside a function."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                # ``from consortium.audit import exports``: the module imported is
                # consortium.audit.exports (a name in a package's __init__ otherwise).
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def upward_imports() -> list[str]:
    found = []
    for name, path in modules():
        own = layer_of(name)
        for line, target in imports_of(path):
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                found.append(
                    f"{path.relative_to(ROOT)}:{line}: {name} ({NAMES[own]}) imports "
                    f"{target} ({NAMES[theirs]})"
                )
    return found


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule can fail: a governance module importing the access gate is caught."""
    package = tmp_path / "consortium" / "governance"
    package.mkdir(parents=True)
    (package / "leak.py").write_text(
        "def f():\n    from consortium.access import entitlements\n    return entitlements\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    monkeypatch.setattr(f"{__name__}.PACKAGES", ("consortium",))
    assert upward_imports() == [
        "consortium/governance/leak.py:2: consortium.governance.leak (governance) imports "
        "consortium.access.entitlements (access)"
    ]


# What the other packages may import from the ledger: its public surface for the domains,
# and the modules made to be used from outside it. ``None``: any name; a set: those names
# only; ``ALL``: the names the module lists in ``__all__``.
ALL = "__all__"
LEDGER_SURFACE = {
    "ledger.services": ALL,  # the surface: appends, keys, registries, errors, reads
    "ledger.core": None,  # pure primitives (envelopes, trees, notes, keyrings)
    "ledger.api": None,  # the REST plumbing the API modules build on
    "ledger.admin": {"ReadOnlyAdmin", "may_read_in"},  # the admins' base class, its check
    "ledger.display": None,  # the ledger's RFC 3339 times as people read them, for the admins
    "ledger.models": {"AppendOnly"},  # the append-only models' base class
    "ledger.export": None,  # the audit bundle the audit exports write
    "ledger.audit": None,  # the offline verifier the figures verifier extends
    "ledger.migrations._triggers": None,  # the append-only triggers migrations install
    "ledger.events": None,  # following the log: its feed, signed CloudEvents, their POST
    "ledger.reads": {"note_write", "replica_alias"},  # replica reads: the router applies them
}
# Beyond the surface, by exception: (module, import) -> why.
LEDGER_EXCEPTIONS = {
    ("consortium.management.commands.demo", "ledger.keys.EntrySigner"): (
        "the demo makes the key of an outside evaluator, whose seed the server never holds"
    ),
    ("consortium.management.commands.demo", "ledger.submissions.submit"): (
        "and submits the entry that evaluator signed, as any partner system would"
    ),
}
# The offline figures verifier stays pure (no Django): of the ledger, only these.
PURE = {"consortium.audit.figures": ("ledger.audit", "ledger.core")}
SERVICES = ROOT / "ledger" / "services.py"


def exported(path: Path) -> set[str]:
    """The names a module lists in its ``__all__``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def ledger_imports(path: Path):
    """What a module takes from the ledger: each import, and each name it reads through
    the ledger's services module (``from ledger import services as ledger``: ``ledger.X``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ledger" and node.level == 0:
            aliases |= {a.asname or a.name for a in node.names if a.name == "services"}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name == "ledger.services" and a.asname}
    for line, target in imports_of(path):
        if target == "ledger" or target.startswith("ledger."):
            yield line, target
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            yield node.lineno, f"ledger.services.{node.attr}"


def allowed(module: str, target: str, surface: set[str]) -> bool:
    for prefix, only in PURE.items():
        if module == prefix or module.startswith(prefix + "."):
            return any(target == p or target.startswith(p + ".") for p in only)
    if (module, target) in LEDGER_EXCEPTIONS:
        return True
    for home in sorted(LEDGER_SURFACE, key=len, reverse=True):
        if target == home or target.startswith(home + "."):
            name = target[len(home) + 1 :]
            names = LEDGER_SURFACE[home]
            if names is None:
                return True
            if names == ALL:
                return name == "" or name in surface
            return name in names
    return False


def reaches_past_the_surface() -> list[str]:
    surface = exported(SERVICES)
    found = []
    for name, path in modules():
        if layer_of(name) == 0:
            continue
        for line, target in sorted(set(ledger_imports(path))):
            if not allowed(name, target, surface):
                found.append(f"{path.relative_to(ROOT)}:{line}: {name} takes {target}")
    return found


def test_the_other_layers_import_the_ledger_through_its_surface():
    assert reaches_past_the_surface() == []


def test_the_surface_check_sees_an_internal_import(tmp_path, monkeypatch):
    """The rule can fail: the log's internals, a name the services do not export, a model
    other than the base class, and anything but the verifier in the pure figures."""
    package = tmp_path / "contributions"
    (package / "leak").mkdir(parents=True)
    (package / "leak" / "__init__.py").write_text(
        "from ledger import services as ledger\n"
        "from ledger.log import applier\n"
        "from ledger.models import AppendOnly, Entry\n"
        "ledger.append_signed, ledger.entry_append\n"
    )
    figures = tmp_path / "consortium" / "audit" / "figures"
    figures.mkdir(parents=True)
    (figures / "page.py").write_text(
        "from ledger.audit import run\nfrom ledger.services import Key\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert reaches_past_the_surface() == [
        "consortium/audit/figures/page.py:2: consortium.audit.figures.page takes "
        "ledger.services.Key",
        "contributions/leak/__init__.py:2: contributions.leak takes ledger.log.applier",
        "contributions/leak/__init__.py:3: contributions.leak takes ledger.models.Entry",
        "contributions/leak/__init__.py:4: contributions.leak takes ledger.services.append_signed",
    ]


@pytest.mark.parametrize("layer", sorted(NAMES))
def test_every_layer_has_a_home(layer):
    assert any(layer_of(name) == layer for name, _ in modules())


def test_long_modules_say_why_they_are_kept_whole():
    long = []
    for _, path in modules():
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES and not any(KEPT_WHOLE in line for line in lines[:40]):
            long.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
    assert long == []


REGISTRIES = """
import importlib, json, sys
import django
django.setup()
if sys.argv[1] == "everything":
    import pkgutil
    for package in ("ledger", "consortium", "contributions"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if ".migrations" not in info.name and not info.name.endswith("__main__"):
                importlib.import_module(info.name)
from ledger import log, replay, submissions
print(json.dumps({
    "appliers": sorted(log._appliers),
    "handlers": sorted(submissions._handlers),
    "followers": sorted(submissions._followers),
    "projections": sorted(m._meta.label for m in replay.projections()),
}))
"""


def registries(what: str) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", REGISTRIES, what],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "consortium.settings"},
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_django_setup_alone_registers_every_applier_projection_and_handler():
    """A Celery worker or ``ledger replay`` loads no URLconf and no admin: the apps' ready()
    must register what every domain module would."""
    at_setup = registries("setup")
    assert at_setup == registries("everything")
    assert "checkpoint.published" in at_setup["appliers"]
    assert "facility.registered" in at_setup["appliers"]
