"""The database's guards on evidence, shared by the migrations that install them.

Entries, stored tree hashes and checkpoints are append-only: BEFORE UPDATE and
BEFORE DELETE triggers on both engines, and a BEFORE TRUNCATE trigger on PostgreSQL
(SQLite has no TRUNCATE). ``append_only_sql`` puts the same guard on other tables
(sealed hosted keys, the access log); ``kept_sql`` refuses only the removal of rows
(the log head, which every append updates). The key registry has a guard of its own.
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
        return [PG_FUNCTION, *append_only_sql(vendor, TABLES)]
    return append_only_sql(vendor, TABLES)


def remove_sql(vendor: str) -> list[str]:
    out = append_only_remove_sql(vendor, TABLES)
    if vendor == "postgresql":
        out.append("DROP FUNCTION IF EXISTS ledger_refuse_change()")
    return out


def append_only_sql(vendor: str, tables: list[str]) -> list[str]:
    """Refuse UPDATE, DELETE and TRUNCATE on ``tables`` (PostgreSQL: needs the function
    ``ledger_refuse_change``, which migration 0002 creates)."""
    if vendor == "postgresql":
        out = []
        for t in tables:
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
            for t in tables
            for op in ("UPDATE", "DELETE")
        ]
    raise RuntimeError(f"no append-only triggers for {vendor}")


def append_only_remove_sql(vendor: str, tables: list[str]) -> list[str]:
    if vendor == "postgresql":
        out = []
        for t in tables:
            out.append(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}")
            out.append(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}")
        return out
    return [f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in tables for op in ("update", "delete")]


# Rows that change but are never removed (the log head: every append updates it).
PG_KEPT_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % is refused: its rows are never removed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def kept_sql(vendor: str, tables: list[str]) -> list[str]:
    """Refuse DELETE and TRUNCATE on ``tables``; UPDATE still works."""
    if vendor == "postgresql":
        out = [PG_KEPT_FUNCTION]
        for t in tables:
            out.append(
                f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} "
                f"FOR EACH ROW EXECUTE FUNCTION ledger_refuse_removal()"
            )
            out.append(
                f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_removal()"
            )
        return out
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} BEGIN "
            f"SELECT RAISE(ABORT, 'ledger: DELETE on {t} is refused: its rows are never removed'); END"
            for t in tables
        ]
    raise RuntimeError(f"no removal triggers for {vendor}")


def kept_remove_sql(vendor: str, tables: list[str]) -> list[str]:
    if vendor == "postgresql":
        out = []
        for t in tables:
            out.append(f"DROP TRIGGER IF EXISTS {t}_no_delete ON {t}")
            out.append(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}")
        return [*out, "DROP FUNCTION IF EXISTS ledger_refuse_removal()"]
    return [f"DROP TRIGGER IF EXISTS {t}_no_delete" for t in tables]


# The key registry is a projection, but a narrow one: a key's row never changes
# except to record its revocation, once, at the index of a revocation or rotation
# entry, and is never removed. Migration 0010 adds the log key's rotation.
REVOKING_KINDS = ("key.revoked", "key.rotated")
REVOKING_KINDS_0010 = ("key.revoked", "key.rotated", "log.key_rotated")

PG_KEY_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
       AND EXISTS (SELECT 1 FROM ledger_entry e WHERE e."index" = NEW.revoked_at
                   AND e.kind IN (KINDS))
       AND (NEW.fingerprint, NEW.public_key, NEW.kind, NEW.owner, NEW.custody, NEW.name,
            NEW.valid_from, NEW.registered_in)
           IS NOT DISTINCT FROM
           (OLD.fingerprint, OLD.public_key, OLD.kind, OLD.owner, OLD.custody, OLD.name,
            OLD.valid_from, OLD.registered_in) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ledger: % on ledger_key is refused: a key only ever gains its revocation', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def key_install_sql(vendor: str, kinds: tuple[str, ...] = REVOKING_KINDS) -> list[str]:
    """The key registry's guard; a revocation is accepted at the index of an entry of one
    of ``kinds``."""
    listed = ", ".join(f"'{k}'" for k in kinds)
    if vendor == "postgresql":
        return [
            PG_KEY_FUNCTION.replace("KINDS", listed),
            "CREATE TRIGGER ledger_key_guard BEFORE UPDATE OR DELETE ON ledger_key "
            "FOR EACH ROW EXECUTE FUNCTION ledger_key_guard()",
            "CREATE TRIGGER ledger_key_no_truncate BEFORE TRUNCATE ON ledger_key "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()",
        ]
    if vendor == "sqlite":
        same = " AND ".join(
            f"NEW.{c} IS OLD.{c}"
            for c in (
                "fingerprint",
                "public_key",
                "kind",
                "owner",
                "custody",
                "name",
                "valid_from",
                "registered_in",
            )
        )
        return [
            "CREATE TRIGGER ledger_key_guard_update BEFORE UPDATE ON ledger_key "
            "WHEN NOT (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL "
            'AND EXISTS (SELECT 1 FROM ledger_entry e WHERE e."index" = NEW.revoked_at '
            f"AND e.kind IN ({listed})) "
            f"AND {same}) BEGIN "
            "SELECT RAISE(ABORT, 'ledger: UPDATE on ledger_key is refused: a key only ever gains its revocation'); END",
            "CREATE TRIGGER ledger_key_guard_delete BEFORE DELETE ON ledger_key BEGIN "
            "SELECT RAISE(ABORT, 'ledger: DELETE on ledger_key is refused'); END",
        ]
    raise RuntimeError(f"no key triggers for {vendor}")


def key_guard_sql(vendor: str, kinds: tuple[str, ...]) -> list[str]:
    """Replace the key guard by one accepting revocations at entries of ``kinds`` (the
    truncate trigger is left as it is)."""
    if vendor == "postgresql":
        return [key_install_sql(vendor, kinds)[0]]
    return [
        "DROP TRIGGER IF EXISTS ledger_key_guard_update",
        key_install_sql(vendor, kinds)[0],
    ]


def key_remove_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS ledger_key_guard ON ledger_key",
            "DROP TRIGGER IF EXISTS ledger_key_no_truncate ON ledger_key",
            "DROP FUNCTION IF EXISTS ledger_key_guard()",
        ]
    return [
        "DROP TRIGGER IF EXISTS ledger_key_guard_update",
        "DROP TRIGGER IF EXISTS ledger_key_guard_delete",
    ]


def append_only(tables: list[str]):
    """A migration operation that makes ``tables`` append-only (and undoes it backwards)."""
    from django.db import migrations

    def install(apps, schema_editor):
        for sql in append_only_sql(schema_editor.connection.vendor, tables):
            schema_editor.execute(sql, None)

    def remove(apps, schema_editor):
        for sql in append_only_remove_sql(schema_editor.connection.vendor, tables):
            schema_editor.execute(sql, None)

    return migrations.RunPython(install, remove, elidable=False)
