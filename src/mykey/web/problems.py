"""Every error as RFC 9457 problem+json, in the caller's language (Japanese by default)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mykey.errors import ErrorKind, MyKeyError
from mykey.web.metrics import REFUSALS

STATUS = {
    ErrorKind.INVALID: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.REFUSED: 409,
    ErrorKind.CONFLICT: 409,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.THROTTLED: 429,
}
MEDIA_TYPE = "application/problem+json"
# A throttled caller is told when to come back: the error's own `retry_after` (seconds), or
# this if it names none.
THROTTLED_RETRY_AFTER = 60
NUMERIC_VALUE_OUT_OF_RANGE = "22003"  # SQLSTATE
NUL_REFUSED = "cannot contain NUL (0x00)"  # psycopg's DataError for a str with "\x00" in it


def wants_english(request: Request) -> bool:
    first = request.headers.get("accept-language", "").split(",")[0].strip().lower()
    return first.startswith("en")


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    message: str,
    message_ja: str,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://mykey.example/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": message if wants_english(request) else message_ja,
        "detail_en": message,
        "detail_ja": message_ja,
        "instance": request.url.path,
    }
    body.update(extra or {})
    REFUSALS.labels(code).inc()
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def retry_after(error: MyKeyError) -> int:
    """Seconds a throttled caller should wait (RFC 9110 Retry-After)."""
    seconds = (error.details or {}).get("retry_after")
    if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
        return seconds
    return THROTTLED_RETRY_AFTER


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MyKeyError)
    response = problem(
        request,
        status=STATUS[exc.kind],
        code=exc.code,
        message=exc.message,
        message_ja=exc.message_ja,
        extra={"kind": exc.kind.value, **({"details": exc.details} if exc.details else {})},
    )
    if exc.kind is ErrorKind.THROTTLED:
        response.headers["Retry-After"] = str(retry_after(exc))
    return response


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    """422: `invalid_request`, or the kind's code (`invalid_points`, …) when every wrong field is
    a number of one kind (`mykey.web.api.numbers`); `errors` names each field."""
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = []
    codes: set[str] = set()
    japanese: list[str] = []
    for e in exc.errors():
        entry = {
            "location": ".".join(str(p) for p in e.get("loc", ())),
            "message": e.get("msg", ""),
        }
        context = e.get("ctx") or {}
        if "message_ja" in context:  # a number of a kind: its code and range
            entry["code"] = str(e["type"])
            codes.add(entry["code"])
            japanese.append(f"{entry['location']}: {context['message_ja']}")
        else:
            codes.add("invalid_request")
        errors.append(entry)
    code = codes.pop() if len(codes) == 1 else "invalid_request"
    message_ja = "リクエストの内容に誤りがあります。"
    if code != "invalid_request":
        message_ja = " ".join(japanese)
    return problem(
        request,
        status=422,
        code=code,
        message="The request is not valid: "
        + "; ".join(f"{e['location']}: {e['message']}" for e in errors),
        message_ja=message_ja,
        extra={"kind": "invalid", "errors": errors},
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return problem(
            request,
            status=404,
            code="not_found",
            message="There is nothing at this address.",
            message_ja="このアドレスには何もありません。",
        )
    return problem(
        request,
        status=exc.status_code,
        code="http_error",
        message=str(exc.detail),
        message_ja=str(exc.detail),
    )


def _number_out_of_range(request: Request) -> JSONResponse:
    return problem(
        request,
        status=422,
        code="number_out_of_range",
        message="A number in the request is too large or too small.",
        message_ja="リクエストの数値が大きすぎるか小さすぎます。",
        extra={"kind": "invalid"},
    )


async def _overflow(request: Request, exc: Exception) -> JSONResponse:
    # A number past what the database or a date can hold (e.g. ?before=10**30 on SQLite, or
    # valid_days=10**12): the request's fault, refused before anything was written.
    return _number_out_of_range(request)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DataError)
    if getattr(exc.orig, "sqlstate", None) == NUMERIC_VALUE_OUT_OF_RANGE:  # PostgreSQL
        return _number_out_of_range(request)
    if NUL_REFUSED in str(exc.orig):
        # Text with U+0000 in it (a query, a path, a JSON string): PostgreSQL cannot store
        # it, and psycopg refuses it before sending. The request's fault, nothing written.
        return problem(
            request,
            status=422,
            code="invalid_text",
            message="Text in the request contains the NUL character (U+0000).",
            message_ja="リクエストの文字列に NUL 文字（U+0000）が含まれています。",
            extra={"kind": "invalid"},
        )
    raise exc  # a defect: the 500 handler answers, and the traceback is logged


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A defect, not a refusal: say so plainly, in the same format, and leave the details to
    # the server log (uvicorn logs the traceback).
    return problem(
        request,
        status=500,
        code="internal_error",
        message="Something went wrong on our side; nothing you sent was at fault.",
        message_ja="システム内部でエラーが発生しました。時間をおいて再度お試しください。",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(MyKeyError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(DataError, _data_error)
