"""The job queue's tables: the jobs, and when each periodic job is next due."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime


class Job(Base):
    """One piece of background work: queued, running (under a worker's lease), done or failed.

    Its progress (`phase`, `done` of `total`) and its result are here, so any web process
    answers a poll. A running job whose lease has lapsed (its worker died) is queued work
    again: the next worker takes it (`attempts` counts the tries)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "run_after"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    args: Mapped[str] = mapped_column(Text)  # JSON object
    status: Mapped[str] = mapped_column(String(8))  # queued running done failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    phase: Mapped[str | None] = mapped_column(String(20))
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[str | None] = mapped_column(Text)  # JSON
    error: Mapped[str | None] = mapped_column(Text)  # the last failure, in words
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobSchedule(Base):
    """When a periodic job is next due. A worker that finds it due moves `next_at` on only if
    nobody else has (compare and set), and enqueues the run in the same transaction: one run
    per due time, whatever the number of workers."""

    __tablename__ = "job_schedules"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_job: Mapped[str | None] = mapped_column(String(36))
