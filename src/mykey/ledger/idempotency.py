"""Idempotency: the same client key with the same request has effect once.

As TigerBeetle and Formance do it (research/anchors-ledger.md §6.4): the key is unique per
client (the acting terminal, partner, staff member or job); a hash of the canonical request is
stored with the outcome; a refusal is stored too, so that a retry replays the refusal rather
than turning it into a success; every id made for a keyed request derives from the key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast
from uuid import UUID, uuid5

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.orm import Session

from mykey.errors import MyKeyError
from mykey.ledger import errors
from mykey.ledger.models import RejectionRow, TransferRow

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


def lookup(conn: Connection, actor: str, key: str, digest: str) -> UUID | MyKeyError | None:
    """What an earlier request with this key did: the id of its transfer, its refusal, or
    nothing. The same key with a different request is an error of its own."""
    params = {"p_actor": actor, "p_key": key}
    row = conn.execute(PRIOR_TRANSFER, params).first()
    if row is not None:
        if row.request_hash != digest:
            raise errors.key_reused()
        return UUID(str(row.id))
    rejection = conn.execute(PRIOR_REJECTION, params).first()
    if rejection is not None:
        if rejection.request_hash != digest:
            raise errors.key_reused()
        stored = MyKeyError.from_dict(json.loads(rejection.error))
        stored.details["replayed"] = True
        return stored
    return None


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
