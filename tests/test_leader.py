"""The leader lock (`mykey.leader`) on both engines: one holder per database at a time, taken
over when the holder lets go or loses its connection; and `BackgroundWork` starts the jobs
only in the process that holds it."""

from __future__ import annotations

from sqlalchemy import text

from mykey.leader import LeaderLock
from mykey.web.background import BackgroundWork
from tests.conftest import Database


def test_one_holder_at_a_time_and_the_next_takes_over_when_it_lets_go(
    database: Database,
) -> None:
    first, second = LeaderLock(database.url), LeaderLock(database.url)
    try:
        assert first.try_hold()
        assert not second.try_hold()
        assert first.try_hold()  # a holder asking again keeps it
        assert not second.try_hold()
        first.release()
        assert second.try_hold()
        assert not first.try_hold()
    finally:
        first.release()
        second.release()


def test_a_holder_whose_connection_is_cut_loses_the_lock_to_the_next(
    database: Database,
) -> None:
    if database.kind == "sqlite":  # the operating system keeps a file lock while it lives
        return
    first, second = LeaderLock(database.url), LeaderLock(database.url)
    try:
        assert first.try_hold()
        with database.engine.connect() as admin:  # as a database restart or a network cut
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        assert second.try_hold()
        assert not first.try_hold()  # it notices, and does not think it leads
        assert second.try_hold()
    finally:
        first.release()
        second.release()


class Job:
    def __init__(self, runs: list[str]) -> None:
        self.runs = runs

    def start(self) -> None:
        self.runs.append("start")

    def stop(self) -> None:
        self.runs.append("stop")


def test_background_work_runs_in_the_holder_only_and_moves_when_it_stops(
    database: Database,
) -> None:
    runs_a: list[str] = []
    runs_b: list[str] = []
    a = BackgroundWork(LeaderLock(database.url), lambda: [Job(runs_a)])
    b = BackgroundWork(LeaderLock(database.url), lambda: [Job(runs_b)])
    try:
        a.check()
        b.check()
        a.check()
        b.check()
        assert (a.role, b.role) == ("leader", "standby")
        assert (runs_a, runs_b) == (["start"], [])
        a.stop()  # its process ends: the jobs stop, the lock is let go
        b.check()
        assert (a.role, b.role) == ("standby", "leader")
        assert (runs_a, runs_b) == (["start", "stop"], ["start"])
    finally:
        a.lock.release()
        b.stop()
