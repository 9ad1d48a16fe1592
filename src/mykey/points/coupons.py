"""Coupon codes (R5.2 methods 2-1 paper, 2-2 e-mail, 2-3 URL).

A partner orders a batch of coupon codes, all worth the same number of its units, delivered
on paper (a CSV for the print shop), by e-mail or as links to My Page's redeem screen. A
resident redeems a code into the municipality of their choice (or into reserved points): that
is a conversion, made by `conversion.convert` with the batch's partner and the method
`coupon_<delivery>`.

A code is 16 characters of `ALPHABET` (25 characters without look-alikes: no 0/O, 1/I/L,
2/Z, 5/S, 8/B), shown in groups of four (`XXXX-XXXX-XXXX-XXXX`): 15 random characters from
`secrets` (about 70 bits) and a check character. With the values v0..v15 of the characters
(their index in `ALPHABET`) and the weights 1, 2, 1, 2, … the code is valid when

    sum(w_i * v_i) ≡ 0 (mod 25)

Both weights are prime to 25, so every single substitution changes the sum; two neighbours
have weights 1 and 2, whose difference is prime to 25 too, so every transposition of two
different adjacent characters changes it as well. A mistyped code is refused before any
database lookup.

The database keeps only the SHA-256 of the normalised code (the primary key) and the code
sealed with AES-256-GCM under a key derived (HKDF-SHA256) from `MYKEY_SECRET_KEY`, the hash
as associated data, so that the partner can download its batch again (CSV); never the code in
plain text.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError

from mykey.db import RetryTransaction, UnitOfWork, insert_many, tokyo_date
from mykey.errors import (
    COUNT,
    MAX_POINTS,
    UNITS,
    ErrorKind,
    MyKeyError,
    invalid,
    not_found,
    refused,
)
from mykey.identity.residents import normalise_mykey_id
from mykey.ledger.idempotency import keyed_write, request_hash, scope
from mykey.points.conversion import CLIENT_KEY, ConversionReceipt, conversion_receipt, convert
from mykey.points.models import Coupon, CouponBatch, CouponFailure
from mykey.points.partners import agreement_on, check_partner_id, methods_of, partner_row

ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
N = len(ALPHABET)  # 25
VALUE = {c: i for i, c in enumerate(ALPHABET)}
LENGTH = 16
DELIVERIES = ("paper", "email", "url")
MAX_COUNT = 100_000
MAX_VALIDITY = timedelta(days=5 * 366)
FAILURE_WINDOW = timedelta(hours=1)
MAX_FAILURES = 10
ACTOR = "system:coupons"  # the conversions of coupons; each coupon's key derives from it
CHUNK = 5_000


# ---------------------------------------------------------------------------------------------
# the code


def _weight(position: int) -> int:
    return 1 if position % 2 == 0 else 2


def check_char(body: str) -> str:
    """The check character that makes the 15 characters `body` a valid code."""
    total = sum(_weight(i) * VALUE[c] for i, c in enumerate(body))
    # w_15 = 2 and 2 * 13 ≡ 1 (mod 25)
    return ALPHABET[(-total * 13) % N]


def is_valid(code: str) -> bool:
    """Whether a normalised code is 16 characters of the alphabet with a correct check."""
    if len(code) != LENGTH or any(c not in VALUE for c in code):
        return False
    return sum(_weight(i) * VALUE[c] for i, c in enumerate(code)) % N == 0


def new_code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH - 1))
    return body + check_char(body)


def display(code: str) -> str:
    """XXXX-XXXX-XXXX-XXXX."""
    return "-".join(code[i : i + 4] for i in range(0, LENGTH, 4))


def normalise(code: object) -> str:
    """Upper case, hyphens and spaces dropped; `coupon_mistyped` unless the check holds."""
    text = re.sub(r"[\s\-‐－ー]", "", code).upper() if isinstance(code, str) else ""
    if not is_valid(text):
        raise invalid(
            "coupon_mistyped",
            "This coupon code is mistyped: check it and type it again.",
            "クーポンコードに誤りがあります。確認してもう一度入力してください。",
        )
    return text


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def redeem_url(base: str, code: str) -> str:
    """The link of a URL coupon: My Page's redeem screen with the code filled in."""
    return f"{base.rstrip('/')}/mypage/coupons?code={display(code.replace('-', ''))}"


def _aead(secret_key: str) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"mykey coupon codes",
        info=b"aes-256-gcm v1",
    ).derive(secret_key.encode())
    return AESGCM(derived)


# ---------------------------------------------------------------------------------------------
# ordering


@dataclass(frozen=True)
class BatchView:
    id: UUID
    partner: str
    delivery: str
    count: int
    units: int
    expires_on: date
    created_at: datetime
    issued: int  # not redeemed, still redeemable
    redeemed: int
    expired: int  # not redeemed, past expires_on


@dataclass(frozen=True)
class IssuedCoupon:
    serial: int
    code: str  # XXXX-XXXX-XXXX-XXXX


@dataclass(frozen=True)
class OrderedBatch:
    batch: BatchView
    coupons: list[IssuedCoupon]
    replayed: bool


def _view(uow: UnitOfWork, row: CouponBatch) -> BatchView:
    counts: dict[str, int] = {
        status: n
        for status, n in uow.session.execute(
            select(Coupon.status, func.count())
            .where(Coupon.batch_id == row.id)
            .group_by(Coupon.status)
        )
    }
    left = counts.get("issued", 0)
    expired = tokyo_date(uow.now()) > row.expires_on
    return BatchView(
        id=row.id,
        partner=row.partner,
        delivery=row.delivery,
        count=row.count,
        units=row.units,
        expires_on=row.expires_on,
        created_at=row.created_at,
        issued=0 if expired else left,
        redeemed=counts.get("redeemed", 0),
        expired=left if expired else 0,
    )


def _codes(uow: UnitOfWork, batch: UUID, secret_key: str) -> list[IssuedCoupon]:
    aead = _aead(secret_key)
    rows = uow.session.execute(
        select(Coupon.serial, Coupon.code_hash, Coupon.code_box)
        .where(Coupon.batch_id == batch)
        .order_by(Coupon.serial)
    )
    return [
        IssuedCoupon(serial, display(aead.decrypt(box[:12], box[12:], digest.encode()).decode()))
        for serial, digest, box in rows
    ]


def _check_order(count: object, units: object, delivery: object, key: object) -> None:
    COUNT.check(count, 1, MAX_COUNT, "count")
    UNITS.check(units, 1, MAX_POINTS, "units")
    if delivery not in DELIVERIES:
        raise invalid(
            "invalid_delivery",
            "A delivery is one of: paper, email, url.",
            "配布方法は paper、email、url のいずれかです。",
        )
    if not isinstance(key, str) or not CLIENT_KEY.fullmatch(key):
        raise invalid(
            "invalid_idempotency_key",
            "An idempotency key is 1 to 100 characters of A-Z a-z 0-9 . _ : -",
            "冪等キーは英数字と . _ : - の 1〜100 文字で指定してください。",
        )


def order_batch(
    uow: UnitOfWork,
    *,
    partner: str,
    count: int,
    units: int,
    delivery: str,
    expires_on: date,
    actor: str,
    key: str,
    secret_key: str,
    progress: Callable[[int], None] | None = None,
) -> OrderedBatch:
    """Issue `count` coupons of `units` partner units each, redeemable until the Tokyo date
    `expires_on`. The delivery's method (`coupon_<delivery>`) must be agreed with the partner,
    and the units must meet the agreement's minimum and step today. The same (actor, key)
    orders once: a retry returns the same batch and codes (`replayed`), another order under
    the key is `idempotency_key_reused`, and a refused order is refused again under its key."""
    check_partner_id(partner)
    _check_order(count, units, delivery, key)
    request = request_hash(
        "coupon_order",
        {
            "partner": partner,
            "count": count,
            "units": units,
            "delivery": delivery,
            "expires_on": expires_on.isoformat() if isinstance(expires_on, date) else expires_on,
        },
    )

    def stored() -> tuple[str | None, OrderedBatch] | None:
        known = uow.session.scalars(
            select(CouponBatch).where(CouponBatch.actor == actor, CouponBatch.client_key == key)
        ).first()
        if known is None:
            return None
        answer = OrderedBatch(_view(uow, known), _codes(uow, known.id, secret_key), True)
        return known.request_hash, answer

    def body() -> OrderedBatch:
        s = uow.session
        row = partner_row(uow, partner)
        method = f"coupon_{delivery}"
        if method not in methods_of(row):
            raise refused(
                "method_not_agreed",
                f"Coupons by {delivery} ({method}) are not agreed with {partner}.",
                f"{partner} とは {method} による交換の協定がありません。",
            )
        now = uow.now()
        today = tokyo_date(now)
        terms = agreement_on(uow, partner, today)
        if units < terms.minimum:
            raise refused(
                "below_minimum",
                f"A coupon is worth at least {terms.minimum:,} units.",
                f"クーポン 1 枚は {terms.minimum:,} 以上にしてください。",
                minimum=terms.minimum,
            )
        if units % terms.step:
            raise invalid(
                "wrong_step",
                f"Units are converted in steps of {terms.step:,}.",
                f"交換数は {terms.step:,} 単位で指定してください。",
                step=terms.step,
            )
        if not today <= expires_on <= today + MAX_VALIDITY:
            raise invalid(
                "invalid_expiry",
                f"Coupons expire today ({today}) or later, within five years.",
                f"有効期限は本日（{today}）以降、5 年以内で指定してください。",
            )
        batch = CouponBatch(
            id=uuid.uuid4(),
            partner=partner,
            delivery=delivery,
            count=count,
            units=units,
            expires_on=expires_on,
            actor=actor[:128],
            client_key=key,
            request_hash=request,
            created_at=now,
        )
        s.add(batch)
        try:
            s.flush()
        except IntegrityError as exc:  # a twin order with this key committed first
            raise RetryTransaction from exc
        aead = _aead(secret_key)
        issued: list[IssuedCoupon] = []
        connection = s.connection()
        for start in range(0, count, CHUNK):
            rows: list[dict[str, Any]] = []
            for serial in range(start + 1, min(count, start + CHUNK) + 1):
                code = new_code()
                digest = code_hash(code)
                nonce = os.urandom(12)
                rows.append(
                    {
                        "code_hash": digest,
                        "batch_id": batch.id,
                        "serial": serial,
                        "code_box": nonce + aead.encrypt(nonce, code.encode(), digest.encode()),
                        "status": "issued",
                    }
                )
                issued.append(IssuedCoupon(serial, display(code)))
            try:
                insert_many(connection, cast(Any, Coupon.__table__), rows)
            except IntegrityError as exc:  # two equal codes (about 2^-70): draw them all again
                raise RetryTransaction from exc
            if progress is not None:
                progress(len(rows))
        return OrderedBatch(_view(uow, batch), issued, False)

    return keyed_write(
        uow, scope=scope("coupon_order", actor), key=key, digest=request, stored=stored, act=body
    )


def _batch_of(uow: UnitOfWork, partner: str, batch_id: UUID) -> CouponBatch:
    row = uow.session.get(CouponBatch, batch_id)
    if row is None or row.partner != partner:
        raise not_found(
            "unknown_coupon_batch",
            f"{partner} has no coupon batch {batch_id}.",
            f"{partner} のクーポン発行 {batch_id} はありません。",
        )
    return row


def get_batch(uow: UnitOfWork, *, partner: str, batch_id: UUID) -> BatchView:
    """A batch and how many of its coupons are issued, redeemed, expired."""
    check_partner_id(partner)
    return uow.read(lambda: _view(uow, _batch_of(uow, partner, batch_id)))


def batch_codes(
    uow: UnitOfWork, *, partner: str, batch_id: UUID, secret_key: str
) -> tuple[BatchView, list[IssuedCoupon]]:
    """A batch's codes in serial order (for the print shop's CSV or the e-mail or URL list)."""
    check_partner_id(partner)

    def body() -> tuple[BatchView, list[IssuedCoupon]]:
        row = _batch_of(uow, partner, batch_id)
        return _view(uow, row), _codes(uow, row.id, secret_key)

    return uow.read(body)


def csv_text(batch: BatchView, coupons: list[IssuedCoupon], *, base_url: str = "") -> str:
    """UTF-8 CSV (the caller adds the BOM): serial, code, units, expires_on (and url)."""
    url = batch.delivery == "url"
    lines = ["serial,code,units,expires_on" + (",url" if url else "")]
    for c in coupons:
        line = f"{c.serial},{c.code},{batch.units},{batch.expires_on}"
        if url:
            line += "," + redeem_url(base_url, c.code)
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


# ---------------------------------------------------------------------------------------------
# redeeming


def _throttle(uow: UnitOfWork, who: str) -> None:
    since = uow.now() - FAILURE_WINDOW
    failures = uow.session.execute(
        select(func.count()).where(CouponFailure.mykey_id == who, CouponFailure.at > since)
    ).scalar_one()
    if failures >= MAX_FAILURES:
        raise MyKeyError(
            "too_many_attempts",
            ErrorKind.THROTTLED,
            "Too many unknown coupon codes; try again in an hour.",
            "存在しないクーポンコードの入力が続いたため、1 時間後にお試しください。",
            details={"retry_after": int(FAILURE_WINDOW.total_seconds())},
        )


def _used() -> MyKeyError:
    return refused(
        "coupon_used", "This coupon has already been used.", "このクーポンは使用済みです。"
    )


def redeem(
    uow: UnitOfWork,
    *,
    code: str,
    mykey_id: str,
    municipality: str | None,
    actor: str,
    key: str,
) -> ConversionReceipt:
    """Redeem a coupon into `municipality`'s points (or reserved points when None): one
    conversion of the batch's units from its partner, by `coupon_<delivery>`. A coupon
    converts once whoever asks (its conversion's key derives from the coupon); the same
    (actor, key) retried returns the first receipt (`replayed`), another redemption under the
    key is `idempotency_key_reused`, and a refused redemption (the coupon used or expired, a
    daily limit) is refused again under its key."""
    normal = normalise(code)  # coupon_mistyped, before any lookup
    who = normalise_mykey_id(mykey_id)
    if not isinstance(key, str) or not CLIENT_KEY.fullmatch(key):
        raise invalid(
            "invalid_idempotency_key",
            "An idempotency key is 1 to 100 characters of A-Z a-z 0-9 . _ : -",
            "冪等キーは英数字と . _ : - の 1〜100 文字で指定してください。",
        )
    digest = code_hash(normal)
    request = request_hash(
        "coupon_redeem", {"coupon": digest, "mykey_id": who, "municipality": municipality}
    )

    def stored() -> tuple[str | None, ConversionReceipt] | None:
        mine = uow.session.scalars(
            select(Coupon).where(Coupon.redeemed_actor == actor, Coupon.redeem_key == key)
        ).first()
        if mine is None or mine.conversion_id is None:
            return None
        return mine.redeem_hash, conversion_receipt(uow, mine.conversion_id, replayed=True)

    def body() -> ConversionReceipt | MyKeyError:
        s = uow.session
        _throttle(uow, who)
        coupon = s.get(Coupon, digest)
        if coupon is None:
            s.add(CouponFailure(mykey_id=who, at=uow.now()))
            s.flush()
            return not_found(  # returned, not raised: the failure is kept for the throttle
                "unknown_coupon",
                "There is no such coupon.",
                "このクーポンコードは存在しません。",
            )
        batch = s.get(CouponBatch, coupon.batch_id)
        assert batch is not None
        if coupon.status == "redeemed":
            raise _used()
        if tokyo_date(uow.now()) > batch.expires_on:
            raise refused(
                "coupon_expired",
                f"This coupon expired on {batch.expires_on}.",
                f"このクーポンの有効期限（{batch.expires_on}）は過ぎています。",
                expires_on=str(batch.expires_on),
            )
        try:
            done = s.execute(
                update(Coupon)
                .where(Coupon.code_hash == digest, Coupon.status == "issued")
                .values(
                    status="redeemed",
                    redeemed_at=uow.now(),
                    redeemed_actor=actor,
                    redeem_key=key,
                    redeem_hash=request,
                )
                .execution_options(synchronize_session=False)
            )
        except IntegrityError as exc:  # a twin request with this key committed first
            raise RetryTransaction from exc
        if not cast(CursorResult[Any], done).rowcount:
            raise _used()  # another redemption took it a moment ago
        receipt = convert(
            uow,
            partner=batch.partner,
            mykey_id=who,
            units=batch.units,
            municipality=municipality,
            method=f"coupon_{batch.delivery}",
            actor=ACTOR,
            key=f"coupon:{digest}",
            reference=f"{batch.id}:{coupon.serial}",
        )
        s.execute(
            update(Coupon)
            .where(Coupon.code_hash == digest)
            .values(conversion_id=receipt.conversion_id)
            .execution_options(synchronize_session=False)
        )
        return receipt

    outcome = keyed_write(
        uow,
        scope=scope("coupon_redeem", actor),
        key=key,
        digest=request,
        stored=stored,
        act=body,
    )
    if isinstance(outcome, MyKeyError):
        raise outcome
    return outcome


def list_batches(uow: UnitOfWork, *, partner: str, limit: int = 50) -> list[BatchView]:
    """A partner's coupon batches, newest first (for the partner console)."""
    check_partner_id(partner)

    def body() -> list[BatchView]:
        rows = uow.session.scalars(
            select(CouponBatch)
            .where(CouponBatch.partner == partner)
            .order_by(CouponBatch.created_at.desc(), CouponBatch.id)
            .limit(limit)
        )
        return [_view(uow, row) for row in rows]

    return uow.read(body)
