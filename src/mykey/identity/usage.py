"""The MyKey usage history (R1.5): every use of a MyKey ID, with who, where, what for, when.

Each entry is also a leaf of the tamper-evident history (`uow.log`, R8), written in the same
transaction as the use it records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select

from mykey.db import UnitOfWork, send_together
from mykey.identity.models import UsageEntry

_USAGE = cast(Table, UsageEntry.__table__)
# A plain Core insert: on a payment's hot path the ORM's flush cost more than the statement.
INSERT_USAGE = insert(_USAGE).returning(_USAGE.c.id)


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
    """Add an entry, inside the caller's transaction: one insert (its id comes back with it),
    then its leaf of the history."""
    now = uow.now()
    actor, purpose = actor[:128], purpose[:200]
    session = uow._session  # flush what the caller added first (ORM rows), as before
    if session is not None and (session.new or session.dirty or session.deleted):
        session.flush()
    entry_id = uow.connection.execute(
        INSERT_USAGE,
        {
            "mykey_id": mykey_id,
            "action": action,
            "actor": actor,
            "provider_id": provider_id,
            "purpose": purpose,
            "at": now,
        },
    ).scalar_one()
    uow.log.append(
        uow.connection,
        "mykey_usage",
        entry_payload(
            entry_id=int(entry_id),
            mykey_id=mykey_id,
            action=action,
            actor=actor,
            provider_id=provider_id,
            purpose=purpose,
            at=now,
        ),
    )


# An entry and its leaf, written only if the caller's gate CTE (`proofs.use_gate`) yields a row.
PG_WRITE_GATED = (
    "WITH {gate},"
    " entry AS (INSERT INTO mykey_usage (id, mykey_id, action, actor, provider_id, purpose, at)"
    " SELECT %(u_id)s, %(u_who)s, %(u_action)s, %(u_actor)s, %(u_provider)s, %(u_purpose)s,"
    " %(u_at)s FROM gate){leaf}"
    " SELECT count(*) FROM gate"
)
PG_LEAF_GATED = (
    ", leaf AS (INSERT INTO history_leaves (kind, record_id, leaf, queued_at)"
    " SELECT %(l_kind)s, %(l_id)s, %(l_leaf)s, %(l_at)s FROM gate)"
)


# The entry written with a transfer, in its statement (`ledger.Alongside`): only if it is made.
PG_ENTRY_WITH_TRANSFER = (
    "entry AS (INSERT INTO mykey_usage (id, mykey_id, action, actor, provider_id, purpose, at)"
    " SELECT %(u_id)s, %(u_who)s, %(u_action)s, %(u_actor)s, %(u_provider)s, %(u_purpose)s,"
    " %(u_at)s FROM made)"
)


def with_transfer(
    *,
    usage_id: int,
    mykey_id: str,
    action: str,
    actor: str,
    provider_id: str | None,
    purpose: str,
    at: datetime,
) -> tuple[str, dict[str, Any], tuple[str, dict[str, Any]]]:
    """PostgreSQL: the entry `usage_id` (a number the caller took from the sequence with its
    look-ups) to write in a transfer's own statement: its common table expression, its
    parameters and its history leaf (kind, payload), for `ledger.Alongside`."""
    actor, purpose = actor[:128], purpose[:200]
    params: dict[str, Any] = {
        "u_id": usage_id,
        "u_who": mykey_id,
        "u_action": action,
        "u_actor": actor,
        "u_provider": provider_id,
        "u_purpose": purpose,
        "u_at": at,
    }
    payload = entry_payload(
        entry_id=usage_id,
        mykey_id=mykey_id,
        action=action,
        actor=actor,
        provider_id=provider_id,
        purpose=purpose,
        at=at,
    )
    return PG_ENTRY_WITH_TRANSFER, params, ("mykey_usage", payload)


def record_with_commit(
    uow: UnitOfWork,
    *,
    gate: tuple[str, Mapping[str, Any]],
    usage_id: int,
    mykey_id: str,
    action: str,
    actor: str,
    provider_id: str | None = None,
    purpose: str = "",
) -> bool:
    """PostgreSQL, in a transaction its use case began itself (`UnitOfWork.run(…,
    statement_begin=True)`): the entry `usage_id` (a number the caller took from the sequence
    with its look-ups) and its history leaf, behind `gate` (the card challenge's use), in one
    statement sent with the COMMIT (`db.send_together`). False if the gate stayed shut (the
    challenge was used already): nothing is written."""
    _, entry, (kind, payload) = with_transfer(
        usage_id=usage_id,
        mykey_id=mykey_id,
        action=action,
        actor=actor,
        provider_id=provider_id,
        purpose=purpose,
        at=uow.now(),
    )
    leaf = uow.log.leaf_row(uow.connection, kind, payload)
    params: dict[str, Any] = {**gate[1], **entry}
    if leaf is not None:
        params |= dict(zip(("l_kind", "l_id", "l_leaf", "l_at"), leaf, strict=True))
    sql = PG_WRITE_GATED.format(gate=gate[0], leaf=PG_LEAF_GATED if leaf is not None else "")
    written = send_together(uow, [(sql, params)], commit=True)[0]
    return bool(written[0][0])


def entry_payload(
    *,
    entry_id: int,
    mykey_id: str,
    action: str,
    actor: str,
    provider_id: str | None,
    purpose: str,
    at: datetime,
) -> dict[str, Any]:
    """What an entry's history leaf records (`uow.log`)."""
    return {
        "id": entry_id,
        "mykey_id": mykey_id,
        "action": action,
        "actor": actor[:128],
        "provider": provider_id,
        "purpose": purpose[:200],
        "at": at.isoformat(),
    }


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
