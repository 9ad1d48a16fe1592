"""Ledger benchmark: our spend against pgbench's TPC-B-like transaction, same PostgreSQL, one run.

    make bench                      # or: .venv/bin/python bench/ledger.py
    MYKEY_BENCH_SECONDS=30 make bench

On PostgreSQL (MYKEY_BENCH_DATABASE_URL, default postgres on 127.0.0.1:5432) it creates a fresh
database with 10,000 resident wallets (three lots each, opened by real grant transfers) and
100 shops, then for N = 1, 2, 8 runs, interleaved on the same server:

- pgbench -b tpcb-like -c N (pgbench's default simple protocol) on its own database, scale 10;
- N worker processes, each a closed loop calling `mykey.ledger.transfer` (wallet -> shop, a
  spend that takes lots FIFO, with an idempotency key; 1 % of requests are retries of a key
  already sent, which must replay and must not pay again).

Then the same workers on SQLite (WAL, synchronous=FULL), where no pgbench anchor applies.
After every run `ledger.check` must pass. Prints one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import random
import re
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

from mykey import ledger  # noqa: E402
from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.errors import MyKeyError  # noqa: E402
from mykey.history.checkpoints import Signer  # noqa: E402
from mykey.history.log import HistoryLog  # noqa: E402
from mykey.ledger import AccountKind, LotTerms  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402

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


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


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


def worker(args: tuple[str, int, list[int], list[int], float, Any]) -> None:
    url, n, wallets, shops, seconds, queue = args
    engine = make_engine(url, pool_size=1)
    uow = UnitOfWork(engine, log=LOG)
    rng = random.Random(n)
    sent: list[dict[str, Any]] = []
    latencies: list[float] = []
    done = refused = replays = 0
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
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
    engine.dispose()
    queue.put({"done": done, "refused": refused, "replays": replays, "latencies": latencies})


def run_ours(url: str, clients: int, wallets: list[int], shops: list[int]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=((url, n, wallets, shops, SECONDS, queue),))
        for n in range(clients)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=SECONDS + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for r in results for x in r["latencies"]]
    done = sum(r["done"] for r in results)
    return {
        "transfers_per_s": round(done / SECONDS, 1),
        "transfers": done,
        "replays": sum(r["replays"] for r in results),
        "refused": sum(r["refused"] for r in results),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
    }


def check(url: str) -> bool:
    engine = make_engine(url)
    report = ledger.check(UnitOfWork(engine))
    engine.dispose()
    if not report.ok:
        log(f"LEDGER CHECK FAILED: {report.problems[:5]}")
    return report.ok


def run_pgbench(conninfo: dict[str, str], clients: int) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="pgbench-")
    cmd = [
        "pgbench",
        "-h",
        conninfo["host"],
        "-p",
        conninfo["port"],
        "-U",
        conninfo["user"],
        "-b",
        "tpcb-like",
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(int(SECONDS)),
        "-l",
        "--log-prefix",
        f"{workdir}/log",
        conninfo["dbname"],
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    latencies = []
    for path in Path(workdir).glob("log*"):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3:
                latencies.append(int(fields[2]) / 1e6)
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "tps": round(tps, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
    }


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
        "dbname": anchor_db,
    }
    subprocess.run(
        [
            "pgbench",
            "-i",
            "-q",
            "-s",
            "10",
            "-h",
            conninfo["host"],
            "-p",
            conninfo["port"],
            "-U",
            conninfo["user"],
            anchor_db,
        ],
        check=True,
        capture_output=True,
    )
    ours_url = url.set(database=ours_db).render_as_string(hide_password=False)
    wallets, shops = seed(ours_url)
    with psycopg.connect(admin.rsplit("/", 1)[0] + f"/{ours_db}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    with psycopg.connect(admin.rsplit("/", 1)[0] + f"/{anchor_db}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    runs: dict[str, Any] = {}
    for clients in CLIENTS:
        log(f"postgres, {clients} client(s): pgbench tpcb-like ...")
        anchor = run_pgbench(conninfo, clients)
        log(f"postgres, {clients} client(s): mykey spend ...")
        ours = run_ours(ours_url, clients, wallets, shops)
        runs[str(clients)] = {
            "ours": ours,
            "pgbench_tpcb_like": anchor,
            "ratio": round(ours["transfers_per_s"] / anchor["tps"], 3) if anchor["tps"] else None,
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
