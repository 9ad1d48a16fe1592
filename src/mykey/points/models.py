"""A municipality's point program and its grant rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
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


class CorrectionCase(Base):
    """A correction of one transfer (points credited to the wrong resident, or a grant to
    undo): proposed by one staff member, approved (and executed) by another.

    At most one case per transfer is proposed or approved at a time (a partial unique index);
    a rejected or withdrawn case leaves room for a new one."""

    __tablename__ = "correction_cases"
    __table_args__ = (
        UniqueConstraint("proposed_by", "proposal_key"),
        Index(
            "uq_correction_cases_active_transfer",
            "transfer_id",
            unique=True,
            sqlite_where=text("status IN ('proposed', 'approved')"),
            postgresql_where=text("status IN ('proposed', 'approved')"),
        ),
        Index("ix_correction_cases_municipality", "municipality", "proposed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(8))  # move | reverse
    transfer_id: Mapped[str] = mapped_column(String(36))
    points: Mapped[int] = mapped_column(BigInteger)  # the original transfer's amount
    wrong_mykey_id: Mapped[str] = mapped_column(String(8))
    right_mykey_id: Mapped[str | None] = mapped_column(String(8))
    reason_code: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # proposed|approved|rejected|withdrawn
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposal_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
    moved: Mapped[int] = mapped_column(BigInteger, default=0)  # taken from the wrong wallet
    funded: Mapped[int] = mapped_column(BigInteger, default=0)  # paid from the budget (move)
    claimed: Mapped[int] = mapped_column(BigInteger, default=0)  # spent: owed by the holder
    budget_returned: Mapped[int] = mapped_column(BigInteger, default=0)


class CorrectionLeg(Base):
    """One ledger transfer an approved case made (move, fund or reverse)."""

    __tablename__ = "correction_legs"

    case_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("correction_cases.id"), primary_key=True
    )
    leg: Mapped[str] = mapped_column(String(16), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(36))
    points: Mapped[int] = mapped_column(BigInteger)


class CorrectionClaim(Base):
    """Points the wrong holder had already spent when the case was approved: owed back, not
    forced out of the wallet (no balance goes below zero)."""

    __tablename__ = "correction_claims"

    case_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("correction_cases.id"), primary_key=True
    )
    municipality: Mapped[str] = mapped_column(String(6))
    mykey_id: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))  # open
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
