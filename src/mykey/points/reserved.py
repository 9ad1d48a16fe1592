"""Reserved points (留保ポイント, R3.3): converted before the resident chose a municipality.

They live on the ledger `reserved`: the partner's account there is debited and the resident's
reserved wallet credited, one lot per conversion. A lot's source account is the partner's
account, so every reserved point knows which partner it came from.

Assigning moves reserved points to one municipality, oldest lots first (the order the ledger
takes them). Each run of consecutive lots of one partner makes two transfers: on `reserved`,
wallet -> that partner's account (its reserved debit goes back), and on the municipality's
ledger, the partner's account -> the resident's wallet (so the receivable lands on the
receiving municipality, per partner). The program's premium applies at assignment.

The resident has 14 Tokyo calendar days to choose: reserved points converted on Tokyo day D may
be assigned through day D+14 (`assign_by`), and the daily sweep (`sweep_reserved`) assigns them
to the resident's default municipality at its first run on or after day D+15 (`sweep_from`).
So a conversion at 23:59:59 and one at 00:00:00 a second later have deadlines a day apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import TOKYO, RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import MAX_POINTS, POINTS, MyKeyError, not_found, refused
from mykey.identity.models import Resident
from mykey.identity.residents import normalise_mykey_id
from mykey.ledger import AccountKind, LotTerms
from mykey.ledger.idempotency import keyed_write, request_hash, scope
from mykey.municipalities.codes import parse_code
from mykey.points.balances import RESERVED
from mykey.points.conversion import NAMESPACE, _check_key, add_premium, member_program
from mykey.points.models import Conversion, ReservedAssignment, ResidentPointSettings
from mykey.points.programs import expires_on

SWEEP_AFTER_DAYS = 14  # Tokyo calendar days after the day of conversion
SWEEP_ACTOR = "system:sweep"


def assign_by(converted_at: datetime) -> date:
    """The last Tokyo day the resident may assign points converted at `converted_at` (D+14)."""
    return tokyo_date(converted_at) + timedelta(days=SWEEP_AFTER_DAYS)


def sweep_from(converted_at: datetime) -> datetime:
    """When the sweep may take them: the start of Tokyo day D+15 (as UTC)."""
    day = assign_by(converted_at) + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=TOKYO).astimezone(UTC)


def is_swept_on(converted_at: datetime, as_of: date) -> bool:
    """Whether a sweep run on Tokyo day `as_of` assigns points converted at `converted_at`."""
    return assign_by(converted_at) < as_of


@dataclass(frozen=True)
class AssignmentPart:
    partner: str
    points: int


@dataclass(frozen=True)
class AssignmentReceipt:
    assignment_id: UUID
    mykey_id: str
    municipality: str
    points: int
    premium: int
    parts: tuple[AssignmentPart, ...]
    balance: int  # the resident's points in the municipality after
    reserved_left: int
    replayed: bool


@dataclass(frozen=True)
class ReservedLot:
    partner: str
    remaining: int
    converted_at: datetime
    expires_on: date
    sweep_after: datetime  # when the sweep may assign it to the default municipality (D+15 00:00)
    assign_by: date  # the last Tokyo day the resident may assign it (D+14)


@dataclass(frozen=True)
class ReservedView:
    points: int
    default_municipality: str | None
    lots: tuple[ReservedLot, ...]


@dataclass(frozen=True)
class SweepReport:
    residents: int  # residents whose old reserved points were assigned
    points: int
    premium: int
    skipped_residents: int  # with old reserved points but no default municipality
    skipped_points: int
    failed_residents: int  # whose default municipality refused (e.g. no longer a member)


def _settings(uow: UnitOfWork, who: str) -> ResidentPointSettings:
    s = uow.session
    row = s.get(ResidentPointSettings, who)
    if row is None:
        row = ResidentPointSettings(
            mykey_id=who, default_municipality=None, version=0, updated_at=uow.now()
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:
            raise RetryTransaction from exc
    return row


def _lock(uow: UnitOfWork, who: str) -> None:
    """Serialise the assignments of one resident's reserved points (a row lock till commit)."""
    _settings(uow, who)
    uow.session.execute(
        update(ResidentPointSettings)
        .where(ResidentPointSettings.mykey_id == who)
        .values(version=ResidentPointSettings.version + 1)
    )


def _resident(uow: UnitOfWork, who: str) -> None:
    if uow.session.get(Resident, who) is None:
        raise not_found(
            "unknown_mykey_id", f"There is no MyKey ID {who}.", f"マイキーID {who} は存在しません。"
        )


def set_default_municipality(
    uow: UnitOfWork, *, mykey_id: str, municipality: str | None
) -> str | None:
    """The municipality the resident's reserved points go to when the resident has not
    assigned them within 14 Tokyo days (None: none)."""
    who = normalise_mykey_id(mykey_id)
    code = parse_code(municipality) if municipality is not None else None

    def body() -> str | None:
        _resident(uow, who)
        if code is not None:
            member_program(uow, code)
        row = _settings(uow, who)
        row.default_municipality = code
        row.updated_at = uow.now()
        uow.session.flush()
        return code

    return uow.run(body)


def _wallet_lots(uow: UnitOfWork, who: str) -> list[ledger.LotView]:
    accounts = ledger.accounts_of(uow, owner=who, kind=AccountKind.WALLET)
    wallet = next((a for a, book in accounts if book == RESERVED), None)
    if wallet is None:
        return []
    today = tokyo_date(uow.now())
    return [lot for lot in ledger.wallet_lots(uow, wallet) if lot.expires_on >= today]


def reserved_of(uow: UnitOfWork, mykey_id: str) -> ReservedView:
    who = normalise_mykey_id(mykey_id)

    def body() -> ReservedView:
        row = uow.session.get(ResidentPointSettings, who)
        lots = tuple(
            ReservedLot(
                partner=ledger.get_account(uow, lot.source_account_id).owner,
                remaining=lot.remaining,
                converted_at=lot.created_at,
                expires_on=lot.expires_on,
                sweep_after=sweep_from(lot.created_at),
                assign_by=assign_by(lot.created_at),
            )
            for lot in _wallet_lots(uow, who)
        )
        return ReservedView(
            points=sum(lot.remaining for lot in lots),
            default_municipality=row.default_municipality if row else None,
            lots=lots,
        )

    return uow.read(body)


def _digest(who: str, code: str, points: int | None, reason: str) -> str:
    """The hash of a whole assignment request (points None: all of them)."""
    return request_hash(
        "reserved_assignment",
        {"mykey_id": who, "municipality": code, "points": points, "reason": reason},
    )


def _stored(uow: UnitOfWork, actor: str, key: str) -> tuple[str | None, AssignmentReceipt] | None:
    """What a known (actor, key) assigned: the hash of its request and its receipt."""
    rows = list(
        uow.session.scalars(
            select(ReservedAssignment)
            .where(ReservedAssignment.actor == actor, ReservedAssignment.client_key == key)
            .order_by(ReservedAssignment.seq)
        )
    )
    if not rows:
        return None
    return rows[0].request_hash, _assignment_receipt(uow, rows, replayed=True)


def _assignment_receipt(
    uow: UnitOfWork, rows: list[ReservedAssignment], *, replayed: bool
) -> AssignmentReceipt:
    first = rows[0]
    wallet = ledger.find_account(
        uow, ledger=first.municipality, kind=AccountKind.WALLET, owner=first.mykey_id
    )
    return AssignmentReceipt(
        assignment_id=first.assignment_id,
        mykey_id=first.mykey_id,
        municipality=first.municipality,
        points=sum(r.points for r in rows),
        premium=first.premium,
        parts=tuple(AssignmentPart(r.partner, r.points) for r in rows),
        balance=ledger.balance(uow, wallet.id).available,
        reserved_left=sum(lot.remaining for lot in _wallet_lots(uow, first.mykey_id)),
        replayed=replayed,
    )


def _assign(
    uow: UnitOfWork,
    *,
    who: str,
    code: str,
    points: int | None,
    actor: str,
    key: str,
    reason: str,
) -> AssignmentReceipt:
    digest = _digest(who, code, points, reason)
    return keyed_write(
        uow,
        scope=scope("reserved_assignment", actor),
        key=key,
        digest=digest,
        stored=lambda: _stored(uow, actor, key),
        act=lambda: _assign_now(
            uow,
            who=who,
            code=code,
            points=points,
            actor=actor,
            key=key,
            reason=reason,
            digest=digest,
        ),
    )


def _assign_now(
    uow: UnitOfWork,
    *,
    who: str,
    code: str,
    points: int | None,
    actor: str,
    key: str,
    reason: str,
    digest: str,
) -> AssignmentReceipt:
    s = uow.session
    _resident(uow, who)
    _lock(uow, who)
    program = member_program(uow, code)
    lots = _wallet_lots(uow, who)
    available = sum(lot.remaining for lot in lots)
    want = available if points is None else points
    if want <= 0 or want > available:
        raise refused(
            "insufficient_reserved",
            f"You have {available:,} reserved points; {want:,} cannot be assigned.",
            f"留保ポイントは {available:,} です。{want:,} ポイントは振り分けできません。",
            reserved=available,
        )
    runs: list[list[int]] = []  # [source account, points], consecutive lots of one partner
    left = want
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        left -= take
        if runs and runs[-1][0] == lot.source_account_id:
            runs[-1][1] += take
        else:
            runs.append([lot.source_account_id, take])
    wallet = ledger.find_account(uow, ledger=RESERVED, kind=AccountKind.WALLET, owner=who)
    target = ledger.open_account(uow, ledger=code, kind=AccountKind.WALLET, owner=who)
    now = uow.now()
    last_day = expires_on(program.validity, "partner", tokyo_date(now))
    assignment_id = uuid.uuid5(NAMESPACE, f"assign\n{actor}\n{key}")
    rows: list[ReservedAssignment] = []
    for seq, (source, amount) in enumerate(runs):
        partner = ledger.get_account(uow, source).owner
        metadata = {"partner": partner, "assignment_id": str(assignment_id), "reason": reason}
        out = ledger.transfer(
            uow,
            debit=wallet.id,
            credit=source,
            amount=amount,
            kind="assign",
            actor=actor,
            key=f"{key}:{seq}:out",
            metadata=metadata | {"municipality": code},
        )
        payer = ledger.open_account(uow, ledger=code, kind=AccountKind.PARTNER, owner=partner)
        into = ledger.transfer(
            uow,
            debit=payer.id,
            credit=target.id,
            amount=amount,
            kind="convert",
            actor=actor,
            key=f"{key}:{seq}:in",
            lot=LotTerms("partner", last_day),
            metadata=metadata,
        )
        rows.append(
            ReservedAssignment(
                id=uuid.uuid5(NAMESPACE, f"assign\n{actor}\n{key}\n{seq}"),
                assignment_id=assignment_id,
                actor=actor,
                client_key=key,
                request_hash=digest,
                seq=seq,
                mykey_id=who,
                partner=partner,
                municipality=code,
                points=amount,
                premium=0,
                out_transfer_id=out.transfer_id,
                in_transfer_id=into.transfer_id,
                premium_transfer_id=None,
                reason=reason,
                created_at=now,
            )
        )
    premium, premium_id = add_premium(
        uow,
        program=program,
        wallet=target,
        points=want,
        actor=actor,
        key=f"{key}:premium",
        metadata={"assignment_id": str(assignment_id), "reason": reason},
    )
    rows[0].premium, rows[0].premium_transfer_id = premium, premium_id
    s.add_all(rows)
    try:
        s.flush()
    except IntegrityError as exc:
        raise RetryTransaction from exc
    return _assignment_receipt(uow, rows, replayed=False)


def assign_reserved(
    uow: UnitOfWork,
    *,
    mykey_id: str,
    municipality: str,
    points: int | None,
    actor: str,
    key: str,
) -> AssignmentReceipt:
    """Move `points` (None: all) of the resident's reserved points to `municipality`, oldest
    first. The same (actor, key) assigns once: a retry gets the first receipt (`replayed`),
    another request under the key (another municipality or number of points) is
    `idempotency_key_reused`, and a refused assignment is refused again under its key."""
    who = normalise_mykey_id(mykey_id)
    code = parse_code(municipality)
    _check_key(key)
    if points is not None:  # None: all of them
        POINTS.check(points, 1, MAX_POINTS, "points")
    return _assign(uow, who=who, code=code, points=points, actor=actor, key=key, reason="resident")


def sweep_reserved(
    uow: UnitOfWork,
    *,
    as_of: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> SweepReport:
    """The daily sweep as run on Tokyo day `as_of` (default: today; never a day to come):
    assign every reserved point converted on day `as_of` - 15 or earlier (`is_swept_on`) to
    its resident's default municipality; residents without one are skipped and counted. Safe
    to repeat: the key of each assignment derives from the resident and the oldest lot it
    takes, and a second run finds nothing old left. `progress` is called once per resident
    who ever had reserved points (`sweep_candidates`)."""
    day = ledger.as_of_day(
        uow,
        tokyo_date(uow.now()) if as_of is None else as_of,
        why="residents may still assign those points.",
        why_ja="住民がまだ自分で振り分けできるポイントです。",
    )
    holders = uow.read(
        lambda: list(
            uow.session.scalars(
                select(Conversion.mykey_id)
                .where(Conversion.municipality.is_(None))
                .distinct()
                .order_by(Conversion.mykey_id)
            )
        )
    )
    done = points = premium = skipped = skipped_points = failed = 0
    for who in holders:

        def body(who: str = who) -> tuple[str, int, int]:
            if not any(is_swept_on(lot.created_at, day) for lot in _wallet_lots(uow, who)):
                return "none", 0, 0
            _lock(uow, who)  # then read again: nothing moves this resident's points meanwhile
            old = [lot for lot in _wallet_lots(uow, who) if is_swept_on(lot.created_at, day)]
            amount = sum(lot.remaining for lot in old)
            if amount == 0:
                return "none", 0, 0
            row = uow.session.get(ResidentPointSettings, who)
            if row is None or row.default_municipality is None:
                return "skipped", amount, 0
            receipt = _assign(
                uow,
                who=who,
                code=row.default_municipality,
                points=amount,
                actor=SWEEP_ACTOR,
                key=f"sweep:{who}:{old[0].id}:{amount}",
                reason="sweep",
            )
            return "assigned", receipt.points, receipt.premium

        try:
            outcome, amount, extra = uow.run(body)
        except MyKeyError:
            failed += 1
            outcome, amount, extra = "failed", 0, 0
        if outcome == "assigned":
            done, points, premium = done + 1, points + amount, premium + extra
        elif outcome == "skipped":
            skipped, skipped_points = skipped + 1, skipped_points + amount
        if progress is not None:
            progress(1)
    return SweepReport(done, points, premium, skipped, skipped_points, failed)


def sweep_candidates(uow: UnitOfWork) -> int:
    """How many residents have ever had reserved points (for a progress bar's total)."""
    return uow.read(
        lambda: len(
            list(
                uow.session.scalars(
                    select(Conversion.mykey_id).where(Conversion.municipality.is_(None)).distinct()
                )
            )
        )
    )
