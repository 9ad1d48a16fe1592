"""A scratch PostgreSQL database for one benchmark run: made, measured on, dropped."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url


def on_scratch_postgres(
    pg_url: str, prefix: str, measure: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """Run `measure(url)` on a new database of the server at `pg_url` (dropped afterwards);
    `{"skipped": reason}` when the server cannot be reached."""
    url = make_url(pg_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{os.getpid()}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        return {"skipped": f"PostgreSQL not reachable at {url.render_as_string()}: {exc}"}
    try:
        return measure(url.set(database=name).render_as_string(hide_password=False))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
