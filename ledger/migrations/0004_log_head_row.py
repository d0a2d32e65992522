"""The single log head row, computed from the stored hashes of any existing log."""

from django.db import migrations


def create_head(apps, schema_editor):
    from ledger.core import merkle

    db = schema_editor.connection.alias
    Entry = apps.get_model("ledger", "Entry")
    TreeHash = apps.get_model("ledger", "TreeHash")
    LogHead = apps.get_model("ledger", "LogHead")
    last = Entry.objects.using(db).order_by("-index").values_list("index", flat=True).first()
    size = 0 if last is None else last + 1
    need = merkle.root_indexes(size)
    found = {h.idx: bytes(h.hash) for h in TreeHash.objects.using(db).filter(idx__in=need)}
    LogHead.objects.using(db).create(id=1, size=size, frontier=b"".join(found[i] for i in need))


def drop_head(apps, schema_editor):
    apps.get_model("ledger", "LogHead").objects.using(schema_editor.connection.alias).all().delete()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_log_head")]
    operations = [migrations.RunPython(create_head, drop_head)]
