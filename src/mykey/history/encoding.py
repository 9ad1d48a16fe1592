"""Canonical, versioned byte encodings of the records the history logs (docs/history.md).

A record (a ledger transfer, a MyKey ID usage event) is encoded as *record bytes*; the log's
*leaf* holds only what may be public (the record's id, its time, a salted commitment to the
record bytes), because leaves are copied to other organisations and never deleted:

    leaf    = u8 version (1) ‖ u8 type ‖ str record id ‖ i64 time (µs since the Unix epoch, UTC)
              ‖ commitment[32]
    commitment = SHA-256("mykey/record/v1\\n" ‖ salt[32] ‖ record bytes)
    salt    = HMAC-SHA256(salt key, u8 type ‖ str record id)

`str` is a u16 big-endian byte length and UTF-8 bytes; `i64` is a signed 64-bit big-endian
integer; `opt` is a byte 0 (absent) or 1 followed by a `str`. The salt makes the commitment
hiding (amounts and MyKey IDs cannot be guessed from a leaf); the platform can hand a resident
the salt of their own record, and then anyone can check the leaf offline.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

VERSION = 1
TRANSFER = 1
MYKEY_USAGE = 2
KEY_ROTATION = 3
TYPES = {"transfer": TRANSFER, "mykey_usage": MYKEY_USAGE, "key_rotation": KEY_ROTATION}
# Records anyone may read (the log's key history): their commitment has no secret salt.
PUBLIC_KINDS = frozenset({"key_rotation"})
PUBLIC_SALT = bytes(32)
COMMITMENT_TAG = b"mykey/record/v1\n"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EncodingError(ValueError):
    """A record or leaf that cannot be encoded or decoded."""


def _str(value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > 0xFFFF:
        raise EncodingError("a string field is longer than 65,535 bytes")
    return struct.pack(">H", len(data)) + data


def _opt(value: str | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + _str(value)


def _i64(value: int) -> bytes:
    return struct.pack(">q", value)


def micros(moment: datetime | str) -> int:
    """Microseconds since the Unix epoch of an aware time (or its ISO 8601 text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        raise EncodingError("times in the history are aware")
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def transfer_bytes(payload: Mapping[str, Any]) -> bytes:
    """Transfer record v1: u8 1 ‖ str id (UUID, lower-case hex with hyphens) ‖ str ledger ‖
    str kind ‖ str phase ‖ i64 debit account ‖ i64 credit account ‖ i64 amount ‖ str actor ‖
    i64 created at (µs) ‖ opt pending id ‖ opt reversed id."""
    return b"".join(
        (
            bytes([TRANSFER]),
            _str(str(UUID(str(payload["id"])))),
            _str(str(payload["ledger"])),
            _str(str(payload["kind"])),
            _str(str(payload["phase"])),
            _i64(int(payload["debit"])),
            _i64(int(payload["credit"])),
            _i64(int(payload["amount"])),
            _str(str(payload["actor"])),
            _i64(micros(payload["at"])),
            _opt(_text(payload.get("pending_id"))),
            _opt(_text(payload.get("reverses_id"))),
        )
    )


def usage_bytes(payload: Mapping[str, Any]) -> bytes:
    """MyKey usage record v1: u8 2 ‖ i64 entry id ‖ str MyKey ID ‖ str action ‖ str actor ‖
    opt provider id ‖ str purpose ‖ i64 at (µs)."""
    return b"".join(
        (
            bytes([MYKEY_USAGE]),
            _i64(int(payload["id"])),
            _str(str(payload["mykey_id"])),
            _str(str(payload["action"])),
            _str(str(payload["actor"])),
            _opt(_text(payload.get("provider"))),
            _str(str(payload["purpose"])),
            _i64(micros(payload["at"])),
        )
    )


def rotation_bytes(payload: Mapping[str, Any]) -> bytes:
    """Key rotation record v1: u8 3 ‖ i64 number ‖ str previous verifier key ‖ str new
    verifier key ‖ str salt key id ‖ i64 at (µs) ‖ str previous key's signature (base64) ‖
    str new key's signature (base64)."""
    return b"".join(
        (
            bytes([KEY_ROTATION]),
            _i64(int(payload["id"])),
            _str(str(payload["old_key"])),
            _str(str(payload["new_key"])),
            _str(str(payload["salt_key_id"])),
            _i64(micros(payload["at"])),
            _str(str(payload["old_signature"])),
            _str(str(payload["new_signature"])),
        )
    )


@dataclass(frozen=True)
class Record:
    """A record ready for the log: its type, id, time and canonical bytes."""

    kind: str
    record_id: str
    at_micros: int
    data: bytes


def record_of(kind: str, payload: Mapping[str, Any]) -> Record:
    if kind == "transfer":
        return Record(
            kind, str(UUID(str(payload["id"]))), micros(payload["at"]), transfer_bytes(payload)
        )
    if kind == "mykey_usage":
        return Record(kind, str(int(payload["id"])), micros(payload["at"]), usage_bytes(payload))
    if kind == "key_rotation":
        return Record(kind, str(int(payload["id"])), micros(payload["at"]), rotation_bytes(payload))
    raise EncodingError(f"the history has no record kind {kind!r}")


def salt(key: bytes, kind: str, record_id: str) -> bytes:
    """The commitment's salt: secret for records of people, none for public records."""
    if kind in PUBLIC_KINDS:
        return PUBLIC_SALT
    return hmac.new(key, bytes([TYPES[kind]]) + _str(record_id), hashlib.sha256).digest()


def commitment(salt_value: bytes, data: bytes) -> bytes:
    if len(salt_value) != 32:
        raise EncodingError("a salt is 32 bytes")
    return hashlib.sha256(COMMITMENT_TAG + salt_value + data).digest()


def leaf_bytes(record: Record, salt_value: bytes) -> bytes:
    return b"".join(
        (
            bytes([VERSION, TYPES[record.kind]]),
            _str(record.record_id),
            _i64(record.at_micros),
            commitment(salt_value, record.data),
        )
    )


@dataclass(frozen=True)
class Leaf:
    version: int
    kind: str
    record_id: str
    at_micros: int
    commitment: bytes


def parse_leaf(data: bytes) -> Leaf:
    """Decode a leaf (for followers of the log and the offline verifier)."""
    try:
        version, type_ = data[0], data[1]
        (length,) = struct.unpack(">H", data[2:4])
        record_id = data[4 : 4 + length].decode("utf-8")
        rest = data[4 + length :]
        (at,) = struct.unpack(">q", rest[:8])
        digest = rest[8:]
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EncodingError("not a history leaf") from exc
    kinds = {v: k for k, v in TYPES.items()}
    if version != VERSION or type_ not in kinds or len(digest) != 32:
        raise EncodingError("not a version 1 history leaf")
    return Leaf(version, kinds[type_], record_id, at, digest)
