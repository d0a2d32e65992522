"""The key registry only ever gains revocations: no other change, no removal.

The rows are a projection of the key entries, but appends trust them (which key may
sign at which index), so the database guards them like history. The SQL is in
``_triggers``.
"""

from django.db import migrations

from ledger.migrations import _triggers


def install(apps, schema_editor):
    for sql in _triggers.key_install_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, None)


def remove(apps, schema_editor):
    for sql in _triggers.key_remove_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_log_head_row")]
    operations = [migrations.RunPython(install, remove, elidable=False)]
