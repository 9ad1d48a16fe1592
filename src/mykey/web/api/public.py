"""Public API: what anyone may read (the registry of local governments)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from mykey.municipalities import registry
from mykey.web.api.numbers import MAX_ID
from mykey.web.replicas import ReadUow, read_through

router = APIRouter(prefix="/api/v1", tags=["public"])


class MunicipalityOut(BaseModel):
    code: str
    prefecture: str
    name: str
    kana: str
    lat: str | None
    lng: str | None
    url: str | None


class MunicipalityPage(BaseModel):
    total: int
    items: list[MunicipalityOut]


def _out(record: registry.MunicipalityRecord) -> MunicipalityOut:
    return MunicipalityOut(
        code=record.code,
        prefecture=record.prefecture,
        name=record.name,
        kana=record.kana,
        lat=record.lat,
        lng=record.lng,
        url=record.url,
    )


@router.get("/municipalities", response_model=MunicipalityPage)
def list_municipalities(
    uow: ReadUow,
    prefecture: Annotated[str | None, Query(description="two-digit prefecture code, 01–47")] = None,
    q: Annotated[str | None, Query(max_length=50, description="part of a name or its kana")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> MunicipalityPage:
    """Registered local governments, by prefecture or name."""
    total, records = registry.search(
        uow, prefecture=prefecture, query=q, limit=limit, offset=offset
    )
    return MunicipalityPage(total=total, items=[_out(r) for r in records])


@router.get("/municipalities/{code}", response_model=MunicipalityOut)
def get_municipality(code: str, uow: ReadUow, request: Request) -> MunicipalityOut:
    """One local government by its six-digit code; a wrong check digit is a 422."""
    return _out(read_through(request, uow, lambda reads: registry.get(reads, code)))
