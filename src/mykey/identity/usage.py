"""The MyKey usage history (R1.5): every use of a MyKey ID, with who, where, what for, when.

Each entry is also a leaf of the tamper-evident history (`uow.log`, R8), written in the same
transaction as the use it records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from mykey.db import UnitOfWork
from mykey.identity.models import UsageEntry


@dataclass(frozen=True)
class Usage:
    id: int
    mykey_id: str
    action: str
    actor: str
    provider_id: str | None
    purpose: str
    at: datetime


def record(
    uow: UnitOfWork,
    *,
    mykey_id: str,
    action: str,
    actor: str,
    provider_id: str | None = None,
    purpose: str = "",
) -> None:
    """Add an entry, inside the caller's transaction."""
    now = uow.now()
    entry = UsageEntry(
        mykey_id=mykey_id,
        action=action,
        actor=actor[:128],
        provider_id=provider_id,
        purpose=purpose[:200],
        at=now,
    )
    uow.session.add(entry)
    uow.session.flush()
    uow.log.append(
        uow.connection,
        "mykey_usage",
        {
            "id": entry.id,
            "mykey_id": mykey_id,
            "action": action,
            "actor": entry.actor,
            "provider": provider_id,
            "purpose": entry.purpose,
            "at": now.isoformat(),
        },
    )


def history(
    uow: UnitOfWork, *, mykey_id: str, limit: int = 50, before: int | None = None
) -> list[Usage]:
    """A MyKey ID's usage, newest first."""

    def body() -> list[Usage]:
        stmt = (
            select(UsageEntry)
            .where(UsageEntry.mykey_id == mykey_id)
            .order_by(UsageEntry.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        if before is not None:
            stmt = stmt.where(UsageEntry.id < before)
        return [
            Usage(r.id, r.mykey_id, r.action, r.actor, r.provider_id, r.purpose, r.at)
            for r in uow.session.scalars(stmt)
        ]

    return uow.read(body)
