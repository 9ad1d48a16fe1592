"""Settlement benchmark: close and check a month of 1,000,000 transfers, one run, printed JSON.

    make bench-settle                 # or: .venv/bin/python bench/settle.py
    MYKEY_BENCH_TRANSFERS=100000 make bench-settle

On SQLite (a temporary file) and on PostgreSQL (a fresh database on MYKEY_BENCH_DATABASE_URL,
default postgres on 127.0.0.1:5432; skipped with the reason shown if unreachable):

- seed: TRANSFERS transfers of October 2026 in 3 municipality ledgers, written directly as
  multi-row inserts (`db.insert_many`, as the bulk paths do; not through HTTP or the
  per-transfer verb): partners funding points into each town's budget (`convert`), points
  taken by 100 shops per town (`spend`) and some given back (`refund`); then each account's
  counters set to the sum of its transfers, so `ledger.check` passes;
- close: `settlement.statements.close_month` for 2026-10 (every statement and its
  settlement transfer);
- check: `settlement.statements.check_month` (everything recomputed and compared).

Times are wall-clock seconds; `ledger.check` must pass after the close.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mykey import ledger  # noqa: E402
from mykey.db import UnitOfWork, insert_many, make_engine  # noqa: E402
from mykey.ledger import AccountKind  # noqa: E402
from mykey.ledger.models import TransferRow  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from mykey.settlement.statements import check_month, close_month  # noqa: E402
from scratch import on_scratch_postgres  # noqa: E402 -- bench/scratch.py, beside this file

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TRANSFERS = int(os.environ.get("MYKEY_BENCH_TRANSFERS", "1000000"))
SHOPS = 100
TOWNS = ("131164", "292044", "434248")
PARTNERS = ("jal", "docomo")
CHUNK = 20000
START = datetime(2026, 9, 30, 15, 0, tzinfo=UTC)  # 2026-10-01 00:00 Tokyo


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(url: str) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine, clock=lambda: START)
    accounts: dict[str, dict[str, list[int]]] = {}
    for code in TOWNS:
        ledger.open_ledger(uow, code=code, name=f"town {code}")
        budget = ledger.open_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        accounts[code] = {
            "budget": [budget.id],
            "partner": [
                ledger.open_account(uow, ledger=code, kind=AccountKind.PARTNER, owner=p).id
                for p in PARTNERS
            ],
            "shop": [
                ledger.open_account(uow, ledger=code, kind=AccountKind.SHOP, owner=f"s{i}").id
                for i in range(SHOPS)
            ],
        }
    table = cast(Table, TransferRow.__table__)
    rng = random.Random(6)
    month_seconds = 31 * 24 * 3600
    started = time.perf_counter()
    done = 0
    with engine.begin() as conn:
        while done < TRANSFERS:
            rows: list[dict[str, Any]] = []
            for _ in range(min(CHUNK, TRANSFERS - done)):
                code = TOWNS[done % len(TOWNS)]
                a = accounts[code]
                roll = rng.random()
                if roll < 0.05:
                    kind, debit, credit = "convert", rng.choice(a["partner"]), a["budget"][0]
                elif roll < 0.95:
                    kind, debit, credit = "spend", a["budget"][0], rng.choice(a["shop"])
                else:
                    kind, debit, credit = "refund", rng.choice(a["shop"]), a["budget"][0]
                moment = START + timedelta(seconds=month_seconds * done / TRANSFERS)
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "ledger": code,
                        "kind": kind,
                        "phase": "single",
                        "debit_account_id": debit,
                        "credit_account_id": credit,
                        "amount": rng.randint(1, 5000),
                        "actor": "bench",
                        "metadata": "{}",
                        "created_at": moment,
                    }
                )
                done += 1
            insert_many(conn, table, rows)
        # the counters are what the transfers say (ledger invariant 2)
        conn.execute(
            text(
                "UPDATE ledger_accounts SET"
                " debits_posted = (SELECT COALESCE(SUM(amount), 0) FROM ledger_transfers"
                "  WHERE debit_account_id = ledger_accounts.id),"
                " credits_posted = (SELECT COALESCE(SUM(amount), 0) FROM ledger_transfers"
                "  WHERE credit_account_id = ledger_accounts.id)"
            )
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return {"seed_s": round(time.perf_counter() - started, 2)}


def measure(url: str) -> dict[str, Any]:
    log(f"  seeding {TRANSFERS:,} transfers …")
    result: dict[str, Any] = {"transfers": TRANSFERS, **seed(url)}
    engine = make_engine(url)
    uow = UnitOfWork(engine)
    log("  closing 2026-10 …")
    started = time.perf_counter()
    report = close_month(uow, month="2026-10")
    result["close_s"] = round(time.perf_counter() - started, 2)
    result["statements"] = report.statements
    result["settlement_transfers"] = report.transfers
    log("  checking …")
    started = time.perf_counter()
    checked = check_month(uow, month="2026-10")
    result["check_s"] = round(time.perf_counter() - started, 2)
    result["check_ok"] = checked.ok
    started = time.perf_counter()
    again = close_month(uow, month="2026-10")
    result["reclose_s"] = round(time.perf_counter() - started, 3)
    assert again.status == "already_closed"
    report_ok = ledger.check(uow).ok
    result["ledger_check_ok"] = report_ok
    engine.dispose()
    return result


def postgres() -> dict[str, Any]:
    return on_scratch_postgres(PG_URL, "mykey_bench_settle", measure)


def main() -> None:
    result: dict[str, Any] = {
        "benchmark": "settle",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        log(f"SQLite: {TRANSFERS:,} transfers …")
        result["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'bench.db'}")
    log(f"PostgreSQL: {TRANSFERS:,} transfers …")
    result["postgresql"] = postgres()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
