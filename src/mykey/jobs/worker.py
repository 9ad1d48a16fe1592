"""A worker: takes due jobs from the queue one at a time and runs them; enqueues the periodic
jobs when they fall due.

`mykey worker` runs one in its own process (PostgreSQL; as many processes as wanted, on any
machine). On the embedded SQLite default the serving process that holds the leader lock runs
one in a thread (`embedded`): one runner, so at its start it reclaims the jobs a previous
process left running, and the progress of a job stays in that process's memory (a write beside
the job's own transaction would wait for it).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mykey.db import UnitOfWork, is_unavailable, unavailable_summary, utcnow
from mykey.jobs import queue
from mykey.jobs.queue import Claim, Progress, Schedule

log = logging.getLogger("mykey.jobs")

LEASE_SECONDS = 60.0
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class JobContext:
    """What a job's handler gets: its claim (id, args), units of work, the clock, and a way to
    tell its progress."""

    claim: Claim
    uow_factory: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    report: Callable[[Progress], None]

    @property
    def args(self) -> dict[str, Any]:
        return self.claim.args


class Handler(Protocol):
    def __call__(self, ctx: JobContext) -> Mapping[str, Any] | None: ...


class GiveUp(Protocol):
    """What a kind of job records when it is given up (its tries spent by dying workers)."""

    def __call__(self, ctx: JobContext) -> None: ...


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Run jobs of the kinds in `handlers`, and enqueue `schedules` when due."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        handlers: Mapping[str, Handler],
        *,
        schedules: Sequence[Schedule] = (),
        give_up: Mapping[str, GiveUp] | None = None,
        lease: float = LEASE_SECONDS,
        poll: float = POLL_SECONDS,
        embedded: bool = False,
        clock: Callable[[], datetime] = utcnow,
        name: str | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.handlers = dict(handlers)
        self.schedules = list(schedules)
        self.give_up = dict(give_up or {})
        self.lease = lease
        self.poll = poll
        self.embedded = embedded
        self.clock = clock
        self.name = name or worker_name()
        self.ran = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_outage = ""

    # -- one job ---------------------------------------------------------------------------

    def run_one(self, *, job_id: str | None = None) -> Claim | None:
        """Claim the next due job (or `job_id`), run it to its end, and return its claim; None
        when nothing is due."""
        claim = queue.claim(
            self.uow_factory(),
            self.name,
            lease=self.lease,
            kinds=list(self.handlers),
            job_id=job_id,
        )
        if claim is not None:
            self.run_claimed(claim)
        return claim

    def run_claimed(
        self, claim: Claim, *, progress: Callable[[Progress], None] | None = None
    ) -> str | None:
        """Run a claimed job, renewing its lease as it goes; record how it ended."""
        if claim.given_up:
            return self._record_given_up(claim)
        latest: list[Progress | None] = [None]
        done = threading.Event()

        def report(p: Progress) -> None:
            latest[0] = p
            if self.embedded:
                queue.report_here(claim.id, p)
            if progress is not None:
                progress(p)

        def keep_lease() -> None:
            sent: Progress | None = None
            while not done.wait(min(1.0, self.lease / 3)):
                now = latest[0]
                try:
                    if not queue.renew(
                        self.uow_factory(),
                        claim,
                        lease=self.lease,
                        progress=now if now != sent else None,
                    ):
                        log.warning("job %s (%s): another worker took it", claim.id, claim.kind)
                        return
                    sent = now
                except Exception as exc:  # the next beat tries again
                    log.warning("job %s: lease not renewed (%s)", claim.id, _summary(exc))

        beat = None
        if not self.embedded:
            beat = threading.Thread(target=keep_lease, name="mykey-job-lease", daemon=True)
            beat.start()
        log.info("job %s (%s): try %d", claim.id, claim.kind, claim.attempt)
        result: Mapping[str, Any] | None = None
        error: str | None = None
        try:
            handler = self.handlers[claim.kind]
            result = handler(JobContext(claim, self.uow_factory, self.clock, report))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if is_unavailable(exc):
                log.warning("job %s (%s): database unavailable (%s)", claim.id, claim.kind, error)
            else:
                log.error(
                    "job %s (%s) failed: %s",
                    claim.id,
                    claim.kind,
                    "".join(traceback.format_exception(exc)).rstrip(),
                )
        finally:
            done.set()
            if beat is not None:
                beat.join(timeout=5)
            queue.report_here(claim.id, None)
        self.ran += 1
        try:
            status = queue.finish(self.uow_factory(), claim, result=dict(result or {}), error=error)
        except Exception as exc:  # its lease lapses and another worker runs it again
            log.warning("job %s: its end not recorded (%s)", claim.id, _summary(exc))
            return None
        log.info("job %s (%s): %s", claim.id, claim.kind, status or "taken by another worker")
        return status

    def _record_given_up(self, claim: Claim) -> str:
        """What the job's kind records of a job given up (the queue's row is failed already)."""
        log.error(
            "job %s (%s): given up after %d tries whose workers stopped",
            claim.id,
            claim.kind,
            claim.attempt,
        )
        record = self.give_up.get(claim.kind)
        if record is not None:
            try:
                record(JobContext(claim, self.uow_factory, self.clock, lambda _p: None))
            except Exception as exc:  # the queue's row says failed either way
                log.warning("job %s: its end not recorded (%s)", claim.id, _summary(exc))
        return "failed"

    # -- the loop --------------------------------------------------------------------------

    def tick(self) -> list[str]:
        return queue.tick(self.uow_factory(), self.schedules)

    def round(self) -> bool:
        """Enqueue what is due, then run one job; True if a job ran."""
        try:
            self.tick()
            ran = self.run_one() is not None
            self._last_outage = ""
            return ran
        except Exception as exc:
            summary = _summary(exc)
            if summary != self._last_outage:  # once per reason, not every poll
                if is_unavailable(exc):
                    log.warning("jobs: database unavailable (%s)", summary)
                else:
                    log.exception("jobs: round failed")
                self._last_outage = summary
            return False

    def loop(self) -> None:
        """Run until `stop()`: a job after another while there are some, else wait `poll`
        seconds (or until this process enqueues one)."""
        if self.embedded:
            try:
                queue.recover(self.uow_factory())
            except Exception as exc:
                log.warning("jobs: could not reclaim running jobs (%s)", _summary(exc))
        while not self._stop.is_set():
            if not self.round():
                queue.wait_for_work(self.poll)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="mykey-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the job in hand (a job cut short is run again: its transaction is
        undone)."""
        self._stop.set()
        queue.wake()
        if self._thread is not None:
            self._thread.join(timeout=timeout)


def _summary(exc: BaseException) -> str:
    return unavailable_summary(exc) if is_unavailable(exc) else f"{type(exc).__name__}: {exc}"
