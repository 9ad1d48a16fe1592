"""Alembic migrations, shipped inside the package so that an installed `mykey migrate` works."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the database to the newest revision; returns (before, after). Idempotent."""
    config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with engine.connect() as conn:
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


@cache
def head() -> str | None:
    """The newest revision this code ships (read from the scripts once: a probe asks for it
    every few seconds, and it cannot change while the process runs)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
