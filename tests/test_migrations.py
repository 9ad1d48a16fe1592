"""Migrations go down to nothing and up again, on both engines, and `migrate` is idempotent."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mykey.migrations import alembic_config, head, upgrade
from tests.conftest import Database


def test_down_to_nothing_and_up_again(database: Database) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    with database.engine.begin() as conn:
        config = alembic_config(url)
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}

    before, after = upgrade(database.engine)

    assert (before, after) == (None, head())
    assert upgrade(database.engine) == (head(), head())
    assert "ledger_transfers" in inspect(database.engine).get_table_names()
