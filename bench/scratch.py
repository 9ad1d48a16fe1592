"""A scratch PostgreSQL database for one benchmark run: made, measured on, dropped; and the
town every benchmark pays in."""

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


TENRI = "292044"


def tenri_points(uow: Any) -> None:
    """The demo's municipalities, and Tenri's points usable at shops, through the use cases:
    the town the benchmarks grant and pay in."""
    from mykey.demo import MUNICIPALITIES
    from mykey.municipalities.registry import upsert
    from mykey.points.program_setup import set_up_program

    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TENRI,
        point_name="天理市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=[],
    )
