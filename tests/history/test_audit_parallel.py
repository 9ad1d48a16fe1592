"""The full audit on every core (issue #15): the log split into parts of whole subtrees, each
audited by a worker process in the audit's snapshot, finds exactly what the one-process audit
finds, in the same order; entries out of place leave the audit to one process."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest
from sqlalchemy import text

from mykey.db import UnitOfWork
from mykey.history import audit
from mykey.history import log as hlog
from tests.builders import bulk_grant, grant, spend, town, wallet
from tests.conftest import LOG, LOG_SIGNER, Database
from tests.history.test_log import _disable_append_only, _enable_append_only

PART = 5  # parts of 32 entries: 150 entries are 4 full parts and one of 22


def _both(uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, int]:
    """The audit in one process, and in two worker processes (counting fallbacks)."""
    alone = audit.verify(uow, LOG, workers=1)
    fallbacks = 0
    one = audit._in_one

    def counted(*args: Any) -> Any:
        nonlocal fallbacks
        fallbacks += 1
        return one(*args)

    monkeypatch.setattr(audit, "_in_one", counted)
    parallel = audit.verify(uow, LOG, workers=2, part_level=PART)
    monkeypatch.setattr(audit, "_in_one", one)
    return alone, parallel, fallbacks


@pytest.mark.tampers_ledger
def test_the_audit_in_parts_finds_what_one_process_finds(
    uow: UnitOfWork, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    bulk_grant(uow, t.budget.id, [(f"P{i:04d}", 10 + i) for i in range(140)])
    receipts = [grant(uow, t, w, 500 + i) for i in range(6)]
    receipts += [spend(uow, t, w, 1) for _ in range(4)]
    hlog.make_checkpoint(uow, LOG_SIGNER)
    hlog.integrate(uow)

    alone, parallel, fallbacks = _both(uow, monkeypatch)
    assert fallbacks == 0 and alone.ok and parallel.ok
    assert (parallel.entries, parallel.records, parallel.checkpoint_size) == (150, 150, 150)
    assert parallel.named == alone.named

    # A worker killed (out of memory, say): the audit is done again in one process.
    class Killed:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __enter__(self) -> Killed:
            return self

        def __exit__(self, *args: Any) -> None:
            return None

        def map(self, *args: Any) -> Any:
            raise BrokenProcessPool("a worker process was killed")

    with monkeypatch.context() as patched:
        patched.setattr(audit, "ProcessPoolExecutor", Killed)
        alone, parallel, fallbacks = _both(uow, monkeypatch)
    assert fallbacks == 1 and parallel.ok and parallel.entries == 150

    # An amount changed (entry 143), a subtree hash changed (level 2, subtree 9: entries
    # 36-39) and one stored beyond the tree: the same findings, in the same order.
    victim = receipts[3]
    with database.engine.begin() as conn:
        _disable_append_only(conn, database, "ledger_transfers")
        _disable_append_only(conn, database, "history_nodes")
        conn.execute(
            text("UPDATE ledger_transfers SET amount = 9999 WHERE amount = :a"),
            {"a": victim.amount},
        )
        conn.execute(
            text("UPDATE history_nodes SET hash = :h WHERE level = 2 AND idx = 9"),
            {"h": bytes(32)},
        )
        conn.execute(
            text("INSERT INTO history_nodes (level, idx, hash) VALUES (3, 900, :h)"),
            {"h": bytes(32)},
        )
    try:
        alone, parallel, fallbacks = _both(uow, monkeypatch)
        assert fallbacks == 0
        assert parallel.findings == alone.findings
        problems = [(f.problem, f.index) for f in parallel.findings]
        assert ("altered", 143) in problems and ("node", 36) in problems
        assert any("extra stored hashes at level 3" in f.detail for f in parallel.findings)
        assert any("records do not hash" in f.detail for f in parallel.findings)

        # An entry moved far off its index: the audit goes to one process, which names it
        # (no part is made for the empty ranges it would span).
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE history_leaves SET idx = 1000000000000 WHERE idx = 70"))
        alone, parallel, fallbacks = _both(uow, monkeypatch)
        assert fallbacks == 1
        assert parallel.findings == alone.findings
        assert any("not consecutive" in f.detail for f in parallel.findings)
    finally:
        for table in ("ledger_transfers", "history_nodes"):
            _enable_append_only(database, table)
