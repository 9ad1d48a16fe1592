"""Online-shop picks of a municipality (R9.5): items with their price in yen, shown on Point
Navi. The municipality's staff replace the whole list at once (a PUT); prices are integers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from mykey.db import UnitOfWork
from mykey.errors import YEN, invalid, not_found
from mykey.municipalities.codes import parse_code
from mykey.municipalities.models import Municipality
from mykey.points.models import MunicipalityPick

MAX_PICKS = 20
MAX_PRICE = 100_000_000


@dataclass(frozen=True)
class Pick:
    title: str
    shop: str
    price_yen: int
    url: str | None = None


def _check(position: int, pick: Pick) -> Pick:
    title, shop = pick.title.strip(), pick.shop.strip()
    if not 1 <= len(title) <= 200 or not 1 <= len(shop) <= 200:
        raise invalid(
            "invalid_pick",
            f"Pick {position}: a title and a shop of 1 to 200 characters are needed.",
            f"{position} 件目: 商品名と店名は 1〜200 文字で入力してください。",
            position=position,
        )
    price = pick.price_yen
    if type(price) is not int or not 0 <= price <= MAX_PRICE:  # yen: invalid_amount
        error = YEN.error(price, 0, MAX_PRICE, f"picks.{position}.price_yen")
        error.details["position"] = position
        raise error
    url = (pick.url or "").strip() or None
    if url is not None and (not url.startswith(("https://", "http://")) or len(url) > 400):
        raise invalid(
            "invalid_pick_url",
            f"Pick {position}: the address must start with https:// (at most 400 characters).",
            f"{position} 件目: URL は https:// で始まる 400 文字以内で入力してください。",
            position=position,
        )
    return Pick(title, shop, price, url)


def set_picks(uow: UnitOfWork, *, code: str, picks: Sequence[Pick], actor: str) -> list[Pick]:
    """Replace the municipality's picks by these (in this order); all or nothing."""
    code = parse_code(code)
    if len(picks) > MAX_PICKS:
        raise invalid(
            "too_many_picks",
            f"At most {MAX_PICKS} picks.",
            f"おすすめは {MAX_PICKS} 件までです。",
        )
    clean = [_check(n, pick) for n, pick in enumerate(picks, start=1)]

    def body() -> list[Pick]:
        if uow.session.get(Municipality, code) is None:
            raise not_found(
                "unknown_municipality",
                f"There is no municipality {code}.",
                f"自治体 {code} は登録されていません。",
            )
        uow.session.execute(delete(MunicipalityPick).where(MunicipalityPick.code == code))
        now = uow.now()
        for n, pick in enumerate(clean, start=1):
            uow.session.add(
                MunicipalityPick(
                    code=code,
                    position=n,
                    title=pick.title,
                    shop=pick.shop,
                    price_yen=pick.price_yen,
                    url=pick.url,
                    updated_by=actor[:128],
                    updated_at=now,
                )
            )
        uow.session.flush()
        return clean

    return uow.run(body)


def picks_of(uow: UnitOfWork, code: str) -> list[Pick]:
    code = parse_code(code)
    return uow.read(lambda: _rows(uow, [code]).get(code, []))


def picks_by_municipality(uow: UnitOfWork, codes: Sequence[str]) -> dict[str, list[Pick]]:
    return uow.read(lambda: _rows(uow, codes))


def _rows(uow: UnitOfWork, codes: Sequence[str]) -> dict[str, list[Pick]]:
    found: dict[str, list[Pick]] = {}
    if not codes:
        return found
    for row in uow.session.scalars(
        select(MunicipalityPick)
        .where(MunicipalityPick.code.in_(list(codes)))
        .order_by(MunicipalityPick.code, MunicipalityPick.position)
    ):
        found.setdefault(row.code, []).append(Pick(row.title, row.shop, row.price_yen, row.url))
    return found
