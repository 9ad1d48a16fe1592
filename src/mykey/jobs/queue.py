"""The job queue on the platform's own database (issue #16; why not a library: docs/deploy.md).

- `enqueue` writes a job in the caller's transaction: it exists if and only if what asked for
  it committed.
- `claim` hands the next due job to one worker under a lease (PostgreSQL: `FOR UPDATE SKIP
  LOCKED`, so workers never wait for each other; SQLite has one writer and one runner). A
  worker renews its lease while it works (`renew`, with the progress); a job whose lease lapses
  (its worker was killed) is claimed again by the next worker.
- `finish` records the result, or after a failure queues the job again after a pause, until
  its attempts are spent. Only the lease's holder may finish it (a worker that was presumed
  dead and comes back finds it taken, and changes nothing).
- A job is run at least once; its effect is once because every kind is idempotent (a bulk
  grant is one transaction that checks the grant job's status under its row lock; the daily
  work writes keyed transfers).
- `tick` enqueues the periodic jobs that are due: one run per due time across the fleet.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast
from uuid import UUID, uuid4, uuid5
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mykey.db import UnitOfWork
from mykey.jobs.models import Job, JobSchedule

JOBS = cast(Table, Job.__table__)
SCHEDULES = cast(Table, JobSchedule.__table__)
NAMESPACE = UUID("0d1c3e55-8f7b-4a7e-9a2e-51c6b1e7a0b4")  # MyKey job ids
TOKYO = ZoneInfo("Asia/Tokyo")
FINISHED = ("done", "failed")
MAX_PAUSE = 300.0  # seconds between tries of a failing job, at most


@dataclass(frozen=True)
class Progress:
    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: its lease is `attempt` of `id` by `worker`."""

    id: str
    kind: str
    args: dict[str, Any]
    attempt: int
    max_attempts: int
    worker: str
    given_up: bool = False  # its tries were spent by workers that died: now failed


@dataclass(frozen=True)
class JobState:
    id: str
    kind: str
    status: str
    attempts: int
    progress: Progress | None
    result: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class Schedule:
    """A periodic job: every `every`, or once a Tokyo day at `daily_at`. The first run is due
    when the first worker ever sees it (at once)."""

    name: str
    kind: str
    every: timedelta | None = None
    daily_at: time | None = None

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + self.every
        assert self.daily_at is not None
        local = moment.astimezone(TOKYO)
        due = datetime.combine(local.date(), self.daily_at, TOKYO)
        if due <= local:
            due = datetime.combine(local.date() + timedelta(days=1), self.daily_at, TOKYO)
        return due.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# progress of the jobs running in this process (SQLite: a write beside the job's own
# transaction would wait for it, so progress stays in the one process that runs the jobs)

_local: dict[str, Progress] = {}
_local_lock = threading.Lock()
_wake = threading.Event()


def wake() -> None:
    """Tell this process's job runner that there is work (it polls anyway)."""
    _wake.set()


def wait_for_work(seconds: float) -> None:
    _wake.wait(seconds)
    _wake.clear()


def report_here(job_id: str, progress: Progress | None) -> None:
    with _local_lock:
        if progress is None:
            _local.pop(job_id, None)
        else:
            _local[job_id] = progress


# ---------------------------------------------------------------------------------------------
# the queue


def job_id_for(*parts: str) -> str:
    """A job's id made from what it is for, so that asking twice names the same job."""
    return str(uuid5(NAMESPACE, "\x1f".join(parts)))


def enqueue(
    uow: UnitOfWork,
    kind: str,
    args: dict[str, Any] | None = None,
    *,
    job_id: str | None = None,
    max_attempts: int = 5,
    run_after: datetime | None = None,
) -> str:
    """Queue a job in the open transaction of `uow` (call it inside `uow.run`). A job of the
    same id that failed is queued again; one queued, running or done is left as it is."""
    now = uow.now()
    job_id = job_id or str(uuid4())
    conn = uow.connection
    found = conn.execute(select(JOBS.c.status).where(JOBS.c.id == job_id)).first()
    if found is None:
        conn.execute(
            insert(JOBS).values(
                id=job_id,
                kind=kind,
                args=json.dumps(args or {}, sort_keys=True, ensure_ascii=False),
                status="queued",
                attempts=0,
                max_attempts=max_attempts,
                run_after=run_after or now,
                done=0,
                total=0,
                created_at=now,
            )
        )
    elif found.status == "failed":
        conn.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id)
            .values(
                status="queued",
                attempts=0,
                run_after=now,
                worker=None,
                lease_until=None,
                error=None,
                finished_at=None,
            )
        )
    return job_id


def _due(now: datetime, *, even_paused: bool = False) -> Any:
    """Queued and its time come (any queued job if `even_paused`: one asked for by name, in a
    retry's pause), or running under a lease that lapsed."""
    queued = JOBS.c.status == "queued"
    if not even_paused:
        queued = and_(queued, JOBS.c.run_after <= now)
    return or_(queued, and_(JOBS.c.status == "running", JOBS.c.lease_until < now))


def claim(
    uow: UnitOfWork,
    worker: str,
    *,
    lease: float,
    kinds: Sequence[str] | None = None,
    job_id: str | None = None,
) -> Claim | None:
    """Take the next due job (or the job `job_id`, if it is due) under a lease of `lease`
    seconds, or None. A job whose tries were all spent by workers that died is marked failed
    instead, and returned `given_up`, for its kind to record what that means."""

    def body() -> Claim | None:
        now = uow.now()
        conn = uow.connection
        # asked for by name (a clerk running it by hand): now, even in a retry's pause
        query = select(JOBS).where(_due(now, even_paused=job_id is not None))
        if job_id is not None:
            query = query.where(JOBS.c.id == job_id)
        if kinds is not None:
            query = query.where(JOBS.c.kind.in_(list(kinds)))
        query = query.order_by(JOBS.c.run_after, JOBS.c.created_at).limit(1)
        row = conn.execute(query.with_for_update(skip_locked=True)).first()
        if row is None:
            return None
        picked = row.id
        if row.attempts >= row.max_attempts:  # its last worker died holding it
            conn.execute(
                update(JOBS)
                .where(JOBS.c.id == picked)
                .values(
                    status="failed",
                    worker=None,
                    lease_until=None,
                    finished_at=now,
                    error=row.error or "its worker stopped before it finished, every try",
                )
            )
            args = json.loads(row.args)
            return Claim(picked, row.kind, args, row.attempts, row.max_attempts, worker, True)
        conn.execute(
            update(JOBS)
            .where(JOBS.c.id == picked)
            .values(
                status="running",
                worker=worker,
                attempts=row.attempts + 1,
                lease_until=now + timedelta(seconds=lease),
                started_at=now,
            )
        )
        return Claim(
            picked, row.kind, json.loads(row.args), row.attempts + 1, row.max_attempts, worker
        )

    return uow.run(body)


def _held(claim: Claim) -> Any:
    return and_(
        JOBS.c.id == claim.id,
        JOBS.c.status == "running",
        JOBS.c.worker == claim.worker,
        JOBS.c.attempts == claim.attempt,
    )


def renew(uow: UnitOfWork, claim: Claim, *, lease: float, progress: Progress | None) -> bool:
    """Extend the lease (and record the progress); False if the job is no longer this
    worker's (its lease lapsed and another worker took it)."""

    def body() -> bool:
        values: dict[str, Any] = {"lease_until": uow.now() + timedelta(seconds=lease)}
        if progress is not None:
            values.update(phase=progress.phase, done=progress.done, total=progress.total)
        result = uow.connection.execute(update(JOBS).where(_held(claim)).values(**values))
        return bool(result.rowcount)

    return uow.run(body)


def finish(
    uow: UnitOfWork,
    claim: Claim,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> str | None:
    """Record the job's end: done with `result`, or after `error` queued again after a pause
    (failed once its tries are spent). Returns the job's new status, or None if the job was
    no longer this worker's."""

    def body() -> str | None:
        now = uow.now()
        values: dict[str, Any] = {"worker": None, "lease_until": None}
        if error is None:
            status = "done"
            values.update(
                status=status,
                result=json.dumps(result or {}, sort_keys=True, ensure_ascii=False, default=str),
                error=None,
                finished_at=now,
            )
        elif claim.attempt >= claim.max_attempts:
            status = "failed"
            values.update(status=status, error=error[:2000], finished_at=now)
        else:
            status = "queued"
            pause = min(2.0**claim.attempt, MAX_PAUSE)
            values.update(
                status=status, error=error[:2000], run_after=now + timedelta(seconds=pause)
            )
        changed = uow.connection.execute(update(JOBS).where(_held(claim)).values(**values))
        return status if changed.rowcount else None

    return uow.run(body)


def recover(uow: UnitOfWork) -> int:
    """Make every running job claimable at once: for the one runner of an embedded (SQLite)
    database, whose jobs were left running by a process that ended."""

    def body() -> int:
        result = uow.connection.execute(
            update(JOBS).where(JOBS.c.status == "running").values(lease_until=uow.now())
        )
        return int(result.rowcount)

    return uow.run(body)


def state_of(uow: UnitOfWork, job_id: str) -> JobState | None:
    """A job as it stands (with this process's own progress of it, on SQLite)."""

    def body() -> JobState | None:
        row = uow.connection.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
        if row is None:
            return None
        return JobState(
            row.id,
            row.kind,
            row.status,
            row.attempts,
            _progress(row),
            json.loads(row.result) if row.result else None,
            row.error,
        )

    return uow.read(body)


def _progress(row: Any) -> Progress | None:
    if row.status not in ("queued", "running"):
        return None
    with _local_lock:
        here = _local.get(row.id)
    if here is not None:
        return here
    if row.phase is None:
        return None
    return Progress(row.phase, int(row.done), int(row.total))


def progress_of(uow: UnitOfWork, job_ids: Sequence[str]) -> dict[str, Progress]:
    """The progress of those of `job_ids` that are queued or running, in the open transaction."""
    if not job_ids:
        return {}
    rows = uow.connection.execute(
        select(JOBS.c.id, JOBS.c.status, JOBS.c.phase, JOBS.c.done, JOBS.c.total).where(
            JOBS.c.id.in_(list(job_ids))
        )
    ).all()
    found = {r.id: _progress(r) for r in rows}
    return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class Depth:
    kind: str
    status: str
    count: int
    oldest: datetime | None


def depth(conn: Connection, statuses: Sequence[str] = ("queued", "running")) -> list[Depth]:
    """The jobs in `statuses`, by kind and status, with the oldest's creation."""
    rows = conn.execute(
        select(JOBS.c.kind, JOBS.c.status, func.count(), func.min(JOBS.c.created_at))
        .where(JOBS.c.status.in_(list(statuses)))
        .group_by(JOBS.c.kind, JOBS.c.status)
    ).all()
    return [Depth(r[0], r[1], int(r[2]), r[3]) for r in rows]


# ---------------------------------------------------------------------------------------------
# periodic jobs


def tick(uow: UnitOfWork, schedules: Sequence[Schedule]) -> list[str]:
    """Enqueue every periodic job that is due, once per due time across the fleet: the due
    time moves on only where nobody has moved it (compare and set), in the transaction that
    enqueues the run. Returns the ids of the jobs this call enqueued."""
    if not schedules:
        return []
    now = uow.now()
    names = [s.name for s in schedules]

    def known() -> dict[str, datetime]:
        rows = uow.connection.execute(
            select(SCHEDULES.c.name, SCHEDULES.c.next_at).where(SCHEDULES.c.name.in_(names))
        ).all()
        return {r[0]: r[1] for r in rows}

    due = uow.read(known)
    made: list[str] = []
    for schedule in schedules:
        at = due.get(schedule.name)
        if at is not None and at > now:
            continue

        def body(s: Schedule = schedule, at: datetime | None = at) -> str | None:
            run_at = at or now  # never seen before: due at once, for the first worker ever
            job_id = job_id_for("schedule", s.name, run_at.isoformat())
            if at is None:  # a second worker's insert of the same name fails: it lost
                uow.connection.execute(
                    insert(SCHEDULES).values(
                        name=s.name, next_at=s.next_after(now), last_job=job_id
                    )
                )
            else:
                moved = uow.connection.execute(
                    update(SCHEDULES)
                    .where(SCHEDULES.c.name == s.name, SCHEDULES.c.next_at == at)
                    .values(next_at=s.next_after(now), last_job=job_id)
                )
                if not moved.rowcount:
                    return None  # another worker enqueued this run
            enqueue(uow, s.kind, {"due": run_at.isoformat()}, job_id=job_id, max_attempts=3)
            return job_id

        with contextlib.suppress(IntegrityError):  # another worker wrote it first
            job = uow.run(body)
            if job is not None:
                made.append(job)
    return made


def make_due(uow: UnitOfWork, name: str, at: datetime | None = None) -> None:
    """Make a periodic job due now (or at `at`): for an operator who wants it run at once."""

    def body() -> None:
        when = at or uow.now()
        moved = uow.connection.execute(
            update(SCHEDULES).where(SCHEDULES.c.name == name).values(next_at=when)
        )
        if not moved.rowcount:
            uow.connection.execute(insert(SCHEDULES).values(name=name, next_at=when))

    uow.run(body)


__all__ = [
    "Claim",
    "Depth",
    "JobState",
    "Progress",
    "Schedule",
    "claim",
    "depth",
    "enqueue",
    "finish",
    "job_id_for",
    "make_due",
    "progress_of",
    "recover",
    "renew",
    "report_here",
    "state_of",
    "tick",
    "wake",
]
