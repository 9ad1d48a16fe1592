"""The fleet on PostgreSQL, as `make run-fleet` and docs/deploy.md run it: web processes that
only serve (MYKEY_BACKGROUND=workers) and `mykey worker` processes that run the jobs.

One story: a town's bulk grant is sent to the web; a worker takes it, and its progress is seen
through the web; the worker is killed with SIGKILL half way; another worker takes the job when
its lease lapses and grants it, once; two workers make a periodic job due at the same moment,
and it runs once each time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mykey import ledger
from mykey.config import Settings
from mykey.identity.keys import create_key
from mykey.jobs import queue
from mykey.ledger import AccountKind
from mykey.web.app import create_app
from tests.api.conftest import bearer
from tests.builders import TSU, tsu_seniors
from tests.conftest import LOG_SIGNER, Database

MYKEY = Path(sys.executable).parent / "mykey"
SENIORS = 40_000
LEASE = 3


def _env(database: Database) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYKEY_")}
    env.update(
        MYKEY_DATABASE_URL=database.url,
        MYKEY_BACKGROUND="workers",
        MYKEY_JOB_LEASE_SECONDS=str(LEASE),
        MYKEY_JOB_POLL_SECONDS="0.2",
        MYKEY_LOG_SIGNING_KEY=LOG_SIGNER.key_string(),  # the test database's log
    )
    return env


class Fleet:
    def __init__(self, database: Database, folder: Path) -> None:
        self.env = _env(database)
        self.folder = folder
        self.workers: list[subprocess.Popen[bytes]] = []

    def worker(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [str(MYKEY), "worker", *args],
            env=self.env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            process.wait(timeout=30)


@pytest.fixture
def fleet(database: Database, tmp_path: Path) -> Iterator[Fleet]:
    if database.kind != "postgres":
        pytest.skip("the fleet runs on PostgreSQL (on SQLite the serving process runs the jobs)")
    running = Fleet(database, tmp_path)
    yield running
    running.stop()


def _wait(what: str, fleet: Fleet, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s\n{fleet.logs()}"
        time.sleep(0.05)


def _rows(database: Database, sql: str, **params: object) -> list[Any]:
    with database.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def test_a_killed_worker_s_grant_is_granted_once_and_periodic_jobs_run_once(
    database: Database, fleet: Fleet
) -> None:
    uow = database.uow()
    ids = [f"K{n:07d}" for n in range(SENIORS)]
    tsu_seniors(uow, ids)
    staff = create_key(uow, role="municipality_staff", label="津市", municipality=TSU)[0]
    settings = Settings(database_url=database.url, environment="test", background="workers")
    app = create_app(settings, clock=database.clock)
    with TestClient(app) as web:
        sent = web.post(
            f"/api/v1/municipalities/{TSU}/grant-jobs",
            params={"activity": "senior"},
            content=("mykey_id\n" + "\n".join(ids) + "\n").encode(),
            headers={**bearer(staff), "Content-Type": "text/csv", "Idempotency-Key": "keirou"},
        )
        assert sent.status_code == 202, sent.json()
        poll = sent.headers["Location"]
        time.sleep(0.5)  # the web runs no job in this fleet: it waits for a worker
        assert web.get(poll, headers=bearer(staff)).json()["status"] == "queued"

        first = fleet.worker("worker-a", "--no-schedules")

        def granting() -> dict[str, Any] | None:
            job: dict[str, Any] = web.get(poll, headers=bearer(staff)).json()
            progress = job.get("progress") or {}
            halfway = progress.get("phase") == "granting" and 0 < progress["done"] < SENIORS
            return job if halfway else None

        # the worker's progress, read by the web from the database, half way through
        seen = _wait("the worker's progress through the web", fleet, granting)
        assert seen["status"] == "running" and seen["progress"]["total"] == SENIORS
        first.send_signal(signal.SIGKILL)  # mid-job: its transaction is undone by the server
        first.wait(timeout=10)
        assert web.get(poll, headers=bearer(staff)).json()["granted"] == 0

        # two workers: one takes the job when its lease lapses; both tick the schedules
        fleet.worker("worker-b")
        fleet.worker("worker-c")
        done = _wait(
            "the job, granted by another worker",
            fleet,
            lambda: (j := web.get(poll, headers=bearer(staff)).json())["status"] == "done" and j,
            timeout=120,
        )
    app.state.engine.dispose()
    assert (done["granted"], done["points"]) == (SENIORS, SENIORS * 1000)
    ((attempts, worker),) = _rows(
        database, "SELECT attempts, worker FROM jobs WHERE kind = 'grant_job'"
    )
    assert (attempts, worker) == (2, None)  # the killed try, then the one that granted
    grants = _rows(database, "SELECT COUNT(*) FROM ledger_transfers WHERE kind = 'grant'")
    assert grants == [(SENIORS,)]  # once each, not twice
    budget = ledger.find_account(uow, ledger=TSU, kind=AccountKind.BUDGET, owner=TSU)
    assert ledger.balance(uow, budget.id).posted == -SENIORS * 1000

    # The periodic jobs: the first tick of the fleet enqueued each once; made due again (as
    # `mykey jobs run-now daily` does) while two workers tick, each due time runs once.
    def daily_runs() -> list[Any]:
        return _rows(database, "SELECT status FROM jobs WHERE kind = 'daily' ORDER BY created_at")

    _wait("the first daily run", fleet, lambda: daily_runs() == [("done",)])
    for round_ in (2, 3):
        queue.make_due(database.uow(), "daily", at=datetime.now(UTC))  # the workers' clock
        _wait(f"daily run {round_}", fleet, lambda r=round_: daily_runs() == [("done",)] * r)
    time.sleep(1.0)  # both workers ticked several times more: nothing more is enqueued
    assert daily_runs() == [("done",)] * 3
    assert _rows(database, "SELECT COUNT(*) FROM jobs WHERE kind = 'holds'") == [(1,)]
    fleet.stop()
    assert [p.returncode for p in fleet.workers[1:]] == [0, 0], fleet.logs()  # SIGTERM: clean
