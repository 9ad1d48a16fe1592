"""Rankings (R4.5): the residents who earned the most points in a program over a period.

Bungotakada gives the top 200 with 5,000 or more health-walk points a set of shopping-street
vouchers. `rank` answers the question from the ledger in one aggregate query: the grants
(transfers of kind `grant` from the municipality's budget, to a wallet or an accrual account)
credited in the period, of one activity or all, less none (a reversed grant does not count at
all). Ties are broken by who reached their total first (the earlier last counted grant), then
by MyKey ID, so the same ledger always gives the same order.

`award_ranking` turns a ranking into grants: the ranking is saved as it was (a voucher issue
can use the saved ranking later) under the staff member's idempotency key, and each ranked
resident is granted points with a key derived from it, so running the award again grants once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import ColumnElement, String, cast, exists, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import TOKYO, RetryTransaction, UnitOfWork
from mykey.errors import COUNT, MAX_POINTS, POINTS, MyKeyError, conflict, invalid, not_found
from mykey.ledger import AccountKind
from mykey.ledger.models import AccountRow, TransferRow
from mykey.municipalities.codes import parse_code
from mykey.points.grants import grant_points
from mykey.points.models import Accrual, RankingAward, RankingAwardEntry
from mykey.points.program_setup import program_of

MAX_TOP = 10_000
MAX_AWARD_POINTS = 10**9  # the most points one ranked resident is awarded
MAX_DAYS = 3 * 366
AWARD_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
ACTIVITY = re.compile(r"[a-z0-9_]{1,32}")


@dataclass(frozen=True)
class Ranked:
    rank: int  # 1, 2, 3 … (ties broken as the module says)
    mykey_id: str
    points: int  # earned in the period
    reached_at: datetime  # when the last grant that counts was credited


@dataclass(frozen=True)
class Ranking:
    municipality: str
    activity: str | None  # None: every activity and every grant with a reason
    start: date  # Tokyo dates, both included
    end: date
    top: int
    minimum: int
    rows: tuple[Ranked, ...]


def _check_query(activity: str | None, start: date, end: date, top: int, minimum: int) -> None:
    if activity is not None and not ACTIVITY.fullmatch(activity):
        raise invalid(
            "invalid_activity",
            "An activity is a short name of the program's rules, such as health_walk.",
            "活動名は health_walk のような付与ルールの短い名前で指定してください。",
        )
    if end < start or (end - start).days > MAX_DAYS:
        raise invalid(
            "invalid_period",
            f"A period runs from a day to the same or a later day, at most {MAX_DAYS} days.",
            f"期間は開始日から終了日まで（{MAX_DAYS} 日以内）で指定してください。",
        )
    COUNT.check(top, 1, MAX_TOP, "top")
    POINTS.check(minimum, 0, MAX_POINTS, "minimum")


def _tokyo_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), TOKYO).astimezone(UTC)


def _activity_of(uow: UnitOfWork) -> ColumnElement[str]:
    meta = TransferRow.__table__.c.metadata
    if uow.dialect == "postgresql":
        text: ColumnElement[str] = cast(meta, JSONB)["activity"].astext
        return text
    return cast(func.json_extract(meta, "$.activity"), String)


def _rank(
    uow: UnitOfWork,
    code: str,
    activity: str | None,
    start: date,
    end: date,
    top: int,
    minimum: int,
) -> Ranking:
    program_of(uow, code)
    budget = ledger.find_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
    t = TransferRow
    reversal = TransferRow.__table__.alias("reversal")
    who = func.coalesce(Accrual.mykey_id, AccountRow.owner)
    earned = func.sum(t.amount)
    reached = func.max(t.created_at)
    stmt = (
        select(who.label("who"), earned.label("earned"), reached.label("reached"))
        .select_from(t)
        .join(AccountRow, AccountRow.id == t.credit_account_id)
        .outerjoin(Accrual, Accrual.account_id == t.credit_account_id)
        .where(
            t.ledger == code,
            t.kind == "grant",
            t.created_at >= _tokyo_midnight(start),
            t.created_at < _tokyo_midnight(end + timedelta(days=1)),
            t.phase == "single",
            t.debit_account_id == budget.id,
            AccountRow.kind.in_([AccountKind.WALLET.value, AccountKind.ACCRUAL.value]),
            ~exists().where(reversal.c.reverses_id == t.id),
        )
        .group_by(who)
        .having(earned >= minimum)
        .order_by(earned.desc(), reached.asc(), who.asc())
        .limit(top)
    )
    if activity is not None:
        stmt = stmt.where(_activity_of(uow) == activity)
    rows = uow.session.execute(stmt).all()
    return Ranking(
        municipality=code,
        activity=activity,
        start=start,
        end=end,
        top=top,
        minimum=minimum,
        rows=tuple(
            Ranked(n, str(r.who), int(r.earned), r.reached) for n, r in enumerate(rows, start=1)
        ),
    )


def rank(
    uow: UnitOfWork,
    code: str,
    activity: str | None,
    start: date,
    end: date,
    top: int,
    minimum: int,
) -> Ranking:
    """The top `top` residents by points granted in the program from `start` to `end` (Tokyo
    dates, both included), of `activity` (or of every grant), with at least `minimum`."""
    municipality = parse_code(code)
    _check_query(activity, start, end, top, minimum)
    return uow.run(lambda: _rank(uow, municipality, activity, start, end, top, minimum))


# ---------------------------------------------------------------------------------------------
# awards


@dataclass(frozen=True)
class AwardOutcome:
    rank: int
    mykey_id: str
    earned: int
    status: str  # granted | already (by an earlier run) | refused
    transfer_id: str | None = None
    code: str | None = None  # why it was refused
    message: str | None = None
    message_ja: str | None = None


@dataclass(frozen=True)
class AwardReport:
    award_id: str
    ranking: Ranking  # as saved by the first run
    points: int
    reason: str
    granted: int
    already: int
    refused: int
    outcomes: tuple[AwardOutcome, ...]


def _award_hash(fields: dict[str, object]) -> str:
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def award_ranking(
    uow: UnitOfWork,
    *,
    municipality: str,
    activity: str | None,
    start: date,
    end: date,
    top: int,
    minimum: int,
    points: int,
    reason: str,
    actor: str,
    key: str,
    progress: Callable[[int], None] | None = None,
) -> AwardReport:
    """Grant `points` to every resident of the ranking, with `reason`.

    The first run with a key saves the ranking; a run again with the same key and query uses
    the saved ranking (not a new one) and grants each resident with the same derived key
    (`{key}:{mykey_id}`), so nobody is granted twice; with the same key and another query it is
    `idempotency_key_reused`. Each resident's grant is its own transaction: a refusal (the
    annual budget, say) is reported and does not undo the others."""
    code = parse_code(municipality)
    _check_query(activity, start, end, top, minimum)
    POINTS.check(points, 1, MAX_AWARD_POINTS, "points")
    if not reason.strip() or len(reason) > 200:
        raise invalid("invalid_reason", "A grant needs a reason.", "付与理由が必要です。")
    if not isinstance(key, str) or not AWARD_KEY.fullmatch(key):
        raise invalid(
            "invalid_idempotency_key",
            "An award's key is 1 to 100 characters of A-Z, a-z, 0-9 and . _ : - ,"
            " starting with a letter or digit.",
            "冪等キーは英数字と . _ : - からなる 1〜100 文字で、英数字で始めてください。",
        )
    award_id = str(uuid5(NAMESPACE_URL, f"mykey:award:{actor}\n{key}"))
    digest = _award_hash(
        {
            "code": code,
            "activity": activity,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "top": top,
            "minimum": minimum,
            "points": points,
            "reason": reason,
        }
    )

    def save() -> Ranking:
        s = uow.session
        row = s.get(RankingAward, award_id)
        if row is None:
            ranking = _rank(uow, code, activity, start, end, top, minimum)
            s.add(
                RankingAward(
                    id=award_id,
                    code=code,
                    actor=actor,
                    key=key,
                    request_hash=digest,
                    activity=activity,
                    start_on=start,
                    end_on=end,
                    top=top,
                    minimum=minimum,
                    points=points,
                    reason=reason,
                    created_at=uow.now(),
                )
            )
            try:
                s.flush()
            except IntegrityError as exc:  # a twin run saved it first
                raise RetryTransaction from exc
            s.add_all(
                RankingAwardEntry(
                    award_id=award_id,
                    rank=r.rank,
                    mykey_id=r.mykey_id,
                    earned=r.points,
                    reached_at=r.reached_at,
                )
                for r in ranking.rows
            )
            s.flush()
            return ranking
        if row.request_hash != digest:
            raise conflict(
                "idempotency_key_reused",
                "This key was used for another award; use a new key.",
                "この冪等キーは別の付与に使われています。新しいキーを使ってください。",
            )
        return saved_ranking(uow, award_id)

    ranking = uow.run(save)
    outcomes = []
    for r in ranking.rows:
        try:
            receipt = grant_points(
                uow,
                municipality=code,
                mykey_id=r.mykey_id,
                actor=actor,
                key=f"{key}:{r.mykey_id}",
                reason=reason,
                points=points,
            )
            outcomes.append(
                AwardOutcome(
                    r.rank,
                    r.mykey_id,
                    r.points,
                    "already" if receipt.replayed else "granted",
                    str(receipt.transfer_id),
                )
            )
        except MyKeyError as error:
            outcomes.append(
                AwardOutcome(
                    r.rank,
                    r.mykey_id,
                    r.points,
                    "refused",
                    code=error.code,
                    message=error.message,
                    message_ja=error.message_ja,
                )
            )
        if progress is not None:
            progress(1)
    return AwardReport(
        award_id=award_id,
        ranking=ranking,
        points=points,
        reason=reason,
        granted=sum(o.status == "granted" for o in outcomes),
        already=sum(o.status == "already" for o in outcomes),
        refused=sum(o.status == "refused" for o in outcomes),
        outcomes=tuple(outcomes),
    )


def saved_ranking(uow: UnitOfWork, award_id: str) -> Ranking:
    """The ranking an award was made from, as it was then (for a later voucher issue)."""

    def body() -> Ranking:
        s = uow.session
        row = s.get(RankingAward, award_id)
        if row is None:
            raise not_found(
                "unknown_award", f"There is no award {award_id}.", f"付与 {award_id} はありません。"
            )
        entries = s.scalars(
            select(RankingAwardEntry)
            .where(RankingAwardEntry.award_id == award_id)
            .order_by(RankingAwardEntry.rank)
        )
        return Ranking(
            municipality=row.code,
            activity=row.activity,
            start=row.start_on,
            end=row.end_on,
            top=row.top,
            minimum=row.minimum,
            rows=tuple(Ranked(e.rank, e.mykey_id, e.earned, e.reached_at) for e in entries),
        )

    return uow.run(body)
