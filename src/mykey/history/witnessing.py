"""The log's side of witnessing (R8.2): what witnesses read, and the cosignatures they return.

Delivery is *pull* (docs/history.md, "Witnesses"): a witness reads the log's checkpoint, its
consistency proof and its entries, and POSTs back the checkpoint with its cosignature line.
The log keeps every valid cosignature (`history_cosignatures`) and serves its checkpoint with
them appended, one signed note carrying several signatures.

Privacy: leaves are public (they hold only a salted commitment). A witness also keeps what a
restore needs — each record's canonical bytes, the salt of its commitment and its database row
— and those are served only to the witnesses configured in `MYKEY_LOG_WITNESSES`, on requests
signed with the witness's own key (`X-MyKey-Witness: <name> <time> <signature>`, within five
minutes).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, Uuid, insert, select
from sqlalchemy.exc import IntegrityError

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.history.checkpoints import Checkpoint, NoteError, split_note
from mykey.history.cosign import CosignatureVerifier, add_signatures
from mykey.history.encoding import record_of, salt
from mykey.history.keys import ROTATIONS, key_history, rotation_payload
from mykey.history.log import HistoryLog, SignedCheckpoint, checkpoint_at, entries
from mykey.history.models import HistoryCosignature
from mykey.history.receipts import transfer_payload
from mykey.history.rows import RawRow, reader
from mykey.identity.models import UsageEntry
from mykey.ledger.models import TransferRow

COSIGNATURES = cast(Table, HistoryCosignature.__table__)
TRANSFERS = cast(Table, TransferRow.__table__)
USAGE = cast(Table, UsageEntry.__table__)
REQUEST_WINDOW = 300  # seconds a signed read request stays valid


def usage_payload(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "mykey_id": row.mykey_id,
        "action": row.action,
        "actor": row.actor,
        "provider": row.provider_id,
        "purpose": row.purpose,
        "at": row.at,
    }


# kind → (table, key column name, the logged fields of a row, the key from a record id)
KINDS: dict[str, tuple[Table, str, Callable[[Any], dict[str, Any]], Callable[[str], Any]]] = {
    "transfer": (TRANSFERS, "id", transfer_payload, UUID),
    "mykey_usage": (USAGE, "id", usage_payload, int),
    "key_rotation": (ROTATIONS, "id", rotation_payload, int),
}


def row_json(table: Table, row: Any) -> str:
    """A database row as JSON (UUIDs and times as text), every column by its name."""
    out: dict[str, Any] = {}
    for column in table.c:
        value = row.get(column.name) if isinstance(row, RawRow) else row._mapping[column]
        if isinstance(value, UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[column.name] = value
    return json.dumps(out, sort_keys=True, ensure_ascii=False)


def row_values(table: Table, text: str) -> dict[str, Any]:
    """The column values of a row from `row_json` (the inverse)."""
    data = json.loads(text)
    out: dict[str, Any] = {}
    for column in table.c:
        value = data.get(column.name)
        if value is not None and isinstance(column.type, Uuid):
            value = UUID(value)
        elif value is not None and column.type.__class__.__name__ == "UTCDateTime":
            value = datetime.fromisoformat(value)
        out[column.name] = value
    return out


def payload_of_row(kind: str, table: Table, text: str) -> dict[str, Any]:
    """The logged fields of a row given as JSON (to check it against its record bytes)."""

    class _Row:
        def __init__(self, values: Mapping[str, Any]) -> None:
            self.__dict__.update(values)

    values = row_values(table, text)
    return KINDS[kind][2](_Row(values))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _forbidden(message: str, message_ja: str) -> MyKeyError:
    return MyKeyError("witness_only", ErrorKind.FORBIDDEN, message, message_ja)


def authenticate(
    witnesses: list[CosignatureVerifier], header: str | None, target: str, now: int
) -> CosignatureVerifier:
    """The configured witness that signed this read request, or a 401/403 refusal."""
    if not header:
        raise MyKeyError(
            "witness_signature_required",
            ErrorKind.UNAUTHENTICATED,
            "Record bytes are served to the log's witnesses only: sign the request"
            " (X-MyKey-Witness).",
            "記録本体は証人にのみ提供します。要求に署名してください (X-MyKey-Witness)。",
        )
    parts = header.split(" ")
    known = {w.name: w for w in witnesses}
    try:
        name, stamp, signature = parts[0], int(parts[1]), base64.b64decode(parts[2])
    except (IndexError, ValueError):
        raise _forbidden("Unreadable witness signature.", "証人の署名を読めません。") from None
    witness = known.get(name)
    if (
        witness is None
        or abs(now - stamp) > REQUEST_WINDOW
        or not witness.verify_request(stamp, target, signature)
    ):
        raise _forbidden(
            "Not a witness of this log, or a stale or wrong signature.",
            "このログの証人ではないか、署名が古いか正しくありません。",
        )
    return witness


def witness_entries(
    uow: UnitOfWork, log: HistoryLog, *, start: int, end: int
) -> list[dict[str, Any]]:
    """Entries [start, end) with what a restore needs: record bytes, salt and row (as stored
    now; a witness keeps them only when they match the leaf's commitment). A row that is not
    readable as its types (tampered) is sent without record bytes."""
    found = entries(uow, start=start, end=end)

    def body() -> list[dict[str, Any]]:
        conn = uow.connection
        by_kind: dict[str, dict[str, Any]] = {}
        for kind, (table, key, _, to_key) in KINDS.items():
            ids = []
            for e in found:
                if e.kind == kind:
                    try:
                        ids.append(to_key(e.record_id))
                    except ValueError:
                        continue
            rows = reader(conn, table).by_keys(key, ids)
            by_kind[kind] = {str(r.get(key)): r for r in rows if r.ok}
        out: list[dict[str, Any]] = []
        for e in found:
            item: dict[str, Any] = {
                "index": e.index,
                "kind": e.kind,
                "record_id": e.record_id,
                "leaf": _b64(e.leaf),
                "record": None,
                "salt": None,
                "row": None,
            }
            row = by_kind.get(e.kind, {}).get(e.record_id)
            if row is not None:
                table, _, payload, _ = KINDS[e.kind]
                try:
                    record = record_of(e.kind, payload(row))
                except (ValueError, TypeError, KeyError):
                    record = None
                if record is not None:
                    item["record"] = _b64(record.data)
                    item["salt"] = _b64(salt(log.salt_key, e.kind, e.record_id))
                    item["row"] = row_json(table, row)
            out.append(item)
        return out

    return uow.read(body)


def _bad_cosignature(message: str, message_ja: str) -> MyKeyError:
    return MyKeyError("bad_cosignature", ErrorKind.INVALID, message, message_ja)


def add_cosignature(
    uow: UnitOfWork, witnesses: list[CosignatureVerifier], note: str
) -> tuple[int, list[str]]:
    """Keep the cosignatures of configured witnesses found on `note`, a checkpoint this log
    signed (same text as the stored one). Returns the size and the witnesses kept."""
    try:
        text, _ = split_note(note)
        checkpoint = Checkpoint.parse(text)
    except NoteError as exc:
        raise _bad_cosignature(
            f"Not a signed checkpoint: {exc}", "署名付きチェックポイントではありません。"
        ) from exc
    mine = checkpoint_at(uow, checkpoint.size)
    if mine is None or mine.checkpoint.text() != text:
        raise MyKeyError(
            "unknown_checkpoint",
            ErrorKind.NOT_FOUND,
            f"This log signed no such checkpoint of size {checkpoint.size}.",
            f"このログはサイズ {checkpoint.size} のそのチェックポイントに署名していません。",
        )
    kept: list[tuple[CosignatureVerifier, int, str]] = []
    lines = {line.split(" ", 2)[1]: line for line in note.split("\n") if line.startswith("\u2014 ")}
    for witness in witnesses:
        try:
            stamp = witness.cosignature_in(note)
        except NoteError as exc:
            raise _bad_cosignature(str(exc), "連署が検証できません。") from exc
        if stamp is not None:
            kept.append((witness, stamp, lines[witness.name] + "\n"))
    if not kept:
        raise _bad_cosignature(
            "No valid cosignature of a witness of this log.",
            "このログの証人による有効な連署がありません。",
        )

    def body() -> None:
        conn = uow.connection
        for witness, stamp, line in kept:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(COSIGNATURES).values(
                            size=checkpoint.size,
                            witness=witness.name,
                            line=line,
                            cosigned_at=stamp,
                            received_at=uow.now(),
                        )
                    )
            except IntegrityError:
                continue  # this witness already cosigned this size: keep the first

    uow.run(body)
    return checkpoint.size, [w.name for w, _, _ in kept]


def with_cosignatures(uow: UnitOfWork, signed: SignedCheckpoint) -> str:
    """The log's note with every cosignature it collected for that size appended."""

    def body() -> list[str]:
        rows = uow.connection.execute(
            select(COSIGNATURES.c.line)
            .where(COSIGNATURES.c.size == signed.checkpoint.size)
            .order_by(COSIGNATURES.c.witness)
        )
        return [str(r[0]) for r in rows]

    return add_signatures(signed.note, uow.read(body))


def key_rotations(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The log's key history, for witnesses and anyone checking old checkpoints: each
    rotation (its number, entry, previous and new verifier key, time) and the handoff — the
    checkpoint under the previous key that first commits to it — with its cosignatures."""

    def body() -> list[dict[str, Any]]:
        return [
            {
                "number": step.rotation.number,
                "index": step.index,
                "old_key": step.rotation.old_key,
                "new_key": step.rotation.new_key,
                "at": step.rotation.at.isoformat(),
                "handoff_size": step.handoff,
            }
            for step in key_history(uow.connection).steps
        ]

    out = uow.read(body)
    for item in out:
        signed = None if item["handoff_size"] is None else checkpoint_at(uow, item["handoff_size"])
        item["checkpoint"] = None if signed is None else with_cosignatures(uow, signed)
    return out
