"""Idempotency: the same client key with the same request has effect once.

As TigerBeetle and Formance do it (research/anchors-ledger.md §6.4): the key is unique per
client (the acting terminal, partner, staff member or job); a hash of the canonical request is
stored with the outcome; a refusal is stored too, so that a retry replays the refusal rather
than turning it into a success; every id made for a keyed request derives from the key.

This is the one mechanism for every keyed write, the ledger's own verbs and the use cases
above them (docs/ledger.md, "Idempotency"): `keyed_write` runs a use case's write under a key
(a stored outcome with the same request hash is the answer, another hash is
`idempotency_key_reused`, a refusal is stored and replayed), and `same_request` is the one
comparison of a stored hash with a request's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID, uuid5

from sqlalchemy import Connection, Table, bindparam, select, text
from sqlalchemy.orm import Session

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.ledger import errors
from mykey.ledger.models import RejectionRow, TransferRow

T = TypeVar("T")

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
NAMESPACE = UUID("5b0f4f8e-2f55-4c3a-9d43-6d7959a1c0de")  # MyKey ledger ids


def validate_key(key: object) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise errors.bad_key(key)
    return key


def validate_actor(actor: object) -> str:
    if not isinstance(actor, str) or not KEY_PATTERN.fullmatch(actor):
        raise errors.bad_field(
            "actor",
            "The acting party is 1 to 128 characters of A-Z, a-z, 0-9 and . _ : -.",
            "操作者は英数字と . _ : - からなる 1〜128 文字で指定してください。",
        )
    return actor


def derive_id(actor: str, key: str, role: str = "") -> UUID:
    """The id of what a keyed request makes: the same key always makes the same id."""
    return uuid5(NAMESPACE, f"{actor}\x1f{key}\x1f{role}")


def request_hash(verb: str, fields: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {"verb": verb, **fields}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_T = cast(Table, TransferRow.__table__)
_R = cast(Table, RejectionRow.__table__)
PRIOR_TRANSFER = select(_T.c.id, _T.c.request_hash).where(
    _T.c.actor == bindparam("p_actor"), _T.c.client_key == bindparam("p_key")
)
PRIOR_REJECTION = select(_R.c.error, _R.c.request_hash).where(
    _R.c.actor == bindparam("p_actor"), _R.c.client_key == bindparam("p_key")
)


def same_request(prior_hash: str | None, digest: str) -> bool:
    """Whether the request stored under a key is this request (by the hash of each). A record
    stored without a hash is never the same request: its key answers `idempotency_key_reused`,
    which is safe (nothing happens twice)."""
    return prior_hash is not None and hmac.compare_digest(prior_hash, digest)


def ensure_same_request(prior_hash: str | None, digest: str) -> None:
    """Refuse (`idempotency_key_reused`, 409) a key that was used for another request."""
    if not same_request(prior_hash, digest):
        raise errors.key_reused()


def prior_transfer(conn: Connection, actor: str, key: str) -> tuple[UUID, str | None] | None:
    """The transfer this client's key made, with the hash of the request that made it."""
    row = conn.execute(PRIOR_TRANSFER, {"p_actor": actor, "p_key": key}).first()
    return None if row is None else (UUID(str(row.id)), row.request_hash)


def stored_refusal(conn: Connection, actor: str, key: str, digest: str) -> MyKeyError | None:
    """The refusal stored under this key (replayed), if there is one."""
    rejection = conn.execute(PRIOR_REJECTION, {"p_actor": actor, "p_key": key}).first()
    if rejection is None:
        return None
    return _replayed_refusal(rejection.error, rejection.request_hash, digest)


def _replayed_refusal(error: str, request_hash: str | None, digest: str) -> MyKeyError:
    ensure_same_request(request_hash, digest)
    stored = MyKeyError.from_dict(json.loads(error))
    stored.details["replayed"] = True
    return stored


def lookup(conn: Connection, actor: str, key: str, digest: str) -> UUID | MyKeyError | None:
    """What an earlier request with this key did: the id of its transfer, its refusal, or
    nothing. The same key with a different request is an error of its own."""
    prior = prior_transfer(conn, actor, key)
    if prior is not None:
        ensure_same_request(prior[1], digest)
        return prior[0]
    return stored_refusal(conn, actor, key, digest)


@dataclass(frozen=True)
class Prior:
    """What a key made, as read with other look-ups in one statement (`prior_columns`): the
    transfer's id and request hash, or the stored refusal and its request hash."""

    transfer_id: object
    transfer_hash: str | None
    error: str | None
    error_hash: str | None

    def outcome(self, digest: str) -> UUID | MyKeyError | None:
        """What `lookup` answers for these rows."""
        if self.transfer_id is not None:
            ensure_same_request(self.transfer_hash, digest)
            return UUID(str(self.transfer_id))
        if self.error is not None:
            return _replayed_refusal(self.error, self.error_hash, digest)
        return None


def prior_columns(actor: Any, key: Any) -> list[Any]:
    """Four scalar subqueries (a transfer's id and hash, a refusal and its hash under this
    client's key) to read with other look-ups in one statement; `Prior(*row[...])` reads them."""
    return [
        select(_T.c.id).where(_T.c.actor == actor, _T.c.client_key == key).scalar_subquery(),
        select(_T.c.request_hash)
        .where(_T.c.actor == actor, _T.c.client_key == key)
        .scalar_subquery(),
        select(_R.c.error).where(_R.c.actor == actor, _R.c.client_key == key).scalar_subquery(),
        select(_R.c.request_hash)
        .where(_R.c.actor == actor, _R.c.client_key == key)
        .scalar_subquery(),
    ]


def record_rejection(
    session: Session, actor: str, key: str, digest: str, error: MyKeyError, now: datetime
) -> None:
    session.add(
        RejectionRow(
            actor=actor,
            client_key=key,
            request_hash=digest,
            error=json.dumps(error.as_dict(), ensure_ascii=False, default=str),
            created_at=now,
        )
    )
    session.flush()


# ---------------------------------------------------------------------------------------------
# keyed writes of the use cases


def scope(operation: str, owner: str) -> str:
    """The namespace of one use case's keys, `operation@owner`: the owner is the client (its
    actor), or, for a municipality's one-off action (a ranking award, a bulk grant job, a
    correction), the municipality, so that the key means one action whoever sends it. Stored
    where the ledger keeps an actor; `@` never appears in an actor, so the two never meet."""
    name = f"{operation}@{owner}"
    if len(name) <= 128:
        return name
    return f"{operation}@sha256:{hashlib.sha256(owner.encode()).hexdigest()}"[:128]


def serialise(conn: Connection, scope_name: str, key: str) -> None:
    """Make twins (two requests with this key at once) wait for each other until commit, so
    that the second finds what the first stored. SQLite writers are serialised already
    (BEGIN IMMEDIATE); PostgreSQL takes a transaction-level advisory lock on the key."""
    if conn.dialect.name != "postgresql":
        return
    seed = hashlib.sha256(f"{scope_name}\x1f{key}".encode()).digest()
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:k)"),
        {"k": int.from_bytes(seed[:8], "big", signed=True)},
    )


def keyed_write(
    uow: UnitOfWork,
    *,
    scope: str,
    key: str,
    digest: str,
    stored: Callable[[], tuple[str | None, T] | None],
    act: Callable[[], T],
    keep: Callable[[MyKeyError], bool] | None = None,
) -> T:
    """Run a use case's write under a client key, with the ledger's protocol.

    In one transaction (its own, or the caller's if one is open): twins with this key wait
    for each other (`serialise`); `stored()` gives what this key already made, as (the hash
    of the request that made it, the answer to replay), and that answer is returned if the
    hash is `digest`, else `idempotency_key_reused`; a refusal stored under the key is raised
    again (`details.replayed`). Otherwise `act()` runs in a savepoint: if it is refused (a
    `MyKeyError` of kind refused), what it wrote is undone and the refusal is stored under
    the key (`scope`, `key`), so a retry gets the same refusal and never turns it into a
    success. Inside a caller's transaction the refusal is left to the caller (which rolls
    back, or stores its own). Malformed requests (invalid, not found) are not stored: the
    key may be used again once the request is put right, and neither is a refusal for which
    `keep(error)` is False (a failed card proof: it says nothing of the request)."""
    validate_key(key)
    nested = uow.in_transaction

    def body() -> T | MyKeyError:
        conn = uow.connection
        serialise(conn, scope, key)
        found = stored()
        if found is not None:
            prior_hash, answer = found
            ensure_same_request(prior_hash, digest)
            return answer
        refusal = stored_refusal(conn, scope, key, digest)
        if refusal is not None:
            return refusal
        try:
            with uow.session.begin_nested():
                return act()
        except MyKeyError as error:
            if nested or error.kind is not ErrorKind.REFUSED or (keep and not keep(error)):
                raise
            record_rejection(uow.session, scope, key, digest, error, uow.now())
            return error

    outcome = uow.run(body)
    if isinstance(outcome, MyKeyError):
        raise outcome
    return outcome
