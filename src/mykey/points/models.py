"""A municipality's point program and its grant rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
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
