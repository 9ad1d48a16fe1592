"""Bulk grants (R4.4): a CSV of grants, or an eligibility list, granted as one job.

A town hall grants 80,000 residents at once (Tsu: every resident aged 65 or over). The file is
either

- a grant list: `mykey_id,points,reason` (reason may be left out when the job gives one), or
- an eligibility list: `mykey_id` alone, every listed resident getting the job's activity (its
  points from the program's rules) or the job's points with the job's reason.

A job is all or nothing: every row is checked first (format, a MyKey ID that exists, one row per
resident, the activity's once-per-period limit) and the program's annual budget for the total;
if anything is refused nothing is granted and the report lists every refused row with its
reason. Otherwise every grant is written in one transaction (`ledger.batch.credit_many`), which
takes seconds, not minutes.

A job belongs to the municipality and its idempotency key, whichever of its staff sends it:
sending the same file with the same key again, from the same or another staff member, answers
with the same job and grants nothing more. The same file with the same parameters under another
key (two staff members' console forms each carry a key of their own) is the same job too; a
list granted again on purpose says so with another reason or event (the month, say).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast
from uuid import UUID, uuid5

from sqlalchemy import Table, select

from mykey.db import UnitOfWork, insert_many, select_by_keys, tokyo_date
from mykey.errors import ErrorKind, MyKeyError, conflict, invalid, not_found
from mykey.identity.models import Resident
from mykey.identity.residents import MYKEY_ID
from mykey.jobs import queue
from mykey.jobs.queue import Progress
from mykey.ledger import AccountKind, LotTerms, find_account
from mykey.ledger.batch import Credit, credit_many, open_accounts, transfer_id
from mykey.ledger.errors import MAX_AMOUNT
from mykey.ledger.idempotency import (
    NAMESPACE,
    keyed_write,
    same_request,
    scope,
    serialise,
    validate_actor,
    validate_key,
)
from mykey.municipalities.codes import parse_code
from mykey.points.accruals import accrual_owner
from mykey.points.grants import _period, _use_budget, rule_for
from mykey.points.models import Accrual, GrantJob, GrantJobFile, GrantJobRefusal, GrantLimitUse
from mykey.points.program_setup import Program, program_of
from mykey.points.programs import expires_on, fiscal_year_end, fiscal_year_of

MAX_ROWS = 1_000_000  # a prefecture-wide campaign (issue #15)
MAX_BYTES = 20 * 1024 * 1024
CHUNK = 2000
MAX_ATTEMPTS = 5  # tries of a job whose worker stopped (killed, the database away)
COLUMNS = {
    "mykey_id": "mykey_id",
    "マイキーid": "mykey_id",
    "points": "points",
    "ポイント": "points",
    "ポイント数": "points",
    "reason": "reason",
    "理由": "reason",
    "付与理由": "reason",
}
FINISHED = ("done", "refused")

REFUSALS = cast(Table, GrantJobRefusal.__table__)
LIMIT_USES = cast(Table, GrantLimitUse.__table__)
ACCRUALS = cast(Table, Accrual.__table__)
RESIDENT_ID = cast(Table, Resident.__table__).c.mykey_id

# The refusal codes of a row, with their words.
ROW_REFUSALS: dict[str, tuple[str, str]] = {
    "invalid_row": ("The row does not have the file's columns.", "列の数が見出しと合いません。"),
    "invalid_mykey_id": (
        "A MyKey ID is 8 letters (A–Z) and digits (0–9).",
        "マイキーIDは英字と数字の 8 文字です。",
    ),
    "invalid_points": (
        f"Points are a whole number from 1 to {MAX_AMOUNT:,}.",
        f"ポイントは 1〜{MAX_AMOUNT:,} の整数で指定してください。",
    ),
    "invalid_reason": (
        "A grant needs a reason of at most 200 characters.",
        "付与理由（200 文字以内）が必要です。",
    ),
    "duplicate_row": (
        "This MyKey ID is already on an earlier line of the file.",
        "このマイキーIDはファイルの前の行にもあります。",
    ),
    "unknown_mykey_id": ("There is no such MyKey ID.", "このマイキーIDは存在しません。"),
    "limit_reached": (
        "Already granted this activity for this period.",
        "この期間のこの活動は付与済みです。",
    ),
}


@dataclass(frozen=True)
class RowRefusal:
    line: int
    mykey_id: str
    code: str

    @property
    def message(self) -> str:
        return ROW_REFUSALS[self.code][0]

    @property
    def message_ja(self) -> str:
        return ROW_REFUSALS[self.code][1]


@dataclass(frozen=True)
class GrantLine:
    line: int
    mykey_id: str
    points: int
    reason: str


@dataclass(frozen=True)
class JobParams:
    """What the job grants when the file does not say: an activity of the rules, or points
    with a reason; `event` for activities limited once per event."""

    activity: str | None = None
    points: int | None = None
    reason: str | None = None
    event: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class JobView:
    id: str
    municipality: str
    actor: str
    status: str  # queued, running, done, refused, failed
    params: dict[str, Any]
    rows: int
    granted: int
    points: int
    refused: int
    error: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None
    progress: Progress | None = None
    replayed: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def replay(self) -> JobView:
        return replace(self, replayed=True)


@dataclass
class _Plan:
    lines: list[GrantLine] = field(default_factory=list)
    refusals: list[RowRefusal] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# reading the file


def _bad_file(message: str, message_ja: str) -> MyKeyError:
    return invalid("invalid_grant_file", message, message_ja)


def _decode(data: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), or Shift_JIS as older Excel saves CSV."""
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _bad_file(
        "The file is neither UTF-8 nor Shift_JIS text.",
        "ファイルは UTF-8 または Shift_JIS のテキストにしてください。",
    )


def _check_params(params: JobParams, program: Program, has_points: bool) -> None:
    if params.activity is not None and params.points is not None:
        raise invalid(
            "invalid_grant",
            "Name an activity of the program's rules, or give points (not both).",
            "付与ルールの活動名、またはポイント数のどちらか一方を指定してください。",
        )
    if params.activity is not None:
        if has_points:
            raise _bad_file(
                "The file gives points per row: do not also name an activity.",
                "ファイルに行ごとのポイントがあるため、活動名は指定できません。",
            )
        rule_for(program, params.activity, params.event)
    elif not has_points:
        if params.points is None or not 1 <= params.points <= MAX_AMOUNT:
            raise _bad_file(
                "An eligibility list needs the job's activity, or its points and reason.",
                "対象者リストには活動名、またはポイント数と理由の指定が必要です。",
            )
    elif params.points is not None:
        raise _bad_file(
            "The file gives points per row: do not also give the job's points.",
            "ファイルに行ごとのポイントがあるため、ポイント数は指定できません。",
        )
    if params.reason is not None and not (params.reason.strip() and len(params.reason) <= 200):
        raise invalid("invalid_reason", "A grant needs a reason.", "付与理由が必要です。")


def read_grant_file(data: bytes, params: JobParams, program: Program) -> _Plan:
    """The file's grants, and every row that is refused on its own (before the database)."""
    if len(data) > MAX_BYTES:
        raise _bad_file(
            f"The file is larger than {MAX_BYTES // 1024 // 1024} MB: split it.",
            f"ファイルが {MAX_BYTES // 1024 // 1024} MB を超えています。分割してください。",
        )
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    header = next(reader, None)
    names = [COLUMNS.get(h.strip().lower()) for h in header or []]
    if not header or names[0] != "mykey_id" or None in names or len(set(names)) != len(names):
        raise _bad_file(
            "The first line must name the columns: mykey_id, and optionally points and reason.",
            "1 行目は列名（mykey_id、必要に応じて points、reason）にしてください。",
        )
    has_points = "points" in names
    _check_params(params, program, has_points)
    rule = next((r for r in program.rules if r.activity == params.activity), None)
    default_points = rule.points if rule is not None else params.points
    default_reason = params.reason or (rule.name if rule is not None else None)
    if has_points and default_reason is None and "reason" not in names:
        raise _bad_file(
            "Give a reason per row (a reason column) or for the whole job.",
            "行ごとの理由（reason 列）か、ジョブ全体の理由を指定してください。",
        )
    plan = _Plan()
    seen: set[str] = set()
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(plan.lines) + len(plan.refusals) >= MAX_ROWS:
            raise _bad_file(
                f"A file holds at most {MAX_ROWS:,} rows: split it.",
                f"1 ファイルは {MAX_ROWS:,} 行までです。分割してください。",
            )
        raw_id = row[0].strip().upper() if row else ""
        if len(row) != len(names):
            plan.refusals.append(RowRefusal(number, raw_id[:40], "invalid_row"))
            continue
        cells = dict(zip(names, row, strict=True))
        if not MYKEY_ID.fullmatch(raw_id):
            plan.refusals.append(RowRefusal(number, raw_id[:40], "invalid_mykey_id"))
            continue
        points = default_points
        if has_points:
            text = (cells["points"] or "").strip().replace(",", "")
            points = int(text) if text.isascii() and text.isdigit() else None
        if points is None or not 1 <= points <= MAX_AMOUNT:
            plan.refusals.append(RowRefusal(number, raw_id, "invalid_points"))
            continue
        reason = (cells.get("reason") or "").strip() or default_reason
        if not reason or len(reason) > 200:
            plan.refusals.append(RowRefusal(number, raw_id, "invalid_reason"))
            continue
        if raw_id in seen:
            plan.refusals.append(RowRefusal(number, raw_id, "duplicate_row"))
            continue
        seen.add(raw_id)
        plan.lines.append(GrantLine(number, raw_id, points, reason))
    if not plan.lines and not plan.refusals:
        raise _bad_file("The file has no rows.", "ファイルに行がありません。")
    return plan


# ---------------------------------------------------------------------------------------------
# the job


def _view(
    row: GrantJob, *, replayed: bool = False, running: dict[str, Progress] | None = None
) -> JobView:
    progress = (running or {}).get(row.id)
    status = row.status
    if status == "queued" and progress is not None:
        status = "running"  # its worker's transaction has not committed "running" yet
    return JobView(
        id=row.id,
        municipality=row.code,
        actor=row.actor,
        status=status,
        params=json.loads(row.params),
        rows=row.rows,
        granted=row.granted,
        points=row.points,
        refused=row.refused,
        error=json.loads(row.error) if row.error else None,
        created_at=row.created_at,
        finished_at=row.finished_at,
        progress=progress if status in ("queued", "running") else None,
        replayed=replayed,
    )


def _views(uow: UnitOfWork, rows: Sequence[GrantJob]) -> list[JobView]:
    """Jobs as they stand, with the progress their workers recorded."""
    waiting = [r.id for r in rows if r.status in ("queued", "running")]
    running = queue.progress_of(uow, waiting)
    return [_view(r, running=running) for r in rows]


def _request_hash(code: str, data: bytes, params: JobParams) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([code, params.as_dict()], sort_keys=True).encode())
    digest.update(b"\x00")
    digest.update(data)
    return digest.hexdigest()


def _same_job(uow: UnitOfWork, code: str, digest: str) -> GrantJob | None:
    """The municipality's job of this very request (the same file and parameters) under
    another key, unless it was refused as a whole (it gave nothing): a colleague sending the
    same list again gets that job, not a second grant. Twins wait for each other on the
    request's hash (`serialise`), so the second finds the first's job."""
    serialise(uow.connection, scope("grant_job", code), f"request:{digest}")
    return uow.session.scalars(
        select(GrantJob)
        .where(
            GrantJob.code == code,
            GrantJob.request_hash == digest,
            GrantJob.status != "refused",
        )
        .order_by(GrantJob.created_at, GrantJob.id)
    ).first()


def submit_job(
    uow: UnitOfWork,
    *,
    municipality: str,
    actor: str,
    key: str,
    data: bytes,
    params: JobParams,
) -> JobView:
    """Record a bulk grant job (queued), or find the one this key already made.

    Run it with `run_job`. The key is the municipality's: the same key again, from any of its
    staff, answers with the job as it stands (`replayed`; its actor stays the first sender),
    and a job that failed (the server stopped, say) is queued again; the same key with another
    file or other parameters is `idempotency_key_reused`. A job is also the same request: the
    same file with the same parameters under another key (a colleague's console form, another
    script) answers with the job already made (`replayed`), unless that job was refused as a
    whole; to grant a list again on purpose, give it another reason or event."""
    code = parse_code(municipality)
    validate_actor(actor)
    validate_key(key)
    digest = _request_hash(code, data, params)

    def stored() -> tuple[str | None, JobView] | None:
        s = uow.session
        row = s.scalars(
            select(GrantJob)
            .where(GrantJob.code == code, GrantJob.client_key == key)
            .order_by(GrantJob.created_at, GrantJob.id)
        ).first()
        if row is None:
            row = _same_job(uow, code, digest)
        if row is None:
            return None
        if not same_request(row.request_hash, digest):
            return row.request_hash, _view(row, replayed=True)  # refused as reused
        if row.status == "failed":
            row.status, row.error, row.finished_at = "queued", None, None
            s.flush()
            queue.enqueue(uow, "grant_job", job_id=row.id, max_attempts=MAX_ATTEMPTS)
            return row.request_hash, _view(row)
        return row.request_hash, _views(uow, [row])[0].replay()

    def body() -> JobView:
        s = uow.session
        program_of(uow, code)  # the municipality has a program
        job_id = str(uuid5(NAMESPACE, f"grant-job\x1f{code}\x1f{key}"))
        row = GrantJob(
            id=job_id,
            code=code,
            actor=actor,
            client_key=key,
            request_hash=digest,
            params=json.dumps(params.as_dict(), sort_keys=True, ensure_ascii=False),
            status="queued",
            rows=0,
            granted=0,
            points=0,
            refused=0,
            error=None,
            created_at=uow.now(),
            finished_at=None,
        )
        s.add(row)
        s.add(GrantJobFile(job_id=job_id, data=data))
        s.flush()
        # in this transaction: the job is run if and only if it is recorded
        queue.enqueue(uow, "grant_job", job_id=job_id, max_attempts=MAX_ATTEMPTS)
        return _view(row)

    job = keyed_write(
        uow, scope=scope("grant_job", code), key=key, digest=digest, stored=stored, act=body
    )
    queue.wake()  # this process's runner, if it has one (others poll)
    return job


def _existing_residents(uow: UnitOfWork, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        rows = select_by_keys(uow.connection, RESIDENT_ID, part, [RESIDENT_ID])
        found.update(r[0] for r in rows)
    return found


def _already_granted(
    uow: UnitOfWork, code: str, activity: str, period: str, ids: Sequence[str]
) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        rows = select_by_keys(
            uow.connection,
            LIMIT_USES.c.mykey_id,
            part,
            [LIMIT_USES.c.mykey_id],
            LIMIT_USES.c.code == code,
            LIMIT_USES.c.activity == activity,
            LIMIT_USES.c.period == period,
        )
        found.update(r[0] for r in rows)
    return found


def _record_accruals(uow: UnitOfWork, code: str, year: int, ids: Sequence[str]) -> None:
    """The accrual records (R4.3) of residents whose accrual account a job just opened."""
    owners = {accrual_owner(m, year): m for m in ids}
    accounts, _ = open_accounts(uow, ledger=code, kind=AccountKind.ACCRUAL, owners=list(owners))
    known: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        rows = select_by_keys(
            uow.connection,
            ACCRUALS.c.mykey_id,
            ids[start : start + CHUNK],
            [ACCRUALS.c.mykey_id],
            ACCRUALS.c.code == code,
            ACCRUALS.c.fiscal_year == year,
        )
        known.update(r[0] for r in rows)
    now = uow.now()
    missing = [
        dict(code=code, fiscal_year=year, mykey_id=m, account_id=accounts[o], created_at=now)
        for o, m in owners.items()
        if m not in known
    ]
    for start in range(0, len(missing), CHUNK):
        insert_many(uow.connection, ACCRUALS, missing[start : start + CHUNK])


def run_job(
    uow: UnitOfWork,
    job_id: str,
    data: bytes,
    *,
    progress: Callable[[Progress], None] | None = None,
    final: bool = True,
) -> JobView:
    """Run a queued job on its file: grant every row, or none with the refusals recorded.

    A finished job is answered as it is; two runs of one job wait for each other on its row,
    and the second finds it finished. `progress` is called as the work advances. A run that
    fails (not a refusal: the database went away, say) marks the job failed if it is the
    `final` try; otherwise the job stays queued for the queue's next try."""

    def tell(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(Progress(phase, done, total))

    def start() -> GrantJob:
        row = uow.session.get(GrantJob, job_id, with_for_update=True)
        if row is None:
            raise not_found(
                "unknown_job", f"There is no job {job_id}.", f"ジョブ {job_id} はありません。"
            )
        if row.status in ("queued", "failed"):
            if _request_hash(row.code, data, JobParams(**json.loads(row.params))) != (
                row.request_hash
            ):
                raise conflict(
                    "job_file_mismatch",
                    "This is not the file the job was submitted with.",
                    "ジョブを登録したときのファイルと異なります。",
                )
            row.status = "running"
            uow.session.flush()
        return row

    def finish(row: GrantJob, status: str) -> None:
        row.status = status
        row.finished_at = uow.now()
        uow.session.flush()

    def body() -> JobView:
        row = start()
        if row.status != "running":
            return _view(row, replayed=True)
        code, params = row.code, JobParams(**json.loads(row.params))
        program = program_of(uow, code)
        tell("reading", 0, 0)
        plan = read_grant_file(data, params, program)
        lines = plan.lines
        total = len(lines) + len(plan.refusals)
        tell("checking", 0, total)
        ids = [g.mykey_id for g in lines]
        known = _existing_residents(uow, ids)
        refusals = list(plan.refusals)
        refusals += [
            RowRefusal(g.line, g.mykey_id, "unknown_mykey_id")
            for g in lines
            if g.mykey_id not in known
        ]
        today = tokyo_date(uow.now())
        rule = next((r for r in program.rules if r.activity == params.activity), None)
        period = None
        if rule is not None and rule.limit != "none":
            period = _period(rule.limit, today, params.event)
            done_before = _already_granted(uow, code, rule.activity, period, ids)
            refusals += [
                RowRefusal(g.line, g.mykey_id, "limit_reached")
                for g in lines
                if g.mykey_id in done_before and g.mykey_id in known
            ]
        row.rows = total
        if refusals:
            refusals.sort(key=lambda r: r.line)
            for start_at in range(0, len(refusals), CHUNK):
                insert_many(
                    uow.connection,
                    REFUSALS,
                    [
                        dict(
                            job_id=job_id,
                            line=r.line,
                            mykey_id=r.mykey_id,
                            code=r.code,
                            message=r.message,
                            message_ja=r.message_ja,
                        )
                        for r in refusals[start_at : start_at + CHUNK]
                    ],
                )
            row.refused = len(refusals)
            finish(row, "refused")
            return _view(row)
        tell("checking", total, total)
        budget = find_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        activity = params.activity or ""
        accrues = rule is not None and rule.accrues
        year = fiscal_year_of(today)
        extra: dict[str, object] = {}
        if accrues:  # R4.3: into each resident's accrual account for the year, no lots
            last_day, kind, lot = fiscal_year_end(today), AccountKind.ACCRUAL, None
            extra = {"accrual_year": year}
        else:
            last_day, kind = expires_on(program.validity, "budget", today), AccountKind.WALLET
            lot = LotTerms("budget", last_day)
        credits = [
            Credit(
                accrual_owner(g.mykey_id, year) if accrues else g.mykey_id,
                g.points,
                {
                    "activity": activity,
                    "reason": g.reason,
                    "expires_on": str(last_day),
                    "job": job_id,
                    "line": g.line,
                    **extra,
                },
            )
            for g in lines
        ]
        report = credit_many(
            uow,
            batch_id=UUID(job_id),
            debit=budget.id,
            credit_kind=kind,
            credits=credits,
            kind="grant",
            actor=row.actor,
            lot=lot,
            progress=lambda n: tell("granting", n, total),
        )
        if accrues:
            _record_accruals(uow, code, year, [g.mykey_id for g in lines])
        if rule is not None and period is not None:
            for start_at in range(0, len(lines), CHUNK):
                insert_many(
                    uow.connection,
                    LIMIT_USES,
                    [
                        dict(
                            code=code,
                            activity=rule.activity,
                            mykey_id=g.mykey_id,
                            period=period,
                            transfer_id=str(transfer_id(UUID(job_id), position)),
                        )
                        for position, g in enumerate(
                            lines[start_at : start_at + CHUNK], start=start_at
                        )
                    ],
                )
        if program.annual_budget is not None:
            _use_budget(uow, code, fiscal_year_of(today), report.points, program.annual_budget)
        row.granted, row.points = report.transfers, report.points
        finish(row, "done")
        return _view(row)

    def give_up(error: MyKeyError, status: str) -> JobView:
        def mark() -> JobView:
            row = uow.session.get(GrantJob, job_id)
            assert row is not None
            row.error = json.dumps(error.as_dict(), ensure_ascii=False, default=str)
            finish(row, status)
            return _view(row)

        return uow.run(mark)

    try:
        return uow.run(body)
    except MyKeyError as error:
        if error.code in ("unknown_job", "job_file_mismatch"):
            raise
        return give_up(error, "refused")
    except Exception as exc:
        if not final:
            raise
        give_up(_stopped(type(exc).__name__), "failed")
        raise


def _stopped(reason: str) -> MyKeyError:
    return MyKeyError(
        "job_failed",
        ErrorKind.CONFLICT,
        "The job stopped before it finished; nothing was granted. Send it again.",
        "ジョブが途中で止まりました。付与は行われていません。再度送信してください。",
        details={"reason": reason},
    )


def abandon(uow: UnitOfWork, job_id: str) -> None:
    """Mark a job that never finished failed (the job queue gave it up: every worker that
    tried it stopped), so that its page says so and sending it again queues it again. A job
    that finished is left as it is."""

    def body() -> None:
        row = uow.session.get(GrantJob, job_id, with_for_update=True)
        if row is None or row.status not in ("queued", "running"):
            return
        row.status, row.finished_at = "failed", uow.now()
        error = _stopped("its workers stopped, every try").as_dict()
        row.error = json.dumps(error, ensure_ascii=False, default=str)

    uow.run(body)


def run_queued(
    uow: UnitOfWork,
    job_id: str,
    *,
    progress: Callable[[Progress], None] | None = None,
    final: bool = True,
) -> JobView:
    """Run a job on the file kept with it (what the job queue's worker does)."""
    row = uow.read(lambda: uow.session.get(GrantJobFile, job_id))
    if row is None:
        raise not_found(
            "unknown_job", f"There is no job {job_id}.", f"ジョブ {job_id} はありません。"
        )
    return run_job(uow, job_id, row.data, progress=progress, final=final)


def get_job(uow: UnitOfWork, municipality: str, job_id: str) -> JobView:
    code = parse_code(municipality)

    def body() -> JobView:
        row = uow.session.get(GrantJob, job_id)
        if row is None or row.code != code:
            raise not_found(
                "unknown_job", f"There is no job {job_id}.", f"ジョブ {job_id} はありません。"
            )
        return _views(uow, [row])[0]

    return uow.read(body)


def list_jobs(uow: UnitOfWork, municipality: str, *, limit: int = 50) -> list[JobView]:
    code = parse_code(municipality)

    def body() -> list[JobView]:
        rows = uow.session.scalars(
            select(GrantJob)
            .where(GrantJob.code == code)
            .order_by(GrantJob.created_at.desc(), GrantJob.id)
            .limit(limit)
        ).all()
        return _views(uow, rows)

    return uow.read(body)


def refusals_of(
    uow: UnitOfWork, municipality: str, job_id: str, *, after_line: int = 0, limit: int = 1000
) -> list[RowRefusal]:
    """The refused rows of a job, by line."""
    get_job(uow, municipality, job_id)

    def body() -> list[RowRefusal]:
        rows = uow.session.execute(
            select(GrantJobRefusal.line, GrantJobRefusal.mykey_id, GrantJobRefusal.code)
            .where(GrantJobRefusal.job_id == job_id, GrantJobRefusal.line > after_line)
            .order_by(GrantJobRefusal.line)
            .limit(limit)
        ).all()
        return [RowRefusal(int(r.line), r.mykey_id, r.code) for r in rows]

    return uow.read(body)


def refusals_csv(refusals: Sequence[RowRefusal]) -> str:
    """The report of refused rows as CSV (with a BOM, so Excel reads the Japanese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["line", "mykey_id", "code", "理由", "reason"])
    for r in refusals:
        writer.writerow([r.line, r.mykey_id, r.code, r.message_ja, r.message])
    return "\ufeff" + buffer.getvalue()


__all__ = [
    "JobParams",
    "JobView",
    "Progress",
    "RowRefusal",
    "abandon",
    "get_job",
    "list_jobs",
    "read_grant_file",
    "refusals_csv",
    "refusals_of",
    "run_job",
    "run_queued",
    "submit_job",
]
