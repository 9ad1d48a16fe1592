"""Spending points at a counter (R6.1): balances, payments, same-day cancellation, refunds.

Every operation names the resident by a card proof verified for this very request (the web
layer does that) and the shop by the terminal key's provider id; nothing is kept between two
operations, so nothing carries over to the next person at a shared counter.

- pay: one ledger transfer wallet → the shop's account (kind "spend"), idempotent per
  (terminal actor, key); the ledger's guard means two terminals never overdraw one wallet.
- cancel: only the shop that took the payment, only on the same Tokyo day, only if nothing of
  it was refunded: `ledger.reverse`, so the points go back into the very lots they came from.
- refund: later (or partly), a new transfer shop → wallet of at most what is left of the
  payment. The refund is a new lot with the funding source of the latest-expiring lot the
  payment used and that lot's expiry (or today, if that day has passed: the points then lapse
  at the next expiry run, as they would have had they never been spent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import MAX_POINTS, POINTS, MyKeyError, invalid, not_found, refused
from mykey.identity.models import ResidentCard
from mykey.identity.proofs import VerifiedCard
from mykey.ledger import AccountKind, LotTerms
from mykey.municipalities.codes import parse_code
from mykey.points.models import PointProgram, Shop, ShopAccept, ShopPayment

SPEND = "spend"
REFUND = "refund"


@dataclass(frozen=True)
class AcceptedBalance:
    municipality: str
    point_name: str
    balance: int  # usable today (lots not yet past their last day)
    earliest_expiry: date | None
    earliest_expiry_points: int


@dataclass(frozen=True)
class Payment:
    transfer_id: UUID
    shop_id: str
    municipality: str
    points: int
    balance: int  # the rest of the resident's points of this municipality
    receipt_ref: str | None
    created_at: datetime
    replayed: bool


@dataclass(frozen=True)
class Cancellation:
    transfer_id: UUID
    payment_id: UUID
    points: int
    balance: int
    replayed: bool


@dataclass(frozen=True)
class Refund:
    transfer_id: UUID
    payment_id: UUID
    points: int
    refunded_total: int
    balance: int
    expires_on: date
    replayed: bool


def _shop(uow: UnitOfWork, shop_id: str | None) -> Shop:
    row = uow.session.get(Shop, shop_id) if shop_id else None
    if row is None:
        raise refused(
            "not_a_shop",
            "This terminal does not belong to a registered shop or facility.",
            "この端末は登録された店舗・施設の端末ではありません。",
        )
    return row


def _resident(uow: UnitOfWork, card: VerifiedCard) -> str:
    link = uow.session.get(ResidentCard, card.card_key)
    if link is None:
        raise not_found(
            "card_not_registered",
            "This card is not registered for points (no MyKey ID yet).",
            "このカードはポイントに登録されていません（マイキーIDがありません）。",
        )
    return link.mykey_id


def _accept(uow: UnitOfWork, shop: Shop, code: str) -> ShopAccept:
    row = uow.session.get(ShopAccept, (shop.id, code))
    if row is None:
        name = uow.session.get(PointProgram, code)
        label = name.point_name if name else code
        raise refused(
            "not_accepted_here",
            f"{label} cannot be used at this shop.",
            f"この店舗では{label}は使えません。",
            municipality=code,
        )
    return row


def _usable(uow: UnitOfWork, account_id: int, today: date) -> list[ledger.LotView]:
    return [lot for lot in ledger.wallet_lots(uow, account_id) if lot.expires_on >= today]


def _wallet(uow: UnitOfWork, code: str, mykey_id: str) -> ledger.Account | None:
    try:
        return ledger.find_account(uow, ledger=code, kind=AccountKind.WALLET, owner=mykey_id)
    except MyKeyError as error:
        if error.code == "unknown_account":
            return None
        raise


def balances_here(
    uow: UnitOfWork, *, shop_id: str | None, card: VerifiedCard
) -> list[AcceptedBalance]:
    """The resident's points that this shop accepts, per municipality (0 where none)."""

    def body() -> list[AcceptedBalance]:
        shop = _shop(uow, shop_id)
        who = _resident(uow, card)
        today = tokyo_date(uow.now())
        out = []
        accepted = uow.session.scalars(
            select(ShopAccept.code).where(ShopAccept.shop_id == shop.id).order_by(ShopAccept.code)
        )
        for code in list(accepted):
            program = uow.session.get(PointProgram, code)
            wallet = _wallet(uow, code, who)
            lots = _usable(uow, wallet.id, today) if wallet else []
            first = lots[0].expires_on if lots else None
            out.append(
                AcceptedBalance(
                    municipality=code,
                    point_name=program.point_name if program else code,
                    balance=sum(lot.remaining for lot in lots),
                    earliest_expiry=first,
                    earliest_expiry_points=sum(
                        lot.remaining for lot in lots if lot.expires_on == first
                    ),
                )
            )
        return out

    return uow.run(body)


def _insufficient(code: str, usable: int, points: int) -> MyKeyError:
    if usable == 0:
        return refused(
            "no_points",
            "The resident has no points to use here.",
            "この方が使えるポイントはありません。",
            municipality=code,
            balance=0,
        )
    return refused(
        "insufficient_points",
        f"Not enough points: {usable:,} available, {points:,} asked.",
        f"ポイントが足りません（残高 {usable:,} ポイント、ご利用 {points:,} ポイント）。",
        municipality=code,
        balance=usable,
        points=points,
    )


def pay(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: VerifiedCard,
    municipality: str,
    points: int,
    actor: str,
    key: str,
    receipt_ref: str | None = None,
) -> Payment:
    """Debit `points` of `municipality` from the resident's wallet to this shop."""
    code = parse_code(municipality)
    POINTS.check(points, 1, MAX_POINTS, "points")
    if receipt_ref is not None and not (0 < len(receipt_ref) <= 64):
        raise invalid(
            "invalid_receipt_ref",
            "A receipt reference is 1 to 64 characters.",
            "レシート番号は1〜64文字です。",
        )

    def body() -> Payment:
        s = uow.session
        shop = _shop(uow, shop_id)
        who = _resident(uow, card)
        accept = _accept(uow, shop, code)
        wallet = _wallet(uow, code, who)
        today = tokyo_date(uow.now())
        if wallet is None:
            raise _insufficient(code, 0, points)
        try:
            receipt = ledger.transfer(
                uow,
                debit=wallet.id,
                credit=accept.account_id,
                amount=points,
                kind=SPEND,
                actor=actor,
                key=key,
                metadata={"shop": shop.id, "receipt_ref": receipt_ref or ""},
            )
        except MyKeyError as error:
            if error.code == "insufficient_points":
                usable = sum(lot.remaining for lot in _usable(uow, wallet.id, today))
                raise _insufficient(code, usable, points) from error
            raise
        if not receipt.replayed:
            s.add(
                ShopPayment(
                    transfer_id=receipt.transfer_id,
                    shop_id=shop.id,
                    code=code,
                    mykey_id=who,
                    wallet_account_id=wallet.id,
                    points=points,
                    refunded=0,
                    cancelled=False,
                    receipt_ref=receipt_ref,
                    created_at=receipt.created_at,
                )
            )
            try:
                s.flush()
            except IntegrityError as exc:  # pragma: no cover -- the ledger's key already decides
                raise RetryTransaction from exc
        rest = sum(lot.remaining for lot in _usable(uow, wallet.id, today))
        return Payment(
            transfer_id=receipt.transfer_id,
            shop_id=shop.id,
            municipality=code,
            points=receipt.amount,
            balance=rest,
            receipt_ref=receipt_ref,
            created_at=receipt.created_at,
            replayed=receipt.replayed,
        )

    return uow.run(body)


def _payment(uow: UnitOfWork, shop: Shop, payment_id: UUID | str) -> ShopPayment:
    try:
        pid = payment_id if isinstance(payment_id, UUID) else UUID(str(payment_id))
    except ValueError:
        pid = None
    row = uow.session.get(ShopPayment, pid) if pid else None
    if row is None:
        raise not_found(
            "unknown_payment",
            f"There is no payment {payment_id}.",
            f"支払い {payment_id} は見つかりません。",
        )
    if row.shop_id != shop.id:
        raise refused(
            "wrong_shop",
            "This payment was made at another shop; only that shop can cancel or refund it.",
            "この支払いは別の店舗でのものです。その店舗でのみ取消・返金できます。",
        )
    return row


def _rest(uow: UnitOfWork, row: ShopPayment) -> int:
    today = tokyo_date(uow.now())
    return sum(lot.remaining for lot in _usable(uow, row.wallet_account_id, today))


def _guarded(uow: UnitOfWork, *conditions: Any, **values: Any) -> bool:
    done = uow.session.execute(update(ShopPayment).where(*conditions).values(**values))
    return bool(cast(CursorResult[Any], done).rowcount)


def _partly_refunded() -> MyKeyError:
    return refused(
        "payment_refunded",
        "Part of this payment was refunded already; refund the rest instead.",
        "この支払いは一部返金済みです。残りは返金で処理してください。",
    )


def cancel(
    uow: UnitOfWork, *, shop_id: str | None, payment_id: UUID | str, actor: str, key: str
) -> Cancellation:
    """Cancel a payment of this shop on the day it was made (a reversal into the same lots)."""

    def body() -> Cancellation:
        shop = _shop(uow, shop_id)
        row = _payment(uow, shop, payment_id)
        pid = row.transfer_id
        if tokyo_date(row.created_at) != tokyo_date(uow.now()):
            raise refused(
                "cancel_not_same_day",
                "A payment can be cancelled only on the day it was made; make a refund instead.",
                "支払いの取消は当日のみです。返金の手続きをしてください。",
            )
        if row.refunded and not row.cancelled:
            raise _partly_refunded()
        receipt = ledger.reverse(
            uow,
            transfer_id=pid,
            actor=actor,
            key=key,
            reason="cancelled at the counter / 窓口での取消",
            metadata={"shop": shop.id},
        )
        if not receipt.replayed and not _guarded(
            uow,
            ShopPayment.transfer_id == pid,
            ShopPayment.cancelled.is_(False),
            ShopPayment.refunded == 0,
            cancelled=True,
        ):
            raise RetryTransaction  # a refund raced us: the retry refuses in words
        return Cancellation(
            receipt.transfer_id, pid, receipt.amount, _rest(uow, row), receipt.replayed
        )

    try:
        return uow.run(body)
    except MyKeyError as error:
        if error.code == "already_reversed":
            raise refused(
                "already_cancelled",
                "This payment has already been cancelled.",
                "この支払いはすでに取り消されています。",
            ) from error
        raise


def refund(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    payment_id: UUID | str,
    points: int,
    actor: str,
    key: str,
) -> Refund:
    """Give back up to what is left of a payment of this shop, as a new transfer."""
    POINTS.check(points, 1, MAX_POINTS, "points")

    def body() -> Refund:
        shop = _shop(uow, shop_id)
        row = _payment(uow, shop, payment_id)
        pid = row.transfer_id
        paid = ledger.get_transfer(uow, pid)
        used = {u.lot_id for u in paid.lots_used}
        lots = [
            lot
            for lot in ledger.wallet_lots(uow, row.wallet_account_id, include_used=True)
            if lot.id in used
        ]
        last = max(lots, key=lambda lot: (lot.expires_on, lot.id))
        today = tokyo_date(uow.now())
        expires = max(last.expires_on, today)
        receipt = ledger.transfer(
            uow,
            debit=paid.credit_account_id,
            credit=row.wallet_account_id,
            amount=points,
            kind=REFUND,
            actor=actor,
            key=key,
            lot=LotTerms(last.funding, expires),
            metadata={"shop": shop.id, "payment": str(pid)},
        )
        if not receipt.replayed:  # a refusal below rolls the transfer back with everything
            left = row.points - row.refunded
            if row.cancelled:
                raise refused(
                    "payment_cancelled",
                    "This payment was cancelled; there is nothing to refund.",
                    "この支払いは取り消し済みのため、返金はできません。",
                )
            if points > left:
                raise refused(
                    "refund_exceeds_payment",
                    f"At most {left:,} points of this payment can still be refunded.",
                    f"この支払いで返金できるのは残り {left:,} ポイントまでです。",
                    refundable=left,
                )
            if not _guarded(
                uow,
                ShopPayment.transfer_id == pid,
                ShopPayment.cancelled.is_(False),
                ShopPayment.refunded + points <= ShopPayment.points,
                refunded=ShopPayment.refunded + points,
            ):
                raise RetryTransaction  # another refund or a cancel raced us: look again
        uow.session.refresh(row)
        return Refund(
            transfer_id=receipt.transfer_id,
            payment_id=pid,
            points=receipt.amount,
            refunded_total=row.refunded,
            balance=_rest(uow, row),
            expires_on=expires,
            replayed=receipt.replayed,
        )

    return uow.run(body)


@dataclass(frozen=True)
class TodaysPayment:
    """A payment at this shop today, as the counter lists it (no resident shown)."""

    transfer_id: UUID
    municipality: str
    points: int
    refunded: int
    cancelled: bool
    receipt_ref: str | None
    created_at: datetime


def payments_today(uow: UnitOfWork, *, shop_id: str, limit: int = 50) -> list[TodaysPayment]:
    """This shop's payments of today (Tokyo), newest first: what a counter may still cancel."""

    def body() -> list[TodaysPayment]:
        now = uow.now()
        today = tokyo_date(now)
        rows = uow.session.scalars(
            select(ShopPayment)
            .where(ShopPayment.shop_id == shop_id, ShopPayment.created_at > now - timedelta(days=1))
            .order_by(ShopPayment.created_at.desc())
            .limit(limit)
        )
        return [
            TodaysPayment(
                r.transfer_id,
                r.code,
                r.points,
                r.refunded,
                r.cancelled,
                r.receipt_ref,
                r.created_at,
            )
            for r in rows
            if tokyo_date(r.created_at) == today
        ]

    return uow.run(body)
