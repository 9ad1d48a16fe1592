"""The registry of local governments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime


class Municipality(Base):
    __tablename__ = "municipalities"
    __table_args__ = (Index("ix_municipalities_prefecture", "prefecture_code", "code"),)

    code: Mapped[str] = mapped_column(String(6), primary_key=True)  # 団体コード
    prefecture_code: Mapped[str] = mapped_column(String(2))
    prefecture: Mapped[str] = mapped_column(String(8))  # 都道府県名
    name: Mapped[str] = mapped_column(String(64))  # 市区町村名 (the prefecture's own name for it)
    kana: Mapped[str] = mapped_column(String(128))
    lat: Mapped[str | None] = mapped_column(String(24))  # kept as given: decimal text, no floats
    lng: Mapped[str | None] = mapped_column(String(24))
    url: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
