"""Ledger benchmark: our spend against pgbench's TPC-B-like transaction, same PostgreSQL, one run.

    make bench                      # or: .venv/bin/python bench/ledger.py
    MYKEY_BENCH_SECONDS=30 make bench

On PostgreSQL (MYKEY_BENCH_DATABASE_URL, default postgres on 127.0.0.1:5432) it creates a fresh
database with 10,000 resident wallets (three lots each, opened by real grant transfers) and
100 shops, then for N = 1, 2, 8 runs, interleaved on the same server:

- pgbench -b tpcb-like -c N (pgbench's default simple protocol) on its own database, scale 10;
- N worker processes, each a closed loop calling `mykey.ledger.transfer` (wallet -> shop, a
  spend that takes lots FIFO, with an idempotency key; 1 % of requests are retries of a key
  already sent, which must replay and must not pay again). Each worker imports and connects
  first; the timed window opens when all are ready (a start event), so no worker's start-up
  falls inside another's window, and lasts from that signal to the last worker's last call.

Beside each: CPU per call of the workers (their own process time: the "server side" here) and
of PostgreSQL's backends of the bench database (/proc, bench/procstat.py), and the commits per
call counted by pg_stat_database (read after the workers disconnected, so every count is in);
pgbench's figures get the same CPU measures per transaction. The load average is read before
and after each window, `machine_busy_cores` is the whole machine's (other work included).

Then the same workers on SQLite (WAL, synchronous=FULL), where no pgbench anchor applies.
After every run `ledger.check` must pass. Prints one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pgref  # noqa: E402
import procstat  # noqa: E402
from mykey import ledger  # noqa: E402
from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.errors import MyKeyError  # noqa: E402
from mykey.history.checkpoints import Signer  # noqa: E402
from mykey.history.log import HistoryLog  # noqa: E402
from mykey.ledger import AccountKind, LotTerms  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from pgref import percentile  # noqa: E402 -- bench/pgref.py, beside this file

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECONDS = float(os.environ.get("MYKEY_BENCH_SECONDS", "15"))
CLIENTS = [int(c) for c in os.environ.get("MYKEY_BENCH_CLIENTS", "1,2,8").split(",")]
WALLETS = int(os.environ.get("MYKEY_BENCH_WALLETS", "10000"))
SHOPS = 100
CODE = "131164"
# Every transfer writes its history leaf in its transaction, as in production (the integrator
# that numbers the leaves runs beside the server there; it is not part of this measurement).
LOG = HistoryLog(Signer("bench.mykey.invalid/history", bytes(range(32))))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(url: str) -> tuple[list[int], list[int]]:
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine, log=LOG)
    ledger.open_ledger(uow, code=CODE, name="豊島区ポイント")
    budget = ledger.open_account(uow, ledger=CODE, kind=AccountKind.BUDGET, owner=CODE)
    shops = [
        ledger.open_account(uow, ledger=CODE, kind=AccountKind.SHOP, owner=f"shop-{n}").id
        for n in range(SHOPS)
    ]
    wallets: list[int] = []
    expiries = (date(2027, 3, 31), date(2027, 6, 30), date(2027, 9, 30))
    started = time.perf_counter()
    for first in range(0, WALLETS, 1000):
        with uow:  # one transaction per thousand residents, through the real verbs
            for n in range(first, min(first + 1000, WALLETS)):
                w = ledger.open_account(
                    uow, ledger=CODE, kind=AccountKind.WALLET, owner=f"R{n:07d}"
                )
                wallets.append(w.id)
                for i, expiry in enumerate(expiries):
                    ledger.transfer(
                        uow,
                        debit=budget.id,
                        credit=w.id,
                        amount=2000,
                        kind="grant",
                        actor="bench:seed",
                        key=f"seed-{n}-{i}",
                        lot=LotTerms("budget", expiry),
                    )
            uow.commit()
    log(f"seeded {len(wallets)} wallets in {time.perf_counter() - started:.1f}s")
    engine.dispose()
    return wallets, shops


def worker(args: tuple[str, int, list[int], list[int], float, Any, Any, Any]) -> None:
    """One closed-loop client: imports and connects, says ready, waits for the start
    signal, then calls `ledger.transfer` for `seconds` and reports."""
    url, n, wallets, shops, seconds, ready, start, queue = args
    engine = make_engine(url, pool_size=1)
    uow = UnitOfWork(engine, log=LOG)
    with engine.connect() as conn:  # the first connection runs SQLAlchemy's dialect set-up
        conn.exec_driver_sql("SELECT 1")
    # ... whose counts a PostgreSQL backend may report only at exit (bench/pgref.py): close
    # it, and keep a fresh connection, which has run nothing, for the timed window
    engine.dispose()
    engine.connect().close()
    rng = random.Random(n)
    sent: list[dict[str, Any]] = []
    latencies: list[float] = []
    done = refused = replays = 0
    ready.put(n)
    start.wait()
    cpu = time.process_time()
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        if sent and rng.random() < 0.01:
            request = rng.choice(sent)
        else:
            request = {
                "debit": rng.choice(wallets),
                "credit": rng.choice(shops),
                "amount": rng.randint(1, 50),
                "kind": "spend",
                "actor": f"terminal:bench-{n}",
                "key": f"{os.getpid()}-{i}",
            }
            if len(sent) < 1000:
                sent.append(request)
        t0 = time.perf_counter()
        try:
            receipt = ledger.transfer(uow, **request)
        except MyKeyError:
            refused += 1
            continue
        finally:
            latencies.append(time.perf_counter() - t0)
        if receipt.replayed:
            replays += 1
        else:
            done += 1
    finished = time.monotonic()
    cpu = time.process_time() - cpu
    engine.dispose()
    queue.put(
        {
            "done": done,
            "refused": refused,
            "replays": replays,
            "latencies": latencies,
            "finished": finished,
            "cpu": cpu,
        }
    )


def run_ours(
    url: str,
    clients: int,
    wallets: list[int],
    shops: list[int],
    pg: tuple[psycopg.Connection[Any], str, int | None] | None = None,
) -> dict[str, Any]:
    """N worker processes, started together after all are ready; with `pg` (an admin
    connection, the database, the postmaster's pid) also PostgreSQL's side: the backends' CPU
    and the commits counted by pg_stat_database (read after the workers have disconnected)."""
    ctx = mp.get_context("spawn")
    ready, start, queue = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=((url, n, wallets, shops, SECONDS, ready, start, queue),))
        for n in range(clients)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    before = None
    db_watch = None
    if pg is not None:
        admin, database, pm = pg
        time.sleep(0.5)  # the closed set-up connections have reported as they exited
        before = pgref.counters(admin, database)
        if pm is not None:
            db_watch = procstat.CpuWatch(lambda: procstat.backends_of(pm, database)).start()
    load_before = procstat.load_average()
    busy = procstat.busy_seconds()
    started = time.monotonic()
    start.set()
    results = [queue.get(timeout=SECONDS + 120) for _ in procs]
    ended = max(r["finished"] for r in results)
    db_cpu = db_watch.stop() if db_watch else None
    busy = procstat.busy_seconds() - busy
    load_after = procstat.load_average()
    for p in procs:
        p.join()
    seconds = ended - started
    latencies = [x for r in results for x in r["latencies"]]
    done = sum(r["done"] for r in results)
    calls = len(latencies)
    out: dict[str, Any] = {
        "transfers_per_s": round(done / seconds, 1),
        "transfers": done,
        "replays": sum(r["replays"] for r in results),
        "refused": sum(r["refused"] for r in results),
        "seconds": round(seconds, 2),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "worker_cpu_ms_per_call": round(sum(r["cpu"] for r in results) * 1000 / calls, 3),
    }
    if pg is not None and before is not None:
        admin, database, _ = pg
        pgref.wait_for_no_backends(admin, database)
        delta = pgref.counters(admin, database) - before
        out["db_cpu_ms_per_call"] = round(db_cpu * 1000 / calls, 3) if db_cpu else None
        out["commits_per_call"] = round(delta.commits / calls, 3)
        out["rollbacks_per_call"] = round(delta.rollbacks / calls, 3)
    out["machine_busy_cores"] = round(busy / seconds, 2)
    out["load_average"] = {"before": load_before, "after": load_after}
    return out


def check(url: str) -> bool:
    engine = make_engine(url)
    report = ledger.check(UnitOfWork(engine))
    engine.dispose()
    if not report.ok:
        log(f"LEDGER CHECK FAILED: {report.problems[:5]}")
    return report.ok


def postgres_part() -> dict[str, Any]:
    url = make_url(PG_URL)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    ours_db, anchor_db = "mykey_bench", "mykey_bench_pgbench"
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in (ours_db, anchor_db):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("shared_buffers", "synchronous_commit", "fsync")
        }
    conninfo = {
        "host": url.host or "127.0.0.1",
        "port": str(url.port or 5432),
        "user": url.username or "postgres",
    }
    pgref.pgbench_init(conninfo, anchor_db)
    ours_url = url.set(database=ours_db).render_as_string(hide_password=False)
    wallets, shops = seed(ours_url)
    with psycopg.connect(admin.rsplit("/", 1)[0] + f"/{ours_db}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    runs: dict[str, Any] = {}
    with psycopg.connect(admin, autocommit=True) as monitor:
        pm = pgref.postmaster(monitor)
        for clients in CLIENTS:
            log(f"postgres, {clients} client(s): pgbench tpcb-like ...")
            anchor = pgref.run_pgbench(
                conninfo, anchor_db, clients, SECONDS, pm, os.cpu_count() or 1
            )
            log(f"postgres, {clients} client(s): mykey spend ...")
            ours = run_ours(ours_url, clients, wallets, shops, (monitor, ours_db, pm))
            runs[str(clients)] = {
                "ours": ours,
                "pgbench_tpcb_like": anchor,
                "ratio": round(ours["transfers_per_s"] / anchor["tps"], 3)
                if anchor["tps"]
                else None,
            }
    ok = check(ours_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in (ours_db, anchor_db):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return {"server": version, "settings": settings, "runs": runs, "ledger_check_ok": ok}


def sqlite_part() -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="mykey-bench-")
    url = f"sqlite:///{folder}/bench.db"
    wallets, shops = seed(url)
    runs = {}
    for clients in CLIENTS:
        log(f"sqlite, {clients} client(s): mykey spend ...")
        runs[str(clients)] = {"ours": run_ours(url, clients, wallets, shops)}
    ok = check(url)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "settings": {"journal_mode": "wal", "synchronous": "full"},
        "runs": runs,
        "ledger_check_ok": ok,
    }


def main() -> None:
    result: dict[str, Any] = {
        "benchmark": "ledger spend vs pgbench tpcb-like",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds_per_run": SECONDS,
        "wallets": WALLETS,
        "shops": SHOPS,
    }
    try:
        pgbench_version = subprocess.run(
            ["pgbench", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        result["pgbench"] = pgbench_version
        result["postgresql"] = postgres_part()
    except (OSError, subprocess.CalledProcessError, psycopg.OperationalError) as exc:
        result["postgresql"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    result["sqlite"] = sqlite_part()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    pg_ok = result["postgresql"].get("ledger_check_ok", True)
    sys.exit(0 if pg_ok and result["sqlite"]["ledger_check_ok"] else 1)


if __name__ == "__main__":
    main()
