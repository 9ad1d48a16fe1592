"""The kinds of job the platform runs, and its periodic jobs.

- `grant_job`: a bulk grant (R4.4), on the file kept with it; enqueued by `submit_job` in the
  transaction that records the job.
- `daily` (once a Tokyo day, at 00:05): expiry of vouchers and points, the sweep of reserved
  points, the purge of ended page sessions.
- `holds` (every 10 minutes): online payment holds that expired are released.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import time, timedelta
from typing import Any

from mykey.config import Settings
from mykey.db import Clock, UnitOfWork, is_sqlite, tokyo_date, utcnow
from mykey.jobs.queue import Schedule
from mykey.jobs.worker import GiveUp, Handler, JobContext, Worker
from mykey.points import bulk
from mykey.points.expiry import DailyJobs

SCHEDULES = (
    Schedule("daily", "daily", daily_at=time(0, 5)),
    Schedule("holds", "holds", every=timedelta(minutes=10)),
)


def _grant_job(ctx: JobContext) -> Mapping[str, Any]:
    claim = ctx.claim
    view = bulk.run_queued(
        ctx.uow_factory(), claim.id, progress=ctx.report, final=claim.attempt >= claim.max_attempts
    )
    return {"status": view.status, "granted": view.granted, "points": view.points}


def _grant_job_given_up(ctx: JobContext) -> None:
    bulk.abandon(ctx.uow_factory(), ctx.claim.id)


def _daily(ctx: JobContext) -> Mapping[str, Any]:
    # today's work, whenever the run was due: a run made late (the fleet was down over
    # midnight) expires everything that lapsed up to today, and running it again does nothing
    day = tokyo_date(ctx.clock())
    report = DailyJobs(ctx.uow_factory, ctx.clock).run_day(day)
    return {"day": str(day), "lots": report.lots, "points": report.points}


def _holds(ctx: JobContext) -> Mapping[str, Any]:
    return {"released": DailyJobs(ctx.uow_factory, ctx.clock).release_holds()}


HANDLERS: dict[str, Handler] = {"grant_job": _grant_job, "daily": _daily, "holds": _holds}
GIVE_UP: dict[str, GiveUp] = {"grant_job": _grant_job_given_up}


def platform_worker(
    uow_factory: Callable[[], UnitOfWork],
    settings: Settings,
    *,
    schedules: bool,
    clock: Clock = utcnow,
    lease: float | None = None,
    name: str | None = None,
) -> Worker:
    """A worker of the platform's jobs (and, if `schedules`, of its periodic ones) as the
    settings say: lease, poll, and embedded on SQLite (one runner, progress in memory)."""
    return Worker(
        uow_factory,
        HANDLERS,
        schedules=SCHEDULES if schedules else (),
        give_up=GIVE_UP,
        lease=lease or settings.job_lease_seconds,
        poll=settings.job_poll_seconds,
        embedded=is_sqlite(settings.database_url),
        clock=clock,
        name=name,
    )
