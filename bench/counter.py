"""Counter payments per second through real HTTP (R6.1), beside the in-process ledger figure.

    make bench-counter             # or: .venv/bin/python bench/counter.py
    MYKEY_BENCH_PAYMENTS=2000 MYKEY_BENCH_CLIENTS=8 make bench-counter

On SQLite (a temporary file) and PostgreSQL (a fresh database on MYKEY_BENCH_DATABASE_URL,
default postgres on 127.0.0.1:5432; skipped with the reason shown if unreachable):

- HTTP: the app under uvicorn on loopback (one process, its default thread pool), CLIENTS
  threads each with its own httpx client and terminal key, POST /api/v1/terminal/payments.
  Card proofs are PREPARED BEFOREHAND, outside the timed part: for each payment a challenge is
  fetched and signed by a simulator card (a challenge lives 60 s, so the run goes in rounds of
  ROUND payments: prepare, then time). The server still verifies every proof (certificate
  chain, RSA signature, single use of the challenge), looks the card up, and pays.
- In-process: `ledger.transfer` wallet → shop (kind spend) one after another on the same
  database, in the same run: the floor under what HTTP adds.

`ledger.check` must pass after each engine. Times are wall-clock seconds.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mykey import ledger  # noqa: E402
from mykey.config import Settings  # noqa: E402
from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.demo import MUNICIPALITIES  # noqa: E402
from mykey.identity.keys import create_key  # noqa: E402
from mykey.identity.proofs import VerifiedCard  # noqa: E402
from mykey.identity.residents import create_mykey_id  # noqa: E402
from mykey.identity.simulator import SimulatedCard, SimulatorCA  # noqa: E402
from mykey.ledger import AccountKind  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from mykey.municipalities.registry import upsert  # noqa: E402
from mykey.points.grants import grant_points  # noqa: E402
from mykey.points.program_setup import set_up_program  # noqa: E402
from mykey.points.shops import set_shop  # noqa: E402
from mykey.web.app import create_app  # noqa: E402
from scratch import on_scratch_postgres  # noqa: E402 -- bench/scratch.py, beside this file

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAYMENTS = int(os.environ.get("MYKEY_BENCH_PAYMENTS", "1000"))
CLIENTS = int(os.environ.get("MYKEY_BENCH_CLIENTS", "4"))
ROUND = int(os.environ.get("MYKEY_BENCH_ROUND", "250"))
RESIDENTS = 16
TENRI = "292044"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(url: str, ca: SimulatorCA, cards: list[SimulatedCard]) -> list[str]:
    """Program, shop, residents with points; returns the terminal keys."""
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine)
    upsert(uow, MUNICIPALITIES)
    set_up_program(
        uow,
        municipality=TENRI,
        point_name="天理市ポイント",
        terms="",
        validity={},
        usable_at=["shop"],
        rules=[],
    )
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
            points=10_000_000,
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


def over_http(
    url: str, ca_dir: Path, keys: list[str], cards: list[SimulatedCard]
) -> dict[str, Any]:
    settings = Settings(
        database_url=url, environment="test", card_trust_anchors=str(ca_dir / "ca.pem")
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    clients = [httpx.Client(base_url=base, headers={"Authorization": f"Bearer {k}"}) for k in keys]
    helper = httpx.Client(base_url=base)

    def proof_for(n: int) -> dict[str, Any]:
        card = cards[n % len(cards)]
        challenge = helper.post("/api/v1/card/challenges").json()
        return card.proof(challenge["challenge_id"], base64.b64decode(challenge["nonce"]))

    timed = 0.0
    done = 0
    failures = 0
    try:
        while done < PAYMENTS:
            batch = list(range(done, min(done + ROUND, PAYMENTS)))
            proofs = {n: proof_for(n) for n in batch}

            def pay(n: int, card_proof: dict[str, Any]) -> bool:
                answer = clients[n % CLIENTS].post(
                    "/api/v1/terminal/payments",
                    json={
                        "card_proof": card_proof,
                        "municipality": TENRI,
                        "points": 100,
                        "key": f"pay-{n}",
                    },
                )
                return answer.status_code == 201

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                ok = list(pool.map(pay, batch, [proofs[n] for n in batch]))
            timed += time.perf_counter() - started
            failures += ok.count(False)
            done += len(batch)
    finally:
        for c in [*clients, helper]:
            c.close()
        server.should_exit = True
        thread.join(timeout=10)
    return {
        "payments": PAYMENTS,
        "clients": CLIENTS,
        "failed": failures,
        "seconds": round(timed, 2),
        "payments_per_second": round(PAYMENTS / timed, 1),
        "card_proofs": "prepared beforehand (not timed); verified by the server per payment",
    }


def in_process(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    uow = UnitOfWork(engine)
    shop = ledger.find_account(uow, ledger=TENRI, kind=AccountKind.SHOP, owner="bench-shop")
    wallets = [
        ledger.find_account(uow, ledger=TENRI, kind=AccountKind.WALLET, owner=f"BENCH{n:03d}").id
        for n in range(RESIDENTS)
    ]
    started = time.perf_counter()
    for n in range(PAYMENTS):
        ledger.transfer(
            uow,
            debit=wallets[n % RESIDENTS],
            credit=shop.id,
            amount=100,
            kind="spend",
            actor="terminal:inproc",
            key=f"inproc-{n}",
        )
    seconds = time.perf_counter() - started
    report = ledger.check(uow)
    engine.dispose()
    return {
        "transfers": PAYMENTS,
        "seconds": round(seconds, 2),
        "transfers_per_second": round(PAYMENTS / seconds, 1),
        "ledger_check_ok": report.ok,
    }


def measure(url: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    ca = SimulatorCA.create(now=now - timedelta(days=1))
    cards = [ca.issue(now=now - timedelta(hours=1)) for _ in range(RESIDENTS)]
    with tempfile.TemporaryDirectory() as tmp:
        ca.save(Path(tmp) / "ca")
        keys = prepare(url, ca, cards)
        http = over_http(url, Path(tmp) / "ca", keys, cards)
    return {"http": http, "in_process_ledger_transfer": in_process(url)}


def postgres() -> dict[str, Any]:
    return on_scratch_postgres(PG_URL, "mykey_bench_counter", measure)


def main() -> None:
    result: dict[str, Any] = {
        "benchmark": "counter_payments",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        log(f"SQLite: {PAYMENTS:,} payments, {CLIENTS} clients …")
        result["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'bench.db'}")
    log(f"PostgreSQL: {PAYMENTS:,} payments, {CLIENTS} clients …")
    result["postgresql"] = postgres()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
