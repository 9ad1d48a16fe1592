"""Bulk grant benchmark (R4.4, issue #15): the production path, with the history log.

    make bench-bulk                      # or: .venv/bin/python bench/bulk_grants.py
    MYKEY_BENCH_ROWS=20000 MYKEY_BENCH_MILLION=0 make bench-bulk   # smaller, no million

For each engine, on a fresh database (SQLite: a temporary file, WAL, synchronous=FULL;
PostgreSQL: a new database on MYKEY_BENCH_DATABASE_URL, default postgres on 127.0.0.1:5432,
never analysed before the job; skipped with the reason shown if unreachable):

- a job of ROWS (80,000: Tsu's residents aged 65 or over) through `submit_job` + `run_job`,
  the code path of `mykey grants bulk` and of the API's background job (read, check every
  row, grant all in one transaction), with the history log as production writes it (a leaf
  per transfer, in the transaction);
- on PostgreSQL also a job of 1,000,000 (a prefecture-wide campaign; MYKEY_BENCH_MILLION=0
  leaves it out);
- the reference, in the same run on the same database: `grant_points` one resident at a time
  (the single-grant use case, one transaction each, with the log) for REFERENCE_ROWS
  residents.

Beside each time: the process's CPU seconds (`time.process_time`), on PostgreSQL its backends'
(/proc, bench/procstat.py), and the load average before. `ledger.check` must pass after each.
It prints one JSON object: `{"postgresql": {"grant_80000_s": …, "grant_1000000_s": …,
"one_by_one_ms": …, …}, "sqlite": {"grant_80000_s": …, "one_by_one_ms": …, …}}`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import procstat  # noqa: E402 -- bench/procstat.py, beside this file
from mykey import ledger  # noqa: E402
from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.demo import MUNICIPALITIES  # noqa: E402
from mykey.history.checkpoints import Signer  # noqa: E402
from mykey.history.log import HistoryLog  # noqa: E402
from mykey.identity.models import Resident  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from mykey.municipalities.registry import upsert  # noqa: E402
from mykey.points.bulk import JobParams, run_job, submit_job  # noqa: E402
from mykey.points.grants import grant_points  # noqa: E402
from mykey.points.program_setup import Rule, set_up_program  # noqa: E402
from scratch import on_scratch_postgres  # noqa: E402 -- bench/scratch.py, beside this file

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROWS = int(os.environ.get("MYKEY_BENCH_ROWS", "80000"))
MILLION = 1_000_000 if os.environ.get("MYKEY_BENCH_MILLION", "1") != "0" else 0
REFERENCE_ROWS = int(os.environ.get("MYKEY_BENCH_REFERENCE_ROWS", "500"))
TSU = "242012"
LOG = HistoryLog(Signer("bench.mykey.invalid/history", bytes(32)))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(url: str, count: int) -> list[str]:
    """The program and `count` MyKey IDs (as rows: the use case costs an argon2 hash each)."""
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine)
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TSU,
        point_name="津市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=[Rule("senior", "敬老ポイント", 1000, "year")],
    )
    ids = [f"S{n:07d}" for n in range(count)]
    with uow:
        table = Resident.__table__
        assert isinstance(table, Table)
        for start in range(0, len(ids), 5000):
            uow.connection.execute(
                insert(table),
                [
                    {"mykey_id": m, "password_hash": "-", "created_at": uow.now()}
                    for m in ids[start : start + 5000]
                ],
            )
        uow.commit()
    engine.dispose()
    return ids


def _timed(engine: Any, database: str | None, run: Any) -> dict[str, Any]:
    """Run `run()`, with its wall time, this process's CPU and (PostgreSQL) its backends'."""
    watch = None
    if database is not None:
        with engine.connect() as conn:
            backend = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        postmaster = procstat.postmaster_of(backend)
        if postmaster is not None:
            watch = procstat.CpuWatch(lambda: procstat.backends_of(postmaster, database))
            watch.start()
    load = procstat.load_average()
    cpu = time.process_time()
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    figures: dict[str, Any] = {
        "s": round(seconds, 2),
        "client_cpu_s": round(time.process_time() - cpu, 2),
        "load_average_before": load,
    }
    if watch is not None:
        figures["db_cpu_s"] = round(watch.stop(), 2)
    return figures


def _job(engine: Any, ids: list[str], key: str) -> None:
    data = ("mykey_id\n" + "\n".join(ids) + "\n").encode()
    uow = UnitOfWork(engine, log=LOG)
    job = submit_job(
        uow,
        municipality=TSU,
        actor="staff:bench",
        key=key,
        data=data,
        params=JobParams(activity="senior"),
    )
    job = run_job(uow, job.id, data)
    assert job.status == "done", job
    assert job.granted == len(ids), job


def measure(url: str, *, million: bool = False) -> dict[str, Any]:
    sizes = [ROWS] + ([MILLION] if million and MILLION else [])
    ids = prepare(url, sum(sizes) + REFERENCE_ROWS)
    engine = make_engine(url)
    database = engine.url.database if engine.dialect.name == "postgresql" else None
    result: dict[str, Any] = {}
    start = 0
    for size in sizes:
        log(f"  a job of {size:,} …")
        part = ids[start : start + size]
        start += size
        figures = _timed(
            engine, database, lambda part=part, size=size: _job(engine, part, f"b{size}")
        )
        result[f"grant_{size}_s"] = figures["s"]
        result[f"grant_{size}"] = figures | {"rows_per_s": round(size / figures["s"])}
    reference = ids[start:]
    log(f"  {len(reference)} grants one by one …")
    uow = UnitOfWork(engine, log=LOG)

    def one_by_one() -> None:
        for n, who in enumerate(reference):
            grant_points(
                uow,
                municipality=TSU,
                mykey_id=who,
                actor="staff:bench",
                key=f"one-{n}",
                reason="敬老",
                activity="senior",
            )

    figures = _timed(engine, database, one_by_one)
    result["one_by_one_ms"] = round(figures["s"] * 1000 / len(reference), 2)
    result["one_by_one"] = figures | {"grants": len(reference)}
    report = ledger.check(uow)
    assert report.ok, report.problems
    engine.dispose()
    return result


def postgres() -> dict[str, Any]:
    return on_scratch_postgres(PG_URL, "mykey_bench_bulk", lambda u: measure(u, million=True))


def main() -> None:
    result: dict[str, Any] = {
        "benchmark": "bulk_grants",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    log(f"PostgreSQL: {ROWS:,} and {MILLION:,} rows …")
    result["postgresql"] = postgres()
    with tempfile.TemporaryDirectory() as tmp:
        log(f"SQLite: {ROWS:,} rows …")
        result["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'bench.db'}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
