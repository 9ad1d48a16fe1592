"""Count what one operation costs the database: round trips, statements, commits (issue #14).

`counting(engine)` watches every connection the engine hands out inside the block:

- on PostgreSQL, libpq's own protocol trace (`PQtrace`) of the connection: a round trip is a
  `ReadyForQuery` the server sends (one per simple query, one per extended-query `Sync`), so
  BEGIN and COMMIT, which psycopg sends by itself, are counted as the round trips they are,
  and so are statements sent on the driver's own cursor, past SQLAlchemy;
- on SQLite, the driver's trace callback: every statement the library runs, BEGIN IMMEDIATE
  and COMMIT included (each a call into the library: the embedded engine's "round trip").

Each statement is listed with the source line of `mykey` that sent it (`Count.listing()`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event

SRC = str(Path(__file__).resolve().parents[1] / "src" / "mykey")


def _source() -> str:
    """The innermost line of `mykey` on the stack (the one that sent the statement)."""
    for frame in reversed(traceback.extract_stack()):
        if frame.filename.startswith(SRC) and not frame.filename.endswith("/db.py"):
            return f"{frame.filename[len(SRC) - 5 :]}:{frame.lineno} {frame.name}"
    for frame in reversed(traceback.extract_stack()):
        if frame.filename.startswith(SRC):
            return f"{frame.filename[len(SRC) - 5 :]}:{frame.lineno} {frame.name}"
    return "?"


@dataclass
class Count:
    dialect: str
    statements: list[tuple[str, str]] = field(default_factory=list)  # (sql, source)
    round_trips: int = 0
    commits: int = 0
    _traces: list[Path] = field(default_factory=list)

    def listing(self) -> str:
        lines = [f"{self.dialect}: {self.round_trips} round trips, {self.commits} commits"]
        for n, (sql, where) in enumerate(self.statements, 1):
            short = " ".join(sql.split())[:110]
            lines.append(f"{n:3d}. {short}\n       ← {where}")
        return "\n".join(lines)


_QUERY = re.compile(r'^F\t\d+\t(Query|Parse)\t "?(.*)$')


def _read_trace(count: Count, path: Path) -> None:
    text = path.read_text(errors="replace")
    for line in text.splitlines():
        if "\tReadyForQuery\t" in line and line.startswith("B"):
            count.round_trips += 1
        elif line.startswith("B") and '\tCommandComplete\t "COMMIT"' in line:
            count.commits += 1


@contextmanager
def counting(engine: Engine) -> Iterator[Count]:
    count = Count(engine.dialect.name)
    postgres = count.dialect == "postgresql"
    traced: dict[int, tuple[Any, Any]] = {}
    original_execute = psycopg.Cursor.execute

    def on_checkout(dbapi: Any, _record: Any, _proxy: Any) -> None:
        if postgres:
            fd, name = tempfile.mkstemp(prefix="mykey-trace-", suffix=".txt")
            handle = os.fdopen(fd, "w")
            dbapi.pgconn.trace(handle.fileno())
            dbapi.pgconn.set_trace_flags(
                psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE
            )
            traced[id(dbapi)] = (dbapi, handle)
            count._traces.append(Path(name))
        else:

            def seen(sql: str) -> None:
                count.statements.append((sql, _source()))
                count.round_trips += 1
                if sql.strip().upper().startswith("COMMIT"):
                    count.commits += 1

            dbapi.set_trace_callback(seen)
            traced[id(dbapi)] = (dbapi, None)

    def on_checkin(dbapi: Any, _record: Any) -> None:
        found = traced.pop(id(dbapi), None)
        if found is None:
            return
        if postgres:
            dbapi.pgconn.untrace()
            found[1].close()
        else:
            dbapi.set_trace_callback(None)

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if id(self.connection) in traced:
            sql = query if isinstance(query, str) else repr(query)
            count.statements.append((sql, _source()))
        return original_execute(self, query, *args, **kwargs)

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
    if postgres:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield count
    finally:
        event.remove(engine, "checkout", on_checkout)
        event.remove(engine, "checkin", on_checkin)
        psycopg.Cursor.execute = original_execute  # type: ignore[method-assign]
        for dbapi, handle in list(traced.values()):  # still checked out: stop tracing now
            if postgres:
                dbapi.pgconn.untrace()
                handle.close()
            else:
                dbapi.set_trace_callback(None)
        for path in count._traces:
            _read_trace(count, path)
            if os.environ.get("MYKEY_KEEP_TRACE"):
                print(f"trace: {path}", file=sys.stderr)
            else:
                path.unlink(missing_ok=True)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL of every statement sent on `engine`'s connections inside the block, and a
    "checkout" for every connection taken from its pool (the lighter count: no driver trace).

    On PostgreSQL they are read at psycopg's cursor, so that statements sent past SQLAlchemy
    (the ledger's and the payment's own, `db.send_together`) are seen too; on SQLite at
    SQLAlchemy's."""
    seen: list[str] = []
    postgres = engine.dialect.name == "postgresql"
    mine: set[int] = set()
    original_execute = psycopg.Cursor.execute

    def statement(*args: object) -> None:
        seen.append(str(args[2]))

    def checkout(dbapi: Any, *_args: object) -> None:
        mine.add(id(dbapi))
        seen.append("checkout")

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if id(self.connection) in mine:
            seen.append(query if isinstance(query, str) else repr(query))
        return original_execute(self, query, *args, **kwargs)

    event.listen(engine.pool, "checkout", checkout)
    if postgres:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    else:
        event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(engine.pool, "checkout", checkout)
        if postgres:
            psycopg.Cursor.execute = original_execute  # type: ignore[method-assign]
        else:
            event.remove(engine, "before_cursor_execute", statement)
