"""A witness's own HTTP service (`mykey witness serve`): its cosigned checkpoint, its status
and alarms, and its copy of the log.

    GET /checkpoint                     the latest checkpoint it cosigned (log signature and
    GET /<sha256 hex of origin>/checkpoint  its cosignature; the tlog-witness monitoring path)
    GET /checkpoints/{size}             a checkpoint of that size it cosigned
    GET /status                         state, the last round, alarms with both checkpoints
    GET /entries?start=&end=            its copy of the leaves (public, like the log's)
    GET /records?start=&end=            leaves with record bytes, salt and row (bearer token,
                                        MYKEY_WITNESS_TOKEN, when set: for the log's auditors)
    GET /proofs/inclusion?index=&tree_size=   an inclusion path from its own tree
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy import Engine

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.history import witness as w
from mykey.web import problems, security


def _no_checkpoint() -> MyKeyError:
    return MyKeyError(
        "no_checkpoint",
        ErrorKind.NOT_FOUND,
        "This witness has cosigned no checkpoint of that log yet.",
        "この証人はまだそのログのチェックポイントに連署していません。",
    )


def create_witness_app(
    engine: Engine, config: w.WitnessConfig, *, token: str = "", follow_seconds: float = 0
) -> FastAPI:
    origin = config.origin
    job = w.FollowJob(lambda: UnitOfWork(engine), config, seconds=follow_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if follow_seconds > 0:
            job.start()
        yield
        job.stop()

    # No Swagger UI: FastAPI's loads from a CDN (a witness may run on a closed network, and
    # the pages' policy allows this site's files only); /openapi.json is there.
    app = FastAPI(
        title=f"MyKey witness {config.cosigner.name}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.follow_job = job
    problems.install(app)
    security.install(app, production=False)  # the headers on every answer, HEAD as GET

    def uow() -> UnitOfWork:
        return UnitOfWork(engine)

    def latest_note() -> PlainTextResponse:
        row = w.latest(uow(), origin)
        if row is None:
            raise _no_checkpoint()
        return PlainTextResponse(row.note, media_type="text/plain; charset=utf-8")

    @app.get("/checkpoint", response_class=PlainTextResponse)
    def checkpoint() -> PlainTextResponse:
        return latest_note()

    @app.get("/" + w.origin_hash(origin) + "/checkpoint", response_class=PlainTextResponse)
    def monitoring_checkpoint() -> PlainTextResponse:
        return latest_note()

    @app.get("/checkpoints/{size}", response_class=PlainTextResponse)
    def checkpoint_of_size(size: int) -> PlainTextResponse:
        note = w.cosigned_at_size(uow(), origin, size)
        if note is None:
            raise _no_checkpoint()
        return PlainTextResponse(note, media_type="text/plain; charset=utf-8")

    @app.get("/status")
    def status() -> dict[str, Any]:
        row = w.latest(uow(), origin)
        found = w.alarms(uow(), origin)
        return {
            "witness": config.cosigner.name,
            "witness_key": config.cosigner.verifier().vkey(),
            "origin": origin,
            "log": config.log_url,
            "size": None if row is None else int(row.size),
            "root": None if row is None else base64.b64encode(bytes(row.root)).decode(),
            "last_round": job.last,
            "alarm": bool(found),
            "alarms": found,
        }

    def _range(start: int, end: int) -> None:
        if end <= start or end - start > 1000:
            raise MyKeyError(
                "invalid_log_range",
                ErrorKind.INVALID,
                "Ask for 1 to 1,000 entries: 0 <= start < end <= start + 1000.",
                "1〜1,000 件の範囲を指定してください。",
            )

    @app.get("/entries")
    def entries(
        start: Annotated[int, Query(ge=0)], end: Annotated[int, Query(ge=1)]
    ) -> dict[str, Any]:
        _range(start, end)
        return {"entries": w.copy_entries(uow(), origin, start=start, end=end, with_records=False)}

    @app.get("/records")
    def records(
        start: Annotated[int, Query(ge=0)],
        end: Annotated[int, Query(ge=1)],
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if token and not hmac.compare_digest(authorization or "", f"Bearer {token}"):
            raise MyKeyError(
                "witness_token_required",
                ErrorKind.UNAUTHENTICATED,
                "Record bytes need the witness's bearer token.",
                "記録本体の取得には証人のトークンが必要です。",
            )
        _range(start, end)
        return {"entries": w.copy_entries(uow(), origin, start=start, end=end, with_records=True)}

    @app.get("/proofs/inclusion")
    def inclusion(
        index: Annotated[int, Query(ge=0)], tree_size: Annotated[int, Query(ge=1)]
    ) -> dict[str, Any]:
        row = w.latest(uow(), origin)
        if row is None or tree_size > int(row.size) or index >= tree_size:
            raise MyKeyError(
                "not_in_tree",
                ErrorKind.INVALID,
                f"Entry {index} is not in a tree of size {tree_size} this witness holds.",
                f"項目 {index} はこの証人が持つサイズ {tree_size} の木に含まれません。",
            )
        path = w.inclusion_path(uow(), origin, index=index, size=tree_size)
        return {
            "index": index,
            "tree_size": tree_size,
            "path": [base64.b64encode(h).decode() for h in path],
        }

    return app
