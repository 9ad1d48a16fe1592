"""Partner companies and the terms the council agrees with them (R5.4).

A partner's id (`jal`, `chubu-electric`) is also the service name under which residents
register their ID at that partner in My Page (R2.6), so an ID-linkage conversion finds the
MyKey ID with `identity.links.mykey_id_for_service(service=partner, …)`. A partner is not a
provider (providers are counters with user numbers in one municipality) and needs no zone.

Agreements are append-only: new terms are a new row with the Tokyo date they apply from; the
agreement in force on the Tokyo date of a conversion is the one with the latest
`effective_from` not after that date.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mykey.db import RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import POINTS, UNITS, MyKeyError, conflict, invalid, not_found, refused
from mykey.points.models import Partner, PartnerAgreement

METHODS = ("id_linkage", "coupon_paper", "coupon_email", "coupon_url")
PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # the same shape as a service name
MAX_UNITS = 10**12


@dataclass(frozen=True)
class Agreement:
    partner: str
    effective_from: date
    rate_units: int
    rate_points: int
    minimum: int
    step: int
    daily_limit: int | None  # units per resident per Tokyo day
    partner_daily_limit: int | None  # units per partner per Tokyo day, all residents
    recorded_by: str
    recorded_at: datetime

    def points_for(self, units: int) -> int:
        """Points for `units` partner units: units // rate_units * rate_points."""
        return units // self.rate_units * self.rate_points


@dataclass(frozen=True)
class PartnerView:
    id: str
    name: str
    methods: tuple[str, ...]
    agreements: tuple[Agreement, ...]


def check_partner_id(partner: object) -> str:
    if not isinstance(partner, str) or not PARTNER_ID.fullmatch(partner):
        raise invalid(
            "invalid_partner_id",
            "A partner id is 1 to 32 lower-case letters, digits, - or _ (e.g. jal).",
            "協力企業IDは小文字英数字・-・_ の 1〜32 文字です（例: jal）。",
        )
    return partner


def unknown_partner(partner: str) -> MyKeyError:
    return not_found(
        "unknown_partner",
        f"There is no partner {partner!r}.",
        f"協力企業 {partner!r} は登録されていません。",
    )


def partner_row(uow: UnitOfWork, partner: str) -> Partner:
    row = uow.session.get(Partner, partner)
    if row is None:
        raise unknown_partner(partner)
    return row


def methods_of(row: Partner) -> tuple[str, ...]:
    return tuple(json.loads(row.methods))


def _agreement(row: PartnerAgreement) -> Agreement:
    return Agreement(
        partner=row.partner,
        effective_from=row.effective_from,
        rate_units=row.rate_units,
        rate_points=row.rate_points,
        minimum=row.minimum,
        step=row.step,
        daily_limit=row.daily_limit,
        partner_daily_limit=row.partner_daily_limit,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )


def _view(uow: UnitOfWork, row: Partner) -> PartnerView:
    agreements = uow.session.scalars(
        select(PartnerAgreement)
        .where(PartnerAgreement.partner == row.id)
        .order_by(PartnerAgreement.effective_from)
    )
    return PartnerView(row.id, row.name, methods_of(row), tuple(_agreement(a) for a in agreements))


def set_partner(uow: UnitOfWork, *, partner: str, name: str, methods: Sequence[str]) -> PartnerView:
    """Register a partner, or change its name and the conversion methods agreed with it."""
    check_partner_id(partner)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise invalid("invalid_name", "A partner needs a name.", "協力企業名が必要です。")
    chosen = list(dict.fromkeys(methods))
    if not chosen or any(m not in METHODS for m in chosen):
        raise invalid(
            "invalid_methods",
            f"Methods are one or more of: {', '.join(METHODS)}.",
            f"交換方式は {', '.join(METHODS)} から一つ以上を指定してください。",
        )

    def body() -> PartnerView:
        s = uow.session
        now = uow.now()
        row = s.get(Partner, partner)
        if row is None:
            row = Partner(id=partner, created_at=now)
            s.add(row)
        row.name = name.strip()
        row.methods = json.dumps(chosen)
        row.updated_at = now
        try:
            s.flush()
        except IntegrityError as exc:  # a twin registration committed first
            raise RetryTransaction from exc
        return _view(uow, row)

    return uow.run(body)


def _positive(name: str, value: object, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    # rate_points are points; the others are the partner's own units
    return (POINTS if name == "rate_points" else UNITS).check(value, 1, MAX_UNITS, name)


def add_agreement(
    uow: UnitOfWork,
    *,
    partner: str,
    effective_from: date,
    rate_units: int,
    rate_points: int,
    minimum: int,
    step: int,
    daily_limit: int | None,
    partner_daily_limit: int | None = None,
    actor: str,
) -> Agreement:
    """Record new terms for a partner, in force from `effective_from` (a Tokyo date, today or
    later). Earlier terms stay as they were and keep applying to the days before."""
    check_partner_id(partner)
    for name, value in (
        ("rate_units", rate_units),
        ("rate_points", rate_points),
        ("minimum", minimum),
        ("step", step),
    ):
        _positive(name, value)
    _positive("daily_limit", daily_limit, optional=True)
    _positive("partner_daily_limit", partner_daily_limit, optional=True)
    if step % rate_units:
        raise invalid(
            "invalid_agreement",
            "The step must be a multiple of the rate's units, so that no unit is lost.",
            "交換単位はレートの単位数の倍数にしてください。",
            field="step",
        )
    if minimum % step:
        raise invalid(
            "invalid_agreement",
            "The minimum must be a multiple of the step.",
            "最低交換数は交換単位の倍数にしてください。",
            field="minimum",
        )
    for name, limit in (("daily_limit", daily_limit), ("partner_daily_limit", partner_daily_limit)):
        if limit is not None and limit < minimum:
            raise invalid(
                "invalid_agreement",
                f"{name} must be at least the minimum.",
                f"{name} は最低交換数以上にしてください。",
                field=name,
            )

    def body() -> Agreement:
        s = uow.session
        partner_row(uow, partner)
        today = tokyo_date(uow.now())
        if effective_from < today:
            raise invalid(
                "invalid_effective_from",
                f"Terms apply from today ({today}) or a later day, never to the past.",
                f"適用開始日は本日（{today}）以降にしてください。",
            )
        if s.get(PartnerAgreement, (partner, effective_from)) is not None:
            raise conflict(
                "agreement_exists",
                f"Terms from {effective_from} are already recorded; agreements are never"
                " edited: record terms from another day.",
                f"{effective_from} からの条件は登録済みです（変更は別の適用開始日で登録）。",
            )
        row = PartnerAgreement(
            partner=partner,
            effective_from=effective_from,
            rate_units=rate_units,
            rate_points=rate_points,
            minimum=minimum,
            step=step,
            daily_limit=daily_limit,
            partner_daily_limit=partner_daily_limit,
            recorded_by=actor[:128],
            recorded_at=uow.now(),
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:
            raise RetryTransaction from exc
        return _agreement(row)

    return uow.run(body)


def agreement_on(uow: UnitOfWork, partner: str, day: date) -> Agreement:
    """The terms in force for `partner` on the Tokyo date `day`, or `no_agreement`."""
    row = uow.session.scalars(
        select(PartnerAgreement)
        .where(PartnerAgreement.partner == partner, PartnerAgreement.effective_from <= day)
        .order_by(PartnerAgreement.effective_from.desc())
        .limit(1)
    ).first()
    if row is None:
        raise refused(
            "no_agreement",
            f"No agreement with {partner!r} is in force on {day}.",
            f"{day} 時点で {partner!r} との協定はありません。",
        )
    return _agreement(row)


def get_partner(uow: UnitOfWork, partner: str) -> PartnerView:
    check_partner_id(partner)
    return uow.read(lambda: _view(uow, partner_row(uow, partner)))


def list_partners(uow: UnitOfWork) -> list[PartnerView]:
    return uow.read(
        lambda: [
            _view(uow, row) for row in uow.session.scalars(select(Partner).order_by(Partner.id))
        ]
    )
