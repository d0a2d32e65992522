"""The database refuses to change or remove history.

A bug, a stray admin action or a compromised application account cannot rewrite the
log; only someone who can drop triggers (the table owner or a superuser) could, and
`ledger verify` would then find it. The SQL is in ``_triggers``.
"""

from django.db import migrations

from ledger.migrations import _triggers


def install(apps, schema_editor):
    for sql in _triggers.install_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, None)


def remove(apps, schema_editor):
    for sql in _triggers.remove_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(install, remove, elidable=False)]
