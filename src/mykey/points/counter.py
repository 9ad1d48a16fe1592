"""What every keyed operation at a shop's counter shares (payments, cancellations, refunds,
voucher issue and redemption, gift certificates): the idempotency key first, then the card,
then the rules.

1. **The key first.** The request's hash (`request_digest`) is stored with the transfer it
   makes (`ledger.transfer(…, request_digest=…)`) or with its refusal; it is made from what
   the terminal sent and, for a card, from the MyKey ID that the card key of the certificate
   sent is registered to (read without checking the proof), never from what the database
   holds at the time (a wallet or an account not made yet, a lot's expiry), so the same
   request has the same hash on any later day. An earlier request with the same key and the
   same hash gets its stored answer (`replayed: true`) or its stored refusal: nothing else
   happens, no card proof is checked and no challenge is used, so a byte-identical resend
   after a lost answer works. The same key with another request is refused
   (`idempotency_key_reused`).
2. **Then the card**, in the operation's transaction (`proofs.verify_in_transaction`): a
   refusal of the rules rolls back the challenge's use with everything else.
3. **A refusal is kept under its key** (`ledger.idempotency.record_rejection`, after the
   rollback, in a transaction of its own), so a retry with the same key is refused the same
   way and cannot turn into a payment later. A failed card proof and a wrong card
   (`binding.HolderMismatchError`) are not: they say nothing of the request, and the right card
   may follow with the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from mykey.db import RetryTransaction, UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.identity import binding, proofs
from mykey.identity.binding import check_holder, claimed_holder
from mykey.ledger import idempotency

__all__ = ["check_holder", "claimed_holder", "request_digest", "run_keyed"]

T = TypeVar("T")


def _storable(error: MyKeyError) -> bool:
    return (
        error.kind is ErrorKind.REFUSED
        and not isinstance(error, proofs.CardProofError | binding.HolderMismatchError)
        and not error.details.get("replayed")
    )


def request_digest(operation: str, **fields: object) -> str:
    """The hash of a counter request (see the module docstring): `operation` and the fields
    the terminal sent, the card's holder among them."""
    return idempotency.request_hash(f"counter.{operation}", fields)


def run_keyed(
    uow: UnitOfWork,
    *,
    actor: str,
    key: str,
    digest: Callable[[], str | None],
    replay: Callable[[UUID], T],
    body: Callable[[], T],
    first: Callable[[], None] | None = None,
    known: Callable[[str], UUID | MyKeyError | None] | None = None,
    statement_begin: bool = False,
) -> T:
    """One keyed counter operation (see the module docstring), as one transaction.

    `digest` gives the request's hash inside the transaction (None: the request cannot have
    been made before, e.g. the shop is unknown); `replay` the stored answer of the transfer
    an earlier request made; `body` does the operation, checking the card with
    `proofs.verify_in_transaction`. `first` runs before the key is looked up (the holder
    check: a wrong card is refused in words even with a known key). `known`, given the
    request's hash, answers what the key made from rows `first` read in this very transaction
    (a payment reads them with its other look-ups in one statement); without it, or in a
    later transaction (keeping a refusal, a twin's answer), the key is looked up anew.
    `statement_begin`: the operation's transaction is begun by `first`'s statement and may be
    committed by `body`'s last (`UnitOfWork.run`)."""
    idempotency.validate_actor(actor)
    idempotency.validate_key(key)

    def earlier(prefetched: bool = False) -> T | MyKeyError | None:
        hashed = digest()
        if hashed is None:
            return None
        if prefetched and known is not None:
            found = known(hashed)
        else:
            found = idempotency.lookup(uow.connection, actor, key, hashed)
        if isinstance(found, UUID):
            return replay(found)
        return found

    def transaction() -> T | MyKeyError:
        if first is not None:
            first()
        found = earlier(prefetched=True)
        return found if found is not None else body()

    try:
        return proofs.run_with_card_proofs(uow, transaction, statement_begin=statement_begin)
    except proofs.CardProofError as failed:
        if failed.code != "challenge_used":
            raise
        # A byte-identical twin of this request used the challenge while this one waited: if
        # it has committed its answer under the key, that answer is this request's too.
        found = uow.run(earlier)
        if found is None or isinstance(found, MyKeyError):
            raise
        return found
    except MyKeyError as error:
        if not _storable(error):
            raise
        refusal = error

    def keep() -> T | MyKeyError:
        hashed = digest()
        if hashed is None:
            return refusal
        found = idempotency.lookup(uow.connection, actor, key, hashed)
        if isinstance(found, UUID):  # a twin request with this key succeeded meanwhile
            return replay(found)
        if found is not None:
            return found
        try:
            idempotency.record_rejection(uow.session, actor, key, hashed, refusal, uow.now())
        except IntegrityError as exc:  # a twin stored the same refusal just now: read it
            raise RetryTransaction from exc
        return refusal

    outcome = uow.run(keep)
    if isinstance(outcome, MyKeyError):
        raise outcome
    return outcome
