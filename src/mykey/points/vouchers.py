"""Point vouchers (ポイント券, issue #5): points on paper with a 13-digit number.

- issue (at a shop's terminal, with a fresh card proof): one ledger transfer moves the points
  from the resident's wallet into the municipality's VOUCHER_FLOAT account (guarded, so never
  more than the wallet holds); the points become one voucher or several of one denomination
  (10 × 500, no change). Each voucher has a number of 12 random digits (`secrets`) and an
  EAN-13 check digit, an issue date, a last valid day, a face value and where it is valid:
  one shop, or every shop of a shopping street.
- redeem (at a shop's terminal, by number): a valid, unexpired, unredeemed voucher pays this
  shop once (VOUCHER_FLOAT → the shop's account). A mistyped number (check digit) is invalid
  (422); an unknown number 404; a second redemption, a shop where it is not valid and an
  expired voucher are refused (409) each with its own code.
- expire: vouchers past their last day go back: a resident's voucher into their wallet, as a
  lot with the funding source of the latest-expiring lot it was paid from and that lot's last
  day (or today, so that points which would have lapsed lapse at the next expiry run); a
  receipt voucher (no wallet) to the municipality's EXPIRED account.
- Tenri's receipt program (R6.7): a shop issues a voucher for a receipt, funded by the city's
  budget; the rules are data (`ReceiptRules`). A receipt voucher valid on a shopping street
  is cashed through the street's commerce association: at redemption VOUCHER_FLOAT → the
  association's SETTLEMENT account (owner "street:<id>") → the shop, two legs under keys
  derived from the client's key ("<key>:association", "<key>:shop").
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import COUNT, DAYS, POINTS, YEN, MyKeyError, invalid, not_found, refused
from mykey.identity.proofs import VerifiedCard
from mykey.ledger import AccountKind, LotTerms
from mykey.municipalities.codes import parse_code
from mykey.points.models import PointProgram, Shop, ShopAccept, ShoppingStreet, Voucher
from mykey.points.spending import _accept, _insufficient, _resident, _shop, _usable, _wallet

ISSUE = "voucher_issue"
REDEEM = "voucher_redeem"
RETURN = "voucher_return"
FLOAT_OWNER = "vouchers"
EXPIRY_ACTOR = "system:voucher-expiry"
DEFAULT_VALID_DAYS = 3
MAX_VALID_DAYS = 90
MAX_PIECES = 100
MAX_VOUCHER_POINTS = 10**9  # the most points one issue turns into vouchers
MAX_RECEIPT_YEN = 10**9

ISSUED, REDEEMED, EXPIRED = "issued", "redeemed", "expired"
WALLET_PROGRAM, RECEIPT_PROGRAM = "wallet", "receipt"
GIFT_PROGRAM = "gift"  # gift certificates (商品券): see points.gifts


def check_digit(first12: str) -> str:
    """The EAN-13 check digit of 12 digits (weights 1, 3 from the left)."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def new_number() -> str:
    """12 unguessable digits and their check digit."""
    body = f"{secrets.randbelow(10**12):012d}"
    return body + check_digit(body)


def valid_number(number: str) -> bool:
    return (
        len(number) == 13
        and number.isascii()
        and number.isdigit()
        and check_digit(number[:12]) == number[12]
    )


@dataclass(frozen=True)
class VoucherView:
    number: str
    municipality: str
    point_name: str
    program: str
    face_value: int
    issued_on: date
    valid_until: date
    shop_id: str | None
    shop_name: str | None
    street_id: str | None
    street_name: str | None
    status: str
    redeemed_shop_id: str | None
    receipt_ref: str | None
    prints: int
    gift_program: str | None = None


@dataclass(frozen=True)
class Issued:
    receipt: ledger.Receipt
    vouchers: list[VoucherView]
    balance: int  # the rest of the resident's points of this municipality (wallet vouchers)
    replayed: bool


@dataclass(frozen=True)
class Redemption:
    transfer_id: str
    voucher: VoucherView
    replayed: bool


@dataclass(frozen=True)
class VoucherExpiryReport:
    vouchers: int
    points: int


def _view(uow: UnitOfWork, row: Voucher) -> VoucherView:
    s = uow.session
    program = s.get(PointProgram, row.code)
    shop = s.get(Shop, row.shop_id) if row.shop_id else None
    street = s.get(ShoppingStreet, row.street_id) if row.street_id else None
    return VoucherView(
        number=row.number,
        municipality=row.code,
        point_name=program.point_name if program else row.code,
        program=row.program,
        face_value=row.face_value,
        issued_on=row.issued_on,
        valid_until=row.valid_until,
        shop_id=row.shop_id,
        shop_name=shop.name if shop else None,
        street_id=row.street_id,
        street_name=street.name if street else None,
        status=row.status,
        redeemed_shop_id=row.redeemed_shop_id,
        receipt_ref=row.receipt_ref,
        prints=row.prints,
        gift_program=row.gift_program_id,
    )


def _float(uow: UnitOfWork, code: str) -> ledger.Account:
    return ledger.open_account(uow, ledger=code, kind=AccountKind.VOUCHER_FLOAT, owner=FLOAT_OWNER)


# The kind of each number these use cases take: its one error code (docs/errors.md).
KINDS = {
    "points": POINTS,
    "denomination": POINTS,
    "yen": YEN,
    "valid_days": DAYS,
    "sheets": COUNT,
    "max_sheets": COUNT,
}


def _whole(name: str, value: object, low: int, high: int) -> int:
    return KINDS[name].check(value, low, high, name)


def _pieces(points: int, denomination: int | None) -> list[int]:
    _whole("points", points, 1, MAX_VOUCHER_POINTS)
    if denomination is None:
        return [points]
    _whole("denomination", denomination, 1, points)
    count, rest = divmod(points, denomination)
    if rest or count > MAX_PIECES:
        raise invalid(
            "invalid_denomination",
            f"The points must split into at most {MAX_PIECES} vouchers of {denomination:,}"
            " points with nothing left over (no change is given).",
            f"ポイントは {denomination:,} ポイント券 {MAX_PIECES} 枚以内に端数なく分けられる"
            "必要があります（おつりは出ません）。",
        )
    return [denomination] * count


def _place(uow: UnitOfWork, shop: Shop, street_id: str | None) -> tuple[str | None, str | None]:
    if street_id is None:
        return shop.id, None
    street = uow.session.get(ShoppingStreet, street_id)
    if street is None:
        raise not_found(
            "unknown_street",
            f"There is no shopping street {street_id}.",
            f"商店街 {street_id} はありません。",
        )
    return None, street.id


def _add(
    uow: UnitOfWork,
    receipt: ledger.Receipt,
    pieces: list[int],
    **fields: Any,
) -> list[Voucher]:
    rows = []
    for seq, value in enumerate(pieces):
        row = Voucher(
            number=new_number(),
            issue_transfer_id=receipt.transfer_id,
            seq=seq,
            face_value=value,
            status=ISSUED,
            prints=0,
            created_at=receipt.created_at,
            **fields,
        )
        uow.session.add(row)
        rows.append(row)
    try:
        uow.session.flush()
    except IntegrityError as exc:  # a number drawn twice (or a raced receipt): try again
        raise RetryTransaction from exc
    return rows


def _of_issue(uow: UnitOfWork, receipt: ledger.Receipt) -> list[Voucher]:
    return list(
        uow.session.scalars(
            select(Voucher)
            .where(Voucher.issue_transfer_id == receipt.transfer_id)
            .order_by(Voucher.seq)
        )
    )


def _days(valid_days: int) -> int:
    return _whole("valid_days", valid_days, 1, MAX_VALID_DAYS)


def issue(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: VerifiedCard,
    municipality: str,
    points: int,
    actor: str,
    key: str,
    denomination: int | None = None,
    street_id: str | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> Issued:
    """Turn `points` of the card holder's wallet into vouchers valid at this shop (or at every
    shop of `street_id`) for `valid_days` days counting today. Idempotent per (actor, key)."""
    code = parse_code(municipality)
    pieces = _pieces(points, denomination)
    days = _days(valid_days)

    def body() -> Issued:
        shop = _shop(uow, shop_id)
        who = _resident(uow, card)
        _accept(uow, shop, code)
        where_shop, where_street = _place(uow, shop, street_id)
        return _from_wallet(
            uow,
            shop=shop,
            who=who,
            code=code,
            pieces=pieces,
            actor=actor,
            key=key,
            valid_days=days,
            metadata={},
            program=WALLET_PROGRAM,
            shop_id=where_shop,
            street_id=where_street,
        )

    return uow.run(body)


def _from_wallet(
    uow: UnitOfWork,
    *,
    shop: Shop,
    who: str,
    code: str,
    pieces: list[int],
    actor: str,
    key: str,
    valid_days: int,
    metadata: dict[str, Any],
    **fields: Any,
) -> Issued:
    """Inside a transaction: one transfer of sum(pieces) from the resident's wallet into the
    voucher float, and one voucher per piece (or, replayed, the vouchers of the first try)."""
    points = sum(pieces)
    wallet = _wallet(uow, code, who)
    today = tokyo_date(uow.now())
    if wallet is None:
        raise _insufficient(code, 0, points)
    try:
        receipt = ledger.transfer(
            uow,
            debit=wallet.id,
            credit=_float(uow, code).id,
            amount=points,
            kind=ISSUE,
            actor=actor,
            key=key,
            metadata={"shop": shop.id, "vouchers": len(pieces), **metadata},
        )
    except MyKeyError as error:
        if error.code == "insufficient_points":
            usable = sum(lot.remaining for lot in _usable(uow, wallet.id, today))
            raise _insufficient(code, usable, points) from error
        raise
    if receipt.replayed:
        rows = _of_issue(uow, receipt)
    else:
        rows = _add(
            uow,
            receipt,
            pieces,
            code=code,
            mykey_id=who,
            wallet_account_id=wallet.id,
            issued_on=today,
            valid_until=today + timedelta(days=valid_days - 1),
            issuer_shop_id=shop.id,
            **fields,
        )
    rest = sum(lot.remaining for lot in _usable(uow, wallet.id, today))
    return Issued(receipt, [_view(uow, r) for r in rows], rest, receipt.replayed)


def _find(uow: UnitOfWork, number: str) -> Voucher:
    clean = number.strip().replace("-", "").replace(" ", "") if isinstance(number, str) else ""
    if not valid_number(clean):
        raise invalid(
            "invalid_voucher_number",
            "This is not a voucher number (13 digits with a check digit); check for a typo.",
            "ポイント券番号ではありません（13桁・チェックデジット）。入力を確認してください。",
        )
    row = uow.session.get(Voucher, clean)
    if row is None:
        raise not_found(
            "unknown_voucher",
            f"There is no voucher {clean}.",
            f"ポイント券 {clean} は見つかりません。",
        )
    return row


def get_voucher(uow: UnitOfWork, number: str) -> VoucherView:
    return uow.run(lambda: _view(uow, _find(uow, number)))


def _valid_here(row: Voucher, shop: Shop) -> bool:
    if row.shop_id is None and row.street_id is None:  # a gift certificate valid town-wide
        return row.program == GIFT_PROGRAM  # (the caller checks that the shop takes the points)
    if row.shop_id is not None:
        return row.shop_id == shop.id
    return row.street_id is not None and row.street_id == shop.street_id


def association_owner(street_id: str) -> str:
    """The owner of a shopping street's commerce association account (SETTLEMENT kind)."""
    return f"street:{street_id}"


def _association(uow: UnitOfWork, row: Voucher) -> ledger.Account | None:
    """Receipt vouchers valid on a street are cashed through its commerce association."""
    if row.program != RECEIPT_PROGRAM or row.street_id is None:
        return None
    return ledger.open_account(
        uow, ledger=row.code, kind=AccountKind.SETTLEMENT, owner=association_owner(row.street_id)
    )


def redeem(
    uow: UnitOfWork, *, shop_id: str | None, number: str, actor: str, key: str
) -> Redemption:
    """Pay this shop the voucher's face value, once. Idempotent per (actor, key)."""

    def body() -> Redemption:
        shop = _shop(uow, shop_id)
        row = _find(uow, number)
        if not _valid_here(row, shop) or uow.session.get(ShopAccept, (shop.id, row.code)) is None:
            where = row.shop_id or row.street_id
            raise refused(
                "voucher_wrong_shop",
                f"This voucher cannot be used at this shop (it is valid at {where}).",
                "このポイント券はこの店舗では使えません。",
                valid_at=where,
            )
        accept = _accept(uow, shop, row.code)
        today = tokyo_date(uow.now())
        via = _association(uow, row)
        shop_key = f"{key}:shop" if via is not None else key
        if row.status != ISSUED and row.closing_transfer_id is not None:
            closing = ledger.get_transfer(uow, row.closing_transfer_id)
            if row.status == REDEEMED and (closing.actor, closing.client_key) == (actor, shop_key):
                return Redemption(str(closing.transfer_id), _view(uow, row), True)
        if row.status == REDEEMED:
            raise refused(
                "voucher_already_redeemed",
                "This voucher has already been used.",
                "このポイント券はすでに使用済みです。",
            )
        if row.status == EXPIRED or today > row.valid_until:
            raise refused(
                "voucher_expired",
                f"This voucher expired after {row.valid_until.isoformat()}.",
                f"このポイント券の有効期限（{row.valid_until.isoformat()}）は過ぎています。",
                valid_until=row.valid_until.isoformat(),
            )
        source = _float(uow, row.code).id
        if via is not None:  # the city pays the association, the association pays the shop
            ledger.transfer(
                uow,
                debit=source,
                credit=via.id,
                amount=row.face_value,
                kind=REDEEM,
                actor=actor,
                key=f"{key}:association",
                metadata={"shop": shop.id, "voucher": row.number},
            )
            source = via.id
        receipt = ledger.transfer(
            uow,
            debit=source,
            credit=accept.account_id,
            amount=row.face_value,
            kind=REDEEM,
            actor=actor,
            key=shop_key,
            metadata={"shop": shop.id, "voucher": row.number},
        )
        done = uow.session.execute(
            update(Voucher)
            .where(Voucher.number == row.number, Voucher.status == ISSUED)
            .values(
                status=REDEEMED,
                redeemed_shop_id=shop.id,
                closing_transfer_id=receipt.transfer_id,
                closed_at=receipt.created_at,
            )
        )
        if not receipt.replayed and not cast(CursorResult[Any], done).rowcount:
            raise RetryTransaction  # another terminal raced us: the retry refuses in words
        uow.session.refresh(row)
        return Redemption(str(receipt.transfer_id), _view(uow, row), receipt.replayed)

    return uow.run(body)


def _return_lot(uow: UnitOfWork, row: Voucher, today: date) -> LotTerms:
    paid = ledger.get_transfer(uow, row.issue_transfer_id)
    used = {u.lot_id for u in paid.lots_used}
    assert row.wallet_account_id is not None
    lots = [
        lot
        for lot in ledger.wallet_lots(uow, row.wallet_account_id, include_used=True)
        if lot.id in used
    ]
    last = max(lots, key=lambda lot: (lot.expires_on, lot.id))
    return LotTerms(last.funding, max(last.expires_on, today))


def _expire_one(uow: UnitOfWork, number: str, today: date) -> int:
    def body() -> int:
        row = uow.session.get(Voucher, number)
        if row is None or row.status != ISSUED or row.valid_until >= today:
            return 0
        source = _float(uow, row.code)
        if row.wallet_account_id is not None:
            credit = row.wallet_account_id
            lot: LotTerms | None = _return_lot(uow, row, today)
        else:
            credit = ledger.open_account(
                uow, ledger=row.code, kind=AccountKind.EXPIRED, owner="expired"
            ).id
            lot = None
        receipt = ledger.transfer(
            uow,
            debit=source.id,
            credit=credit,
            amount=row.face_value,
            kind=RETURN,
            actor=EXPIRY_ACTOR,
            key=f"voucher-expiry:{row.number}",
            lot=lot,
            metadata={"voucher": row.number},
        )
        row.status = EXPIRED
        row.closing_transfer_id = receipt.transfer_id
        row.closed_at = receipt.created_at
        uow.session.flush()
        return row.face_value

    return uow.run(body)


def expire_vouchers(
    uow: UnitOfWork, *, as_of: date, progress: Callable[[int], None] | None = None
) -> VoucherExpiryReport:
    """Send back every issued voucher whose last day is before `as_of`. Each voucher is its
    own transaction with its own idempotency key, so a run can stop half way and run again."""
    numbers = uow.run(
        lambda: list(
            uow.session.scalars(
                select(Voucher.number)
                .where(Voucher.status == ISSUED, Voucher.valid_until < as_of)
                .order_by(Voucher.number)
            )
        )
    )
    count = points = 0
    for number in numbers:
        got = _expire_one(uow, number, as_of)
        if got:
            count, points = count + 1, points + got
        if progress is not None:
            progress(1)
    return VoucherExpiryReport(count, points)


def count_expiring(uow: UnitOfWork, *, as_of: date) -> int:
    return uow.run(
        lambda: len(
            list(
                uow.session.scalars(
                    select(Voucher.number).where(
                        Voucher.status == ISSUED, Voucher.valid_until < as_of
                    )
                )
            )
        )
    )


@dataclass(frozen=True)
class ReceiptRules:
    """A receipt voucher program as data: `percent` of the receipt (yen, capped at `cap_yen`),
    rounded down to `unit` points, for receipts of `min_yen` or more; valid `valid_days` days
    at the shopping street of the issuing shop (or at that shop, if it is on no street)."""

    municipality: str
    percent: int
    unit: int
    min_yen: int
    cap_yen: int
    valid_days: int

    def points(self, yen: int) -> int:
        if yen < self.min_yen:
            return 0
        return min(yen, self.cap_yen) * self.percent // 100 // self.unit * self.unit


TENRI = ReceiptRules(
    municipality="292044", percent=10, unit=100, min_yen=1000, cap_yen=50000, valid_days=30
)
RECEIPT_PROGRAMS = {TENRI.municipality: TENRI}


def issue_for_receipt(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    receipt_ref: str,
    yen: int,
    actor: str,
    key: str,
    rules: ReceiptRules = TENRI,
) -> Issued:
    """A voucher for a shop's receipt, funded by the municipality's budget (BUDGET →
    VOUCHER_FLOAT). One voucher per receipt number per shop; idempotent per (actor, key)."""
    yen = _whole("yen", yen, 0, MAX_RECEIPT_YEN)
    if not isinstance(receipt_ref, str) or not 0 < len(receipt_ref) <= 64:
        raise invalid(
            "invalid_receipt_ref",
            "A receipt reference is 1 to 64 characters.",
            "レシート番号は1〜64文字です。",
        )
    points = rules.points(yen)
    if points == 0:
        raise refused(
            "receipt_too_small",
            f"Receipts of {rules.min_yen:,} yen or more get a voucher.",
            f"ポイント券は {rules.min_yen:,} 円以上のレシートが対象です。",
            min_yen=rules.min_yen,
        )
    code = rules.municipality

    def body() -> Issued:
        s = uow.session
        shop = _shop(uow, shop_id)
        _accept(uow, shop, code)
        today = tokyo_date(uow.now())
        budget = ledger.find_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        receipt = ledger.transfer(
            uow,
            debit=budget.id,
            credit=_float(uow, code).id,
            amount=points,
            kind=ISSUE,
            actor=actor,
            key=key,
            metadata={"shop": shop.id, "receipt_ref": receipt_ref, "yen": yen},
        )
        if receipt.replayed:
            rows = _of_issue(uow, receipt)
        else:
            taken = s.scalars(
                select(Voucher.number).where(
                    Voucher.receipt_shop_id == shop.id, Voucher.receipt_ref == receipt_ref
                )
            ).first()
            if taken is not None:
                raise refused(
                    "receipt_already_used",
                    f"Receipt {receipt_ref} of this shop already got a voucher.",
                    f"この店舗のレシート {receipt_ref} にはすでにポイント券を発行しています。",
                )
            rows = _add(
                uow,
                receipt,
                [points],
                code=code,
                program=RECEIPT_PROGRAM,
                mykey_id=None,
                wallet_account_id=None,
                issued_on=today,
                valid_until=today + timedelta(days=rules.valid_days - 1),
                issuer_shop_id=shop.id,
                shop_id=None if shop.street_id else shop.id,
                street_id=shop.street_id,
                receipt_shop_id=shop.id,
                receipt_ref=receipt_ref,
                receipt_yen=yen,
            )
        return Issued(receipt, [_view(uow, r) for r in rows], 0, receipt.replayed)

    return uow.run(body)
