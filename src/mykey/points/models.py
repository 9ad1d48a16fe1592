"""A municipality's point program and its grant rules."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime


class PointProgram(Base):
    """One per municipality; its code is also its ledger's code."""

    __tablename__ = "point_programs"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    point_name: Mapped[str] = mapped_column(String(100))
    terms: Mapped[str] = mapped_column(Text)
    validity: Mapped[str] = mapped_column(Text)  # JSON: funding source -> months (null: FY end)
    usable_at: Mapped[str] = mapped_column(Text)  # JSON list of kinds of place
    premium_permille: Mapped[int] = mapped_column(Integer, default=0)
    annual_budget: Mapped[int | None] = mapped_column(BigInteger)  # points per fiscal year
    # what a resident's accrued points become at year end unless they choose: payout | donation
    accrual_default: Mapped[str] = mapped_column(
        String(8), default="donation", server_default="donation"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GrantRule(Base):
    """A named activity and the points it earns (volunteer 200, health-walk rally 500 …)."""

    __tablename__ = "grant_rules"

    code: Mapped[str] = mapped_column(
        String(6), ForeignKey("point_programs.code"), primary_key=True
    )
    activity: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(Integer)
    limit: Mapped[str] = mapped_column(  # none | event | day | year: once per person per …
        String(8), default="none", server_default="none"
    )
    # accumulating (R4.3): its points accrue over the fiscal year, then are paid out or donated
    accrues: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class GrantLimitUse(Base):
    """One row per person per limited period: the primary key makes a second grant fail."""

    __tablename__ = "grant_limit_uses"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    activity: Mapped[str] = mapped_column(String(32), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(80), primary_key=True)  # event:…, day:…, fy:…
    transfer_id: Mapped[str] = mapped_column(String(36))


class BudgetUse(Base):
    """Points granted from a program's budget in one fiscal year, against its cap."""

    __tablename__ = "program_budget_uses"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    granted: Mapped[int] = mapped_column(BigInteger, default=0)


class Accrual(Base):
    """A resident's accrual account for one program and fiscal year (R4.3)."""

    __tablename__ = "accruals"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccrualChoice(Base):
    """What a resident wants done with their accrued points at year end."""

    __tablename__ = "accrual_choices"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    choice: Mapped[str] = mapped_column(String(8))  # payout | donation
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccrualClosing(Base):
    """What the year-end close did with one resident's accrued points: a payout (yen owed,
    pending until staff record the bank transfer) or a donation."""

    __tablename__ = "accrual_closings"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(8))  # payout | donation
    points: Mapped[int] = mapped_column(BigInteger)  # 1 point = 1 yen
    status: Mapped[str] = mapped_column(String(8))  # pending | paid (payout); donated
    transfer_id: Mapped[str] = mapped_column(String(36))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_by: Mapped[str | None] = mapped_column(String(128))
    paid_reference: Mapped[str | None] = mapped_column(String(100))
    paid_transfer_id: Mapped[str | None] = mapped_column(String(36))


class RankingAward(Base):
    """A ranking that staff turned into grants, kept as it was then (a voucher issue can use it
    later); the (actor, key) pair makes running the award again grant once."""

    __tablename__ = "ranking_awards"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv5 of (actor, key)
    code: Mapped[str] = mapped_column(String(6))
    actor: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    activity: Mapped[str | None] = mapped_column(String(32))
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    top: Mapped[int] = mapped_column(Integer)
    minimum: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RankingAwardEntry(Base):
    """One ranked resident of an award, as ranked when the award was made."""

    __tablename__ = "ranking_award_entries"

    award_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ranking_awards.id"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8))
    earned: Mapped[int] = mapped_column(BigInteger)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime())
