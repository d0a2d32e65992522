"""Worlds built once per module.

Founding a consortium (keys, seats, signed entries) costs tens of milliseconds, and most
tests start from one of the worlds of tests/personas.py: the delegates' (``delegates``),
LUMI's (``lumi``), or LUMI with a published checkpoint (``checkpoint``). A module whose
every test starts from the same world may build it once: the world is written in a
transaction that every test of the module then runs inside, each test in a savepoint rolled
back after it (what ``django.test.TestCase.setUpTestData`` does for a class), and the whole
transaction is rolled back when the module ends.

A module opts in by naming the world it shares, e.g. ``lumi = worlds.shared("lumi")``, or
``lumi, checkpoint = (worlds.shared(n, world="published") for n in ("lumi", "checkpoint"))``.
Only a module whose every test uses that world may do so: a test that founds its own
consortium would find one there, and a test that needs real commits (``committed_db``)
cannot run inside the module's transaction (it fails, saying so). Files a test writes to
storage are not rolled back: a module whose tests change stored files keeps building its
world per test.
"""

from __future__ import annotations

import contextlib
import inspect

import pytest
from django.db import models, transaction

_open = 0


def is_open() -> bool:
    """Whether a module's world transaction is open (no test may commit then)."""
    return _open > 0


@contextlib.contextmanager
def kept_for_the_module(django_db_blocker):
    """Write the body's world in a transaction the module's tests run inside; roll it back
    at the end."""
    global _open
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        # Marked as a test case's own block, so services may open durable transactions
        # inside it, as they do inside each test's.
        atomic._from_testcase = True
        atomic.__enter__()
        _open += 1
        try:
            yield
        finally:
            _open -= 1
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def fresh(value):
    """The world's model instances read again, so no test sees another's changes in memory."""
    if isinstance(value, models.Model):
        return type(value).objects.get(pk=value.pk)
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(fresh(v) for v in value)
    return value


def shared(name: str, world: str | None = None):
    """The fixture ``name``, built once for the module by the module-scoped fixture
    ``<name>_world``; or, with ``world``, the item ``name`` of ``<world>_world`` (a world
    that holds several fixtures' values, e.g. ``lumi`` and its ``checkpoint``)."""
    source = f"{world or name}_world"

    def fixture(db, **kwargs):
        value = kwargs[source]
        return fresh(value[name] if world else value)

    # The world is an argument, not fetched inside: pytest sets up wider scopes first, so
    # it exists before the test's own transaction opens inside it.
    fixture.__signature__ = inspect.Signature(
        [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY) for p in ("db", source)]
    )
    fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)
