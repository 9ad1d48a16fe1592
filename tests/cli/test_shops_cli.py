"""`mykey shops add|list|online-key` and `mykey points expire` as an operator runs them; the
daily expiry of `mykey serve` (the state is made in-process: each run of the CLI costs seconds)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from mykey.config import DEV_SECRET
from mykey.db import UnitOfWork, make_engine
from mykey.demo import MUNICIPALITIES
from mykey.identity.keys import authenticate
from mykey.ledger import AccountKind, balance, find_account
from mykey.migrations import upgrade
from mykey.municipalities.registry import upsert
from mykey.points.expiry import DailyJobs
from mykey.points.grants import grant_points
from mykey.points.online import verify_online_request
from mykey.points.partner_keys import sign
from mykey.points.program_setup import set_up_program
from tests.cli.test_cli import db, run  # noqa: F401 -- db is a fixture
from tests.points.test_accruals import make_residents

TENRI = "292044"


def _town(db: Path) -> UnitOfWork:  # noqa: F811 -- the fixture
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    uow = UnitOfWork(engine, clock=lambda: datetime(2026, 10, 15, 3, tzinfo=UTC))
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TENRI,
        point_name="天理市ポイント",
        terms="",
        validity={"budget": 1},
        usable_at=["shop", "online"],
        rules=[],
    )
    make_residents(uow, "CLISHOP1")
    grant_points(
        uow,
        municipality=TENRI,
        mykey_id="CLISHOP1",
        actor="staff:test",
        key="cli-1",
        reason="テスト",
        points=800,
    )
    return uow


def test_shops_and_expiry_from_the_command_line(db: Path) -> None:  # noqa: F811 -- the fixture
    _town(db)
    added = run(
        db,
        *("shops", "add", "tenri-shop1", "--name", "天理の本屋", "--municipality", TENRI),
        *("--kind", "shop", "--accepts", TENRI),
    )
    assert added.returncode == 0, added.stderr
    assert "accepts 292044" in added.stdout
    museum = run(
        db,
        *("shops", "add", "tenri-museum", "--name", "参考館", "--municipality", TENRI),
        *("--kind", "museum", "--accepts", TENRI),
    )
    assert museum.returncode == 1
    assert "kind_not_usable" in museum.stderr
    listed = run(db, "shops", "list", "--municipality", TENRI)
    assert listed.returncode == 0, listed.stderr
    assert "tenri-shop1" in listed.stdout and "tenri-museum" not in listed.stdout

    online = run(
        db,
        *("shops", "add", "tenri-furusato", "--name", "天理ふるさと便", "--municipality", TENRI),
        *("--kind", "online", "--accepts", TENRI),
    )
    assert online.returncode == 0, online.stderr
    issued = run(db, "shops", "online-key", "tenri-furusato", "--label", "furusato server")
    assert issued.returncode == 0, issued.stderr
    printed = {  # "API key / API キー:   mk_…" → {"API key": "mk_…"}
        line.split("/", 1)[0].strip(): line.split()[-1]
        for line in issued.stdout.splitlines()
        if line.startswith(("API key", "Signing secret"))
    }
    # the printed key and secret sign a request that the server accepts for this shop
    uow = UnitOfWork(make_engine(f"sqlite:///{db}"))
    principal = authenticate(uow, printed["API key"])
    body, timestamp = b"{}", str(int(datetime.now(UTC).timestamp()))
    target = "/api/v1/online/tenri-furusato/authorizations"
    signed_for = verify_online_request(
        uow,
        key_id=principal.key_id,
        method="POST",
        target=target,
        timestamp=timestamp,
        signature=sign(printed["Signing secret"], "POST", target, timestamp, body),
        body=body,
        secret_key=DEV_SECRET,
    )
    assert (signed_for, principal.provider_id) == ("tenri-furusato", "tenri-furusato")
    counter_shop = run(db, "shops", "online-key", "tenri-shop1")
    assert counter_shop.returncode == 1
    assert "not_an_online_shop" in counter_shop.stderr

    first = run(db, "points", "expire", "--as-of", "2026-11-15")
    assert first.returncode == 0, first.stderr
    assert "Expired 1 lots, 800 points" in first.stdout
    again = run(db, "points", "expire", "--as-of", "2026-11-15")
    assert again.returncode == 0, again.stderr
    assert "Expired 0 lots, 0 points" in again.stdout


def test_the_daily_expiry_runs_once_a_tokyo_day(db: Path) -> None:  # noqa: F811 -- the fixture
    uow = _town(db)
    now = [datetime(2026, 11, 14, 14, 59, tzinfo=UTC)]  # 23:59 on the lot's last day in Tokyo
    daily = DailyJobs(lambda: UnitOfWork(uow.engine), lambda: now[0])
    first = daily.run_once()
    assert first is not None and first.lots == 0
    assert daily.run_once() is None  # the same Tokyo day: nothing to do
    now[0] = datetime(2026, 11, 14, 15, 1, tzinfo=UTC)  # 00:01 the next day in Tokyo
    second = daily.run_once()
    assert second is not None and (second.lots, second.points) == (1, 800)
    wallet = find_account(uow, ledger=TENRI, kind=AccountKind.WALLET, owner="CLISHOP1")
    assert balance(uow, wallet.id).available == 0
    assert daily.last_run == date(2026, 11, 15)
