"""One card, many services (R2): providers, zones, links to their user numbers, lookups.

A provider (事業者: a library, a gym …) keeps its own user database. A resident's MyKey ID is
linked to the provider's user number (`MY123456 · A1 → 789145`), by the resident in My Page or
by the provider's staff with the resident's card. At the counter, a terminal of the provider
sends a card proof and gets its own user number back, never another provider's. Providers of
one zone (the Omuta regional libraries) may link a resident already linked at a zone-mate
without a new card proof. Service IDs are the IDs a resident has at a partner or an online
service, so that those can find the MyKey ID later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError

from mykey.db import RetryTransaction, UnitOfWork, driver_sql, send_together
from mykey.errors import MyKeyError, conflict, invalid, not_found
from mykey.identity import proofs, usage
from mykey.identity.binding import (
    Binder,
    ExpectedHolder,
    HolderBinding,
    check_expected,
    check_holder,
    mask,
)
from mykey.identity.models import Provider, ProviderLink, Resident, ResidentCard, ServiceId, Zone
from mykey.identity.proofs import Card, VerifiedCard
from mykey.municipalities.codes import parse_code

KINDS = (
    "library",
    "community_plaza",
    "gym",
    "museum",
    "sports",
    "transport",
    "bicycle_parking",
    "course",
    "clinic",
    "shop_street",
    "other",
    # shops and facilities where points are spent (points.programs.PLACE_KINDS)
    "shop",
    "shopping_street",
    "large_store",
    "facility_fee",
    "pool",
    "hot_spring",
    "bus",
    "taxi",
    "tourist_office",
    "online",
)
PROVIDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}")
USER_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
SERVICE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class ProviderView:
    id: str
    name: str
    kind: str
    municipality: str
    zone_id: str | None


@dataclass(frozen=True)
class LinkView:
    mykey_id: str
    provider_id: str
    user_number: str
    linked_at: datetime


def _unknown_provider(provider_id: str) -> MyKeyError:
    return not_found(
        "unknown_provider",
        f"There is no provider {provider_id}.",
        f"事業者 {provider_id} は登録されていません。",
    )


def add_zone(uow: UnitOfWork, *, zone_id: str, name: str) -> None:
    if not PROVIDER_ID.fullmatch(zone_id) or not name:
        raise invalid(
            "invalid_zone", "A zone needs an id and a name.", "圏域には ID と名前が必要です。"
        )

    def body() -> None:
        if uow.session.get(Zone, zone_id) is None:
            uow.session.add(Zone(id=zone_id, name=name))
            uow.session.flush()

    uow.run(body)


def add_provider(
    uow: UnitOfWork,
    *,
    provider_id: str,
    name: str,
    kind: str,
    municipality: str,
    zone_id: str | None = None,
) -> ProviderView:
    """Register a provider (or return the one registered under this id)."""
    if not PROVIDER_ID.fullmatch(provider_id):
        raise invalid(
            "invalid_provider_id",
            "A provider id is 1 to 16 letters, digits, - or _.",
            "事業者IDは英数字・-・_ の 1〜16 文字です。",
        )
    if kind not in KINDS:
        raise invalid(
            "invalid_provider_kind",
            f"Unknown kind {kind!r}; one of {', '.join(KINDS)}.",
            f"種別 {kind!r} は不明です。",
        )
    code = parse_code(municipality)
    if not name or len(name) > 200:
        raise invalid("invalid_name", "A provider needs a name.", "事業者名が必要です。")

    def body() -> ProviderView:
        s = uow.session
        if zone_id is not None and s.get(Zone, zone_id) is None:
            raise not_found(
                "unknown_zone", f"There is no zone {zone_id}.", f"圏域 {zone_id} はありません。"
            )
        row = s.get(Provider, provider_id)
        if row is None:
            row = Provider(
                id=provider_id,
                name=name,
                kind=kind,
                municipality=code,
                zone_id=zone_id,
                created_at=uow.now(),
            )
            s.add(row)
            s.flush()
        return ProviderView(row.id, row.name, row.kind, row.municipality, row.zone_id)

    return uow.run(body)


def _provider(uow: UnitOfWork, provider_id: str) -> Provider:
    row = uow.session.get(Provider, provider_id)
    if row is None:
        raise _unknown_provider(provider_id)
    return row


def _no_mykey_id() -> MyKeyError:
    return not_found(
        "card_not_registered",
        "This card has no MyKey ID yet.",
        "このカードにはまだマイキーIDがありません。",
    )


def mykey_id_of_card(uow: UnitOfWork, card: VerifiedCard) -> str:
    link = uow.session.get(ResidentCard, card.card_key)
    if link is None:
        raise _no_mykey_id()
    return link.mykey_id


def _check_number(user_number: str) -> str:
    if not isinstance(user_number, str) or not USER_NUMBER.fullmatch(user_number):
        raise invalid(
            "invalid_user_number",
            "A user number is 1 to 32 letters, digits, - or _.",
            "利用者番号は英数字・-・_ の 1〜32 文字です。",
        )
    return user_number


def _link(
    uow: UnitOfWork, *, mykey_id: str, provider_id: str, user_number: str, actor: str
) -> LinkView:
    s = uow.session
    _provider(uow, provider_id)
    existing = s.get(ProviderLink, (mykey_id, provider_id))
    if existing is not None:
        if existing.user_number == user_number:
            return LinkView(mykey_id, provider_id, user_number, existing.linked_at)
        raise conflict(
            "already_linked",
            f"This MyKey ID is already linked at {provider_id}; unlink it first.",
            f"このマイキーIDは既に {provider_id} と連携しています。先に解除してください。",
        )
    taken = s.execute(
        select(ProviderLink.mykey_id).where(
            ProviderLink.provider_id == provider_id, ProviderLink.user_number == user_number
        )
    ).first()
    if taken is not None:
        raise conflict(
            "user_number_taken",
            f"User number {user_number} at {provider_id} is linked to another MyKey ID.",
            f"{provider_id} の利用者番号 {user_number} は別のマイキーIDと連携済みです。",
        )
    now = uow.now()
    s.add(
        ProviderLink(
            mykey_id=mykey_id,
            provider_id=provider_id,
            user_number=user_number,
            linked_at=now,
            linked_by=actor,
        )
    )
    try:
        s.flush()
    except IntegrityError as exc:
        raise RetryTransaction from exc
    usage.record(uow, mykey_id=mykey_id, action="link", actor=actor, provider_id=provider_id)
    return LinkView(mykey_id, provider_id, user_number, now)


def link_by_resident(
    uow: UnitOfWork, *, mykey_id: str, provider_id: str, user_number: str
) -> LinkView:
    """The resident links their MyKey ID to their user number (in My Page)."""
    _check_number(user_number)
    return uow.run(
        lambda: _link(
            uow,
            mykey_id=mykey_id,
            provider_id=provider_id,
            user_number=user_number,
            actor=f"resident:{mykey_id}",
        )
    )


def link_by_staff(
    uow: UnitOfWork,
    *,
    provider_id: str,
    user_number: str,
    actor: str,
    card: VerifiedCard | None = None,
    mykey_id: str | None = None,
) -> LinkView:
    """Provider staff link a user: with the resident's card proof, or, within a zone, by the
    MyKey ID of a resident already linked at a zone-mate."""
    _check_number(user_number)

    def body() -> LinkView:
        s = uow.session
        if card is not None:
            who = mykey_id_of_card(uow, card)
        elif mykey_id is not None:
            provider = _provider(uow, provider_id)
            mates = (
                select(ProviderLink.provider_id)
                .join(Provider, Provider.id == ProviderLink.provider_id)
                .where(
                    ProviderLink.mykey_id == mykey_id.upper(),
                    Provider.zone_id.is_not(None),
                    Provider.zone_id == provider.zone_id,
                )
            )
            if provider.zone_id is None or s.execute(mates).first() is None:
                raise not_found(
                    "card_proof_required",
                    "Without the card, only a user already linked in this provider's zone can be"
                    " linked.",
                    "カードがない場合は、同じ圏域で連携済みの利用者のみ連携できます。",
                )
            who = mykey_id.upper()
        else:
            raise invalid(
                "card_proof_required",
                "Send the resident's card proof.",
                "利用者のカードの証明を送ってください。",
            )
        return _link(
            uow, mykey_id=who, provider_id=provider_id, user_number=user_number, actor=actor
        )

    return uow.run(body)


def unlink(uow: UnitOfWork, *, mykey_id: str, provider_id: str, actor: str) -> None:
    def body() -> None:
        gone = uow.session.execute(
            delete(ProviderLink).where(
                ProviderLink.mykey_id == mykey_id, ProviderLink.provider_id == provider_id
            )
        )
        if not getattr(gone, "rowcount", 0):
            raise not_found(
                "not_linked",
                f"This MyKey ID is not linked at {provider_id}.",
                f"このマイキーIDは {provider_id} と連携していません。",
            )
        usage.record(uow, mykey_id=mykey_id, action="unlink", actor=actor, provider_id=provider_id)

    uow.run(body)


def links_of(uow: UnitOfWork, mykey_id: str) -> list[LinkView]:
    def body() -> list[LinkView]:
        rows = uow.session.scalars(
            select(ProviderLink)
            .where(ProviderLink.mykey_id == mykey_id)
            .order_by(ProviderLink.provider_id)
        )
        return [LinkView(r.mykey_id, r.provider_id, r.user_number, r.linked_at) for r in rows]

    return uow.read(body)


@dataclass(frozen=True)
class Lookup:
    """A counter lookup: the user number, whose it is (masked, for the screen) and, given a
    binder, the binding of that holder (a later lookup may expect the same holder)."""

    user_number: str
    holder: str
    binding: HolderBinding | None


def lookup(
    uow: UnitOfWork,
    *,
    provider_id: str,
    card: Card,
    actor: str,
    purpose: str,
    binder: Binder | None = None,
    expected_holder: ExpectedHolder | None = None,
) -> Lookup:
    """At a provider's counter: the user number of the card's holder at this provider. The
    card's proof is checked in the same transaction; `wrong_card` if `expected_holder` names
    someone else. A card not linked here is refused (`not_linked`) and recorded.

    One transaction; on PostgreSQL two round trips (`_lookup_in_two`)."""
    if uow.dialect == "postgresql" and not uow.in_transaction:
        return _lookup_in_two(
            uow,
            provider_id=provider_id,
            card=card,
            actor=actor,
            purpose=purpose,
            binder=binder,
            expected_holder=expected_holder,
        )

    def body() -> Lookup | MyKeyError:
        check_holder(uow, expected_holder, card=card, place=provider_id, expiry=True)
        who = mykey_id_of_card(uow, proofs.verify_in_transaction(uow, card))
        link = uow.session.get(ProviderLink, (who, provider_id))
        usage.record(
            uow,
            mykey_id=who,
            action="lookup" if link else "lookup_not_linked",
            actor=actor,
            provider_id=provider_id,
            purpose=purpose,
        )
        if link is None:
            return _not_linked()
        bound = binder.bind(mykey_id=who, place=provider_id, now=uow.now()) if binder else None
        return Lookup(link.user_number, mask(who), bound)

    return proofs.run_with_card_proofs(uow, body)


def _not_linked() -> MyKeyError:
    return not_found(
        "not_linked",
        "This card is not linked at this provider yet.",
        "このカードはこの事業者とまだ連携していません。",
    )


_CARDS = cast(Table, ResidentCard.__table__)
_LINKS = cast(Table, ProviderLink.__table__)


@cache
def _lookup_facts_pg() -> tuple[str, dict[str, Any]]:
    """What a look-up reads, in one statement for the driver's own cursor (`send_together`):
    the card key's MyKey ID, its user number here, the card's standing (`proofs.CardStanding`)
    and the id of the usage entry the look-up will write; the SQL and its literals' values."""
    card: BindParameter[str] = bindparam("p_card")
    holder = select(_CARDS.c.mykey_id).where(_CARDS.c.card_key == card).scalar_subquery()
    number = (
        select(_LINKS.c.user_number)
        .where(_LINKS.c.mykey_id == holder, _LINKS.c.provider_id == bindparam("p_provider"))
        .scalar_subquery()
    )
    query = select(
        holder,
        number,
        *proofs.standing_columns(card, bindparam("p_challenge")),
        func.nextval(func.pg_get_serial_sequence("mykey_usage", "id")),
    )
    return driver_sql(query)


def _lookup_in_two(
    uow: UnitOfWork,
    *,
    provider_id: str,
    card: Card,
    actor: str,
    purpose: str,
    binder: Binder | None,
    expected_holder: ExpectedHolder | None,
) -> Lookup:
    """`lookup` on PostgreSQL: BEGIN with one look-up of everything (`_lookup_facts_pg`), the
    holder and the card's proof checked against it, then the challenge's use, the usage entry
    and its leaf in one statement with the COMMIT (`usage.record_with_commit`)."""
    card_key = proofs.claimed_card_key(card)
    use_id = proofs.claimed_use_id(card)

    def body() -> Lookup | MyKeyError:
        now = uow.now()
        sql, literals = _lookup_facts_pg()
        params = {**literals, "p_card": card_key, "p_challenge": use_id, "p_provider": provider_id}
        holder, number, revoked, replaced, used, usage_id = send_together(
            uow, [(sql, params)], begin=True
        )[0][0]
        check_expected(
            expected_holder, card_key=card_key, holder=holder, place=provider_id, now=now
        )
        standing = proofs.CardStanding.of_row(revoked, replaced, used)
        checked = proofs.check_with_standing(card, now, standing)
        who = holder if checked.card.card_key == card_key else mykey_id_of_card(uow, checked.card)
        if who is None:
            raise _no_mykey_id()
        if not usage.record_with_commit(
            uow,
            gate=proofs.use_gate(checked.use_id, now),
            usage_id=int(usage_id),
            mykey_id=who,
            action="lookup" if number is not None else "lookup_not_linked",
            actor=actor,
            provider_id=provider_id,
            purpose=purpose,
        ):
            raise proofs.challenge_taken(card)
        if number is None:
            return _not_linked()
        bound = binder.bind(mykey_id=who, place=provider_id, now=now) if binder else None
        return Lookup(number, mask(who), bound)

    return proofs.run_with_card_proofs(uow, body, statement_begin=True)


def register_service_id(uow: UnitOfWork, *, mykey_id: str, service: str, external_id: str) -> None:
    """The resident's ID at a partner or online service (R2.6)."""
    if not SERVICE.fullmatch(service) or not external_id or len(external_id) > 128:
        raise invalid(
            "invalid_service_id",
            "A service is a short lower-case name; the ID 1 to 128 characters.",
            "サービス名は小文字の短い名前、ID は 1〜128 文字です。",
        )

    def body() -> None:
        row = uow.session.get(ServiceId, (service, external_id))
        if row is not None and row.mykey_id != mykey_id:
            raise conflict(
                "service_id_taken",
                "This service ID is registered to another MyKey ID.",
                "このサービスIDは別のマイキーIDに登録されています。",
            )
        if row is None:
            uow.session.add(
                ServiceId(
                    service=service,
                    external_id=external_id,
                    mykey_id=mykey_id,
                    registered_at=uow.now(),
                )
            )
            uow.session.flush()
            usage.record(
                uow,
                mykey_id=mykey_id,
                action="service_id",
                actor=f"resident:{mykey_id}",
                purpose=service,
            )

    uow.run(body)


def service_ids_of(uow: UnitOfWork, mykey_id: str) -> list[tuple[str, str]]:
    return uow.read(
        lambda: [
            (r.service, r.external_id)
            for r in uow.session.scalars(
                select(ServiceId).where(ServiceId.mykey_id == mykey_id).order_by(ServiceId.service)
            )
        ]
    )


def mykey_id_for_service(uow: UnitOfWork, *, service: str, external_id: str) -> str:
    """Which MyKey ID registered this service ID (for partners and online services)."""

    def body() -> str:
        row = uow.session.get(ServiceId, (service, external_id))
        if row is None or uow.session.get(Resident, row.mykey_id) is None:
            raise not_found(
                "unknown_service_id",
                "No MyKey ID has registered this service ID.",
                "このサービスIDを登録したマイキーIDはありません。",
            )
        return row.mykey_id

    return uow.read(body)


def get_provider(uow: UnitOfWork, provider_id: str) -> ProviderView:
    """A provider (a library, a gym …) by its id, or `unknown_provider`."""

    def body() -> ProviderView:
        row = _provider(uow, provider_id)
        return ProviderView(row.id, row.name, row.kind, row.municipality, row.zone_id)

    return uow.read(body)
