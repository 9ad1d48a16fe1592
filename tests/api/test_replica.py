"""Read replicas with a real streaming replica: a primary made by initdb and a standby made by
pg_basebackup, on ports of their own, in the test's own folder.

Replay on the standby is paused to make it visibly behind: what the read-only routes answer
then shows which database answered them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.db import UnitOfWork, make_engine
from mykey.demo import MUNICIPALITIES
from mykey.migrations import upgrade
from mykey.municipalities.registry import MunicipalityRecord, upsert
from mykey.points.program_setup import set_up_program
from mykey.web.app import create_app

TENRI = "292044"


def _bindir() -> Path | None:
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
    except FileNotFoundError:
        found = None
    for candidate in [found.stdout.strip() if found else "", "/usr/lib/postgresql/15/bin"]:
        if candidate and (Path(candidate) / "pg_basebackup").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pair:
    folder: Path
    bindir: Path
    primary_port: int
    replica_port: int

    def url(self, port: int) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/mykey"

    def run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args[0]}: {done.stdout}{done.stderr}"

    def start(self, name: str, port: int) -> None:
        options = f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / f"{name}.log")
        self.run("pg_ctl", "-D", str(self.folder / name), "-l", log, "-w", "-o", options, "start")

    def stop(self, name: str) -> None:
        self.run("pg_ctl", "-D", str(self.folder / name), "-m", "fast", "-w", "stop")

    def sql(self, port: int, statement: str) -> object:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=mykey", autocommit=True
        ) as conn:
            row = conn.execute(statement).fetchone()  # type: ignore[arg-type]
            return row[0] if row else None


@pytest.fixture
def pair() -> Iterator[Pair]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_basebackup) are not installed")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run PostgreSQL as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
    folder = Path(tempfile.mkdtemp(prefix="mykey-replica-"))
    if os.geteuid() == 0:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    made = Pair(folder, bindir, _free_port(), _free_port())
    started: list[str] = []
    try:
        made.run("initdb", "-D", str(folder / "primary"), "-U", "postgres", "-A", "trust",
                 "--no-sync")  # fmt: skip
        made.start("primary", made.primary_port)
        started.append("primary")
        with psycopg.connect(
            f"host=127.0.0.1 port={made.primary_port} user=postgres dbname=postgres",
            autocommit=True,
        ) as conn:
            conn.execute("CREATE DATABASE mykey")
        engine = make_engine(made.url(made.primary_port))
        upgrade(engine)
        engine.dispose()
        made.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(made.primary_port),
                 "-U", "postgres", "-D", str(folder / "replica"), "-R", "-X", "stream",
                 "-c", "fast", "--no-sync")  # fmt: skip
        made.start("replica", made.replica_port)
        started.append("replica")
        yield made
    finally:
        for name in reversed(started):
            with contextlib.suppress(AssertionError):  # stopped by the test already
                made.stop(name)
        shutil.rmtree(folder, ignore_errors=True)


def _wait(what: str, check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


def _reads(client: TestClient, database: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'mykey_reads_total{{database="{database}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _point_name(client: TestClient) -> str:
    answer = client.get(f"/api/v1/municipalities/{TENRI}/program")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["point_name"])


def _program(uow: UnitOfWork, name: str) -> None:
    set_up_program(uow, municipality=TENRI, point_name=name, terms="", validity={},
                   usable_at=["shop"], rules=[])  # fmt: skip


def test_reads_go_to_a_streaming_replica_while_it_keeps_up(pair: Pair) -> None:
    primary = make_engine(pair.url(pair.primary_port))
    uow = UnitOfWork(primary)
    upsert(uow, MUNICIPALITIES)
    _program(uow, "天理市ポイント")
    settings = Settings(
        database_url=pair.url(pair.primary_port),
        database_replica_url=pair.url(pair.replica_port),
        database_replica_max_lag_seconds=30,
        environment="test",
    )
    app = create_app(settings)
    watch = app.state.replica
    with TestClient(app) as client:
        _wait("the replica in use", lambda: client.get("/healthz").json()["replica"]["used"])
        _wait("the program on the replica", lambda: _point_name(client) == "天理市ポイント")

        # Replay paused: the replica stays at what it has; the primary moves on.
        pair.sql(pair.replica_port, "SELECT pg_wal_replay_pause()")
        _program(uow, "天理市ポイント（新）")
        upsert(uow, [MunicipalityRecord("292036", "奈良県", "大和郡山市", "やまとこおりやまし")])
        time.sleep(1.2)  # the watch's next check: behind, but within its 30 s
        before = _reads(client, "replica")
        assert _point_name(client) == "天理市ポイント"  # the replica answered
        assert _reads(client, "replica") == before + 1
        # what the replica does not have yet is asked of the primary
        town = client.get("/api/v1/municipalities/292036")
        assert town.status_code == 200 and town.json()["name"] == "大和郡山市"
        navi = client.get("/navi")
        assert navi.status_code == 200 and "天理市ポイント（新）" not in navi.text

        # A browser that has just written reads its own writes: from the primary.
        wrote = client.post("/api/v1/card/challenges")
        assert wrote.status_code < 400 and "mykey_wrote" in wrote.headers["set-cookie"]
        assert _point_name(client) == "天理市ポイント（新）"
        client.cookies.clear()
        assert _point_name(client) == "天理市ポイント"

        # Lagging beyond the allowance: the primary.
        watch.max_lag = 0.5
        _wait("lagging", lambda: client.get("/healthz").json()["replica"]["state"] == "lagging")
        assert _point_name(client) == "天理市ポイント（新）"

        # Caught up again: the replica, with the new name.
        watch.max_lag = 30
        pair.sql(pair.replica_port, "SELECT pg_wal_replay_resume()")
        _wait("caught up", lambda: client.get("/healthz").json()["replica"]["state"] == "ok")
        before = _reads(client, "replica")
        assert _point_name(client) == "天理市ポイント（新）"
        assert _reads(client, "replica") == before + 1

        # The replica gone: the primary answers everything, no request fails.
        pair.stop("replica")
        _wait(
            "replica unreachable",
            lambda: client.get("/healthz").json()["replica"]["state"] == "unreachable",
        )
        before = _reads(client, "primary")
        assert _point_name(client) == "天理市ポイント（新）"
        assert client.get("/navi").status_code == 200
        assert _reads(client, "primary") == before + 2
    app.state.engine.dispose()
    primary.dispose()
