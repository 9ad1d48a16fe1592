"""`mykey accruals` and `mykey rankings` as an operator runs them (each run of the CLI costs
seconds, so the state is made in-process)."""

from __future__ import annotations

from pathlib import Path

from mykey.db import UnitOfWork, make_engine
from mykey.demo import MUNICIPALITIES
from mykey.migrations import upgrade
from mykey.municipalities.registry import upsert
from mykey.points.grants import grant_points
from mykey.points.program_setup import Rule, set_up_program
from tests.cli.test_cli import db, run  # noqa: F401 -- db is a fixture
from tests.points.test_accruals import make_residents

TOSHIMA = "131164"


def test_rankings_show_and_accruals_close(db: Path) -> None:  # noqa: F811 -- the fixture
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    uow = UnitOfWork(engine)
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TOSHIMA,
        point_name="豊島区ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=[Rule("health_walk", "健康ウォーク", 500), Rule("care", "介護", 100, accrues=True)],
    )
    make_residents(uow, "CLIRANK1")
    for activity in ("health_walk", "care"):
        grant_points(
            uow,
            municipality=TOSHIMA,
            mykey_id="CLIRANK1",
            actor="staff:test",
            key=f"cli-{activity}",
            reason="ラリー",
            activity=activity,
        )
    engine.dispose()

    shown = run(
        db,
        *("rankings", "show", "--municipality", TOSHIMA, "--activity", "health_walk"),
        *("--from", "2026-04-01", "--to", "2027-03-31", "--minimum", "500"),
    )
    assert shown.returncode == 0, shown.stderr
    assert "CLIRANK1" in shown.stdout
    assert "500" in shown.stdout

    closed = run(db, "accruals", "close", "--municipality", TOSHIMA, "--fiscal-year", "2020")
    assert closed.returncode == 0, closed.stderr
    assert "0 payouts" in closed.stdout
    early = run(db, "accruals", "close", "--municipality", TOSHIMA, "--fiscal-year", "2100")
    assert early.returncode == 1
    assert "year_not_over" in early.stderr
