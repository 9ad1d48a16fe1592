"""Bank accounts for settlement, and the Zengin file that pays shops (R7.2).

A shop's payout account and a municipality's paying account are kept as versions: setting one
adds a row (unless nothing changed), the newest row applies, and older rows stay for audit.
Kana names are stored as they will be written to the bank: converted to half-width katakana
(`zengin.to_zengin`), so a name that cannot be sent is refused when it is registered, not on
the day of payment.

`payout_file` builds a municipality's general transfer file to its shops from their latest
accounts; the month's statements decide the amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError, invalid, not_found, refused
from mykey.municipalities.codes import parse_code
from mykey.municipalities.models import Municipality
from mykey.points.models import Shop
from mykey.settlement import zengin
from mykey.settlement.models import MunicipalityBankAccount, ShopPayoutAccount


@dataclass(frozen=True)
class BankAccount:
    """The bank, branch and account common to both kinds of account."""

    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    deposit_type: int
    account_number: str  # 7 digits, zero-padded

    @property
    def masked_number(self) -> str:
        """The account number as answers show it: only the last 3 digits."""
        return "****" + self.account_number[-3:]


@dataclass(frozen=True)
class PayoutAccount:
    shop_id: str
    account: BankAccount
    holder_name: str
    version: int  # the row id: a higher version is newer
    created_at: datetime
    created_by: str
    changed: bool = True  # False: the same values were set again and nothing was added


@dataclass(frozen=True)
class PayingAccount:
    municipality: str
    requester_code: str
    requester_name: str
    account: BankAccount
    version: int
    created_at: datetime
    created_by: str
    changed: bool = True


@dataclass(frozen=True)
class Payout:
    """One transfer to a shop: the amount in yen, and an optional reference of up to 10
    digits that the bank returns with the transfer (顧客コード1)."""

    shop_id: str
    amount: int
    customer_ref: str = ""


def _bank(
    *,
    bank_code: str,
    bank_name: str | None,
    branch_code: str,
    branch_name: str | None,
    deposit_type: int,
    account_number: str,
    deposit_types: frozenset[int],
) -> BankAccount:
    """Checked and normalised bank fields (the same checks the Zengin writer makes)."""
    return BankAccount(
        bank_code=zengin.check_digits(bank_code, 4, "bank_code", exact=True),
        bank_name=zengin.to_zengin(bank_name or "", field="bank_name", length=15, required=False),
        branch_code=zengin.check_digits(branch_code, 3, "branch_code", exact=True),
        branch_name=zengin.to_zengin(
            branch_name or "", field="branch_name", length=15, required=False
        ),
        deposit_type=int(zengin.check_deposit_type(deposit_type, deposit_types, "deposit_type")),
        account_number=zengin.check_digits(account_number, 7, "account_number"),
    )


def _bank_of(row: ShopPayoutAccount | MunicipalityBankAccount) -> BankAccount:
    return BankAccount(
        row.bank_code,
        row.bank_name,
        row.branch_code,
        row.branch_name,
        row.deposit_type,
        row.account_number,
    )


def _payout_view(row: ShopPayoutAccount, *, changed: bool = True) -> PayoutAccount:
    return PayoutAccount(
        row.shop_id, _bank_of(row), row.holder_name, row.id, row.created_at, row.created_by, changed
    )


def _paying_view(row: MunicipalityBankAccount, *, changed: bool = True) -> PayingAccount:
    return PayingAccount(
        row.municipality,
        row.requester_code,
        row.requester_name,
        _bank_of(row),
        row.id,
        row.created_at,
        row.created_by,
        changed,
    )


def _unknown_shop(shop_id: str) -> MyKeyError:
    return not_found(
        "unknown_shop", f"There is no shop {shop_id}.", f"店舗 {shop_id} はありません。"
    )


def _latest_payout_row(uow: UnitOfWork, shop_id: str) -> ShopPayoutAccount | None:
    return uow.session.scalars(
        select(ShopPayoutAccount)
        .where(ShopPayoutAccount.shop_id == shop_id)
        .order_by(ShopPayoutAccount.id.desc())
        .limit(1)
    ).first()


def _latest_paying_row(uow: UnitOfWork, code: str) -> MunicipalityBankAccount | None:
    return uow.session.scalars(
        select(MunicipalityBankAccount)
        .where(MunicipalityBankAccount.municipality == code)
        .order_by(MunicipalityBankAccount.id.desc())
        .limit(1)
    ).first()


def set_payout_account(
    uow: UnitOfWork,
    *,
    shop_id: str,
    bank_code: str,
    branch_code: str,
    deposit_type: int,
    account_number: str,
    holder_name: str,
    actor: str,
    bank_name: str | None = None,
    branch_name: str | None = None,
) -> PayoutAccount:
    """Register the account a shop is paid into. The same values again change nothing."""
    bank = _bank(
        bank_code=bank_code,
        bank_name=bank_name,
        branch_code=branch_code,
        branch_name=branch_name,
        deposit_type=deposit_type,
        account_number=account_number,
        deposit_types=zengin.DEPOSIT_TYPES,
    )
    holder = zengin.to_zengin(holder_name, field="holder_name", length=30)

    def body() -> PayoutAccount:
        s = uow.session
        if s.get(Shop, shop_id) is None:
            raise _unknown_shop(shop_id)
        latest = _latest_payout_row(uow, shop_id)
        if latest is not None and (_bank_of(latest), latest.holder_name) == (bank, holder):
            return _payout_view(latest, changed=False)
        row = ShopPayoutAccount(
            shop_id=shop_id,
            **vars(bank),
            holder_name=holder,
            created_at=uow.now(),
            created_by=actor[:64],
        )
        s.add(row)
        s.flush()
        return _payout_view(row)

    return uow.run(body)


def payout_account(uow: UnitOfWork, shop_id: str) -> PayoutAccount:
    """The account a shop is paid into now."""

    def body() -> PayoutAccount:
        if uow.session.get(Shop, shop_id) is None:
            raise _unknown_shop(shop_id)
        row = _latest_payout_row(uow, shop_id)
        if row is None:
            raise not_found(
                "no_payout_account",
                f"Shop {shop_id} has no payout account.",
                f"店舗 {shop_id} の振込先口座は登録されていません。",
                shop=shop_id,
            )
        return _payout_view(row)

    return uow.read(body)


def payout_account_history(uow: UnitOfWork, shop_id: str) -> list[PayoutAccount]:
    """Every version of a shop's payout account, the newest first."""

    def body() -> list[PayoutAccount]:
        if uow.session.get(Shop, shop_id) is None:
            raise _unknown_shop(shop_id)
        rows = uow.session.scalars(
            select(ShopPayoutAccount)
            .where(ShopPayoutAccount.shop_id == shop_id)
            .order_by(ShopPayoutAccount.id.desc())
        )
        return [_payout_view(row) for row in rows]

    return uow.read(body)


def _municipality(uow: UnitOfWork, code: str) -> None:
    if uow.session.get(Municipality, code) is None:
        raise not_found(
            "unknown_municipality",
            f"There is no municipality {code}.",
            f"団体コード {code} の自治体はありません。",
        )


def set_paying_account(
    uow: UnitOfWork,
    *,
    municipality: str,
    requester_code: str,
    requester_name: str,
    bank_code: str,
    branch_code: str,
    deposit_type: int,
    account_number: str,
    actor: str,
    bank_name: str | None = None,
    branch_name: str | None = None,
) -> PayingAccount:
    """Register the account a municipality pays its shops from (振込依頼人), with the requester
    code its bank assigned. The same values again change nothing."""
    code = parse_code(municipality)
    requester = zengin.check_digits(requester_code, 10, "requester_code", exact=True)
    name = zengin.to_zengin(requester_name, field="requester_name", length=40)
    bank = _bank(
        bank_code=bank_code,
        bank_name=bank_name,
        branch_code=branch_code,
        branch_name=branch_name,
        deposit_type=deposit_type,
        account_number=account_number,
        deposit_types=zengin.PAYER_DEPOSIT_TYPES,
    )

    def body() -> PayingAccount:
        _municipality(uow, code)
        latest = _latest_paying_row(uow, code)
        if latest is not None and (
            latest.requester_code,
            latest.requester_name,
            _bank_of(latest),
        ) == (requester, name, bank):
            return _paying_view(latest, changed=False)
        row = MunicipalityBankAccount(
            municipality=code,
            requester_code=requester,
            requester_name=name,
            **vars(bank),
            created_at=uow.now(),
            created_by=actor[:64],
        )
        uow.session.add(row)
        uow.session.flush()
        return _paying_view(row)

    return uow.run(body)


def paying_account(uow: UnitOfWork, municipality: str) -> PayingAccount:
    """The account a municipality pays from now."""
    code = parse_code(municipality)

    def body() -> PayingAccount:
        _municipality(uow, code)
        row = _latest_paying_row(uow, code)
        if row is None:
            raise not_found(
                "no_paying_account",
                f"Municipality {code} has no paying bank account.",
                f"団体コード {code} の振込元口座は登録されていません。",
                municipality=code,
            )
        return _paying_view(row)

    return uow.read(body)


def payout_file(
    uow: UnitOfWork,
    *,
    municipality: str,
    payouts: Sequence[Payout],
    transfer_date: date,
    crlf: bool = True,
) -> bytes:
    """The Zengin general transfer file paying these shops from the municipality's account,
    each into its latest payout account. Zero amounts are skipped; a shop without a payout
    account is refused, and the refusal lists every such shop. Reads only."""
    code = parse_code(municipality)
    for p in payouts:
        if isinstance(p.amount, bool) or not isinstance(p.amount, int) or p.amount < 0:
            raise invalid(
                "invalid_amount",
                f"The payout to shop {p.shop_id} must be whole yen, 0 or more, not {p.amount!r}.",
                f"店舗 {p.shop_id} への支払額は0円以上の整数です({p.amount!r})。",
                shop=p.shop_id,
            )
        ref = p.customer_ref
        if ref and not (ref.isascii() and ref.isdigit() and len(ref) <= 10):
            raise invalid(
                "invalid_customer_ref",
                f"The reference of the payout to shop {p.shop_id} is up to 10 digits, not {ref!r}.",
                f"店舗 {p.shop_id} への支払の顧客コードは10桁以内の数字です({ref!r})。",
                shop=p.shop_id,
            )
    paying = [p for p in payouts if p.amount > 0]
    if not paying:
        raise refused(
            "nothing_to_pay",
            "Every payout is zero: there is nothing to transfer.",
            "支払額がすべて0円のため、振込データはありません。",
        )
    shop_ids = sorted({p.shop_id for p in paying})

    def body() -> bytes:
        s = uow.session
        _municipality(uow, code)
        payer_row = _latest_paying_row(uow, code)
        if payer_row is None:
            raise refused(
                "no_paying_account",
                f"Municipality {code} has no paying bank account to transfer from.",
                f"団体コード {code} の振込元口座が登録されていません。",
                municipality=code,
            )
        known = set(s.scalars(select(Shop.id).where(Shop.id.in_(shop_ids))))
        unknown = [shop for shop in shop_ids if shop not in known]
        if unknown:
            raise not_found(
                "unknown_shop",
                f"There are no shops {', '.join(unknown)}.",
                f"店舗 {', '.join(unknown)} はありません。",
                shops=unknown,
            )
        newest = (
            select(func.max(ShopPayoutAccount.id))
            .where(ShopPayoutAccount.shop_id.in_(shop_ids))
            .group_by(ShopPayoutAccount.shop_id)
        )
        accounts = {
            row.shop_id: row
            for row in s.scalars(select(ShopPayoutAccount).where(ShopPayoutAccount.id.in_(newest)))
        }
        missing = [shop for shop in shop_ids if shop not in accounts]
        if missing:
            raise refused(
                "no_payout_account",
                f"These shops have no payout account: {', '.join(missing)}.",
                f"振込先口座が未登録の店舗があります: {', '.join(missing)}",
                shops=missing,
            )
        payer = zengin.Payer(
            requester_code=payer_row.requester_code,
            name=payer_row.requester_name,
            bank_code=payer_row.bank_code,
            bank_name=payer_row.bank_name,
            branch_code=payer_row.branch_code,
            branch_name=payer_row.branch_name,
            deposit_type=payer_row.deposit_type,
            account_number=payer_row.account_number,
        )
        lines = []
        for p in paying:
            row = accounts[p.shop_id]
            lines.append(
                zengin.TransferLine(
                    bank_code=row.bank_code,
                    bank_name=row.bank_name,
                    branch_code=row.branch_code,
                    branch_name=row.branch_name,
                    deposit_type=row.deposit_type,
                    account_number=row.account_number,
                    holder_name=row.holder_name,
                    amount=p.amount,
                    customer_code1=p.customer_ref,
                )
            )
        return zengin.transfer_file(payer, lines, transfer_date, crlf=crlf)

    return uow.read(body)


@dataclass(frozen=True)
class MonthPayouts:
    """What a municipality pays its shops for a closed month, from the shop statements in its
    points: each shop's `payable` (the statement's amount less what the commerce association
    already paid it for receipt vouchers). A negative payable (refunds after the shop's sales,
    e.g. a late refund) is not paid: the shop owes it, and it is listed in `owed`."""

    municipality: str
    month: str
    payouts: tuple[Payout, ...]
    owed: tuple[Payout, ...]

    @property
    def total(self) -> int:
        return sum(p.amount for p in self.payouts)


def month_payouts(uow: UnitOfWork, *, municipality: str, month: str) -> MonthPayouts:
    """The shop payouts of a closed month (refused while the month is open)."""
    from mykey.settlement import statements

    code = parse_code(municipality)
    label = statements.parse_month(month).label
    if not statements.is_closed(uow, label):
        raise refused(
            "month_not_closed",
            f"{label} is not closed yet: close it first (mykey settle close --month {label}).",
            f"{label} はまだ締められていません。先に月次締めを行ってください。",
            month=label,
        )
    shops = statements.list_statements(
        uow, month=label, municipality=code, party_kind=statements.SHOP
    )
    ref = label.replace("-", "")  # 顧客コード1: YYYYMM, returned by the bank with the transfer
    return MonthPayouts(
        municipality=code,
        month=label,
        payouts=tuple(Payout(s.party_id, s.payable, ref) for s in shops if s.payable > 0),
        owed=tuple(Payout(s.party_id, -s.payable, ref) for s in shops if s.payable < 0),
    )


def month_payout_file(
    uow: UnitOfWork,
    *,
    municipality: str,
    month: str,
    transfer_date: date,
    crlf: bool = True,
) -> tuple[MonthPayouts, bytes]:
    """The Zengin general transfer file of a closed month's shop payouts (reads only)."""
    plan = month_payouts(uow, municipality=municipality, month=month)
    data = payout_file(
        uow,
        municipality=plan.municipality,
        payouts=plan.payouts,
        transfer_date=transfer_date,
        crlf=crlf,
    )
    return plan, data
