"""Spending points at a counter (R6.1): balances, payments, same-day cancellation, refunds.

Every operation names the resident by a card proof of this very request (checked here, in the
operation's transaction: `identity.proofs`) and the shop by the terminal key's provider id;
nothing is kept between two operations, so nothing carries over to the next person at a
shared counter. Showing the balances gives a holder binding (`identity.binding`) that the
payment may send back, so that another card tapped at the confirmation is refused. Keyed
operations look their key up first and keep their refusals (`points.counter`). Seeing the
balances and paying are uses of the MyKey ID: each is in its usage history (R1.5).

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    CursorResult,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    null,
    select,
    update,
)

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, driver_sql, send_together, tokyo_date
from mykey.errors import MAX_POINTS, POINTS, MyKeyError, invalid, not_found, refused
from mykey.identity import proofs, usage
from mykey.identity.binding import Binder, ExpectedHolder, HolderBinding, check_expected, mask
from mykey.identity.models import ResidentCard
from mykey.identity.proofs import Card, VerifiedCard
from mykey.ledger import AccountKind, LotTerms, idempotency
from mykey.ledger.models import AccountRow, LotRow, LotUseRow, TransferRow
from mykey.municipalities.codes import parse_code
from mykey.points import counter, shop_cache
from mykey.points.models import PointProgram, Shop, ShopAccept, ShopPayment
from mykey.points.shop_cache import Accepted, TerminalShop

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
class HolderBalances:
    """A tapped card's points accepted here, whose they are (masked) and, given a binder, the
    binding a payment or voucher issue sends back as its expected holder."""

    holder: str  # the MyKey ID, masked: MY12****
    binding: HolderBinding | None
    balances: list[AcceptedBalance]


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


def _not_a_shop() -> MyKeyError:
    return refused(
        "not_a_shop",
        "This terminal does not belong to a registered shop or facility.",
        "この端末は登録された店舗・施設の端末ではありません。",
    )


def _shop(uow: UnitOfWork, shop_id: str | None) -> Shop:
    row = uow.session.get(Shop, shop_id) if shop_id else None
    if row is None:
        raise _not_a_shop()
    return row


def _here(uow: UnitOfWork, shop_id: str | None) -> TerminalShop:
    """The terminal's shop and what it accepts, from the process's cache (`shop_cache`: a
    "no such shop" is always read from the database)."""
    found = shop_cache.shop_of(uow, shop_id) if shop_id else None
    if found is None:
        raise _not_a_shop()
    return found


def _resident(uow: UnitOfWork, card: VerifiedCard) -> str:
    link = uow.session.get(ResidentCard, card.card_key)
    if link is None:
        raise _card_not_registered()
    return link.mykey_id


def _not_accepted(uow: UnitOfWork, code: str) -> MyKeyError:
    name = uow.session.get(PointProgram, code)
    return _not_accepted_named(name.point_name if name else code, code)


def _accept(uow: UnitOfWork, shop: Shop, code: str) -> ShopAccept:
    row = uow.session.get(ShopAccept, (shop.id, code))
    if row is None:
        raise _not_accepted(uow, code)
    return row


def _accepted_here(uow: UnitOfWork, shop: TerminalShop, code: str) -> Accepted:
    """Whether the shop accepts `code`'s points: a "yes" from the cache (at most
    `MYKEY_SHOP_CACHE_SECONDS` old), a "no" read again from the database before refusing."""
    found = shop_cache.accepted(uow, shop, code)
    if found is None:
        raise _not_accepted(uow, code)
    return found


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
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: Card,
    actor: str,
    binder: Binder | None = None,
) -> HolderBalances:
    """The resident's points that this shop accepts, per municipality (0 where none); a use
    of the MyKey ID (usage history: `balances`). A refusal leaves the card's challenge.

    One transaction; on PostgreSQL two round trips (`_balances_in_two`)."""
    if uow.dialect == "postgresql" and not uow.in_transaction:
        return _balances_in_two(uow, shop_id=shop_id, card=card, actor=actor, binder=binder)

    def operation(verified: VerifiedCard) -> HolderBalances:
        shop = _here(uow, shop_id)
        who = _resident(uow, verified)
        today = tokyo_date(uow.now())
        out = []
        for code in shop.codes:
            wallet = _wallet(uow, code, who)
            lots = _usable(uow, wallet.id, today) if wallet else []
            first = lots[0].expires_on if lots else None
            out.append(
                AcceptedBalance(
                    municipality=code,
                    point_name=shop.accepts[code].point_name,
                    balance=sum(lot.remaining for lot in lots),
                    earliest_expiry=first,
                    earliest_expiry_points=sum(
                        lot.remaining for lot in lots if lot.expires_on == first
                    ),
                )
            )
        usage.record(uow, mykey_id=who, action="balances", actor=actor, provider_id=shop.id)
        bound = binder.bind(mykey_id=who, place=shop.id, now=uow.now()) if binder else None
        return HolderBalances(mask(who), bound, out)

    return proofs.with_card(uow, card, operation)


def _balances_facts() -> Select[Any]:
    """Everything the balances at a counter read, in one statement on PostgreSQL: one row per
    usable lot of each municipality the shop accepts (a row with no lot for one with none),
    each with the shop, the card key's MyKey ID, its standing (`proofs.CardStanding`) and the
    id of the usage entry the look-up will write."""
    shop: BindParameter[str] = bindparam("p_shop")
    card: BindParameter[str] = bindparam("p_card")
    holder = select(_CARDS.c.mykey_id).where(_CARDS.c.card_key == card).scalar_subquery()
    standing = proofs.standing_columns(card, bindparam("p_challenge"))
    f = select(
        select(_SHOPS.c.id).where(_SHOPS.c.id == shop).scalar_subquery().label("shop"),
        holder.label("holder"),
        *(
            column.label(name)
            for column, name in zip(standing, ("revoked", "replaced", "used"), strict=True)
        ),
        func.nextval(func.pg_get_serial_sequence("mykey_usage", "id")).label("usage_id"),
    ).cte("f")
    a, p, w, lot = _ACCEPTS, _PROGRAMS, _ACCOUNTS, _LOTS
    joined = (
        f.outerjoin(a, a.c.shop_id == f.c.shop)
        .outerjoin(p, p.c.code == a.c.code)
        .outerjoin(w, and_(w.c.ledger == a.c.code, w.c.kind == "wallet", w.c.owner == f.c.holder))
        .outerjoin(
            lot,
            and_(
                lot.c.account_id == w.c.id,
                lot.c.remaining > 0,
                lot.c.expires_on >= bindparam("p_today"),
            ),
        )
    )
    return (
        select(
            *f.c,
            a.c.code,
            func.coalesce(p.c.point_name, a.c.code),
            lot.c.expires_on,
            lot.c.remaining,
        )
        .select_from(joined)
        .order_by(a.c.code, lot.c.expires_on, lot.c.id)
    )


@cache
def _balances_facts_pg() -> tuple[str, dict[str, Any]]:
    return driver_sql(_balances_facts())


def _balances_in_two(
    uow: UnitOfWork, *, shop_id: str | None, card: Card, actor: str, binder: Binder | None
) -> HolderBalances:
    """`balances_here` on PostgreSQL in two round trips: BEGIN with one look-up of everything
    (`_balances_facts`), the card's proof checked against what it read, then the challenge's
    use, the usage entry and its leaf in one statement with the COMMIT."""
    card_key = proofs.claimed_card_key(card)
    use_id = proofs.claimed_use_id(card)

    def body() -> HolderBalances:
        now = uow.now()
        sql, literals = _balances_facts_pg()
        params = {
            **literals,
            "p_shop": shop_id,
            "p_card": card_key,
            "p_challenge": use_id,
            "p_today": tokyo_date(now),
        }
        rows = send_together(uow, [(sql, params)], begin=True)[0]
        shop, holder, revoked, replaced, used, usage_id = rows[0][:6]
        standing = proofs.CardStanding.of_row(revoked, replaced, used)
        checked = proofs.check_with_standing(card, now, standing)
        if shop is None or not shop_id:
            raise _not_a_shop()
        who = holder if checked.card.card_key == card_key else _resident(uow, checked.card)
        if who is None:
            raise _card_not_registered()
        lots: dict[str, tuple[str, list[tuple[date, int]]]] = {}
        for row in rows:
            if row[6] is None:  # the shop accepts no points
                continue
            _, held = lots.setdefault(row[6], (row[7], []))
            if row[8] is not None:
                held.append((row[8], int(row[9])))
        out = []
        for code, (point_name, held) in lots.items():
            first = held[0][0] if held else None
            out.append(
                AcceptedBalance(
                    municipality=code,
                    point_name=point_name,
                    balance=sum(points for _, points in held),
                    earliest_expiry=first,
                    earliest_expiry_points=sum(p for day, p in held if day == first),
                )
            )
        if not usage.record_with_commit(
            uow,
            gate=proofs.use_gate(checked.use_id, now),
            usage_id=int(usage_id),
            mykey_id=who,
            action="balances",
            actor=actor,
            provider_id=shop,
        ):
            raise proofs.challenge_taken(card)
        bound = binder.bind(mykey_id=who, place=shop, now=now) if binder else None
        return HolderBalances(mask(who), bound, out)

    return proofs.run_with_card_proofs(uow, body, statement_begin=True)


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


def _check_points(points: object) -> int:
    return POINTS.check(points, 1, MAX_POINTS, "points")


# A replayed payment's answer in one statement, sent with the COMMIT (`db.send_together`).
PG_PAYMENT_ANSWER = (  # noqa: S608 -- our SQL, the values are parameters
    "SELECT p.transfer_id, p.shop_id, p.code, p.points, p.receipt_ref, p.created_at, {usable}"
    " FROM shop_payments p WHERE p.transfer_id = %(id)s"
).format(usable=ledger.usable_sql("p.wallet_account_id", "%(today)s"))


def _payment_answer(uow: UnitOfWork, transfer_id: UUID, *, replayed: bool) -> Payment:
    if uow.statement_begin:  # one round trip, which ends the transaction
        today = tokyo_date(uow.now())
        rows = send_together(
            uow, [(PG_PAYMENT_ANSWER, {"id": transfer_id, "today": today})], commit=True
        )[0]
        if not rows:  # pragma: no cover -- a spend under a counter's key has its row
            raise RetryTransaction
        found = rows[0]
        return Payment(
            transfer_id=found[0],
            shop_id=found[1],
            municipality=found[2],
            points=int(found[3]),
            balance=int(found[6]),
            receipt_ref=found[4],
            created_at=found[5].astimezone(UTC),
            replayed=replayed,
        )
    row = uow.session.get(ShopPayment, transfer_id)
    if row is None:  # pragma: no cover -- a spend under a counter's key always has its row
        raise RetryTransaction
    return Payment(
        transfer_id=row.transfer_id,
        shop_id=row.shop_id,
        municipality=row.code,
        points=row.points,
        balance=_rest(uow, row),
        receipt_ref=row.receipt_ref,
        created_at=row.created_at,
        replayed=replayed,
    )


_SHOPS = cast(Table, Shop.__table__)
_ACCEPTS = cast(Table, ShopAccept.__table__)
_PROGRAMS = cast(Table, PointProgram.__table__)
_CARDS = cast(Table, ResidentCard.__table__)
_PAYMENTS = cast(Table, ShopPayment.__table__)
_ACCOUNTS = cast(Table, AccountRow.__table__)
_LOTS = cast(Table, LotRow.__table__)
_LOT_USES = cast(Table, LotUseRow.__table__)
_TRANSFERS = cast(Table, TransferRow.__table__)
# A plain Core insert: on the hot path the ORM's unit of work cost more than the statement.
INSERT_PAYMENT = insert(_PAYMENTS)


def _facts_query(*, usage_id: bool = False) -> Select[Any]:
    """Everything a payment looks up before it writes, in one statement: the shop, the MyKey
    ID of the card key the proof names (the proof is checked after, in the same transaction:
    a good proof proves this very key), the shop's account for the municipality's points if
    it accepts them, the program's point name, the holder's wallet, what the terminal's key
    made before (`idempotency.Prior`), the card key's standing and whether the proof's
    challenge was used (`proofs.CardStanding`); on PostgreSQL (`usage_id`) also the id of the
    usage entry the payment will write, so that the entry's history leaf is made before the
    one statement that writes it (a replay or a refusal leaves a gap in those ids)."""
    shop: BindParameter[str] = bindparam("p_shop")
    card: BindParameter[str] = bindparam("p_card")
    code: BindParameter[str] = bindparam("p_code")
    holder = select(_CARDS.c.mykey_id).where(_CARDS.c.card_key == card).scalar_subquery()
    return select(
        select(_SHOPS.c.id).where(_SHOPS.c.id == shop).scalar_subquery(),
        holder,
        select(_ACCEPTS.c.account_id)
        .where(_ACCEPTS.c.shop_id == shop, _ACCEPTS.c.code == code)
        .scalar_subquery(),
        select(_PROGRAMS.c.point_name).where(_PROGRAMS.c.code == code).scalar_subquery(),
        ledger.wallet_id_column(code, holder),
        *idempotency.prior_columns(bindparam("p_actor"), bindparam("p_key")),
        *proofs.standing_columns(card, bindparam("p_challenge")),
        func.nextval(func.pg_get_serial_sequence("mykey_usage", "id")) if usage_id else null(),
    )


PAYMENT_FACTS = _facts_query()
PAYMENT_FACTS_PG = _facts_query(usage_id=True)


@cache
def _payment_facts_pg() -> tuple[str, dict[str, Any]]:
    return driver_sql(PAYMENT_FACTS_PG)


@dataclass(frozen=True)
class _Facts:
    shop: str | None
    holder: str | None
    shop_account: int | None
    point_name: str | None
    wallet: int | None
    prior: idempotency.Prior
    standing: proofs.CardStanding  # of the card key the proof claims
    usage_id: int | None

    @classmethod
    def read(
        cls,
        uow: UnitOfWork,
        *,
        shop: str | None,
        card: str | None,
        challenge: str | None,
        code: str,
        actor: str,
        key: str,
    ) -> _Facts:
        """One statement; in a unit of work that begins in its statements (PostgreSQL), sent
        with the BEGIN in one round trip."""
        return cls.read_with(
            uow, shop=shop, card=card, challenge=challenge, code=code, actor=actor, key=key
        )[0]

    @classmethod
    def read_with(
        cls,
        uow: UnitOfWork,
        *,
        shop: str | None,
        card: str | None,
        challenge: str | None,
        code: str,
        actor: str,
        key: str,
        also: tuple[str, Mapping[str, Any]] | None = None,
    ) -> tuple[_Facts, tuple[Any, ...] | None]:
        """`read`, and in the same round trip the one row of `also` (driver SQL and its
        parameters; PostgreSQL, in a unit of work that begins in its statements)."""
        params = {
            "p_shop": shop,
            "p_card": card,
            "p_challenge": challenge,
            "p_code": code,
            "p_actor": actor,
            "p_key": key,
        }
        row: Any
        more: tuple[Any, ...] | None = None
        if uow.statement_begin:
            sql, literals = _payment_facts_pg()
            statements = [(sql, {**literals, **params}), *([also] if also else [])]
            rows = send_together(uow, statements, begin=True)
            row, more = rows[0][0], (tuple(rows[1][0]) if also else None)
        else:
            if also is not None:
                raise ValueError("`also` is for a transaction begun by its statements")
            row = uow.connection.execute(
                PAYMENT_FACTS_PG if uow.dialect == "postgresql" else PAYMENT_FACTS, params
            ).one()
        facts = cls(
            row[0],
            row[1],
            None if row[2] is None else int(row[2]),
            row[3],
            None if row[4] is None else int(row[4]),
            idempotency.Prior(*row[5:9]),
            proofs.CardStanding.of_row(*row[9:12]),
            None if row[12] is None else int(row[12]),
        )
        return facts, more


def _card_not_registered() -> MyKeyError:
    return not_found(
        "card_not_registered",
        "This card is not registered for points (no MyKey ID yet).",
        "このカードはポイントに登録されていません（マイキーIDがありません）。",
    )


def _not_accepted_named(label: str, code: str) -> MyKeyError:
    return refused(
        "not_accepted_here",
        f"{label} cannot be used at this shop.",
        f"この店舗では{label}は使えません。",
        municipality=code,
    )


PG_PAYMENT_ROW = (
    "payment AS (INSERT INTO shop_payments (transfer_id, shop_id, code, mykey_id,"
    " wallet_account_id, points, refunded, cancelled, receipt_ref, created_at)"
    " SELECT %(id)s, %(a_shop)s, %(a_code)s, %(a_who)s, %(debit)s, %(amount)s, 0, false,"
    " %(a_receipt)s, %(now)s FROM made)"
)
# read before the statement's transfer: the caller takes the payment off
PG_USABLE_BEFORE = ledger.usable_sql("%(debit)s", "%(today)s")


def _alongside(
    row: dict[str, Any], usage_id: int, actor: str, purpose: str, today: date
) -> ledger.Alongside:
    """On PostgreSQL, the payment's `shop_payments` row, its usage entry and that entry's
    history leaf, written in the transfer's own statement, and the usable balance read in it
    (before the transfer: the spend takes only usable lots, so the rest is that less the
    points). `today` is the transfer's own (`%(today)s`)."""
    at: datetime = row["created_at"]
    assert tokyo_date(at) == today
    entry, entry_params, leaf = usage.with_transfer(
        usage_id=usage_id,
        mykey_id=row["mykey_id"],
        action="pay",
        actor=actor,
        provider_id=row["shop_id"],
        purpose=purpose,
        at=at,
    )
    return ledger.Alongside(
        ledger=row["code"],
        at=at,
        ctes=(PG_PAYMENT_ROW, entry),
        params={
            "a_shop": row["shop_id"],
            "a_code": row["code"],
            "a_who": row["mykey_id"],
            "a_receipt": row["receipt_ref"],
            **entry_params,
        },
        leaves=(leaf,),
        value=PG_USABLE_BEFORE,
    )


def pay(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    card: Card,
    municipality: str,
    points: int,
    actor: str,
    key: str,
    receipt_ref: str | None = None,
    expected_holder: ExpectedHolder | None = None,
) -> Payment:
    """Debit `points` of `municipality` from the card holder's wallet to this shop.

    Idempotent per (actor, key), looked up before the card proof is checked; refused with
    `wrong_card` if `expected_holder` (the binding of the balances shown) names someone else.
    A use of the MyKey ID (usage history: `pay`).

    One transaction: one statement reads everything the payment needs (`_Facts`), the card's
    proof is checked (`proofs.verify_in_transaction`: the use of its challenge), the ledger
    transfer (on PostgreSQL one call, `mykey_transfer`) with its history leaf, then plain
    inserts of the `shop_payments` row and the usage entry with its leaf, and the balance
    after, summed in SQL."""
    code = parse_code(municipality)
    _check_points(points)
    if receipt_ref is not None and not (0 < len(receipt_ref) <= 64):
        raise invalid(
            "invalid_receipt_ref",
            "A receipt reference is 1 to 64 characters.",
            "レシート番号は1〜64文字です。",
        )
    metadata = {"shop": shop_id, "receipt_ref": receipt_ref or ""}
    card_key = proofs.claimed_card_key(card)  # unverified: to look up, never to act on
    challenge_id = proofs.claimed_use_id(card)
    seen: list[_Facts] = []  # what this attempt's transaction read first

    def first() -> None:
        seen[:] = [
            _Facts.read(
                uow,
                shop=shop_id,
                card=card_key,
                challenge=challenge_id,
                code=code,
                actor=actor,
                key=key,
            )
        ]
        check_expected(
            expected_holder, card_key=card_key, holder=seen[0].holder, place=shop_id or "", now=None
        )

    def digest() -> str | None:
        facts = seen[0]
        if not shop_id or facts.shop is None:
            return None
        return counter.request_digest(
            "pay",
            shop=shop_id,
            holder=facts.holder,
            municipality=code,
            points=points,
            receipt_ref=receipt_ref or "",
        )

    def body() -> Payment:
        facts = seen[0]
        if facts.shop is None:
            raise _not_a_shop()
        now = uow.now()
        check_expected(
            expected_holder, card_key=card_key, holder=facts.holder, place=facts.shop, now=now
        )
        # The proof, against the card's standing read with the facts; the challenge is used
        # in the write (PostgreSQL: the transfer's gate) or just before it (SQLite).
        checked = proofs.check_with_standing(card, now, facts.standing)
        in_one = uow.statement_begin  # PostgreSQL: the facts carry the usage entry's id
        used = checked.use_id is not None and not in_one
        if used and not proofs.use_challenge(uow, str(checked.use_id), now):
            raise proofs.challenge_taken(card)
        verified = checked.card
        who = facts.holder if verified.card_key == card_key else _resident(uow, verified)
        if who is None:
            raise _card_not_registered()
        if facts.shop_account is None:
            raise _not_accepted_named(facts.point_name or code, code)
        wallet = facts.wallet
        today = tokyo_date(now)
        if wallet is None:
            raise _insufficient(code, 0, points)
        purpose = f"{points:,} pt · {facts.point_name or code}"
        row: dict[str, Any] = {
            "transfer_id": None,  # known from the receipt (derived from the key)
            "shop_id": facts.shop,
            "code": code,
            "mykey_id": who,
            "wallet_account_id": wallet,
            "points": points,
            "refunded": 0,
            "cancelled": False,
            "receipt_ref": receipt_ref,
            "created_at": now,
        }
        alongside = None
        if facts.usage_id is not None:  # PostgreSQL: the rows with the transfer, one call
            alongside = _alongside(row, facts.usage_id, actor, purpose, today)
            if in_one:  # with the challenge's use as its gate, and the COMMIT
                alongside = _gated(alongside, checked.use_id, now)
        try:
            receipt = ledger.transfer(
                uow,
                debit=wallet,
                credit=facts.shop_account,
                amount=points,
                kind=SPEND,
                actor=actor,
                key=key,
                metadata=metadata,
                request_digest=digest(),
                alongside=alongside,
                key_looked_up=True,  # in `first`, in this transaction
            )
        except (ledger.GateClosed, ledger.RefusedInStatement) as refused_in_statement:
            raise spend_refusal(refused_in_statement, card, code, points) from None
        except MyKeyError as error:
            if error.code == "insufficient_points":
                usable = ledger.usable_balance(uow.connection, wallet, today)
                raise _insufficient(code, usable, points) from error
            raise
        if receipt.replayed:  # a twin with this key committed first: its answer
            return _payment_answer(uow, receipt.transfer_id, replayed=True)
        if alongside is not None:  # written with the transfer; the balance read before it
            balance = int(receipt.alongside) - points
        else:
            row |= {"transfer_id": receipt.transfer_id, "created_at": receipt.created_at}
            uow.connection.execute(INSERT_PAYMENT, row)
            usage.record(
                uow,
                mykey_id=who,
                action="pay",
                actor=actor,
                provider_id=facts.shop,
                purpose=purpose,
            )
            balance = ledger.usable_balance(uow.connection, wallet, today)
        return Payment(
            transfer_id=receipt.transfer_id,
            shop_id=facts.shop,
            municipality=code,
            points=points,
            balance=balance,
            receipt_ref=receipt_ref,
            created_at=receipt.created_at,
            replayed=False,
        )

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: _payment_answer(uow, tid, replayed=True),
        body=body,
        first=first,
        known=lambda hashed: seen[0].prior.outcome(hashed),
        statement_begin=True,
    )


def spend_refusal(
    refused_in_statement: ledger.GateClosed | ledger.RefusedInStatement,
    card: Card,
    code: str,
    points: int,
) -> MyKeyError:
    """What a spend from the holder's wallet sent with its challenge's use and its COMMIT
    (`_gated`) answers when it made nothing: a twin of the request used the challenge first,
    or the refusal the statement raised (not enough points: with the usable points it read
    before the spend)."""
    if isinstance(refused_in_statement, ledger.GateClosed):
        return proofs.challenge_taken(card)
    error = refused_in_statement.error
    if error.code == "insufficient_points":
        return _insufficient(code, int(refused_in_statement.value), points)
    return error


def _gated(alongside: ledger.Alongside, use_id: str | None, now: datetime) -> ledger.Alongside:
    """`alongside` sent with the COMMIT, and, for a proof checked now, with the use of its
    challenge as the transfer's gate: a challenge used already makes nothing."""
    gate, params = proofs.use_gate(use_id, now)
    return replace(alongside, gate=gate, params={**alongside.params, **params}, commit=True)


def _payment(uow: UnitOfWork, shop: TerminalShop, payment_id: UUID | str) -> ShopPayment:
    try:
        pid = payment_id if isinstance(payment_id, UUID) else UUID(str(payment_id))
    except ValueError:
        pid = None
    row = uow.session.get(ShopPayment, pid) if pid else None
    if row is None:
        raise _unknown_payment(payment_id)
    if row.shop_id != shop.id:
        raise _other_shops()
    return row


def _rest(uow: UnitOfWork, row: ShopPayment) -> int:
    return ledger.usable_balance(uow.connection, row.wallet_account_id, tokyo_date(uow.now()))


def _guarded(uow: UnitOfWork, *conditions: Any, **values: Any) -> bool:
    done = uow.session.execute(update(ShopPayment).where(*conditions).values(**values))
    return bool(cast(CursorResult[Any], done).rowcount)


def _partly_refunded() -> MyKeyError:
    return refused(
        "payment_refunded",
        "Part of this payment was refunded already; refund the rest instead.",
        "この支払いは一部返金済みです。残りは返金で処理してください。",
    )


CANCEL_REASON = "cancelled at the counter / 窓口での取消"


def _payment_id(payment_id: UUID | str) -> UUID | None:
    try:
        return payment_id if isinstance(payment_id, UUID) else UUID(str(payment_id))
    except ValueError:
        return None


def _cancellation_answer(uow: UnitOfWork, transfer_id: UUID) -> Cancellation:
    receipt = ledger.get_transfer(uow, transfer_id)
    row = uow.session.get(ShopPayment, receipt.reverses_id)
    if row is None:  # pragma: no cover -- a counter's reversal is always of a payment
        raise RetryTransaction
    return Cancellation(receipt.transfer_id, row.transfer_id, receipt.amount, _rest(uow, row), True)


def cancel(
    uow: UnitOfWork, *, shop_id: str | None, payment_id: UUID | str, actor: str, key: str
) -> Cancellation:
    """Cancel a payment of this shop on the day it was made (a reversal into the same lots).
    Idempotent per (actor, key): a retry answers the first cancellation, even the next day.

    On PostgreSQL two round trips (`_cancel_in_two`)."""
    pid = _payment_id(payment_id)

    def digest() -> str | None:
        if pid is None or not shop_id:
            return None
        return ledger.reverse_request_hash(
            transfer_id=pid, reason=CANCEL_REASON, metadata={"shop": shop_id}
        )

    if uow.dialect == "postgresql" and not uow.in_transaction:
        return _cancel_in_two(
            uow, shop_id=shop_id, payment_id=pid, named=payment_id, actor=actor, key=key,
            digest=digest,
        )  # fmt: skip

    def body() -> Cancellation:
        shop = _here(uow, shop_id)
        row = _payment(uow, shop, payment_id)
        pid = row.transfer_id
        if tokyo_date(row.created_at) != tokyo_date(uow.now()):
            raise _not_same_day()
        if row.refunded and not row.cancelled:
            raise _partly_refunded()
        try:
            receipt = ledger.reverse(
                uow,
                transfer_id=pid,
                actor=actor,
                key=key,
                reason=CANCEL_REASON,
                metadata={"shop": shop.id},
            )
        except MyKeyError as error:
            if error.code == "already_reversed":
                raise _already_cancelled() from error
            raise
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

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: _cancellation_answer(uow, tid),
        body=body,
    )


def _not_same_day() -> MyKeyError:
    return refused(
        "cancel_not_same_day",
        "A payment can be cancelled only on the day it was made; make a refund instead.",
        "支払いの取消は当日のみです。返金の手続きをしてください。",
    )


def _already_cancelled() -> MyKeyError:
    return refused(
        "already_cancelled",
        "This payment has already been cancelled.",
        "この支払いはすでに取り消されています。",
    )


# The cancellation's own guard, as the reversal's gate: only a payment neither cancelled nor
# partly refunded (a refund's gate takes the same row lock).
CANCEL_GATE = (
    "gate AS (UPDATE shop_payments SET cancelled = true"
    " WHERE transfer_id = %(g_payment)s AND NOT cancelled AND refunded = 0 RETURNING 1)"
)
# the wallet's usable points before the cancellation gives the payment back
CANCEL_VALUE = ledger.usable_sql("%(a_wallet)s", "%(a_today)s")


def _cancel_in_two(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    payment_id: UUID | None,
    named: object,
    actor: str,
    key: str,
    digest: Callable[[], str | None],
) -> Cancellation:
    """`cancel` on PostgreSQL in two round trips: BEGIN with one look-up of everything
    (`_paid_facts`), then the payment's guarded update as the gate of its reversal
    (`mykey_reverse`), with the reversal's leaf and the COMMIT (`ledger.Alongside`)."""
    seen: list[tuple[Any, ...]] = []

    def first() -> None:
        seen[:] = [_read_paid(uow, shop_id, payment_id, actor, key)]

    def body() -> Cancellation:
        _checked_paid(seen[0], shop_id, named)
        shop, _, wallet, paid, refunded, cancelled, code, shop_account = seen[0][:8]
        paid_on, kind = seen[0][14:16]
        assert payment_id is not None  # else no payment was found
        now = uow.now()
        if tokyo_date(paid_on) != tokyo_date(now):
            raise _not_same_day()
        if cancelled:
            raise _already_cancelled()
        if refunded:
            raise _partly_refunded()
        alongside = ledger.Alongside(
            ledger=code,
            at=now,
            params={"g_payment": payment_id, "a_wallet": wallet, "a_today": tokyo_date(now)},
            value=CANCEL_VALUE,
            gate=CANCEL_GATE,
            commit=True,
        )
        try:
            receipt = ledger.reverse(
                uow,
                transfer_id=payment_id,
                actor=actor,
                key=key,
                reason=CANCEL_REASON,
                metadata={"shop": shop},
                request_digest=digest(),
                alongside=alongside,
                reversing=ledger.Reversing(code, kind, wallet, shop_account, paid),
                key_looked_up=True,
            )
        except ledger.GateClosed:  # a refund or a cancellation came first: look again
            raise RetryTransaction from None
        except ledger.RefusedInStatement as refusal:
            if refusal.error.code == "already_reversed":
                raise _already_cancelled() from None
            raise refusal.error from None
        balance = int(receipt.alongside) + receipt.amount
        return Cancellation(receipt.transfer_id, payment_id, receipt.amount, balance, False)

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: _cancellation_answer(uow, tid),
        body=body,
        first=first,
        known=lambda hashed: idempotency.Prior(*seen[0][10:14]).outcome(hashed),
        statement_begin=True,
    )


def _refund_lot(uow: UnitOfWork, row: ShopPayment, paid: ledger.Receipt, day: date) -> LotTerms:
    """The refund's lot: the funding source and last day of the latest-expiring lot the
    payment used, or `day` if that has passed."""
    used = {u.lot_id for u in paid.lots_used}
    lots = [
        lot
        for lot in ledger.wallet_lots(uow, row.wallet_account_id, include_used=True)
        if lot.id in used
    ]
    last = max(lots, key=lambda lot: (lot.expires_on, lot.id))
    return LotTerms(last.funding, max(last.expires_on, day))


def _refund_answer(uow: UnitOfWork, transfer_id: UUID) -> Refund:
    receipt = ledger.get_transfer(uow, transfer_id)
    row = uow.session.get(ShopPayment, UUID(str(receipt.metadata.get("payment"))))
    if row is None:  # pragma: no cover -- a counter's refund always names its payment
        raise RetryTransaction
    made = next(
        lot
        for lot in ledger.wallet_lots(uow, row.wallet_account_id, include_used=True)
        if lot.id == receipt.lot_id
    )
    return Refund(
        transfer_id=receipt.transfer_id,
        payment_id=row.transfer_id,
        points=receipt.amount,
        refunded_total=row.refunded,
        balance=_rest(uow, row),
        expires_on=made.expires_on,
        replayed=True,
    )


def refund(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    payment_id: UUID | str,
    points: int,
    actor: str,
    key: str,
) -> Refund:
    """Give back up to what is left of a payment of this shop, as a new transfer. Idempotent
    per (actor, key): a retry answers the first refund, even on another day."""
    _check_points(points)
    pid = _payment_id(payment_id)
    if uow.dialect == "postgresql" and not uow.in_transaction:
        return _refund_in_two(
            uow,
            shop_id=shop_id,
            payment_id=pid,
            named=payment_id,
            points=points,
            actor=actor,
            key=key,
        )

    def digest() -> str | None:
        if pid is None or not shop_id or shop_cache.shop_of(uow, shop_id) is None:
            return None
        return counter.request_digest("refund", shop=shop_id, payment=str(pid), points=points)

    def body() -> Refund:
        shop = _here(uow, shop_id)
        row = _payment(uow, shop, payment_id)
        pid = row.transfer_id
        paid = ledger.get_transfer(uow, pid)
        lot = _refund_lot(uow, row, paid, tokyo_date(uow.now()))
        receipt = ledger.transfer(
            uow,
            debit=paid.credit_account_id,
            credit=row.wallet_account_id,
            amount=points,
            kind=REFUND,
            actor=actor,
            key=key,
            lot=lot,
            metadata={"shop": shop.id, "payment": str(pid)},
            request_digest=digest(),
        )
        if receipt.replayed:  # a twin with this key committed first: its answer
            return _refund_answer(uow, receipt.transfer_id)
        left = row.points - row.refunded
        if row.cancelled:
            raise _cancelled()
        if points > left:
            raise _exceeds(left)
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
            expires_on=lot.expires_on,
            replayed=False,
        )

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: _refund_answer(uow, tid),
        body=body,
    )


def _unknown_payment(payment_id: object) -> MyKeyError:
    return not_found(
        "unknown_payment",
        f"There is no payment {payment_id}.",
        f"支払い {payment_id} は見つかりません。",
    )


def _other_shops() -> MyKeyError:
    return refused(
        "wrong_shop",
        "This payment was made at another shop; only that shop can cancel or refund it.",
        "この支払いは別の店舗でのものです。その店舗でのみ取消・返金できます。",
    )


def _cancelled() -> MyKeyError:
    return refused(
        "payment_cancelled",
        "This payment was cancelled; there is nothing to refund.",
        "この支払いは取り消し済みのため、返金はできません。",
    )


def _exceeds(left: int) -> MyKeyError:
    return refused(
        "refund_exceeds_payment",
        f"At most {left:,} points of this payment can still be refunded.",
        f"この支払いで返金できるのは残り {left:,} ポイントまでです。",
        refundable=left,
    )


# The refund's own guard, as the transfer's gate: only while the payment still covers it.
REFUND_GATE = (
    "gate AS (UPDATE shop_payments SET refunded = refunded + %(g_points)s"
    " WHERE transfer_id = %(g_payment)s AND NOT cancelled"
    " AND refunded + %(g_points)s <= points RETURNING refunded)"
)
# the payment's refunded total after, and the wallet's usable points before the refund
REFUND_VALUE = "jsonb_build_array((SELECT refunded FROM gate), {usable})".format(  # noqa: S608
    usable=ledger.usable_sql("%(a_wallet)s", "%(a_today)s")
)


def _paid_facts() -> Select[Any]:
    """Everything a refund or a cancellation reads, in one statement: the shop, the payment,
    the shop's account it was paid into, the latest-expiring lot it used (a refund's funding
    and last day), what the terminal's key made before (`idempotency.prior_columns`), when the
    payment was made and its transfer's kind."""
    payment: BindParameter[UUID] = bindparam("p_payment")
    p = _PAYMENTS
    last_lot = (
        select(_LOTS.c.funding, _LOTS.c.expires_on)
        .join(_LOT_USES, _LOT_USES.c.lot_id == _LOTS.c.id)
        .where(_LOT_USES.c.transfer_id == payment)
        .order_by(_LOTS.c.expires_on.desc(), _LOTS.c.id.desc())
        .limit(1)
    )
    one = select(literal_column("1").label("one")).subquery("one")
    return select(
        select(_SHOPS.c.id).where(_SHOPS.c.id == bindparam("p_shop")).scalar_subquery(),
        p.c.shop_id,
        p.c.wallet_account_id,
        p.c.points,
        p.c.refunded,
        p.c.cancelled,
        p.c.code,
        select(_TRANSFERS.c.credit_account_id).where(_TRANSFERS.c.id == payment).scalar_subquery(),
        last_lot.with_only_columns(_LOTS.c.funding).scalar_subquery(),
        last_lot.with_only_columns(_LOTS.c.expires_on).scalar_subquery(),
        *idempotency.prior_columns(bindparam("p_actor"), bindparam("p_key")),
        p.c.created_at,
        select(_TRANSFERS.c.kind).where(_TRANSFERS.c.id == payment).scalar_subquery(),
    ).select_from(one.outerjoin(p, p.c.transfer_id == payment))


@cache
def _paid_facts_pg() -> tuple[str, dict[str, Any]]:
    return driver_sql(_paid_facts())


def _read_paid(
    uow: UnitOfWork, shop_id: str | None, payment_id: UUID | None, actor: str, key: str
) -> tuple[Any, ...]:
    """`_paid_facts`, sent with the BEGIN in one round trip."""
    sql, literals = _paid_facts_pg()
    params = {
        **literals,
        "p_shop": shop_id,
        "p_payment": payment_id,
        "p_actor": actor,
        "p_key": key,
    }
    return tuple(send_together(uow, [(sql, params)], begin=True)[0][0])


def _checked_paid(facts: tuple[Any, ...], shop_id: str | None, named: object) -> None:
    """The refusals a refund and a cancellation share: an unknown shop or payment, another
    shop's payment."""
    shop, paid_at = facts[:2]
    if shop is None or not shop_id:
        raise _not_a_shop()
    if paid_at is None:
        raise _unknown_payment(named)
    if paid_at != shop:
        raise _other_shops()


def _refund_in_two(
    uow: UnitOfWork,
    *,
    shop_id: str | None,
    payment_id: UUID | None,
    named: object,
    points: int,
    actor: str,
    key: str,
) -> Refund:
    """`refund` on PostgreSQL in two round trips: BEGIN with one look-up of everything
    (`PG_REFUND_FACTS`), then the payment's guarded update as the gate of the transfer back,
    with its leaf and the COMMIT (`ledger.Alongside`)."""
    seen: list[tuple[Any, ...]] = []

    def first() -> None:
        seen[:] = [_read_paid(uow, shop_id, payment_id, actor, key)]

    def digest() -> str | None:
        if payment_id is None or not shop_id or seen[0][0] is None:
            return None
        return counter.request_digest(
            "refund", shop=shop_id, payment=str(payment_id), points=points
        )

    def body() -> Refund:
        _checked_paid(seen[0], shop_id, named)
        shop, _, wallet, paid, refunded, cancelled, code = seen[0][:7]
        shop_account, funding, last = seen[0][7:10]
        assert payment_id is not None  # else no payment was found
        if cancelled:
            raise _cancelled()
        if points > paid - refunded:
            raise _exceeds(paid - refunded)
        now = uow.now()
        today = tokyo_date(now)
        lot = LotTerms(funding, max(last, today))
        alongside = ledger.Alongside(
            ledger=code,
            at=now,
            params={
                "g_points": points,
                "g_payment": payment_id,
                "a_wallet": wallet,
                "a_today": today,
            },
            value=REFUND_VALUE,
            gate=REFUND_GATE,
            commit=True,
        )
        try:
            receipt = ledger.transfer(
                uow,
                debit=shop_account,
                credit=wallet,
                amount=points,
                kind=REFUND,
                actor=actor,
                key=key,
                lot=lot,
                metadata={"shop": shop, "payment": str(payment_id)},
                request_digest=digest(),
                alongside=alongside,
                key_looked_up=True,
            )
        except ledger.GateClosed:  # another refund or a cancellation came first: look again
            raise RetryTransaction from None
        except ledger.RefusedInStatement as refusal:
            raise refusal.error from None
        refunded_total, usable_before = receipt.alongside
        return Refund(
            transfer_id=receipt.transfer_id,
            payment_id=payment_id,
            points=receipt.amount,
            refunded_total=int(refunded_total),
            balance=int(usable_before) + points,
            expires_on=lot.expires_on,
            replayed=False,
        )

    return counter.run_keyed(
        uow,
        actor=actor,
        key=key,
        digest=digest,
        replay=lambda tid: _refund_answer(uow, tid),
        body=body,
        first=first,
        known=lambda hashed: idempotency.Prior(*seen[0][10:14]).outcome(hashed),
        statement_begin=True,
    )


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

    return uow.read(body)


def payment_at(uow: UnitOfWork, *, shop_id: str, payment_id: UUID | str) -> TodaysPayment:
    """One payment of this shop, as the counter shows it after paying or cancelling (no
    resident shown); `unknown_payment` for another shop's or none."""

    def body() -> TodaysPayment:
        pid = _payment_id(payment_id)
        row = uow.session.get(ShopPayment, pid) if pid else None
        if row is None or row.shop_id != shop_id:
            raise not_found(
                "unknown_payment",
                f"There is no payment {payment_id} at this shop.",
                f"この店舗に支払い {payment_id} はありません。",
            )
        return TodaysPayment(
            row.transfer_id,
            row.code,
            row.points,
            row.refunded,
            row.cancelled,
            row.receipt_ref,
            row.created_at,
        )

    return uow.read(body)
