"""`mykey points expire-vouchers` as an operator runs it."""

from __future__ import annotations

from pathlib import Path

from mykey.db import make_engine
from mykey.migrations import upgrade
from tests.cli.test_cli import db, run  # noqa: F401 -- db is a fixture


def test_expire_vouchers_command(db: Path) -> None:  # noqa: F811 -- the fixture
    upgrade(make_engine(f"sqlite:///{db}"))
    done = run(db, "points", "expire-vouchers", "--as-of", "2026-11-15")
    assert done.returncode == 0, done.stderr
    assert "Returned 0 vouchers, 0 points" in done.stdout
    assert run(db, "points", "expire-vouchers", "--as-of", "someday").returncode == 2
