"""A municipality's point program and its grant rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
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


class GrantJob(Base):
    """A bulk grant (a CSV of grants, or an eligibility list): granted all at once, or not at
    all with a report of every refused row. One per staff member and idempotency key."""

    __tablename__ = "grant_jobs"
    __table_args__ = (UniqueConstraint("actor", "client_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(6), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    client_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)  # JSON: activity, points, reason, event
    status: Mapped[str] = mapped_column(String(8))  # queued running done refused failed
    rows: Mapped[int] = mapped_column(Integer, default=0)
    granted: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # JSON problem of a refused whole file
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GrantJobRefusal(Base):
    """One refused row of a bulk grant: its line in the file and why."""

    __tablename__ = "grant_job_refusals"

    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("grant_jobs.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(300))
    message_ja: Mapped[str] = mapped_column(String(300))
