"""The database refuses to change or remove history.

Entries, stored tree hashes and checkpoints are append-only: BEFORE UPDATE and
BEFORE DELETE triggers on both engines, and a BEFORE TRUNCATE trigger on PostgreSQL
(SQLite has no TRUNCATE). A bug, a stray admin action or a compromised application
account cannot rewrite the log; only someone who can drop triggers (the database
owner or a superuser) could, and `ledger verify` would then find it.
"""

from django.db import migrations

TABLES = ["ledger_entry", "ledger_treehash", "ledger_checkpoint"]

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def install(apps, schema_editor):
    conn = schema_editor.connection
    if conn.vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION)
        for t in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                f"FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            )
            schema_editor.execute(
                f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
            )
    elif conn.vendor == "sqlite":
        for t in TABLES:
            for op in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} BEGIN "
                    f"SELECT RAISE(ABORT, 'ledger: {op} on {t} is refused: the table is append-only'); END"
                )
    else:
        raise RuntimeError(f"no append-only triggers for {conn.vendor}")


def remove(apps, schema_editor):
    conn = schema_editor.connection
    for t in TABLES:
        if conn.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}")
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {t}_no_update")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {t}_no_delete")
    if conn.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(install, remove, elidable=False)]
