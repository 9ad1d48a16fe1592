"""The history log on a real database: leaves in the record's transaction, integration,
proofs from stored hashes, checkpoints, and the audit finding tampered rows."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, text

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.errors import MyKeyError
from mykey.history import audit, merkle
from mykey.history import log as hlog
from mykey.history.checkpoints import Checkpoint, open_checkpoint
from mykey.history.encoding import parse_leaf
from mykey.identity import usage
from tests.builders import grant, leaves_in_log, spend, town, wallet
from tests.conftest import LOG, LOG_SIGNER, Database


def _queued(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(text("SELECT COUNT(*) FROM history_leaves WHERE idx IS NULL")).scalar_one()
        )


def test_every_transfer_and_card_use_leaves_a_leaf_in_its_transaction(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    g = grant(uow, t, w, 1000)
    s = spend(uow, t, w, 300)
    back = ledger.reverse(
        uow, transfer_id=s.transfer_id, actor="staff:test", key="rev-1", reason="test"
    )
    with uow:
        usage.record(uow, mykey_id="MY123456", action="lookup", actor="terminal:T1")
        uow.commit()
    # A refused transfer leaves neither a transfer nor a leaf.
    with pytest.raises(MyKeyError):
        spend(uow, t, w, 10_000)
    assert database.count("history_leaves") == database.count("ledger_transfers") + 1 == 4
    assert _queued(database) == 4  # queued: nothing waited on a shared row

    assert hlog.integrate(uow) == 4
    got = hlog.entries(uow, start=0, end=10)
    assert [e.index for e in got] == [0, 1, 2, 3]
    assert [(e.kind, e.record_id) for e in got] == [
        ("transfer", str(g.transfer_id)),
        ("transfer", str(s.transfer_id)),
        ("transfer", str(back.transfer_id)),
        ("mykey_usage", "1"),
    ]
    leaf = parse_leaf(got[1].leaf)
    assert (leaf.kind, leaf.record_id) == ("transfer", str(s.transfer_id))
    # The leaf shows no amount, account or MyKey ID: only a salted commitment.
    assert b"MY123456" not in got[3].leaf
    assert hlog.integrate(uow) == 4  # idempotent


def test_a_rolled_back_transaction_takes_its_leaf_with_it(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    with uow:
        grant(uow, t, w, 100)
        # leaving without commit rolls back the transfer and its leaf alike
    assert database.count("ledger_transfers") == database.count("history_leaves") == 0


def test_checkpoints_are_c2sp_notes_signed_with_ed25519(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    for _ in range(5):
        grant(uow, t, w, 10)
    signed = hlog.make_checkpoint(uow, LOG_SIGNER)
    cp = signed.checkpoint
    assert cp == Checkpoint("test.mykey.invalid/history", 5, cp.root)
    # Byte for byte: origin, size, base64 root, blank line, one em-dash signature line.
    text_part = f"test.mykey.invalid/history\n5\n{base64.b64encode(cp.root).decode()}\n"
    assert signed.note.startswith(text_part + "\n\u2014 test.mykey.invalid/history ")
    assert signed.note.endswith("\n") and signed.note.count("\n") == 5
    sig = base64.b64decode(signed.note.rsplit(" ", 1)[1])
    # Independent check: the key id per the spec, and a plain Ed25519 verification.
    import hashlib

    pub = LOG_SIGNER.public_key
    expected_id = hashlib.sha256(b"test.mykey.invalid/history\n\x01" + pub).digest()[:4]
    assert sig[:4] == expected_id
    Ed25519PublicKey.from_public_bytes(pub).verify(sig[4:], text_part.encode())
    # The root is the RFC 6962 root of the leaves.
    leaves = [e.leaf for e in hlog.entries(uow, start=0, end=5)]
    assert cp.root == merkle.root_of([merkle.leaf_hash(x) for x in leaves])
    # Same size again: the same checkpoint, not a second signature.
    assert hlog.make_checkpoint(uow, LOG_SIGNER).note == signed.note
    assert open_checkpoint(hlog.latest_checkpoint(uow).note, LOG_SIGNER.verifier()) == cp


def test_proofs_by_index_and_by_transfer_id_verify_against_checkpoints(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    receipts = [grant(uow, t, w, 10 + i) for i in range(6)]
    first = hlog.make_checkpoint(uow, LOG_SIGNER).checkpoint
    receipts += [spend(uow, t, w, 1) for _ in range(5)]
    second = hlog.make_checkpoint(uow, LOG_SIGNER).checkpoint
    assert (first.size, second.size) == (6, 11)
    for i, r in enumerate(receipts):
        idx = hlog.index_of(uow, "transfer", str(r.transfer_id))
        assert idx == i
        proof = hlog.inclusion(uow, index=idx)
        assert proof.tree_size == 11 and proof.root == second.root
        merkle.verify_inclusion(idx, 11, proof.entry.leaf_hash, proof.path, second.root)
    c = hlog.consistency(uow, first=6, second=11)
    merkle.verify_consistency(6, 11, first.root, second.root, c.path)
    with pytest.raises(MyKeyError) as exc:
        hlog.inclusion(uow, index=11)
    assert exc.value.code == "not_in_tree"
    with pytest.raises(MyKeyError) as exc:
        hlog.consistency(uow, first=3, second=50)
    assert exc.value.code == "unknown_tree_size"


def test_concurrent_transfers_get_consecutive_indices(database: Database) -> None:
    setup = database.uow()
    t = town(setup)
    wallets = [wallet(setup, t, f"MY{i:06d}") for i in range(4)]

    def work(w: ledger.Account) -> None:
        uow = database.uow()
        for _ in range(10):
            grant(uow, t, w, 1)

    def integrator() -> None:
        for _ in range(10):
            hlog.integrate(database.uow(), chunk=7)

    threads = [threading.Thread(target=work, args=(w,)) for w in wallets]
    threads.append(threading.Thread(target=integrator))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    uow = database.uow()
    assert hlog.integrate(uow) == 40
    assert sorted(e.index for e in hlog.entries(uow, start=0, end=100)) == list(range(40))
    assert audit.verify(uow, LOG).ok


def test_a_leaf_committed_late_below_the_last_numbered_one_is_numbered_by_the_next_run(
    database: Database,
) -> None:
    # The integrator starts each batch above the leaf the batch before numbered; a leaf with a
    # lower id (its transaction began earlier and committed later) must still be numbered.
    insert = text(
        "INSERT INTO history_leaves (id, kind, record_id, leaf, queued_at)"
        " VALUES (:id, 'transfer', :rid, :leaf, :at)"
    )
    at = datetime(2027, 4, 1, tzinfo=UTC)
    with database.engine.begin() as conn:
        conn.execute(insert, [{"id": 10 + i, "rid": f"t{i}", "leaf": b"x%d" % i, "at": at}
                              for i in range(5)])  # fmt: skip
    uow = database.uow()
    assert hlog.integrate(uow, chunk=2) == 5
    with database.engine.begin() as conn:
        conn.execute(insert, {"id": 3, "rid": "late", "leaf": b"late", "at": at})
    assert hlog.integrate(uow, chunk=2) == 6
    assert [e.record_id for e in hlog.entries(uow, start=0, end=6)] == [
        "t0", "t1", "t2", "t3", "t4", "late"
    ]  # fmt: skip


def test_a_clean_history_audits_clean(uow: UnitOfWork) -> None:
    t = town(uow)
    w = wallet(uow, t)
    grant(uow, t, w, 500)
    spend(uow, t, w, 100)
    with uow:
        usage.record(uow, mykey_id="MY123456", action="lookup", actor="terminal:T1")
        uow.commit()
    hlog.make_checkpoint(uow, LOG_SIGNER)
    spend(uow, t, w, 1)  # queued, not yet integrated: still checked against its record
    report = audit.verify(uow, LOG)
    assert report.ok, report.findings
    assert (report.entries, report.queued, report.records, report.checkpoint_size) == (3, 1, 4, 3)


def _disable_append_only(conn: Connection, database: Database, table: str) -> None:
    """What an attacker with database access does first (the PostgreSQL test database is
    shared by the session: `_enable_append_only` puts the triggers back)."""
    if database.kind == "postgres":
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    else:
        for action in ("update", "delete"):
            conn.execute(text(f"DROP TRIGGER {table}_no_{action}"))


def _enable_append_only(database: Database, table: str) -> None:
    if database.kind == "postgres":
        with database.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


@pytest.mark.tampers_ledger
def test_an_amount_changed_in_the_database_is_found_at_its_exact_index(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    receipts = [grant(uow, t, w, 100 + i) for i in range(20)]
    hlog.make_checkpoint(uow, LOG_SIGNER)
    victim = receipts[13]
    with database.engine.begin() as conn:
        _disable_append_only(conn, database, "ledger_transfers")
        conn.execute(
            text("UPDATE ledger_transfers SET amount = 9999 WHERE amount = :a"),
            {"a": victim.amount},
        )
    try:
        report = audit.verify(uow, LOG)
    finally:
        _enable_append_only(database, "ledger_transfers")
    altered = [f for f in report.findings if f.problem == "altered"]
    assert [(f.index, f.record_id) for f in altered] == [(13, str(victim.transfer_id))]
    assert any(f.problem == "checkpoint" and "records" in f.detail for f in report.findings)
    assert not report.ok


@pytest.mark.tampers_ledger
def test_records_added_or_removed_behind_the_log_are_named(
    uow: UnitOfWork, database: Database
) -> None:
    t = town(uow)
    w = wallet(uow, t)
    receipts = [grant(uow, t, w, 100 + i) for i in range(5)]
    hlog.integrate(uow)
    # A transfer written without its leaf (the log bypassed), and a usage entry deleted.
    sneaky = uow.__class__(database.engine, clock=database.clock)  # NullLog
    extra = grant(sneaky, t, w, 7)
    with uow:
        usage.record(uow, mykey_id="MY123456", action="lookup", actor="terminal:T1")
        uow.commit()
    hlog.integrate(uow)
    with database.engine.begin() as conn:
        _disable_append_only(conn, database, "mykey_usage")
        conn.execute(text("DELETE FROM mykey_usage"))
    try:
        report = audit.verify(uow, LOG)
    finally:
        _enable_append_only(database, "mykey_usage")
    found = {(f.problem, f.index, f.record_id) for f in report.findings}
    assert ("added", None, str(extra.transfer_id)) in found
    assert ("removed", 5, "1") in found
    assert len(receipts) == 5


@pytest.mark.slow
def test_100000_entries_every_inclusion_proof_and_sampled_consistency_proofs_verify(
    uow: UnitOfWork, database: Database
) -> None:
    if database.kind == "postgres":
        pytest.skip(
            "100,000 entries run on SQLite only, to keep the suite under 10 minutes; the same"
            " code is exercised on PostgreSQL by every other test here (bench/history.py too)"
        )
    n = 100_000
    # The leaves straight into the log's table: this test is about the tree and its proofs
    # (a bulk grant writes real records with their leaves in tests/api/test_bulk_grants.py).
    leaves_in_log(database.engine, n)
    assert hlog.integrate(uow, chunk=25_000) == n
    cp = hlog.make_checkpoint(uow, LOG_SIGNER).checkpoint
    # Every inclusion proof, from stored hashes, in a tight loop over one connection.
    with uow:
        conn = uow.connection
        read = hlog.node_reader(conn)
        leaves = {}
        for start in range(0, n, 1000):
            for e in hlog.entries(uow, start=start, end=start + 1000):
                leaves[e.index] = e.leaf_hash
        assert len(leaves) == n
        store = {}
        for level, idx, h in conn.execute(text("SELECT level, idx, hash FROM history_nodes")):
            store[(int(level), int(idx))] = bytes(h)

        def cached(keys: object) -> dict[merkle.Key, bytes]:
            return {k: store[k] for k in keys}  # type: ignore[attr-defined]

        assert merkle.root_from(n, read) == cp.root
        for i in range(n):
            path = merkle.inclusion_proof(i, n, cached)
            merkle.verify_inclusion(i, n, leaves[i], path, cp.root)
        import random

        rng = random.Random(100_000)
        for m in [1, 2, 3, 255, 256, 257, 65_536, n - 1, *rng.sample(range(1, n), 300)]:
            second = rng.randint(m, n)
            proof = merkle.consistency_proof(m, second, read)
            merkle.verify_consistency(
                m, second, merkle.root_from(m, read), merkle.root_from(second, read), proof
            )
