"""Sealed hosted keys are added, never changed or removed: a rotation registers and
seals a new key, and the old row stays (it signed what it signed). The database
refuses UPDATE, DELETE and TRUNCATE on them like on history; the SQL is in ``_triggers``.
"""

from django.db import migrations

from ledger.migrations import _triggers

TABLES = ["ledger_sealedkey"]


class Migration(migrations.Migration):
    dependencies = [("ledger", "0007_log_head_never_removed")]
    operations = [_triggers.append_only(TABLES)]
