"""History log benchmark: appends per second, integration, proof latency, full verification.

    make bench-history                           # SQLite, 100,000 entries
    MYKEY_BENCH_ENTRIES=1000000 make bench-history
    MYKEY_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres make bench-history

On a fresh database (a temporary SQLite file, or a fresh PostgreSQL database next to the one in
MYKEY_BENCH_DATABASE_URL) it measures:

- single transfers per second (`ledger.transfer`, one per transaction), with the log and with
  the null log: the cost of writing the leaf in the transfer's transaction;
- a bulk grant of N entries (`ledger.batch.credit_many`) with the log, then the integrator
  numbering them and storing their subtree hashes (entries/s);
- inclusion and consistency proof latency from stored hashes (p50/p99 ms, over a connection);
- `audit.verify`: every leaf recomputed from its record, the tree rebuilt and compared, in one
  process and with a worker per core (parts of 65,536 entries: it runs in parallel from
  131,072 entries on).
Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mykey import ledger  # noqa: E402
from mykey.db import UnitOfWork, make_engine  # noqa: E402
from mykey.history import audit, merkle  # noqa: E402
from mykey.history import log as hlog  # noqa: E402
from mykey.history.checkpoints import Signer  # noqa: E402
from mykey.ledger import AccountKind, LotTerms  # noqa: E402
from mykey.ledger.batch import Credit, credit_many  # noqa: E402
from mykey.migrations import upgrade  # noqa: E402

ENTRIES = int(os.environ.get("MYKEY_BENCH_ENTRIES", "100000"))
SINGLES = int(os.environ.get("MYKEY_BENCH_SINGLES", "2000"))
PROOFS = int(os.environ.get("MYKEY_BENCH_PROOFS", "1000"))
PG_URL = os.environ.get("MYKEY_BENCH_DATABASE_URL", "")
CODE = "131164"
EXPIRES = __import__("datetime").date(2099, 3, 31)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fresh_url() -> tuple[str, Any]:
    if not PG_URL:
        folder = tempfile.mkdtemp(prefix="mykey-bench-history-")
        return f"sqlite:///{folder}/bench.db", None
    url = make_url(PG_URL)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"mykey_bench_history_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.set(database=name).render_as_string(hide_password=False), drop


def singles(uow: UnitOfWork, budget: int, shop: int, count: int) -> float:
    wallet = ledger.open_account(uow, ledger=CODE, kind=AccountKind.WALLET, owner="bench")
    ledger.transfer(
        uow,
        debit=budget,
        credit=wallet.id,
        amount=10**9,
        kind="grant",
        actor="staff:bench",
        lot=LotTerms("budget", EXPIRES),
    )
    start = time.perf_counter()
    for _ in range(count):
        ledger.transfer(
            uow, debit=wallet.id, credit=shop, amount=1, kind="spend", actor="terminal:bench"
        )
    return count / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def main() -> None:
    url, drop = fresh_url()
    engine = make_engine(url)
    upgrade(engine)
    signer = Signer("bench.mykey.invalid/history", bytes(32))
    log = hlog.HistoryLog(signer)
    uow = UnitOfWork(engine, log=log)
    plain = UnitOfWork(engine)
    result: dict[str, Any] = {"engine": engine.dialect.name, "entries": ENTRIES}
    try:
        ledger.open_ledger(uow, code=CODE, name="bench")
        budget = ledger.open_account(uow, ledger=CODE, kind=AccountKind.BUDGET, owner=CODE)
        shop = ledger.open_account(uow, ledger=CODE, kind=AccountKind.SHOP, owner="shop")
        say(f"{SINGLES} single transfers without and with the log …")
        result["transfers_per_s_without_log"] = round(singles(plain, budget.id, shop.id, SINGLES))
        result["transfers_per_s_with_log"] = round(singles(uow, budget.id, shop.id, SINGLES))
        hlog.integrate(uow)

        say(f"bulk grant of {ENTRIES:,} with the log …")
        start = time.perf_counter()
        for first in range(0, ENTRIES, 100_000):
            part = range(first, min(ENTRIES, first + 100_000))
            with uow:
                credit_many(
                    uow,
                    batch_id=uuid.uuid4(),
                    debit=budget.id,
                    credit_kind=AccountKind.WALLET,
                    credits=[Credit(f"R{i:08d}", 1, {}) for i in part],
                    kind="grant",
                    actor="staff:bench",
                    lot=LotTerms("budget", EXPIRES),
                )
                uow.commit()
        seconds = time.perf_counter() - start
        result["bulk_appends_per_s"] = round(ENTRIES / seconds)

        say("integrating …")
        start = time.perf_counter()
        size = hlog.integrate(uow, chunk=50_000)
        seconds = time.perf_counter() - start
        result["tree_size"] = size
        result["integrate_entries_per_s"] = round((size - 2 * SINGLES - 1) / seconds)
        start = time.perf_counter()
        checkpoint = hlog.make_checkpoint(uow, signer).checkpoint
        result["checkpoint_ms"] = round((time.perf_counter() - start) * 1000, 2)

        say(f"{PROOFS} inclusion and consistency proofs …")
        rng = random.Random(1)
        inclusion: list[float] = []
        consistency: list[float] = []
        with uow:
            read = hlog.node_reader(uow.connection)
            for _ in range(PROOFS):
                i = rng.randrange(size)
                t0 = time.perf_counter()
                path = merkle.inclusion_proof(i, size, read)
                inclusion.append(time.perf_counter() - t0)
                leaf = read([(0, i)])[(0, i)]
                merkle.verify_inclusion(i, size, leaf, path, checkpoint.root)
                m = rng.randrange(1, size)
                t0 = time.perf_counter()
                merkle.consistency_proof(m, size, read)
                consistency.append(time.perf_counter() - t0)
        result["inclusion_proof_ms"] = {"p50": pct(inclusion, 0.5), "p99": pct(inclusion, 0.99)}
        result["consistency_proof_ms"] = {
            "p50": pct(consistency, 0.5),
            "p99": pct(consistency, 0.99),
        }
        result["proof_hashes_mean"] = round(
            statistics.mean(
                len(merkle.inclusion_ranges(rng.randrange(size), size)) for _ in range(100)
            ),
            1,
        )

        say("full audit, one process and one per core …")
        start = time.perf_counter()
        audit.verify(uow, log, workers=1)
        result["audit_seconds_one_process"] = round(time.perf_counter() - start, 2)
        result["audit_workers"] = os.cpu_count() or 1
        start = time.perf_counter()
        report = audit.verify(uow, log)
        result["audit_seconds"] = round(time.perf_counter() - start, 2)
        # The baseline's transfers were written without the log on purpose: the audit must
        # name each of them as "added" (and find nothing else).
        added = sum(1 for f in report.findings if f.problem == "added")
        result["audit_added_found"] = added
        result["audit_other_findings"] = len(report.findings) - added
    finally:
        engine.dispose()
        if drop is not None:
            drop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
