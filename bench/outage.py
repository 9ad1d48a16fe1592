"""What keeping pooled connections healthy costs per request on PostgreSQL; prints JSON.

    .venv/bin/python bench/outage.py
    MYKEY_BENCH_TRANSACTIONS=5000 .venv/bin/python bench/outage.py

Two ways not to hand out a connection that died with the server (issue #13):

- `pool_pre_ping`: SQLAlchemy sends `SELECT 1` on every checkout, i.e. one more round trip
  per transaction, always.
- what MyKey does: no ping; the first statement on a dead connection fails at once, SQLAlchemy
  invalidates the whole pool, and `UnitOfWork.run` runs the use case again on a new
  connection. Nothing per request; after an outage, one failed statement and one new
  connection (measured here as a transaction right after the pool was emptied).

Measured one transaction after another in this process on a scratch database of
MYKEY_BENCH_DATABASE_URL (default postgres on 127.0.0.1:5432): a read (`SELECT 1` in a
transaction) and a real write (`use_challenge`: the single use of a card's challenge, the
insert every card tap makes; issuing the challenge itself writes nothing since issue #14).
Times are wall-clock microseconds per transaction (median of the rounds).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.identity.proofs import use_challenge  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from scratch import on_scratch_postgres  # noqa: E402 -- bench/scratch.py, beside this file

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TRANSACTIONS = int(os.environ.get("MYKEY_BENCH_TRANSACTIONS", "3000"))
ROUNDS = 5


def _per_transaction(
    engines: dict[str, Engine], work: Callable[[UnitOfWork], object]
) -> dict[str, float]:
    """Microseconds per transaction on each engine: the median of ROUNDS rounds of
    TRANSACTIONS/ROUNDS, the engines' rounds interleaved (the machine's noise hits both)."""
    uows = {name: UnitOfWork(engine) for name, engine in engines.items()}
    for uow in uows.values():
        for _ in range(50):  # warm the pool and the statement caches
            work(uow)
    each = max(1, TRANSACTIONS // ROUNDS)
    rounds: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(ROUNDS):
        for name, uow in uows.items():
            started = time.perf_counter()
            for _ in range(each):
                work(uow)
            rounds[name].append((time.perf_counter() - started) / each * 1e6)
    return {name: round(statistics.median(times), 1) for name, times in rounds.items()}


def _read(uow: UnitOfWork) -> object:
    return uow.run(lambda: uow.connection.execute(text("SELECT 1")).scalar())


def _challenge(uow: UnitOfWork) -> object:
    return uow.run(lambda: use_challenge(uow, str(uuid.uuid4()), uow.now()))


def _reconnect(engine: Engine) -> float:
    """Microseconds of a transaction on a new connection (the pool emptied first)."""
    uow = UnitOfWork(engine)
    times = []
    for _ in range(20):
        engine.dispose()
        started = time.perf_counter()
        _read(uow)
        times.append((time.perf_counter() - started) * 1e6)
    return round(statistics.median(times), 1)


def measure(url: str) -> dict[str, Any]:
    upgrade(make_engine(url))
    plain = make_engine(url)
    pinged = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    try:
        result: dict[str, Any] = {}
        for name, work in (("read", _read), ("use_challenge", _challenge)):
            times = _per_transaction({"plain": plain, "pinged": pinged}, work)
            without, with_ping = times["plain"], times["pinged"]
            result[name] = {
                "us_per_transaction_no_ping": without,
                "us_per_transaction_pre_ping": with_ping,
                "pre_ping_adds_us": round(with_ping - without, 1),
                "pre_ping_adds_percent": round((with_ping - without) / without * 100, 1),
            }
        result["first_transaction_on_a_new_connection_us"] = _reconnect(plain)
        return result
    finally:
        plain.dispose()
        pinged.dispose()


def main() -> None:
    report = {
        "benchmark": "pooled connections after a database outage: pre-ping or invalidate",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "transactions": TRANSACTIONS,
        "postgresql": on_scratch_postgres(PG_URL, "mykey_bench_outage", measure),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
