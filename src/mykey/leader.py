"""One process leads the background work: the one that holds a lock on the database.

`mykey serve --workers N` starts N processes, and several machines may serve the same
database; the background work (the daily jobs, signing checkpoints) is safe to run twice (keyed
transfers, locked checkpoints) but should run once. A `LeaderLock` is held by at most one
process per database:

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own,
  kept open while the process leads. When the process dies or its connection is cut, the server
  releases the lock and another process takes it at its next try. The connection must be a
  real session: behind PgBouncer in transaction mode, `MYKEY_DATABASE_SESSION_URL` points at
  PostgreSQL itself (a changed backend pid is taken as a lost lock).
- SQLite: `flock` on a file next to the database (`<database>-leader.lock`); the operating
  system releases it when the process ends. An in-memory database has one process: it leads.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from mykey.db import CONNECT_TIMEOUT, is_sqlite, unavailable_summary

LEADER_LOCK = 0x6D796B6579_6A6F62  # "mykeyjob": the pg_advisory_lock key of the background work

log = logging.getLogger(__name__)


class LeaderLock:
    """A lock at most one process holds per database; `try_hold()` takes it or checks it."""

    def __init__(self, url: str, *, key: int = LEADER_LOCK) -> None:
        self.url = url
        self.key = key
        self._held = False
        # PostgreSQL: the connection that holds the lock, and its backend's pid
        self._engine: Any = None
        self._connection: Connection | None = None
        self._backend_pid: int | None = None
        # SQLite: the lock file's descriptor
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._held

    def lock_file(self) -> Path | None:
        """SQLite's lock file, or None (PostgreSQL, or an in-memory database)."""
        if not is_sqlite(self.url):
            return None
        database = make_url(self.url).database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(f"{database}-leader.lock")

    def try_hold(self) -> bool:
        """Take the lock if it is free, or check that it is still held; never waits. False
        while another process holds it, or while the database cannot be reached."""
        if is_sqlite(self.url):
            self._held = self._hold_file()
        else:
            self._held = self._hold_advisory()
        return self._held

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._held and self._connection is not None:
            # at once: the server ends a closed session's backend a moment later (if the
            # connection is gone, the lock went with it)
            with contextlib.suppress(SQLAlchemyError):
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        self._drop_connection()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._held = False

    # -- SQLite ---------------------------------------------------------------------------------

    def _hold_file(self) -> bool:
        path = self.lock_file()
        if path is None:
            return True  # an in-memory database: this process is the only one
        if self._fd is not None:
            return True  # flock is held until the descriptor is closed
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    # -- PostgreSQL -----------------------------------------------------------------------------

    def _hold_advisory(self) -> bool:
        try:
            if self._connection is None:
                if self._engine is None:
                    connect_args: dict[str, Any] = {}
                    if "connect_timeout" not in make_url(self.url).query:
                        connect_args["connect_timeout"] = CONNECT_TIMEOUT
                    self._engine = create_engine(
                        self.url, poolclass=NullPool, connect_args=connect_args
                    )
                connection = self._engine.connect()
                self._connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                self._backend_pid = None
            conn = self._connection
            if self._held:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                if pid == self._backend_pid:
                    return True
                log.error(
                    "the leader lock's connection changed backends (a pooler in transaction"
                    " mode?): set MYKEY_DATABASE_SESSION_URL to a direct connection"
                )
                self._drop_connection()
                return False
            row = conn.execute(
                text("SELECT pg_try_advisory_lock(:k), pg_backend_pid()"), {"k": self.key}
            ).one()
            if row[0]:
                self._backend_pid = int(row[1])
                return True
            return False
        except (DBAPIError, SQLAlchemyError) as exc:  # down, restarting, unreachable
            log.warning("leader lock: database unavailable (%s)", unavailable_summary(exc))
            self._drop_connection()
            return False

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._backend_pid = None
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                connection.invalidate()  # closing the session releases a lock it held
                connection.close()
