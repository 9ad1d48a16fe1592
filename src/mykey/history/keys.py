"""The log's signing key and its history (docs/history.md, "The log's key and its rotation").

The origin names the log; the key that signs its checkpoints is separate and changes only by
`mykey log rotate-key`, which writes a *rotation record* into the log itself: the previous and
the new verifier key, the id of the (unchanged) salt key, the time, and a signature by each of
the two keys over all of that. Its leaf is an entry of the log like any other, and the last
checkpoint signed with the previous key (the *handoff*) commits to it, so every witness sees
the rotation under the key it already trusts before it accepts a checkpoint under the new one.

Anything that signs or writes the log first checks that the configured key is the log's
current key (`check_log_identity`): the key of its latest checkpoint, or, after a rotation, the
new key of the last rotation a handoff commits to — and that the salt key is the log's. A log
started with another key refuses to go on instead of signing silently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table

from mykey.errors import ErrorKind, MyKeyError
from mykey.history.checkpoints import NoteError, Signer, Verifier, open_note, split_note
from mykey.history.encoding import micros
from mykey.history.models import HistoryCheckpoint, HistoryKeyRotation, HistoryLeaf
from mykey.history.rows import RawRow, integers, reader

ROTATIONS = cast(Table, HistoryKeyRotation.__table__)
_LEAVES = cast(Table, HistoryLeaf.__table__)
_CHECKPOINTS = cast(Table, HistoryCheckpoint.__table__)
STATEMENT_TAG = "mykey-log-key-rotation/v1\n"
SALT_KEY_TAG = b"mykey/salt-key-id/v1\n"


def derived_salt_key(signer: Signer) -> bytes:
    """The salt key of a log whose key was never rotated: derived from its signing key."""
    return hashlib.sha256(b"mykey/leaf-salt/v1\n" + signer.seed).digest()


def salt_key_id(salt_key: bytes) -> str:
    """A public name for a salt key (it reveals nothing of the key)."""
    return hashlib.sha256(SALT_KEY_TAG + salt_key).hexdigest()[:16]


def short(vkey: str) -> str:
    """A verifier key as people compare it: name+key id."""
    return "+".join(vkey.split("+")[:2])


@dataclass(frozen=True)
class Rotation:
    """One change of the log's signing key (a record of the log: kind `key_rotation`)."""

    number: int
    old_key: str  # verifier keys
    new_key: str
    salt_key_id: str
    at: datetime
    old_signature: str  # base64 Ed25519 over `statement()`
    new_signature: str

    def statement(self) -> bytes:
        return (
            f"{STATEMENT_TAG}{self.number}\n{self.old_key}\n{self.new_key}\n"
            f"{self.salt_key_id}\n{micros(self.at)}\n"
        ).encode()

    @classmethod
    def signed(cls, number: int, old: Signer, new: Signer, salt_id: str, at: datetime) -> Rotation:
        unsigned = cls(number, old.verifier().vkey(), new.verifier().vkey(), salt_id, at, "", "")
        message = unsigned.statement()
        return cls(
            number,
            unsigned.old_key,
            unsigned.new_key,
            salt_id,
            at,
            base64.b64encode(old.sign(message)).decode(),
            base64.b64encode(new.sign(message)).decode(),
        )

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Rotation:
        at = payload["at"]
        return cls(
            int(payload["id"]),
            str(payload["old_key"]),
            str(payload["new_key"]),
            str(payload["salt_key_id"]),
            datetime.fromisoformat(at) if isinstance(at, str) else at,
            str(payload["old_signature"]),
            str(payload["new_signature"]),
        )

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.number,
            "old_key": self.old_key,
            "new_key": self.new_key,
            "salt_key_id": self.salt_key_id,
            "at": self.at,
            "old_signature": self.old_signature,
            "new_signature": self.new_signature,
        }

    def problem(self) -> str | None:
        """Why this is not a valid rotation (None: both keys signed it, same log name)."""
        try:
            old, new = Verifier.from_vkey(self.old_key), Verifier.from_vkey(self.new_key)
            signatures = [
                base64.b64decode(self.old_signature, validate=True),
                base64.b64decode(self.new_signature, validate=True),
            ]
        except (NoteError, binascii.Error, ValueError) as exc:
            return f"key rotation {self.number} is unreadable: {exc}"
        if old.name != new.name:
            return f"key rotation {self.number} changes the log's name"
        if old.public_key == new.public_key:
            return f"key rotation {self.number} keeps the same key"
        message = self.statement()
        for who, key, signature in (("previous", old, signatures[0]), ("new", new, signatures[1])):
            if not key.verify(message, signature):
                return f"key rotation {self.number}: the {who} key's signature does not verify"
        return None


def rotation_payload(row: Any) -> dict[str, Any]:
    """The logged fields of a `history_key_rotations` row (the record of a leaf)."""
    return {
        "id": int(row.id),
        "old_key": row.old_key,
        "new_key": row.new_key,
        "salt_key_id": row.salt_key_id,
        "at": row.at,
        "old_signature": row.old_signature,
        "new_signature": row.new_signature,
    }


@dataclass(frozen=True)
class Step:
    rotation: Rotation
    index: int | None  # its leaf's index (None: not yet integrated)
    handoff: int | None  # the first checkpoint size after it: signed with the previous key


@dataclass(frozen=True)
class KeyHistory:
    steps: tuple[Step, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def pending(self) -> Rotation | None:
        """A rotation recorded but not yet committed to by a checkpoint."""
        if self.steps and self.steps[-1].handoff is None:
            return self.steps[-1].rotation
        return None

    @property
    def current(self) -> str | None:
        """The verifier key that signs the log's next checkpoint (None: never rotated; the key
        of its checkpoints)."""
        if not self.steps:
            return None
        last = self.steps[-1]
        return last.rotation.old_key if last.handoff is None else last.rotation.new_key

    def key_for(self, size: int) -> str | None:
        """The key that signed (or signs) the checkpoint of this size (None: never rotated)."""
        if not self.steps:
            return None
        key = self.steps[0].rotation.old_key
        for step in self.steps:
            if step.handoff is not None and size > step.handoff:
                key = step.rotation.new_key
        return key

    def keys(self) -> list[str]:
        """Every key the log has been signed with, oldest first."""
        if not self.steps:
            return []
        return [self.steps[0].rotation.old_key, *(s.rotation.new_key for s in self.steps)]


def chain_problems(rotations: list[Rotation]) -> list[str]:
    """What is wrong with a sequence of rotations (each signed by both keys, each starting
    from the key the one before ended with, numbered 1, 2, …)."""
    out: list[str] = []
    for i, r in enumerate(rotations):
        if r.number != i + 1:
            out.append(f"key rotation {r.number} is out of sequence")
        problem = r.problem()
        if problem is not None:
            out.append(problem)
        if i and r.old_key != rotations[i - 1].new_key:
            out.append(f"key rotation {r.number} does not start from the key before it")
    return out


def key_history(conn: Connection) -> KeyHistory:
    """The log's key history as stored (rows read as stored: a tampered row is a problem)."""
    problems: list[str] = []
    rotations: list[Rotation] = []
    for row in reader(conn, ROTATIONS).select(integers(conn, "id"), order_by="id"):
        if not row.ok:
            bad = "; ".join(str(b) for b in row.bad)
            problems.append(f"key rotation {row.get('id')} is unreadable: {bad}")
            continue
        rotations.append(Rotation.of(rotation_payload(row)))
    if not rotations and not problems:
        return KeyHistory()
    problems.extend(chain_problems(rotations))
    indices: dict[str, int | None] = {}
    leaves = reader(conn, _LEAVES, ("idx", "record_id"))
    for leaf in leaves.select("kind = 'key_rotation'"):
        rid, idx = leaf.get("record_id"), leaf.get("idx")
        if isinstance(rid, str):
            indices[rid] = idx if isinstance(idx, int) else None
    steps: list[Step] = []
    for r in rotations:
        index = indices.get(str(r.number))
        handoff = None
        if index is not None:  # the first checkpoint after it (a primary key lookup)
            after = reader(conn, _CHECKPOINTS, ("size",)).select(
                f"{integers(conn, 'size')} AND size > :i", {"i": index}, order_by="size", limit=1
            )
            handoff = cast(int, after[0].get("size")) if after else None
        if index is None and str(r.number) not in indices:
            problems.append(f"key rotation {r.number} has no leaf in the log")
        steps.append(Step(r, index, handoff))
    return KeyHistory(tuple(steps), tuple(problems))


def _refused(code: str, message: str, message_ja: str) -> MyKeyError:
    return MyKeyError(code, ErrorKind.CONFLICT, message, message_ja)


def _latest_note(conn: Connection) -> RawRow | None:
    rows = reader(conn, _CHECKPOINTS, ("size", "note")).select(
        integers(conn, "size"), order_by="size DESC", limit=1
    )
    return rows[0] if rows else None


def _signed_by(note: str, name: str) -> str:
    """name+key id of the signature lines of `note` under the log's name."""
    try:
        _, signatures = split_note(note)
    except NoteError:
        return "an unreadable signature"
    ids = [f"{s.name}+{s.key_id:08x}" for s in signatures if s.name == name]
    # a key of another name (a log configured with another deployment's key): name it too
    return ", ".join(ids or [f"{s.name}+{s.key_id:08x}" for s in signatures]) or "no signature"


def check_log_identity(conn: Connection, signer: Signer, salt_key: bytes) -> None:
    """Refuse (MyKeyError) unless `signer` is the log's current key and `salt_key` its salt
    key. A log whose checkpoints are all signed with `signer` and was never rotated passes, as
    does an empty log."""
    mine = signer.verifier().vkey()
    history = key_history(conn)
    if history.problems:
        raise _refused(
            "log_key_history_invalid",
            "The log's key history does not verify ("
            + "; ".join(history.problems)
            + "): nothing is signed. Run `mykey audit verify`.",
            "履歴ログの鍵の履歴を検証できないため、署名しません。`mykey audit verify` を実行して"
            "ください。",
        )
    if history.steps:
        current = cast(str, history.current)
        pending = history.pending
        if mine != current:
            if pending is not None and mine == pending.new_key:
                raise _refused(
                    "log_key_rotation_unfinished",
                    f"The log's key is being rotated to {short(mine)}, but no checkpoint"
                    f" under the previous key {short(current)} commits to the rotation yet:"
                    " run `mykey log rotate-key` again with the previous key configured.",
                    f"履歴ログの鍵は {short(mine)} へ交代中ですが、前の鍵 {short(current)} による"
                    "チェックポイントがまだありません。前の鍵を設定して `mykey log rotate-key` を"
                    "もう一度実行してください。",
                )
            raise _mismatch(short(current), short(mine))
        recorded = history.steps[-1].rotation.salt_key_id
        if salt_key_id(salt_key) != recorded:
            raise _salt_mismatch(recorded)
        return
    latest = _latest_note(conn)
    if latest is not None:
        note = latest.get("note")
        try:
            if not isinstance(note, str):
                raise NoteError("no note")
            open_note(note, signer.verifier())
        except NoteError:
            theirs = _signed_by(note, signer.name) if isinstance(note, str) else "unreadable"
            raise _mismatch(theirs, short(mine)) from None
    if salt_key != derived_salt_key(signer):
        raise _salt_mismatch(salt_key_id(derived_salt_key(signer)))


def _mismatch(theirs: str, mine: str) -> MyKeyError:
    return _refused(
        "log_key_mismatch",
        f"The log's checkpoints are signed with {theirs}, but the configured signing key"
        f" (MYKEY_LOG_SIGNING_KEY) is {mine}: nothing is signed or logged with it. Configure the"
        " log's key, or change keys only with `mykey log rotate-key` (docs/history.md).",
        f"履歴ログのチェックポイントは {theirs} で署名されていますが、設定された署名鍵"
        f" (MYKEY_LOG_SIGNING_KEY) は {mine} です。この鍵では署名も記録もしません。ログの鍵を"
        "設定するか、`mykey log rotate-key` で鍵を交代してください。",
    )


def _salt_mismatch(expected: str) -> MyKeyError:
    return _refused(
        "log_salt_key_mismatch",
        f"The configured salt key (MYKEY_LOG_SALT_KEY) is not the log's (id {expected}):"
        " leaves would not match their records. Configure the salt key `mykey log rotate-key`"
        " printed (unset it if the key was never rotated).",
        f"設定されたソルト鍵 (MYKEY_LOG_SALT_KEY) はこのログのもの (id {expected}) では"
        "ありません。`mykey log rotate-key` が表示したソルト鍵を設定してください"
        "（鍵を交代していなければ設定しないでください）。",
    )
