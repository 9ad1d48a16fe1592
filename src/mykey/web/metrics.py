"""Prometheus metrics at `/metrics` (issue #16), with prometheus-client.

What each web process counts as it serves (summed over the processes of `mykey serve
--workers N`: the parent gives them a common `PROMETHEUS_MULTIPROC_DIR`, prometheus-client's
multi-process mode, and any of them answers a scrape for all):

- `mykey_http_requests_total{channel, route, method, status}` and
  `mykey_http_request_duration_seconds{channel, route, method}`: per route *template*
  (`/api/v1/municipalities/{code}`, never a resident's number), and per channel
  (`mykey.web.surge`); a request refused by its channel's budget has route `-`;
- `mykey_channel_refused_total{channel}`: requests over their channel's budget (503);
- `mykey_payments_total`: counter payments made (a replay of one is not counted again);
- `mykey_refusals_total{code}`: problem+json answers by their code (`insufficient_points`,
  `unknown_card`, `channel_busy` …), the refusals a help desk hears about;
- `mykey_db_connections_in_use`: connections taken from the pools now;
- `mykey_reads_total{database}`: read-only requests answered by the read replica or, when
  there is none or it is behind, by the primary (`mykey.web.replicas`).

And what the database says at the time of the scrape (the same whichever process answers):
`mykey_jobs{kind,status}` (the job queue's jobs queued and running: `grant_job`, `daily`,
`holds`), `mykey_job_oldest_age_seconds{kind}` (the oldest of those), `mykey_jobs_failed{kind}`
(jobs that spent their tries), `mykey_log_size` (entries
numbered), `mykey_log_queued` and `mykey_log_oldest_queued_age_seconds` (leaves waiting for the
integrator), `mykey_log_unsigned_entries` (numbered, not yet under a checkpoint) and
`mykey_log_checkpoint_age_seconds`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, Table, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mykey.db import read_only
from mykey.history.log import tree_size
from mykey.history.models import HistoryCheckpoint, HistoryLeaf
from mykey.jobs import queue
from mykey.jobs.kinds import HANDLERS
from mykey.web.surge import CHANNEL

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
LEAVES = cast(Table, HistoryLeaf.__table__)
CHECKPOINTS = cast(Table, HistoryCheckpoint.__table__)

REQUESTS = Counter(
    "mykey_http_requests",
    "HTTP requests answered, by channel, route template, method and status",
    ["channel", "route", "method", "status"],
)
DURATION = Histogram(
    "mykey_http_request_duration_seconds",
    "Time to answer an HTTP request, by channel, route template and method",
    ["channel", "route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CHANNEL_REFUSED = Counter(
    "mykey_channel_refused", "Requests refused (503) over their channel's budget", ["channel"]
)
PAYMENTS = Counter("mykey_payments", "Counter payments made (replays not counted)")
REFUSALS = Counter("mykey_refusals", "problem+json answers, by their code", ["code"])
READS = Counter(
    "mykey_reads",
    "Read-only requests (ReadUow) by the database that answered them: replica or primary",
    ["database"],
)
CONNECTIONS = Gauge(
    "mykey_db_connections_in_use",
    "Database connections taken from the pools now",
    multiprocess_mode="livesum",
)


class RequestMetrics:
    """ASGI middleware: count and time every answer, by its route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts an answer

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            channel = scope.get(CHANNEL)  # set by the surge guard, inside
            route = scope.get("route")
            template = getattr(route, "path", None) or "-"
            labels = (channel.value if channel else "-", template, scope["method"])
            REQUESTS.labels(*labels, str(status)).inc()
            DURATION.labels(*labels).observe(time.perf_counter() - started)


def watch_pool(engine: Engine) -> None:
    """Count the engine's connections in use (checked out of its pool)."""
    event.listen(engine, "checkout", lambda *_: CONNECTIONS.inc())
    event.listen(engine, "checkin", lambda *_: CONNECTIONS.dec())


KINDS = sorted(HANDLERS)


class DatabaseFacts(Collector):
    """Gauges read from the database when scraped: the jobs waiting, the log's state."""

    def __init__(self, engine: Engine, now: Callable[[], datetime]) -> None:
        self.engine = engine
        self.now = now

    def collect(self) -> Iterator[Metric]:
        try:
            with read_only(self.engine.connect()) as conn:
                jobs = queue.depth(conn, ("queued", "running", "failed"))
                log_size = tree_size(conn)
                queued, first_queued = conn.execute(  # the queued leaves only (partial index)
                    select(func.count(), func.min(LEAVES.c.queued_at)).where(LEAVES.c.idx.is_(None))
                ).one()
                latest = conn.execute(  # the latest by its key (a row every 10 s for years)
                    select(CHECKPOINTS.c.size, CHECKPOINTS.c.created_at)
                    .order_by(CHECKPOINTS.c.size.desc())
                    .limit(1)
                ).first()
        except SQLAlchemyError:  # a scrape during an outage still shows the process's counts
            return
        now = self.now()
        waiting = GaugeMetricFamily(
            "mykey_jobs", "Jobs queued or running, by kind", labels=["kind", "status"]
        )
        failed = GaugeMetricFamily(
            "mykey_jobs_failed", "Jobs that spent their tries, by kind", labels=["kind"]
        )
        oldest = GaugeMetricFamily(
            "mykey_job_oldest_age_seconds",
            "Age of the oldest job queued or running, by kind (0: none)",
            labels=["kind"],
        )
        counts = {(d.kind, d.status): d.count for d in jobs}
        for kind in KINDS:
            for status in ("queued", "running"):
                waiting.add_metric([kind, status], counts.get((kind, status), 0))
            failed.add_metric([kind], counts.get((kind, "failed"), 0))
            first = [d.oldest for d in jobs if d.kind == kind and d.status != "failed" and d.oldest]
            oldest.add_metric([kind], (now - min(first)).total_seconds() if first else 0.0)
        yield waiting
        yield failed
        yield oldest
        yield GaugeMetricFamily("mykey_log_size", "History log entries numbered", value=log_size)
        yield GaugeMetricFamily(
            "mykey_log_queued", "History leaves waiting for the integrator", value=int(queued)
        )
        yield GaugeMetricFamily(
            "mykey_log_oldest_queued_age_seconds",
            "Seconds the oldest leaf has waited for the integrator (0: none waits)",
            value=(now - first_queued).total_seconds() if first_queued is not None else 0.0,
        )
        if latest is not None:
            yield GaugeMetricFamily(
                "mykey_log_unsigned_entries",
                "Entries numbered but not yet under a signed checkpoint",
                value=log_size - int(latest[0]),
            )
            yield GaugeMetricFamily(
                "mykey_log_checkpoint_age_seconds",
                "Seconds since the latest checkpoint was signed (none is signed while nothing"
                " is added)",
                value=(now - latest[1]).total_seconds(),
            )


def metrics_response(facts: DatabaseFacts) -> Response:
    """The exposition of this process (or, in multi-process mode, of all of them) and the
    database's facts."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        for collector in (
            REQUESTS,
            DURATION,
            CHANNEL_REFUSED,
            PAYMENTS,
            REFUSALS,
            READS,
            CONNECTIONS,
        ):
            registry.register(collector)
    registry.register(facts)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_endpoint(request: Request) -> Response:
    return metrics_response(request.app.state.database_facts)
