"""What a resident holds (R3.2, R3.3): points per municipality, their lots, their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.ledger import AccountKind
from mykey.points.models import PointProgram

RESERVED = "reserved"  # the ledger of 留保ポイント (converted, no municipality chosen yet)
SPECIAL_EVENT = "special_event"  # funding source of 特定支援イベントポイント


@dataclass(frozen=True)
class Lot:
    funding: str
    expires_on: date
    remaining: int


@dataclass(frozen=True)
class Holding:
    municipality: str
    point_name: str
    balance: int
    special_event: int
    lots: tuple[Lot, ...]


@dataclass(frozen=True)
class Points:
    holdings: tuple[Holding, ...]
    reserved: int


def points_of(uow: UnitOfWork, mykey_id: str) -> Points:
    def body() -> Points:
        names = {
            code: name
            for code, name in uow.session.execute(
                select(PointProgram.code, PointProgram.point_name)
            )
        }
        holdings = []
        reserved = 0
        for account_id, code in ledger.accounts_of(uow, owner=mykey_id, kind=AccountKind.WALLET):
            available = ledger.balance(uow, account_id).available
            if code == RESERVED:
                reserved += available
                continue
            lots = tuple(
                Lot(lot.funding, lot.expires_on, lot.remaining)
                for lot in ledger.wallet_lots(uow, account_id)
            )
            holdings.append(
                Holding(
                    municipality=code,
                    point_name=names.get(code, code),
                    balance=available,
                    special_event=sum(
                        lot.remaining for lot in lots if lot.funding == SPECIAL_EVENT
                    ),
                    lots=lots,
                )
            )
        return Points(tuple(holdings), reserved)

    return uow.read(body)


def history_of(
    uow: UnitOfWork, mykey_id: str, *, limit: int = 50, before: int | None = None
) -> ledger.HistoryPage:
    """Every transfer in or out of the resident's wallets, newest first."""
    wallets = [a for a, _ in ledger.accounts_of(uow, owner=mykey_id, kind=AccountKind.WALLET)]
    return ledger.history_of(uow, wallets, limit=limit, before=before)
