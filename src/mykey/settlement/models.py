"""Bank accounts for settlement in yen: where a shop is paid, and what a municipality pays
from. Both tables are append-only: a change is a new row, the newest row applies, and the old
rows stay for audit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ShopPayoutAccount(Base):
    """A version of a shop's payout account (振込先口座); kana names in half-width form."""

    __tablename__ = "shop_payout_accounts"
    __table_args__ = (Index("ix_shop_payout_accounts_shop_id_id", "shop_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(16), ForeignKey("shops.id"))
    bank_code: Mapped[str] = mapped_column(String(4))
    bank_name: Mapped[str] = mapped_column(String(15))
    branch_code: Mapped[str] = mapped_column(String(3))
    branch_name: Mapped[str] = mapped_column(String(15))
    deposit_type: Mapped[int] = mapped_column(Integer)  # 1 普通, 2 当座, 4 貯蓄, 9 その他
    account_number: Mapped[str] = mapped_column(String(7))
    holder_name: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class MunicipalityBankAccount(Base):
    """A version of a municipality's paying account (振込依頼人) with its bank's requester
    code (委託者コード)."""

    __tablename__ = "municipality_bank_accounts"
    __table_args__ = (Index("ix_municipality_bank_accounts_municipality_id", "municipality", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    municipality: Mapped[str] = mapped_column(String(6), ForeignKey("municipalities.code"))
    requester_code: Mapped[str] = mapped_column(String(10))
    requester_name: Mapped[str] = mapped_column(String(40))
    bank_code: Mapped[str] = mapped_column(String(4))
    bank_name: Mapped[str] = mapped_column(String(15))
    branch_code: Mapped[str] = mapped_column(String(3))
    branch_name: Mapped[str] = mapped_column(String(15))
    deposit_type: Mapped[int] = mapped_column(Integer)  # 1 普通, 2 当座, 9 その他
    account_number: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
