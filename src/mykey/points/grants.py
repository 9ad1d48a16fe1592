"""Administrative points (R4): staff grant a resident points from the municipality's budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from mykey import ledger
from mykey.db import UnitOfWork, tokyo_date
from mykey.errors import invalid, not_found
from mykey.identity.models import Resident
from mykey.identity.residents import normalise_mykey_id
from mykey.ledger import AccountKind, LotTerms
from mykey.municipalities.codes import parse_code
from mykey.points.program_setup import program_of
from mykey.points.programs import expires_on


@dataclass(frozen=True)
class GrantReceipt:
    transfer_id: UUID
    municipality: str
    mykey_id: str
    points: int
    balance: int
    expires_on: date
    replayed: bool


def grant_points(
    uow: UnitOfWork,
    *,
    municipality: str,
    mykey_id: str,
    actor: str,
    key: str,
    reason: str,
    activity: str | None = None,
    points: int | None = None,
) -> GrantReceipt:
    """Grant points for an activity of the program's rules (its points), or a given number of
    points with a reason (a life event, say). The same key from the same actor grants once."""
    code = parse_code(municipality)
    who = normalise_mykey_id(mykey_id)
    if (activity is None) == (points is None):
        raise invalid(
            "invalid_grant",
            "Name an activity of the program's rules, or give points (not both).",
            "付与ルールの活動名、またはポイント数のどちらか一方を指定してください。",
        )
    if not reason.strip() or len(reason) > 200:
        raise invalid("invalid_reason", "A grant needs a reason.", "付与理由が必要です。")

    def body() -> GrantReceipt:
        program = program_of(uow, code)
        amount = points
        if activity is not None:
            rule = next((r for r in program.rules if r.activity == activity), None)
            if rule is None:
                raise not_found(
                    "unknown_activity",
                    f"The program has no activity {activity!r}.",
                    f"付与ルールに活動 {activity!r} はありません。",
                )
            amount = rule.points
        assert amount is not None
        if uow.session.get(Resident, who) is None:
            raise not_found(
                "unknown_mykey_id",
                f"There is no MyKey ID {who}.",
                f"マイキーID {who} は存在しません。",
            )
        budget = ledger.find_account(uow, ledger=code, kind=AccountKind.BUDGET, owner=code)
        wallet = ledger.open_account(uow, ledger=code, kind=AccountKind.WALLET, owner=who)
        last_day = expires_on(program.validity, "budget", tokyo_date(uow.now()))
        receipt = ledger.transfer(
            uow,
            debit=budget.id,
            credit=wallet.id,
            amount=amount,
            kind="grant",
            actor=actor,
            key=key,
            lot=LotTerms("budget", last_day),
            metadata={"activity": activity or "", "reason": reason, "expires_on": str(last_day)},
        )
        return GrantReceipt(
            transfer_id=receipt.transfer_id,
            municipality=code,
            mykey_id=who,
            points=receipt.amount,
            balance=ledger.balance(uow, wallet.id).available,
            expires_on=date.fromisoformat(str(receipt.metadata["expires_on"])),
            replayed=receipt.replayed,
        )

    return uow.run(body)
