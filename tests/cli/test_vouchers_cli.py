"""`mykey points expire-vouchers` and the other daily jobs as an operator runs them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mykey.db import make_engine, tokyo_date, utcnow
from mykey.migrations import upgrade
from tests.cli.test_cli import db, run  # noqa: F401 -- db is a fixture


def test_expire_vouchers_command(db: Path) -> None:  # noqa: F811 -- the fixture
    upgrade(make_engine(f"sqlite:///{db}"))
    done = run(db, "points", "expire-vouchers", "--as-of", "2026-11-15")
    assert done.returncode == 0, done.stderr
    assert "Returned 0 vouchers, 0 points" in done.stdout
    assert run(db, "points", "expire-vouchers", "--as-of", "someday").returncode == 2


def test_the_daily_jobs_refuse_a_day_to_come(db: Path) -> None:  # noqa: F811 -- the fixture
    # Run early, an expiry takes what residents may still use today (a voucher or a lot is
    # good through its last day): each job refuses `--as-of` tomorrow and runs as of today.
    upgrade(make_engine(f"sqlite:///{db}"))
    today = tokyo_date(utcnow())
    tomorrow = (today + timedelta(days=1)).isoformat()
    for command in ("expire-vouchers", "expire", "sweep-reserved"):
        early = run(db, "points", command, "--as-of", tomorrow)
        assert early.returncode == 2, (command, early.stdout)
        assert f"--as-of {tomorrow} is a day to come" in early.stderr
        assert "まだ来ていない日" in early.stderr
        now = run(db, "points", command, "--as-of", today.isoformat())
        assert now.returncode == 0, (command, now.stderr)
        assert f"as of {today}" in now.stdout
    assert run(db, "ledger", "expire", "--as-of", tomorrow).returncode == 2
