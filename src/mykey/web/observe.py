"""Following one request through the logs: request ids, and JSON log lines (issue #16).

- Every request has an id: the caller's `X-Request-ID` if it sends a sane one (1–128 letters,
  digits and `._:-`, as a load balancer or a terminal makes them), else a new one (32 hex
  digits). The answer carries it back in `X-Request-ID`, and every log line written while the
  request is served — the app's own and uvicorn's access line — carries it as `request_id`
  (`install_request_ids_in_records`), so a clerk's complaint with the id on the screen leads
  to its lines.
- `JsonFormatter`: one JSON object per line (`time`, `level`, `logger`, `message`,
  `request_id`, `pid`; an access line also `client`, `method`, `path`, `status`; a traceback as
  `exception`), for a log collector. `mykey serve` uses it when `MYKEY_LOG_FORMAT=json`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID: ContextVar[str | None] = ContextVar("mykey_request_id", default=None)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's request id if it is sane, else a new one."""
    for name, value in headers:
        if name == HEADER.encode():
            given = value.decode("latin-1")
            if SANE.match(given):
                return given
            break
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware: the request's id in `REQUEST_ID` while it is served (the route's
    thread sees it too: the context goes with it), and in the answer's `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


_installed = False


def install_request_ids_in_records() -> None:
    """Every log record made in this process gets `request_id` (the request being served, or
    "-"), whatever logger and handler: the app's lines, uvicorn's access line, a library's."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.request_id = REQUEST_ID.get() or "-"
        return record

    logging.setLogRecordFactory(with_request_id)
    _installed = True


class JsonFormatter(logging.Formatter):
    """One JSON object per log line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "pid": os.getpid(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args  # uvicorn's: and the HTTP version
            line.update(client=client, method=method, path=path, status=status)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
