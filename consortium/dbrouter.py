"""The database router of the replicas (``DATABASE_REPLICA_URLS``): the rules, and the
context the ledger's read endpoints enter, are in ``ledger.reads``."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from ledger.reads import note_write, replica_alias


class ReplicaRouter:
    """Sends the ORM's reads to the replica of ``ledger.reads.replica_reads``, when safe;
    writes always to the primary, and a write ends the request's replica reads."""

    def db_for_read(self, model, **hints):
        return replica_alias()

    def db_for_write(self, model, **hints):
        note_write()
        return None

    def allow_relation(self, obj1, obj2, **hints):
        # A replica holds the primary's very rows.
        dbs = {DEFAULT_DB_ALIAS, *settings.DATABASE_REPLICAS}
        if obj1._state.db in dbs and obj2._state.db in dbs:
            return True
        return None

    def allow_migrate(self, db, app_label, **hints):
        # A replica replays the primary's migrations; it is never migrated itself.
        return False if db in settings.DATABASE_REPLICAS else None
