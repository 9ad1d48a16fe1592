"""Rotating the log's key with its witnesses watching, as processes on loopback (issue #13).

The log (`mykey serve`, SQLite or PostgreSQL) and two witnesses follow each other. A server
started with another key refuses to start; `mykey log rotate-key` records the new key in the
log and waits for the witnesses to cosign the checkpoint under the old key that commits to it;
the log restarted with the new key is followed and cosigned; a witness that joins later goes
through the same handoff; a log of the same name under a key nobody announced, and a witness
told another key than the one it followed, raise alarms and get no cosignature.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from mykey.db import UnitOfWork, make_engine
from mykey.history import log as hlog
from mykey.history.checkpoints import Signer, split_note
from mykey.history.cosign import Cosigner
from mykey.history.log import HistoryLog
from mykey.migrations import upgrade
from tests.builders import grant, town, wallet
from tests.conftest import PG_URL
from tests.history.test_witnesses import LOG_KEY, MYKEY, _start, _stop, free_port, get, wait_for

KEY_A = LOG_KEY
KEY_B = Signer(KEY_A.name, bytes(range(150, 182)))
KEY_C = Signer(KEY_A.name, bytes(range(200, 232)))
WITNESSES = [Cosigner(f"witness{i}.test.invalid", bytes([i + 10]) * 32) for i in (1, 2, 3)]
pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """Two fresh log databases of one engine: the log's, and a stranger's."""
    if request.param == "sqlite":
        yield [f"sqlite:///{tmp_path / 'log.db'}", f"sqlite:///{tmp_path / 'stranger.db'}"]
        return
    import psycopg

    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
    names = [f"mykey_key_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("MYKEY_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield [make_url(PG_URL).set(database=n).render_as_string(False) for n in names]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _grow(url: str, log: HistoryLog, amounts: list[int], *, checkpoint: bool = False) -> None:
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(engine, log=log)
    t = town(uow)
    w = wallet(uow, t)
    for amount in amounts:
        grant(uow, t, w, amount)
    if checkpoint:
        hlog.make_checkpoint(uow, log.signer)
    engine.dispose()


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MYKEY), *args],
        env={**env, "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,  # a rotation waits up to --wait for the witnesses, on a loaded machine
        check=False,
    )


def _status(url: str) -> dict[str, Any]:
    return dict(json.loads(get(url + "/status")))


def _key_id(note: str) -> int:
    _, signatures = split_note(note)
    return next(s.key_id for s in signatures if s.name == KEY_A.name)


def _witness(log_url: str, log_key: Signer, who: Cosigner, db: str) -> list[str]:
    return [
        "witness", "check", "--log", log_url, "--log-key", log_key.verifier().vkey(),
        "--key", who.key_string(), "--db", db,
    ]  # fmt: skip


def test_the_key_changes_only_by_a_witnessed_rotation(databases: list[str], tmp_path: Path) -> None:
    db_url, stranger_url = databases
    _grow(db_url, HistoryLog(KEY_A), [100 + i for i in range(6)], checkpoint=True)
    env = {
        **os.environ,
        "MYKEY_LOG_SIGNING_KEY": KEY_A.key_string(),
        "MYKEY_LOG_WITNESSES": ",".join(w.verifier().vkey() for w in WITNESSES[:2]),
        "MYKEY_LOG_CHECKPOINT_SECONDS": "0.5",
        "MYKEY_DAILY_EXPIRY": "0",
        "MYKEY_DATABASE_URL": db_url,
    }
    port = free_port()
    log_url = f"http://127.0.0.1:{port}"
    processes = [_start(["serve", "--port", str(port)], env, tmp_path, tmp_path / "a.out")]
    witness_urls, witness_dbs = [], []
    for i, w in enumerate(WITNESSES[:2]):
        wport, wdb = free_port(), f"sqlite:///{tmp_path / f'w{i}.db'}"
        processes.append(
            _start(
                ["witness", "serve", "--log", log_url, "--log-key", KEY_A.verifier().vkey(),
                 "--key", w.key_string(), "--db", wdb, "--port", str(wport), "--interval", "0.3"],
                env, tmp_path, tmp_path / f"w{i}.out",
            )
        )  # fmt: skip
        witness_urls.append(f"http://127.0.0.1:{wport}")
        witness_dbs.append(wdb)
    try:
        for url in witness_urls:
            wait_for(lambda u=url: _status(u)["size"] == 6, "the witnesses", seconds=120)

        # Another key: the server refuses to start, nothing signs with it.
        env_b = {**env, "MYKEY_LOG_SIGNING_KEY": KEY_B.key_string()}
        refused = _cli(env_b, tmp_path, "serve", "--port", str(free_port()))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "log_key_mismatch" in refused.stderr
        assert f"{KEY_A.name}+{KEY_A.key_id:08x}" in refused.stderr
        assert f"{KEY_B.name}+{KEY_B.key_id:08x}" in refused.stderr
        assert "署名鍵" in refused.stderr
        checkpoint = _cli(env_b, tmp_path, "log", "checkpoint")
        assert checkpoint.returncode == 1 and "log_key_mismatch" in checkpoint.stderr

        # The rotation, with the current key configured and the server running: recorded,
        # committed to by a checkpoint under KEY_A, cosigned by both witnesses.
        (tmp_path / "b.key").write_text(KEY_B.key_string())
        rotated = _cli(env, tmp_path, "log", "rotate-key", "--new-key", "@b.key", "--wait", "150")
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "Key rotation 1 recorded at entry 6" in rotated.stdout
        assert "Checkpoint 7, signed with the previous key, commits to it" in rotated.stdout
        assert rotated.stdout.count("cosigned / 連署済み") == 2
        salt = re.search(r"MYKEY_LOG_SALT_KEY=([0-9a-f]{64})", rotated.stdout)
        assert salt is not None
        for url in witness_urls:
            status = _status(url)
            assert status["size"] == 7 and not status["alarm"], status
            assert _key_id(get(url + "/checkpoint").decode()) == KEY_A.key_id
        # The server still running with KEY_A signs nothing more.
        _grow(db_url, HistoryLog(KEY_B, bytes.fromhex(salt[1])), [1])
        wait_for(
            lambda: "log_key_mismatch" in (tmp_path / "a.out").read_text(),
            "the old server's refusal",
            seconds=120,
        )
        assert (
            json.loads(get(log_url + "/api/v1/log/key-rotations"))["rotations"][0]["handoff_size"]
            == 7
        )

        # Restarted with the new key (and the log's salt key): followed and cosigned.
        _stop(processes[:1])
        env_new = {**env_b, "MYKEY_LOG_SALT_KEY": salt[1]}
        # (and a third witness is added to the log's list: it joins below)
        env_new["MYKEY_LOG_WITNESSES"] = ",".join(w.verifier().vkey() for w in WITNESSES)
        processes[0] = _start(["serve", "--port", str(port)], env_new, tmp_path, tmp_path / "b.out")
        _grow(db_url, HistoryLog(KEY_B, bytes.fromhex(salt[1])), [2, 3])
        for url in witness_urls:
            wait_for(lambda u=url: _status(u)["size"] == 10, "cosignatures under the new key", 120)
            status = _status(url)
            assert not status["alarm"], status
            assert _key_id(get(url + "/checkpoint").decode()) == KEY_B.key_id
        note = get(log_url + "/api/v1/log/checkpoint").decode()
        assert note.count("\u2014 witness") == 2 and _key_id(note) == KEY_B.key_id
        clean = _cli(env_new, tmp_path, "audit", "verify", "--witness", witness_urls[0])
        assert clean.returncode == 0, clean.stdout + clean.stderr

        # A witness that joins later, told the first key, goes through the same handoff.
        late = f"sqlite:///{tmp_path / 'late.db'}"
        joined = _cli(env_new, tmp_path, *_witness(log_url, KEY_A, WITNESSES[2], late))
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert joined.stdout.startswith("cosigned size 10")

        # A log of the same name under a key nobody announced: alarm, no cosignature.
        _grow(stranger_url, HistoryLog(KEY_C), [5] * 12, checkpoint=True)
        sport = free_port()
        env_c = {**env, "MYKEY_LOG_SIGNING_KEY": KEY_C.key_string()}
        env_c["MYKEY_DATABASE_URL"] = stranger_url
        stranger = _start(["serve", "--port", str(sport)], env_c, tmp_path, tmp_path / "c.out")
        processes.append(stranger)
        stranger_url_http = f"http://127.0.0.1:{sport}"
        wait_for(lambda: get(stranger_url_http + "/api/v1/log/checkpoint"), "the stranger")
        seen = _cli(
            env, tmp_path, *_witness(stranger_url_http, KEY_A, WITNESSES[0], witness_dbs[0])
        )
        assert seen.returncode == 1, seen.stdout + seen.stderr
        assert "unannounced_key" in seen.stdout
        assert f"{KEY_C.name}+{KEY_C.key_id:08x}" in seen.stdout
        # A witness told another key than the one it followed cosigns nothing either.
        told = _cli(env, tmp_path, *_witness(log_url, KEY_C, WITNESSES[1], witness_dbs[1]))
        assert told.returncode == 1, told.stdout + told.stderr
        assert "unknown_key" in told.stdout
        for url in witness_urls:
            status = _status(url)
            assert status["size"] == 10 and status["alarm"] is True
            assert _key_id(get(url + "/checkpoint").decode()) == KEY_B.key_id

        # The key history is a record like any other: changed in the database, it is named,
        # nothing signs any more, and it is restored from a witness's copy.
        _tamper_rotation(db_url, KEY_C.verifier().vkey())
        named = _cli(env_new, tmp_path, "audit", "verify", "--witness", witness_urls[0])
        assert named.returncode == 1, named.stdout + named.stderr
        assert "altered index 6 key_rotation 1" in named.stdout
        stopped = _cli(env_new, tmp_path, "log", "checkpoint")
        assert stopped.returncode == 1 and "log_key_history_invalid" in stopped.stderr
        restored = _cli(env_new, tmp_path, "audit", "restore", "--from", witness_urls[0])
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "restored record index 6 1" in restored.stdout
        again = _cli(env_new, tmp_path, "audit", "verify", "--witness", witness_urls[0])
        assert again.returncode == 0, again.stdout + again.stderr
        assert _cli(env_new, tmp_path, "log", "checkpoint").returncode == 0
    finally:
        _stop(processes)


def _tamper_rotation(url: str, new_key: str) -> None:
    """An attacker rewrites the log's key history (triggers off, as in the restore tests)."""
    sql = "UPDATE history_key_rotations SET new_key = :k WHERE id = 1"
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(make_url(url).database or "") as conn:
            conn.execute("DROP TRIGGER history_key_rotations_no_update")
            conn.execute(sql, {"k": new_key})
        return
    import psycopg

    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)) as pg:
        pg.execute("SET session_replication_role = replica")
        pg.execute(sql.replace(":k", "%(k)s"), {"k": new_key})
