"""Rankings (R4.5): the residents who earned the most points in a program over a period.

Bungotakada gives the top 200 with 5,000 or more health-walk points a set of shopping-street
vouchers. `rank` answers the question from the ledger in one aggregate query: the grants
(transfers of kind `grant` from the municipality's budget, to a wallet or an accrual account)
credited in the period, of one activity or all, less none (a reversed grant does not count at
all). Ties are broken by who reached their total first (the earlier last counted grant), then
by MyKey ID, so the same ledger always gives the same order.

`award_ranking` turns a ranking into prizes: the ranking is saved as it was (a voucher issue
can use the saved ranking later) under the municipality's idempotency key (whichever of its
staff sends it), and each ranked resident is granted points with a key derived from it, or
given prize vouchers (`vouchers.issue_prize`: N vouchers of D points from the budget, valid at
a shopping street or a set of shops for V days), or both, so running the award again, by
anyone of the town, gives once. An award of one ranking (activity and period) is made once:
another key for it gets the same answer, or `ranking_already_awarded` when it asks for
something else.
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
from mykey.ledger.errors import key_reused
from mykey.ledger.idempotency import same_request, scope, serialise
from mykey.ledger.models import AccountRow, TransferRow
from mykey.municipalities.codes import parse_code
from mykey.points.grants import grant_points
from mykey.points.models import (
    Accrual,
    RankingAward,
    RankingAwardEntry,
    RankingAwardPrize,
    RankingAwardShop,
    Voucher,
)
from mykey.points.program_setup import program_of
from mykey.points.vouchers import (
    EXPIRED,
    REDEEMED,
    PrizeTerms,
    check_prize_place,
    check_prize_terms,
    issue_prize,
)

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
    return uow.read(lambda: _rank(uow, municipality, activity, start, end, top, minimum))


# ---------------------------------------------------------------------------------------------
# awards


@dataclass(frozen=True)
class AwardOutcome:
    rank: int
    mykey_id: str
    earned: int
    status: str  # granted | already (by an earlier run) | refused
    transfer_id: str | None = None  # the points' grant
    code: str | None = None  # why it was refused
    message: str | None = None
    message_ja: str | None = None
    voucher_batch: str | None = None  # the prize vouchers' issue (its transfer id)
    vouchers: tuple[str, ...] = ()  # their numbers, in order


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
    replayed: bool = False  # the award was made before (under this key, or of this ranking)
    prize: PrizeTerms | None = None  # the vouchers each resident gets, if any


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
    points: int = 0,
    reason: str,
    actor: str,
    key: str,
    vouchers: PrizeTerms | None = None,
    progress: Callable[[int], None] | None = None,
) -> AwardReport:
    """Give every resident of the ranking `points` (a grant with `reason`), prize `vouchers`
    (`vouchers.issue_prize`), or both.

    The key is the municipality's, not the sender's: the first run with a key saves the
    ranking; a run again with the same key and request, by the same or another staff member of
    the town, uses the saved ranking (not a new one) and gives each resident under the first
    run's actor and derived key (`{key}:{mykey_id}`), so nobody is granted twice and nobody is
    issued a second set of vouchers (`replayed`); with the same key and another request it is
    `idempotency_key_reused`. A ranking (activity and period) is awarded once: the same request
    under a new key gets the saved award (`replayed`), another request
    `ranking_already_awarded`. Each resident's prize (points and vouchers together) is its own
    transaction: a refusal (the annual budget, say) is reported and does not undo the others;
    it is not kept (the grant runs inside that transaction), so a run again after the budget
    is raised gives the rest."""
    code = parse_code(municipality)
    _check_query(activity, start, end, top, minimum)
    if vouchers is not None:
        vouchers = check_prize_terms(vouchers)
    # 0 points is allowed when the prize is vouchers
    POINTS.check(points, 0 if vouchers is not None else 1, MAX_AWARD_POINTS, "points")
    if not reason.strip() or len(reason) > 200:
        raise invalid("invalid_reason", "A grant needs a reason.", "付与理由が必要です。")
    if not isinstance(key, str) or not AWARD_KEY.fullmatch(key):
        raise invalid(
            "invalid_idempotency_key",
            "An award's key is 1 to 100 characters of A-Z, a-z, 0-9 and . _ : - ,"
            " starting with a letter or digit.",
            "冪等キーは英数字と . _ : - からなる 1〜100 文字で、英数字で始めてください。",
        )
    # An award is the municipality's, whoever sends it: its key is the municipality's, and its
    # id (the ranking it awards) is by nature once per activity and period.
    award_id = str(uuid5(NAMESPACE_URL, f"mykey:award:{code}\n{activity or ''}\n{start}\n{end}"))
    fields: dict[str, object] = {
        "code": code,
        "activity": activity,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "top": top,
        "minimum": minimum,
        "points": points,
        "reason": reason,
    }
    if vouchers is not None:  # (absent for points only, so earlier awards keep their hash)
        fields["vouchers"] = vars(vouchers)
    digest = _award_hash(fields)

    def save() -> tuple[Ranking, str, str, str, bool]:
        s = uow.session
        serialise(uow.connection, scope("ranking_award", code), key)
        row = _award_by_key(uow, code, key) or _award_of_period(uow, code, activity, start, end)
        if row is None:
            if vouchers is not None:
                check_prize_place(uow, code, vouchers)
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
            if vouchers is not None:
                _save_prize(uow, award_id, vouchers)
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
            return ranking, award_id, actor, key, False
        if not same_request(row.request_hash, digest):
            if row.key == key:
                raise key_reused()
            raise _already_awarded(row)
        return saved_ranking(uow, row.id), row.id, row.actor, row.key, True

    # The winners are granted under the first sender's actor and key, so that a second staff
    # member running the same award finds each grant already made.
    ranking, award_id, actor, key, replayed = uow.run(save)
    outcomes = []
    for r in ranking.rows:

        def give(r: Ranked = r) -> AwardOutcome:
            """One resident's prize, points and vouchers in one transaction."""
            fresh = False
            transfer_id: str | None = None
            batch: str | None = None
            numbers: tuple[str, ...] = ()
            if points:
                receipt = grant_points(
                    uow,
                    municipality=code,
                    mykey_id=r.mykey_id,
                    actor=actor,
                    key=f"{key}:{r.mykey_id}",
                    reason=reason,
                    points=points,
                )
                fresh, transfer_id = not receipt.replayed, str(receipt.transfer_id)
            if vouchers is not None:
                issued = issue_prize(
                    uow,
                    municipality=code,
                    mykey_id=r.mykey_id,
                    award_id=award_id,
                    terms=vouchers,
                    actor=actor,
                    key=f"{key}:{r.mykey_id}:vouchers",
                )
                fresh = fresh or not issued.replayed
                batch = str(issued.receipt.transfer_id)
                numbers = tuple(v.number for v in issued.vouchers)
            return AwardOutcome(
                r.rank,
                r.mykey_id,
                r.points,
                "granted" if fresh else "already",
                transfer_id,
                voucher_batch=batch,
                vouchers=numbers,
            )

        try:
            outcomes.append(uow.run(give))
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
        replayed=replayed,
        prize=vouchers,
    )


def _award_by_key(uow: UnitOfWork, code: str, key: str) -> RankingAward | None:
    """The municipality's award made under this key (by any of its staff)."""
    return uow.session.scalars(
        select(RankingAward)
        .where(RankingAward.code == code, RankingAward.key == key)
        .order_by(RankingAward.created_at, RankingAward.id)
    ).first()


def _award_of_period(
    uow: UnitOfWork, code: str, activity: str | None, start: date, end: date
) -> RankingAward | None:
    """The municipality's award of this ranking (activity and period), under any key."""
    same_activity = (
        RankingAward.activity.is_(None) if activity is None else RankingAward.activity == activity
    )
    return uow.session.scalars(
        select(RankingAward)
        .where(
            RankingAward.code == code,
            same_activity,
            RankingAward.start_on == start,
            RankingAward.end_on == end,
        )
        .order_by(RankingAward.created_at, RankingAward.id)
    ).first()


def _already_awarded(row: RankingAward) -> MyKeyError:
    period = f"{row.start_on}..{row.end_on}"
    return conflict(
        "ranking_already_awarded",
        f"This ranking ({row.activity or 'every activity'}, {period}) was already awarded"
        f" (award {row.id}); an award is made once. The same request answers with it.",
        f"このランキング（{row.activity or 'すべての活動'}、{period}）は付与済みです"
        f"（付与 {row.id}）。付与は一度だけです。同じ内容で送ると結果を確認できます。",
        award_id=row.id,
    )


def _save_prize(uow: UnitOfWork, award_id: str, terms: PrizeTerms) -> None:
    s = uow.session
    s.add(
        RankingAwardPrize(
            award_id=award_id,
            count=terms.count,
            face_value=terms.face_value,
            valid_days=terms.valid_days,
            street_id=terms.street_id,
        )
    )
    s.add_all(RankingAwardShop(award_id=award_id, shop_id=shop) for shop in terms.shop_ids)
    s.flush()


def _prize_of(uow: UnitOfWork, award_id: str) -> PrizeTerms | None:
    s = uow.session
    row = s.get(RankingAwardPrize, award_id)
    if row is None:
        return None
    shops = s.scalars(
        select(RankingAwardShop.shop_id)
        .where(RankingAwardShop.award_id == award_id)
        .order_by(RankingAwardShop.shop_id)
    )
    return PrizeTerms(row.count, row.face_value, row.valid_days, row.street_id, tuple(shops))


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

    return uow.read(body)


# ---------------------------------------------------------------------------------------------
# awards as staff see them later (the console, the API, the CLI)


@dataclass(frozen=True)
class Winner:
    rank: int
    mykey_id: str
    earned: int
    voucher_batch: str | None  # the transfer id of their prize vouchers' issue
    vouchers: int  # prize vouchers issued to them
    redeemed: int
    expired: int


@dataclass(frozen=True)
class AwardView:
    award_id: str
    municipality: str
    activity: str | None
    start: date
    end: date
    top: int
    minimum: int
    points: int
    reason: str
    prize: PrizeTerms | None
    created_at: datetime
    winners: tuple[Winner, ...] = ()  # (empty in a list of awards)


def _unknown_award(award_id: str) -> MyKeyError:
    return not_found(
        "unknown_award", f"There is no award {award_id}.", f"付与 {award_id} はありません。"
    )


def _award_view(uow: UnitOfWork, row: RankingAward, winners: tuple[Winner, ...]) -> AwardView:
    return AwardView(
        award_id=row.id,
        municipality=row.code,
        activity=row.activity,
        start=row.start_on,
        end=row.end_on,
        top=row.top,
        minimum=row.minimum,
        points=row.points,
        reason=row.reason,
        prize=_prize_of(uow, row.id),
        created_at=row.created_at,
        winners=winners,
    )


def get_award(uow: UnitOfWork, award_id: str, *, municipality: str) -> AwardView:
    """An award of `municipality` with its winners and their prize vouchers (`unknown_award`,
    404, for an award of another municipality, as for one that does not exist)."""
    code = parse_code(municipality)

    def body() -> AwardView:
        s = uow.session
        row = s.get(RankingAward, award_id) if isinstance(award_id, str) else None
        if row is None or row.code != code:
            raise _unknown_award(str(award_id))
        counts: dict[str, dict[str, int]] = {}
        batches: dict[str, str] = {}
        for who, status, batch, n in s.execute(
            select(Voucher.mykey_id, Voucher.status, Voucher.issue_transfer_id, func.count())
            .where(Voucher.award_id == award_id)
            .group_by(Voucher.mykey_id, Voucher.status, Voucher.issue_transfer_id)
        ):
            counts.setdefault(str(who), {})[str(status)] = int(n)
            batches[str(who)] = str(batch)
        entries = s.scalars(
            select(RankingAwardEntry)
            .where(RankingAwardEntry.award_id == award_id)
            .order_by(RankingAwardEntry.rank)
        )
        winners = tuple(
            Winner(
                rank=e.rank,
                mykey_id=e.mykey_id,
                earned=e.earned,
                voucher_batch=batches.get(e.mykey_id),
                vouchers=sum(counts.get(e.mykey_id, {}).values()),
                redeemed=counts.get(e.mykey_id, {}).get(REDEEMED, 0),
                expired=counts.get(e.mykey_id, {}).get(EXPIRED, 0),
            )
            for e in entries
        )
        return _award_view(uow, row, winners)

    return uow.read(body)


def list_awards(uow: UnitOfWork, *, municipality: str, limit: int = 20) -> list[AwardView]:
    """The municipality's latest awards, newest first (without their winners)."""
    code = parse_code(municipality)

    def body() -> list[AwardView]:
        rows = uow.session.scalars(
            select(RankingAward)
            .where(RankingAward.code == code)
            .order_by(RankingAward.created_at.desc(), RankingAward.id)
            .limit(limit)
        )
        return [_award_view(uow, row, ()) for row in rows]

    return uow.read(body)
