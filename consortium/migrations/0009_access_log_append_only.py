"""The access log (every download served or refused) is evidence: the database refuses
UPDATE, DELETE and TRUNCATE on it, like on the ledger's history. The SQL is in
``ledger.migrations._triggers``; on PostgreSQL it calls ``ledger_refuse_change``,
which the ledger's migration 0002 creates.
"""

from django.db import migrations

from ledger.migrations import _triggers

TABLES = ["consortium_downloadevent"]


class Migration(migrations.Migration):
    dependencies = [
        ("consortium", "0008_audit_exports"),
        ("ledger", "0002_append_only_triggers"),
    ]
    operations = [_triggers.append_only(TABLES)]
