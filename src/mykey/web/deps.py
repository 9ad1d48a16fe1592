"""Dependencies routes ask for by type: `Uow` is a fresh unit of work on the app's engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mykey.db import UnitOfWork


async def get_uow(request: Request) -> UnitOfWork:
    """On the event loop (it touches no database): a sync dependency would cost a thread
    hand-off on every request."""
    factory = request.app.state.uow_factory
    uow: UnitOfWork = factory()
    return uow


Uow = Annotated[UnitOfWork, Depends(get_uow)]
