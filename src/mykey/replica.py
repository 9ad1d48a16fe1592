"""A read replica (PostgreSQL streaming replication) for the read-only traffic.

`MYKEY_DATABASE_REPLICA_URL` names a hot standby of the primary. Each web process watches it in
a thread of its own (`ReplicaWatch`, once a second): it is used while it answers, is still in
recovery (a standby, not promoted), receives the primary's WAL (`pg_stat_wal_receiver` says
`streaming`) and has replayed what it received, or lags by at most
`MYKEY_DATABASE_REPLICA_MAX_LAG_SECONDS`. Otherwise, or when the last good check is older than
three seconds, reads go to the primary. A request never waits for the check.

The lag is the age of the last replayed transaction only while WAL is waiting to be replayed;
when everything received has been replayed the replica is as fresh as the primary's stream (an
idle primary sends nothing, and a replay timestamp would then grow without any lag).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mykey.db import unavailable_summary

log = logging.getLogger("mykey.replica")

CHECK_SECONDS = 1.0
STALE_SECONDS = 3.0

LAG = text(
    """
    SELECT pg_is_in_recovery(),
           EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
           CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9)
           END
    """
)


@dataclass(frozen=True)
class ReplicaState:
    usable: bool
    reason: str  # ok, lagging, not_streaming, not_a_standby, unreachable, not_checked
    lag_seconds: float | None
    checked_at: float  # time.monotonic()


class ReplicaWatch:
    """Checks the replica every `CHECK_SECONDS` in a daemon thread; `usable()` is free."""

    def __init__(self, engine: Engine, *, max_lag: float) -> None:
        self.engine = engine
        self.max_lag = max_lag
        self._state = ReplicaState(False, "not_checked", None, 0.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> ReplicaState:
        return self._state

    def usable(self) -> bool:
        state = self._state
        return state.usable and time.monotonic() - state.checked_at < STALE_SECONDS

    def check(self) -> ReplicaState:
        now = time.monotonic()
        try:
            with self.engine.connect() as conn:
                standby, streaming, lag = conn.execute(LAG).one()
        except SQLAlchemyError as exc:
            if self._state.reason != "unreachable":
                log.warning("read replica unreachable: %s", unavailable_summary(exc))
            state = ReplicaState(False, "unreachable", None, now)
        else:
            lag = float(lag)
            if not standby:
                reason = "not_a_standby"  # promoted, or the primary's own URL: reads stay home
            elif not streaming:
                reason = "not_streaming"
            elif lag > self.max_lag:
                reason = "lagging"
            else:
                reason = "ok"
            if reason != self._state.reason and self._state.reason != "not_checked":
                log.warning("read replica: %s (lag %.1f s)", reason, lag)
            state = ReplicaState(reason == "ok", reason, lag, now)
        self._state = state
        return state

    def _loop(self) -> None:
        while True:
            self.check()
            if self._stop.wait(CHECK_SECONDS):
                return

    def start(self) -> None:
        self.check()  # the first requests already know
        self._thread = threading.Thread(target=self._loop, name="mykey-replica", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
