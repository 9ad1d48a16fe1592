"""The application: `create_app(settings)` builds it; nothing happens at import time."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mykey import __version__
from mykey.config import Settings, get_settings
from mykey.db import (
    STANDBY_OPTION,
    Clock,
    UnitOfWork,
    is_sqlite,
    make_engine,
    make_uow_factory,
    read_only,
    utcnow,
)
from mykey.errors import MyKeyError
from mykey.history.keys import check_log_identity
from mykey.history.log import CheckpointJob, HistoryLog, history_log
from mykey.identity import auth_cache
from mykey.identity.proofs import ChallengeKey, TrustAnchors
from mykey.jobs.kinds import platform_worker
from mykey.leader import LeaderLock
from mykey.migrations import head
from mykey.points import shop_cache
from mykey.replica import ReplicaWatch
from mykey.web import openapi, outage, pages, problems, proxies, security
from mykey.web.api import cards, grant_jobs, partners, points, public, resident, services
from mykey.web.api import corrections as corrections_api
from mykey.web.api import online as online_api
from mykey.web.api import terminal as terminal_api
from mykey.web.api.accruals import router as accruals_router
from mykey.web.api.coupons import router as coupons_router
from mykey.web.api.log import router as log_router
from mykey.web.api.payouts import router as payouts_router
from mykey.web.api.picks import router as picks_router
from mykey.web.api.settlements import router as settlements_router
from mykey.web.api.vouchers import router as vouchers_router
from mykey.web.background import BackgroundWork, Job
from mykey.web.metrics import (
    CHANNEL_REFUSED,
    DatabaseFacts,
    RequestMetrics,
    metrics_endpoint,
    watch_pool,
)
from mykey.web.observe import RequestIds, install_request_ids_in_records
from mykey.web.replicas import StickyPrimary
from mykey.web.surge import Channels, SurgeGuard

HOME = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MyKey プラットフォーム・自治体ポイント管理クラウド</title>
<link rel="stylesheet" href="/assets/home.css">
<link rel="icon" href="/favicon.ico"></head>
<body><main>
<h1>マイキープラットフォーム・自治体ポイント管理クラウド</h1>
<p lang="en">MyKey Platform and Municipal Point Cloud</p>
<ul>
<li><a href="/navi">自治体ポイントナビ <span lang="en">/ Point Navi</span></a></li>
<li><a href="/docs">API の説明 (OpenAPI) <span lang="en">/ API documentation</span></a></li>
<li><a href="/api/v1/municipalities?limit=20">自治体の一覧
 <span lang="en">/ Municipalities</span></a></li>
<li><a href="/healthz">稼働状況 <span lang="en">/ Health</span></a></li>
</ul>
</main></body></html>
"""

# Swagger UI without an inline script (the page's CSP allows scripts of this site only).
DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MyKey Platform and Municipal Point Cloud - API</title>
<link rel="stylesheet" href="/static/docs/swagger-ui.css">
<link rel="icon" href="/favicon.ico">
</head><body><div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/static/docs/swagger-ui-bundle.js"></script>
<script src="/assets/docs.js"></script>
</body></html>
"""


FAVICON = Path(__file__).parent / "static" / "favicon.ico"
CACHED = {"Cache-Control": "public, max-age=86400"}


def background_jobs(
    settings: Settings, uow_factory: Callable[[], UnitOfWork], clock: Clock, signer: HistoryLog
) -> list[Job]:
    """The background work of the one process that leads it, not started: the job queue's
    runner (jobs such as bulk grants; with `daily_expiry`, the periodic daily work too), and
    the checkpoints every `log_checkpoint_seconds`. None where separate processes do it
    (`MYKEY_BACKGROUND=workers`: `mykey worker`, `mykey log checkpointer`)."""
    if settings.background == "workers":
        return []
    jobs: list[Job] = [
        platform_worker(uow_factory, settings, schedules=settings.daily_expiry, clock=clock)
    ]
    if settings.log_checkpoint_seconds > 0:
        jobs.append(CheckpointJob(uow_factory, signer, seconds=settings.log_checkpoint_seconds))
    return jobs


def _role(work: BackgroundWork | None, settings: Settings) -> str:
    """leader or standby (of the background work); workers (separate processes do it); off."""
    if work is not None:
        return work.role
    return "workers" if settings.background == "workers" else "off"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While serving: as many threads for the (sync) routes as the pool has connections, so a
    request waits for a thread, never for a connection; and the background work, if enabled,
    in the one process that holds the leader lock (`mykey.web.background`)."""
    settings: Settings = app.state.settings
    to_thread.current_default_thread_limiter().total_tokens = settings.database_pool_size
    work = None
    state = app.state
    engine = None
    if settings.background == "web":
        # the background work's own connections: a bulk grant holding one for a minute takes
        # none from the requests' pool (sized so that a request never waits for one)
        engine = _background_engine(settings, state.engine)
        factory = make_uow_factory(engine, clock=state.clock, log=state.history_log)
        work = BackgroundWork(
            LeaderLock(settings.database_session_url or settings.database_url),
            lambda: background_jobs(settings, factory, state.clock, state.history_log),
        )
        work.start()
    app.state.background = work
    replica = app.state.replica
    if replica is not None:
        replica.start()
    yield
    if replica is not None:
        replica.stop()
        replica.engine.dispose()
    if work is not None:
        work.stop()
    if engine is not None and engine is not state.engine:
        engine.dispose()


def _background_engine(settings: Settings, engine: Engine) -> Engine:
    """A small pool for the leader's background work (an in-memory SQLite database has only
    the app's own engine)."""
    database = make_url(settings.database_url).database or ""
    if is_sqlite(settings.database_url) and database in ("", ":memory:"):
        return engine
    options = settings.engine_options() | {"pool_size": 2, "max_overflow": 2}
    return make_engine(settings.database_url, **options)


def create_app(settings: Settings | None = None, *, clock: Clock = utcnow) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, **settings.engine_options())
    # Swagger UI from the installed package, not a CDN: /docs works on a closed network.
    app: FastAPI = FastAPIOffline(
        docs_url=None,  # our own /docs below: the same Swagger UI, started by a script file
        redoc_url=None,
        static_url="/static/docs",
        title="MyKey Platform and Municipal Point Cloud",
        version=__version__,
        description=(
            "マイキープラットフォーム・自治体ポイント管理クラウドの API。"
            " Errors are RFC 9457 problem+json, in Japanese unless Accept-Language asks for"
            " English."
        ),
        openapi_url="/openapi.json",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.background = None
    app.state.engine = engine
    auth_cache.configure(engine, seconds=settings.auth_cache_seconds)
    shop_cache.configure(engine, seconds=settings.shop_cache_seconds)
    app.state.history_log = history_log(settings)
    app.state.uow_factory = make_uow_factory(engine, clock=clock, log=app.state.history_log)
    app.state.clock = clock
    # read-only traffic on a streaming replica while it keeps up (issue #16)
    app.state.replica = None
    if settings.database_replica_url:
        replica_engine = make_engine(settings.database_replica_url, **settings.engine_options())
        replica_engine.update_execution_options(**{STANDBY_OPTION: True})
        app.state.replica = ReplicaWatch(
            replica_engine, max_lag=settings.database_replica_max_lag_seconds
        )
        app.state.replica_factory = lambda: UnitOfWork(
            replica_engine, clock=clock, log=app.state.history_log, readonly=True
        )
        # a browser that has just written reads its own writes from the primary
        app.add_middleware(StickyPrimary, seconds=settings.database_replica_max_lag_seconds + 1.0)
    bundle, crls = settings.card_anchor_paths()
    # the same in every web process (docs/identity.md, "Stateless challenges")
    app.state.challenge_key = ChallengeKey.from_secret(
        settings.challenge_key or settings.secret_key
    )
    app.state.card_anchors = (
        TrustAnchors.from_files(
            bundle,
            crls,
            replaced_card_grace=settings.replaced_card_grace(),
            challenge_key=app.state.challenge_key,
        )
        if bundle
        else None
    )
    problems.install(app)
    outage.install(app)
    proxies.install(app, settings)
    # each channel of traffic within its own budget (launch surges, issue #16)
    app.state.channels = Channels(settings.channel_budgets())
    app.add_middleware(
        SurgeGuard,
        channels=app.state.channels,
        refuse=outage.channel_busy,
        refused=lambda channel: CHANNEL_REFUSED.labels(channel.value).inc(),
    )
    app.add_middleware(RequestMetrics)  # refusals by the budgets counted too
    # outside the budgets: a refused request has its id too (in its answer and its log line)
    app.add_middleware(RequestIds)
    watch_pool(engine)
    app.state.database_facts = DatabaseFacts(engine, clock)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    install_request_ids_in_records()
    # The counter's routes first: a request is matched against the routes in order, and a
    # terminal's payments and balances are most of the traffic (issue #14; no other path
    # matches theirs, `tests/api/test_contract.py` holds the OpenAPI).
    app.include_router(terminal_api.router)
    app.include_router(public.router)
    app.include_router(cards.router)
    app.include_router(resident.router)
    app.include_router(services.router)
    app.include_router(points.router)
    app.include_router(grant_jobs.router)
    app.include_router(partners.router)
    app.include_router(corrections_api.router)
    app.include_router(accruals_router)
    app.include_router(coupons_router)
    app.include_router(online_api.router)
    app.include_router(vouchers_router)
    app.include_router(payouts_router)
    app.include_router(settlements_router)
    app.include_router(log_router)
    app.include_router(picks_router)
    pages.install(app)
    _include_witnessing(app)
    openapi.install(app)
    security.install(app, production=settings.environment == "production")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return HOME

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> str:
        return DOCS

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """Our own icon (the DADS blue with a key), where browsers look for one: every page
        links it, and a PDF or JSON opened in a tab asks for it too."""
        return FileResponse(FAVICON, media_type="image/vnd.microsoft.icon", headers=CACHED)

    @app.get(
        "/healthz",
        tags=["operations"],
    )
    def healthz(request: Request) -> JSONResponse:
        """Is this process alive? Always 200 while it answers (a liveness probe: a database
        outage is no reason to restart it), with what it knows: its database's state,
        background role, channels and replica. Whether it should get traffic: `/readyz`."""
        work: BackgroundWork | None = request.app.state.background
        body: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            # which serving process answered, and whether it runs the background work
            "process": {"pid": os.getpid(), "background": _role(work, settings)},
            # this process's budget of each channel, and what it admitted and refused
            "channels": request.app.state.channels.as_dict(),
            "database": engine.dialect.name,
        }
        replica = request.app.state.replica
        if replica is not None:  # whether read-only traffic goes to the replica, and why not
            state = replica.state
            body["replica"] = {
                "used": replica.usable(),
                "state": state.reason,
                "lag_seconds": state.lag_seconds,
            }
        try:
            with read_only(engine.connect()) as conn:  # never queues behind a writer
                revision = _revision(conn)
        except DBAPIError as exc:
            body["database_state"] = f"unreachable: {type(exc.orig).__name__}"
            return JSONResponse(body)
        body["migration"] = revision
        body["database_state"] = "ok"
        if revision != head():
            body["database_state"] = "migration_pending"
            body["detail"] = "Run `mykey migrate`. / `mykey migrate` を実行してください。"
        return JSONResponse(body)

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            503: {
                "description": "Not ready: the same body, `status` not_ready, with the check"
                " that failed (Retry-After).",
                "content": {"application/json": {}},
            }
        },
    )
    def readyz(request: Request) -> JSONResponse:
        """Should this process get traffic? Its database reachable, the migrations current,
        and the history log's signing key the log's own (else nothing it writes is logged)."""
        checks: dict[str, str] = {}
        log = request.app.state.history_log
        try:
            with read_only(engine.connect()) as conn:  # never queues behind a writer
                revision = _revision(conn)
                checks["database"] = "ok"
                checks["migrations"] = (
                    "ok" if revision == head() else f"pending: at {revision}, code needs {head()}"
                )
                if revision == head():
                    try:
                        check_log_identity(conn, log.signer, log.salt_key)
                        checks["log_signer"] = "ok"
                    except MyKeyError as error:
                        checks["log_signer"] = f"{error.code}: {error.message}"
        except DBAPIError as exc:
            checks["database"] = f"unreachable: {type(exc.orig).__name__}"
        ready = (
            checks.get("database") == checks.get("migrations") == "ok" == checks.get("log_signer")
        )
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        if ready:
            return JSONResponse(body)
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(outage.RETRY_AFTER)})

    return app


def _revision(conn: Connection) -> str | None:
    """The database's migration revision (None: not migrated yet); a database that cannot be
    reached raises DBAPIError."""
    conn.execute(text("SELECT 1"))
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None  # not migrated yet


def serving_app() -> FastAPI:
    """The app of one `mykey serve` process (uvicorn's factory, called in each worker): its
    settings from the environment, which `mykey serve` fills in before starting them."""
    return create_app(get_settings())


def _include_witnessing(app: FastAPI) -> None:
    from mykey.web.api.witnessing import router

    app.include_router(router)
