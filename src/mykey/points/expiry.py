"""Expiry of points (R3.4): lots past their last day lapse to the municipality's EXPIRED
account, by funding source (each lot's own transfer keeps its funding in the metadata).

`expire_points` is safe to run twice and to stop half way (each lot's expiry has its own
derived idempotency key, and each batch is its own transaction). `mykey points expire` runs it
with a progress bar, and the job queue's daily job runs it (`DailyJobs`, which also sweeps
reserved points).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from mykey import ledger
from mykey.db import UnitOfWork, tokyo_date
from mykey.identity.staff import purge_page_sessions
from mykey.ledger.models import LotRow
from mykey.points.reserved import SweepReport, sweep_reserved
from mykey.points.vouchers import expire_vouchers

SOON_DAYS = 30
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expiring:
    expires_on: date
    points: int


def expire_points(
    uow: UnitOfWork,
    *,
    as_of: date,
    municipality: str | None = None,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ledger.ExpiryReport:
    """Expire every lot whose last day is before `as_of` (Tokyo dates)."""
    return ledger.expire_lots(uow, as_of=as_of, ledger=municipality, batch=batch, progress=progress)


def count_lapsed(uow: UnitOfWork, *, as_of: date, municipality: str | None = None) -> int:
    """How many lots an expiry run as of `as_of` has to expire (for a progress bar)."""
    stmt = (
        select(func.count())
        .select_from(LotRow)
        .where(LotRow.expires_on < as_of, LotRow.remaining > 0)
    )
    if municipality is not None:
        stmt = stmt.where(LotRow.ledger == municipality)
    return uow.read(lambda: int(uow.session.execute(stmt).scalar_one()))


def expiring_soon(
    lots: Iterable[tuple[date, int]], today: date, *, days: int = SOON_DAYS
) -> list[Expiring]:
    """Of (last day, points) pairs, the points whose last day is within `days` from today,
    summed per day, earliest first."""
    horizon = today + timedelta(days=days)
    per_day: dict[date, int] = {}
    for last_day, points in lots:
        if today <= last_day <= horizon and points > 0:
            per_day[last_day] = per_day.get(last_day, 0) + points
    return [Expiring(day, per_day[day]) for day in sorted(per_day)]


class DailyJobs:
    """The daily work (the job queue's periodic `daily` and `holds` jobs run it: once a Tokyo
    day, and every 10 minutes): release online holds that expired, expire lapsed vouchers and
    points (R3.4), sweep reserved points left unassigned through the 14th Tokyo day after
    their conversion to each resident's default municipality (R3.3), purge ended page
    sessions. All of it is safe to run again, so a retried job does no harm."""

    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], clock: Callable[[], datetime]
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self.last_run: date | None = None
        self.last_sweep: SweepReport | None = None

    def release_holds(self) -> int:
        held = ledger.void_expired(self._uow_factory(), now=self._clock())
        if held:
            log.info("released %d expired online holds", held)
        return held

    def run_once(self) -> ledger.ExpiryReport | None:
        """Release expired holds; then the day's work, unless this object did it today."""
        self.release_holds()
        today = tokyo_date(self._clock())
        if self.last_run == today:
            return None
        return self.run_day(today)

    def run_day(self, today: date) -> ledger.ExpiryReport:
        returned = expire_vouchers(self._uow_factory(), as_of=today)
        log.info(
            "daily voucher expiry %s: %d vouchers, %d points",
            today,
            returned.vouchers,
            returned.points,
        )
        report = expire_points(self._uow_factory(), as_of=today)
        log.info("daily expiry %s: %d lots, %d points", today, report.lots, report.points)
        swept = sweep_reserved(self._uow_factory(), as_of=today)
        log.info(
            "daily sweep of reserved points %s: %d points of %d residents (%d skipped, %d failed)",
            today,
            swept.points,
            swept.residents,
            swept.skipped_residents,
            swept.failed_residents,
        )
        purged = purge_page_sessions(self._uow_factory())
        log.info("daily purge of ended page sessions: %d", purged)
        self.last_run, self.last_sweep = today, swept
        return report
