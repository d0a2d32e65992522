"""One valid log key (the rotated ones stay, revoked), and the key registry's guard
accepts a log key's revocation at its ``log.key_rotated`` entry."""

from django.db import migrations, models

from ledger.migrations import _triggers


def guard_with_log_rotation(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in _triggers.key_guard_sql(vendor, _triggers.REVOKING_KINDS_0010):
        schema_editor.execute(sql, None)


def guard_without(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in _triggers.key_guard_sql(vendor, _triggers.REVOKING_KINDS):
        schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0009_verification_runs"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="key",
            name="ledger_key_one_log_key",
        ),
        migrations.AddConstraint(
            model_name="key",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "log"), ("revoked_at__isnull", True)),
                fields=("kind",),
                name="ledger_key_one_valid_log_key",
            ),
        ),
        migrations.RunPython(guard_with_log_rotation, guard_without, elidable=False),
    ]
