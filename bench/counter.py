"""Counter payments over HTTP, served as in production, against pgbench on the same PostgreSQL.

    make bench-counter                          # or: .venv/bin/python bench/counter.py
    make bench-counter WORKERS=2                # `mykey serve --workers 2`, if serve has it
    .venv/bin/python bench/counter.py --clients 1,8 --payments 400

On a fresh database of the PostgreSQL at MYKEY_BENCH_DATABASE_URL (default postgres on
127.0.0.1:5432; the JSON says `skipped` if unreachable) it makes a program, one shop, one
terminal key and one resident card (card simulator) per client, then for each client count
N (1, 8, 32):

1. starts `mykey serve` as production does (MYKEY_ENVIRONMENT=production, a signing key,
   the simulator CA as trust anchor; access log on; the history checkpoint job off, so the
   figures are the request path's);
2. starts N client processes (forked: nothing to import); each fetches its challenges from
   the server, signs them with its card, prepares every request body and makes one
   untimed payment (the server's pool and caches warm), then waits at a barrier;
3. runs `pgbench -b tpcb-like -c N` on its own database of the same server (scale 10) while
   the clients wait and the server idles; then reads pg_stat_database;
4. the clients open their HTTP connections (keep-alive) and wait at a second barrier; then
   the timed window: all clients POST /api/v1/terminal/payments back to back (closed loop),
   each with its prepared proofs;
5. stops the server (its database connections close, so their backends report their counts)
   and reads pg_stat_database again;
6. counts commits and round trips: N clients make a few more payments (`--counted`, same
   preparation and barriers) through a second, otherwise idle server connected to
   PostgreSQL through a counting proxy (bench/pgproxy.py).

Each run reports, from the timed window: `payments_per_s` (successful payments / seconds
from the start signal to the last client's last answer), `p50_ms` / `p99_ms` (per request, as
the client sees it), `server_cpu_ms_per_payment` (utime + stime of the `mykey serve` process
tree, /proc), `db_cpu_ms_per_payment` (the same for the PostgreSQL backends of the bench
database: the postmaster's children whose process title names it, sampled every 0.2 s),
`client_cpu_ms_per_payment` (the client processes' own CPU), `connections_opened_per_s`
(pg_stat_database.sessions between the two reads); from the counting pass:
`commits_per_payment` (transactions that ended in a commit, read from PostgreSQL's answers:
an explicit COMMIT or a statement in its own implicit transaction, read-only ones included,
which is what pg_stat_database.xact_commit counts) and `round_trips_per_payment` (the times
a server connection speaks after PostgreSQL has answered: pipelined statements count once;
a connection opened counts its start-up), with the messages by type. `ratio` is
payments_per_s / pgbench_tps. The load average is read before and after each window, and
`machine_busy_cores` says how many cores the whole machine kept busy during it (other
people's work included): on a shared machine, compare runs only at similar load.

Why commits are counted on the wire, not from pg_stat_database around the window: a
PostgreSQL 15 backend reports its counts at a transaction's end only if its last report is a
second old, and at exit; the server's pooled connections, idle after the preparation, were
measured keeping unreported commits for minutes, which the window's first transactions then
report. Sessions do not suffer from this (a backend's first report is immediate).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

import pgref
import procstat
from pgproxy import CountingProxy
from scratch import TENRI, on_scratch_postgres, tenri_points

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYKEY = Path(sys.executable).parent / "mykey"
POINTS = 100
TIMED_APP = "mykey-bench-timed"
ORDER = (
    "clients",
    "payments_per_s",
    "pgbench_tps",
    "ratio",
    "p50_ms",
    "p99_ms",
    "server_cpu_ms_per_payment",
    "db_cpu_ms_per_payment",
    "commits_per_payment",
    "round_trips_per_payment",
    "connections_opened_per_s",
    "load_average",
)
COUNTING_APP = "mykey-bench-counting"


BEGAN = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - BEGAN:5.0f} s] {message}", file=sys.stderr, flush=True)


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--clients",
        default=os.environ.get("MYKEY_BENCH_CLIENTS", "1,8,32"),
        help="client counts, comma-separated (default 1,8,32)",
    )
    parser.add_argument(
        "--payments",
        type=int,
        default=int(os.environ.get("MYKEY_BENCH_PAYMENTS", "400")),
        help="timed payments per run, shared among the clients (default 400)",
    )
    parser.add_argument(
        "--counted",
        type=int,
        default=int(os.environ.get("MYKEY_BENCH_COUNTED", "60")),
        help="payments per run through the counting proxy (default 60)",
    )
    parser.add_argument(
        "--pgbench-seconds",
        type=float,
        default=float(os.environ.get("MYKEY_BENCH_PGBENCH_SECONDS", "10")),
        help="seconds of pgbench at each client count (default 10)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ["MYKEY_BENCH_WORKERS"])
        if "MYKEY_BENCH_WORKERS" in os.environ
        else None,
        help="`mykey serve --workers N` (only if serve has the option; default: not passed)",
    )
    return parser.parse_args()


# ---------------------------------------------------------------- the client processes


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> tuple[int, bytes]:
    conn.request(method, path, body=body, headers=headers)
    answer = conn.getresponse()
    return answer.status, answer.read()


def client(
    n: int,
    port: int,
    terminal_key: str,
    card_key_pem: bytes,
    certificate_der: bytes,
    payments: int,
    tag: str,
    ready: Any,
    results: Any,
    barrier: Any,
    start: Any,
) -> None:
    """One counter terminal: prepares `payments` card proofs and request bodies, pays once
    (untimed), then after the barriers and the start signal pays back to back."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    card = serialization.load_pem_private_key(card_key_pem, None)
    assert isinstance(card, rsa.RSAPrivateKey)
    certificate = base64.b64encode(certificate_der).decode()
    headers = {"Authorization": f"Bearer {terminal_key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    bodies = []
    try:
        for i in range(payments + 1):
            status, data = _request(conn, "POST", "/api/v1/card/challenges", b"", {})
            if status != 201:
                raise RuntimeError(f"challenge: {status} {data[:300]!r}")
            challenge = json.loads(data)
            # what the card's JPKI application returns (identity/simulator.py, SimulatedCard)
            signature = card.sign(
                base64.b64decode(challenge["nonce"]), padding.PKCS1v15(), hashes.SHA256()
            )
            proof = {
                "certificate": certificate,
                "challenge_id": challenge["challenge_id"],
                "signature": base64.b64encode(signature).decode(),
            }
            body = {
                "card_proof": proof,
                "municipality": TENRI,
                "points": POINTS,
                "key": f"{tag}-{n}-{i}",
            }
            bodies.append(json.dumps(body).encode())
        status, data = _request(conn, "POST", "/api/v1/terminal/payments", bodies.pop(), headers)
        if status != 201:
            raise RuntimeError(f"warm-up payment: {status} {data[:300]!r}")
        conn.close()
        ready.put(n)
    except Exception as exc:
        ready.put(f"client {n}: {exc}")
        return
    barrier.wait()  # the parent has run pgbench and read the counters
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    _request(conn, "GET", "/favicon.ico", None, {})  # no database; opens the keep-alive
    barrier.wait()  # every client connected
    start.wait()
    cpu = time.process_time()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    sample = ""
    for body in bodies:
        t0 = time.perf_counter()
        status, data = _request(conn, "POST", "/api/v1/terminal/payments", body, headers)
        latencies.append(time.perf_counter() - t0)
        statuses[status] += 1
        if status != 201 and not sample:
            sample = data[:300].decode(errors="replace")
    finished = time.monotonic()
    conn.close()
    results.put(
        {
            "latencies": latencies,
            "statuses": dict(statuses),
            "sample": sample,
            "finished": finished,
            "cpu": time.process_time() - cpu,
        }
    )


class Clients:
    """N forked client processes, a barrier of N + 1 and a start event."""

    def __init__(
        self, port: int, keys: list[str], cards: list[Any], clients: int, payments: int, tag: str
    ) -> None:
        from cryptography.hazmat.primitives import serialization

        ctx = mp.get_context("fork")
        self.ready, self.results = ctx.Queue(), ctx.Queue()
        self.barrier, self.start = ctx.Barrier(clients + 1), ctx.Event()
        each = math.ceil(payments / clients)
        self.procs = [
            ctx.Process(
                target=client,
                args=(
                    n,
                    port,
                    keys[n],
                    cards[n].key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ),
                    cards[n].certificate_der,
                    each,
                    tag,
                    self.ready,
                    self.results,
                    self.barrier,
                    self.start,
                ),
                daemon=True,
            )
            for n in range(clients)
        ]
        for p in self.procs:
            p.start()
        for _ in self.procs:
            answer = self.ready.get(timeout=300)
            if isinstance(answer, str):
                self.stop()
                raise RuntimeError(answer)

    def connect(self) -> None:
        self.barrier.wait(timeout=120)  # go and connect
        self.barrier.wait(timeout=120)  # all connected

    def run(self) -> tuple[float, list[dict[str, Any]]]:
        """Release the clients; (the moment released, their results)."""
        started = time.monotonic()
        self.start.set()
        results = [self.results.get(timeout=600) for _ in self.procs]
        for p in self.procs:
            p.join(timeout=30)
        return started, results

    def stop(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()


# ---------------------------------------------------------------- set-up and the server


def seed(url: str, cards: list[Any]) -> list[str]:
    """A program, one shop and terminal key and one resident with points per card."""
    from mykey.db import UnitOfWork, make_engine
    from mykey.identity.keys import create_key
    from mykey.identity.proofs import VerifiedCard
    from mykey.identity.residents import create_mykey_id
    from mykey.migrations import upgrade
    from mykey.points.grants import grant_points
    from mykey.points.shops import set_shop

    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine)
    tenri_points(uow)
    keys = []
    for n, card in enumerate(cards):
        shop = f"bench-shop-{n}"
        set_shop(
            uow,
            shop_id=shop,
            name=f"ベンチ商店 {n}",
            municipality=TENRI,
            kind="shop",
            accepts=[TENRI],
        )
        keys.append(create_key(uow, role="terminal", label=f"register {n}", provider_id=shop)[0])
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
    engine.dispose()
    return keys


def ledger_check(url: str) -> bool:
    from mykey import ledger
    from mykey.db import UnitOfWork, make_engine

    engine = make_engine(url)
    report = ledger.check(UnitOfWork(engine))
    engine.dispose()
    if not report.ok:
        log(f"LEDGER CHECK FAILED: {report.problems[:5]}")
    return report.ok


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_has_workers() -> bool:
    out = subprocess.run([str(MYKEY), "serve", "--help"], capture_output=True, text=True)
    return "--workers" in out.stdout


class Server:
    """`mykey serve` in its own process, as production starts it."""

    def __init__(self, env: dict[str, str], workers: int | None, logfile: Path) -> None:
        self.port = free_port()
        command = [str(MYKEY), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if workers is not None:
            command += ["--workers", str(workers)]
        self.command = " ".join(command[:2] + command[6:])
        self.out = logfile.open("ab")
        self.proc = subprocess.Popen(command, env=env, stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mykey serve exited ({self.proc.returncode}); see {logfile}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                status, _ = _request(conn, "GET", "/healthz", None, {})
                conn.close()
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mykey serve did not answer; see {logfile}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def production_env(anchors: Path, name: str) -> dict[str, str]:
    """The environment `mykey serve` runs in for a benchmark: production, a fresh secret and
    log signing key, the simulator CA as trust anchor, no checkpoint job (the request path's
    figures alone); none of the caller's MYKEY_ settings."""
    from mykey.history.checkpoints import Signer

    env = {k: v for k, v in os.environ.items() if not k.startswith("MYKEY_")}
    env.update(
        MYKEY_ENVIRONMENT="production",
        MYKEY_SECRET_KEY=secrets.token_hex(32),
        MYKEY_LOG_SIGNING_KEY=Signer.generate(f"bench.mykey.invalid/{name}").key_string(),
        MYKEY_CARD_TRUST_ANCHORS=str(anchors),
        MYKEY_LOG_CHECKPOINT_SECONDS="0",
    )
    return env


def with_query(url: str, **params: str) -> str:
    parsed = make_url(url)
    return parsed.update_query_dict(params).render_as_string(hide_password=False)


# ---------------------------------------------------------------- one run


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def timed_run(
    n: int,
    opts: argparse.Namespace,
    env: dict[str, str],
    keys: list[str],
    cards: list[Any],
    admin: psycopg.Connection[Any],
    database: str,
    anchor: dict[str, Any],
    pm: int | None,
    logfile: Path,
) -> dict[str, Any]:
    server = Server(env, opts.workers, logfile)
    try:
        clients = Clients(server.port, keys, cards, n, opts.payments, f"timed{n}")
        log(f"  {n} client(s): pgbench tpcb-like ...")
        bench = pgref.run_pgbench(
            anchor, anchor["dbname"], n, opts.pgbench_seconds, pm, os.cpu_count() or 1
        )
        before = pgref.counters(admin, database)
        clients.connect()
        log(f"  {n} client(s): payments ...")
        load_before = procstat.load_average()
        busy = procstat.busy_seconds()
        server_cpu = procstat.CpuWatch(lambda: procstat.tree(server.proc.pid)).start()
        db_cpu = (
            procstat.CpuWatch(lambda: procstat.backends_of(pm, database)).start() if pm else None
        )
        started, results = clients.run()
        ended = max(r["finished"] for r in results)
        server_s = server_cpu.stop()
        db_s = db_cpu.stop() if db_cpu else None
        busy = procstat.busy_seconds() - busy
        load_after = procstat.load_average()
    finally:
        server.stop()
    pgref.wait_for_no_backends(admin, database, TIMED_APP)
    delta = pgref.counters(admin, database) - before
    seconds = ended - started
    latencies = [x for r in results for x in r["latencies"]]
    statuses: Counter[int] = Counter()
    for r in results:
        statuses.update({int(k): v for k, v in r["statuses"].items()})
    paid = statuses[201]
    failures = [r["sample"] for r in results if r["sample"]]
    if failures:
        log(f"  refused or failed: {dict(statuses)}; e.g. {failures[0]}")
    rate = paid / seconds
    return {
        "clients": n,
        "payments": paid,
        "failed": len(latencies) - paid,
        "seconds": round(seconds, 2),
        "payments_per_s": round(rate, 1),
        "pgbench_tps": bench["tps"],
        "ratio": round(rate / bench["tps"], 3) if bench["tps"] else None,
        "p50_ms": round(pgref.percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(pgref.percentile(latencies, 99) * 1000, 1),
        "pgbench_p50_ms": bench["p50_ms"],
        "pgbench_p99_ms": bench["p99_ms"],
        "server_cpu_ms_per_payment": rounded(server_s * 1000 / paid),
        "db_cpu_ms_per_payment": rounded(db_s * 1000 / paid) if db_s is not None else None,
        "client_cpu_ms_per_payment": rounded(sum(r["cpu"] for r in results) * 1000 / paid),
        "pgbench_db_cpu_ms_per_tx": bench["db_cpu_ms_per_tx"],
        "pgbench_client_cpu_ms_per_tx": bench["client_cpu_ms_per_tx"],
        "connections_opened_per_s": round(delta.sessions / seconds, 1),
        "machine_busy_cores": round(busy / seconds, 2),
        "load_average": {"before": load_before, "after": load_after},
    }


def counting_run(
    n: int,
    opts: argparse.Namespace,
    port: int,
    keys: list[str],
    cards: list[Any],
    proxy: CountingProxy,
) -> dict[str, Any]:
    clients = Clients(port, keys, cards, n, max(opts.counted, n), f"counted{n}")
    clients.connect()
    before = proxy.snapshot()
    _, results = clients.run()
    time.sleep(0.2)  # the last answers' bytes have passed the proxy before the results
    counted = proxy.snapshot() - before
    paid = sum(r["statuses"].get(201, 0) for r in results)
    kinds = {
        k: round(v / paid, 2)
        for k, v in sorted(counted.items())
        if k not in ("round_trips", "connections", "commits", "rollbacks")
    }
    return {
        "counted_payments": paid,
        "commits_per_payment": round(counted["commits"] / paid, 2),
        "rollbacks_per_payment": round(counted["rollbacks"] / paid, 2),
        "round_trips_per_payment": round(counted["round_trips"] / paid, 2),
        "messages_per_payment": kinds,
        "connections_opened": counted["connections"],
    }


# ---------------------------------------------------------------- the whole run


def measure(url: str, opts: argparse.Namespace, counts: list[int]) -> dict[str, Any]:
    from mykey.identity.simulator import SimulatorCA

    parsed = make_url(url)
    database = str(parsed.database)
    admin_url = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    anchor = {
        "host": parsed.host or "127.0.0.1",
        "port": str(parsed.port or 5432),
        "user": parsed.username or "postgres",
        "dbname": f"{database}_pgbench",
    }
    workers = opts.workers
    now = datetime.now(UTC)
    ca = SimulatorCA.create(now=now - timedelta(days=1))
    cards = [ca.issue(now=now - timedelta(hours=1)) for _ in range(max(counts))]
    tmp = Path(tempfile.mkdtemp(prefix="mykey-bench-counter-"))
    ca.save(tmp / "ca")
    log(f"seeding {len(cards)} shops, terminals and residents ...")
    keys = seed(url, cards)
    env = production_env(tmp / "ca" / "ca.pem", "counter")
    timed_env = {**env, "MYKEY_DATABASE_URL": with_query(url, application_name=TIMED_APP)}
    proxy = CountingProxy(anchor["host"], int(anchor["port"])).start()
    counting_url = with_query(
        parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        application_name=COUNTING_APP,
        sslmode="disable",
        gssencmode="disable",
    )
    counting_env = {**env, "MYKEY_DATABASE_URL": counting_url, "MYKEY_DAILY_EXPIRY": "false"}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{anchor["dbname"]}"')
        admin.execute(f'CREATE DATABASE "{anchor["dbname"]}"')
        try:
            log("pgbench -i -s 10 ...")
            pgref.pgbench_init(anchor, anchor["dbname"])
            log("starting the counting server ...")
            pm = pgref.postmaster(admin)
            counting = Server(counting_env, None, tmp / "counting-server.log")
            runs = []
            try:
                for n in counts:
                    run = timed_run(
                        n,
                        opts,
                        timed_env,
                        keys,
                        cards,
                        admin,
                        database,
                        anchor,
                        pm,
                        tmp / "server.log",
                    )
                    log(f"  {n} client(s): counting round trips ...")
                    run.update(counting_run(n, opts, counting.port, keys, cards, proxy))
                    run = {k: run[k] for k in ORDER} | {
                        k: v for k, v in run.items() if k not in ORDER
                    }
                    runs.append(run)
                    shown = ("payments_per_s", "pgbench_tps", "ratio", "p99_ms")
                    log(f"  {json.dumps({k: run[k] for k in shown})}")
            finally:
                log("stopping ...")
                counting.stop()
            server_info = {
                "command": "mykey serve" + (f" --workers {workers}" if workers else ""),
                "workers": workers or 1,
                "environment": "production",
                "log_checkpoint_seconds": 0,
            }
            version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            settings = {
                name: admin.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections")
            }
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{anchor["dbname"]}" WITH (FORCE)')
    log("ledger check ...")
    ok = ledger_check(url)
    shutil.rmtree(tmp, ignore_errors=True)  # kept if the run failed: the servers' logs
    return {
        "server": server_info,
        "postgresql": {"version": version, "settings": settings, "db_cpu_visible": pm is not None},
        "runs": runs,
        "ledger_check_ok": ok,
    }


def main() -> None:
    opts = options()
    counts = [int(c) for c in opts.clients.split(",")]
    if opts.workers is not None and not serve_has_workers():
        if opts.workers != 1:
            log(f"`mykey serve` has no --workers option here: cannot serve with {opts.workers}")
            sys.exit(2)
        opts.workers = None  # one process is what serve does without the option
    result: dict[str, Any] = {
        "benchmark": "counter payments over HTTP vs pgbench tpcb-like",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "payments_per_run": opts.payments,
        "card_proofs": "challenge fetched and signed by a simulator card before the timed part;"
        " the server verifies each proof (chain, signature, single use) in the payment",
    }
    try:
        result["pgbench"] = subprocess.run(
            ["pgbench", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        result["skipped"] = f"pgbench: {exc}"
        print(json.dumps(result, indent=2, ensure_ascii=False))
        sys.exit(1)
    log(f"PostgreSQL, clients {counts}, {opts.payments} payments per run ...")
    measured = on_scratch_postgres(
        PG_URL, "mykey_bench_counter", lambda url: measure(url, opts, counts)
    )
    result.update(measured)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    ok = measured.get("ledger_check_ok", False) and all(
        r["failed"] == 0 for r in measured.get("runs", [])
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
