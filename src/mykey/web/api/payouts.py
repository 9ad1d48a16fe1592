"""Bank accounts for settlement over HTTP (R7.2): a shop's payout account and a municipality's
paying account. Only that municipality's staff or a council operator may set or read them.
Answers show the account number masked to its last 3 digits; the full number leaves the
system only in the Zengin transfer file sent to the bank."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mykey.identity.keys import Principal, Role
from mykey.points import shops
from mykey.settlement import payouts
from mykey.web.api.numbers import DepositType
from mykey.web.api.points import _own_municipality
from mykey.web.auth import require
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["settlement"])

StaffOrOperator = Annotated[Principal, Depends(require(Role.MUNICIPALITY_STAFF, Role.OPERATOR))]


class BankFields(BaseModel):
    bank_code: str = Field(description="4 digits (金融機関コード)", examples=["0001"])
    bank_name: str = Field(default="", description="kana, up to 15 half-width characters")
    branch_code: str = Field(description="3 digits (支店番号)", examples=["123"])
    branch_name: str = Field(default="", description="kana, up to 15 half-width characters")
    deposit_type: DepositType = Field(description="1 普通, 2 当座, 4 貯蓄, 9 その他")
    account_number: str = Field(description="up to 7 digits (zero-padded)")


class PayoutAccountIn(BankFields):
    holder_name: str = Field(
        description="the account holder in kana (full-width is converted), up to 30",
        examples=["ｼﾖｳﾃﾝ"],
    )


class BankOut(BaseModel):
    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    deposit_type: int
    account_number_masked: str = Field(description="only the last 3 digits, e.g. ****567")


class PayoutAccountOut(BankOut):
    shop_id: str
    holder_name: str
    version: int
    since: datetime
    set_by: str
    changed: bool = Field(description="false: the same values were already registered")


class PayingAccountIn(BankFields):
    requester_code: str = Field(description="10 digits assigned by the bank (委託者コード)")
    requester_name: str = Field(description="the municipality in kana, up to 40")
    deposit_type: DepositType = Field(description="1 普通, 2 当座, 9 その他")


class PayingAccountOut(BankOut):
    municipality: str
    requester_code: str
    requester_name: str
    version: int
    since: datetime
    set_by: str
    changed: bool


def _bank_out(bank: payouts.BankAccount) -> dict[str, Any]:
    return BankOut(
        bank_code=bank.bank_code,
        bank_name=bank.bank_name,
        branch_code=bank.branch_code,
        branch_name=bank.branch_name,
        deposit_type=bank.deposit_type,
        account_number_masked=bank.masked_number,
    ).model_dump()


def _payout_out(view: payouts.PayoutAccount) -> PayoutAccountOut:
    return PayoutAccountOut(
        **_bank_out(view.account),
        shop_id=view.shop_id,
        holder_name=view.holder_name,
        version=view.version,
        since=view.created_at,
        set_by=view.created_by,
        changed=view.changed,
    )


def _paying_out(view: payouts.PayingAccount) -> PayingAccountOut:
    return PayingAccountOut(
        **_bank_out(view.account),
        municipality=view.municipality,
        requester_code=view.requester_code,
        requester_name=view.requester_name,
        version=view.version,
        since=view.created_at,
        set_by=view.created_by,
        changed=view.changed,
    )


def _shop_of_own_municipality(uow: Uow, who: Principal, shop_id: str) -> str:
    """The shop, if the caller may handle its money: staff of its municipality, or operators."""
    shop = shops.get_shop(uow, shop_id)
    _own_municipality(who, shop.municipality)
    return shop.id


@router.put("/shops/{shop_id}/payout-account", response_model=PayoutAccountOut)
def put_payout_account(
    shop_id: str, body: PayoutAccountIn, uow: Uow, who: StaffOrOperator
) -> PayoutAccountOut:
    """Register the account the shop is paid into (a new version; the old ones are kept)."""
    own = _shop_of_own_municipality(uow, who, shop_id)
    return _payout_out(
        payouts.set_payout_account(
            uow,
            shop_id=own,
            bank_code=body.bank_code,
            bank_name=body.bank_name,
            branch_code=body.branch_code,
            branch_name=body.branch_name,
            deposit_type=body.deposit_type,
            account_number=body.account_number,
            holder_name=body.holder_name,
            actor=who.actor,
        )
    )


@router.get("/shops/{shop_id}/payout-account", response_model=PayoutAccountOut)
def get_payout_account(shop_id: str, uow: Uow, who: StaffOrOperator) -> PayoutAccountOut:
    """The account the shop is paid into now."""
    own = _shop_of_own_municipality(uow, who, shop_id)
    return _payout_out(payouts.payout_account(uow, own))


@router.get("/shops/{shop_id}/payout-account/history", response_model=list[PayoutAccountOut])
def get_payout_account_history(
    shop_id: str, uow: Uow, who: StaffOrOperator
) -> list[PayoutAccountOut]:
    """Every version of the shop's payout account, the newest first."""
    own = _shop_of_own_municipality(uow, who, shop_id)
    return [_payout_out(v) for v in payouts.payout_account_history(uow, own)]


@router.put("/municipalities/{code}/bank-account", response_model=PayingAccountOut)
def put_paying_account(
    code: str, body: PayingAccountIn, uow: Uow, who: StaffOrOperator
) -> PayingAccountOut:
    """Register the account the municipality pays its shops from (振込依頼人)."""
    own = _own_municipality(who, code)
    return _paying_out(
        payouts.set_paying_account(
            uow,
            municipality=own,
            requester_code=body.requester_code,
            requester_name=body.requester_name,
            bank_code=body.bank_code,
            bank_name=body.bank_name,
            branch_code=body.branch_code,
            branch_name=body.branch_name,
            deposit_type=body.deposit_type,
            account_number=body.account_number,
            actor=who.actor,
        )
    )


@router.get("/municipalities/{code}/bank-account", response_model=PayingAccountOut)
def get_paying_account(code: str, uow: Uow, who: StaffOrOperator) -> PayingAccountOut:
    """The account the municipality pays from now."""
    own = _own_municipality(who, code)
    return _paying_out(payouts.paying_account(uow, own))
