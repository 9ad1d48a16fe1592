"""Which HTTP stack serves MyKey best on this machine (issue #14): requests per second and the
server's CPU per request, for a simple GET and a counter payment.

    .venv/bin/python bench/http_stack.py
    MYKEY_BENCH_STACKS=h11,httptools MYKEY_BENCH_WORKERS=1,2 MYKEY_BENCH_CLIENTS=32 \
        .venv/bin/python bench/http_stack.py

Each stack serves the app as `mykey serve` does (`mykey.web.app:serving_app`, settings from the
environment, no background work, no access log) on a scratch PostgreSQL database, in its own
server processes:

- `h11`: uvicorn with h11 and asyncio's loop (what `mykey serve` ran before issue #14);
- `httptools`: uvicorn with httptools and uvloop (`uvicorn[standard]`);
- `granian`: granian's ASGI server (Rust HTTP), if installed;
- `httptools-log`: `httptools` with uvicorn's access log on, as `mykey serve` logs.

With MYKEY_BENCH_POOLER_PORT (PgBouncer in transaction mode on that port of the same host, its
`*` entry passing any database on), the servers reach the database through it, with
MYKEY_DATABASE_PREPARED_STATEMENTS=MYKEY_BENCH_PREPARED_STATEMENTS (default false) and the
leader lock's session straight to PostgreSQL.

The load: CLIENTS client processes (plain `http.client`, one keep-alive connection each) start
together at a barrier and send for SECONDS. `GET /` is a sync route with no database (the HTTP
stack and FastAPI alone); a payment is `POST /api/v1/terminal/payments` with a card proof made
before the timed part. Server CPU is read from /proc for the server's processes (parent and
workers), PostgreSQL's from its backends; the load average is the machine's at the end of
each run. Prints one JSON object.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import procstat  # noqa: E402
from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.identity.keys import create_key  # noqa: E402
from mykey.identity.proofs import VerifiedCard  # noqa: E402
from mykey.identity.residents import create_mykey_id  # noqa: E402
from mykey.identity.simulator import SimulatedCard, SimulatorCA  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from mykey.points.grants import grant_points  # noqa: E402
from mykey.points.shops import set_shop  # noqa: E402
from scratch import TENRI, on_scratch_postgres, tenri_points  # noqa: E402

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
STACKS = os.environ.get("MYKEY_BENCH_STACKS", "h11,httptools,granian").split(",")
WORKERS = [int(w) for w in os.environ.get("MYKEY_BENCH_WORKERS", "1,2").split(",")]
CLIENTS = int(os.environ.get("MYKEY_BENCH_CLIENTS", "32"))
KINDS = os.environ.get("MYKEY_BENCH_KINDS", "get,payment").split(",")
REPEAT = int(os.environ.get("MYKEY_BENCH_REPEAT", "1"))  # rounds over the stacks, interleaved
SECONDS = float(os.environ.get("MYKEY_BENCH_SECONDS", "8"))
PAYMENTS = int(os.environ.get("MYKEY_BENCH_PAYMENTS", "1600"))  # proofs made per payment run
CARDS = 16
# PostgreSQL counts a new session when the backend reports its statistics: within 10 s of going
# idle (PGSTAT_IDLE_INTERVAL). Waiting that long before each reading puts every connection in
# the run it was opened in.
SETTLE = float(os.environ.get("MYKEY_BENCH_SETTLE", "11"))
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(url: str, cards: list[SimulatedCard]) -> list[str]:
    """A program, a shop, residents with points; returns one terminal key per client."""
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine)
    tenri_points(uow)
    set_shop(
        uow,
        shop_id="bench-shop",
        name="ベンチ商店",
        municipality=TENRI,
        kind="shop",
        accepts=[TENRI],
    )
    for n, card in enumerate(cards):
        who = f"BENCH{n:03d}"
        create_mykey_id(
            uow,
            card=VerifiedCard(card.card_key, card.certificate.not_valid_after_utc),
            password="bench password",
            mykey_id=who,
        )
        grant_points(
            uow,
            municipality=TENRI,
            mykey_id=who,
            actor="staff:bench",
            key=f"fill-{n}",
            reason="bench",
            points=100_000_000,
        )
    keys = [
        create_key(uow, role="terminal", label=f"register {n}", provider_id="bench-shop")[0]
        for n in range(CLIENTS)
    ]
    engine.dispose()
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(stack: str, workers: int, port: int) -> list[str]:
    app = "mykey.web.app:serving_app"
    if stack == "granian":
        return [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            app,
        ]
    http, loop = {
        "h11": ("h11", "asyncio"),
        "httptools": ("httptools", "uvloop"),
        "httptools-log": ("httptools", "uvloop"),
    }[stack]
    access_log = "--access-log" if stack.endswith("-log") else "--no-access-log"
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--http",
        http,
        "--loop",
        loop,
        "--workers",
        str(workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        access_log,
        "--log-level",
        "info" if stack.endswith("-log") else "warning",
        app,
    ]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes now (those gone count 0)."""
    return sum(procstat.cpu_seconds(pid) or 0.0 for pid in pids)


def postgres_backends() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "postgres: .*mykey_bench_stack"], capture_output=True)
    return [int(p) for p in out.stdout.split()]


def request(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers: dict
) -> tuple[int, bytes]:
    conn.request(method, path, body=body, headers=headers)
    answer = conn.getresponse()
    return answer.status, answer.read()


def client(
    port: int,
    kind: str,
    key: str,
    bodies: list[bytes],
    barrier: Any,
    seconds: float,
    results: Any,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    request(conn, "GET", "/", None, {})  # connected before the barrier
    barrier.wait()
    done = failed = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if kind == "get":
            started = time.perf_counter()
            status, _ = request(conn, "GET", "/", None, {})
            ok = status == 200
        else:
            if done + failed >= len(bodies):
                break
            started = time.perf_counter()
            status, _ = request(
                conn, "POST", "/api/v1/terminal/payments", bodies[done + failed], headers
            )
            ok = status == 201
        latencies.append(time.perf_counter() - started)
        done, failed = done + ok, failed + (not ok)
        if not ok:
            statuses[status] = statuses.get(status, 0) + 1
    results.put((done, failed, latencies, statuses))


def make_payment_bodies(port: int, cards: list[SimulatedCard], n: int, tag: str) -> list[bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    bodies = []
    for i in range(n):
        _, raw = request(conn, "POST", "/api/v1/card/challenges", b"", {})
        challenge = json.loads(raw)
        proof = cards[i % len(cards)].proof(
            challenge["challenge_id"], base64.b64decode(challenge["nonce"])
        )
        body = {"card_proof": proof, "municipality": TENRI, "points": 1, "key": f"{tag}-{i}"}
        bodies.append(json.dumps(body).encode())
    conn.close()
    return bodies


def sessions(url: str) -> int:
    """Connections ever opened to the database (PostgreSQL's pg_stat_database.sessions)."""
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def run(
    url: str, port: int, server: int, kind: str, keys: list[str], cards: list[SimulatedCard]
) -> dict:
    per_client: list[list[bytes]] = [[] for _ in range(CLIENTS)]
    if kind == "payment":
        bodies = make_payment_bodies(port, cards, PAYMENTS, f"pay-{uuid.uuid4().hex[:12]}")
        for i, body in enumerate(bodies):
            per_client[i % CLIENTS].append(body)
    time.sleep(SETTLE)  # before the clients connect (uvicorn closes idle connections after 5 s)
    opened0 = sessions(url)
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(CLIENTS + 1), ctx.Queue()
    procs = [
        ctx.Process(
            target=client,
            args=(port, kind, keys[i], per_client[i], barrier, SECONDS, results),
        )
        for i in range(CLIENTS)
    ]
    for p in procs:
        p.start()
    pids, db = procstat.tree(server), postgres_backends()
    barrier.wait()
    cpu0, db0, t0 = cpu_seconds(pids), cpu_seconds(db), time.perf_counter()
    outcomes = [results.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    cpu1, db1 = cpu_seconds(pids), cpu_seconds(db)
    time.sleep(SETTLE)
    opened = sessions(url) - opened0 - 1  # less the count's own connection
    for p in procs:
        p.join()
    done = sum(o[0] for o in outcomes)
    failed = sum(o[1] for o in outcomes)
    latencies = sorted(x for o in outcomes for x in o[2])
    refused: dict[str, int] = {}
    for o in outcomes:
        for status, count in o[3].items():
            refused[str(status)] = refused.get(str(status), 0) + count

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

    return {
        "requests": done,
        "failed": failed,
        "failed_statuses": refused,
        "per_s": round(done / elapsed, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "server_cpu_ms_per_request": round((cpu1 - cpu0) * 1000 / max(done, 1), 3),
        "server_cores_busy": round((cpu1 - cpu0) / elapsed, 2),
        "db_cpu_ms_per_request": round((db1 - db0) * 1000 / max(done, 1), 3),
        "db_connections_opened": opened,
        "load_average": round(os.getloadavg()[0], 2),
    }


def serve(url: str, stack: str, workers: int, ca_dir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYKEY_")}
    session_url = url
    pooler = os.environ.get("MYKEY_BENCH_POOLER_PORT")  # e.g. PgBouncer in transaction mode
    if pooler:
        url = make_url(url).set(port=int(pooler)).render_as_string(hide_password=False)
        env["MYKEY_DATABASE_PREPARED_STATEMENTS"] = os.environ.get(
            "MYKEY_BENCH_PREPARED_STATEMENTS", "false"
        )
    env |= {
        "MYKEY_DATABASE_URL": url,
        "MYKEY_DATABASE_SESSION_URL": session_url,
        "MYKEY_ENVIRONMENT": "test",
        "MYKEY_CARD_TRUST_ANCHORS": str(ca_dir / "ca.pem"),
        "MYKEY_DAILY_EXPIRY": "false",
        "MYKEY_LOG_CHECKPOINT_SECONDS": "0",
    }
    proc = subprocess.Popen(
        command(stack, workers, port),
        env=env,
        cwd=ca_dir.parent,
        start_new_session=True,
        stdout=subprocess.DEVNULL,  # the access log, where asked for, is written and dropped
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if request(conn, "GET", "/healthz", None, {})[0] == 200:
                seen = {request(conn, "GET", "/healthz", None, {})[0] for _ in range(3)}
                if seen == {200}:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"{stack} did not start")
        time.sleep(0.2)
    time.sleep(1.0)  # every worker up
    return proc, port


def measure(url: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    ca = SimulatorCA.create(now=now - timedelta(days=1))
    cards = [ca.issue(now=now - timedelta(hours=1)) for _ in range(CARDS)]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        ca_dir = Path(tmp) / "ca"
        ca.save(ca_dir)
        keys = prepare(url, cards)
        rounds = [(w, s) for w in WORKERS for _ in range(REPEAT) for s in STACKS]
        for workers, stack in rounds:
            if stack == "granian" and not (BIN / "granian").exists():
                continue
            proc, port = serve(url, stack, workers, ca_dir)
            try:
                for kind in KINDS:
                    log(f"{stack}, {workers} worker(s), {kind} …")
                    result = run(url, port, proc.pid, kind, keys, cards)
                    runs.append({"stack": stack, "workers": workers, "kind": kind} | result)
                    log(json.dumps(runs[-1]))
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    return {"runs": runs}


def main() -> None:
    result: dict[str, Any] = {
        "benchmark": "http_stack",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "clients": CLIENTS,
        "seconds": SECONDS,
    }
    result |= on_scratch_postgres(PG_URL, "mykey_bench_stack", measure)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
