"""Shops and facilities where points are spent (R6), and shopping streets that group them.

A shop is an identity provider (事業者): its id is the provider id that its terminal keys are
bound to (`mykey keys create --role terminal --provider ID`). It accepts the points of one or
more municipalities; for each it has a SHOP account (owner = shop id) in that municipality's
ledger, which the counter payments credit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, select

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.errors import invalid, not_found, refused
from mykey.identity import links
from mykey.identity.models import Provider
from mykey.ledger import AccountKind
from mykey.municipalities.codes import parse_code
from mykey.points import shop_cache
from mykey.points.models import Shop, ShopAccept, ShoppingStreet
from mykey.points.program_setup import program_of
from mykey.points.programs import PLACE_KINDS

STREET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


@dataclass(frozen=True)
class StreetView:
    id: str
    name: str
    municipality: str


@dataclass(frozen=True)
class ShopView:
    id: str
    name: str
    municipality: str
    kind: str
    street_id: str | None
    accepts: tuple[str, ...]


def _name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise invalid("invalid_name", "A name is 1 to 200 characters.", "名称は1〜200文字です。")
    return name.strip()


def set_street(uow: UnitOfWork, *, street_id: str, name: str, municipality: str) -> StreetView:
    """Register a shopping street, or rename it."""
    if not STREET_ID.fullmatch(street_id):
        raise invalid(
            "invalid_street_id",
            "A street id is 1 to 32 letters, digits, - or _.",
            "商店街IDは英数字・-・_ の1〜32文字です。",
        )
    code = parse_code(municipality)
    clean = _name(name)

    def body() -> StreetView:
        s = uow.session
        row = s.get(ShoppingStreet, street_id)
        if row is None:
            row = ShoppingStreet(id=street_id, name=clean, municipality=code, created_at=uow.now())
            s.add(row)
        elif row.municipality != code:
            raise refused(
                "street_elsewhere",
                f"Street {street_id} belongs to municipality {row.municipality}.",
                f"商店街 {street_id} は団体コード {row.municipality} の商店街です。",
            )
        else:
            row.name = clean
        s.flush()
        return StreetView(row.id, row.name, row.municipality)

    return uow.run(body)


def street_of(uow: UnitOfWork, street_id: str) -> StreetView:
    def body() -> StreetView:
        row = uow.session.get(ShoppingStreet, street_id)
        if row is None:
            raise not_found(
                "unknown_street",
                f"There is no shopping street {street_id}.",
                f"商店街 {street_id} はありません。",
            )
        return StreetView(row.id, row.name, row.municipality)

    return uow.read(body)


def _view(uow: UnitOfWork, row: Shop) -> ShopView:
    codes = uow.session.scalars(
        select(ShopAccept.code).where(ShopAccept.shop_id == row.id).order_by(ShopAccept.code)
    )
    return ShopView(row.id, row.name, row.municipality, row.kind, row.street_id, tuple(codes))


def set_shop(
    uow: UnitOfWork,
    *,
    shop_id: str,
    name: str,
    municipality: str,
    kind: str,
    accepts: list[str],
    street_id: str | None = None,
) -> ShopView:
    """Register a shop or facility (and its provider), or change it. Each accepted municipality
    must have a point program whose `usable_at` lists the shop's kind; the shop gets a SHOP
    account in each of those ledgers. Dropping a municipality keeps its account (and history)."""
    code = parse_code(municipality)
    clean = _name(name)
    if kind not in PLACE_KINDS:
        raise invalid(
            "invalid_place_kind",
            f"Unknown kind {kind!r}; one of {', '.join(PLACE_KINDS)}.",
            f"種別 {kind!r} は不明です。",
        )
    codes = sorted({parse_code(c) for c in accepts})
    if not codes:
        raise invalid(
            "no_accepted_points",
            "A shop accepts the points of at least one municipality.",
            "少なくとも一つの自治体のポイントを受け付ける必要があります。",
        )

    def body() -> ShopView:
        s = uow.session
        for accepted in codes:
            program = program_of(uow, accepted)
            if kind not in program.usable_at:
                raise refused(
                    "kind_not_usable",
                    f"{program.point_name} cannot be used at a {kind}.",
                    f"{program.point_name}は種別「{kind}」では使えません。",
                    municipality=accepted,
                )
        if street_id is not None:
            street = s.get(ShoppingStreet, street_id)
            if street is None:
                raise not_found(
                    "unknown_street",
                    f"There is no shopping street {street_id}.",
                    f"商店街 {street_id} はありません。",
                )
        provider = s.get(Provider, shop_id)
        if provider is None:
            links.add_provider(uow, provider_id=shop_id, name=clean, kind=kind, municipality=code)
        elif provider.municipality != code:
            raise refused(
                "provider_elsewhere",
                f"Provider {shop_id} belongs to municipality {provider.municipality}.",
                f"事業者 {shop_id} は団体コード {provider.municipality} の事業者です。",
            )
        else:
            provider.name = clean
        now = uow.now()
        row = s.get(Shop, shop_id)
        if row is None:
            row = Shop(
                id=shop_id,
                name=clean,
                municipality=code,
                kind=kind,
                street_id=street_id,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
        else:
            row.name, row.kind, row.street_id, row.updated_at = clean, kind, street_id, now
        s.flush()
        s.execute(
            delete(ShopAccept).where(ShopAccept.shop_id == shop_id, ShopAccept.code.not_in(codes))
        )
        have = set(s.scalars(select(ShopAccept.code).where(ShopAccept.shop_id == shop_id)))
        for accepted in codes:
            if accepted in have:
                continue
            account = ledger.open_account(
                uow, ledger=accepted, kind=AccountKind.SHOP, owner=shop_id
            )
            s.add(ShopAccept(shop_id=shop_id, code=accepted, account_id=account.id))
        s.flush()
        return _view(uow, row)

    view = uow.run(body)
    shop_cache.forget(uow.engine, shop_id)  # after the commit: counters here see it at once
    return view


def get_shop(uow: UnitOfWork, shop_id: str) -> ShopView:
    def body() -> ShopView:
        row = uow.session.get(Shop, shop_id)
        if row is None:
            raise not_found(
                "unknown_shop", f"There is no shop {shop_id}.", f"店舗 {shop_id} はありません。"
            )
        return _view(uow, row)

    return uow.read(body)


def list_shops(uow: UnitOfWork, *, municipality: str | None = None) -> list[ShopView]:
    """Every shop, or the shops where `municipality`'s points can be used (Point Navi)."""
    code = parse_code(municipality) if municipality else None

    def body() -> list[ShopView]:
        stmt = select(Shop).order_by(Shop.id)
        if code is not None:
            stmt = stmt.where(
                Shop.id.in_(select(ShopAccept.shop_id).where(ShopAccept.code == code))
            )
        return [_view(uow, row) for row in uow.session.scalars(stmt)]

    return uow.read(body)


def list_streets(uow: UnitOfWork, *, municipality: str) -> list[StreetView]:
    """The municipality's shopping streets, by id (a prize voucher may be valid at one)."""
    code = parse_code(municipality)
    return uow.read(
        lambda: [
            StreetView(row.id, row.name, row.municipality)
            for row in uow.session.scalars(
                select(ShoppingStreet)
                .where(ShoppingStreet.municipality == code)
                .order_by(ShoppingStreet.id)
            )
        ]
    )
