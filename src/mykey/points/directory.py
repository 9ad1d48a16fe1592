"""What Point Navi shows the public (R9): the point programs set up so far, where each can be
used (shops, museums, facilities, online), the libraries where the card works, and the
council's members. Read-only views; nothing here writes."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from mykey.db import UnitOfWork
from mykey.identity.models import Provider, Zone
from mykey.municipalities.models import Municipality
from mykey.points.models import PointProgram, Shop
from mykey.points.picks import Pick, picks_by_municipality


@dataclass(frozen=True)
class Place:
    id: str
    name: str
    kind: str  # a PLACE_KINDS value: shop, museum, hot_spring, online …


@dataclass(frozen=True)
class Library:
    id: str
    name: str
    municipality: str
    municipality_name: str
    zone: str | None  # the zone of mutual use, e.g. 有明圏域図書館


@dataclass(frozen=True)
class ProgramEntry:
    code: str
    municipality: str
    prefecture_code: str
    prefecture: str
    point_name: str
    usable_at: tuple[str, ...]
    places: tuple[Place, ...]
    picks: tuple[Pick, ...]

    @property
    def online(self) -> tuple[Place, ...]:
        return tuple(p for p in self.places if p.kind == "online")

    @property
    def in_town(self) -> tuple[Place, ...]:
        return tuple(p for p in self.places if p.kind != "online")


@dataclass(frozen=True)
class Member:
    code: str
    prefecture_code: str
    prefecture: str
    name: str


def programs(uow: UnitOfWork, *, prefecture: str | None = None) -> list[ProgramEntry]:
    """Every point program (or one prefecture's), by municipality code."""

    def body() -> list[ProgramEntry]:
        query = (
            select(PointProgram, Municipality)
            .join(Municipality, Municipality.code == PointProgram.code)
            .order_by(PointProgram.code)
        )
        if prefecture is not None:
            query = query.where(Municipality.prefecture_code == prefecture)
        rows = uow.session.execute(query).all()
        codes = [program.code for program, _ in rows]
        places: dict[str, list[Place]] = {}
        if codes:
            for shop in uow.session.scalars(
                select(Shop).where(Shop.municipality.in_(codes)).order_by(Shop.kind, Shop.name)
            ):
                places.setdefault(shop.municipality, []).append(
                    Place(shop.id, shop.name, shop.kind)
                )
        picks = picks_by_municipality(uow, codes)
        return [
            ProgramEntry(
                code=program.code,
                municipality=town.name,
                prefecture_code=town.prefecture_code,
                prefecture=town.prefecture,
                point_name=program.point_name,
                usable_at=tuple(json.loads(program.usable_at)),
                places=tuple(places.get(program.code, ())),
                picks=tuple(picks.get(program.code, ())),
            )
            for program, town in rows
        ]

    return uow.read(body)


def recommended(uow: UnitOfWork, *, limit: int = 4) -> list[ProgramEntry]:
    """Programs to show first: those usable at the most places (then by code)."""
    entries = programs(uow)
    entries.sort(key=lambda e: (-len(e.places) - len(e.picks), e.code))
    return [e for e in entries if e.places or e.picks][:limit]


def programs_per_prefecture(uow: UnitOfWork) -> Counter[str]:
    """How many programs each prefecture has (by its two-digit code)."""
    return Counter(e.prefecture_code for e in programs(uow))


def libraries(uow: UnitOfWork, *, prefecture: str) -> list[Library]:
    """The libraries of a prefecture where the card works (providers of kind library)."""

    def body() -> list[Library]:
        rows = uow.session.execute(
            select(Provider, Municipality, Zone)
            .join(Municipality, Municipality.code == Provider.municipality)
            .outerjoin(Zone, Zone.id == Provider.zone_id)
            .where(Provider.kind == "library", Municipality.prefecture_code == prefecture)
            .order_by(Provider.municipality, Provider.id)
        ).all()
        return [
            Library(p.id, p.name, p.municipality, town.name, zone.name if zone else None)
            for p, town, zone in rows
        ]

    return uow.read(body)


def members(uow: UnitOfWork) -> list[Member]:
    """The council's member municipalities: every municipality in the registry."""

    def body() -> list[Member]:
        rows = uow.session.scalars(
            select(Municipality).order_by(Municipality.prefecture_code, Municipality.code)
        )
        return [Member(m.code, m.prefecture_code, m.prefecture, m.name) for m in rows]

    return uow.read(body)
