"""The access log (every download served or refused) is evidence: the database refuses
UPDATE, DELETE and TRUNCATE on it, like on the ledger's history. The SQL is in
``ledger.migrations._triggers``; on PostgreSQL it calls ``ledger_refuse_change``,
which the ledger's migration 0002 creates.
"""

from django.db import migrations

from ledger.migrations import _triggers

TABLES = ["consortium_downloadevent"]


def install(apps, schema_editor):
    for sql in _triggers.append_only_sql(schema_editor.connection.vendor, TABLES):
        schema_editor.execute(sql, None)


def remove(apps, schema_editor):
    for sql in _triggers.append_only_remove_sql(schema_editor.connection.vendor, TABLES):
        schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [
        ("consortium", "0008_audit_exports"),
        ("ledger", "0002_append_only_triggers"),
    ]
    operations = [migrations.RunPython(install, remove, elidable=False)]
