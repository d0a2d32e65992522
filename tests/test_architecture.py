"""The house rules that keep the layers apart, checked on every run.

Layers, lowest first; a module may import its own layer and those below it, never one
above, at module level or inside a function (see docs/architecture.md):

    ledger  <  consortium.web  <  consortium.governance  <  contributions
            <  consortium.access  <  consortium.audit  <  the project (consortium itself)
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
