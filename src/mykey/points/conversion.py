"""Partner conversions (R5): a resident's partner points or miles become municipal points.

`convert` is the only way points are converted, whatever the method (ID linkage, or a coupon
code redeemed later). On the ledger of the chosen municipality (or of reserved points), the
partner's account is debited and the resident's wallet credited with a lot of funding source
`partner`. The partner account's debit balance in a municipality's ledger IS what the partner
owes that municipality, 1 yen per point (R5.5, R7.1): see `receivables`. A program's premium
(R5.6) is a second transfer from the municipality's budget, never part of the receivable.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import TOKYO, RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import MAX_POINTS, UNITS, invalid, not_found, refused
from mykey.identity import usage
from mykey.identity.links import mykey_id_for_service
from mykey.identity.models import Resident
from mykey.identity.residents import normalise_mykey_id
from mykey.ledger import Account, AccountKind, LotTerms
from mykey.ledger.idempotency import keyed_write, request_hash, scope
from mykey.ledger.models import TransferRow
from mykey.municipalities.codes import parse_code
from mykey.municipalities.models import Municipality
from mykey.points.balances import RESERVED
from mykey.points.grants import add_within_cap
from mykey.points.models import Conversion, ConversionDailyUse, Partner, PointProgram, PremiumUse
from mykey.points.partners import (
    METHODS,
    Agreement,
    agreement_on,
    check_partner_id,
    methods_of,
    partner_row,
)
from mykey.points.program_setup import Program, program_of
from mykey.points.programs import add_months, expires_on, fiscal_year_of

RESERVED_NAME = "留保ポイント"
RESERVED_VALIDITY_MONTHS = 6  # reserved points not assigned by then lapse
NAMESPACE = uuid.UUID("5b0c1f0e-7d4a-4f43-9a43-0c5f2b6f1a01")
CLIENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}")


@dataclass(frozen=True)
class ConversionReceipt:
    conversion_id: UUID
    partner: str
    method: str
    mykey_id: str
    units: int
    points: int
    premium: int
    municipality: str | None  # None: the resident's reserved points
    balance: int  # the resident's points there after the conversion
    transfer_id: UUID
    premium_transfer_id: UUID | None
    reference: str | None
    created_at: datetime
    replayed: bool


@dataclass(frozen=True)
class Receivable:
    partner: str
    municipality: str | None  # None: reserved points not yet assigned (owed to no one yet)
    points: int  # = yen the partner owes


# ---------------------------------------------------------------------------------------------
# shared with reserved points


def reserved_expiry(today: date) -> date:
    return date.fromordinal(add_months(today, RESERVED_VALIDITY_MONTHS).toordinal() - 1)


def member_program(uow: UnitOfWork, code: str) -> Program:
    """The program of a registered municipality that takes part (has a point program)."""
    if uow.session.get(Municipality, code) is None:
        raise not_found(
            "unknown_municipality",
            f"No local government with code {code} is registered.",
            f"団体コード {code} の自治体は登録されていません。",
        )
    if uow.session.get(PointProgram, code) is None:
        raise refused(
            "not_a_member",
            f"Municipality {code} has no point program, so it cannot receive points.",
            f"団体コード {code} の自治体はポイント制度に参加していないため受け取れません。",
        )
    return program_of(uow, code)


def add_premium(
    uow: UnitOfWork,
    *,
    program: Program,
    wallet: Account,
    points: int,
    actor: str,
    key: str,
    metadata: dict[str, Any],
) -> tuple[int, UUID | None]:
    """The program's premium on `points` converted into its points: from its budget account,
    a lot of funding `premium`. All or nothing against the premium budget: when the premium
    does not fit in what is left of the year's premium budget, none is given."""
    premium = points * program.premium_permille // 1000
    if premium <= 0:
        return 0, None
    today = tokyo_date(uow.now())
    if program.premium_budget is not None and not add_within_cap(
        uow, PremiumUse, program.code, fiscal_year_of(today), premium, program.premium_budget
    ):
        return 0, None
    budget = ledger.find_account(
        uow, ledger=program.code, kind=AccountKind.BUDGET, owner=program.code
    )
    receipt = ledger.transfer(
        uow,
        debit=budget.id,
        credit=wallet.id,
        amount=premium,
        kind="premium",
        actor=actor,
        key=key,
        lot=LotTerms("premium", expires_on(program.validity, "premium", today)),
        metadata=metadata,
    )
    return premium, receipt.transfer_id


# ---------------------------------------------------------------------------------------------
# convert


def _check_units(units: object) -> int:
    return UNITS.check(units, 1, MAX_POINTS, "units")


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not CLIENT_KEY.fullmatch(key):
        raise invalid(
            "invalid_idempotency_key",
            "An idempotency key is 1 to 100 characters of A-Z a-z 0-9 . _ : -",
            "冪等キーは英数字と . _ : - の 1〜100 文字で指定してください。",
        )
    return key


def _use_daily(
    uow: UnitOfWork, agreement: Agreement, scope: str, day: date, units: int, cap: int
) -> None:
    """Count units against a daily limit with a guarded update (which also serialises the
    conversions on that counter), so concurrent conversions can never exceed it."""
    s = uow.session
    partner = agreement.partner
    if s.get(ConversionDailyUse, (partner, scope, day)) is None:
        s.add(ConversionDailyUse(partner=partner, scope=scope, day=day, units=0))
        try:
            s.flush()
        except IntegrityError as exc:
            raise RetryTransaction from exc
    done = s.execute(
        update(ConversionDailyUse)
        .where(
            ConversionDailyUse.partner == partner,
            ConversionDailyUse.scope == scope,
            ConversionDailyUse.day == day,
            ConversionDailyUse.units + units <= cap,
        )
        .values(units=ConversionDailyUse.units + units)
    )
    if cast(CursorResult[Any], done).rowcount:
        return
    used = s.execute(
        select(ConversionDailyUse.units).where(
            ConversionDailyUse.partner == partner,
            ConversionDailyUse.scope == scope,
            ConversionDailyUse.day == day,
        )
    ).scalar_one()
    if scope == "*":
        raise refused(
            "partner_daily_limit_reached",
            f"{partner} has reached its daily conversion limit ({used:,} of {cap:,} units"
            f" on {day}).",
            f"{partner} の本日の交換上限に達しています（{day}: {used:,} / {cap:,}）。",
            used=used,
            limit=cap,
        )
    raise refused(
        "daily_limit_reached",
        f"This would exceed the daily limit of {cap:,} units per person ({used:,} already"
        f" converted on {day}).",
        f"一日あたりの交換上限 {cap:,} を超えます（{day} の交換済み {used:,}）。",
        used=used,
        limit=cap,
    )


def _receipt(uow: UnitOfWork, row: Conversion, *, replayed: bool) -> ConversionReceipt:
    code = row.municipality or RESERVED
    wallet = ledger.find_account(uow, ledger=code, kind=AccountKind.WALLET, owner=row.mykey_id)
    return ConversionReceipt(
        conversion_id=row.id,
        partner=row.partner,
        method=row.method,
        mykey_id=row.mykey_id,
        units=row.units,
        points=row.points,
        premium=row.premium,
        municipality=row.municipality,
        balance=ledger.balance(uow, wallet.id).available,
        transfer_id=row.transfer_id,
        premium_transfer_id=row.premium_transfer_id,
        reference=row.reference,
        created_at=row.created_at,
        replayed=replayed,
    )


def conversion_receipt(
    uow: UnitOfWork, conversion_id: UUID, *, replayed: bool
) -> ConversionReceipt:
    """The receipt of a conversion as it stands (inside a transaction)."""
    row = uow.session.get(Conversion, conversion_id)
    if row is None:
        raise not_found(
            "unknown_conversion",
            f"There is no conversion {conversion_id}.",
            f"交換 {conversion_id} はありません。",
        )
    return _receipt(uow, row, replayed=replayed)


def _digest(
    partner: str,
    units: int,
    code: str | None,
    method: str,
    reference: str | None,
    *,
    mykey_id: str | None = None,
    service_id: str | None = None,
) -> str:
    """The hash of a whole conversion request (the resident named by MyKey ID or by the ID at
    the partner), stored with its transfer under the client's key."""
    fields: dict[str, object] = {
        "partner": partner,
        "units": units,
        "municipality": code,
        "method": method,
        "reference": reference,
    }
    if service_id is not None:
        fields["service_id"] = service_id
    else:
        fields["mykey_id"] = mykey_id
    return request_hash("conversion", fields)


def _known(uow: UnitOfWork, actor: str, key: str) -> tuple[str | None, ConversionReceipt] | None:
    """What a known (actor, key) made: the hash of its request and its receipt (replayed)."""
    row = uow.session.scalars(
        select(Conversion).where(Conversion.actor == actor, Conversion.client_key == key)
    ).first()
    if row is None:
        return None
    made = uow.session.scalar(
        select(TransferRow.request_hash).where(TransferRow.id == row.transfer_id)
    )
    return made, _receipt(uow, row, replayed=True)


def _keyed(
    uow: UnitOfWork, actor: str, key: str, digest: str, act: Callable[[], ConversionReceipt]
) -> ConversionReceipt:
    """A conversion under the client's key: the same request once (`replayed` after), another
    request under it `idempotency_key_reused`, a refusal (a daily limit, say) stored and
    refused again on every retry."""
    return keyed_write(
        uow,
        scope=scope("conversion", actor),
        key=key,
        digest=digest,
        stored=lambda: _known(uow, actor, key),
        act=act,
    )


def _check_method(uow: UnitOfWork, partner: str, method: str) -> None:
    row: Partner = partner_row(uow, partner)
    if method not in methods_of(row):
        raise refused(
            "method_not_agreed",
            f"Conversion by {method} is not agreed with {partner}.",
            f"{partner} とは {method} による交換の協定がありません。",
        )


def _convert(
    uow: UnitOfWork,
    *,
    partner: str,
    who: str,
    units: int,
    code: str | None,
    method: str,
    actor: str,
    key: str,
    reference: str | None,
    service_id: str | None,
    digest: str,
) -> ConversionReceipt:
    s = uow.session
    _check_method(uow, partner, method)
    now = uow.now()
    today = tokyo_date(now)
    terms = agreement_on(uow, partner, today)
    if units < terms.minimum:
        raise refused(
            "below_minimum",
            f"At least {terms.minimum:,} units are converted at a time.",
            f"一度に交換できるのは {terms.minimum:,} 以上です。",
            minimum=terms.minimum,
        )
    if units % terms.step:
        raise invalid(
            "wrong_step",
            f"Units are converted in steps of {terms.step:,}.",
            f"交換数は {terms.step:,} 単位で指定してください。",
            step=terms.step,
        )
    if s.get(Resident, who) is None:
        raise not_found(
            "unknown_mykey_id", f"There is no MyKey ID {who}.", f"マイキーID {who} は存在しません。"
        )
    program = member_program(uow, code) if code is not None else None
    if terms.daily_limit is not None:
        _use_daily(uow, terms, who, today, units, terms.daily_limit)
    if terms.partner_daily_limit is not None:
        _use_daily(uow, terms, "*", today, units, terms.partner_daily_limit)
    points = terms.points_for(units)
    conversion_id = uuid.uuid5(NAMESPACE, f"{actor}\n{key}")
    if program is not None:
        book = program.code
        last_day = expires_on(program.validity, "partner", today)
    else:
        book = RESERVED
        ledger.open_ledger(uow, code=RESERVED, name=RESERVED_NAME)
        last_day = reserved_expiry(today)
    debit = ledger.open_account(uow, ledger=book, kind=AccountKind.PARTNER, owner=partner)
    wallet = ledger.open_account(uow, ledger=book, kind=AccountKind.WALLET, owner=who)
    metadata = {
        "partner": partner,
        "method": method,
        "units": units,
        "conversion_id": str(conversion_id),
    }
    receipt = ledger.transfer(
        uow,
        debit=debit.id,
        credit=wallet.id,
        amount=points,
        kind="convert",
        actor=actor,
        key=key,
        lot=LotTerms("partner", last_day),
        metadata=metadata,
        request_digest=digest,
    )
    premium, premium_id = 0, None
    if program is not None:
        premium, premium_id = add_premium(
            uow,
            program=program,
            wallet=wallet,
            points=points,
            actor=actor,
            key=f"{key}:premium",
            metadata=metadata,
        )
    row_out = Conversion(
        id=conversion_id,
        actor=actor,
        client_key=key,
        partner=partner,
        method=method,
        mykey_id=who,
        service_id=service_id,
        units=units,
        points=points,
        premium=premium,
        municipality=code,
        agreement_from=terms.effective_from,
        transfer_id=receipt.transfer_id,
        premium_transfer_id=premium_id,
        reference=reference,
        created_at=now,
    )
    s.add(row_out)
    try:
        s.flush()
    except IntegrityError as exc:  # a twin request with this key committed first: replay it
        raise RetryTransaction from exc
    usage.record(uow, mykey_id=who, action="conversion", actor=actor, purpose=partner)
    return _receipt(uow, row_out, replayed=False)


def _check_common(
    partner: str, units: int, municipality: str | None, method: str, key: str, ref: str | None
) -> str | None:
    check_partner_id(partner)
    _check_units(units)
    _check_key(key)
    if method not in METHODS:
        raise invalid(
            "invalid_method",
            f"A method is one of: {', '.join(METHODS)}.",
            f"交換方式は {', '.join(METHODS)} のいずれかです。",
        )
    if ref is not None and not 1 <= len(ref) <= 128:
        raise invalid(
            "invalid_reference", "A reference is 1 to 128 characters.", "参照は 1〜128 文字です。"
        )
    return parse_code(municipality) if municipality is not None else None


def convert(
    uow: UnitOfWork,
    *,
    partner: str,
    mykey_id: str,
    units: int,
    municipality: str | None,
    method: str,
    actor: str,
    key: str,
    reference: str | None = None,
) -> ConversionReceipt:
    """Convert `units` of the partner's points into points of `municipality` (or into the
    resident's reserved points when None). The same (actor, key) converts once: a retry gets
    the first receipt (`replayed`); the same key for another conversion is refused
    (`idempotency_key_reused`), and a refused conversion is refused again under its key."""
    code = _check_common(partner, units, municipality, method, key, reference)
    who = normalise_mykey_id(mykey_id)
    digest = _digest(partner, units, code, method, reference, mykey_id=who)
    return _keyed(
        uow,
        actor,
        key,
        digest,
        lambda: _convert(
            uow,
            partner=partner,
            who=who,
            units=units,
            code=code,
            method=method,
            actor=actor,
            key=key,
            reference=reference,
            service_id=None,
            digest=digest,
        ),
    )


def convert_by_service_id(
    uow: UnitOfWork,
    *,
    partner: str,
    service_id: str,
    units: int,
    municipality: str | None,
    actor: str,
    key: str,
    reference: str | None = None,
) -> ConversionReceipt:
    """Method 1, ID linkage: the partner names the resident by their ID at the partner, which
    the resident registered in My Page under the service name = the partner's id."""
    code = _check_common(partner, units, municipality, "id_linkage", key, reference)
    if not isinstance(service_id, str) or not 1 <= len(service_id) <= 128:
        raise invalid(
            "invalid_service_id",
            "A service ID is 1 to 128 characters.",
            "サービスIDは 1〜128 文字です。",
        )

    digest = _digest(partner, units, code, "id_linkage", reference, service_id=service_id)

    def body() -> ConversionReceipt:
        _check_method(uow, partner, "id_linkage")
        who = mykey_id_for_service(uow, service=partner, external_id=service_id)
        return _convert(
            uow,
            partner=partner,
            who=who,
            units=units,
            code=code,
            method="id_linkage",
            actor=actor,
            key=key,
            reference=reference,
            service_id=service_id,
            digest=digest,
        )

    return _keyed(uow, actor, key, digest, body)


# ---------------------------------------------------------------------------------------------
# reading


def receivables(
    uow: UnitOfWork, *, partner: str | None = None, municipality: str | None = None
) -> list[Receivable]:
    """What each partner owes each municipality: the debit balance of its partner account in
    that municipality's ledger (converted points, less what has been settled or reversed).
    Reserved points not yet assigned are listed with municipality None; they are owed to no
    municipality until assigned. Premiums never count."""
    code = parse_code(municipality) if municipality is not None else None

    def body() -> list[Receivable]:
        if partner is not None:
            check_partner_id(partner)
            partner_row(uow, partner)
            partners = [partner]
        else:
            partners = list(uow.session.scalars(select(Partner.id).order_by(Partner.id)))
        out = []
        for name in partners:
            for account_id, book in ledger.accounts_of(uow, owner=name, kind=AccountKind.PARTNER):
                target = None if book == RESERVED else book
                if code is not None and target != code:
                    continue
                b = ledger.balance(uow, account_id)
                out.append(Receivable(name, target, b.debits_posted - b.credits_posted))
        return out

    return uow.read(body)


def conversions_of(
    uow: UnitOfWork, *, partner: str, month: str | None = None
) -> list[ConversionReceipt]:
    """A partner's conversions, oldest first, in one Tokyo month (`YYYY-MM`) or all."""
    check_partner_id(partner)
    start = end = None
    if month is not None:
        if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month):
            raise invalid(
                "invalid_month", "A month is YYYY-MM.", "月は YYYY-MM で指定してください。"
            )
        year, mon = int(month[:4]), int(month[5:])
        start = datetime(year, mon, 1, tzinfo=TOKYO).astimezone(UTC)
        nxt = add_months(date(year, mon, 1), 1)
        end = datetime(nxt.year, nxt.month, 1, tzinfo=TOKYO).astimezone(UTC)

    def body() -> list[ConversionReceipt]:
        partner_row(uow, partner)
        stmt = select(Conversion).where(Conversion.partner == partner)
        if start is not None and end is not None:
            stmt = stmt.where(Conversion.created_at >= start, Conversion.created_at < end)
        rows = uow.session.scalars(stmt.order_by(Conversion.created_at, Conversion.id))
        return [_receipt(uow, r, replayed=False) for r in rows]

    return uow.read(body)
