"""What the benchmarks ask PostgreSQL: pgbench (the reference), per-database counters, backends.

Counters (`xact_commit`, `sessions`) come from pg_stat_database. A backend sends its counts to
the shared statistics when it has been idle a while (PostgreSQL 15: at most once a second while
busy, within 10 s of going idle) and when it exits, so a delta is exact only between moments
when the database's backends have reported everything: the benchmarks read the counters after
a quiet period or after the connections closed.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from procstat import CpuWatch, backends_of, postmaster_of


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Counters:
    commits: int
    rollbacks: int
    sessions: int

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.commits - other.commits,
            self.rollbacks - other.rollbacks,
            self.sessions - other.sessions,
        )


def counters(admin: psycopg.Connection[Any], database: str) -> Counters:
    """The database's commit, rollback and session counters now (`admin` must be an
    autocommit connection to another database, so that reading adds nothing)."""
    admin.execute("SELECT pg_stat_clear_snapshot()")
    row = admin.execute(
        "SELECT xact_commit, xact_rollback, sessions FROM pg_stat_database WHERE datname = %s",
        (database,),
    ).fetchone()
    assert row is not None
    return Counters(int(row[0]), int(row[1]), int(row[2]))


def wait_for_no_backends(
    admin: psycopg.Connection[Any], database: str, application: str | None = None
) -> None:
    """Wait until no connection to `database` (of `application`, if given) remains: their
    backends have exited and reported their counts."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND (%s::text IS NULL OR application_name = %s)",
            (database, application, application),
        ).fetchone()
        if row is not None and row[0] == 0:
            time.sleep(0.2)  # the exit's report follows the disconnection by a moment
            return
        time.sleep(0.1)
    raise RuntimeError(f"connections to {database} did not close")


def postmaster(admin: psycopg.Connection[Any]) -> int | None:
    """The postmaster's pid, if the server runs on this machine (its processes are visible)."""
    row = admin.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    parent = postmaster_of(int(row[0]))
    if parent is None or not backends_of(parent, "postgres"):
        return None
    return parent


def pgbench_command(conninfo: dict[str, str]) -> list[str]:
    return ["pgbench", "-h", conninfo["host"], "-p", conninfo["port"], "-U", conninfo["user"]]


def pgbench_init(conninfo: dict[str, str], database: str, scale: int = 10) -> None:
    """`pgbench -i` (which ends with VACUUM ANALYZE of its tables)."""
    subprocess.run(
        [*pgbench_command(conninfo), "-i", "-q", "-s", str(scale), database],
        check=True,
        capture_output=True,
    )


def run_pgbench(
    conninfo: dict[str, str],
    database: str,
    clients: int,
    seconds: float,
    pm: int | None,
    cpus: int,
) -> dict[str, Any]:
    """`pgbench -b tpcb-like -c clients` for `seconds`: transactions per second, latency, and
    the CPU per transaction of pgbench itself and of its PostgreSQL backends."""
    workdir = tempfile.mkdtemp(prefix="pgbench-")
    cmd = [
        *pgbench_command(conninfo),
        "-b",
        "tpcb-like",
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(clients, cpus)),
        "-T",
        str(max(1, round(seconds))),
        "-l",
        "--log-prefix",
        f"{workdir}/log",
        database,
    ]
    watch = CpuWatch(lambda: backends_of(pm, database), every=0.1).start() if pm else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    db_cpu = watch.stop() if watch else None
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"transactions actually processed: (\d+)", out).group(1))  # type: ignore[union-attr]
    latencies = []
    for path in Path(workdir).glob("log*"):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3:
                latencies.append(int(fields[2]) / 1e6)
    shutil.rmtree(workdir, ignore_errors=True)
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "tps": round(tps, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "db_cpu_ms_per_tx": round(db_cpu * 1000 / done, 3) if db_cpu and done else None,
        "client_cpu_ms_per_tx": round(client_cpu * 1000 / done, 3) if done else None,
    }
