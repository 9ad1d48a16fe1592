"""The log and three witnesses as separate processes on loopback (R8.2, R8.3).

The log (`mykey serve`) runs on a SQLite file or a PostgreSQL database of its own; each witness
(`mykey witness serve`) has its own SQLite database. They follow, copy and cosign; a 2-of-3
policy accepts; a transfer row changed in the log's database is named at its exact index by
`mykey audit verify --witness` and restored by `mykey audit restore --from`; a forked log with
the same key is detected by every witness.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mykey.db import UnitOfWork, make_engine
from mykey.history import log as hlog
from mykey.history import merkle
from mykey.history.checkpoints import Checkpoint, Signer, sign_checkpoint
from mykey.history.cosign import Cosigner
from mykey.history.log import HistoryLog
from mykey.history.policy import Policy
from mykey.history.receipts import transfer_receipt
from mykey.migrations import upgrade
from tests.builders import grant, spend, town, wallet
from tests.conftest import PG_URL

MYKEY = Path(sys.executable).parent / "mykey"
LOG_KEY = Signer("log.test.invalid/tx", bytes(range(100, 132)))
WITNESSES = [Cosigner(f"witness{i}.test.invalid", bytes([i]) * 32) for i in (1, 2, 3)]
pytestmark = pytest.mark.tampers_ledger


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> bytes:
    # a generous timeout: on a loaded 2-core CI machine a process may take seconds to answer
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def wait_for(check: Any, what: str, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@dataclass
class Cluster:
    work: Path
    db_url: str
    log_url: str
    witness_urls: list[str]
    witness_dbs: list[str]
    env: dict[str, str]
    receipts: list[Any]
    resident: str

    def cli(self, *args: str, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "MYKEY_DATABASE_URL": db_url or self.db_url}
        return subprocess.run(
            [str(MYKEY), *args],
            env=env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def status(self, i: int) -> dict[str, Any]:
        return dict(json.loads(get(self.witness_urls[i] + "/status")))


def _fill(url: str, grants: list[int]) -> tuple[list[Any], str]:
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine, log=HistoryLog(LOG_KEY))
    t = town(uow)
    w = wallet(uow, t)
    receipts = [grant(uow, t, w, amount) for amount in grants]
    receipts.append(spend(uow, t, w, 5))
    hlog.make_checkpoint(uow, LOG_KEY)
    engine.dispose()
    return receipts, "MY123456"


def _start(args: list[str], env: dict[str, str], cwd: Path, out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as sink:
        return subprocess.Popen(
            [str(MYKEY), *args], env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(params=["sqlite", "postgres"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    pg_name = None
    if request.param == "postgres":
        import psycopg

        admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
        pg_name = f"mykey_log_{uuid.uuid4().hex[:8]}"
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{pg_name}"')
        except psycopg.OperationalError as exc:
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        db_url = make_url(PG_URL).set(database=pg_name).render_as_string(False)
    else:
        db_url = f"sqlite:///{tmp_path / 'log.db'}"
    receipts, resident = _fill(db_url, [100 + i for i in range(12)])
    env = {
        **os.environ,
        "MYKEY_LOG_SIGNING_KEY": LOG_KEY.key_string(),
        "MYKEY_LOG_WITNESSES": ",".join(w.verifier().vkey() for w in WITNESSES),
        "MYKEY_LOG_CHECKPOINT_SECONDS": "1",
        "MYKEY_DAILY_EXPIRY": "0",
        "MYKEY_DATABASE_URL": db_url,
    }
    port = free_port()
    processes = [
        _start(["serve", "--port", str(port)], env, tmp_path, tmp_path / "log.out"),
    ]
    log_url = f"http://127.0.0.1:{port}"
    witness_urls, witness_dbs = [], []
    for i, w in enumerate(WITNESSES):
        wport = free_port()
        wdb = f"sqlite:///{tmp_path / f'witness{i}.db'}"
        processes.append(
            _start(
                [
                    "witness", "serve", "--log", log_url,
                    "--log-key", LOG_KEY.verifier().vkey(),
                    "--key", w.key_string(), "--db", wdb,
                    "--port", str(wport), "--interval", "0.3",
                ],
                env,
                tmp_path,
                tmp_path / f"witness{i}.out",
            )
        )  # fmt: skip
        witness_urls.append(f"http://127.0.0.1:{wport}")
        witness_dbs.append(wdb)
    try:
        yield Cluster(tmp_path, db_url, log_url, witness_urls, witness_dbs, env, receipts, resident)
    finally:
        _stop(processes)
        if pg_name is not None:
            import psycopg

            admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _cosigned_by_all(c: Cluster) -> str:
    def check() -> str | None:
        note = get(c.log_url + "/api/v1/log/checkpoint").decode()
        return note if note.count("\u2014 witness") == 3 else None

    return str(wait_for(check, "three cosignatures on the log's checkpoint"))


def _tamper(c: Cluster, sql: str, params: dict[str, Any]) -> None:
    """What an attacker with database access does: lift the trigger, change the row."""
    engine = make_engine(c.db_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE ledger_transfers DISABLE TRIGGER USER"))
            conn.execute(text(sql), params)
            conn.execute(text("ALTER TABLE ledger_transfers ENABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER ledger_transfers_no_update"))
            conn.execute(text(sql), params)
    engine.dispose()


def test_three_witnesses_cosign_a_policy_accepts_and_a_changed_row_is_restored(
    cluster: Cluster,
) -> None:
    c = cluster
    note = _cosigned_by_all(c)
    size = int(note.split("\n")[1])
    assert size == len(c.receipts)
    for i in range(3):
        status = c.status(i)
        assert status["size"] == size and not status["alarm"], status
        copy = json.loads(get(f"{c.witness_urls[i]}/entries?start=0&end={size}"))["entries"]
        assert [e["record_id"] for e in copy] == [str(r.transfer_id) for r in c.receipts]
    # A 2-of-3 policy accepts the log's checkpoint; 3-of-3 without one witness's line does not.
    keys = "\n".join(
        f"witness w{i} {w.verifier().vkey()}" for i, w in enumerate(WITNESSES, 1)
    )  # fmt: skip
    policy_text = f"log {LOG_KEY.verifier().vkey()}\n{keys}\ngroup two 2 w1 w2 w3\nquorum two\n"
    assert Policy.parse(policy_text).check(note).witnesses == ["w1", "w2", "w3"]
    (c.work / "policy.txt").write_text(policy_text)
    one_line = "\n".join(
        line for line in note.split("\n") if "witness2" not in line and "witness3" not in line
    )
    (c.work / "weak.txt").write_text(one_line)
    (c.work / "checkpoint.txt").write_text(note)
    engine = make_engine(c.db_url)
    receipt = transfer_receipt(
        UnitOfWork(engine, log=HistoryLog(LOG_KEY)),
        HistoryLog(LOG_KEY),
        mykey_id=c.resident,
        transfer_id=str(c.receipts[3].transfer_id),
    )
    engine.dispose()
    (c.work / "proof.json").write_text(json.dumps(receipt))

    def offline(checkpoint: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mykey.history.verify",
                "proof.json",
                checkpoint,
                "--policy",
                "policy.txt",
            ],
            cwd=c.work,
            capture_output=True,
            text=True,
            check=False,
        )

    proven = offline("checkpoint.txt")
    assert proven.returncode == 0, proven.stdout + proven.stderr
    assert '"witnesses": [' in proven.stdout and "PROVEN" in proven.stdout
    weak = offline("weak.txt")
    assert weak.returncode == 1 and "quorum two is not met" in weak.stdout

    # An amount changed directly in the log's database: found at its exact index, restored.
    victim = c.receipts[7]
    _tamper(
        c,
        "UPDATE ledger_transfers SET amount = 9999 WHERE id = :id",
        {"id": victim.transfer_id.hex if "sqlite" in c.db_url else victim.transfer_id},
    )
    index = json.loads(
        get(f"{c.log_url}/api/v1/log/proofs/inclusion?transfer_id={victim.transfer_id}")
    )["index"]
    found = c.cli("audit", "verify", "--witness", c.witness_urls[1], "--policy", "policy.txt")
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"altered index {index} transfer {victim.transfer_id}" in found.stdout
    assert c.cli("ledger", "check").returncode != 0
    restored = c.cli("audit", "restore", "--from", c.witness_urls[1])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"restored record index {index} {victim.transfer_id}" in restored.stdout
    clean = c.cli("audit", "verify", "--witness", c.witness_urls[2])
    assert clean.returncode == 0, clean.stdout + clean.stderr
    checked = c.cli("ledger", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    engine = make_engine(c.db_url)
    with engine.connect() as conn:
        trail = conn.execute(
            text("SELECT target, idx, record_id, witness FROM history_restores")
        ).all()
        amount = conn.execute(
            text("SELECT amount FROM ledger_transfers WHERE amount = 9999")
        ).first()
    engine.dispose()
    expected_trail = [("record", index, str(victim.transfer_id), c.witness_urls[1])]
    if "sqlite" in c.db_url:  # the attacker dropped the append-only trigger: put back too
        expected_trail.append(("trigger", None, None, c.witness_urls[1]))
    assert [tuple(r) for r in trail] == expected_trail
    assert amount is None
    # Nothing left to restore; the record is back to what the witnesses hold.
    again = c.cli("audit", "restore", "--from", c.witness_urls[0])
    assert again.returncode == 0 and "Nothing to restore" in again.stdout


def test_a_leaf_rewritten_with_its_record_is_located_and_restored(tmp_path: Path) -> None:
    """The attacker knows the salt key: rewrites the amount *and* the leaf to match. The audit
    alone only sees a root that no longer matches; the witness's copy names the entry."""
    # SQLite only (the row-level work is the same on PostgreSQL, tested above).
    db_url = f"sqlite:///{tmp_path / 'log.db'}"
    receipts, _ = _fill(db_url, [200 + i for i in range(6)])
    env = {
        **os.environ,
        "MYKEY_LOG_SIGNING_KEY": LOG_KEY.key_string(),
        "MYKEY_LOG_WITNESSES": WITNESSES[0].verifier().vkey(),
        "MYKEY_LOG_CHECKPOINT_SECONDS": "0",
        "MYKEY_DAILY_EXPIRY": "0",
        "MYKEY_DATABASE_URL": db_url,
    }
    port, wport = free_port(), free_port()
    log_url, w_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{wport}"
    processes = [_start(["serve", "--port", str(port)], env, tmp_path, tmp_path / "log.out")]
    processes.append(
        _start(
            ["witness", "serve", "--log", log_url, "--log-key", LOG_KEY.verifier().vkey(),
             "--key", WITNESSES[0].key_string(), "--db", f"sqlite:///{tmp_path / 'w.db'}",
             "--port", str(wport), "--interval", "0.3"],
            env, tmp_path, tmp_path / "w.out",
        )
    )  # fmt: skip
    c = Cluster(tmp_path, db_url, log_url, [w_url], [], env, receipts, "MY123456")
    try:
        wait_for(lambda: c.status(0)["size"] == len(receipts), "the witness to cosign")
        victim = receipts[2]
        index = json.loads(
            get(f"{log_url}/api/v1/log/proofs/inclusion?transfer_id={victim.transfer_id}")
        )["index"]
        log = HistoryLog(LOG_KEY)
        payload = {**victim_payload(db_url, victim.transfer_id), "amount": 1}
        _, forged = log.leaf_for("transfer", payload)
        with sqlite3.connect(tmp_path / "log.db") as conn:
            for table in ("ledger_transfers", "history_nodes", "history_checkpoints"):
                conn.execute(f"DROP TRIGGER {table}_no_update")
            conn.execute(
                "UPDATE ledger_transfers SET amount = 1 WHERE id = ?", (victim.transfer_id.hex,)
            )
            conn.execute("UPDATE history_leaves SET leaf = ? WHERE idx = ?", (forged, index))
            _rewrite_tree_and_resign(conn)
        alone = c.cli("audit", "verify")
        # Consistent on its own (only the triggers the attacker dropped are missing): only a
        # copy shows which entry changed.
        assert alone.returncode == 1, alone.stdout
        assert "altered" not in alone.stdout and "do not hash" not in alone.stdout
        assert alone.stdout.count("is not append-only") == 3
        # The witness still following sees the re-signed checkpoint: a split view.
        alarm = wait_for(lambda: c.status(0)["alarms"], "the witness's alarm")
        assert [a["problem"] for a in alarm] == ["split_view"]
        located = c.cli("audit", "verify", "--witness", w_url)
        assert located.returncode == 1
        assert f"leaf_altered index {index} transfer {victim.transfer_id}" in located.stdout
        assert f"altered index {index} transfer {victim.transfer_id}" in located.stdout
        restored = c.cli("audit", "restore", "--from", w_url)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert f"restored leaf index {index}" in restored.stdout
        assert "restored node" in restored.stdout
        assert "restored checkpoint" in restored.stdout
        clean = c.cli("audit", "verify", "--witness", w_url)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert c.cli("ledger", "check").returncode == 0
    finally:
        _stop(processes)


def _rewrite_tree_and_resign(conn: sqlite3.Connection) -> None:
    """Every subtree hash recomputed from the forged leaves, the checkpoint signed again."""
    hashes = [
        merkle.leaf_hash(bytes(r[0]))
        for r in conn.execute("SELECT leaf FROM history_leaves ORDER BY idx")
    ]
    size = len(hashes)
    level = 0
    while hashes:
        for j, h in enumerate(hashes):
            conn.execute(
                "UPDATE history_nodes SET hash = ? WHERE level = ? AND idx = ?", (h, level, j)
            )
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        level += 1
    nodes = {
        (lv, ix): bytes(h)
        for lv, ix, h in conn.execute("SELECT level, idx, hash FROM history_nodes")
    }
    root = merkle.root_from(size, lambda keys: {k: nodes[k] for k in keys})
    note = sign_checkpoint(Checkpoint(LOG_KEY.name, size, root), LOG_KEY)
    conn.execute(
        "UPDATE history_checkpoints SET root = ?, note = ? WHERE size = ?", (root, note, size)
    )


def victim_payload(db_url: str, transfer_id: uuid.UUID) -> dict[str, Any]:
    from mykey import ledger
    from mykey.history.receipts import transfer_payload

    engine = make_engine(db_url)
    try:
        return transfer_payload(ledger.get_transfer(UnitOfWork(engine), transfer_id))
    finally:
        engine.dispose()


@pytest.mark.parametrize("cluster", ["sqlite"], indirect=True)
def test_a_forked_log_with_the_same_key_is_detected_by_every_witness(
    cluster: Cluster, tmp_path: Path
) -> None:
    """(The fork is the log's business, whatever its engine: SQLite here.)"""
    c = cluster
    size = int(_cosigned_by_all(c).split("\n")[1])
    # A second log database with the same key: same size, other transfers (a split view),
    # and one that grew differently (no consistency proof from what the witnesses cosigned).
    for name, grants in (("same-size", [100 + i for i in range(11)] + [1]), ("longer", [7] * 20)):
        fork_db = f"sqlite:///{tmp_path / f'fork-{name}.db'}"
        _fill(fork_db, grants)
        port = free_port()
        env = {**c.env, "MYKEY_DATABASE_URL": fork_db}
        fork = _start(["serve", "--port", str(port)], env, tmp_path, tmp_path / f"{name}.out")
        try:
            fork_url = f"http://127.0.0.1:{port}"
            wait_for(lambda u=fork_url: get(u + "/api/v1/log/checkpoint"), "the fork")
            for i, w in enumerate(WITNESSES):
                checked = c.cli(
                    "witness", "check", "--log", fork_url,
                    "--log-key", LOG_KEY.verifier().vkey(),
                    "--key", w.key_string(), "--db", c.witness_dbs[i],
                )  # fmt: skip
                assert checked.returncode == 1, checked.stdout + checked.stderr
                problem = "split_view" if name == "same-size" else "inconsistent"
                assert problem in checked.stdout
                assert "cosigned / 連署済み" in checked.stdout
        finally:
            _stop([fork])
    for i in range(3):
        status = c.status(i)
        assert status["alarm"] is True
        problems = {a["problem"] for a in status["alarms"]}
        assert problems == {"split_view", "inconsistent"}
        for alarm in status["alarms"]:
            # Both signed checkpoints are kept as evidence, and they differ.
            assert alarm["cosigned"] != alarm["conflicting"]
            assert alarm["cosigned"].startswith("log.test.invalid/tx\n")
            assert alarm["conflicting"].startswith("log.test.invalid/tx\n")
        assert status["size"] == size  # the witness cosigned nothing from the fork


def test_a_leaf_numbered_again_is_not_cosigned_and_is_restored(cluster: Cluster) -> None:
    """An attacker takes an entry off its index (idx set back to NULL): the log's integrator,
    which numbers what is queued, gives the same record a second index and the log signs that
    tree. No witness cosigns a tree that holds one record twice; the audit names the entry the
    log lost, the restore puts it back and drops the tree signed past the witnesses' copy, and
    the log then grows and is cosigned again without an alarm."""
    c = cluster
    size = int(_cosigned_by_all(c).split("\n")[1])
    victim = str(c.receipts[4].transfer_id)
    engine = make_engine(c.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE history_leaves SET idx = NULL WHERE idx = 4"))
    engine.dispose()
    wait_for(
        lambda: get(c.log_url + "/api/v1/log/checkpoint").decode().split("\n")[1] == str(size + 1),
        "the log to number the entry again",
    )
    for i in range(3):
        wait_for(
            lambda i=i: (
                "is already entry 4 of this witness's copy" in c.status(i)["last_round"]["detail"]
            ),
            f"witness {i} to refuse the repeated record",
        )
        status = c.status(i)
        assert status["size"] == size and not status["alarm"], status
    found = c.cli("audit", "verify", "--witness", c.witness_urls[0])
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"leaf_removed index 4 transfer {victim}" in found.stdout
    restored = c.cli("audit", "restore", "--from", c.witness_urls[0])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"restored leaf index 4 {victim}" in restored.stdout
    clean = c.cli("audit", "verify", "--witness", c.witness_urls[1])
    assert clean.returncode == 0, clean.stdout + clean.stderr

    engine = make_engine(c.db_url)
    uow = UnitOfWork(engine, log=HistoryLog(LOG_KEY))
    t = town(uow)
    grant(uow, t, wallet(uow, t), 42)
    engine.dispose()
    for i in range(3):
        wait_for(lambda i=i: c.status(i)["size"] == size + 1, f"witness {i} to cosign again")
        assert not c.status(i)["alarm"], c.status(i)
    assert c.cli("audit", "verify", "--witness", c.witness_urls[2]).returncode == 0
