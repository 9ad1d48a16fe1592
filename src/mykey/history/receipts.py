"""A resident's inclusion proof of their own transfer, and its offline check.

The receipt (JSON) carries everything needed to check, offline, that this transfer is in the
log: the record's fields and canonical bytes, the salt of its leaf commitment, the leaf, the
inclusion path and the signed checkpoint it leads to. `verify_receipt` (also
`python -m mykey.history.verify`) re-encodes the fields, recomputes the commitment, the leaf
hash and the root (RFC 9162 §2.1.3.2), and checks the checkpoint's Ed25519 signature with a
verifier key the resident got elsewhere (never from the receipt).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from mykey import ledger
from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.history import merkle
from mykey.history.checkpoints import Verifier, open_checkpoint
from mykey.history.encoding import commitment, parse_leaf, record_of, salt
from mykey.history.log import HistoryLog, inclusion, index_of, latest_checkpoint, make_checkpoint

FORMAT = "mykey-inclusion-proof/v1"
WALLET = "wallet"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def transfer_payload(row: Any) -> dict[str, Any]:
    """The logged fields of a transfer, from a receipt or a `ledger_transfers` row."""
    tid = getattr(row, "transfer_id", None) or row.id
    return {
        "id": str(tid),
        "ledger": row.ledger,
        "kind": row.kind,
        "phase": row.phase,
        "debit": int(row.debit_account_id),
        "credit": int(row.credit_account_id),
        "amount": int(row.amount),
        "actor": row.actor,
        "at": row.created_at.isoformat(),
        "pending_id": str(row.pending_id) if row.pending_id else None,
        "reverses_id": str(row.reverses_id) if row.reverses_id else None,
    }


def _not_yours() -> MyKeyError:
    return MyKeyError(
        "transfer_not_found",
        ErrorKind.NOT_FOUND,
        "No such transfer in your wallets.",
        "あなたのウォレットにその取引はありません。",
    )


def transfer_receipt(
    uow: UnitOfWork, log: HistoryLog, *, mykey_id: str, transfer_id: str
) -> dict[str, Any]:
    """The inclusion proof of one of the resident's own transfers, against the latest
    checkpoint (signed now, if the transfer is newer than the last one)."""
    try:
        tid = UUID(transfer_id)
    except ValueError:
        raise _not_yours() from None
    wallets = {a for a, _ in ledger.accounts_of(uow, owner=mykey_id, kind=WALLET)}
    try:
        receipt = ledger.get_transfer(uow, tid)
    except MyKeyError as exc:
        if exc.kind is ErrorKind.NOT_FOUND:
            raise _not_yours() from None
        raise
    if not wallets & {receipt.debit_account_id, receipt.credit_account_id}:
        raise _not_yours()
    payload = transfer_payload(receipt)
    record = record_of("transfer", payload)
    try:
        index = index_of(uow, "transfer", record.record_id)
        checkpoint = latest_checkpoint(uow)
        if checkpoint.checkpoint.size <= index:
            raise LookupError
    except (MyKeyError, LookupError):
        checkpoint = make_checkpoint(uow, log.signer)
        index = index_of(uow, "transfer", record.record_id)
    proof = inclusion(uow, index=index, size=checkpoint.checkpoint.size)
    return {
        "format": FORMAT,
        "origin": log.origin,
        "index": index,
        "tree_size": proof.tree_size,
        "leaf": b64(proof.entry.leaf),
        "path": [b64(h) for h in proof.path],
        "record": {
            "kind": "transfer",
            "fields": payload,
            "bytes": b64(record.data),
            "salt": b64(salt(log.salt_key, "transfer", record.record_id)),
        },
        "checkpoint": checkpoint.note,
    }


class ReceiptError(ValueError):
    """A receipt that does not prove what it claims."""


def verify_receipt(receipt: Mapping[str, Any], checkpoint_note: str, vkey: str) -> dict[str, Any]:
    """Check a receipt offline; returns a summary, raises `ReceiptError` on any failure."""
    try:
        verifier = Verifier.from_vkey(vkey)
        checkpoint = open_checkpoint(checkpoint_note, verifier)
        if receipt.get("format") != FORMAT:
            raise ReceiptError(f"not a {FORMAT} receipt")
        index, size = int(receipt["index"]), int(receipt["tree_size"])
        if size != checkpoint.size:
            raise ReceiptError(
                f"the proof is for a tree of size {size}, the checkpoint has {checkpoint.size}"
            )
        leaf = base64.b64decode(receipt["leaf"], validate=True)
        path = [base64.b64decode(h, validate=True) for h in receipt["path"]]
        merkle.verify_inclusion(index, size, merkle.leaf_hash(leaf), path, checkpoint.root)
        parsed = parse_leaf(leaf)
        record = receipt["record"]
        data = base64.b64decode(record["bytes"], validate=True)
        again = record_of(record["kind"], record["fields"])
        if again.data != data:
            raise ReceiptError("the record's fields do not encode to the record's bytes")
        if (parsed.kind, parsed.record_id, parsed.at_micros) != (
            again.kind,
            again.record_id,
            again.at_micros,
        ):
            raise ReceiptError("the leaf names another record")
        salt_value = base64.b64decode(record["salt"], validate=True)
        if commitment(salt_value, data) != parsed.commitment:
            raise ReceiptError("the record does not match the leaf's commitment")
    except ReceiptError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ReceiptError(str(exc) or type(exc).__name__) from exc
    return {
        "ok": True,
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "index": index,
        "record": record["fields"],
    }
