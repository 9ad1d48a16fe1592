"""The job queue on both engines: enqueued with what asks for it, one worker per job, retried
after a failure or a lapsed lease, periodic runs once per due time whatever the workers."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from mykey.jobs import queue
from mykey.jobs.kinds import GIVE_UP, HANDLERS
from mykey.jobs.queue import Progress, Schedule
from mykey.jobs.worker import JobContext, Worker
from mykey.points import bulk
from tests.builders import TSU, tsu_seniors
from tests.conftest import Database


def _jobs(database: Database) -> list[tuple[Any, ...]]:
    with database.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, status, attempts, error FROM jobs ORDER BY created_at, id")
        ).all()
    return [tuple(r) for r in rows]


def test_a_job_exists_only_if_what_asked_for_it_committed(database: Database) -> None:
    uow = database.uow()

    def asked_then_refused() -> None:
        queue.enqueue(uow, "echo", {"n": 1})
        raise RuntimeError("the request failed after enqueuing")

    with pytest.raises(RuntimeError):
        uow.run(asked_then_refused)
    assert _jobs(database) == []
    uow.run(lambda: queue.enqueue(uow, "echo", {"n": 2}))
    assert [j[:3] for j in _jobs(database)] == [("echo", "queued", 0)]


def test_one_worker_per_job_and_its_result_kept(database: Database) -> None:
    uow = database.uow()
    ids = [uow.run(lambda n=n: queue.enqueue(uow, "echo", {"n": n})) for n in range(3)]
    seen: list[int] = []

    def echo(ctx: JobContext) -> Mapping[str, Any]:
        ctx.report(Progress("echoing", 1, 1))
        seen.append(ctx.args["n"])
        return {"twice": ctx.args["n"] * 2}

    first = Worker(database.uow, {"echo": echo}, clock=database.clock, name="w1")
    second = Worker(database.uow, {"echo": echo}, clock=database.clock, name="w2")
    while first.round() | second.round():
        pass
    assert sorted(seen) == [0, 1, 2]  # each once, whichever worker took it
    state = queue.state_of(uow, ids[2])
    assert state is not None and (state.status, state.result, state.progress) == (
        "done",
        {"twice": 4},
        None,
    )
    assert first.ran + second.ran == 3


def test_a_failing_job_is_tried_again_after_a_pause_then_given_up(database: Database) -> None:
    uow = database.uow()
    job = uow.run(lambda: queue.enqueue(uow, "flaky", max_attempts=2))
    tries: list[int] = []

    def flaky(ctx: JobContext) -> None:
        tries.append(ctx.claim.attempt)
        raise ValueError("the partner's server said no")

    worker = Worker(database.uow, {"flaky": flaky}, clock=database.clock)
    assert worker.round() is True
    assert _jobs(database) == [("flaky", "queued", 1, "ValueError: the partner's server said no")]
    assert worker.round() is False  # not before its pause (2 s after the first try)
    database.clock.advance(seconds=3)
    assert worker.round() is True
    assert tries == [1, 2]
    state = queue.state_of(uow, job)
    assert state is not None and state.status == "failed"
    database.clock.advance(hours=1)
    assert worker.round() is False  # a failed job is not run again by itself…
    uow.run(lambda: queue.enqueue(uow, "flaky", job_id=job))  # … until it is asked for again
    assert [j[:3] for j in _jobs(database)] == [("flaky", "queued", 0)]


def test_a_job_whose_worker_died_is_taken_again_after_its_lease(database: Database) -> None:
    uow = database.uow()
    job = uow.run(lambda: queue.enqueue(uow, "echo"))
    dead = queue.claim(uow, "dead-worker", lease=30)  # claimed, then its process was killed
    assert dead is not None and dead.attempt == 1
    assert queue.claim(uow, "w2", lease=30) is None  # leased: nobody else takes it
    database.clock.advance(seconds=31)
    again = queue.claim(uow, "w2", lease=30)
    assert again is not None and (again.id, again.attempt) == (job, 2)
    # the first worker comes back: its lease is gone, it can neither renew nor finish
    assert queue.renew(uow, dead, lease=30, progress=None) is False
    assert queue.finish(uow, dead, result={"late": True}) is None
    assert queue.finish(uow, again, result={"ok": True}) == "done"
    state = queue.state_of(uow, job)
    assert state is not None and state.result == {"ok": True}


def test_progress_is_in_the_database_for_any_process(database: Database) -> None:
    if database.kind == "sqlite":
        pytest.skip("SQLite: one process runs the jobs and keeps their progress in memory")
    uow = database.uow()
    job = uow.run(lambda: queue.enqueue(uow, "slow"))
    halfway, finish = threading.Event(), threading.Event()

    def slow(ctx: JobContext) -> None:
        ctx.report(Progress("granting", 40, 80))
        halfway.set()
        finish.wait(10)

    worker = Worker(database.uow, {"slow": slow}, clock=database.clock, lease=3)
    thread = threading.Thread(target=worker.round)
    thread.start()
    try:
        assert halfway.wait(10)
        seen = None
        for _ in range(100):  # the lease's next renewal (within a second) carries it
            with database.engine.connect() as conn:  # another connection, as another process
                seen = conn.execute(
                    text("SELECT status, phase, done, total FROM jobs WHERE id = :id"),
                    {"id": job},
                ).one()
            if seen.phase is not None:
                break
            threading.Event().wait(0.05)
        assert seen is not None and tuple(seen) == ("running", "granting", 40, 80)
    finally:
        finish.set()
        thread.join()


def test_a_periodic_job_runs_once_per_due_time_whatever_the_workers(
    database: Database,
) -> None:
    """Eight workers tick at the same moment, on three days: one run per due time."""
    daily = Schedule("daily-test", "noop", daily_at=time(0, 5))
    ticks = 8
    start = threading.Barrier(ticks)
    made: list[str] = []
    errors: list[BaseException] = []

    def tick() -> None:
        start.wait()
        try:
            made.extend(queue.tick(database.uow(), [daily]))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    for day in range(3):
        threads = [threading.Thread(target=tick) for _ in range(ticks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(made) == day + 1, made  # the first tick ever runs it at once; then daily
        database.clock.advance(days=1)
    with database.engine.connect() as conn:
        due = conn.execute(select(queue.SCHEDULES.c.next_at)).scalar_one()
    assert due.time() == time(15, 5)  # 00:05 in Tokyo is 15:05 UTC the day before
    assert len(set(made)) == 3 and [j[:2] for j in _jobs(database)] == [("noop", "queued")] * 3


def test_schedules_fall_due_in_tokyo_time() -> None:
    daily = Schedule("d", "d", daily_at=time(0, 5))
    # 23:59 in Tokyo on 3 Dec: next is 00:05 on 4 Dec in Tokyo (15:05 UTC on 3 Dec)
    assert daily.next_after(datetime(2026, 12, 3, 14, 59, tzinfo=UTC)) == datetime(
        2026, 12, 3, 15, 5, tzinfo=UTC
    )
    # 00:06 in Tokyo: tomorrow's
    assert daily.next_after(datetime(2026, 12, 3, 15, 6, tzinfo=UTC)) == datetime(
        2026, 12, 4, 15, 5, tzinfo=UTC
    )
    every = Schedule("h", "h", every=timedelta(minutes=10))
    assert every.next_after(datetime(2026, 12, 3, tzinfo=UTC)) == datetime(
        2026, 12, 3, 0, 10, tzinfo=UTC
    )


def test_a_job_whose_workers_all_died_is_given_up_and_its_grant_says_so(
    database: Database,
) -> None:
    """Five workers took a town's grant and each died before it finished: the queue gives the
    job up, the grant job's page says it stopped (not "waiting" for ever), and sending the same
    file again queues it again and grants it once."""
    uow = database.uow()
    tsu_seniors(uow, ["SENIOR01", "SENIOR02"])
    data = b"mykey_id\nSENIOR01\nSENIOR02\n"

    def send() -> bulk.JobView:
        return bulk.submit_job(uow, municipality=TSU, actor="staff:tsu", key="keirou",
                               data=data, params=bulk.JobParams(activity="senior"))  # fmt: skip

    job = send()
    for _ in range(bulk.MAX_ATTEMPTS):  # each claims it, then its process is killed
        assert queue.claim(uow, "doomed", lease=60) is not None
        database.clock.advance(seconds=61)
    worker = Worker(database.uow, HANDLERS, give_up=GIVE_UP, clock=database.clock)
    assert worker.round() is True  # the give-up, not a sixth try
    stopped = bulk.get_job(uow, TSU, job.id)
    assert (stopped.status, stopped.granted) == ("failed", 0)
    assert stopped.error is not None and stopped.error["code"] == "job_failed"
    assert [j[:2] for j in _jobs(database)] == [("grant_job", "failed")]

    again = send()  # the clerk sends it again, with the same key
    assert (again.id, again.status) == (job.id, "queued")
    assert worker.round() is True
    done = bulk.get_job(uow, TSU, job.id)
    assert (done.status, done.granted, done.points) == ("done", 2, 2000)
    assert worker.round() is False
