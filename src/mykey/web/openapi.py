"""The OpenAPI document says what every operation can answer, for every route of the app.

`install(app)` replaces `app.openapi` with a function that builds FastAPI's document and then,
once, for every operation (whoever added its route):

- moves the credentials out of the parameters into security requirements: `Authorization:
  Bearer` (an API key or a resident's session token), the HMAC signature headers of partners and
  online shops (`X-MyKey-Timestamp`, `X-MyKey-Signature`) and a witness's `X-MyKey-Witness`;
- declares the problems it can answer, each as `application/problem+json` with the `Problem`
  schema (RFC 9457, as `mykey.web.problems` renders them):

  ===== =============================================================================
  400   it takes a request body (a body that is not JSON at all)
  401   it needs credentials (missing, unknown, revoked, badly signed)
  403   it needs credentials (a key of another role, or of another party)
  404   always (it names something that does not exist, or there is nothing yet)
  409   it takes any input or writes (the rules refuse it, or it clashes with an earlier one)
  422   it takes any input or writes (the request is not valid)
  503   always (the database cannot be reached right now, or the caller's channel is over
        its budget: `mykey.web.surge`; `Retry-After` says when to retry)
  ===== =============================================================================

  and keeps whatever a route declares itself (`responses=` in its decorator), such as `429`
  (`responses=openapi.problems(429)`) on the few operations that throttle, or another content
  type for a success. A status a route declares without content gets the problem content too.

FastAPI's own `HTTPValidationError` schema is replaced by `Problem`: a 422 is problem+json here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mykey.web.problems import MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, in the caller's language (Japanese by default).",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "description": "a URI naming the problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "the HTTP status"},
        "code": {
            "type": "string",
            "description": "stable machine code: insufficient_points, invalid_points, …",
        },
        "detail": {"type": "string", "description": "for people, in the Accept-Language"},
        "detail_en": {"type": "string"},
        "detail_ja": {"type": "string"},
        "instance": {"type": "string", "description": "the path that was asked for"},
        "kind": {
            "type": "string",
            "description": "invalid, not_found, refused, conflict, forbidden, unauthenticated,"
            " throttled, …",
        },
        "details": {"type": "object", "additionalProperties": True},
        "errors": {
            "type": "array",
            "description": "422 invalid_request and bad amounts: one entry per wrong field",
            "items": {
                "type": "object",
                "required": ["location", "message"],
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "where: body.points, query.limit, …",
                    },
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
                "additionalProperties": True,
            },
        },
    },
    "additionalProperties": True,
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}

DESCRIPTIONS = {
    400: "The request body is not JSON at all.",
    401: "No valid credentials: the key, token or signature is missing, unknown or wrong.",
    403: "These credentials may not do this, or not for that party.",
    404: "Something the request names does not exist.",
    409: "The rules refuse it, or it clashes with an earlier request.",
    422: "The request is not valid (see `errors` for the fields).",
    429: "Too many failed attempts; try again later (Retry-After).",
    503: "The service cannot answer right now; try again after Retry-After seconds.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """For a route's `responses=`: problems it can answer beyond the module's table, e.g. 429
    where it throttles, or 401 where it checks a password itself."""
    return {status: {"description": DESCRIPTIONS.get(status, "A problem.")} for status in statuses}


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (mk_…) of a terminal, staff, operator, partner or online"
        " shop, or a resident's session token from POST /api/v1/sessions.",
    },
    "timestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "X-MyKey-Timestamp",
        "description": "Signed requests: Unix seconds when the request was signed.",
    },
    "signature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-MyKey-Signature",
        "description": "Signed requests: hex HMAC-SHA256 of METHOD\\nTARGET\\nTIMESTAMP\\n"
        "SHA256(body) with the signing secret (docs/partners.md).",
    },
    "witness": {
        "type": "apiKey",
        "in": "header",
        "name": "X-MyKey-Witness",
        "description": "A witness's signed request (docs/history.md).",
    },
}
# Header parameters that are credentials, and the security scheme each stands for.
CREDENTIALS = {
    "authorization": "bearer",
    "x-mykey-timestamp": "timestamp",
    "x-mykey-signature": "signature",
    "x-mykey-witness": "witness",
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _problem_response(status: int, declared: dict[str, Any] | None) -> dict[str, Any]:
    response = dict(declared or {})
    response.setdefault("description", DESCRIPTIONS.get(status, "A problem."))
    content = dict(response.get("content") or {})
    if status == 422:  # FastAPI's own validation error becomes problem+json
        content.pop("application/json", None)
    content[MEDIA_TYPE] = {"schema": PROBLEM_REF}
    response["content"] = content
    if status in (429, 503):
        response["headers"] = {**RETRY_AFTER, **(response.get("headers") or {})}
    return response


def _credentials(operation: dict[str, Any]) -> list[str]:
    """Take the credential headers out of the parameters; return their schemes."""
    schemes: list[str] = []
    kept = []
    for parameter in operation.get("parameters", []):
        scheme = CREDENTIALS.get(str(parameter.get("name", "")).lower())
        if parameter.get("in") == "header" and scheme is not None:
            schemes.append(scheme)
        else:
            kept.append(parameter)
    if kept:
        operation["parameters"] = kept
    else:
        operation.pop("parameters", None)
    return schemes


def statuses_for(method: str, operation: dict[str, Any], schemes: list[str]) -> list[int]:
    """The problem statuses this operation can answer (see the module's table)."""
    statuses = []
    takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
    if operation.get("requestBody"):
        statuses.append(400)
    if schemes:
        statuses += [401, 403]
    statuses.append(404)
    if takes_input or method != "get":
        statuses += [409, 422]
    statuses.append(503)
    return statuses


def _fastapi_422(response: dict[str, Any] | None) -> bool:
    content = (response or {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Security requirements and problem responses for every operation of the document."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for item in document.get("paths", {}).values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            schemes = _credentials(operation)
            if schemes:
                operation["security"] = [{scheme: [] for scheme in schemes}]
            responses = operation.setdefault("responses", {})
            if _fastapi_422(responses.get("422")):
                del responses["422"]  # FastAPI's guess; it is declared below where it applies
            for status in statuses_for(method, operation, schemes):
                responses[str(status)] = _problem_response(status, responses.get(str(status)))
            for status, declared in list(responses.items()):
                if status.isdigit() and int(status) >= 400:
                    responses[status] = _problem_response(int(status), declared)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at app.openapi_url (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                )
            )
        return app.openapi_schema

    build: Callable[[], dict[str, Any]] = openapi
    app.openapi = build  # type: ignore[method-assign]  # FastAPI's documented way to extend it
