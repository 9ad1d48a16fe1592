"""A witness (R8.2): another organisation's server that follows the log, keeps a full copy,
checks every checkpoint and cosigns only what is consistent with what it cosigned before.

One round (`follow_once`):

1. GET the log's checkpoint; check the log's signature with the configured verifier key.
2. Compare it with the last checkpoint this witness cosigned (size s, root r):
   * same size, other root → **split view** alarm (both signed notes kept as evidence);
   * smaller size → its root must be the root of this witness's own copy at that size, else
     an **inconsistent** alarm; otherwise nothing to do (a stale checkpoint);
   * larger size → the log's consistency proof s → n must verify (else **inconsistent**);
     the witness catches up **by tiles**: it reads the log's hash tiles for size n
     (c2sp.org/tlog-tiles, `history.tiles`) and requires them to hash to the checkpoint's
     root, then copies entries [s, n) in steps of whole entry bundles, checking each leaf
     against its hash in the level-0 tile as it arrives (a log that lies is caught at the
     entry, not after the last one) and each record against its leaf's commitment, writing
     each step to its own tree before fetching the next (memory holds one step, not every
     entry of the round), and finally requires its own root to be the checkpoint's root.
3. Cosign (C2SP tlog-cosignature, timestamped Ed25519), store the new state with a
   compare-and-swap on the old size, in one transaction with the entries (a round that
   fails leaves nothing of itself), and POST the cosigned checkpoint back to the log.

Alarms are stored (`witness_alarms`), logged, served on the witness's `/status` and make
`mykey witness check` exit non-zero. The witness never cosigns a checkpoint it alarmed on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, insert, or_, select, update

from mykey.db import UnitOfWork, insert_many
from mykey.history import merkle, tiles
from mykey.history.checkpoints import Checkpoint, NoteError, Verifier, open_note, split_note
from mykey.history.cosign import Cosigner, log_only
from mykey.history.encoding import EncodingError, commitment, parse_leaf, record_of
from mykey.history.keys import Rotation, chain_problems, short
from mykey.history.models import (
    WitnessAlarm,
    WitnessCheckpoint,
    WitnessEntry,
    WitnessLog,
    WitnessNode,
)
from mykey.history.witnessing import KINDS, payload_of_row

LOGS = cast(Table, WitnessLog.__table__)
ENTRIES = cast(Table, WitnessEntry.__table__)
NODES = cast(Table, WitnessNode.__table__)
COSIGNED = cast(Table, WitnessCheckpoint.__table__)
ALARMS = cast(Table, WitnessAlarm.__table__)
STEP = 3 * tiles.WIDTH  # entries per request and per write: whole bundles (≤ 1,000 a request)
MAX_ROTATIONS_PER_ROUND = 8
logger = logging.getLogger("mykey.witness")


class WitnessError(RuntimeError):
    """A round that could not finish (log unreachable, bad answer): nothing was cosigned."""


@dataclass(frozen=True)
class WitnessConfig:
    log_url: str  # the log's base URL, e.g. http://127.0.0.1:8000
    log_key: Verifier
    cosigner: Cosigner

    @property
    def origin(self) -> str:
        return self.log_key.name


@dataclass(frozen=True)
class Round:
    outcome: str  # cosigned · unchanged · stale · alarm
    size: int
    detail: str = ""


# ---------------------------------------------------------------------------------------------
# HTTP (the standard library: a witness needs nothing else)


def problem_text(body: bytes) -> str:
    """What the log answered, for the round's detail: a problem's code and English detail
    (say `log_entry_damaged: Entry 30 of the log is damaged …`), else the start of the body,
    never cut inside a character."""
    try:
        problem = json.loads(body)
        if isinstance(problem, dict) and problem.get("code"):
            detail = problem.get("detail_en") or problem.get("detail") or ""
            return f"{problem['code']}: {detail}".strip()
    except ValueError:
        pass
    return body.decode("utf-8", "replace")[:300]


def _request(
    url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> bytes:
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}))  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return cast(bytes, response.read())
    except urllib.error.HTTPError as exc:
        raise WitnessError(f"{url}: HTTP {exc.code} {problem_text(exc.read())}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WitnessError(f"{url}: {exc}") from exc


def _json(url: str, headers: Mapping[str, str] | None = None) -> Any:
    try:
        return json.loads(_request(url, headers=headers))
    except ValueError as exc:
        raise WitnessError(f"{url}: not JSON") from exc


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# ---------------------------------------------------------------------------------------------
# the witness's own copy


def node_reader(conn: Connection, origin: str) -> merkle.NodeReader:
    def read(keys: Iterable[merkle.Key]) -> Mapping[merkle.Key, bytes]:
        wanted = list(keys)
        out: dict[merkle.Key, bytes] = {}
        for i in range(0, len(wanted), 200):
            chunk = wanted[i : i + 200]
            rows = conn.execute(
                select(NODES.c.level, NODES.c.idx, NODES.c.hash).where(
                    NODES.c.origin == origin,
                    or_(*(and_(NODES.c.level == lv, NODES.c.idx == ix) for lv, ix in chunk)),
                )
            )
            out.update({(int(r[0]), int(r[1])): bytes(r[2]) for r in rows})
        return out

    return read


def state(conn: Connection, origin: str) -> Any:
    return conn.execute(select(LOGS).where(LOGS.c.origin == origin)).first()


def _alarm(
    uow: UnitOfWork, origin: str, problem: str, detail: str, cosigned: str, conflicting: str
) -> Round:
    def body() -> None:
        conn = uow.connection
        seen = conn.execute(
            select(ALARMS.c.id).where(
                ALARMS.c.origin == origin, ALARMS.c.conflicting == conflicting
            )
        ).first()
        if seen is None:
            conn.execute(
                insert(ALARMS).values(
                    origin=origin,
                    raised_at=uow.now(),
                    problem=problem,
                    detail=detail,
                    cosigned=cosigned,
                    conflicting=conflicting,
                )
            )

    uow.run(body)
    logger.error("ALARM %s for %s: %s", problem, origin, detail)
    return Round("alarm", 0, f"{problem}: {detail}")


def _check_entry(item: Mapping[str, Any], index: int) -> dict[str, Any]:
    """One entry from the log: the leaf must name the record; the record bytes, salt and row
    are kept only if they match the leaf's commitment."""
    if int(item["index"]) != index:
        raise WitnessError(f"the log sent entry {item['index']} where {index} was expected")
    leaf = _unb64(item["leaf"])
    try:
        parsed = parse_leaf(leaf)
    except EncodingError as exc:
        raise WitnessError(f"entry {index}: {exc}") from exc
    if (parsed.kind, parsed.record_id) != (item["kind"], item["record_id"]):
        raise WitnessError(f"entry {index}: the leaf names another record")
    row: dict[str, Any] = {
        "idx": index,
        "kind": parsed.kind,
        "record_id": parsed.record_id,
        "leaf": leaf,
        "record": None,
        "salt": None,
        "row": None,
    }
    if item.get("record") and item.get("salt") and item.get("row"):
        data, salt_value = _unb64(item["record"]), _unb64(item["salt"])
        try:
            table = KINDS[parsed.kind][0]
            fields = payload_of_row(parsed.kind, table, item["row"])
            matches = (
                commitment(salt_value, data) == parsed.commitment
                and record_of(parsed.kind, fields).data == data
            )
        except (EncodingError, ValueError, KeyError, TypeError):
            matches = False
        if matches:
            row.update(record=data, salt=salt_value, row=item["row"])
        else:
            logger.warning("entry %d: the record the log sent does not match its leaf", index)
    return row


def log_tiles(config: WitnessConfig, checkpoint: Checkpoint) -> tiles.TileReader:
    """The log's tree of the checkpoint's size as its tiles, checked against the checkpoint:
    from here on every hash the reader gives is one the log signed."""
    base = config.log_url.rstrip("/") + "/api/v1/log/"
    reader = tiles.TileReader(lambda path: _request(base + path), checkpoint.size)
    try:
        root = reader.root()
    except merkle.ProofError as exc:
        raise WitnessError(f"the log's tiles are unreadable: {exc}") from exc
    if root != checkpoint.root:
        raise WitnessError(
            f"the log's tiles do not hash to its checkpoint of size {checkpoint.size}"
        )
    return reader


def fetch_entries(
    config: WitnessConfig, start: int, end: int, signed: tiles.TileReader
) -> Iterator[list[dict[str, Any]]]:
    """Entries [start, end) with their records, a step of whole bundles at a time, each leaf
    checked against the signed tiles before the step is handed on."""
    lo = start
    while lo < end:
        hi = min(end, (lo // tiles.WIDTH) * tiles.WIDTH + STEP)
        target = f"/api/v1/log/witness/entries?start={lo}&end={hi}"
        header = config.cosigner.sign_request(int(time.time()), target)
        got = _json(config.log_url.rstrip("/") + target, {"X-MyKey-Witness": header})
        items = got.get("entries", [])
        if len(items) != hi - lo:
            raise WitnessError(f"the log sent {len(items)} entries for [{lo}, {hi})")
        step = [_check_entry(item, lo + i) for i, item in enumerate(items)]
        try:
            for entry in step:
                if merkle.leaf_hash(entry["leaf"]) != signed.node(0, entry["idx"]):
                    raise WitnessError(
                        f"entry {entry['idx']} is not the leaf the log's checkpoint of size"
                        f" {signed.size} commits to"
                    )
        except merkle.ProofError as exc:
            raise WitnessError(
                f"the log's tiles do not agree with its checkpoint of size {signed.size}: {exc}"
            ) from exc
        yield step
        signed.forget(hi)
        lo = hi


def follow_once(uow: UnitOfWork, config: WitnessConfig) -> Round:
    """One round: read, check, copy, cosign (see the module docstring). A checkpoint under
    another key than the one this witness follows is cosigned only after the log's rotation
    to that key is in a checkpoint this witness cosigned under the key it follows."""
    base = config.log_url.rstrip("/")
    try:
        note = _request(f"{base}/api/v1/log/checkpoint").decode("utf-8")
        checkpoint = Checkpoint.parse(split_note(note)[0])
    except (NoteError, UnicodeDecodeError) as exc:
        raise WitnessError(f"the log's checkpoint is unreadable: {exc}") from exc
    if checkpoint.origin != config.origin:
        raise WitnessError(f"origin {checkpoint.origin!r} is not {config.origin!r}")
    origin = config.origin
    for _ in range(MAX_ROTATIONS_PER_ROUND):
        key, previous, why = followed_key(uow, config)
        current = uow.read(lambda: state(uow.connection, origin))
        evidence = "" if current is None else str(current.note)
        if key is None:
            return _alarm(uow, origin, "unknown_key", why, evidence, note)
        if _signed_by(note, key):
            return _round(uow, config, key, note, checkpoint)
        if previous is not None and _signed_by(note, previous):
            if current is not None and checkpoint.size <= int(current.size):
                return _round(uow, config, previous, note, checkpoint)  # the handoff again
            return _alarm(
                uow,
                origin,
                "retired_key",
                f"the checkpoint of size {checkpoint.size} is signed with {short(previous.vkey())},"
                f" the key the log rotated away from (to {short(key.vkey())})",
                evidence,
                note,
            )
        handoff = _handoff(config, key)
        if handoff is None:
            return _alarm(
                uow,
                origin,
                "unannounced_key",
                f"the checkpoint of size {checkpoint.size} is signed by"
                f" {_signers(note, origin)}, not by {short(key.vkey())}, the key this witness"
                " follows, and the log announced no rotation from that key",
                evidence,
                note,
            )
        new_key, handoff_note = handoff
        step = _round(uow, config, key, handoff_note, Checkpoint.parse(split_note(handoff_note)[0]))
        if step.outcome == "alarm":
            return step
        after, _, _ = followed_key(uow, config)
        if after is None or after.vkey() != new_key:
            return _alarm(
                uow,
                origin,
                "bad_key_rotation",
                f"the log announced a rotation to {short(new_key)}, but the checkpoint that"
                " should commit to it does not",
                evidence,
                handoff_note,
            )
    raise WitnessError("too many key rotations in one round; the next round goes on")


def _signed_by(note: str, key: Verifier) -> bool:
    try:
        open_note(note, key)
    except NoteError:
        return False
    return True


def _signers(note: str, name: str) -> str:
    _, signatures = split_note(note)
    return ", ".join(f"{s.name}+{s.key_id:08x}" for s in signatures if s.name == name) or "no key"


def _handoff(config: WitnessConfig, key: Verifier) -> tuple[str, str] | None:
    """The log's announced rotation from `key`: (new key, the checkpoint under `key` that
    commits to it). Nothing here is trusted until this witness has cosigned that checkpoint
    and found the rotation record in it."""
    try:
        got = _json(config.log_url.rstrip("/") + "/api/v1/log/key-rotations")
        for item in got.get("rotations", []):
            note = item.get("checkpoint")
            if (
                item.get("old_key") == key.vkey()
                and isinstance(note, str)
                and _signed_by(note, key)
            ):
                return str(item["new_key"]), note
    except (WitnessError, AttributeError, TypeError):
        return None
    return None


def followed_key(
    uow: UnitOfWork, config: WitnessConfig
) -> tuple[Verifier | None, Verifier | None, str]:
    """The log key this witness follows: the configured one, or after rotations it cosigned,
    the newest (the configured key must be in that history); the key before the last rotation
    (it signed the handoff); None and why, when the configured key is not the key of what this
    witness cosigned."""
    origin = config.origin
    configured = config.log_key.vkey()

    def body() -> tuple[list[Rotation | None], Any]:
        conn = uow.connection
        rows = conn.execute(
            select(ENTRIES.c.row)
            .where(ENTRIES.c.origin == origin, ENTRIES.c.kind == "key_rotation")
            .order_by(ENTRIES.c.idx)
        )
        return [_rotation_of(r[0]) for r in rows], state(conn, origin)

    rotations, current = uow.read(body)
    if rotations:
        chain = [r for r in rotations if r is not None]
        if len(chain) != len(rotations) or chain_problems(chain):
            return None, None, "the key history in this witness's copy does not verify"
        keys = [chain[0].old_key, *(r.new_key for r in chain)]
        if configured not in keys:
            return (
                None,
                None,
                (
                    f"the configured log key {short(configured)} is not in the log's key history"
                    " this witness cosigned"
                ),
            )
        return Verifier.from_vkey(keys[-1]), Verifier.from_vkey(keys[-2]), ""
    if current is not None and not _signed_by(str(current.note), config.log_key):
        return (
            None,
            None,
            (
                f"the configured log key {short(configured)} is not the key of the checkpoints"
                f" this witness cosigned ({_signers(str(current.note), origin)}), and the log"
                " recorded no rotation to it"
            ),
        )
    return config.log_key, None, ""


def _rotation_of(row_text: str | None) -> Rotation | None:
    if not row_text:
        return None
    try:
        return Rotation.of(payload_of_row("key_rotation", KINDS["key_rotation"][0], row_text))
    except (ValueError, TypeError, KeyError):
        return None


def _round(
    uow: UnitOfWork, config: WitnessConfig, key: Verifier, note: str, checkpoint: Checkpoint
) -> Round:
    """Check, copy and cosign one checkpoint signed by `key`, the key this witness follows."""
    base = config.log_url.rstrip("/")
    log_note = log_only(note, config.log_key.name)
    origin = config.origin
    current = uow.read(lambda: state(uow.connection, origin))
    size = 0 if current is None else int(current.size)
    if current is not None and checkpoint.size == size:
        if checkpoint.root != bytes(current.root):
            return _alarm(
                uow,
                origin,
                "split_view",
                f"two checkpoints of size {size} with different roots",
                current.note,
                log_note,
            )
        if config.cosigner.verifier().cosignature_in(note) is None:
            _deliver(config, current.note)
        return Round("unchanged", size)
    if current is not None and checkpoint.size < size:
        own = uow.read(
            lambda: merkle.root_from(checkpoint.size, node_reader(uow.connection, origin))
        )
        if own != checkpoint.root:
            return _alarm(
                uow,
                origin,
                "inconsistent",
                f"the checkpoint of size {checkpoint.size} is not a prefix of the tree of size"
                f" {size} this witness cosigned",
                current.note,
                log_note,
            )
        return Round("stale", size)
    if current is not None:
        proof = _json(f"{base}/api/v1/log/proofs/consistency?first={size}&second={checkpoint.size}")
        try:
            merkle.verify_consistency(
                size,
                checkpoint.size,
                bytes(current.root),
                checkpoint.root,
                [_unb64(h) for h in proof["path"]],
            )
        except (merkle.ProofError, KeyError, ValueError) as exc:
            return _alarm(
                uow,
                origin,
                "inconsistent",
                f"no valid consistency proof from size {size} to {checkpoint.size}: {exc}",
                current.note,
                log_note,
            )
    signed = log_tiles(config, checkpoint)
    try:
        cosigned = _store(uow, config, key, checkpoint, log_note, size, signed)
    except _RotationRefusedError as refused:
        return _alarm(
            uow,
            origin,
            "bad_key_rotation",
            str(refused),
            "" if current is None else str(current.note),
            log_note,
        )
    _deliver(config, cosigned)
    logger.info("cosigned %s at size %d", origin, checkpoint.size)
    return Round("cosigned", checkpoint.size)


class _RotationRefusedError(WitnessError):
    """The new entries hold a key rotation this witness does not accept (an alarm)."""


def _rotation_problem(
    config: WitnessConfig, key: Verifier, held: list[Rotation | None], added: list[Any]
) -> str | None:
    """Key rotations among the new entries: each readable (its record bytes match its
    leaf), signed by both keys, continuing the key history this witness holds; the checkpoint
    that first commits to a rotation is signed with its previous key (the handoff)."""
    if not added:
        return None
    origin = config.origin
    rotations = held + [_rotation_of(e["row"]) for e in added]
    if any(r is None for r in rotations):
        return "a key rotation entry without a readable record (its bytes do not match its leaf)"
    chain = [r for r in rotations if r is not None]
    problems = chain_problems(chain)
    if problems:
        return "; ".join(problems)
    if any(Verifier.from_vkey(r.new_key).name != origin for r in chain):
        return "a key rotation names another log"
    keys = [chain[0].old_key, *(r.new_key for r in chain)]
    if config.log_key.vkey() not in keys:
        return f"the configured log key {short(config.log_key.vkey())} is not in the key history"
    if key.vkey() not in (chain[-1].old_key, chain[-1].new_key):
        return f"the checkpoint is signed by {short(key.vkey())}, not by a key of the rotation"
    return None


def _held_rotations(conn: Connection, origin: str) -> list[Rotation | None]:
    rows = conn.execute(
        select(ENTRIES.c.row)
        .where(ENTRIES.c.origin == origin, ENTRIES.c.kind == "key_rotation")
        .order_by(ENTRIES.c.idx)
    )
    return [_rotation_of(r[0]) for r in rows]


def _store(
    uow: UnitOfWork,
    config: WitnessConfig,
    key: Verifier,
    checkpoint: Checkpoint,
    log_note: str,
    old_size: int,
    signed: tiles.TileReader,
) -> str:
    """Copy entries [old_size, checkpoint.size) step by step into this witness's tree and
    cosign, all in one transaction: a round that fails leaves nothing of itself."""
    origin = config.origin

    def body() -> str:
        conn = uow.connection
        held = _held_rotations(conn, origin)
        added: list[dict[str, Any]] = []
        read = node_reader(conn, origin)
        at = old_size
        for step in fetch_entries(config, old_size, checkpoint.size, signed):
            _refuse_repeated_records(conn, origin, step)
            nodes = merkle.new_subtrees(at, [merkle.leaf_hash(e["leaf"]) for e in step], read)
            insert_many(conn, ENTRIES, [{"origin": origin, **e} for e in step])
            insert_many(
                conn,
                NODES,
                [
                    {"origin": origin, "level": k[0], "idx": k[1], "hash": h}
                    for k, h in nodes.items()
                ],
            )
            added += [e for e in step if e["kind"] == "key_rotation"]
            at += len(step)
        problem = _rotation_problem(config, key, held, added)
        if problem is not None:
            raise _RotationRefusedError(problem)
        if merkle.root_from(checkpoint.size, read) != checkpoint.root:
            raise WitnessError(
                f"the log's entries do not hash to its checkpoint of size {checkpoint.size}"
            )
        now = uow.now()
        line = config.cosigner.cosign(checkpoint.text(), max(1, int(now.timestamp())))
        cosigned = log_note + line
        conn.execute(
            insert(COSIGNED).values(
                origin=origin,
                size=checkpoint.size,
                root=checkpoint.root,
                note=cosigned,
                cosigned_at=now,
            )
        )
        values = {
            "url": config.log_url,
            "size": checkpoint.size,
            "root": checkpoint.root,
            "note": cosigned,
            "updated_at": now,
        }
        if old_size == 0 and state(conn, origin) is None:
            conn.execute(insert(LOGS).values(origin=origin, **values))
        else:
            done = conn.execute(
                update(LOGS).where(LOGS.c.origin == origin, LOGS.c.size == old_size).values(values)
            )
            if done.rowcount != 1:
                raise WitnessError("another round moved this witness's state; try again")
        return cosigned

    return uow.run(body)


def _refuse_repeated_records(conn: Connection, origin: str, new: list[dict[str, Any]]) -> None:
    """A log numbers each record once (its leaves are unique by kind and record id). A new
    entry naming a record already in the copy, or named twice among the new ones, is a leaf
    moved or copied behind the log's back (say, its index set back to NULL, so that the
    integrator numbered it again): this witness does not cosign that tree."""
    first: dict[tuple[str, str], int] = {}
    for e in new:
        key = (e["kind"], e["record_id"])
        if key in first:
            raise WitnessError(
                f"entry {e['idx']}: {key[0]} {key[1]} is already entry {first[key]}: a log"
                " numbers each record once"
            )
        first[key] = e["idx"]
    for kind in {k for k, _ in first}:
        ids = [rid for k, rid in first if k == kind]
        for lo in range(0, len(ids), 500):
            found = conn.execute(
                select(ENTRIES.c.idx, ENTRIES.c.record_id).where(
                    ENTRIES.c.origin == origin,
                    ENTRIES.c.kind == kind,
                    ENTRIES.c.record_id.in_(ids[lo : lo + 500]),
                )
            ).first()
            if found is not None:
                raise WitnessError(
                    f"entry {first[(kind, found[1])]}: {kind} {found[1]} is already entry"
                    f" {found[0]} of this witness's copy: a log numbers each record once"
                )


def _deliver(config: WitnessConfig, cosigned: str) -> None:
    """POST the cosigned checkpoint back to the log (best effort: the next round retries)."""
    try:
        _request(
            config.log_url.rstrip("/") + "/api/v1/log/cosignatures",
            data=cosigned.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
    except WitnessError as exc:
        logger.warning("could not deliver the cosignature: %s", exc)


# ---------------------------------------------------------------------------------------------
# reading the witness's copy (its HTTP endpoints, the audit, the restore)


def origin_hash(origin: str) -> str:
    return hashlib.sha256(origin.encode()).hexdigest()


def latest(uow: UnitOfWork, origin: str) -> Any:
    return uow.read(lambda: state(uow.connection, origin))


def cosigned_at_size(uow: UnitOfWork, origin: str, size: int) -> str | None:
    def body() -> str | None:
        row = uow.connection.execute(
            select(COSIGNED.c.note).where(COSIGNED.c.origin == origin, COSIGNED.c.size == size)
        ).first()
        return None if row is None else str(row[0])

    return uow.read(body)


def alarms(uow: UnitOfWork, origin: str | None = None) -> list[dict[str, Any]]:
    def body() -> list[dict[str, Any]]:
        q = select(ALARMS).order_by(ALARMS.c.id)
        if origin is not None:
            q = q.where(ALARMS.c.origin == origin)
        return [
            {
                "id": int(r.id),
                "origin": r.origin,
                "raised_at": r.raised_at.isoformat(),
                "problem": r.problem,
                "detail": r.detail,
                "cosigned": r.cosigned,
                "conflicting": r.conflicting,
            }
            for r in uow.connection.execute(q)
        ]

    return uow.read(body)


def copy_entries(
    uow: UnitOfWork, origin: str, *, start: int, end: int, with_records: bool
) -> list[dict[str, Any]]:
    def body() -> list[dict[str, Any]]:
        rows = uow.connection.execute(
            select(ENTRIES)
            .where(ENTRIES.c.origin == origin, ENTRIES.c.idx >= start, ENTRIES.c.idx < end)
            .order_by(ENTRIES.c.idx)
        )
        out = []
        for r in rows:
            item: dict[str, Any] = {
                "index": int(r.idx),
                "kind": r.kind,
                "record_id": r.record_id,
                "leaf": base64.b64encode(bytes(r.leaf)).decode(),
            }
            if with_records:
                item["record"] = None if r.record is None else base64.b64encode(r.record).decode()
                item["salt"] = None if r.salt is None else base64.b64encode(r.salt).decode()
                item["row"] = r.row
            out.append(item)
        return out

    return uow.read(body)


def inclusion_path(uow: UnitOfWork, origin: str, *, index: int, size: int) -> list[bytes]:
    return uow.read(
        lambda: merkle.inclusion_proof(index, size, node_reader(uow.connection, origin))
    )


# ---------------------------------------------------------------------------------------------
# following in the background while serving


class FollowJob:
    """Run `follow_once` every `seconds` in a daemon thread; remember the last outcome."""

    def __init__(self, uow_factory: Any, config: WitnessConfig, *, seconds: float) -> None:
        self.uow_factory = uow_factory
        self.config = config
        self.seconds = seconds
        self.last: dict[str, Any] = {"outcome": "not yet run"}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        try:
            result = follow_once(self.uow_factory(), self.config)
            self.last = {"outcome": result.outcome, "size": result.size, "detail": result.detail}
        except WitnessError as exc:
            self.last = {"outcome": "error", "detail": str(exc)}
            logger.warning("round failed: %s", exc)
        except Exception as exc:  # a bad answer or a database error must not end the thread
            self.last = {"outcome": "error", "detail": f"{type(exc).__name__}: {exc}"}
            logger.exception("round failed")

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.seconds):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mykey-witness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
