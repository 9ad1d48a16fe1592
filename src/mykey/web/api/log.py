"""The history log over HTTP (R8): public reads, and a resident's proof of their own transfer.

Public (no key; anyone may follow and check the log):
    GET /api/v1/log/checkpoint                    latest signed checkpoint (text/plain note)
    GET /api/v1/log/entries?start=&end=           entries [start, end), at most 1,000
    GET /api/v1/log/proofs/inclusion?index=|transfer_id=[&tree_size=]
    GET /api/v1/log/proofs/consistency?first=[&second=]
    GET /api/v1/log/key-rotations                 the log's key history and handoffs
    GET /api/v1/log/tile/<L>/<N>[.p/<W>]          C2SP tlog-tiles: hashes (immutable)
    GET /api/v1/log/tile/entries/<N>[.p/<W>]      C2SP tlog-tiles: entry bundles (immutable)
Resident:
    GET /api/v1/me/transfers/{transfer_id}/proof  an offline-checkable receipt
"""

from __future__ import annotations

import base64
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.history import log, tiles, witnessing
from mykey.history.receipts import transfer_receipt
from mykey.history.witnessing import with_cosignatures
from mykey.identity import residents
from mykey.web.api.numbers import MAX_ID
from mykey.web.api.resident import Token
from mykey.web.deps import Uow
from mykey.web.replicas import ReadUow, read_through

router = APIRouter(prefix="/api/v1", tags=["history log"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class EntryOut(BaseModel):
    index: int
    kind: str
    record_id: str
    leaf: str  # base64 of the leaf bytes (docs/history.md)
    leaf_hash: str


class EntriesOut(BaseModel):
    entries: list[EntryOut]


class InclusionOut(BaseModel):
    index: int
    tree_size: int
    root: str
    entry: EntryOut
    path: list[str]


class ConsistencyOut(BaseModel):
    first: int
    second: int
    first_root: str
    second_root: str
    path: list[str]


def _entry(e: log.Entry) -> EntryOut:
    return EntryOut(
        index=e.index,
        kind=e.kind,
        record_id=e.record_id,
        leaf=_b64(e.leaf),
        leaf_hash=_b64(e.leaf_hash),
    )


@router.get("/log/checkpoint", response_class=PlainTextResponse)
def checkpoint(uow: ReadUow, request: Request) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note), with the
    witnesses' cosignatures collected so far appended."""
    note = read_through(
        request, uow, lambda reads: with_cosignatures(reads, log.latest_checkpoint(reads))
    )
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


class KeyRotationOut(BaseModel):
    number: int
    index: int | None  # the rotation's entry in the log (None: not yet integrated)
    old_key: str  # verifier keys
    new_key: str
    at: str
    handoff_size: int | None
    checkpoint: str | None  # the checkpoint under the previous key that commits to it


class KeyRotationsOut(BaseModel):
    rotations: list[KeyRotationOut]


@router.get("/log/key-rotations", response_model=KeyRotationsOut)
def key_rotations(uow: Uow) -> KeyRotationsOut:
    """The log's key history (`mykey log rotate-key`): every change of its signing key, and
    the last checkpoint signed with the previous key, which commits to the change (witnesses
    cosign it before they accept the new key)."""
    return KeyRotationsOut(
        rotations=[KeyRotationOut(**item) for item in witnessing.key_rotations(uow)]
    )


IMMUTABLE = "public, max-age=31536000, immutable"


@router.get(
    "/log/tile/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def tile(path: str, uow: ReadUow, request: Request) -> Response:
    """The log as static tiles (c2sp.org/tlog-tiles), up to the latest signed checkpoint:
    `tile/<L>/<N>[.p/<W>]`, the hashes of W (full: 256) consecutive subtrees of 2^(8·L)
    leaves, and `tile/entries/<N>[.p/<W>]`, the leaves themselves, each behind its length
    (big-endian uint16). A tile's content never changes: caches and mirrors may keep it."""
    wanted = tiles.parse(f"tile/{path}")
    found = read_through(request, uow, lambda reads: tiles.read(reads, wanted))
    return Response(
        found, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE}
    )


@router.get("/log/entries", response_model=EntriesOut)
def entries(
    uow: ReadUow,
    request: Request,
    start: Annotated[int, Query(ge=0, le=MAX_ID)],
    end: Annotated[int, Query(ge=1, le=MAX_ID)],
) -> EntriesOut:
    """Entries [start, end) of the log, for followers and witnesses."""
    found = read_through(request, uow, lambda reads: log.entries(reads, start=start, end=end))
    return EntriesOut(entries=[_entry(e) for e in found])


@router.get("/log/proofs/inclusion", response_model=InclusionOut)
def inclusion_proof(
    uow: ReadUow,
    request: Request,
    index: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    transfer_id: UUID | None = None,
    tree_size: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> InclusionOut:
    """The inclusion proof (RFC 9162) of an entry, by index or by transfer id, in the tree of
    `tree_size` (default: the latest checkpoint's)."""
    if (index is None) == (transfer_id is None):
        raise MyKeyError(
            "index_or_transfer_id",
            ErrorKind.INVALID,
            "Give either index or transfer_id.",
            "index か transfer_id のどちらか一方を指定してください。",
        )

    def prove(reads: UnitOfWork) -> log.InclusionProof:
        at = index if index is not None else log.index_of(reads, "transfer", str(transfer_id))
        return log.inclusion(reads, index=at, size=tree_size)

    proof = read_through(request, uow, prove)
    return InclusionOut(
        index=proof.entry.index,
        tree_size=proof.tree_size,
        root=_b64(proof.root),
        entry=_entry(proof.entry),
        path=[_b64(h) for h in proof.path],
    )


@router.get("/log/proofs/consistency", response_model=ConsistencyOut)
def consistency_proof(
    uow: ReadUow,
    request: Request,
    first: Annotated[int, Query(ge=1, le=MAX_ID)],
    second: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> ConsistencyOut:
    """The consistency proof (RFC 9162) from tree size `first` to `second` (default: the
    latest checkpoint's size)."""
    proof = read_through(
        request, uow, lambda reads: log.consistency(reads, first=first, second=second)
    )
    return ConsistencyOut(
        first=proof.first,
        second=proof.second,
        first_root=_b64(proof.first_root),
        second_root=_b64(proof.second_root),
        path=[_b64(h) for h in proof.path],
    )


@router.get("/me/transfers/{transfer_id}/proof")
def my_transfer_proof(
    transfer_id: str, uow: Uow, reads: ReadUow, token: Token, request: Request
) -> Any:
    """The inclusion proof of one of my transfers, to check offline
    (`python -m mykey.history.verify`, docs/history.md)."""
    who = residents.resident_for_session(uow, token)  # the session: on the primary
    signer = request.app.state.history_log
    return read_through(
        request,
        reads,
        lambda r: transfer_receipt(r, signer, mykey_id=who, transfer_id=transfer_id),
    )
