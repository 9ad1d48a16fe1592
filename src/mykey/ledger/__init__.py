"""The points ledger: the public verbs every other domain calls.

It imports no other domain (only `mykey.db` and `mykey.errors`); see ARCHITECTURE.md.
"""

from mykey.ledger.accounts import (
    Account,
    AccountKind,
    Balance,
    Ledger,
    balance,
    find_account,
    get_account,
    open_account,
    open_ledger,
)
from mykey.ledger.check import CheckReport, Problem, check
from mykey.ledger.queries import (
    HistoryEntry,
    HistoryPage,
    LotView,
    accounts_of,
    history,
    history_of,
    wallet_lots,
)
from mykey.ledger.transfers import (
    ExpiryReport,
    LotTerms,
    LotUse,
    Receipt,
    expire_lots,
    get_transfer,
    pending,
    post,
    reversal_of,
    reverse,
    transfer,
    void,
    void_expired,
)

__all__ = [
    "Account",
    "AccountKind",
    "Balance",
    "CheckReport",
    "ExpiryReport",
    "HistoryEntry",
    "HistoryPage",
    "Ledger",
    "LotTerms",
    "LotUse",
    "LotView",
    "Problem",
    "Receipt",
    "accounts_of",
    "balance",
    "check",
    "expire_lots",
    "find_account",
    "get_account",
    "get_transfer",
    "history",
    "history_of",
    "open_account",
    "open_ledger",
    "pending",
    "post",
    "reversal_of",
    "reverse",
    "transfer",
    "void",
    "void_expired",
    "wallet_lots",
]
