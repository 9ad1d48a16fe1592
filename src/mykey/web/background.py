"""The background work of a serving process, run by one process per database.

Every process of `mykey serve --workers N` (and every machine serving the same database) starts
a `BackgroundWork`: it tries the leader lock (`mykey.leader`) at once and then every
`poll_seconds`. The process that holds it runs the jobs (the daily expiry and sweeps, a
checkpoint every 10 s); the others stand by, and one of them takes over within `poll_seconds`
when the leader's process ends or its lock connection is lost (it then stops its jobs). The
jobs stay safe to run twice (keyed transfers, locked checkpoints), so the short overlap of a
take-over does no harm.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from mykey.leader import LeaderLock

log = logging.getLogger("mykey.web.background")

POLL_SECONDS = 5.0


class Job(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class BackgroundWork:
    """Start `make_jobs()` while this process holds `lock`; stop them when it is lost."""

    def __init__(
        self,
        lock: LeaderLock,
        make_jobs: Callable[[], Sequence[Job]],
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.lock = lock
        self.make_jobs = make_jobs
        self.poll_seconds = poll_seconds
        self.jobs: list[Job] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mykey-leader", daemon=True)

    @property
    def role(self) -> Literal["leader", "standby"]:
        return "leader" if self.jobs else "standby"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._stop_jobs()
        self.lock.release()

    def check(self) -> None:
        """One round: take or keep the lock, start or stop the jobs accordingly."""
        held = self.lock.try_hold()
        if held and not self.jobs:
            self.jobs = list(self.make_jobs())
            for job in self.jobs:
                job.start()
            log.info("background work: process %d leads it", os.getpid())
        elif not held and self.jobs:
            log.warning("background work: process %d lost the leader lock", os.getpid())
            self._stop_jobs()

    def _stop_jobs(self) -> None:
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job.stop()

    def _loop(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # a bad round must not end the thread; the next one tries again
                log.exception("background work: leader check failed")
            if self._stop.wait(self.poll_seconds):
                return
