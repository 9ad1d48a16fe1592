"""Which database a read-only request reads: the replica while it keeps up, else the primary.

Routes that only read and may read a moment's old data ask for `ReadUow` (Point Navi, the
public lists, My Page's history, the log's proofs and tiles, statements); everything else keeps
`Uow`, the primary. Three things send a `ReadUow` to the primary:

- no replica is set, or it is down, not streaming or lagging (`mykey.replica.ReplicaWatch`);
- the browser has just written (read your own writes): an answer to a write through the pages
  or the API sets the cookie `mykey_wrote` for the replica's lag allowance plus a second, and
  while it is there the browser's reads stay on the primary (as Rails' database selector does
  with its delay after a write);
- what was asked for is not on the replica yet (`read_through`: a statement closed or an entry
  proved a moment ago): a refusal there (not found, not yet numbered, beyond its latest
  checkpoint) is asked of the primary, whose answer stands.

`mykey_reads_total{database}` counts the reads routed each way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError
from mykey.web.metrics import READS

T = TypeVar("T")

WROTE_COOKIE = "mykey_wrote"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _wrote_recently(request: Request) -> bool:
    value = request.cookies.get(WROTE_COOKIE, "")
    try:
        until = float(value)
    except ValueError:
        return False
    return time.time() < until


async def get_read_uow(request: Request) -> UnitOfWork:
    """A unit of work on the replica if it may answer this request, else on the primary."""
    state = request.app.state
    watch = state.replica
    if watch is not None and watch.usable() and not _wrote_recently(request):
        READS.labels("replica").inc()
        uow: UnitOfWork = state.replica_factory()
        return uow
    READS.labels("primary").inc()
    primary: UnitOfWork = state.uow_factory()
    return primary


ReadUow = Annotated[UnitOfWork, Depends(get_read_uow)]


def read_through(request: Request, reads: UnitOfWork, fn: Callable[[UnitOfWork], T]) -> T:
    """`fn(reads)`; if `reads` is the replica's and refuses (it may not have yet what was
    asked for) or `fn` finds it must write (a receipt whose entry awaits its checkpoint), `fn`
    on the primary, whose answer or refusal stands."""
    try:
        return fn(reads)
    except (MyKeyError, DBAPIError) as error:
        on_replica = reads.engine is not request.app.state.engine
        if not on_replica or (isinstance(error, DBAPIError) and not _read_only(error)):
            raise
    READS.labels("primary").inc()
    return fn(request.app.state.uow_factory())


def _read_only(error: DBAPIError) -> bool:
    """PostgreSQL's 25006 read_only_sql_transaction: a write tried on the replica."""
    return getattr(error.orig, "sqlstate", None) == "25006"


class StickyPrimary:
    """After a write that succeeded, keep the browser's reads on the primary for `seconds`."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE:
            await self.app(scope, receive, send)
            return

        async def stamp(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                until = f"{time.time() + self.seconds:.3f}"
                cookie = (
                    f"{WROTE_COOKIE}={until}; Max-Age={int(self.seconds) + 1}; Path=/;"
                    " HttpOnly; SameSite=Lax"
                )
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, stamp)
