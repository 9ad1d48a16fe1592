"""Online payments (R6.6) with the municipality's operating share (R7.4).

An online service (a shop of kind `online`: a local-products shop, crowdfunding, a
municipality's sales site) finds the resident by the service ID registered in My Page for the
service named after the shop id, and pays in two phases:

- authorize: `ledger.pending` wallet → the shop's account; the points leave the wallet's
  available balance at once and are held until capture, void or expiry (60 s .. 30 days);
- capture: `ledger.post` of all or part of the hold (the ledger gives the rest back to the very
  lots it came from, in the same transfer); at most once. The operating share is then taken:
  fee = floor(captured × online_fee_permille / 1000) moves shop → the municipality's fee
  account (kind SETTLEMENT, owner "fee:<code>") as its own transfer;
- void: `ledger.void`, before capture; the held points go back to their lots;
- refund: a new transfer shop → wallet of at most what was captured minus refunded; fee → shop
  then gives back what makes the municipality keep exactly floor((captured − refunded) ×
  permille / 1000) at the capture's permille (a full refund leaves no fee, and the shop's
  account never goes below zero).

Holds not captured before they expire can no longer be captured; `ledger.void_expired` (the
daily jobs every ten minutes, or `mykey points void-expired`) releases them.

Requests are signed like partner requests (HMAC-SHA256, 5-minute window, a signature once);
the key is a terminal key of the shop's provider id with a signing secret (`issue_online_key`).
Every write is idempotent per (shop, key), with the ledger's one mechanism: the hash of the
whole request is stored with the transfer the key made (each ledger leg has its own derived key),
the same request again is answered as it was (`replayed`), another request under the key (of
this operation or another: a capture's key is no refund's) is `idempotency_key_reused`, and a
refusal is stored under the key and refused again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import (
    MAX_POINTS,
    PERMILLE,
    POINTS,
    SECONDS,
    MyKeyError,
    forbidden,
    invalid,
    not_found,
    refused,
)
from mykey.identity import links
from mykey.identity.keys import Role, create_key
from mykey.ledger import AccountKind, LotTerms
from mykey.ledger.errors import key_reused
from mykey.ledger.idempotency import keyed_write, prior_transfer, request_hash, scope
from mykey.municipalities.codes import parse_code
from mykey.points.models import (
    OnlineKey,
    OnlineOrder,
    OnlineRefund,
    PointProgram,
    Shop,
    ShopAccept,
)
from mykey.points.partner_keys import seal, verify_signature
from mykey.points.spending import _usable as usable_lots
from mykey.points.spending import _wallet

ONLINE = "online"
AUTHORIZE = "online_authorize"
LEGS = ("authorize", "capture", "void", "refund")  # the key of each operation's transfer
FEE = "online_fee"
FEE_BACK = "online_fee_back"
REFUND = "online_refund"
MIN_HOLD = timedelta(seconds=60)
MAX_HOLD = timedelta(days=30)
T = TypeVar("T")


@dataclass(frozen=True)
class IssuedOnlineKey:
    shop: str
    key_id: str
    api_key: str  # Authorization: Bearer; shown once
    signing_secret: str  # X-MyKey-Signature; shown once


@dataclass(frozen=True)
class OrderView:
    authorization_id: UUID
    shop_id: str
    municipality: str
    order_ref: str | None
    held: int
    expires_at: datetime
    status: str  # authorized | captured | voided | expired
    capture_id: UUID | None
    captured: int
    fee: int
    refunded: int
    balance: int  # the resident's usable points of this municipality now
    replayed: bool


@dataclass(frozen=True)
class RefundView:
    refund_id: UUID
    capture_id: UUID
    points: int
    fee_back: int
    refunded_total: int
    balance: int
    replayed: bool


def _points(points: object) -> int:
    return POINTS.check(points, 1, MAX_POINTS, "points")


def fee_account(uow: UnitOfWork, code: str) -> ledger.Account:
    """The municipality's account of operating shares (settlement reads it)."""
    return ledger.open_account(uow, ledger=code, kind=AccountKind.SETTLEMENT, owner=f"fee:{code}")


def set_online_fee(uow: UnitOfWork, *, municipality: str, permille: int) -> int:
    """Set a program's operating share of online sales (0..1000 permille)."""
    code = parse_code(municipality)
    PERMILLE.check(permille, 0, 1000, "online_fee_permille")

    def body() -> int:
        program = uow.session.get(PointProgram, code)
        if program is None:
            raise not_found(
                "no_program",
                f"Municipality {code} has no point program.",
                f"団体コード {code} にはポイント制度がありません。",
            )
        program.online_fee_permille = permille
        program.updated_at = uow.now()
        uow.session.flush()
        return permille

    return uow.run(body)


def _online_shop(uow: UnitOfWork, shop_id: str) -> Shop:
    row = uow.session.get(Shop, shop_id)
    if row is None or row.kind != ONLINE:
        raise not_found(
            "not_an_online_shop",
            f"There is no online service {shop_id}.",
            f"オンラインサービス {shop_id} は登録されていません。",
        )
    return row


def issue_online_key(uow: UnitOfWork, *, shop: str, label: str, secret_key: str) -> IssuedOnlineKey:
    """A key (role terminal, bound to the shop's provider id) and a signing secret, shown once."""

    def body() -> IssuedOnlineKey:
        row = _online_shop(uow, shop)
        api_key, principal = create_key(
            uow, role=Role.TERMINAL, label=label or f"online {shop}", provider_id=row.id
        )
        signing_secret = secrets.token_urlsafe(32)
        uow.session.add(
            OnlineKey(
                key_id=principal.key_id,
                shop_id=row.id,
                secret_box=seal(secret_key, principal.key_id, signing_secret),
                created_at=uow.now(),
            )
        )
        uow.session.flush()
        return IssuedOnlineKey(row.id, principal.key_id, api_key, signing_secret)

    return uow.run(body)


def verify_online_request(
    uow: UnitOfWork,
    *,
    key_id: str,
    method: str,
    target: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    secret_key: str,
) -> str:
    """Check an online shop's signed request (as partner requests); returns the key's shop.
    Refusals (401): signature_required, stale_timestamp, bad_signature, replayed_signature."""

    def holder(key: str) -> tuple[str, bytes] | None:
        row = uow.session.get(OnlineKey, key)
        return (row.shop_id, row.secret_box) if row is not None else None

    return verify_signature(
        uow,
        key_id=key_id,
        method=method,
        target=target,
        timestamp=timestamp,
        signature=signature,
        body=body,
        secret_key=secret_key,
        holder=holder,
        not_bound=lambda: forbidden(
            "This key is not an online service's key.",
            "このキーはオンラインサービスのキーではありません。",
        ),
    )


def _usable(uow: UnitOfWork, account_id: int) -> int:
    return sum(lot.remaining for lot in usable_lots(uow, account_id, tokyo_date(uow.now())))


def _status(uow: UnitOfWork, row: OnlineOrder) -> str:
    if row.capture_id is not None:
        return "captured"
    if row.voided:
        return "voided"
    if uow.now() >= row.expires_at:
        return "expired"
    return "authorized"


def _view(uow: UnitOfWork, row: OnlineOrder, replayed: bool) -> OrderView:
    return OrderView(
        authorization_id=row.id,
        shop_id=row.shop_id,
        municipality=row.code,
        order_ref=row.order_ref,
        held=row.points,
        expires_at=row.expires_at,
        status=_status(uow, row),
        capture_id=row.capture_id,
        captured=row.captured,
        fee=row.fee - row.fee_returned,
        refunded=row.refunded,
        balance=_usable(uow, row.wallet_account_id),
        replayed=replayed,
    )


def _insufficient(code: str, usable: int, points: int) -> MyKeyError:
    return refused(
        "insufficient_points",
        f"Not enough points: {usable:,} available, {points:,} asked.",
        f"ポイントが足りません（残高 {usable:,} ポイント、ご利用 {points:,} ポイント）。",
        municipality=code,
        balance=usable,
        points=points,
    )


def _keyed(
    uow: UnitOfWork,
    operation: str,
    actor: str,
    key: str,
    digest: str,
    stored: Callable[[], tuple[str | None, T] | None],
    body: Callable[[], T],
) -> T:
    """One online write under the shop's key: the same request once (`replayed` after),
    another request under the key `idempotency_key_reused`, a refusal (not enough points, a
    hold already captured or expired, a refund beyond the capture) stored and refused again.

    A key is one request of the shop whatever the operation: each operation's transfer has a
    key of its own (`{key}:authorize`, `:capture`, `:void`, `:refund`), so a key that made
    another operation's transfer is `idempotency_key_reused` too, and the refusals of every
    operation share one scope (`online@{actor}`)."""
    own = operation.removeprefix("online_")

    def stored_here() -> tuple[str | None, T] | None:
        found = stored()
        if found is None and any(
            prior_transfer(uow.connection, actor, f"{key}:{other}") is not None
            for other in LEGS
            if other != own
        ):
            raise key_reused()
        return found

    return keyed_write(
        uow, scope=scope("online", actor), key=key, digest=digest, stored=stored_here, act=body
    )


def _resolved(
    uow: UnitOfWork, actor: str, leg: str
) -> Callable[[], tuple[str | None, OrderView] | None]:
    """What a capture or void under this key did: its hash and the order as it stands now."""

    def stored() -> tuple[str | None, OrderView] | None:
        prior = prior_transfer(uow.connection, actor, leg)
        if prior is None:
            return None
        pending_id = ledger.get_transfer(uow, prior[0]).pending_id
        row = uow.session.get(OnlineOrder, pending_id) if pending_id else None
        return None if row is None else (prior[1], _view(uow, row, True))

    return stored


def authorize(
    uow: UnitOfWork,
    *,
    shop_id: str,
    service_id: str,
    municipality: str,
    points: int,
    expires_in_seconds: int,
    key: str,
    order_ref: str | None = None,
) -> OrderView:
    """Hold `points` of the resident named by `service_id` for this online shop."""
    code = parse_code(municipality)
    points = _points(points)
    SECONDS.check(
        expires_in_seconds,
        int(MIN_HOLD.total_seconds()),
        int(MAX_HOLD.total_seconds()),
        "expires_in_seconds",
    )
    if order_ref is not None and not (0 < len(order_ref) <= 64):
        raise invalid(
            "invalid_order_ref",
            "An order reference is 1 to 64 characters.",
            "注文番号は1〜64文字です。",
        )
    actor = f"online:{shop_id}"
    leg = f"{key}:authorize"
    digest = request_hash(
        AUTHORIZE,
        {
            "shop": shop_id,
            "service_id": service_id,
            "municipality": code,
            "points": points,
            "expires_in_seconds": expires_in_seconds,
            "order_ref": order_ref,
        },
    )

    def stored() -> tuple[str | None, OrderView] | None:
        prior = prior_transfer(uow.connection, actor, leg)
        row = uow.session.get(OnlineOrder, prior[0]) if prior else None
        return None if prior is None or row is None else (prior[1], _view(uow, row, True))

    def body() -> OrderView:
        s = uow.session
        shop = _online_shop(uow, shop_id)
        who = links.mykey_id_for_service(uow, service=shop.id, external_id=service_id)
        accept = s.get(ShopAccept, (shop.id, code))
        if accept is None:
            raise refused(
                "not_accepted_here",
                f"The points of {code} cannot be used at this service.",
                f"このサービスでは団体コード {code} のポイントは使えません。",
                municipality=code,
            )
        wallet = _wallet(uow, code, who)
        if wallet is None:
            raise _insufficient(code, 0, points)
        try:
            receipt = ledger.pending(
                uow,
                debit=wallet.id,
                credit=accept.account_id,
                amount=points,
                kind=AUTHORIZE,
                actor=actor,
                timeout=timedelta(seconds=expires_in_seconds),
                key=leg,
                metadata={"shop": shop.id, "order_ref": order_ref or ""},
                request_digest=digest,
            )
        except MyKeyError as error:
            if error.code == "insufficient_points":
                raise _insufficient(code, _usable(uow, wallet.id), points) from error
            raise
        row = s.get(OnlineOrder, receipt.transfer_id)
        if row is None:
            assert receipt.expires_at is not None
            row = OnlineOrder(
                id=receipt.transfer_id,
                shop_id=shop.id,
                code=code,
                mykey_id=who,
                wallet_account_id=wallet.id,
                order_ref=order_ref,
                points=points,
                expires_at=receipt.expires_at,
                created_at=receipt.created_at,
                capture_id=None,
                captured=0,
                fee_permille=0,
                fee=0,
                refunded=0,
                fee_returned=0,
                voided=False,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError as exc:  # pragma: no cover -- the ledger's key decides
                raise RetryTransaction from exc
        return _view(uow, row, receipt.replayed)

    return _keyed(uow, AUTHORIZE, actor, key, digest, stored, body)


def _row(uow: UnitOfWork, shop_id: str, authorization_id: UUID | str) -> OnlineOrder:
    try:
        oid = (
            authorization_id if isinstance(authorization_id, UUID) else UUID(str(authorization_id))
        )
    except ValueError:
        oid = None
    row = uow.session.get(OnlineOrder, oid) if oid else None
    if row is None or row.shop_id != shop_id:
        raise not_found(
            "unknown_authorization",
            f"There is no authorization {authorization_id} of this service.",
            f"このサービスの仮売上 {authorization_id} は見つかりません。",
        )
    return row


def _resolved_refusal(uow: UnitOfWork, row: OnlineOrder) -> MyKeyError:
    uow.session.refresh(row)
    if row.capture_id is not None:
        return refused(
            "already_captured",
            "This authorization has already been captured.",
            "この仮売上はすでに確定しています。",
        )
    if row.voided or uow.now() < row.expires_at:
        return refused(
            "authorization_voided",
            "This authorization has been voided.",
            "この仮売上は取り消されています。",
        )
    return _expired()


def _expired() -> MyKeyError:
    return refused(
        "hold_expired",
        "This authorization has expired; its points went back to the resident.",
        "この仮売上は期限切れです。ポイントは利用者に戻りました。",
    )


def _guarded(uow: UnitOfWork, *conditions: Any, **values: Any) -> bool:
    done = uow.session.execute(update(OnlineOrder).where(*conditions).values(**values))
    return bool(cast(CursorResult[Any], done).rowcount)


def capture(
    uow: UnitOfWork,
    *,
    shop_id: str,
    authorization_id: UUID | str,
    key: str,
    points: int | None = None,
) -> OrderView:
    """Capture all (points None) or part of a hold, once; the fee goes to the municipality."""
    if points is not None:
        points = _points(points)
    actor = f"online:{shop_id}"
    leg = f"{key}:capture"
    digest = request_hash(
        "online_capture", {"authorization_id": str(authorization_id), "points": points}
    )

    def body() -> OrderView:
        _online_shop(uow, shop_id)
        row = _row(uow, shop_id, authorization_id)
        try:
            receipt = ledger.post(
                uow,
                pending_id=row.id,
                actor=actor,
                key=leg,
                amount=points,
                request_digest=digest,
            )
        except MyKeyError as error:
            if error.code == "pending_already_resolved":
                raise _resolved_refusal(uow, row) from error
            if error.code == "pending_expired":
                raise _expired() from error
            if error.code == "post_exceeds_pending":
                raise invalid(
                    "capture_exceeds_hold",
                    f"At most the {row.points:,} points held can be captured.",
                    f"確定できるのは仮売上の {row.points:,} ポイントまでです。",
                    held=row.points,
                ) from error
            raise
        if receipt.replayed:  # the fee leg committed with the capture: nothing more to do
            uow.session.refresh(row)
            return _view(uow, row, True)
        program = uow.session.get(PointProgram, row.code)
        permille = program.online_fee_permille if program else 0
        fee = receipt.amount * permille // 1000
        if fee:
            ledger.transfer(
                uow,
                debit=receipt.credit_account_id,
                credit=fee_account(uow, row.code).id,
                amount=fee,
                kind=FEE,
                actor=actor,
                key=f"{key}:fee",
                metadata={"shop": shop_id, "capture": str(receipt.transfer_id)},
            )
        if not _guarded(
            uow,
            OnlineOrder.id == row.id,
            OnlineOrder.capture_id.is_(None),
            OnlineOrder.voided.is_(False),
            capture_id=receipt.transfer_id,
            captured=receipt.amount,
            fee_permille=permille,
            fee=fee,
        ):
            raise RetryTransaction  # pragma: no cover -- the ledger's lock decides
        uow.session.refresh(row)
        return _view(uow, row, False)

    return _keyed(uow, "online_capture", actor, key, digest, _resolved(uow, actor, leg), body)


def void(uow: UnitOfWork, *, shop_id: str, authorization_id: UUID | str, key: str) -> OrderView:
    """Release a hold before capture: the points go back to the lots they came from."""
    actor = f"online:{shop_id}"
    leg = f"{key}:void"
    digest = request_hash("online_void", {"authorization_id": str(authorization_id)})

    def body() -> OrderView:
        _online_shop(uow, shop_id)
        row = _row(uow, shop_id, authorization_id)
        try:
            receipt = ledger.void(
                uow, pending_id=row.id, actor=actor, key=leg, request_digest=digest
            )
        except MyKeyError as error:
            if error.code == "pending_already_resolved":
                raise _resolved_refusal(uow, row) from error
            raise
        if not receipt.replayed:
            _guarded(uow, OnlineOrder.id == row.id, voided=True)
        uow.session.refresh(row)
        return _view(uow, row, receipt.replayed)

    return _keyed(uow, "online_void", actor, key, digest, _resolved(uow, actor, leg), body)


def refund(
    uow: UnitOfWork, *, shop_id: str, capture_id: UUID | str, points: int, key: str
) -> RefundView:
    """Give back up to what was captured minus refunded, as a new transfer to the wallet; the
    fee on those points goes back from the municipality to the shop."""
    points = _points(points)
    actor = f"online:{shop_id}"
    leg = f"{key}:refund"
    digest = request_hash("online_refund", {"capture_id": str(capture_id), "points": points})
    try:
        cid = capture_id if isinstance(capture_id, UUID) else UUID(str(capture_id))
    except ValueError:
        cid = None

    def stored() -> tuple[str | None, RefundView] | None:
        prior = prior_transfer(uow.connection, actor, leg)
        done = uow.session.get(OnlineRefund, prior[0]) if prior else None
        order = uow.session.get(OnlineOrder, done.order_id) if done else None
        if prior is None or done is None or order is None or order.capture_id is None:
            return None
        view = RefundView(
            refund_id=done.transfer_id,
            capture_id=order.capture_id,
            points=done.points,
            fee_back=done.fee_back,
            refunded_total=order.refunded,
            balance=_usable(uow, order.wallet_account_id),
            replayed=True,
        )
        return prior[1], view

    def body() -> RefundView:
        s = uow.session
        _online_shop(uow, shop_id)
        row = (
            s.scalars(select(OnlineOrder).where(OnlineOrder.capture_id == cid)).first()
            if cid
            else None
        )
        if row is None or row.shop_id != shop_id:
            raise not_found(
                "unknown_capture",
                f"There is no capture {capture_id} of this service.",
                f"このサービスの売上確定 {capture_id} は見つかりません。",
            )
        assert row.capture_id is not None
        held = ledger.get_transfer(uow, row.id)
        used = {u.lot_id for u in held.lots_used}
        lots = [
            lot
            for lot in ledger.wallet_lots(uow, row.wallet_account_id, include_used=True)
            if lot.id in used
        ]
        last = max(lots, key=lambda lot: (lot.expires_on, lot.id))
        expires = max(last.expires_on, tokyo_date(uow.now()))
        receipt = ledger.transfer(
            uow,
            debit=held.credit_account_id,
            credit=row.wallet_account_id,
            amount=points,
            kind=REFUND,
            actor=actor,
            key=leg,
            lot=LotTerms(last.funding, expires),
            metadata={"shop": shop_id, "capture": str(row.capture_id)},
            request_digest=digest,
        )
        if receipt.replayed:
            done = s.get(OnlineRefund, receipt.transfer_id)
            assert done is not None
            fee_back = done.fee_back
        else:  # a refusal below rolls the transfer back with everything
            left = row.captured - row.refunded
            if points > left:
                raise refused(
                    "refund_exceeds_capture",
                    f"At most {left:,} points of this capture can still be refunded.",
                    f"この売上で返金できるのは残り {left:,} ポイントまでです。",
                    refundable=left,
                )
            # the municipality keeps exactly its share of what the shop keeps after refunds
            keeps = (row.captured - row.refunded - points) * row.fee_permille // 1000
            fee_back = row.fee - row.fee_returned - keeps
            if fee_back:
                ledger.transfer(
                    uow,
                    debit=fee_account(uow, row.code).id,
                    credit=held.credit_account_id,
                    amount=fee_back,
                    kind=FEE_BACK,
                    actor=actor,
                    key=f"{key}:fee-back",
                    metadata={"shop": shop_id, "refund": str(receipt.transfer_id)},
                )
            if not _guarded(
                uow,
                OnlineOrder.id == row.id,
                OnlineOrder.refunded == row.refunded,
                refunded=OnlineOrder.refunded + points,
                fee_returned=OnlineOrder.fee_returned + fee_back,
            ):
                raise RetryTransaction  # another refund raced us: look again
            s.add(
                OnlineRefund(
                    transfer_id=receipt.transfer_id,
                    order_id=row.id,
                    points=points,
                    fee_back=fee_back,
                    created_at=receipt.created_at,
                )
            )
            s.flush()
        s.refresh(row)
        return RefundView(
            refund_id=receipt.transfer_id,
            capture_id=row.capture_id,
            points=receipt.amount,
            fee_back=fee_back,
            refunded_total=row.refunded,
            balance=_usable(uow, row.wallet_account_id),
            replayed=receipt.replayed,
        )

    return _keyed(uow, "online_refund", actor, key, digest, stored, body)


def get_order(uow: UnitOfWork, *, shop_id: str, authorization_id: UUID | str) -> OrderView:
    """An authorization of this shop as it stands now."""

    def body() -> OrderView:
        _online_shop(uow, shop_id)
        return _view(uow, _row(uow, shop_id, authorization_id), False)

    return uow.read(body)
