"""The ledger's invariants, proved from the stored rows (`mykey ledger check`).

1. Every ledger sums to zero (posted and pending).
2. Every account's stored counters (its row plus its stripes) equal the sum of its transfers.
3. Every wallet's available points equal the sum of its lots' remainders.
4. No guarded account is below zero.
5. Every lot's remainder equals what it started with less what debits took from it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import text

from mykey.db import UnitOfWork
from mykey.ledger.accounts import AccountKind


@dataclass(frozen=True)
class Problem:
    code: str
    subject: str  # "ledger 131164", "account 17", "lot 3"
    message: str


@dataclass(frozen=True)
class CheckReport:
    ledgers: int
    accounts: int
    transfers: int
    lots: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


COMPUTED = text(
    """
    SELECT acc, SUM(dp), SUM(cp), SUM(dq), SUM(cq) FROM (
      SELECT debit_account_id AS acc, amount AS dp, 0 AS cp, 0 AS dq, 0 AS cq
        FROM ledger_transfers WHERE phase IN ('single', 'post')
      UNION ALL
      SELECT credit_account_id, 0, amount, 0, 0
        FROM ledger_transfers WHERE phase IN ('single', 'post')
      UNION ALL
      SELECT p.debit_account_id, 0, 0, p.amount, 0 FROM ledger_transfers p
       WHERE p.phase = 'pending'
         AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
      UNION ALL
      SELECT p.credit_account_id, 0, 0, 0, p.amount FROM ledger_transfers p
       WHERE p.phase = 'pending'
         AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
    ) AS movements GROUP BY acc
    """
)

STORED = text(
    """
    SELECT a.id, a.ledger, a.kind, a.guarded,
           a.debits_posted + COALESCE(s.dp, 0), a.credits_posted + COALESCE(s.cp, 0),
           a.debits_pending + COALESCE(s.dq, 0), a.credits_pending + COALESCE(s.cq, 0)
      FROM ledger_accounts a
      LEFT JOIN (SELECT account_id, SUM(debits_posted) AS dp, SUM(credits_posted) AS cp,
                        SUM(debits_pending) AS dq, SUM(credits_pending) AS cq
                   FROM ledger_account_stripes GROUP BY account_id) s ON s.account_id = a.id
     ORDER BY a.id
    """
)

LOT_SUMS = text("SELECT account_id, SUM(remaining) FROM ledger_lots GROUP BY account_id")

LOT_USES = text(
    """
    SELECT l.id, l.original, l.remaining, COALESCE(SUM(u.amount), 0)
      FROM ledger_lots l LEFT JOIN ledger_lot_uses u ON u.lot_id = l.id
     GROUP BY l.id, l.original, l.remaining
    HAVING l.original - COALESCE(SUM(u.amount), 0) <> l.remaining
    """
)


def check(uow: UnitOfWork) -> CheckReport:
    def body() -> CheckReport:
        s = uow.session
        problems: list[Problem] = []
        computed = {int(r[0]): tuple(int(x) for x in r[1:]) for r in s.execute(COMPUTED).all()}
        lot_sums = {int(r[0]): int(r[1]) for r in s.execute(LOT_SUMS).all()}
        posted_sum: dict[str, int] = defaultdict(int)
        pending_sum: dict[str, int] = defaultdict(int)
        accounts = 0
        for row in s.execute(STORED).all():
            accounts += 1
            account_id, ledger, kind, guarded = int(row[0]), str(row[1]), str(row[2]), bool(row[3])
            dp, cp, dq, cq = (int(x) for x in row[4:])
            posted_sum[ledger] += cp - dp
            pending_sum[ledger] += cq - dq
            expected = computed.get(account_id, (0, 0, 0, 0))
            if (dp, cp, dq, cq) != expected:
                problems.append(
                    Problem(
                        "balance_mismatch",
                        f"account {account_id}",
                        f"stored counters (debits {dp}, credits {cp}, pending debits {dq},"
                        f" pending credits {cq}) differ from its transfers {expected}",
                    )
                )
            available = cp - dp - dq
            if guarded and available < 0:
                problems.append(
                    Problem("negative_balance", f"account {account_id}", f"available {available}")
                )
            if AccountKind(kind).has_lots and available != lot_sums.get(account_id, 0):
                problems.append(
                    Problem(
                        "lots_mismatch",
                        f"account {account_id}",
                        f"available {available} but its lots hold {lot_sums.get(account_id, 0)}",
                    )
                )
        for ledger in sorted(set(posted_sum) | set(pending_sum)):
            if posted_sum[ledger] or pending_sum[ledger]:
                problems.append(
                    Problem(
                        "ledger_not_zero",
                        f"ledger {ledger}",
                        f"posted sum {posted_sum[ledger]}, pending sum {pending_sum[ledger]}",
                    )
                )
        for lot_id, original, remaining, used in s.execute(LOT_USES).all():
            problems.append(
                Problem(
                    "lot_mismatch",
                    f"lot {lot_id}",
                    f"original {original} less uses {used} is not its remainder {remaining}",
                )
            )
        counts = s.execute(
            text(
                "SELECT (SELECT COUNT(*) FROM ledger_ledgers),"
                " (SELECT COUNT(*) FROM ledger_transfers), (SELECT COUNT(*) FROM ledger_lots)"
            )
        ).one()
        return CheckReport(
            int(counts[0]), accounts, int(counts[1]), int(counts[2]), tuple(problems)
        )

    return uow.read(body)
