"""Correction cases (issue #4): points credited to the wrong resident, or a grant to undo.

One staff member proposes a case with a reason code; a second one (never the same key)
approves it, and the approval executes it in the same transaction, as new ledger transfers
that cite the case (nothing is edited or deleted):

- `move`: what is still left of the original credit (its lot) goes from the wrong wallet to
  the right holder's wallet with the same funding source and expiry; the part the wrong holder
  already spent is paid to the right holder from the municipality's budget (same expiry) and
  recorded as a claim against the wrong holder. The right holder always receives the full
  amount; no wallet goes below zero.
- `reverse` (grants only): what is left of the grant goes back to the budget (the ledger's
  reversal when all of it is left, a transfer from the grant's own lot otherwise), the
  program's budget count for the grant's fiscal year goes down by that much, and the spent part
  becomes a claim.

Cases can also be rejected (by another staff member) or withdrawn (by the proposer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid5

from sqlalchemy import case as sql_case
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from mykey import ledger
from mykey.db import RetryTransaction, UnitOfWork, tokyo_date
from mykey.errors import MyKeyError, invalid, not_found, refused
from mykey.identity.models import Resident
from mykey.identity.residents import normalise_mykey_id
from mykey.ledger import AccountKind, LotTerms
from mykey.ledger.idempotency import (
    keyed_write,
    request_hash,
    scope,
    validate_actor,
    validate_key,
)
from mykey.municipalities.codes import parse_code
from mykey.points.models import (
    BudgetUse,
    CorrectionCase,
    CorrectionClaim,
    CorrectionLeg,
    PointProgram,
)
from mykey.points.programs import fiscal_year_of

T = TypeVar("T")

KINDS = ("move", "reverse")
STATUSES = ("proposed", "approved", "rejected", "withdrawn")
# reason code -> (日本語, English)
REASONS: dict[str, tuple[str, str]] = {
    "wrong_person": ("別の人への付与・移行", "Credited to the wrong person"),
    "duplicate": ("二重の付与", "Granted twice"),
    "wrong_amount": ("ポイント数の誤り", "Wrong number of points"),
    "ineligible": ("対象外の人への付与", "Not eligible"),
    "other": ("その他", "Other"),
}
NAMESPACE = UUID("0c6f3d1e-5a4b-4e0f-9a51-2f6b7c3d8e10")  # ids of correction cases
MAX_NOTE = 1000
MAX_PAGE = 500


@dataclass(frozen=True)
class Leg:
    leg: str  # move | fund | reverse
    transfer_id: UUID
    points: int


@dataclass(frozen=True)
class Claim:
    mykey_id: str
    points: int
    status: str


@dataclass(frozen=True)
class Case:
    id: UUID
    municipality: str
    kind: str
    transfer_id: UUID
    points: int
    wrong_mykey_id: str
    right_mykey_id: str | None
    reason_code: str
    note: str
    status: str
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    moved: int
    funded: int
    claimed: int
    budget_returned: int
    legs: tuple[Leg, ...] = ()
    claim: Claim | None = None
    replayed: bool = False

    @property
    def reason_label(self) -> tuple[str, str]:
        return REASONS[self.reason_code]


@dataclass(frozen=True)
class ResidentCase:
    """An executed case as one of its two residents sees it (nothing of the other one)."""

    id: UUID
    municipality: str
    kind: str
    reason_code: str
    side: str  # "from": credited by mistake; "to": the right holder
    change: int  # points in (+) or out (-) of this resident's wallet
    owed: int  # points this resident spent and owes back (a claim)
    decided_at: datetime


# ---------------------------------------------------------------------------------------------
# reading


def _view(uow: UnitOfWork, row: CorrectionCase, *, replayed: bool = False) -> Case:
    s = uow.session
    legs = s.scalars(
        select(CorrectionLeg).where(CorrectionLeg.case_id == row.id).order_by(CorrectionLeg.leg)
    ).all()
    claim = s.get(CorrectionClaim, row.id)
    return Case(
        id=UUID(row.id),
        municipality=row.municipality,
        kind=row.kind,
        transfer_id=UUID(row.transfer_id),
        points=row.points,
        wrong_mykey_id=row.wrong_mykey_id,
        right_mykey_id=row.right_mykey_id,
        reason_code=row.reason_code,
        note=row.note,
        status=row.status,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        moved=row.moved,
        funded=row.funded,
        claimed=row.claimed,
        budget_returned=row.budget_returned,
        legs=tuple(Leg(g.leg, UUID(g.transfer_id), g.points) for g in legs),
        claim=Claim(claim.mykey_id, claim.points, claim.status) if claim else None,
        replayed=replayed,
    )


def _case_id(value: object) -> str:
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise _no_case(value) from None


def _no_case(value: object) -> MyKeyError:
    return not_found(
        "unknown_correction",
        f"There is no correction case {value}.",
        f"訂正案件 {value} はありません。",
    )


def _load(uow: UnitOfWork, code: str | None, case_id: str, *, lock: bool = False) -> CorrectionCase:
    """The case, locked for a decision if asked (a row lock on PostgreSQL; SQLite has one
    writer at a time). Another municipality's case is not found, as if it did not exist."""
    stmt = select(CorrectionCase).where(CorrectionCase.id == case_id)
    row = uow.session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if row is None or (code is not None and row.municipality != code):
        raise _no_case(case_id)
    return row


def _status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise invalid(
            "invalid_status",
            f"A case's status is one of {', '.join(STATUSES)}.",
            "案件の状態は proposed・approved・rejected・withdrawn のいずれかです。",
        )
    return status


def get_correction(uow: UnitOfWork, *, case_id: str, municipality: str | None = None) -> Case:
    """One case; with `municipality`, only if it is that municipality's."""
    code = parse_code(municipality) if municipality is not None else None
    cid = _case_id(case_id)
    return uow.read(lambda: _view(uow, _load(uow, code, cid)))


def list_corrections(
    uow: UnitOfWork,
    *,
    municipality: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[Case]:
    """Cases, newest first: one municipality's, or every one (the council)."""
    code = parse_code(municipality) if municipality is not None else None
    wanted = _status(status)
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise invalid(
            "invalid_limit",
            f"A page holds 1 to {MAX_PAGE} cases.",
            f"1 ページの件数は 1〜{MAX_PAGE} で指定してください。",
        )

    def body() -> list[Case]:
        stmt = select(CorrectionCase).order_by(CorrectionCase.proposed_at.desc(), CorrectionCase.id)
        if code is not None:
            stmt = stmt.where(CorrectionCase.municipality == code)
        if wanted is not None:
            stmt = stmt.where(CorrectionCase.status == wanted)
        return [_view(uow, row) for row in uow.session.scalars(stmt.limit(limit)).all()]

    return uow.read(body)


def corrections_of(uow: UnitOfWork, mykey_id: str) -> list[ResidentCase]:
    """The executed cases that moved a resident's points, newest first."""
    who = normalise_mykey_id(mykey_id)

    def body() -> list[ResidentCase]:
        rows = uow.session.scalars(
            select(CorrectionCase)
            .where(
                CorrectionCase.status == "approved",
                or_(CorrectionCase.wrong_mykey_id == who, CorrectionCase.right_mykey_id == who),
            )
            .order_by(CorrectionCase.decided_at.desc(), CorrectionCase.id)
        ).all()
        seen = []
        for row in rows:
            assert row.decided_at is not None
            wrong_side = row.wrong_mykey_id == who
            seen.append(
                ResidentCase(
                    id=UUID(row.id),
                    municipality=row.municipality,
                    kind=row.kind,
                    reason_code=row.reason_code,
                    side="from" if wrong_side else "to",
                    change=-row.moved if wrong_side else row.moved + row.funded,
                    owed=row.claimed if wrong_side else 0,
                    decided_at=row.decided_at,
                )
            )
        return seen

    return uow.read(body)


# ---------------------------------------------------------------------------------------------
# what may be corrected


@dataclass(frozen=True)
class _Original:
    receipt: ledger.Receipt
    wallet: ledger.Account
    lot: ledger.LotView
    source: ledger.Account


def _not_correctable(transfer_id: object, why: str, why_ja: str) -> MyKeyError:
    return refused(
        "not_correctable",
        f"Transfer {transfer_id} cannot be corrected: {why}",
        f"取引 {transfer_id} は訂正できません：{why_ja}",
    )


def _original(uow: UnitOfWork, code: str, transfer_id: UUID, kind: str) -> _Original:
    """The transfer to correct, its wallet and its lot, if a case of `kind` may correct it."""
    try:
        receipt = ledger.get_transfer(uow, transfer_id)
    except MyKeyError as error:
        if error.code == "unknown_transfer":
            raise _unknown_transfer(transfer_id) from None
        raise
    if receipt.ledger != code:  # another municipality's transfer: as if it did not exist
        raise _unknown_transfer(transfer_id)
    if receipt.phase not in ("single", "post") or receipt.reverses_id is not None:
        raise _not_correctable(
            transfer_id, "it is not a completed credit.", "完了した入金の取引ではありません。"
        )
    wallet = ledger.get_account(uow, receipt.credit_account_id)
    source = ledger.get_account(uow, receipt.debit_account_id)
    if wallet.kind is not AccountKind.WALLET or receipt.lot_id is None:
        raise _not_correctable(
            transfer_id, "it did not credit a resident.", "利用者への入金ではありません。"
        )
    if kind == "reverse" and (receipt.kind != "grant" or source.kind is not AccountKind.BUDGET):
        raise _not_correctable(
            transfer_id,
            "only a grant from the budget is reversed; move other credits to the right holder.",
            "予算からの付与のみ取り消せます。その他の入金は正しい利用者へ移動してください。",
        )
    if ledger.reversal_of(uow, transfer_id) is not None:
        raise _not_correctable(
            transfer_id, "it has been reversed already.", "すでに取り消されています。"
        )
    lot = next(
        v for v in ledger.wallet_lots(uow, wallet.id, include_used=True) if v.id == receipt.lot_id
    )
    if lot.expires_on < tokyo_date(uow.now()):
        raise refused(
            "points_lapsed",
            f"The points of transfer {transfer_id} lapsed on {lot.expires_on}: grant the right"
            " holder anew instead.",
            f"取引 {transfer_id} のポイントは {lot.expires_on} に有効期限が切れています。"
            "正しい利用者へは新たに付与してください。",
            expires_on=lot.expires_on.isoformat(),
        )
    return _Original(receipt, wallet, lot, source)


def _unknown_transfer(transfer_id: object) -> MyKeyError:
    return not_found(
        "unknown_transfer",
        f"There is no transfer {transfer_id} in this municipality's points.",
        f"この自治体のポイントに取引 {transfer_id} はありません。",
    )


# ---------------------------------------------------------------------------------------------
# proposing


def propose_correction(
    uow: UnitOfWork,
    *,
    municipality: str,
    actor: str,
    key: str,
    kind: str,
    transfer_id: str | UUID,
    reason_code: str,
    note: str,
    right_mykey_id: str | None = None,
) -> Case:
    """Open a case. The key is the municipality's: the same key opens it once, whichever of
    its staff sends it (a retry, or a colleague sending the same request, gets the case with
    `replayed`; its proposer stays the first sender); another request under that key is
    `idempotency_key_reused`. A transfer has one open case at a time: proposing another under
    a new key is refused (`case_exists`), and that refusal is stored under the key."""
    code = parse_code(municipality)
    validate_actor(actor)
    validate_key(key)
    if kind not in KINDS:
        raise invalid(
            "invalid_correction_kind",
            "A correction case is a move (to the right holder) or a reverse (of a grant).",
            "訂正の種類は move（正しい利用者へ移動）か reverse（付与の取消）です。",
        )
    if reason_code not in REASONS:
        raise invalid(
            "invalid_reason_code",
            f"The reason code is one of {', '.join(REASONS)}.",
            f"理由コードは {', '.join(REASONS)} のいずれかです。",
        )
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE:
        raise invalid(
            "invalid_note",
            f"A case needs a note of at most {MAX_NOTE} characters saying what happened.",
            f"経緯のメモ（{MAX_NOTE} 文字以内）が必要です。",
        )
    right: str | None = None
    if kind == "move":
        if not right_mykey_id:
            raise invalid(
                "right_holder_required",
                "A move names the right holder's MyKey ID.",
                "移動先（正しい利用者）のマイキーIDを指定してください。",
            )
        right = normalise_mykey_id(right_mykey_id)
    elif right_mykey_id is not None:
        raise invalid(
            "invalid_correction",
            "A reverse gives the points back to the budget: name no right holder.",
            "取消ではポイントを予算に戻します。移動先は指定しないでください。",
        )
    try:
        tid = UUID(str(transfer_id))
    except ValueError:
        raise _unknown_transfer(transfer_id) from None
    digest = request_hash(
        "correction",
        {
            "municipality": code,
            "kind": kind,
            "transfer_id": str(tid),
            "reason_code": reason_code,
            "note": note,
            "right": right,
        },
    )

    def stored() -> tuple[str | None, Case] | None:
        prior = uow.session.scalars(
            select(CorrectionCase)
            .where(CorrectionCase.municipality == code, CorrectionCase.proposal_key == key)
            .order_by(CorrectionCase.proposed_at, CorrectionCase.id)
        ).first()
        return None if prior is None else (prior.request_hash, _view(uow, prior, replayed=True))

    def body() -> Case:
        s = uow.session
        original = _original(uow, code, tid, kind)
        wrong = original.wallet.owner
        if right is not None:
            if s.get(Resident, right) is None:
                raise not_found(
                    "unknown_mykey_id",
                    f"There is no MyKey ID {right}.",
                    f"マイキーID {right} は存在しません。",
                )
            if right == wrong:
                raise invalid(
                    "same_holder",
                    "The points are already in that resident's wallet.",
                    "そのポイントはすでにその利用者のものです。",
                )
        active = s.execute(
            select(CorrectionCase.id).where(
                CorrectionCase.transfer_id == str(tid),
                CorrectionCase.status.in_(("proposed", "approved")),
            )
        ).scalar()
        if active is not None:
            raise refused(
                "case_exists",
                f"Transfer {tid} already has correction case {active}.",
                f"取引 {tid} にはすでに訂正案件 {active} があります。",
                case_id=active,
            )
        row = CorrectionCase(
            id=str(uuid5(NAMESPACE, f"municipality:{code}\x1f{key}")),
            municipality=code,
            kind=kind,
            transfer_id=str(tid),
            points=original.receipt.amount,
            wrong_mykey_id=wrong,
            right_mykey_id=right,
            reason_code=reason_code,
            note=note.strip(),
            status="proposed",
            proposed_by=actor,
            proposal_key=key,
            request_hash=digest,
            proposed_at=uow.now(),
            moved=0,
            funded=0,
            claimed=0,
            budget_returned=0,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:  # a twin proposal committed first: see what it did
            raise RetryTransaction from exc
        return _view(uow, row)

    return keyed_write(
        uow, scope=scope("correction", code), key=key, digest=digest, stored=stored, act=body
    )


# ---------------------------------------------------------------------------------------------
# deciding


def _decidable(row: CorrectionCase, actor: str, outcome: str) -> bool:
    """True if this actor already made this decision (a retry: nothing more to do)."""
    if row.status == outcome and row.decided_by == actor:
        return True
    if row.status != "proposed":
        raise refused(
            "case_closed",
            f"Correction case {row.id} is already {row.status}.",
            f"訂正案件 {row.id} はすでに {row.status} です。",
            status=row.status,
        )
    return False


def _second_person(row: CorrectionCase, actor: str) -> None:
    if row.proposed_by == actor:
        raise refused(
            "same_person",
            "A case is approved or rejected by someone other than its proposer (the proposer"
            " may withdraw it).",
            "案件の承認・却下は起案者以外の職員が行います（起案者は取り下げができます）。",
        )


def _leg(fn: Callable[[], T]) -> T:
    """A ledger step of the execution: if the points it counted on were spent meanwhile (a
    payment committed between reading the lot and taking from it), run the whole approval
    again, which counts afresh."""
    try:
        return fn()
    except MyKeyError as error:
        if error.code == "insufficient_points":
            raise RetryTransaction from error
        raise


def _count_budget(uow: UnitOfWork, code: str, fiscal_year: int, delta: int) -> None:
    """Add `delta` to the program's budget count for the year (programs with an annual budget
    keep one); a count down never goes below zero."""
    program = uow.session.get(PointProgram, code)
    if program is None or program.annual_budget is None or delta == 0:
        return
    s = uow.session
    where = (BudgetUse.code == code, BudgetUse.fiscal_year == fiscal_year)
    if delta > 0:
        if s.get(BudgetUse, (code, fiscal_year)) is None:
            s.add(BudgetUse(code=code, fiscal_year=fiscal_year, granted=0))
            try:
                s.flush()
            except IntegrityError as exc:
                raise RetryTransaction from exc
        new = BudgetUse.granted + delta
    else:
        new = sql_case((BudgetUse.granted > -delta, BudgetUse.granted + delta), else_=0)
    s.execute(
        update(BudgetUse).where(*where).values(granted=new),
        execution_options={"synchronize_session": False},
    )


def return_to_budget(uow: UnitOfWork, *, grant: ledger.Receipt, points: int) -> None:
    """A reversed grant (or part of it) gives its points back to the program's budget count
    for the fiscal year it was granted in, never below zero. Whatever reverses a grant calls
    this in the same transaction."""
    code = grant.ledger
    fiscal_year = fiscal_year_of(tokyo_date(grant.created_at))
    _count_budget(uow, code, fiscal_year, -points)


def _describe(case_id: str, reason_code: str, leg: str) -> dict[str, Any]:
    ja, en = REASONS[reason_code]
    short = case_id[:8]
    text = {
        "move": (
            "誤った口座に入ったポイントを正しい口座へ移動",
            "points credited to the wrong wallet moved to the right one",
        ),
        "fund": (
            "使用済みの分を自治体の予算から補填",
            "the part already spent, paid from the municipality's budget",
        ),
        "reverse": ("付与を取消（予算へ返還）", "grant undone (points back to the budget)"),
    }[leg]
    return {
        "correction_case": case_id,
        "reason_code": reason_code,
        "description_ja": f"訂正（案件 {short}）：{text[0]}。理由：{ja}",
        "description": f"Correction (case {short}): {text[1]}. Reason: {en}",
    }


def _execute(uow: UnitOfWork, row: CorrectionCase, actor: str) -> None:
    """Make the case's transfers, its claim and its counts (inside the approval)."""
    s = uow.session
    code = row.municipality
    original = _original(uow, code, UUID(row.transfer_id), row.kind)
    receipt, lot = original.receipt, original.lot
    available = lot.remaining
    shortfall = receipt.amount - available
    legs: list[Leg] = []

    def key(leg: str) -> str:
        return f"correction:{row.id}:{leg}"

    if row.kind == "move":
        assert row.right_mykey_id is not None
        right = ledger.open_account(
            uow, ledger=code, kind=AccountKind.WALLET, owner=row.right_mykey_id
        )
        if available:
            moved = _leg(
                lambda: ledger.transfer(
                    uow,
                    debit=original.wallet.id,
                    credit=right.id,
                    amount=available,
                    kind="correct",
                    actor=actor,
                    key=key("move"),
                    lot=LotTerms(lot.funding, lot.expires_on),
                    metadata=_describe(row.id, row.reason_code, "move"),
                    from_lot=lot.id,
                )
            )
            legs.append(Leg("move", moved.transfer_id, available))
        if shortfall:
            budget = ledger.find_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
            funded = ledger.transfer(
                uow,
                debit=budget.id,
                credit=right.id,
                amount=shortfall,
                kind="correct",
                actor=actor,
                key=key("fund"),
                lot=LotTerms("budget", lot.expires_on),
                metadata=_describe(row.id, row.reason_code, "fund"),
            )
            legs.append(Leg("fund", funded.transfer_id, shortfall))
            _count_budget(uow, code, fiscal_year_of(tokyo_date(uow.now())), shortfall)
        row.moved, row.funded = available, shortfall
    else:
        meta = _describe(row.id, row.reason_code, "reverse")
        if available == receipt.amount:
            back = _leg(
                lambda: ledger.reverse(
                    uow,
                    transfer_id=receipt.transfer_id,
                    actor=actor,
                    reason=f"訂正案件 {row.id} / correction case {row.id}",
                    key=key("reverse"),
                    metadata=meta,
                )
            )
            legs.append(Leg("reverse", back.transfer_id, available))
        elif available:
            back = _leg(
                lambda: ledger.transfer(
                    uow,
                    debit=original.wallet.id,
                    credit=original.source.id,
                    amount=available,
                    kind="correct",
                    actor=actor,
                    key=key("reverse"),
                    metadata=meta,
                    from_lot=lot.id,
                )
            )
            legs.append(Leg("reverse", back.transfer_id, available))
        if available:
            return_to_budget(uow, grant=receipt, points=available)
        row.moved, row.budget_returned = available, available
    if shortfall:
        s.add(
            CorrectionClaim(
                case_id=row.id,
                municipality=code,
                mykey_id=row.wrong_mykey_id,
                points=shortfall,
                status="open",
                created_at=uow.now(),
            )
        )
    row.claimed = shortfall
    for leg in legs:
        s.add(
            CorrectionLeg(
                case_id=row.id, leg=leg.leg, transfer_id=str(leg.transfer_id), points=leg.points
            )
        )
    s.flush()


def approve_correction(
    uow: UnitOfWork, *, municipality: str, case_id: str, actor: str, note: str | None = None
) -> Case:
    """Approve a proposed case and execute it, all in one transaction. Only someone other
    than the proposer approves; the same approver approving again changes nothing (a retry);
    anyone else gets `case_closed`. Two approvals at once execute it once."""
    code = parse_code(municipality)
    cid = _case_id(case_id)
    validate_actor(actor)
    _check_decision_note(note)

    def body() -> Case:
        row = _load(uow, code, cid, lock=True)
        if _decidable(row, actor, "approved"):
            return _view(uow, row, replayed=True)
        _second_person(row, actor)
        row.status = "approved"
        row.decided_by = actor
        row.decided_at = uow.now()
        row.decision_note = note
        uow.session.flush()
        _execute(uow, row, actor)
        return _view(uow, row)

    return uow.run(body)


def _check_decision_note(note: str | None) -> None:
    if note is not None and len(note) > MAX_NOTE:
        raise invalid(
            "invalid_note",
            f"A note is at most {MAX_NOTE} characters.",
            f"メモは {MAX_NOTE} 文字以内です。",
        )


def reject_correction(
    uow: UnitOfWork, *, municipality: str, case_id: str, actor: str, note: str | None = None
) -> Case:
    """Reject a proposed case (someone other than the proposer): nothing moves."""
    code = parse_code(municipality)
    cid = _case_id(case_id)
    validate_actor(actor)
    _check_decision_note(note)

    def body() -> Case:
        row = _load(uow, code, cid, lock=True)
        if _decidable(row, actor, "rejected"):
            return _view(uow, row, replayed=True)
        _second_person(row, actor)
        row.status, row.decided_by, row.decided_at = "rejected", actor, uow.now()
        row.decision_note = note
        uow.session.flush()
        return _view(uow, row)

    return uow.run(body)


def withdraw_correction(
    uow: UnitOfWork, *, municipality: str, case_id: str, actor: str, note: str | None = None
) -> Case:
    """The proposer takes a proposed case back: nothing moves."""
    code = parse_code(municipality)
    cid = _case_id(case_id)
    validate_actor(actor)
    _check_decision_note(note)

    def body() -> Case:
        row = _load(uow, code, cid, lock=True)
        if _decidable(row, actor, "withdrawn"):
            return _view(uow, row, replayed=True)
        if row.proposed_by != actor:
            raise refused(
                "not_proposer",
                "Only the proposer withdraws a case; others reject it.",
                "取り下げは起案者のみ行えます。他の職員は却下してください。",
            )
        row.status, row.decided_by, row.decided_at = "withdrawn", actor, uow.now()
        row.decision_note = note
        uow.session.flush()
        return _view(uow, row)

    return uow.run(body)
