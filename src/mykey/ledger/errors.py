"""The ledger's refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mykey.errors import MAX_POINTS, POINTS, MyKeyError, conflict, invalid, not_found, refused

MAX_AMOUNT = MAX_POINTS


def bad_amount(amount: object) -> MyKeyError:
    """An amount of a transfer is points: `invalid_points`, as everywhere points are wrong."""
    return POINTS.error(amount, 1, MAX_AMOUNT, "amount")


def bad_key(key: object) -> MyKeyError:
    return invalid(
        "invalid_idempotency_key",
        "An idempotency key is 1 to 128 characters of A-Z, a-z, 0-9 and . _ : - ,"
        " starting with a letter or digit.",
        "冪等キーは英数字と . _ : - からなる 1〜128 文字で、英数字で始めてください。",
        key=repr(key)[:140],
    )


def bad_field(field: str, message: str, message_ja: str) -> MyKeyError:
    return invalid("invalid_" + field, message, message_ja, field=field)


def unknown_account(account_id: object) -> MyKeyError:
    return not_found(
        "unknown_account",
        f"There is no account {account_id}.",
        f"口座 {account_id} は存在しません。",
        account=str(account_id),
    )


def unknown_ledger(code: str) -> MyKeyError:
    return not_found(
        "unknown_ledger",
        f"There is no ledger {code}.",
        f"台帳 {code} は存在しません。",
        ledger=code,
    )


def unknown_transfer(transfer_id: object) -> MyKeyError:
    return not_found(
        "unknown_transfer",
        f"There is no transfer {transfer_id}.",
        f"取引 {transfer_id} は存在しません。",
        transfer=str(transfer_id),
    )


def mixed_ledgers(debit_ledger: str, credit_ledger: str) -> MyKeyError:
    return invalid(
        "mixed_ledgers",
        f"A transfer stays within one ledger; these accounts are in {debit_ledger}"
        f" and {credit_ledger}.",
        f"取引は一つの台帳の中で行います（{debit_ledger} と {credit_ledger} は別の台帳です）。",
        debit_ledger=debit_ledger,
        credit_ledger=credit_ledger,
    )


def same_account() -> MyKeyError:
    return invalid(
        "same_account",
        "A transfer needs two different accounts.",
        "取引には異なる二つの口座が必要です。",
    )


def insufficient(account_id: int, available: int, amount: int) -> MyKeyError:
    return refused(
        "insufficient_points",
        f"Not enough points: {available:,} available, {amount:,} asked for.",
        f"ポイントが足りません（利用可能 {available:,} ポイント、必要 {amount:,} ポイント）。",
        account=account_id,
        available=available,
        amount=amount,
    )


def key_reused() -> MyKeyError:
    return conflict(
        "idempotency_key_reused",
        "This idempotency key was already used for a different request.",
        "この冪等キーは別の内容の依頼で使用済みです。",
    )


def lot_terms_required(account_id: int) -> MyKeyError:
    return invalid(
        "lot_terms_required",
        f"Points credited to wallet {account_id} need a funding source and an expiry date.",
        f"口座 {account_id} へのポイント付与には財源と有効期限の指定が必要です。",
        account=account_id,
    )


def not_pending(transfer_id: object) -> MyKeyError:
    return refused(
        "not_pending",
        f"Transfer {transfer_id} is not a pending transfer.",
        f"取引 {transfer_id} は仮売上（保留中の取引）ではありません。",
        transfer=str(transfer_id),
    )


def already_resolved(transfer_id: object) -> MyKeyError:
    return refused(
        "pending_already_resolved",
        f"Pending transfer {transfer_id} has already been posted or voided.",
        f"保留中の取引 {transfer_id} は確定または取消済みです。",
        transfer=str(transfer_id),
    )


def pending_expired(transfer_id: object) -> MyKeyError:
    return refused(
        "pending_expired",
        f"Pending transfer {transfer_id} timed out and can no longer be posted.",
        f"保留中の取引 {transfer_id} は期限切れのため確定できません。",
        transfer=str(transfer_id),
    )


def post_exceeds(transfer_id: object, pending: int, amount: int) -> MyKeyError:
    return invalid(
        "post_exceeds_pending",
        f"Cannot post {amount:,} points of a pending transfer of {pending:,}.",
        f"保留中の {pending:,} ポイントを超える {amount:,} ポイントは確定できません。",
        transfer=str(transfer_id),
    )


def not_reversible(transfer_id: object, why: str, why_ja: str) -> MyKeyError:
    return refused(
        "not_reversible",
        f"Transfer {transfer_id} cannot be reversed: {why}",
        f"取引 {transfer_id} は取り消せません: {why_ja}",
        transfer=str(transfer_id),
    )


def already_reversed(transfer_id: object) -> MyKeyError:
    return refused(
        "already_reversed",
        f"Transfer {transfer_id} has already been reversed.",
        f"取引 {transfer_id} は取消済みです。",
        transfer=str(transfer_id),
    )


def lot_not_applicable(account_id: int, kind: str) -> MyKeyError:
    return invalid(
        "invalid_lot",
        f"Account {account_id} ({kind}) keeps no lots.",
        f"口座 {account_id} はロットを持たない口座です。",
        field="lot",
    )


def lot_expired(expires_on: object) -> MyKeyError:
    return invalid(
        "invalid_expires_on",
        f"The expiry {expires_on} is already past.",
        f"有効期限 {expires_on} は既に過ぎています。",
        field="expires_on",
    )
