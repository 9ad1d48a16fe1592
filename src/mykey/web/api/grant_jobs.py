"""Bulk grants over HTTP (R4.4): send a file, get a job id, poll it, read the refused rows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import BaseModel, Field

from mykey.errors import MAX_POINTS, POINTS, invalid
from mykey.points import bulk
from mykey.web.api.numbers import MAX_ID, InQuery
from mykey.web.api.points import Staff, _own_municipality
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["bulk grants"])


class ProgressOut(BaseModel):
    phase: str = Field(description="reading, checking or granting")
    done: int
    total: int


class JobOut(BaseModel):
    id: str
    municipality: str
    status: str = Field(
        description="queued, running, done (all granted), refused (nothing granted: see"
        " refusals or error), failed (stopped; nothing granted; send it again)"
    )
    params: dict[str, Any]
    rows: int
    granted: int
    points: int
    refused: int
    error: dict[str, Any] | None = Field(description="why a whole file was refused")
    progress: ProgressOut | None
    created_at: datetime
    finished_at: datetime | None
    replayed: bool
    links: dict[str, str]


class RefusalOut(BaseModel):
    line: int
    mykey_id: str
    code: str
    message: str
    message_ja: str


def _out(job: bulk.JobView) -> JobOut:
    base = f"/api/v1/municipalities/{job.municipality}/grant-jobs/{job.id}"
    return JobOut(
        id=job.id,
        municipality=job.municipality,
        status=job.status,
        params=job.params,
        rows=job.rows,
        granted=job.granted,
        points=job.points,
        refused=job.refused,
        error=job.error,
        progress=ProgressOut(**vars(job.progress)) if job.progress else None,
        created_at=job.created_at,
        finished_at=job.finished_at,
        replayed=job.replayed,
        links={"self": base, "refusals": f"{base}/refusals"},
    )


@router.post(
    "/municipalities/{code}/grant-jobs",
    response_model=JobOut,
    status_code=202,
    openapi_extra={
        "requestBody": {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "required": True,
        }
    },
)
def submit(
    code: str,
    response: Response,
    uow: Uow,
    staff: Staff,
    data: Annotated[bytes, Body(media_type="text/csv")],
    idempotency_key: Annotated[str, Header(description="a retry with it makes no new job")],
    activity: str | None = None,
    points: Annotated[int, Query(), InQuery(POINTS, 1, MAX_POINTS)] | None = None,
    reason: str | None = None,
    event: str | None = None,
) -> JobOut:
    """Send a grant list (`mykey_id,points,reason`) or an eligibility list (`mykey_id` alone,
    with `activity`, or `points` and `reason`) as `text/csv`, UTF-8 or Shift_JIS.

    The answer is the job (202); poll its `self` link. The whole file is granted, or nothing
    and every refused row is listed. The same `Idempotency-Key` again answers with the same
    job."""
    own = _own_municipality(staff, code)
    if not isinstance(data, bytes):
        raise invalid(
            "invalid_grant_file",
            "Send the file as the request body with Content-Type: text/csv.",
            "ファイルは Content-Type: text/csv の本文として送信してください。",
        )
    params = bulk.JobParams(activity=activity, points=points, reason=reason, event=event)
    job = bulk.submit_job(
        uow, municipality=own, actor=staff.actor, key=idempotency_key, data=data, params=params
    )
    response.headers["Location"] = f"/api/v1/municipalities/{own}/grant-jobs/{job.id}"
    return _out(job)


@router.get("/municipalities/{code}/grant-jobs", response_model=list[JobOut])
def jobs(code: str, uow: Uow, staff: Staff) -> list[JobOut]:
    """The municipality's recent bulk grant jobs, newest first."""
    return [_out(j) for j in bulk.list_jobs(uow, _own_municipality(staff, code))]


@router.get("/municipalities/{code}/grant-jobs/{job_id}", response_model=JobOut)
def job(code: str, job_id: str, uow: Uow, staff: Staff) -> JobOut:
    """A job as it stands: its status, and while it runs, its progress."""
    return _out(bulk.get_job(uow, _own_municipality(staff, code), job_id))


@router.get(
    "/municipalities/{code}/grant-jobs/{job_id}/refusals",
    response_model=list[RefusalOut],
    responses={200: {"content": {"text/csv": {}}}},
)
def refusals(
    code: str,
    job_id: str,
    uow: Uow,
    staff: Staff,
    after_line: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """Every refused row with its line and reason, by line; `format=csv` for Excel."""
    rows = bulk.refusals_of(
        uow, _own_municipality(staff, code), job_id, after_line=after_line, limit=limit
    )
    if format == "csv":
        return Response(
            bulk.refusals_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="refused-{job_id}.csv"'},
        )
    return [
        RefusalOut(
            line=r.line,
            mykey_id=r.mykey_id,
            code=r.code,
            message=r.message,
            message_ja=r.message_ja,
        )
        for r in rows
    ]
