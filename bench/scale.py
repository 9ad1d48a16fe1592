"""Scale benchmark (issue #15): 1,000,000 wallets and 10,000,000 transfers on PostgreSQL.

    make bench-scale                       # or: .venv/bin/python bench/scale.py
    MYKEY_BENCH_SIZES=100000,1000000 make bench-scale     # smaller runs
    MYKEY_BENCH_WALLETS=100000 MYKEY_BENCH_AUDIT_MAX=0 make bench-scale

On a fresh database of the PostgreSQL server at MYKEY_BENCH_DATABASE_URL (default postgres on
127.0.0.1:5432; made and dropped; skipped with the reason shown if unreachable):

- set up through the use cases: the demo municipalities, Tenri's point program, 100 shops, a
  resident with a simulator card (MY888888) and points to pay with;
- WALLETS wallets (ledger accounts of residents SC0000000…), written with binary `COPY`;
- then, size by size (SIZES, cumulative), the transfers that bring the ledger to that size,
  each in its own past month (2026-08, 2026-09, 2026-10, …): counter payments (wallet → shop,
  each with its client key, the lot use it takes and its running balance) and, whenever a
  wallet runs short, a grant (budget → wallet, with its lot), written with binary `COPY` in
  chunks of CHUNK; every transfer with its history leaf, encoded by the log's own code; the
  log's integrator (production code) numbers the leaves and builds the tree; the accounts'
  counters and the lots' remainders are set to what the transfers say, so `ledger.check`
  passes (it is run, and its result printed, at every size);
- measured at each size, after a CHECKPOINT and VACUUM ANALYZE (what autovacuum would have
  done by then): PAYMENTS counter payments in process (`spending.pay` with a signed card
  proof: p50, p99, CPU of this process), 200 residents' history pages (`balances.history_of`,
  the page's query), 200 inclusion proofs looked up by transfer id (as a receipt asks), the
  close of the size's month (`close_month`: the transfers of that month alone — a month is
  closed once), the full audit of the log (`audit.verify`, every core; only up to AUDIT_MAX
  entries: at ~40 µs an entry on two cores, 10,000,000 take about 7 minutes), and the disk
  bytes per transfer (tables and indexes of the ledger and the log, after VACUUM).

What the bulk rows do not have that a real counter payment writes: the shop's payment record
(`spending_payments`) and the card lookup's usage record; they are on the measured payments.

Prints one JSON object: per size, the figures, the load average beside them, and at the end
the payment p99 at the largest size over the p99 at the smallest (target ≤ 1.2).
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mykey import ledger  # noqa: E402
from mykey.db import UnitOfWork, make_engine, utcnow  # noqa: E402
from mykey.history import audit  # noqa: E402
from mykey.history import log as history  # noqa: E402
from mykey.history.checkpoints import Signer  # noqa: E402
from mykey.history.log import HistoryLog  # noqa: E402
from mykey.identity.proofs import (  # noqa: E402
    CardProof,
    PresentedCard,
    TrustAnchors,
    VerifiedCard,
    issue_challenge,
)
from mykey.identity.residents import create_mykey_id  # noqa: E402
from mykey.identity.simulator import SimulatorCA  # noqa: E402
from mykey.ledger import AccountKind  # noqa: E402
from mykey.ledger.transfers import Receipt, _leaf_payload  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402
from mykey.points import balances, spending  # noqa: E402
from mykey.points.grants import grant_points  # noqa: E402
from mykey.points.shops import set_shop  # noqa: E402
from mykey.settlement.statements import close_month  # noqa: E402
from procstat import CpuWatch, backends_of, load_average, postmaster_of  # noqa: E402
from scratch import TENRI, on_scratch_postgres, tenri_points  # noqa: E402 -- bench/scratch.py, beside this file

PG_URL = os.environ.get(
    "MYKEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SIZES = [int(s) for s in os.environ.get("MYKEY_BENCH_SIZES", "100000,1000000,10000000").split(",")]
WALLETS = int(os.environ.get("MYKEY_BENCH_WALLETS", "1000000"))
AUDIT_MAX = int(os.environ.get("MYKEY_BENCH_AUDIT_MAX", "1000000"))
PAYMENTS = int(os.environ.get("MYKEY_BENCH_PAYMENTS", "500"))
LOOKUPS = 200
CHUNK = 50_000
SHOPS = 100
GRANT = 10_000  # points of one grant; a payment takes 1–500
RESIDENT = "MY888888"  # the measuring resident, with a card
ACTOR_PAY = "terminal:scale"
ACTOR_GRANT = "staff:scale"
EXPIRES = date(2027, 3, 31)
FIRST_MONTH = (2026, 8)
LOG = HistoryLog(Signer("bench.mykey.invalid/history", bytes(range(32))))

TRANSFER_COLUMNS = (
    "id, ledger, kind, phase, debit_account_id, credit_account_id, amount, actor, client_key,"
    " request_hash, metadata, debit_balance, credit_balance, created_at"
)
TRANSFER_TYPES = [
    "uuid", "varchar", "varchar", "varchar", "int8", "int8", "int8", "varchar", "varchar",
    "varchar", "text", "int8", "int8", "timestamptz",
]  # fmt: skip
ACCOUNT_TYPES = ["varchar", "varchar", "varchar", "bool"] + ["int8"] * 4 + ["timestamptz"]
LOT_COLUMNS = (
    "id, ledger, account_id, transfer_id, funding, source_account_id, expires_on, original,"
    " remaining, created_at"
)
LOT_TYPES = [
    "int8", "varchar", "int8", "uuid", "varchar", "int8", "date", "int8", "int8", "timestamptz",
]  # fmt: skip


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def month_of(k: int) -> tuple[str, datetime, datetime]:
    """The k-th month of the run (0-based): its name and its Tokyo start and end in UTC."""
    year, month = FIRST_MONTH[0], FIRST_MONTH[1] + k
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    nyear, nmonth = year + month // 12, month % 12 + 1
    tokyo = timedelta(hours=9)
    start = datetime(year, month, 1, tzinfo=UTC) - tokyo
    end = datetime(nyear, nmonth, 1, tzinfo=UTC) - tokyo
    return f"{year:04d}-{month:02d}", start, end


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
    }


@dataclass
class World:
    """The set-up, and what the writer keeps of every wallet and lot as the ledger grows."""

    engine: Any
    dsn: str  # the driver's form of the URL, for COPY
    budget: int
    shops: list[tuple[int, str]]  # account id, shop id
    wallets: list[int]  # account ids, by wallet number
    owners: list[str]
    grants: list[int]  # grants each wallet has had (each of GRANT points)
    balance: list[int]  # each wallet's available points
    lot: list[int]  # each wallet's newest lot (0: none yet)
    next_lot: int
    lot_left: dict[int, int] = field(default_factory=dict)  # a lot's remainder now
    lot_written: dict[int, int] = field(default_factory=dict)  # … as stored
    touched: set[int] = field(default_factory=set)  # wallets whose counters are behind
    shop_credits: dict[int, int] = field(default_factory=dict)  # not yet on the shop's counter
    budget_debits: int = 0  # not yet on the budget's counter
    written: int = 0  # transfers written by COPY
    keys: int = 0  # client keys of the payments written
    sample: list[uuid.UUID] = field(default_factory=list)  # transfer ids, for the proofs

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, log=LOG)


def set_up(url: str, card: Any) -> World:
    """The town, its program, shops and the measuring resident, through the use cases; then
    the wallets, by COPY."""
    engine = make_engine(url)
    upgrade(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(engine, log=LOG)

    tenri_points(uow())
    shop_ids = [f"scale-{i:03d}" for i in range(SHOPS)]
    for i, shop_id in enumerate(shop_ids):
        set_shop(
            uow(), shop_id=shop_id, name=f"商店{i}", municipality=TENRI, kind="shop",
            accepts=[TENRI],
        )  # fmt: skip
    verified = VerifiedCard(card.card_key, card.certificate.not_valid_after_utc)
    create_mykey_id(uow(), card=verified, password="bench password", mykey_id=RESIDENT)
    for n in range(len(SIZES)):
        grant_points(
            uow(), municipality=TENRI, mykey_id=RESIDENT, actor="staff:bench",
            key=f"fill-{n}", reason="bench", points=PAYMENTS + 20,
        )  # fmt: skip
    u = uow()
    budget = ledger.find_account(u, ledger=TENRI, kind=AccountKind.BUDGET, owner=TENRI).id
    shops = [
        (ledger.find_account(u, ledger=TENRI, kind=AccountKind.SHOP, owner=s).id, s)
        for s in shop_ids
    ]
    owners = [f"SC{n:07d}" for n in range(WALLETS)]
    made = utcnow()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        with conn.cursor().copy(
            "COPY ledger_accounts (ledger, kind, owner, guarded, debits_posted, credits_posted,"
            " debits_pending, credits_pending, created_at) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(ACCOUNT_TYPES)
            for owner in owners:
                copy.write_row((TENRI, "wallet", owner, True, 0, 0, 0, 0, made))
        ids = dict(
            conn.execute(
                "SELECT owner, id FROM ledger_accounts WHERE kind = 'wallet' AND owner LIKE 'SC%'"
            ).fetchall()
        )
        last_lot = conn.execute("SELECT COALESCE(MAX(id), 0) FROM ledger_lots").fetchone()
        conn.execute("ANALYZE")
    assert last_lot is not None
    return World(
        engine=engine, dsn=dsn, budget=budget, shops=shops,
        wallets=[ids[o] for o in owners], owners=owners, grants=[0] * WALLETS,
        balance=[0] * WALLETS, lot=[0] * WALLETS, next_lot=int(last_lot[0]) + 1,
    )  # fmt: skip


@dataclass
class Chunk:
    transfers: list[tuple[Any, ...]] = field(default_factory=list)
    lots: list[tuple[Any, ...]] = field(default_factory=list)
    uses: list[tuple[uuid.UUID, int, int]] = field(default_factory=list)
    leaves: list[tuple[str, str, bytes, datetime]] = field(default_factory=list)


def _leaf(
    tid: uuid.UUID, kind: str, debit: int, credit: int, amount: int, actor: str, at: datetime
) -> tuple[str, str, bytes, datetime]:
    """The transfer's history leaf, encoded by the log's own code (as `ledger.transfer`)."""
    receipt = Receipt(
        transfer_id=tid, ledger=TENRI, kind=kind, phase="single", debit_account_id=debit,
        credit_account_id=credit, amount=amount, actor=actor, created_at=at,
    )  # fmt: skip
    record_id, leaf = LOG.leaf_for("transfer", _leaf_payload(receipt))
    return "transfer", record_id, leaf, at


def make_chunks(
    w: World, count: int, start: datetime, end: datetime, rng: random.Random
) -> Iterator[Chunk]:
    """`count` transfers spread over [start, end), CHUNK at a time: counter payments, and a
    grant before a payment whenever the wallet's newest lot cannot cover it."""
    span = (end - start).total_seconds() - 1
    grant_meta = json.dumps({"activity": "", "expires_on": str(EXPIRES), "reason": "bench"})
    done = 0
    chunk, opened = Chunk(), []
    while done < count:
        at = start + timedelta(microseconds=int(span * 1e6 * done / count))
        n = rng.randrange(len(w.wallets))
        wallet = w.wallets[n]
        amount = rng.randint(1, 500)
        lot = w.lot[n]
        if lot == 0 or w.lot_left.get(lot, 0) < amount:
            tid = uuid.UUID(int=rng.getrandbits(128), version=4)
            lot = w.lot[n] = w.next_lot
            w.next_lot += 1
            w.lot_left[lot] = GRANT
            w.grants[n] += 1
            w.balance[n] += GRANT
            w.budget_debits += GRANT
            chunk.transfers.append(
                (tid, TENRI, "grant", "single", w.budget, wallet, GRANT, ACTOR_GRANT, None,
                 None, grant_meta, None, w.balance[n], at)
            )  # fmt: skip
            opened.append((lot, TENRI, wallet, tid, "budget", w.budget, EXPIRES, GRANT, at))
            chunk.leaves.append(_leaf(tid, "grant", w.budget, wallet, GRANT, ACTOR_GRANT, at))
            done += 1
        if done < count:
            shop, shop_id = w.shops[rng.randrange(len(w.shops))]
            tid = uuid.UUID(int=rng.getrandbits(128), version=4)
            w.balance[n] -= amount
            w.lot_left[lot] -= amount
            w.shop_credits[shop] = w.shop_credits.get(shop, 0) + amount
            w.keys += 1
            chunk.transfers.append(
                (tid, TENRI, "spend", "single", wallet, shop, amount, ACTOR_PAY, f"k{w.keys}",
                 f"{w.keys:064x}", json.dumps({"receipt_ref": "", "shop": shop_id}),
                 w.balance[n], None, at)
            )  # fmt: skip
            chunk.uses.append((tid, lot, amount))
            chunk.leaves.append(_leaf(tid, "spend", wallet, shop, amount, ACTOR_PAY, at))
            done += 1
            if rng.random() < LOOKUPS * 4 / count:  # about LOOKUPS×4 of the size's payments
                w.sample.append(tid)
        w.touched.add(n)
        if len(chunk.transfers) >= CHUNK or done == count:
            for row in opened:  # each lot as it is at the chunk's end
                left = w.lot_written[row[0]] = w.lot_left[row[0]]
                chunk.lots.append((*row[:8], left, row[8]))  # remaining, then created_at
            yield chunk
            chunk, opened = Chunk(), []


def copy_rows(conn: psycopg.Connection[Any], sql: str, types: list[str], rows: Any) -> None:
    with conn.cursor().copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def write_chunk(conn: psycopg.Connection[Any], chunk: Chunk) -> int:
    """A chunk's transfers, lots, lot uses and history leaves, by binary COPY, in one
    transaction; returns how many transfers."""
    copy_rows(
        conn, f"COPY ledger_transfers ({TRANSFER_COLUMNS}) FROM STDIN (FORMAT BINARY)",
        TRANSFER_TYPES, chunk.transfers,
    )  # fmt: skip
    copy_rows(
        conn, f"COPY ledger_lots ({LOT_COLUMNS}) FROM STDIN (FORMAT BINARY)", LOT_TYPES, chunk.lots
    )
    copy_rows(
        conn,
        "COPY ledger_lot_uses (transfer_id, lot_id, amount) FROM STDIN (FORMAT BINARY)",
        ["uuid", "int8", "int8"],
        chunk.uses,
    )
    copy_rows(
        conn,
        "COPY history_leaves (kind, record_id, leaf, queued_at) FROM STDIN (FORMAT BINARY)",
        ["varchar", "varchar", "bytea", "timestamptz"],
        chunk.leaves,
    )
    conn.commit()
    return len(chunk.transfers)


def catch_up(w: World, conn: psycopg.Connection[Any]) -> None:
    """What the transfers say, onto the rows the writer kept behind: the lots' remainders
    (a lot written in an earlier chunk and used since), the wallets', shops' and budget's
    counters; the lots' sequence past the ids the writer gave."""
    changed = {lot: left for lot, left in w.lot_left.items() if w.lot_written.get(lot) != left}
    conn.execute(
        "UPDATE ledger_lots AS l SET remaining = v.left_ FROM unnest(%s::bigint[],"
        " %s::bigint[]) AS v(id, left_) WHERE l.id = v.id",
        (list(changed), list(changed.values())),
    )
    w.lot_written.update(changed)
    w.lot_left = {lot: left for lot, left in w.lot_left.items() if left}  # used up: forgotten
    touched = sorted(w.touched)
    credits = [w.grants[n] * GRANT for n in touched]
    conn.execute(
        "UPDATE ledger_accounts AS a SET credits_posted = v.c, debits_posted = v.d"
        " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, c, d)"
        " WHERE a.id = v.id",
        (
            [w.wallets[n] for n in touched],
            credits,
            [c - w.balance[n] for c, n in zip(credits, touched, strict=True)],
        ),
    )
    conn.execute(
        "UPDATE ledger_accounts AS a SET credits_posted = a.credits_posted + v.c"
        " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, c) WHERE a.id = v.id",
        (list(w.shop_credits), list(w.shop_credits.values())),
    )
    conn.execute(
        "UPDATE ledger_accounts SET debits_posted = debits_posted + %s WHERE id = %s",
        (w.budget_debits, w.budget),
    )
    conn.execute("SELECT setval(pg_get_serial_sequence('ledger_lots', 'id'), %s)", (w.next_lot,))
    conn.commit()
    w.touched.clear()
    w.shop_credits.clear()
    w.budget_debits = 0


def grow(w: World, count: int, month: int, rng: random.Random) -> dict[str, Any]:
    """Write `count` more transfers into the `month`-th month; number them in the log."""
    _, start, end = month_of(month)
    started = time.perf_counter()
    # The next chunk is made while the last one is written: a thread (psycopg waits for the
    # server without the GIL), at most one chunk ahead.
    with psycopg.connect(w.dsn) as conn, ThreadPoolExecutor(1) as writer:
        pending: Future[int] | None = None
        for chunk in make_chunks(w, count, start, end, rng):
            if pending is not None:
                w.written += pending.result()
                log(f"    {w.written:,} transfers written")
            pending = writer.submit(write_chunk, conn, chunk)
        if pending is not None:
            w.written += pending.result()
        catch_up(w, conn)
    written = time.perf_counter() - started
    started = time.perf_counter()
    size = history.integrate(w.uow())
    history.make_checkpoint(w.uow(), LOG)
    integrated = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(w.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return {
        "copied": count,
        "copy_s": round(written, 1),
        "copy_per_s": round(count / written),
        "log_integrate_s": round(integrated, 1),
        "log_size": size,
        "vacuum_s": round(time.perf_counter() - started, 1),
    }


def timed(calls: list[Callable[[], object]]) -> list[float]:
    spent = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        spent.append(time.perf_counter() - t0)
    return spent


def postgres_cpu(w: World) -> CpuWatch:
    """CPU of the scratch database's backends, from /proc, while the watch runs."""
    with w.engine.connect() as conn:
        backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        database = str(conn.execute(text("SELECT current_database()")).scalar_one())
    postmaster = postmaster_of(backend)
    return CpuWatch(lambda: backends_of(postmaster, database) if postmaster else [])


def pay_with(
    w: World, card: Any, anchors: TrustAnchors, prefix: str, count: int
) -> tuple[list[float], float]:
    """`count` counter payments of 1 point by the measuring resident, each timed alone, and
    the CPU seconds of this process over them; the card's challenges are issued and signed
    before (another request at a real counter), 100 at a time (a challenge lives 60 s)."""
    spent: list[float] = []
    cpu = 0.0
    while len(spent) < count:
        presented = []
        for _ in range(min(100, count - len(spent))):
            challenge = issue_challenge(w.uow(), key=anchors.challenge_key, asker=None)
            signed = card.proof(challenge.id, challenge.nonce)
            proof = CardProof(signed["certificate"], signed["challenge_id"], signed["signature"])
            presented.append(PresentedCard(proof, anchors, ACTOR_PAY))
        done = len(spent)
        c0 = time.process_time()
        spent += timed(
            [
                lambda p=p, key=f"{prefix}-{done + i}": spending.pay(
                    w.uow(),
                    shop_id="scale-000",
                    card=p,
                    municipality=TENRI,
                    points=1,
                    actor=ACTOR_PAY,
                    key=key,
                )
                for i, p in enumerate(presented)
            ]
        )
        cpu += time.process_time() - c0
    return spent, cpu


def payments(w: World, card: Any, anchors: TrustAnchors, size: int) -> dict[str, Any]:
    """PAYMENTS counter payments, after 20 untimed ones (caches, connections)."""
    pay_with(w, card, anchors, f"warm-{size}", 20)
    pg = postgres_cpu(w).start()
    spent, cpu = pay_with(w, card, anchors, f"pay-{size}", PAYMENTS)
    return {
        **ms(spent),
        "payments": len(spent),
        "cpu_ms": round(cpu / len(spent) * 1000, 3),
        "postgres_cpu_ms": round(pg.stop() / len(spent) * 1000, 3),
    }


def disk(w: World, transfers: int) -> dict[str, Any]:
    tables = ("ledger_transfers", "ledger_lots", "ledger_lot_uses", "history_leaves",
              "history_nodes")  # fmt: skip
    with psycopg.connect(w.dsn) as conn:
        sizes = {
            t: int(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0])  # type: ignore[index]
            for t in tables
        }
        whole = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
    return {
        "bytes_per_transfer": round(sum(sizes.values()) / transfers),
        "bytes_per_transfer_by_table": {t: round(b / transfers) for t, b in sizes.items()},
        "database_bytes": whole,
    }


def measure(w: World, card: Any, anchors: TrustAnchors, size: int, month: int,
            rng: random.Random) -> dict[str, Any]:  # fmt: skip
    """Everything measured at one size of the ledger."""
    out: dict[str, Any] = {"loadavg_before": load_average()}
    log("    payments …")
    out["payment"] = payments(w, card, anchors, size)
    log("    history pages …")
    owners = [w.owners[n] for n in rng.sample(range(len(w.owners)), LOOKUPS)]
    out["history_page"] = ms(
        timed([lambda o=o: balances.history_of(w.uow(), o, limit=50) for o in owners])
    )
    log("    inclusion proofs …")

    def prove(tid: uuid.UUID) -> None:
        index = history.index_of(w.uow(), "transfer", str(tid))
        history.inclusion(w.uow(), index=index)

    sample = rng.sample(w.sample, min(LOOKUPS, len(w.sample)))
    out["inclusion_proof"] = ms(timed([lambda t=t: prove(t) for t in sample]))
    name, _, _ = month_of(month)
    log(f"    closing {name} …")
    with w.engine.connect() as conn:
        _, start, end = month_of(month)
        in_month = conn.execute(
            text(
                "SELECT COUNT(*) FROM ledger_transfers WHERE created_at >= :s AND created_at < :e"
            ),
            {"s": start, "e": end},
        ).scalar_one()
    t0 = time.perf_counter()
    report = close_month(w.uow(), month=name)
    out["month_close"] = {
        "month": name,
        "transfers": int(in_month),
        "statements": report.statements,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    log("    ledger check …")
    t0 = time.perf_counter()
    checked = ledger.check(w.uow())
    out["ledger_check"] = {"ok": checked.ok, "seconds": round(time.perf_counter() - t0, 1)}
    if not checked.ok:
        out["ledger_check"]["problems"] = [str(p) for p in checked.problems[:5]]
    size_now = history.current_size(w.uow())
    if size <= AUDIT_MAX:  # the size's transfers, and the few the measurements add
        log(f"    audit of {size_now:,} entries …")
        t0 = time.perf_counter()
        audited = audit.verify(w.uow(), LOG)
        out["audit"] = {
            "entries": size_now,
            "ok": audited.ok,
            "seconds": round(time.perf_counter() - t0, 1),
            "workers": os.cpu_count(),
        }
    else:
        out["audit"] = {"entries": size_now, "skipped": f"more than {AUDIT_MAX:,} transfers"}
    out.update(disk(w, transfers_now(w)))
    out["loadavg_after"] = load_average()
    return out


def transfers_now(w: World) -> int:
    with w.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM ledger_transfers")).scalar_one())


def run(url: str) -> dict[str, Any]:
    ca = SimulatorCA.create(now=utcnow() - timedelta(days=30))
    card = ca.issue(now=utcnow() - timedelta(days=1))
    anchors = TrustAnchors((ca.certificate,))
    rng = random.Random(15)
    log(f"  setting up: the town, {SHOPS} shops, {WALLETS:,} wallets …")
    t0 = time.perf_counter()
    w = set_up(url, card)
    result: dict[str, Any] = {"wallets": WALLETS, "setup_s": round(time.perf_counter() - t0, 1)}
    sizes: list[dict[str, Any]] = []
    for month, size in enumerate(SIZES):
        count = size - transfers_now(w)
        log(f"  to {size:,} transfers: {count:,} more …")
        entry: dict[str, Any] = {"transfers": size, "build": grow(w, count, month, rng)}
        entry.update(measure(w, card, anchors, size, month, rng))
        sizes.append(entry)
        log(json.dumps(entry))
    result["sizes"] = sizes
    first, last = sizes[0]["payment"]["p99_ms"], sizes[-1]["payment"]["p99_ms"]
    result["payment_p99_ratio_largest_to_smallest"] = round(last / first, 2)
    w.engine.dispose()
    return result


def main() -> None:
    result: dict[str, Any] = {
        "benchmark": "scale",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "sizes": SIZES,
    }
    log(f"PostgreSQL: {WALLETS:,} wallets, up to {SIZES[-1]:,} transfers …")
    result["postgresql"] = on_scratch_postgres(PG_URL, "mykey_bench_scale", run)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
