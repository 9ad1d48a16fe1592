"""Who is calling: API keys for terminals, staff and operators; each route names its roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header
from starlette.concurrency import run_in_threadpool

from mykey.errors import forbidden
from mykey.identity.keys import Principal, Role, authenticate, bad_key, known_principal
from mykey.web.deps import Uow


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    return authorization.split(" ", 1)[1].strip()


async def _principal(uow: Uow, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """On the event loop, as the other dependencies of a keyed route: a key verified in the
    last few seconds costs no thread hand-off; only a key the cache does not know is read from
    the database, in the thread pool."""
    token = bearer_token(authorization)
    if token is None:
        raise bad_key()
    known = known_principal(uow.engine, token)
    if known is not None:
        return known
    return await run_in_threadpool(authenticate, uow, token)


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only keys of these roles."""

    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if principal.role not in roles:
            raise forbidden(
                "This key may not do that.",
                "このキーではこの操作はできません。",
            )
        return principal

    return check


CurrentTerminal = Annotated[Principal, Depends(require(Role.TERMINAL))]
CurrentProviderStaff = Annotated[Principal, Depends(require(Role.PROVIDER_STAFF))]
CurrentOperator = Annotated[Principal, Depends(require(Role.OPERATOR))]
