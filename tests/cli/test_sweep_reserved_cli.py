"""`mykey points sweep-reserved [--as-of DATE]` as an operator runs it, on both engines: the run
of Tokyo day D+14 takes nothing, the run of D+15 takes the points converted on day D (at
23:59:59) but not those converted a second later; exit codes, the progress bar, and a bad or
future date refused with a clear message and exit 2, changing nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from mykey.db import tokyo_date, utcnow
from tests.conftest import LOG_SIGNER, Database
from tests.points.test_reserved_sweep import held, tokyo, two_conversions

MYKEY = Path(sys.executable).parent / "mykey"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def sweep(database: Database, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in a working folder of its own, on the test's database, with a progress
    bar drawn as on a terminal (FORCE_COLOR), colour codes taken out of the output."""
    env = {
        **os.environ,
        "MYKEY_DATABASE_URL": database.url,
        "MYKEY_LOG_SIGNING_KEY": LOG_SIGNER.key_string(),
        "COLUMNS": "200",
        "FORCE_COLOR": "1",
    }
    done = subprocess.run(
        [str(MYKEY), "points", "sweep-reserved", *args],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, ANSI.sub("", done.stdout), ANSI.sub("", done.stderr)
    )


def test_sweep_reserved_as_of_tokyo_days(database: Database, tmp_path: Path) -> None:
    today = tokyo_date(utcnow())
    day = today - timedelta(days=30)  # day D: converted at 23:59:59, and 00:00:00 of D+1
    uow = two_conversions(database, day)
    database.clock.now = tokyo(today, 0, 0, 0)

    d14 = sweep(database, tmp_path, "--as-of", (day + timedelta(days=14)).isoformat())
    assert d14.returncode == 0, d14.stderr
    assert f"Assigned 0 points (+0 premium) of 0 residents as of {day + timedelta(days=14)}" in (
        d14.stdout
    )
    assert "Sweeping / 振り分け中" in d14.stderr and "1/1" in d14.stderr  # one resident checked
    assert held(uow) == (0, 3000)

    d15 = sweep(database, tmp_path, "--as-of", (day + timedelta(days=15)).isoformat())
    assert d15.returncode == 0, d15.stderr
    assert "Assigned 1,000 points (+0 premium) of 1 residents" in d15.stdout
    assert held(uow) == (1000, 2000)

    transfers = database.count("ledger_transfers")
    for bad, says in (
        ("someday", "--as-of is a date YYYY-MM-DD, not 'someday'"),
        ("2026-02-30", "--as-of is a date YYYY-MM-DD"),
        ((today + timedelta(days=1)).isoformat(), "is a day to come"),
    ):
        refused = sweep(database, tmp_path, "--as-of", bad)
        assert refused.returncode == 2, (bad, refused.stdout, refused.stderr)
        assert says in refused.stderr.replace("\n", " ")
        assert "Assigned" not in refused.stdout
    assert database.count("ledger_transfers") == transfers

    again = sweep(database, tmp_path, "--as-of", (day + timedelta(days=15)).isoformat())
    assert again.returncode == 0 and "Assigned 0 points" in again.stdout  # safe to run again
    today_run = sweep(database, tmp_path)  # no --as-of: today
    assert today_run.returncode == 0, today_run.stderr
    assert f"Assigned 2,000 points (+0 premium) of 1 residents as of {today}" in today_run.stdout
    assert held(uow) == (3000, 0)


def test_an_empty_sweep_on_a_fresh_database(database: Database, tmp_path: Path) -> None:
    empty = sweep(database, tmp_path, "--as-of", date(2026, 1, 5).isoformat())
    assert empty.returncode == 0, empty.stderr
    assert "Assigned 0 points (+0 premium) of 0 residents as of 2026-01-05" in empty.stdout
