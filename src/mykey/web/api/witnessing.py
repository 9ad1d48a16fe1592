"""The log's endpoints for its witnesses (R8.2; docs/history.md, "Witnesses").

GET  /api/v1/log/witness/entries?start=&end=   entries with record bytes, salt and row;
                                               witnesses only (signed request)
POST /api/v1/log/cosignatures                  a checkpoint of this log with a witness's
                                               cosignature line(s) (text/plain note)
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field

from mykey.errors import ErrorKind, MyKeyError
from mykey.history.checkpoints import NoteError
from mykey.history.cosign import CosignatureVerifier
from mykey.history.witnessing import add_cosignature, authenticate, witness_entries
from mykey.web.api.numbers import MAX_ID
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1/log", tags=["history log"])


def configured(request: Request) -> list[CosignatureVerifier]:
    text: str = request.app.state.settings.log_witnesses
    try:
        return [CosignatureVerifier.from_vkey(v) for v in text.split(",") if v.strip()]
    except NoteError as exc:
        raise MyKeyError(
            "bad_witness_configuration",
            ErrorKind.REFUSED,
            f"MYKEY_LOG_WITNESSES holds an unreadable key: {exc}",
            "MYKEY_LOG_WITNESSES の鍵を読めません。",
        ) from exc


@router.get("/witness/entries")
def entries_for_witnesses(
    uow: Uow,
    request: Request,
    start: Annotated[int, Query(ge=0, le=MAX_ID)],
    end: Annotated[int, Query(ge=1, le=MAX_ID)],
    x_mykey_witness: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Entries [start, end) with each record's canonical bytes, salt and row, for restores.
    Only for this log's witnesses, on a request signed with the witness's key."""
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    authenticate(configured(request), x_mykey_witness, target, int(time.time()))
    log = request.app.state.history_log
    return {"entries": witness_entries(uow, log, start=start, end=end)}


class CosignaturesOut(BaseModel):
    size: int = Field(description="the checkpoint's tree size")
    witnesses: list[str] = Field(description="the witnesses whose cosignatures were kept")


NOTE_BODY = {
    "requestBody": {
        "required": True,
        "description": "a checkpoint of this log (a C2SP signed note) with the witness's"
        " cosignature line(s)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@router.post("/cosignatures", response_model=CosignaturesOut, openapi_extra=NOTE_BODY)
async def cosignatures(uow: Uow, request: Request) -> CosignaturesOut:
    """Keep the cosignatures of this log's witnesses on one of its checkpoints."""
    body = (await request.body()).decode("utf-8", "replace")
    size, kept = add_cosignature(uow, configured(request), body)
    return CosignaturesOut(size=size, witnesses=kept)
