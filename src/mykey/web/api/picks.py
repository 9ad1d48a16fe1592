"""Online-shop picks of a municipality (R9.5): staff replace the list, anyone reads it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mykey.errors import YEN, forbidden
from mykey.identity.keys import Principal, Role
from mykey.points.picks import MAX_PICKS, MAX_PRICE, Pick, picks_of, set_picks
from mykey.web.api.numbers import Whole
from mykey.web.auth import require
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["points"])

StaffOrOperator = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF, Role.OPERATOR))]


class PickIO(BaseModel):
    title: str = Field(description="the item, e.g. 柿の葉寿司 10 個入り")
    shop: str = Field(description="the online shop selling it")
    price_yen: Annotated[int, Whole(YEN, 0, MAX_PRICE)] = Field(description="price in whole yen")
    url: str | None = Field(default=None, description="https:// address of the item")


class PicksIO(BaseModel):
    picks: list[PickIO] = Field(max_length=MAX_PICKS)


def _out(picks: list[Pick]) -> PicksIO:
    return PicksIO(
        picks=[PickIO(title=p.title, shop=p.shop, price_yen=p.price_yen, url=p.url) for p in picks]
    )


@router.get("/municipalities/{code}/picks")
def get_picks(code: str, uow: Uow) -> PicksIO:
    """The municipality's online-shop picks, as Point Navi shows them."""
    return _out(picks_of(uow, code))


@router.put("/municipalities/{code}/picks")
def put_picks(code: str, body: PicksIO, uow: Uow, who: StaffOrOperator) -> PicksIO:
    """Replace the municipality's picks (its own staff, or an operator). Safe to repeat."""
    if who.role is Role.MUNICIPALITY_STAFF and who.municipality != code:
        raise forbidden(
            "Staff act only for their own municipality.",
            "職員は自分の自治体の業務のみ行えます。",
        )
    picks = [Pick(p.title, p.shop, p.price_yen, p.url) for p in body.picks]
    return _out(set_picks(uow, code=code, picks=picks, actor=who.actor))
