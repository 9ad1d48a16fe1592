"""Triggers that make a table append-only on both engines (used by the migrations)."""

from __future__ import annotations

from alembic import op

PG_FUNCTION = "mykey_append_only"


def create_function() -> None:
    """The PostgreSQL trigger function (once, in the first migration)."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )


def drop_function() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")


def statements(dialect: str, table: str) -> list[str]:
    """The SQL that makes `table` append-only (also used by `mykey audit restore` to put back
    a trigger an attacker removed)."""
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
        ]
    return [
        f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for action in ("UPDATE", "DELETE")
    ]


def protect(*tables: str) -> None:
    """Refuse UPDATE and DELETE on these tables from now on."""
    for table in tables:
        for sql in statements(op.get_context().dialect.name, table):
            op.execute(sql)


def unprotect(*tables: str) -> None:
    for table in tables:
        if op.get_context().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
