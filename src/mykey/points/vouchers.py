"""Point vouchers (ポイント券, issue #5): points on paper with a 13-digit number.

- issue (at a shop's terminal, with a fresh card proof, keyed as every counter operation is:
  `points.counter`; bound to the holder whose balances were shown, if the terminal says so;
  a use of the MyKey ID in its usage history): one ledger transfer moves the points
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
- ranking prizes (R4.5, `issue_prize`): a ranking award's winner gets N vouchers of D points,
  funded by the municipality's budget (BUDGET → VOUCHER_FLOAT, counted against the program's
  annual budget) and never through a wallet; valid at a shopping street or a set of shops for
  V days. Unredeemed, they lapse to the EXPIRED account (breakage) as receipt vouchers do.
- Tenri's receipt program (R6.7): a shop issues a voucher for a receipt, funded by the city's
  budget; the rules are data (`ReceiptRules`). A receipt voucher valid on a shopping street
  is cashed through the street's commerce association: at redemption VOUCHER_FLOAT → the
  association's SETTLEMENT account (owner "street:<id>") → the shop, two legs under keys
  derived from the client's key ("<key>:association", "<key>:shop").
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    CursorResult,
    Select,
    Table,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, driver_sql, send_together, tokyo_date
from mykey.errors import COUNT, DAYS, POINTS, YEN, MyKeyError, invalid, not_found, refused
from mykey.identity import proofs, usage
from mykey.identity.binding import ExpectedHolder, check_expected
from mykey.identity.proofs import Card
from mykey.ledger import AccountKind, LotTerms, idempotency
from mykey.ledger.models import TransferRow
from mykey.municipalities.codes import parse_code
from mykey.points import counter, spending
from mykey.points.grants import _use_budget
from mykey.points.models import (
    PointProgram,
    RankingAwardShop,
    Shop,
    ShopAccept,
    ShoppingStreet,
    Voucher,
)
from mykey.points.program_setup import program_of
from mykey.points.programs import fiscal_year_of
from mykey.points.spending import (
    _accept,
    _insufficient,
    _not_a_shop,
    _resident,
    _shop,
    _usable,
    _wallet,
)

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
PRIZE_PROGRAM = "prize"  # ranking prizes (R4.5): see points.rankings
MAX_PRIZE_DAYS = 366
MAX_PRIZE_VALUE = 1_000_000
MAX_PRIZE_SHOPS = 50


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
    award_id: str | None = None  # a ranking prize: its award
    valid_shops: tuple[str, ...] = ()  # a prize valid at a set of shops: their names
    issue_id: str = ""  # the transfer that issued it (its batch, printed together)


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
    return _view_named(
        row,
        point_name=program.point_name if program else None,
        shop_name=shop.name if shop else None,
        street_name=street.name if street else None,
        valid_shops=_prize_shop_names(uow, row),
    )


def _view_named(
    row: Voucher,
    *,
    point_name: str | None,
    shop_name: str | None,
    street_name: str | None,
    valid_shops: tuple[str, ...],
) -> VoucherView:
    """A voucher's view, with the names it shows as read (`_view` reads them)."""
    return VoucherView(
        number=row.number,
        municipality=row.code,
        point_name=point_name or row.code,
        program=row.program,
        face_value=row.face_value,
        issued_on=row.issued_on,
        valid_until=row.valid_until,
        shop_id=row.shop_id,
        shop_name=shop_name,
        street_id=row.street_id,
        street_name=street_name,
        status=row.status,
        redeemed_shop_id=row.redeemed_shop_id,
        receipt_ref=row.receipt_ref,
        prints=row.prints,
        gift_program=row.gift_program_id,
        award_id=row.award_id,
        valid_shops=valid_shops,
        issue_id=str(row.issue_transfer_id),
    )


def _prize_shop_names(uow: UnitOfWork, row: Voucher) -> tuple[str, ...]:
    if row.award_id is None or row.shop_id is not None or row.street_id is not None:
        return ()
    return tuple(
        uow.session.scalars(
            select(Shop.name)
            .join(RankingAwardShop, RankingAwardShop.shop_id == Shop.id)
            .where(RankingAwardShop.award_id == row.award_id)
            .order_by(Shop.id)
        )
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
    "voucher_count": COUNT,
    "face_value": POINTS,
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


def _unknown_street(street_id: str) -> MyKeyError:
    return not_found(
        "unknown_street",
        f"There is no shopping street {street_id}.",
        f"商店街 {street_id} はありません。",
    )


def _street(uow: UnitOfWork, street_id: str) -> ShoppingStreet:
    street = uow.session.get(ShoppingStreet, street_id)
    if street is None:
        raise _unknown_street(street_id)
    return street


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


@dataclass(frozen=True)
class FromWallet:
    """A request to turn wallet points into vouchers: what its transfer's hash is made of
    (`code`, `pieces`, `metadata`), and what the vouchers are."""

    code: str
    pieces: list[int]
    metadata: dict[str, Any]
    program: str = WALLET_PROGRAM
    valid_days: int = DEFAULT_VALID_DAYS
    street_id: str | None = None  # valid at the shops of this street, or
    at_shop: bool = True  # at the issuing shop only (neither: every shop taking the points)
    gift_program_id: str | None = None  # gift certificates (商品券): their programme
    gift_name: str | None = None

    @property
    def points(self) -> int:
        return sum(self.pieces)

    @property
    def action(self) -> str:
        """The use of the MyKey ID this is, in the usage history."""
        return "gift_exchange" if self.program == GIFT_PROGRAM else "voucher_issue"

    def purpose(self, point_name: str | None) -> str:
        name = self.gift_name or point_name or self.code
        return f"{len(self.pieces)} × {self.pieces[0]:,} pt · {name}"

    def digest_for(self, shop_id: str | None, holder: str | None) -> str | None:
        """The request's hash; None for a terminal of no shop (`holder`: the MyKey ID of the
        card key the request names, read before its proof is checked)."""
        if not shop_id:
            return None
        return counter.request_digest(
            "vouchers",
            shop=shop_id,
            holder=holder,
            municipality=self.code,
            pieces=self.pieces,
            **self.metadata,
        )

    def digest(self, uow: UnitOfWork, shop_id: str | None, card: Card) -> str | None:
        if not shop_id or uow.session.get(Shop, shop_id) is None:
            return None
        return self.digest_for(shop_id, counter.claimed_holder(uow, card))

    def rows(
        self, *, tid: UUID, who: str, wallet: int, shop_id: str, at: datetime
    ) -> list[Voucher]:
        """The vouchers of this issue (transient), each with a new number."""
        today = tokyo_date(at)
        return [
            Voucher(
                number=new_number(),
                code=self.code,
                program=self.program,
                mykey_id=who,
                wallet_account_id=wallet,
                issue_transfer_id=tid,
                seq=seq,
                face_value=value,
                issued_on=today,
                valid_until=today + timedelta(days=self.valid_days - 1),
                issuer_shop_id=shop_id,
                shop_id=shop_id if self.at_shop else None,
                street_id=self.street_id,
                status=ISSUED,
                prints=0,
                created_at=at,
                gift_program_id=self.gift_program_id,
            )
            for seq, value in enumerate(self.pieces)
        ]


def issued_answer(uow: UnitOfWork, transfer_id: UUID) -> Issued:
    """What an issue from a wallet answered, as its replay does."""
    receipt = replace(ledger.get_transfer(uow, transfer_id), replayed=True)
    rows = _of_issue(uow, receipt)
    today = tokyo_date(uow.now())
    rest = sum(lot.remaining for lot in _usable(uow, receipt.debit_account_id, today))
    return Issued(receipt, [_view(uow, r) for r in rows], rest, True)


def run_from_wallet(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: Card,
    request: FromWallet,
    actor: str,
    key: str,
    expected_holder: ExpectedHolder | None,
) -> Issued:
    """An issue from the card holder's wallet as a keyed counter operation: the key first, the
    expected holder, the card checked in the transaction, the shop must take the points (and
    a street named must exist), then `_from_wallet`. On PostgreSQL two round trips
    (`_from_wallet_in_two`)."""
    if uow.dialect == "postgresql" and not uow.in_transaction:
        return _from_wallet_in_two(
            uow,
            shop_id=shop_id,
            card=card,
            request=request,
            actor=actor,
            key=key,
            expected_holder=expected_holder,
        )

    def body() -> Issued:
        shop = _shop(uow, shop_id)
        counter.check_holder(uow, expected_holder, card=card, place=shop.id, expiry=True)
        who = _resident(uow, proofs.verify_in_transaction(uow, card))
        _accept(uow, shop, request.code)
        if request.street_id is not None:
            _street(uow, request.street_id)
        return _from_wallet(
            uow,
            shop=shop,
            who=who,
            digest=request.digest(uow, shop.id, card),
            request=request,
            actor=actor,
            key=key,
        )

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=lambda: request.digest(uow, shop_id, card),
        replay=lambda tid: issued_answer(uow, tid),
        body=body,
        first=lambda: counter.check_holder(
            uow, expected_holder, card=card, place=shop_id or "", expiry=False
        ),
    )


def issue(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: Card,
    municipality: str,
    points: int,
    actor: str,
    key: str,
    denomination: int | None = None,
    street_id: str | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
    expected_holder: ExpectedHolder | None = None,
) -> Issued:
    """Turn `points` of the card holder's wallet into vouchers valid at this shop (or at every
    shop of `street_id`) for `valid_days` days counting today. Idempotent per (actor, key);
    refused with `wrong_card` if `expected_holder` names someone else."""
    code = parse_code(municipality)
    pieces = _pieces(points, denomination)
    days = _days(valid_days)
    request = FromWallet(
        code,
        pieces,
        {"valid_days": days, "street": street_id or ""},
        valid_days=days,
        street_id=street_id,
        at_shop=street_id is None,
    )
    return run_from_wallet(
        uow,
        shop_id=shop_id,
        card=card,
        request=request,
        actor=actor,
        key=key,
        expected_holder=expected_holder,
    )


def _from_wallet(
    uow: UnitOfWork,
    *,
    shop: Shop,
    who: str,
    digest: str | None,
    request: FromWallet,
    actor: str,
    key: str,
) -> Issued:
    """Inside a transaction: one transfer of sum(pieces) from the resident's wallet into the
    voucher float, and one voucher per piece (or, replayed, the vouchers of the first try);
    a use of the MyKey ID (usage history: `voucher_issue`)."""
    code, points = request.code, request.points
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
            metadata={"shop": shop.id, "vouchers": len(request.pieces), **request.metadata},
            request_digest=digest,
        )
    except MyKeyError as error:
        if error.code == "insufficient_points":
            usable = sum(lot.remaining for lot in _usable(uow, wallet.id, today))
            raise _insufficient(code, usable, points) from error
        raise
    if receipt.replayed:
        return issued_answer(uow, receipt.transfer_id)
    rows = request.rows(
        tid=receipt.transfer_id, who=who, wallet=wallet.id, shop_id=shop.id, at=receipt.created_at
    )
    uow.session.add_all(rows)
    try:
        uow.session.flush()
    except IntegrityError as exc:  # a number drawn twice: try again
        raise RetryTransaction from exc
    program = uow.session.get(PointProgram, code)
    usage.record(
        uow,
        mykey_id=who,
        action=request.action,
        actor=actor,
        provider_id=shop.id,
        purpose=request.purpose(program.point_name if program else None),
    )
    rest = sum(lot.remaining for lot in _usable(uow, wallet.id, today))
    return Issued(receipt, [_view(uow, r) for r in rows], rest, receipt.replayed)


# The vouchers of an issue, written with its transfer (numbers and face values in order).
PG_VOUCHER_ROWS = (
    "vouchers AS (INSERT INTO vouchers (number, code, program, mykey_id, wallet_account_id,"
    " issue_transfer_id, seq, face_value, issued_on, valid_until, issuer_shop_id, shop_id,"
    " street_id, status, prints, created_at, gift_program_id)"
    " SELECT v.number, %(a_code)s, %(a_program)s, %(a_who)s, %(debit)s, %(id)s, v.seq - 1,"
    " v.face_value, %(today)s, %(a_until)s, %(a_issuer)s, %(a_shop)s, %(a_street)s, 'issued',"
    " 0, %(now)s, %(a_gift)s FROM made,"
    " unnest(%(a_numbers)s::text[], %(a_values)s::bigint[]) WITH ORDINALITY"
    " AS v(number, face_value, seq))"
)


def _issue_facts() -> Select[Any]:
    """What an issue reads beside a payment's look-ups (`spending._Facts`): the voucher float,
    the street named and the names the vouchers show."""
    return select(
        ledger.account_id_column(bindparam("p_code"), AccountKind.VOUCHER_FLOAT, FLOAT_OWNER),
        select(ShoppingStreet.name)
        .where(ShoppingStreet.id == bindparam("p_street"))
        .scalar_subquery(),
        select(Shop.name).where(Shop.id == bindparam("p_shop")).scalar_subquery(),
    )


@cache
def _issue_facts_pg() -> tuple[str, dict[str, Any]]:
    return driver_sql(_issue_facts())


def _from_wallet_in_two(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: Card,
    request: FromWallet,
    actor: str,
    key: str,
    expected_holder: ExpectedHolder | None,
) -> Issued:
    """`run_from_wallet` on PostgreSQL in two round trips, as a payment (`spending.pay`):
    BEGIN with the payment's look-ups and the issue's own (`_issue_facts`); the card's proof
    checked against what was read; then one statement with the COMMIT: the challenge's use as
    the gate of the transfer into the float, the vouchers, the usage entry and the leaves, the
    usable balance. (A municipality's first issue opens its float in between.)"""
    code, points = request.code, request.points
    card_key = proofs.claimed_card_key(card)  # unverified: to look up, never to act on
    seen: list[tuple[Any, ...]] = []

    def first() -> None:
        sql, literals = _issue_facts_pg()
        also = (sql, {**literals, "p_code": code, "p_street": request.street_id, "p_shop": shop_id})
        facts, more = spending._Facts.read_with(
            uow,
            shop=shop_id,
            card=card_key,
            challenge=proofs.claimed_use_id(card),
            code=code,
            actor=actor,
            key=key,
            also=also,
        )
        seen[:] = [(facts, more)]
        check_expected(
            expected_holder, card_key=card_key, holder=facts.holder, place=shop_id or "", now=None
        )

    def digest() -> str | None:
        facts = seen[0][0]
        return request.digest_for(shop_id, facts.holder) if facts.shop else None

    def body() -> Issued:
        facts, (float_id, street_name, shop_name) = seen[0]
        if facts.shop is None:
            raise _not_a_shop()
        now = uow.now()
        check_expected(
            expected_holder, card_key=card_key, holder=facts.holder, place=facts.shop, now=now
        )
        checked = proofs.check_with_standing(card, now, facts.standing)
        who = facts.holder if checked.card.card_key == card_key else _resident(uow, checked.card)
        if who is None:
            raise spending._card_not_registered()
        if facts.shop_account is None:
            raise spending._not_accepted_named(facts.point_name or code, code)
        if request.street_id is not None and street_name is None:
            raise _unknown_street(request.street_id)
        if facts.wallet is None:
            raise _insufficient(code, 0, points)
        assert facts.usage_id is not None  # read on PostgreSQL
        if float_id is None:  # the municipality's first vouchers
            float_id = _float(uow, code).id
        tid = idempotency.derive_id(actor, key)
        rows = request.rows(tid=tid, who=who, wallet=facts.wallet, shop_id=facts.shop, at=now)
        entry, entry_params, leaf = usage.with_transfer(
            usage_id=facts.usage_id,
            mykey_id=who,
            action=request.action,
            actor=actor,
            provider_id=facts.shop,
            purpose=request.purpose(facts.point_name),
            at=now,
        )
        alongside = ledger.Alongside(
            ledger=code,
            at=now,
            ctes=(PG_VOUCHER_ROWS, entry),
            params={
                "a_code": code,
                "a_program": request.program,
                "a_who": who,
                "a_until": rows[0].valid_until,
                "a_issuer": facts.shop,
                "a_shop": rows[0].shop_id,
                "a_street": request.street_id,
                "a_gift": request.gift_program_id,
                "a_numbers": [r.number for r in rows],
                "a_values": [r.face_value for r in rows],
                **entry_params,
            },
            leaves=(leaf,),
            value=spending.PG_USABLE_BEFORE,
        )
        try:
            receipt = ledger.transfer(
                uow,
                debit=facts.wallet,
                credit=int(float_id),
                amount=points,
                kind=ISSUE,
                actor=actor,
                key=key,
                metadata={"shop": facts.shop, "vouchers": len(rows), **request.metadata},
                request_digest=digest(),
                alongside=spending._gated(alongside, checked.use_id, now),
                key_looked_up=True,
            )
        except (ledger.GateClosed, ledger.RefusedInStatement) as refused_in_statement:
            raise spending.spend_refusal(refused_in_statement, card, code, points) from None
        names = {
            "point_name": facts.point_name,
            "shop_name": shop_name if request.at_shop else None,
            "street_name": street_name,
            "valid_shops": (),
        }
        views = [_view_named(r, **names) for r in rows]
        return Issued(receipt, views, int(receipt.alongside) - points, False)

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: issued_answer(uow, tid),
        body=body,
        first=first,
        known=lambda hashed: seen[0][0].prior.outcome(hashed),
        statement_begin=True,
    )


def _strip(number: object) -> str:
    """A voucher number as typed, without its dashes and spaces."""
    return number.strip().replace("-", "").replace(" ", "") if isinstance(number, str) else ""


def _clean(number: object) -> str:
    """`_strip`, refused unless well formed."""
    clean = _strip(number)
    if not valid_number(clean):
        raise invalid(
            "invalid_voucher_number",
            "This is not a voucher number (13 digits with a check digit); check for a typo.",
            "ポイント券番号ではありません（13桁・チェックデジット）。入力を確認してください。",
        )
    return clean


def _unknown_voucher(clean: str) -> MyKeyError:
    return not_found(
        "unknown_voucher",
        f"There is no voucher {clean}.",
        f"ポイント券 {clean} は見つかりません。",
    )


def _find(uow: UnitOfWork, number: str) -> Voucher:
    clean = _clean(number)
    row = uow.session.get(Voucher, clean)
    if row is None:
        raise _unknown_voucher(clean)
    return row


def get_voucher(uow: UnitOfWork, number: str) -> VoucherView:
    return uow.read(lambda: _view(uow, _find(uow, number)))


def _valid_here(row: Voucher, shop: Shop) -> bool:
    if row.shop_id is None and row.street_id is None:  # a gift certificate valid town-wide
        return row.program == GIFT_PROGRAM  # (the caller checks that the shop takes the points)
    if row.shop_id is not None:
        return row.shop_id == shop.id
    return row.street_id is not None and row.street_id == shop.street_id


def _prize_shop_ids(uow: UnitOfWork, row: Voucher) -> str | None:
    """The shops (ids, comma-separated) of a prize voucher valid at a set of shops."""
    if row.award_id is None:
        return None
    ids = uow.session.scalars(
        select(RankingAwardShop.shop_id)
        .where(RankingAwardShop.award_id == row.award_id)
        .order_by(RankingAwardShop.shop_id)
    )
    return ",".join(ids) or None


def _in_prize_shops(uow: UnitOfWork, row: Voucher, shop: Shop) -> bool:
    """A prize voucher valid at a set of shops (its award's `ranking_award_shops`)."""
    if row.program != PRIZE_PROGRAM or row.award_id is None:
        return False
    if row.shop_id is not None or row.street_id is not None:
        return False
    return uow.session.get(RankingAwardShop, (row.award_id, shop.id)) is not None


def association_owner(street_id: str) -> str:
    """The owner of a shopping street's commerce association account (SETTLEMENT kind)."""
    return f"street:{street_id}"


def _association(uow: UnitOfWork, row: Voucher, *, opening: bool = True) -> ledger.Account | None:
    """Receipt vouchers valid on a street are cashed through its commerce association (its
    account is opened on first use; `opening=False` only finds it)."""
    if row.program != RECEIPT_PROGRAM or row.street_id is None:
        return None
    owner = association_owner(row.street_id)
    if opening:
        return ledger.open_account(uow, ledger=row.code, kind=AccountKind.SETTLEMENT, owner=owner)
    try:
        return ledger.find_account(uow, ledger=row.code, kind=AccountKind.SETTLEMENT, owner=owner)
    except MyKeyError as error:
        if error.code == "unknown_account":
            return None
        raise


def _redemption_answer(uow: UnitOfWork, transfer_id: UUID) -> Redemption:
    receipt = ledger.get_transfer(uow, transfer_id)
    row = _find(uow, str(receipt.metadata.get("voucher", "")))
    return Redemption(str(receipt.transfer_id), _view(uow, row), True)


def redemption_at(uow: UnitOfWork, *, shop_id: str, transfer_id: UUID | str) -> Redemption:
    """A redemption made at this shop, by the id of its transfer (the counter's result page);
    `unknown_redemption` for another shop's or none."""

    def body() -> Redemption:
        try:
            tid = transfer_id if isinstance(transfer_id, UUID) else UUID(str(transfer_id))
        except ValueError:
            tid = None
        row = (
            uow.session.scalars(
                select(Voucher).where(
                    Voucher.closing_transfer_id == tid,
                    Voucher.redeemed_shop_id == shop_id,
                    Voucher.status == REDEEMED,
                )
            ).first()
            if tid
            else None
        )
        if row is None:
            raise not_found(
                "unknown_redemption",
                "This shop has no such voucher redemption.",
                "この店舗にはそのポイント券の受け取りはありません。",
            )
        return Redemption(str(tid), _view(uow, row), False)

    return uow.read(body)


def issue_at(uow: UnitOfWork, *, shop_id: str, transfer_id: UUID | str) -> list[VoucherView]:
    """The vouchers (or gift certificates) of one issue at this shop (the counter's result
    page, as printable as they are); `unknown_issue` for another shop's or none."""

    def body() -> list[VoucherView]:
        try:
            tid = transfer_id if isinstance(transfer_id, UUID) else UUID(str(transfer_id))
        except ValueError:
            tid = None
        rows = (
            list(
                uow.session.scalars(
                    select(Voucher)
                    .where(Voucher.issue_transfer_id == tid, Voucher.issuer_shop_id == shop_id)
                    .order_by(Voucher.seq)
                )
            )
            if tid
            else []
        )
        if not rows:
            raise not_found(
                "unknown_issue",
                "This shop issued no such vouchers.",
                "この店舗はそのポイント券を発行していません。",
            )
        return [_view(uow, r) for r in rows]

    return uow.read(body)


def _wrong_shop(where: str | None) -> MyKeyError:
    return refused(
        "voucher_wrong_shop",
        f"This voucher cannot be used at this shop (it is valid at {where}).",
        f"このポイント券はこの店舗では使えません（使える店舗：{where}）。",
        valid_at=where,
    )


def _already_redeemed() -> MyKeyError:
    return refused(
        "voucher_already_redeemed",
        "This voucher has already been used.",
        "このポイント券はすでに使用済みです。",
    )


def _expired(valid_until: date) -> MyKeyError:
    return refused(
        "voucher_expired",
        f"This voucher expired after {valid_until.isoformat()}.",
        f"このポイント券の有効期限（{valid_until.isoformat()}）は過ぎています。",
        valid_until=valid_until.isoformat(),
    )


def redeem(
    uow: UnitOfWork, *, shop_id: str | None, number: str, actor: str, key: str
) -> Redemption:
    """Pay this shop the voucher's face value, once. Idempotent per (actor, key): the key is
    looked up first, and a refusal is kept under it (`points.counter`).

    On PostgreSQL two round trips (`_redeem_in_two`), but for a receipt voucher cashed
    through its street's association (two transfers)."""

    def digest() -> str | None:
        if not shop_id or uow.session.get(Shop, shop_id) is None:
            return None
        return counter.request_digest("redeem", shop=shop_id, voucher=_find(uow, number).number)

    def body() -> Redemption:
        return _redeem_body(
            uow, shop_id=shop_id, number=number, actor=actor, key=key, digest=digest
        )

    if uow.dialect == "postgresql" and not uow.in_transaction:
        return _redeem_in_two(uow, shop_id=shop_id, number=number, actor=actor, key=key)
    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: _redemption_answer(uow, tid),
        body=body,
    )


_VOUCHERS = cast(Table, Voucher.__table__)
_SHOPS = cast(Table, Shop.__table__)
_AWARD_SHOPS = cast(Table, RankingAwardShop.__table__)
_TRANSFERS = cast(Table, TransferRow.__table__)


def _redeem_facts() -> Select[Any]:
    """Everything a redemption reads, in one statement (PostgreSQL), by label: the shop and
    its street, the voucher's row, the shop's account for its points, whether the shop is one
    of a prize's shops, the voucher float, who closed the voucher, the names its view shows,
    and what the terminal's key made before (`idempotency.prior_columns`)."""
    shop: BindParameter[str] = bindparam("p_shop")
    v, award_shops = _VOUCHERS, _AWARD_SHOPS
    prize = (
        select(_SHOPS.c.id)
        .join(award_shops, award_shops.c.shop_id == _SHOPS.c.id)
        .where(award_shops.c.award_id == v.c.award_id)
    )
    closing = select(_TRANSFERS.c.actor, _TRANSFERS.c.client_key).where(
        _TRANSFERS.c.id == v.c.closing_transfer_id
    )
    one = select(literal_column("1").label("one")).subquery("one")
    return select(
        select(_SHOPS.c.id).where(_SHOPS.c.id == shop).scalar_subquery().label("here"),
        select(_SHOPS.c.street_id)
        .where(_SHOPS.c.id == shop)
        .scalar_subquery()
        .label("here_street"),
        *v.c,
        select(ShopAccept.account_id)
        .where(ShopAccept.shop_id == shop, ShopAccept.code == v.c.code)
        .scalar_subquery()
        .label("accept"),
        exists()
        .where(award_shops.c.award_id == v.c.award_id, award_shops.c.shop_id == shop)
        .label("in_prize"),
        ledger.account_id_column(v.c.code, AccountKind.VOUCHER_FLOAT, FLOAT_OWNER).label("float"),
        closing.with_only_columns(_TRANSFERS.c.actor).scalar_subquery().label("closed_by"),
        closing.with_only_columns(_TRANSFERS.c.client_key).scalar_subquery().label("closed_key"),
        select(PointProgram.point_name)
        .where(PointProgram.code == v.c.code)
        .scalar_subquery()
        .label("point_name"),
        select(Shop.name).where(Shop.id == v.c.shop_id).scalar_subquery().label("shop_name"),
        select(ShoppingStreet.name)
        .where(ShoppingStreet.id == v.c.street_id)
        .scalar_subquery()
        .label("street_name"),
        prize.with_only_columns(func.array_agg(aggregate_order_by(_SHOPS.c.id, _SHOPS.c.id)))
        .scalar_subquery()
        .label("prize_ids"),
        prize.with_only_columns(func.array_agg(aggregate_order_by(_SHOPS.c.name, _SHOPS.c.id)))
        .scalar_subquery()
        .label("prize_names"),
        *idempotency.prior_columns(bindparam("p_actor"), bindparam("p_key")),
    ).select_from(one.outerjoin(v, v.c.number == bindparam("p_number")))


@cache
def _redeem_facts_pg() -> tuple[str, dict[str, Any], tuple[str, ...]]:
    statement = _redeem_facts()
    sql, literals = driver_sql(statement)
    return sql, literals, tuple(c.key or "" for c in statement.selected_columns)


VOUCHER_FIELDS = tuple(c.key for c in _VOUCHERS.c)
# The redemption's own guard, as its transfer's gate: only a voucher still issued.
REDEEM_GATE = (
    "gate AS (UPDATE vouchers SET status = 'redeemed', redeemed_shop_id = %(g_shop)s,"
    " closing_transfer_id = %(g_transfer)s, closed_at = %(g_at)s"
    " WHERE number = %(g_number)s AND status = 'issued' RETURNING 1)"
)


def _redeem_in_two(
    uow: UnitOfWork, *, shop_id: str | None, number: str, actor: str, key: str
) -> Redemption:
    """`redeem` on PostgreSQL in two round trips: BEGIN with one look-up of everything
    (`_redeem_facts`), then the voucher's guarded update as the gate of the transfer that pays
    the shop, with its leaf and the COMMIT (`ledger.Alongside`). A receipt voucher cashed
    through its street's association (two transfers) goes on statement by statement."""
    seen: list[dict[str, Any]] = []
    prior: list[idempotency.Prior] = []

    def first() -> None:
        sql, literals, names = _redeem_facts_pg()
        params = {
            **literals,
            "p_shop": shop_id,
            "p_number": _strip(number),
            "p_actor": actor,
            "p_key": key,
        }
        row = send_together(uow, [(sql, params)], begin=True)[0][0]
        seen[:] = [dict(zip(names, row, strict=True))]
        prior[:] = [idempotency.Prior(*row[-4:])]

    def digest() -> str | None:
        facts = seen[0]
        if not shop_id or facts["here"] is None:
            return None
        return counter.request_digest("redeem", shop=shop_id, voucher=_known(facts))

    def _known(facts: dict[str, Any]) -> str:
        if facts["number"] is None:
            raise _unknown_voucher(_clean(number))
        return str(facts["number"])

    def body() -> Redemption:
        facts = seen[0]
        if facts["here"] is None:
            raise _not_a_shop()
        _known(facts)
        row = Voucher(**{name: facts[name] for name in VOUCHER_FIELDS})
        if facts["float"] is None or (row.program == RECEIPT_PROGRAM and row.street_id):
            return _redeem_body(
                uow, shop_id=shop_id, number=number, actor=actor, key=key, digest=digest
            )
        shop = Shop(id=facts["here"], street_id=facts["here_street"])
        prize = row.program == PRIZE_PROGRAM and row.award_id is not None
        in_prize = prize and row.shop_id is None and row.street_id is None and facts["in_prize"]
        if not (_valid_here(row, shop) or in_prize) or facts["accept"] is None:
            ids = ",".join(facts["prize_ids"] or ()) or None
            raise _wrong_shop(row.shop_id or row.street_id or (ids if prize else None))
        view = _view_named(
            row,
            point_name=facts["point_name"],
            shop_name=facts["shop_name"],
            street_name=facts["street_name"],
            valid_shops=tuple(facts["prize_names"] or ())
            if row.award_id and not (row.shop_id or row.street_id)
            else (),
        )
        closed = (facts["closed_by"], facts["closed_key"])
        if row.status == REDEEMED and row.closing_transfer_id and closed == (actor, key):
            return Redemption(str(row.closing_transfer_id), view, True)
        now = uow.now()
        if row.status == REDEEMED:
            raise _already_redeemed()
        if row.status == EXPIRED or tokyo_date(now) > row.valid_until:
            raise _expired(row.valid_until)
        tid = idempotency.derive_id(actor, key)
        alongside = ledger.Alongside(
            ledger=row.code,
            at=now,
            params={"g_shop": shop.id, "g_transfer": tid, "g_at": now, "g_number": row.number},
            gate=REDEEM_GATE,
            commit=True,
        )
        try:
            receipt = ledger.transfer(
                uow,
                debit=int(facts["float"]),
                credit=int(facts["accept"]),
                amount=row.face_value,
                kind=REDEEM,
                actor=actor,
                key=key,
                metadata={"shop": shop.id, "voucher": row.number},
                request_digest=digest(),
                alongside=alongside,
                key_looked_up=True,
            )
        except ledger.GateClosed:  # another terminal redeemed it first: look again
            raise RetryTransaction from None
        except ledger.RefusedInStatement as refusal:
            raise refusal.error from None
        view = replace(view, status=REDEEMED, redeemed_shop_id=shop.id)
        return Redemption(str(receipt.transfer_id), view, False)

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: _redemption_answer(uow, tid),
        body=body,
        first=first,
        known=lambda hashed: prior[0].outcome(hashed),
        statement_begin=True,
    )


def _redeem_body(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    number: str,
    actor: str,
    key: str,
    digest: Callable[[], str | None],
) -> Redemption:
    """`redeem` inside its transaction, statement by statement."""
    shop = _shop(uow, shop_id)
    row = _find(uow, number)
    here = _valid_here(row, shop) or _in_prize_shops(uow, row, shop)
    if not here or uow.session.get(ShopAccept, (shop.id, row.code)) is None:
        raise _wrong_shop(row.shop_id or row.street_id or _prize_shop_ids(uow, row))
    accept = _accept(uow, shop, row.code)
    today = tokyo_date(uow.now())
    via = _association(uow, row)
    shop_key = f"{key}:shop" if via is not None else key
    if row.status != ISSUED and row.closing_transfer_id is not None:
        closing = ledger.get_transfer(uow, row.closing_transfer_id)
        if row.status == REDEEMED and (closing.actor, closing.client_key) == (actor, shop_key):
            return Redemption(str(closing.transfer_id), _view(uow, row), True)
    if row.status == REDEEMED:
        raise _already_redeemed()
    if row.status == EXPIRED or today > row.valid_until:
        raise _expired(row.valid_until)
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
        request_digest=digest(),
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
    """Send back every issued voucher whose last day is before `as_of` (today or earlier: a
    voucher is good through its last day). Each voucher is its own transaction with its own
    idempotency key, so a run can stop half way and run again."""
    as_of = ledger.as_of_day(
        uow,
        as_of,
        why="a voucher is good through its last day.",
        why_ja="ポイント券は有効期限の日まで使えます。",
    )
    numbers = uow.read(
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
    return uow.read(
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
    VOUCHER_FLOAT). One voucher per receipt number per shop; idempotent per (actor, key), as
    every keyed counter operation (`points.counter`)."""
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
    metadata = {"shop": shop_id, "receipt_ref": receipt_ref, "yen": yen}

    def digest() -> str | None:
        if not shop_id or uow.session.get(Shop, shop_id) is None:
            return None
        return counter.request_digest(
            "receipt_voucher", shop=shop_id, receipt_ref=receipt_ref, yen=yen
        )

    def replay(transfer_id: UUID) -> Issued:
        receipt = replace(ledger.get_transfer(uow, transfer_id), replayed=True)
        return Issued(receipt, [_view(uow, r) for r in _of_issue(uow, receipt)], 0, True)

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
            metadata=metadata,
            request_digest=digest(),
        )
        if receipt.replayed:
            return replay(receipt.transfer_id)
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
        return Issued(receipt, [_view(uow, r) for r in rows], 0, False)

    return counter.run_keyed(uow, actor=actor, key=key, digest=digest, replay=replay, body=body)


@dataclass(frozen=True)
class PrizeTerms:
    """What each winner of a ranking award gets as vouchers: `count` vouchers of `face_value`
    points (no change is given), valid `valid_days` days counting the day of issue, at every
    shop of the shopping street `street_id` or at the shops `shop_ids` (one of the two)."""

    count: int
    face_value: int
    valid_days: int
    street_id: str | None = None
    shop_ids: tuple[str, ...] = ()

    @property
    def points(self) -> int:
        return self.count * self.face_value


def check_prize_terms(terms: PrizeTerms) -> PrizeTerms:
    """The terms with the shops sorted and without repeats, or `invalid_*` (422)."""
    _whole("voucher_count", terms.count, 1, MAX_PIECES)
    _whole("face_value", terms.face_value, 1, MAX_PRIZE_VALUE)
    _whole("valid_days", terms.valid_days, 1, MAX_PRIZE_DAYS)
    shops = tuple(sorted(set(terms.shop_ids)))
    if (terms.street_id is None) == (not shops) or len(shops) > MAX_PRIZE_SHOPS:
        raise invalid(
            "invalid_voucher_place",
            f"Prize vouchers are valid at one shopping street or at 1 to {MAX_PRIZE_SHOPS}"
            " shops: name the street or the shops, not both.",
            f"賞品のポイント券を使える場所は、商店街一つか店舗（1〜{MAX_PRIZE_SHOPS} 店）の"
            "どちらかで指定してください。",
        )
    return PrizeTerms(terms.count, terms.face_value, terms.valid_days, terms.street_id, shops)


def check_prize_place(uow: UnitOfWork, code: str, terms: PrizeTerms) -> None:
    """Inside a transaction: the street is one of the municipality's, and every shop takes its
    points (else `unknown_street` or `unknown_shop`, 404)."""
    s = uow.session
    if terms.street_id is not None:
        street = s.get(ShoppingStreet, terms.street_id)
        if street is None or street.municipality != code:
            raise not_found(
                "unknown_street",
                f"Municipality {code} has no shopping street {terms.street_id}.",
                f"自治体 {code} に商店街 {terms.street_id} はありません。",
            )
    for shop_id in terms.shop_ids:
        if s.get(ShopAccept, (shop_id, code)) is None:
            raise not_found(
                "unknown_shop",
                f"There is no shop {shop_id} that takes the points of {code}.",
                f"{code} のポイントを取り扱う店舗 {shop_id} はありません。",
                shop=shop_id,
            )


def prize_vouchers(uow: UnitOfWork, award_id: str, mykey_id: str) -> list[Voucher]:
    """Inside a transaction: the prize vouchers of one winner of an award, in order."""
    return list(
        uow.session.scalars(
            select(Voucher)
            .where(Voucher.award_id == award_id, Voucher.mykey_id == mykey_id)
            .order_by(Voucher.seq)
        )
    )


def issue_prize(
    uow: UnitOfWork,
    *,
    municipality: str,
    mykey_id: str,
    award_id: str,
    terms: PrizeTerms,
    actor: str,
    key: str,
) -> Issued:
    """A ranking winner's prize vouchers, funded by the municipality's budget.

    One ledger transfer BUDGET → VOUCHER_FLOAT of count × face value (kind `voucher_issue`),
    counted against the program's annual budget like a grant (`budget_exceeded` otherwise),
    and `count` vouchers in the winner's name (program `prize`), valid where `terms` say. No
    wallet is touched: the winner's points balance does not change, and an unredeemed
    voucher lapses to breakage, never into a wallet. Once per (award, winner): run again, by
    anyone and with any key, it answers the first issue's vouchers with `replayed` true
    (the unique index on (award, winner, seq) settles a race). Joins the caller's
    transaction when there is one."""
    code = parse_code(municipality)
    terms = check_prize_terms(terms)

    def body() -> Issued:
        given = prize_vouchers(uow, award_id, mykey_id)
        if given:
            first = ledger.get_transfer(uow, given[0].issue_transfer_id)
            return Issued(first, [_view(uow, r) for r in given], 0, True)
        program = program_of(uow, code)
        budget = ledger.find_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        today = tokyo_date(uow.now())
        receipt = ledger.transfer(
            uow,
            debit=budget.id,
            credit=_float(uow, code).id,
            amount=terms.points,
            kind=ISSUE,
            actor=actor,
            key=key,
            metadata={
                "award": award_id,
                "mykey_id": mykey_id,
                "vouchers": terms.count,
                "face_value": terms.face_value,
            },
        )
        if receipt.replayed:
            return Issued(receipt, [_view(uow, r) for r in _of_issue(uow, receipt)], 0, True)
        if program.annual_budget is not None:
            _use_budget(uow, code, fiscal_year_of(today), terms.points, program.annual_budget)
        rows = _add(
            uow,
            receipt,
            [terms.face_value] * terms.count,
            code=code,
            program=PRIZE_PROGRAM,
            mykey_id=mykey_id,
            wallet_account_id=None,
            issued_on=today,
            valid_until=today + timedelta(days=terms.valid_days - 1),
            issuer_shop_id=None,
            shop_id=terms.shop_ids[0] if len(terms.shop_ids) == 1 else None,
            street_id=terms.street_id,
            award_id=award_id,
        )
        return Issued(receipt, [_view(uow, r) for r in rows], 0, False)

    return uow.run(body)


def vouchers_of(uow: UnitOfWork, mykey_id: str, *, limit: int = 300) -> list[VoucherView]:
    """A resident's vouchers (from their wallet, gift certificates, ranking prizes), the
    newest issue first and in order within an issue (My Page)."""
    return uow.read(
        lambda: [
            _view(uow, row)
            for row in uow.session.scalars(
                select(Voucher)
                .where(Voucher.mykey_id == mykey_id)
                .order_by(Voucher.created_at.desc(), Voucher.issue_transfer_id, Voucher.seq)
                .limit(limit)
            )
        ]
    )
