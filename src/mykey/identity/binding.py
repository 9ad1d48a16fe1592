"""Holder bindings: an operation at a counter stays with the resident whose points were shown.

At a shared counter a clerk taps card A, reads A's balances to the customer, types the points
and confirms; if card B is tapped at the confirmation, B must not be charged (the Mynapoint
failure: points to the wrong person). So when the platform shows a holder's balances it also
gives a **binding**: a short token, signed by the server (HMAC-SHA256 under a key derived from
the settings' secret key), that names

- the place (the shop or provider id of the counter),
- the holder, by an HMAC of the MyKey ID (the token does not reveal the ID),
- the holder's masked MyKey ID for the screen (`MY12****`),
- and when it expires (10 minutes).

The confirmation sends it back as the *expected holder*; the operation is refused with
`wrong_card` (409, nothing charged) if the tapped card belongs to anyone else, with
`holder_binding_expired` (409) after its lifetime, and as `invalid_holder_binding` (422) if it
was altered or made for another place. Nothing here is stored: the token is the whole state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError
from mykey.identity.models import ResidentCard
from mykey.identity.proofs import Card, claimed_card_key

BINDING_LIFETIME = timedelta(minutes=10)
PREFIX = "hb1"
_LABEL = b"mykey/holder-binding/v1"


class HolderMismatchError(MyKeyError):
    """The card tapped is not the one the operation is bound to (or the binding is no good).
    Raised before anything is done, so it is never stored under an idempotency key: the
    right card may be tapped next with the same confirmation."""


def mask(mykey_id: str) -> str:
    """A MyKey ID as a counter may show it to everyone around: `MY12****`."""
    return mykey_id[:4] + "*" * max(0, len(mykey_id) - 4)


def wrong_card(expected: str) -> HolderMismatchError:
    return HolderMismatchError(
        "wrong_card",
        ErrorKind.REFUSED,
        f"This is not the card of the customer shown before ({expected}: their points or their"
        " user number); nothing was done. Tap that customer's card, or start again with the new"
        " card.",
        f"先ほど表示したお客様（{expected}）のカードではありません。何も処理していません。"
        "同じお客様のカードをかざすか、新しいカードで最初からやり直してください。",
        details={"expected_holder": expected},
    )


def binding_expired() -> HolderMismatchError:
    return HolderMismatchError(
        "holder_binding_expired",
        ErrorKind.REFUSED,
        "The customer's balances were shown too long ago; tap the card again to see them.",
        "残高の表示から時間が経ちすぎました。もう一度カードをかざして残高を確認してください。",
    )


def invalid_binding() -> HolderMismatchError:
    return HolderMismatchError(
        "invalid_holder_binding",
        ErrorKind.INVALID,
        "The expected holder is not a binding this platform gave to this shop.",
        "確認中のお客様の情報が正しくありません（この店舗に発行されたものではありません）。",
    )


@dataclass(frozen=True)
class HolderBinding:
    token: str
    holder: str  # the masked MyKey ID, e.g. MY12****
    expires_at: datetime


@dataclass(frozen=True)
class Bound:
    """What a good token says (its signature checked)."""

    place: str
    holder: str  # masked
    tag: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Binder:
    """Makes and checks holder bindings with a key derived from the server's secret."""

    key: bytes
    lifetime: timedelta = BINDING_LIFETIME

    @classmethod
    def from_secret(cls, secret_key: str) -> Binder:
        return cls(hmac.new(secret_key.encode(), _LABEL, hashlib.sha256).digest())

    def _tag(self, mykey_id: str) -> str:
        return _b64(hmac.new(self.key, b"holder\x1f" + mykey_id.encode(), hashlib.sha256).digest())

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.key, f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())

    def bind(self, *, mykey_id: str, place: str, now: datetime) -> HolderBinding:
        expires = (now + self.lifetime).astimezone(UTC).replace(microsecond=0)
        body: dict[str, object] = {
            "p": place,
            "h": self._tag(mykey_id),
            "m": mask(mykey_id),
            "e": int(expires.timestamp()),
        }
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return HolderBinding(f"{PREFIX}.{payload}.{self._mac(payload)}", mask(mykey_id), expires)

    def read(self, token: object, *, place: str) -> Bound:
        """The binding a token carries, if this server made it for this place."""
        if not isinstance(token, str) or len(token) > 512 or token.count(".") != 2:
            raise invalid_binding()
        prefix, payload, mac = token.split(".")
        if prefix != PREFIX or not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid_binding()
        try:
            body = json.loads(_unb64(payload))
            bound = Bound(
                place=str(body["p"]),
                holder=str(body["m"]),
                tag=str(body["h"]),
                expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):  # pragma: no cover -- signed
            raise invalid_binding() from None
        if bound.place != place:
            raise invalid_binding()
        return bound

    def check(
        self, token: object, *, mykey_id: str | None, place: str, now: datetime | None
    ) -> Bound:
        """Refuse unless `mykey_id` (the tapped card's holder; None for a card with no MyKey
        ID) is the bound holder, and, given `now`, the binding has not expired."""
        bound = self.read(token, place=place)
        if mykey_id is None or not hmac.compare_digest(bound.tag, self._tag(mykey_id)):
            raise wrong_card(bound.holder)
        if now is not None and now >= bound.expires_at:
            raise binding_expired()
        return bound


@dataclass(frozen=True)
class ExpectedHolder:
    """The binding a confirmation sends back, with the binder that checks it."""

    token: str
    binder: Binder


def holder_of(uow: UnitOfWork, card_key: str | None) -> str | None:
    """The MyKey ID a card key is registered to (None: not registered, or no key)."""
    link = uow.session.get(ResidentCard, card_key) if card_key else None
    return link.mykey_id if link else None


def claimed_holder(uow: UnitOfWork, card: Card) -> str | None:
    """The MyKey ID of the card a request names, **before** its proof is checked: to find an
    earlier answer and to compare with the expected holder, never to act on."""
    return holder_of(uow, claimed_card_key(card))


def check_holder(
    uow: UnitOfWork,
    expected: ExpectedHolder | None,
    *,
    card: Card,
    place: str,
    expiry: bool,
) -> None:
    """Inside a transaction: refuse a card that is not the expected holder's (`expiry`: and a
    binding past its lifetime). The card's own proof is checked after this, in the same
    transaction: the card key compared here is the one that proof must then prove."""
    if expected is None:
        return
    key = claimed_card_key(card)
    check_expected(
        expected,
        card_key=key,
        holder=holder_of(uow, key),
        place=place,
        now=uow.now() if expiry else None,
    )


def check_expected(
    expected: ExpectedHolder | None,
    *,
    card_key: str | None,
    holder: str | None,
    place: str,
    now: datetime | None,
) -> None:
    """`check_holder` with the holder of the card key the proof claims already read (by a use
    case that reads it with its other look-ups); `now`: check the binding's lifetime too."""
    if expected is None or card_key is None:  # unreadable: the proof's check refuses it
        return
    expected.binder.check(expected.token, mykey_id=holder, place=place, now=now)
