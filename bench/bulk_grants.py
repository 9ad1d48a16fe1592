"""Bulk grant benchmark: 80,000 residents in one job (R4.4, Tsu's seniors), one run, printed JSON.

    make bench-bulk                 # or: .venv/bin/python bench/bulk_grants.py
    MYKEY_BENCH_ROWS=20000 make bench-bulk

On SQLite (a temporary file, WAL, synchronous=FULL) and on PostgreSQL (a fresh database on
MYKEY_BENCH_DATABASE_URL, default postgres on 127.0.0.1:5432; skipped with the reason shown if
unreachable), for each engine:

- the job: an eligibility list of ROWS MyKey IDs, sent through `submit_job` + `run_job` (the
  code path of `mykey grants bulk` and of the API's background job): read, check every row,
  grant all in one transaction;
- the reference, measured in the same run on the same database: `grant_points` one resident
  at a time (the single-grant use case, one transaction each) for REFERENCE_ROWS residents,
  and its rate extrapolated to ROWS.

`ledger.check` must pass after each. Times are wall-clock seconds.
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

from mykey import ledger  # noqa: E402
from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.demo import MUNICIPALITIES  # noqa: E402
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
REFERENCE_ROWS = int(os.environ.get("MYKEY_BENCH_REFERENCE_ROWS", "500"))
TSU = "242012"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(url: str) -> list[str]:
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
    ids = [f"S{n:07d}" for n in range(ROWS + REFERENCE_ROWS)]
    # MyKey IDs as rows: creating them through the use case costs an argon2 hash each.
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


def measure(url: str) -> dict[str, Any]:
    ids = prepare(url)
    engine = make_engine(url)
    job_ids, reference_ids = ids[:ROWS], ids[ROWS:]
    data = ("mykey_id\n" + "\n".join(job_ids) + "\n").encode()

    started = time.perf_counter()
    job = submit_job(
        UnitOfWork(engine),
        municipality=TSU,
        actor="staff:bench",
        key="bench-seniors",
        data=data,
        params=JobParams(activity="senior"),
    )
    job = run_job(UnitOfWork(engine), job.id, data)
    job_seconds = time.perf_counter() - started
    assert job.status == "done", job
    assert job.granted == ROWS, job

    uow = UnitOfWork(engine)
    started = time.perf_counter()
    for n, who in enumerate(reference_ids):
        grant_points(
            uow,
            municipality=TSU,
            mykey_id=who,
            actor="staff:bench",
            key=f"one-{n}",
            reason="敬老",
            activity="senior",
        )
    reference_seconds = time.perf_counter() - started
    report = ledger.check(uow)
    assert report.ok, report.problems
    engine.dispose()
    per_grant = reference_seconds / len(reference_ids)
    return {
        "rows": ROWS,
        "job_seconds": round(job_seconds, 2),
        "job_rows_per_second": round(ROWS / job_seconds),
        "reference": {
            "what": "grant_points one at a time (own transaction each)",
            "rows_measured": len(reference_ids),
            "ms_per_grant": round(per_grant * 1000, 2),
            "extrapolated_seconds_for_rows": round(per_grant * ROWS, 1),
        },
        "speedup": round(per_grant * ROWS / job_seconds, 1),
    }


def postgres() -> dict[str, Any]:
    return on_scratch_postgres(PG_URL, "mykey_bench_bulk", measure)


def main() -> None:
    result: dict[str, Any] = {
        "benchmark": "bulk_grants",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        log(f"SQLite: {ROWS:,} rows …")
        result["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'bench.db'}")
    log(f"PostgreSQL: {ROWS:,} rows …")
    result["postgresql"] = postgres()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
