"""The database refuses to remove the log head row (DELETE, TRUNCATE); appends still
update it. Every append reads it under the sequence lock: a removed head stops the log.
The SQL is in ``_triggers``.
"""

from django.db import migrations

from ledger.migrations import _triggers

TABLES = ["ledger_loghead"]


def install(apps, schema_editor):
    for sql in _triggers.kept_sql(schema_editor.connection.vendor, TABLES):
        schema_editor.execute(sql, None)


def remove(apps, schema_editor):
    for sql in _triggers.kept_remove_sql(schema_editor.connection.vendor, TABLES):
        schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_entry_times_from_the_leaf")]
    operations = [migrations.RunPython(install, remove, elidable=False)]
