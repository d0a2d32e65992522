"""Append-only triggers, shared by migration 0002 and the tests that must get under them.

Entries, stored tree hashes and checkpoints are append-only: BEFORE UPDATE and
BEFORE DELETE triggers on both engines, and a BEFORE TRUNCATE trigger on PostgreSQL
(SQLite has no TRUNCATE).
"""

TABLES = ["ledger_entry", "ledger_treehash", "ledger_checkpoint"]

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def install_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        out = [PG_FUNCTION]
        for t in TABLES:
            out.append(
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                f"FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            )
            out.append(
                f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
            )
        return out
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} BEGIN "
            f"SELECT RAISE(ABORT, 'ledger: {op} on {t} is refused: the table is append-only'); END"
            for t in TABLES
            for op in ("UPDATE", "DELETE")
        ]
    raise RuntimeError(f"no append-only triggers for {vendor}")


def remove_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        out = []
        for t in TABLES:
            out.append(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}")
            out.append(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}")
        return [*out, "DROP FUNCTION IF EXISTS ledger_refuse_change()"]
    return [f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in TABLES for op in ("update", "delete")]
