"""Administrative points (R4): staff grant a resident points from the municipality's budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn, cast
from uuid import UUID

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import MAX_POINTS, POINTS, invalid, not_found, refused
from mykey.identity import proofs
from mykey.identity.binding import holder_of
from mykey.identity.links import mykey_id_of_card
from mykey.identity.models import Resident
from mykey.identity.proofs import Card, VerifiedCard, claimed_card_key
from mykey.identity.residents import normalise_mykey_id
from mykey.ledger import AccountKind, LotTerms
from mykey.ledger.idempotency import keyed_write, prior_transfer, request_hash, scope
from mykey.municipalities.codes import parse_code
from mykey.points.accruals import accrual_account
from mykey.points.models import BudgetUse, GrantLimitUse, PremiumUse
from mykey.points.program_setup import Program, Rule, program_of
from mykey.points.programs import expires_on, fiscal_year_end, fiscal_year_of


def _period(limit: str, today: date, event: str | None) -> str:
    if limit == "event":
        return f"event:{event}"
    if limit == "day":
        return f"day:{today.isoformat()}"
    return f"fy:{fiscal_year_of(today)}"


def _use_limit(
    uow: UnitOfWork, code: str, activity: str, who: str, period: str, receipt: ledger.Receipt
) -> None:
    s = uow.session
    if s.get(GrantLimitUse, (code, activity, who, period)) is not None:
        raise refused(
            "limit_reached",
            f"{who} has already been granted {activity!r} for {period}.",
            f"{who} には {period} の {activity!r} を付与済みです。",
            period=period,
        )
    s.add(
        GrantLimitUse(
            code=code,
            activity=activity,
            mykey_id=who,
            period=period,
            transfer_id=str(receipt.transfer_id),
        )
    )
    try:
        s.flush()
    except IntegrityError as exc:  # a twin grant for the same period committed first
        raise RetryTransaction from exc


def add_within_cap(
    uow: UnitOfWork,
    model: type[BudgetUse] | type[PremiumUse],
    code: str,
    fiscal_year: int,
    amount: int,
    cap: int,
) -> bool:
    """Count `amount` against a program's yearly cap (its budget, its premium budget): one
    guarded update, which also serialises the writers of a capped program. False, and nothing
    counted, when it does not fit."""
    s = uow.session
    if s.get(model, (code, fiscal_year)) is None:
        s.add(model(code=code, fiscal_year=fiscal_year, granted=0))
        try:
            s.flush()
        except IntegrityError as exc:
            raise RetryTransaction from exc
    done = s.execute(
        update(model)
        .where(
            model.code == code,
            model.fiscal_year == fiscal_year,
            model.granted + amount <= cap,
        )
        .values(granted=model.granted + amount)
    )
    return bool(cast(CursorResult[Any], done).rowcount)


def _use_budget(uow: UnitOfWork, code: str, fiscal_year: int, amount: int, cap: int) -> None:
    """Count the grant against the program's budget for the year, or refuse it."""
    if not add_within_cap(uow, BudgetUse, code, fiscal_year, amount, cap):
        used = uow.session.execute(
            select(BudgetUse.granted).where(
                BudgetUse.code == code, BudgetUse.fiscal_year == fiscal_year
            )
        ).scalar_one()
        raise refused(
            "budget_exceeded",
            f"This grant would exceed the program's budget for the year ({used:,} of {cap:,}"
            " points granted).",
            f"年間予算を超えるため付与できません（付与済み {used:,} / 予算 {cap:,} ポイント）。",
            granted=used,
            budget=cap,
        )


def rule_for(program: Program, activity: str, event: str | None) -> Rule:
    """The program's rule for `activity`; an activity limited once per event needs the event."""
    rule = next((r for r in program.rules if r.activity == activity), None)
    if rule is None:
        raise not_found(
            "unknown_activity",
            f"The program has no activity {activity!r}.",
            f"付与ルールに活動 {activity!r} はありません。",
        )
    if rule.limit == "event" and not (event and len(event) <= 60):
        raise invalid(
            "event_required",
            f"{activity!r} is granted once per event: name the event.",
            f"{activity!r} はイベントごとに一回の付与です。イベント名を指定してください。",
        )
    return rule


@dataclass(frozen=True)
class GrantReceipt:
    transfer_id: UUID
    municipality: str
    mykey_id: str
    points: int
    balance: int
    expires_on: date  # of an accruing grant: the last day of its accrual year
    replayed: bool
    accrued: bool = False  # credited to the resident's accrual account (R4.3), not the wallet


def _check_request(activity: str | None, points: int | None, reason: str) -> None:
    if (activity is None) == (points is None):
        raise invalid(
            "invalid_grant",
            "Name an activity of the program's rules, or give points (not both).",
            "付与ルールの活動名、またはポイント数のどちらか一方を指定してください。",
        )
    if points is not None:  # before anything is looked up: a bad number is invalid_points
        POINTS.check(points, 1, MAX_POINTS, "points")
    if not reason.strip() or len(reason) > 200:
        raise invalid("invalid_reason", "A grant needs a reason.", "付与理由が必要です。")


def grant_points(
    uow: UnitOfWork,
    *,
    municipality: str,
    mykey_id: str,
    actor: str,
    key: str,
    reason: str,
    activity: str | None = None,
    points: int | None = None,
    event: str | None = None,
) -> GrantReceipt:
    """Grant points for an activity of the program's rules (its points), or a given number of
    points with a reason (a life event, say). The same key from the same actor grants once:
    the same request again gets the first receipt (`replayed`), another request under the key
    is `idempotency_key_reused`.

    A rule's limit (once per person per event, day or fiscal year) and the program's annual
    budget are checked in the same transaction; a refusal grants nothing, and is stored under
    the key: the same request again is refused again (`details.replayed`), even once the
    budget allows it."""
    code = parse_code(municipality)
    who = normalise_mykey_id(mykey_id)
    _check_request(activity, points, reason)
    return _grant(
        uow,
        code=code,
        who=who,
        actor=actor,
        key=key,
        reason=reason,
        activity=activity,
        points=points,
        event=event,
        card=None,
    )


def _unregistered(uow: UnitOfWork, card: VerifiedCard) -> NoReturn:
    mykey_id_of_card(uow, card)  # card_not_registered, in words
    raise not_found(  # linked since the key was looked up: tap again
        "card_not_registered",
        "This card has no MyKey ID yet.",
        "このカードにはまだマイキーIDがありません。",
    )


def grant_points_by_card(
    uow: UnitOfWork,
    *,
    municipality: str,
    card: Card,
    actor: str,
    key: str,
    reason: str,
    activity: str | None = None,
    points: int | None = None,
    event: str | None = None,
) -> GrantReceipt:
    """`grant_points` at an event desk, to the holder of a tapped card. The key is looked up
    first, with the MyKey ID the card's certificate names (read without checking the proof):
    the same request again — byte for byte after a lost answer, its challenge used — gets the
    first receipt (`replayed`) without a new tap, or the stored refusal. Otherwise the card's
    proof is checked in the grant's own transaction: a refused grant leaves the tap usable and
    is stored under the key; a failed proof is recorded and never stored under the key (the
    right card may follow)."""
    code = parse_code(municipality)
    _check_request(activity, points, reason)
    who = uow.read(lambda: holder_of(uow, claimed_card_key(card)))
    if who is None:  # no MyKey ID to look a key up for: the proof's refusal, or this one
        return proofs.with_card(uow, card, lambda verified: _unregistered(uow, verified))
    try:
        return _grant(
            uow,
            code=code,
            who=who,
            actor=actor,
            key=key,
            reason=reason,
            activity=activity,
            points=points,
            event=event,
            card=card,
        )
    except proofs.CardProofError as failed:
        proofs.record_failure(uow, failed)
        raise


def _grant(
    uow: UnitOfWork,
    *,
    code: str,
    who: str,
    actor: str,
    key: str,
    reason: str,
    activity: str | None,
    points: int | None,
    event: str | None,
    card: Card | None,
) -> GrantReceipt:
    digest = request_hash(
        "grant",
        {
            "municipality": code,
            "mykey_id": who,
            "activity": activity,
            "points": points,
            "event": event,
            "reason": reason,
        },
    )

    def receipt_of(transfer_id: UUID, *, replayed: bool) -> GrantReceipt:
        receipt = ledger.get_transfer(uow, transfer_id)
        return GrantReceipt(
            transfer_id=receipt.transfer_id,
            municipality=code,
            mykey_id=who,
            points=receipt.amount,
            balance=ledger.balance(uow, receipt.credit_account_id).available,
            expires_on=date.fromisoformat(str(receipt.metadata["expires_on"])),
            replayed=replayed,
            accrued="accrual_year" in receipt.metadata,
        )

    def stored() -> tuple[str | None, GrantReceipt] | None:
        prior = prior_transfer(uow.connection, actor, key)
        return None if prior is None else (prior[1], receipt_of(prior[0], replayed=True))

    def body() -> GrantReceipt:
        if card is not None:  # at an event desk: the card proves who, in this transaction
            holder = mykey_id_of_card(uow, proofs.verify_in_transaction(uow, card))
            if holder != who:  # pragma: no cover -- a card key names one MyKey ID for good
                raise RetryTransaction
        program = program_of(uow, code)
        amount = points
        rule = None
        if activity is not None:
            rule = rule_for(program, activity, event)
            amount = rule.points
        assert amount is not None
        if uow.session.get(Resident, who) is None:
            raise not_found(
                "unknown_mykey_id",
                f"There is no MyKey ID {who}.",
                f"マイキーID {who} は存在しません。",
            )
        budget = ledger.find_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        granted_on = tokyo_date(uow.now())
        metadata: dict[str, object]
        if rule is not None and rule.accrues:
            year = fiscal_year_of(granted_on)
            wallet = accrual_account(uow, code, year, who)
            last_day = fiscal_year_end(granted_on)
            lot = None
            metadata = {
                "activity": activity or "",
                "reason": reason,
                "expires_on": str(last_day),
                "accrual_year": year,
            }
        else:
            wallet = ledger.open_account(uow, ledger=code, kind=AccountKind.WALLET, owner=who)
            last_day = expires_on(program.validity, "budget", granted_on)
            lot = LotTerms("budget", last_day)
            metadata = {"activity": activity or "", "reason": reason, "expires_on": str(last_day)}
        receipt = ledger.transfer(
            uow,
            debit=budget.id,
            credit=wallet.id,
            amount=amount,
            kind="grant",
            actor=actor,
            key=key,
            lot=lot,
            metadata=metadata,
            request_digest=digest,
        )
        today = tokyo_date(uow.now())
        if rule is not None and rule.limit != "none":
            _use_limit(uow, code, rule.activity, who, _period(rule.limit, today, event), receipt)
        if program.annual_budget is not None:
            _use_budget(uow, code, fiscal_year_of(today), amount, program.annual_budget)
        return receipt_of(receipt.transfer_id, replayed=False)

    return keyed_write(
        uow,
        scope=scope("grant", actor),
        key=key,
        digest=digest,
        stored=stored,
        act=body,
        keep=lambda error: not isinstance(error, proofs.CardProofError),
    )
