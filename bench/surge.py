"""Launch surge: counter payments while residents' pages are flooded (issue #16), printed JSON.

    make bench-surge                          # or: .venv/bin/python bench/surge.py
    .venv/bin/python bench/surge.py --flood-rate 400 --payments 200

On a fresh database of the PostgreSQL at MYKEY_BENCH_DATABASE_URL (default postgres on
127.0.0.1:5432; `skipped` if unreachable), loopback only: `mykey serve` as production starts it
(one process, the default channel budgets of `mykey.web.surge`), seeded as `make bench-counter`
seeds it (bench/counter.py: a program, a shop, a terminal key and a resident card per payer).

1. **quiet**: PAYERS counter terminals pay back to back (closed loop, prepared card proofs,
   one keep-alive connection each, a start barrier), while residents read their points at the
   normal rate (`--normal-rate` requests/s, `GET /api/v1/me/points` with a session: a real
   page's reads);
2. **flood**: the same payments while residents read at 20 × that rate (`--flood-rate`), from
   FLOODERS processes of IN_FLIGHT threads, open loop (each request at its time, whatever the
   answers: a crowd reloading does not wait for the server), each with a 10 s timeout;
3. **the same flood without the budgets** (a second server, `MYKEY_CHANNEL_LIMITS` all 0): what
   they buy.

Bounded: PAYMENTS payments a phase, and the residents stop when the payers are done (or after
`--max-seconds`). It prints one JSON object: `payments_p99_ms_quiet`, `payments_p99_ms_flood`
(target ≤ 2 × quiet), `flood_answered_503_share`, `flood_timeouts` (target 0), with the rest of
each phase's figures and the load average beside them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import procstat
from counter import Clients, Server, production_env, seed, with_query
from pgref import percentile
from scratch import on_scratch_postgres

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAYERS = 4
FLOODERS = 4  # processes of the residents' crowd
IN_FLIGHT = 16  # … requests each may have in flight
TIMEOUT = 10.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=600, help="payments a phase (all payers)")
    parser.add_argument("--normal-rate", type=float, default=10.0, help="residents' requests/s")
    parser.add_argument("--flood-rate", type=float, default=200.0, help="… during the flood")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="bound of a phase")
    return parser.parse_args()


def reader(port: int, token: str, rate: float, stop: Any, deadline: float, results: Any) -> None:
    """One part of the residents' crowd: `GET /api/v1/me/points` every 1/rate s, open loop
    (each request at its time, on one of IN_FLIGHT threads with a keep-alive connection each),
    until `stop`; a request that finds every thread busy is counted `not_sent`."""
    headers = {"Authorization": f"Bearer {token}"}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    local = threading.local()
    lock = threading.Lock()
    busy = threading.BoundedSemaphore(IN_FLIGHT)

    def one() -> None:
        try:
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            t0 = time.perf_counter()
            local.conn.request("GET", "/api/v1/me/points", headers=headers)
            answer = local.conn.getresponse()
            answer.read()
            spent, outcome = time.perf_counter() - t0, str(answer.status)
        except TimeoutError:
            spent, outcome, local.conn = -1.0, "timeout", None
        except (OSError, http.client.HTTPException):
            spent, outcome, local.conn = -1.0, "error", None
        finally:
            busy.release()
        with lock:
            statuses[outcome] += 1
            if spent >= 0:
                latencies.append(spent)

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        due = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            due += 1 / rate
            if busy.acquire(blocking=False):
                pool.submit(one)
            else:
                with lock:
                    statuses["not_sent"] += 1
    results.put({"statuses": dict(statuses), "latencies": latencies})


def login(port: int, mykey_id: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"mykey_id": mykey_id, "password": "bench password"})
    conn.request("POST", "/api/v1/sessions", body, {"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    if answer.status != 201:
        raise RuntimeError(f"login: {answer.status} {data[:300]!r}")
    return str(json.loads(data)["token"])


def phase(
    server: Server,
    keys: list[str],
    cards: list[Any],
    tokens: list[str],
    rate: float,
    crowd: int,
    opts: argparse.Namespace,
    tag: str,
) -> dict[str, Any]:
    payers = Clients(server.port, keys, cards, PAYERS, opts.payments, tag)
    ctx = mp.get_context("fork")
    stop, results = ctx.Event(), ctx.Queue()
    deadline = time.monotonic() + opts.max_seconds
    readers = [
        ctx.Process(
            target=reader,
            args=(server.port, tokens[i % len(tokens)], rate / crowd, stop, deadline, results),
            daemon=True,
        )
        for i in range(crowd)
    ]
    payers.connect()
    for p in readers:
        p.start()
    time.sleep(1.0)  # the residents' load is on before the payers start
    load_before = procstat.load_average()
    server_cpu = procstat.CpuWatch(lambda: procstat.tree(server.proc.pid)).start()
    started, paid = payers.run()
    ended = max(r["finished"] for r in paid)
    server_s = server_cpu.stop()
    stop.set()
    read = [results.get(timeout=TIMEOUT * 3) for _ in readers]
    for p in readers:
        p.join(timeout=30)
    latencies = [x for r in paid for x in r["latencies"]]
    statuses: Counter[int] = Counter()
    for r in paid:
        statuses.update({int(k): v for k, v in r["statuses"].items()})
    answers: Counter[str] = Counter()
    for r in read:
        answers.update(r["statuses"])
    asked = sum(n for outcome, n in answers.items() if outcome != "not_sent")
    read_latencies = [x for r in read for x in r["latencies"]]
    return {
        "payments": statuses[201],
        "payments_failed": sum(statuses.values()) - statuses[201],
        "payments_per_s": round(statuses[201] / (ended - started), 1),
        "payments_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "payments_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "server_cpu_ms_per_payment": round(server_s * 1000 / max(1, statuses[201]), 2),
        "residents_rate": rate,
        "residents_requests": asked,
        "residents_answers": dict(answers),
        "residents_503_share": round(answers["503"] / asked, 3) if asked else None,
        "residents_timeouts": answers["timeout"],
        "residents_p99_ms": (
            round(percentile(read_latencies, 99) * 1000, 1) if read_latencies else None
        ),
        "load_average": {"before": load_before, "after": procstat.load_average()},
    }


def measure(url: str, opts: argparse.Namespace) -> dict[str, Any]:
    from mykey.identity.simulator import SimulatorCA

    now = datetime.now(UTC)
    ca = SimulatorCA.create(now=now - timedelta(days=1))
    cards = [ca.issue(now=now - timedelta(hours=1)) for _ in range(PAYERS)]
    tmp = Path(tempfile.mkdtemp(prefix="mykey-bench-surge-"))
    ca.save(tmp / "ca")
    log(f"seeding {PAYERS} shops, terminals and residents ...")
    keys = seed(url, cards)
    env = production_env(tmp / "ca" / "ca.pem", "surge")
    env["MYKEY_DATABASE_URL"] = with_query(url, application_name="mykey-bench-surge")
    server = Server(env, None, tmp / "server.log")
    try:
        tokens = [login(server.port, f"BENCH{n:03d}") for n in range(PAYERS)]
        log(f"quiet: payments, residents at {opts.normal_rate}/s ...")
        quiet = phase(server, keys, cards, tokens, opts.normal_rate, 1, opts, "quiet")
        log(f"  {json.dumps(quiet)}")
        log(f"flood: payments, residents at {opts.flood_rate}/s ...")
        flood = phase(server, keys, cards, tokens, opts.flood_rate, FLOODERS, opts, "flood")
        log(f"  {json.dumps(flood)}")
    finally:
        server.stop()
    log("flood again, on a server without the budgets (MYKEY_CHANNEL_LIMITS all 0) ...")
    unguarded_env = {**env, "MYKEY_CHANNEL_LIMITS": "resident=0, public=0, partner=0"}
    server = Server(unguarded_env, None, tmp / "server-unguarded.log")
    try:
        unguarded = phase(server, keys, cards, tokens, opts.flood_rate, FLOODERS, opts, "unguarded")
        log(f"  {json.dumps(unguarded)}")
    finally:
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "payments_p99_ms_quiet": quiet["payments_p99_ms"],
        "payments_p99_ms_flood": flood["payments_p99_ms"],
        "flood_answered_503_share": flood["residents_503_share"],
        "flood_timeouts": flood["residents_timeouts"],
        "p99_flood_over_quiet": round(flood["payments_p99_ms"] / quiet["payments_p99_ms"], 2),
        "payments_p99_ms_flood_without_budgets": unguarded["payments_p99_ms"],
        "flood_timeouts_without_budgets": unguarded["residents_timeouts"],
        "quiet": quiet,
        "flood": flood,
        "flood_without_budgets": unguarded,
    }


def main() -> None:
    opts = options()
    result: dict[str, Any] = {
        "benchmark": "surge",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "payers": PAYERS,
        "flooders": FLOODERS,
    }
    result.update(on_scratch_postgres(PG_URL, "mykey_bench_surge", lambda u: measure(u, opts)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
