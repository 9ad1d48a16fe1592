"""Partner API keys and request signatures (HMAC-SHA256).

A partner key is an ordinary API key of role `partner` (shown once, stored hashed), bound
here to one partner, plus a signing secret (also shown once). The server must know the
signing secret to check signatures, so it is stored encrypted with AES-GCM under a key derived
(HKDF-SHA256) from `settings.secret_key`, the key id as associated data; never in plain text.

A signed request carries `X-MyKey-Timestamp` (unix seconds) and `X-MyKey-Signature`, the hex
HMAC-SHA256 under the signing secret of

    METHOD + "\\n" + path (with "?" + query, if any) + "\\n" + timestamp + "\\n"
    + hex(SHA-256(body))

The timestamp must be within 5 minutes of the server's clock and a signature is accepted once:
a retry is signed again with a new timestamp (its idempotency key makes it replay the result).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from mykey.db import RetryTransaction, UnitOfWork
from mykey.errors import ErrorKind, MyKeyError, forbidden
from mykey.identity.keys import Role, create_key
from mykey.points.models import PartnerKey, PartnerSignature
from mykey.points.partners import check_partner_id, partner_row

WINDOW = timedelta(minutes=5)
SIGNATURE = re.compile(r"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class IssuedPartnerKey:
    partner: str
    key_id: str
    api_key: str  # for Authorization: Bearer; shown once
    signing_secret: str  # for X-MyKey-Signature; shown once


def _aead(secret_key: str) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"mykey partner signing secrets",
        info=b"aes-256-gcm v1",
    ).derive(secret_key.encode())
    return AESGCM(derived)


def seal(secret_key: str, key_id: str, signing_secret: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + _aead(secret_key).encrypt(nonce, signing_secret.encode(), key_id.encode())


def unseal(secret_key: str, key_id: str, box: bytes) -> str:
    return _aead(secret_key).decrypt(box[:12], box[12:], key_id.encode()).decode()


def string_to_sign(method: str, target: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{target}\n{timestamp}\n{digest}".encode()


def sign(signing_secret: str, method: str, target: str, timestamp: str, body: bytes) -> str:
    """The signature a partner sends (tests and the docs' example use this too)."""
    message = string_to_sign(method, target, timestamp, body)
    return hmac.new(signing_secret.encode(), message, hashlib.sha256).hexdigest()


def issue_partner_key(
    uow: UnitOfWork, *, partner: str, label: str, secret_key: str
) -> IssuedPartnerKey:
    """A new key and signing secret for a partner (council operators hand them over once)."""
    check_partner_id(partner)

    def body() -> IssuedPartnerKey:
        partner_row(uow, partner)
        api_key, principal = create_key(uow, role=Role.PARTNER, label=label or partner)
        signing_secret = secrets.token_urlsafe(32)
        uow.session.add(
            PartnerKey(
                key_id=principal.key_id,
                partner=partner,
                secret_box=seal(secret_key, principal.key_id, signing_secret),
                created_at=uow.now(),
            )
        )
        uow.session.flush()
        return IssuedPartnerKey(partner, principal.key_id, api_key, signing_secret)

    return uow.run(body)


def _unsigned(code: str, message: str, message_ja: str) -> MyKeyError:
    return MyKeyError(code, ErrorKind.UNAUTHENTICATED, message, message_ja)


def partner_of_key(uow: UnitOfWork, key_id: str) -> str:
    """The partner a partner key is bound to, or `forbidden`."""

    def body() -> str:
        row = uow.session.get(PartnerKey, key_id)
        if row is None:
            raise forbidden(
                "This key is not bound to a partner.",
                "このキーは協力企業に紐付いていません。",
            )
        return row.partner

    return uow.read(body)


def verify_signature(
    uow: UnitOfWork,
    *,
    key_id: str,
    method: str,
    target: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    secret_key: str,
    holder: Callable[[str], tuple[str, bytes] | None],
    not_bound: Callable[[], MyKeyError],
) -> str:
    """Check a signed request (a partner's or an online shop's): `holder(key_id)` gives the
    key's owner and its sealed signing secret, or None (then `not_bound()` is raised). Returns
    the owner. Refusals (401): `signature_required`, `stale_timestamp`, `bad_signature`,
    `replayed_signature`. Seen signatures are kept for twice the window (key ids are unique
    across partner and online keys, so they share one table)."""
    if not timestamp or not signature:
        raise _unsigned(
            "signature_required",
            "Sign the request: X-MyKey-Timestamp and X-MyKey-Signature headers.",
            "リクエストに署名してください（X-MyKey-Timestamp と X-MyKey-Signature）。",
        )
    if not TIMESTAMP.fullmatch(timestamp):
        raise _unsigned(
            "stale_timestamp",
            "X-MyKey-Timestamp is the time in unix seconds.",
            "X-MyKey-Timestamp は UNIX 時刻（秒）です。",
        )
    signature = signature.strip().lower()

    def check() -> str:
        now = uow.now()
        if abs(now.timestamp() - int(timestamp)) > WINDOW.total_seconds():
            raise _unsigned(
                "stale_timestamp",
                "The request's timestamp is more than 5 minutes from the server's clock:"
                " sign it again now.",
                "リクエストの時刻がサーバの時刻と 5 分以上ずれています。署名し直してください。",
            )
        s = uow.session
        held = holder(key_id)
        if held is None:
            raise not_bound()
        owner, box = held
        try:
            secret = unseal(secret_key, key_id, box)
        except InvalidTag:  # the server's secret key changed: the partner needs a new key
            raise _unsigned(
                "bad_signature",
                "The signature cannot be checked with this key; ask for a new key.",
                "このキーでは署名を検証できません。新しいキーを発行してください。",
            ) from None
        expected = sign(secret, method, target, timestamp, body)
        if not SIGNATURE.fullmatch(signature) or not hmac.compare_digest(expected, signature):
            raise _unsigned(
                "bad_signature",
                "The request's signature does not match.",
                "リクエストの署名が一致しません。",
            )
        if s.get(PartnerSignature, (key_id, signature)) is not None:
            raise _unsigned(
                "replayed_signature",
                "This signed request was already received; sign a retry again with a new"
                " timestamp.",
                "この署名付きリクエストは受信済みです。再送は新しい時刻で署名し直してください。",
            )
        s.execute(
            delete(PartnerSignature).where(
                PartnerSignature.key_id == key_id, PartnerSignature.seen_at < now - 2 * WINDOW
            )
        )
        s.add(PartnerSignature(key_id=key_id, signature=signature, seen_at=now))
        try:
            s.flush()
        except IntegrityError as exc:  # the same request twice at once: the rerun refuses it
            raise RetryTransaction from exc
        return owner

    return uow.run(check)


def verify_signed_request(
    uow: UnitOfWork,
    *,
    key_id: str,
    method: str,
    target: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    secret_key: str,
) -> str:
    """Check a partner request's signature; returns the key's partner (see `verify_signature`)."""

    def holder(key: str) -> tuple[str, bytes] | None:
        row = uow.session.get(PartnerKey, key)
        return (row.partner, row.secret_box) if row is not None else None

    return verify_signature(
        uow,
        key_id=key_id,
        method=method,
        target=target,
        timestamp=timestamp,
        signature=signature,
        body=body,
        secret_key=secret_key,
        holder=holder,
        not_bound=lambda: forbidden(
            "This key is not bound to a partner.",
            "このキーは協力企業に紐付いていません。",
        ),
    )
