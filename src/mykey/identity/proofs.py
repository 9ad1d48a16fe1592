"""Card proofs, as JPKI does them: a fresh challenge, signed by the card, checked here.

A terminal asks for a challenge (`issue_challenge`: a 32-byte nonce, single use, valid 60 s);
the card signs the nonce with its user-authentication key (RSASSA-PKCS1-v1_5, SHA-256); the
terminal sends the certificate, the challenge id and the signature. `verify_card_proof`
checks, in this order: the proof is well formed; the challenge is one this server issued, to
the one presenting it; it is unused (its use recorded now, in the caller's transaction) and
unexpired; the certificate chains to a trust anchor; it is within its validity dates; it is not
revoked (the CRL of its issuer, or the revocations table); the signature over the nonce; the
card is not replaced by a newer card of its MyKey ID (after the grace period). The card is
then known by its card key, the SHA-256 of its SubjectPublicKeyInfo; nothing else of the
certificate is kept.

A challenge is **stateless** (issue #14): issuing one touches no database. Its id is a token,
base64url of `version | id (16 random bytes) | expiry (ms) | asker tag (8 bytes) | MAC`, the
MAC an HMAC-SHA256 under a key derived from the server's secret (`ChallengeKey`, shared by every
web process; rotating the secret invalidates only the challenges outstanding, 60 s at most).
The nonce the card signs is the MAC itself: unpredictable, and read back from the token. The
asker tag binds the challenge to who asked for it: the credential (API key, session) the
request for it carried, or the clerk of a page tap; a challenge asked for without one is
anyone's, as every challenge was before. Single use is the row `card_challenge_uses` keyed by
the challenge's id (the UUID of its 16 random bytes), inserted in the operation's own
transaction; `card_challenges` is no longer written.

A good proof's challenge is used **in the transaction of the operation it proves**
(`with_card`, or `verify_in_transaction` inside `run_with_card_proofs`): an operation refused
before it does anything (bad input, not enough points) rolls the use back with everything
else, so the resident need not tap again. A failed proof (bad signature, unknown, used or
expired challenge, untrusted, expired, revoked or replaced card) uses the challenge up and is
recorded with its stable code, in a transaction of its own, whatever the operation.

A counter operation on PostgreSQL checks the proof without a statement of its own
(`check_with_standing`, issue #14): the card key's standing (revoked, replaced) and whether
the challenge was used are read with the operation's other look-ups (`standing_columns`), in
the same order of checks, and the challenge's use is the gate of the operation's one write
(`CHALLENGE_USE_GATE`: nothing is written if a twin used it first).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import Table, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from mykey.db import UnitOfWork
from mykey.errors import MyKeyError, invalid, not_found, refused
from mykey.identity import usage
from mykey.identity.models import (
    CardChallengeUse,
    CardProofAttempt,
    CardReplacement,
    CardRevocation,
    ResidentCard,
)

T = TypeVar("T")

CHALLENGE_LIFETIME = timedelta(seconds=60)
NONCE_BYTES = 32
MAX_CERTIFICATE = 8192
_VERSION = 1
_HEADER = struct.Struct(">B16sq8s")  # version, id, expiry (Unix ms), asker tag
_TOKEN_BYTES = _HEADER.size + NONCE_BYTES  # + the MAC (HMAC-SHA256), which is the nonce
TOKEN_LENGTH = (_TOKEN_BYTES * 4 + 2) // 3  # base64url without padding: 87 characters
_LABEL = b"mykey/card-challenge/v1"
_ANYONE = bytes(8)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def card_key_of(certificate: x509.Certificate) -> str:
    """The card key: hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER)."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@dataclass(frozen=True)
class Challenge:
    id: str  # the token the terminal sends back as `challenge_id`
    nonce: bytes
    expires_at: datetime


@dataclass(frozen=True)
class OpenedChallenge:
    """What a challenge token says, its MAC checked: the id its single use is recorded under
    (a UUID, 36 characters), the nonce the card signed, its expiry, and whom it was issued to."""

    use_id: str
    nonce: bytes
    expires_at: datetime
    asker_tag: bytes

    def issued_to(self, tag: bytes) -> bool:
        return self.asker_tag == _ANYONE or hmac.compare_digest(self.asker_tag, tag)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class ChallengeKey:
    """Signs and reads challenge tokens. Every web process must hold the same key: it is derived
    from the settings' secret key (`from_secret`); `random` makes a key of one process only."""

    key: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret_key: str) -> ChallengeKey:
        return cls(hmac.new(secret_key.encode(), _LABEL, hashlib.sha256).digest())

    @classmethod
    def random(cls) -> ChallengeKey:
        return cls(secrets.token_bytes(32))

    def asker_tag(self, asker: str | None) -> bytes:
        """Who may use a challenge: a keyed tag of the asker, or anyone (None)."""
        if asker is None:
            return _ANYONE
        return hmac.new(self.key, b"asker\x1f" + asker.encode(), hashlib.sha256).digest()[:8]

    def issue(self, *, now: datetime, asker: str | None) -> Challenge:
        millis = (now + CHALLENGE_LIFETIME - _EPOCH) // _MS
        header = _HEADER.pack(_VERSION, uuid.uuid4().bytes, millis, self.asker_tag(asker))
        mac = hmac.new(self.key, header, hashlib.sha256).digest()
        return Challenge(_b64(header + mac), mac, _EPOCH + millis * _MS)

    def open(self, token: str) -> OpenedChallenge | None:
        """The challenge a token names, if this key issued it (None: forged, altered, from
        another server or a rotated key, or no token at all)."""
        if len(token) != TOKEN_LENGTH:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=")
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _TOKEN_BYTES or _b64(raw) != token:  # one spelling per token
            return None
        header, mac = raw[: _HEADER.size], raw[_HEADER.size :]
        if not hmac.compare_digest(mac, hmac.new(self.key, header, hashlib.sha256).digest()):
            return None
        version, ident, millis, tag = _HEADER.unpack(header)
        if version != _VERSION:  # pragma: no cover -- signed by this key, so made by this code
            return None
        return OpenedChallenge(str(uuid.UUID(bytes=ident)), mac, _EPOCH + millis * _MS, tag)


@dataclass(frozen=True)
class CardProof:
    """What a terminal sends: the card's certificate (base64 DER), the challenge id, and the
    card's signature over the challenge's nonce (base64)."""

    certificate: str
    challenge_id: str
    signature: str


@dataclass(frozen=True)
class VerifiedCard:
    card_key: str
    not_after: datetime


@dataclass(frozen=True)
class TrustAnchors:
    """The CAs whose cards the platform accepts, the CRLs they published, how long a card
    replaced by a newer card of the same MyKey ID is still accepted (none by default), and the
    key that signed the challenges (the app's, from its secret; by default one of its own)."""

    certificates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    replaced_card_grace: timedelta = timedelta(0)
    challenge_key: ChallengeKey = field(default_factory=ChallengeKey.random)

    @classmethod
    def from_files(
        cls,
        bundle: Path,
        crls: Iterable[Path] = (),
        *,
        replaced_card_grace: timedelta = timedelta(0),
        challenge_key: ChallengeKey | None = None,
    ) -> TrustAnchors:
        anchors = tuple(x509.load_pem_x509_certificates(bundle.read_bytes()))
        lists = []
        for path in crls:
            data = path.read_bytes()
            lists.append(
                x509.load_pem_x509_crl(data)
                if data.lstrip().startswith(b"-----")
                else x509.load_der_x509_crl(data)
            )
        return cls(
            anchors, tuple(lists), replaced_card_grace, challenge_key or ChallengeKey.random()
        )


@dataclass(frozen=True)
class PresentedCard:
    """A card proof as a terminal sent it, not checked yet: what to check it against, who
    presents it (the terminal or clerk, recorded with a failure), and the asker its challenge
    must have been issued to (`issue_challenge`'s; None: only a challenge issued to anyone)."""

    proof: CardProof
    anchors: TrustAnchors
    actor: str
    asker: str | None = None

    @property
    def claimed_card_key(self) -> str | None:
        """The card key of the certificate sent, **unverified** (None if it cannot be read).
        Good for finding an earlier answer to the same request before the proof is checked;
        never for acting on the card."""
        return _card_key_if_readable(self.proof)


Card = PresentedCard | VerifiedCard


class CardProofError(MyKeyError):
    """A card proof that failed. It carries the proof, so that the failure is recorded (and
    the challenge used up) once the operation's transaction has been rolled back."""

    def __init__(self, error: MyKeyError, presented: PresentedCard) -> None:
        super().__init__(
            error.code, error.kind, error.message, error.message_ja, details=error.details
        )
        self.presented = presented


def claimed_card_key(card: Card) -> str | None:
    """The card key a proof names (unverified), or a verified card's key."""
    return card.card_key if isinstance(card, VerifiedCard) else card.claimed_card_key


def _error(code: str, message: str, message_ja: str) -> MyKeyError:
    return refused(code, message, message_ja)


def malformed(why: str) -> MyKeyError:
    return invalid(
        "invalid_card_proof",
        f"The card proof is malformed: {why}",
        f"カードの証明データの形式が正しくありません: {why}",
    )


def issue_challenge(uow: UnitOfWork, *, key: ChallengeKey, asker: str | None) -> Challenge:
    """A fresh single-use challenge for a card to sign, valid for 60 seconds, usable only by
    `asker` (None: by anyone). Nothing is written, nor read: the challenge is its token."""
    return key.issue(now=uow.now(), asker=asker)


def unknown_challenge() -> MyKeyError:
    return not_found(
        "unknown_challenge",
        "There is no such challenge; ask for a new one.",
        "このチャレンジは存在しません。新しいチャレンジを取得してください。",
    )


def challenge_not_yours() -> MyKeyError:
    return _error(
        "challenge_not_yours",
        "This challenge was issued to another terminal or session; ask for a new one.",
        "このチャレンジは別の端末またはセッションに発行されたものです。"
        "新しいチャレンジを取得してください。",
    )


def challenge_expired() -> MyKeyError:
    return _error(
        "challenge_expired",
        "The challenge expired (they last 60 seconds); ask for a new one.",
        "チャレンジの有効期限（60 秒）が切れました。新しいチャレンジを取得してください。",
    )


def open_challenge(
    key: ChallengeKey, challenge_id: object, *, asker: str | None, now: datetime | None
) -> OpenedChallenge:
    """The challenge a proof names, checked in memory (no database): issued by this server,
    to `asker` (or to anyone), and, given `now`, unexpired. Its single use is the caller's
    (`use_challenge`)."""
    if not isinstance(challenge_id, str) or not 0 < len(challenge_id) <= 2 * TOKEN_LENGTH:
        raise malformed("challenge_id is not a challenge id")
    opened = key.open(challenge_id)
    if opened is None:
        if len(challenge_id) not in (36, TOKEN_LENGTH):  # a challenge's token, or an old id
            raise malformed("challenge_id is not a challenge id")
        raise unknown_challenge()
    if not opened.issued_to(key.asker_tag(asker)):
        raise challenge_not_yours()
    if now is not None and now >= opened.expires_at:
        raise challenge_expired()
    return opened


def _decode(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > MAX_CERTIFICATE * 2:
        raise malformed(f"{what} is missing or too long")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise malformed(f"{what} is not base64") from None


def _check_chain(certificate: x509.Certificate, anchors: TrustAnchors, now: datetime) -> None:
    untrusted = _error(
        "untrusted_card",
        "The card's certificate was not issued by an authority this platform trusts.",
        "このカードの電子証明書は、本プラットフォームが信頼する認証局の発行ではありません。",
    )
    for anchor in anchors.certificates:
        if anchor.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if not anchor.not_valid_before_utc <= now <= anchor.not_valid_after_utc:
            continue
        anchor_key = anchor.public_key()
        for crl in anchors.crls:
            if (
                crl.issuer == anchor.subject
                and isinstance(anchor_key, rsa.RSAPublicKey)
                and crl.is_signature_valid(anchor_key)
                and crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            ):
                raise _error(
                    "card_revoked",
                    "This card's certificate has been revoked by its issuer.",
                    "このカードの電子証明書は失効しています。",
                )
        return
    raise untrusted


@dataclass(frozen=True)
class CardStanding:
    """What the database holds of a card key: revoked (`card_revocations`), replaced by a
    newer card of its MyKey ID since (`card_replacements`); and whether the proof's challenge
    was used already (read with them; its use is still the write's, `CHALLENGE_USE_GATE`)."""

    revoked: bool
    replaced_at: datetime | None
    challenge_used: bool = False

    @classmethod
    def of_row(cls, revoked: object, replaced_at: datetime | None, used: object) -> CardStanding:
        """From the three columns of `standing_columns` as a driver returns them (SQLite keeps
        no time zone: its times are UTC)."""
        if replaced_at is not None:
            replaced_at = (
                replaced_at.replace(tzinfo=UTC)
                if replaced_at.tzinfo is None
                else replaced_at.astimezone(UTC)
            )
        return cls(bool(revoked), replaced_at, bool(used))


def _check(uow: UnitOfWork, presented: PresentedCard) -> VerifiedCard:
    """The whole check, in the order of the module docstring, the challenge's use included (in
    the caller's transaction: a refusal rolls it back, and `record_failure` uses it up)."""
    now = uow.now()
    opened = _opened(presented)
    if not use_challenge(uow, opened.challenge.use_id, now):  # the one statement about challenges
        raise challenge_used()

    def standing(card_key: str) -> CardStanding:
        replaced = uow.session.get(CardReplacement, card_key)
        return CardStanding(
            uow.session.get(CardRevocation, card_key) is not None,
            replaced.replaced_at if replaced is not None else None,
        )

    return _check_card(presented.anchors, opened, now, standing)


@dataclass(frozen=True)
class _Opened:
    challenge: OpenedChallenge
    der: bytes
    signature: bytes


def _opened(presented: PresentedCard) -> _Opened:
    proof = presented.proof
    if not isinstance(proof.challenge_id, str) or not proof.challenge_id:
        raise malformed("challenge_id is not a challenge id")
    der = _decode(proof.certificate, "certificate")
    signature = _decode(proof.signature, "signature")
    challenge = open_challenge(
        presented.anchors.challenge_key, proof.challenge_id, asker=presented.asker, now=None
    )
    return _Opened(challenge, der, signature)


def _check_card(
    anchors: TrustAnchors,
    opened: _Opened,
    now: datetime,
    standing: Callable[[str], CardStanding],
) -> VerifiedCard:
    """Everything of the check after the challenge's use (see `_check`)."""
    challenge, der, signature = opened.challenge, opened.der, opened.signature
    if now >= challenge.expires_at:
        raise challenge_expired()
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise malformed("certificate is not an X.509 certificate") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise malformed("the card key is not RSA of 2048 bits or more")
    _check_chain(certificate, anchors, now)
    try:
        usage_ext = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        may_sign = usage_ext.digital_signature and not usage_ext.key_cert_sign
    except x509.ExtensionNotFound:
        may_sign = False
    if not may_sign:  # a CA's certificate, or one not meant for authentication
        raise _error(
            "untrusted_card",
            "This certificate is not a card's authentication certificate.",
            "この証明書はカードの利用者証明用電子証明書ではありません。",
        )
    if now < certificate.not_valid_before_utc:
        raise _error(
            "card_not_yet_valid",
            "The card's certificate is not valid yet.",
            "このカードの電子証明書はまだ有効期間前です。",
        )
    if now > certificate.not_valid_after_utc:
        raise _error(
            "card_expired",
            "The card's certificate has expired; the card must be renewed.",
            "このカードの電子証明書は有効期限切れです。更新が必要です。",
        )
    card_key = card_key_of(certificate)
    held = standing(card_key)
    if held.revoked:
        raise _error(
            "card_revoked",
            "This card has been suspended or revoked.",
            "このカードは利用停止または失効しています。",
        )
    try:
        key.verify(signature, challenge.nonce, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise _error(
            "bad_signature",
            "The card's signature does not match the challenge.",
            "カードの署名がチャレンジと一致しません。",
        ) from None
    if held.replaced_at is not None and now >= held.replaced_at + anchors.replaced_card_grace:
        raise _error(
            "card_replaced",
            "This card was replaced by a newer card; use the new card.",
            "このカードは新しいカードに切り替えられています。新しいカードをお使いください。",
        )
    return VerifiedCard(card_key, certificate.not_valid_after_utc)


def standing_columns(card_key: Any, challenge_use_id: Any) -> list[Any]:
    """Three scalar subqueries, whether `card_key` is revoked, when it was replaced and whether
    the challenge `challenge_use_id` (`claimed_use_id`) was used, to read with a use case's
    other look-ups in one statement (`CardStanding.of_row(*row[...])`)."""
    return [
        exists().where(_REVOKED.c.card_key == card_key),
        select(_REPLACED.c.replaced_at).where(_REPLACED.c.card_key == card_key).scalar_subquery(),
        exists().where(_USES.c.challenge_id == challenge_use_id),
    ]


def claimed_use_id(card: Card) -> str | None:
    """The use id of the challenge a proof names, if it is one this server issued (unchecked
    otherwise: to look its use up with other facts, `standing_columns`)."""
    if isinstance(card, VerifiedCard) or not isinstance(card.proof.challenge_id, str):
        return None
    opened = card.anchors.challenge_key.open(card.proof.challenge_id)
    return opened.use_id if opened is not None else None


@dataclass(frozen=True)
class Checked:
    """A proof checked by `check_with_standing`: the card, and the id of the challenge use the
    caller must insert in its write (`CHALLENGE_USE_GATE`); None for a card verified before."""

    card: VerifiedCard
    use_id: str | None


def check_with_standing(card: Card, now: datetime, standing: CardStanding) -> Checked:
    """The check without a statement of its own: the card key's standing was read with the use
    case's other look-ups (`standing_columns`, for the card key the proof claims), and the
    challenge is used by the use case's write (`CHALLENGE_USE_GATE`: nothing is written if it
    was used already). Raises `CardProofError` as `verify_in_transaction` does; a standing read
    for another card key than the proof's is a defect (ValueError)."""
    if isinstance(card, VerifiedCard):
        return Checked(card, None)
    claimed = card.claimed_card_key

    def held(card_key: str) -> CardStanding:
        if card_key != claimed:  # pragma: no cover -- the same certificate's bytes
            raise ValueError("the card's standing was read for another card key")
        return standing

    try:
        opened = _opened(card)
        if standing.challenge_used:  # in the order of `_check`: before everything else
            raise challenge_used()
        checked = _check_card(card.anchors, opened, now, held)
        return Checked(checked, opened.challenge.use_id)
    except MyKeyError as error:
        raise CardProofError(error, card) from None


# The use of a checked proof's challenge, as `Alongside.gate`: a row only if not used before.
CHALLENGE_USE_GATE = (
    "gate AS (INSERT INTO card_challenge_uses (challenge_id, used_at)"
    " VALUES (%(g_challenge)s, %(g_at)s) ON CONFLICT (challenge_id) DO NOTHING RETURNING 1)"
)
OPEN_GATE = "gate AS (SELECT 1 AS one)"  # a card verified before: no challenge to use


def use_gate(use_id: str | None, now: datetime) -> tuple[str, dict[str, Any]]:
    """The gate CTE of a write that uses a checked proof's challenge (`Checked.use_id`), and
    its parameters; for a card verified before, a gate that always opens."""
    if use_id is None:
        return OPEN_GATE, {}
    return CHALLENGE_USE_GATE, {"g_challenge": use_id, "g_at": now}


def _card_key_if_readable(proof: CardProof) -> str | None:
    try:
        der = base64.b64decode(proof.certificate, validate=True)
        return card_key_of(x509.load_der_x509_certificate(der))
    except (binascii.Error, ValueError, TypeError):
        return None


_USES = cast(Table, CardChallengeUse.__table__)
_REVOKED = cast(Table, CardRevocation.__table__)
_REPLACED = cast(Table, CardReplacement.__table__)


def use_challenge(uow: UnitOfWork, challenge_id: str, now: datetime) -> bool:
    """Use the challenge (its `use_id`) once, in the caller's transaction; False if it was used
    already (by a twin request that committed first: the insert waits for it, then finds its
    row). One statement; the unique key is the whole check.

    Sent through the session's connection: inside `session.begin_nested()` (as
    `idempotency.keyed_write` runs an operation) that emits the SAVEPOINT first, which the
    session otherwise leaves until its own first statement, so that a refused operation's
    rollback to the savepoint takes the use back too."""
    insert = postgresql.insert if uow.dialect == "postgresql" else sqlite.insert
    done = uow.session.connection().execute(
        insert(_USES)
        .values(challenge_id=challenge_id, used_at=now)
        .on_conflict_do_nothing(index_elements=["challenge_id"])
        .returning(_USES.c.challenge_id)  # a row only if inserted (psycopg's rowcount is -1)
    )
    return done.first() is not None


def challenge_used() -> MyKeyError:
    return _error(
        "challenge_used",
        "This challenge has already been used; ask for a new one.",
        "このチャレンジは使用済みです。新しいチャレンジを取得してください。",
    )


def challenge_taken(card: Card) -> CardProofError:
    """The refusal of a proof checked against what was read (`check_with_standing`) whose
    challenge a twin request used before this one's write (its gate stayed shut)."""
    return CardProofError(challenge_used(), cast(PresentedCard, card))


def verify_in_transaction(uow: UnitOfWork, card: Card) -> VerifiedCard:
    """Inside the operation's transaction (`run_with_card_proofs`): check the proof and use its
    challenge. A failure raises `CardProofError`; the runner records it after the rollback. An
    already verified card (`VerifiedCard`, e.g. from `verify_card_proof`) passes as it is."""
    if isinstance(card, VerifiedCard):
        return card
    try:
        return _check(uow, card)
    except MyKeyError as error:
        raise CardProofError(error, card) from None


def record_failure(uow: UnitOfWork, failed: CardProofError) -> None:
    """A failed proof, in a transaction of its own: its challenge used up, the attempt kept
    with its code, and a failed use of a known card in its MyKey ID's usage history. Done by
    `run_with_card_proofs`; a use case that checks a proof inside a runner of its own (e.g.
    `idempotency.keyed_write`) calls it after that runner has rolled back."""
    presented = failed.presented
    proof, actor, key = presented.proof, presented.actor, presented.anchors.challenge_key
    opened = key.open(proof.challenge_id) if isinstance(proof.challenge_id, str) else None

    def body() -> None:
        s = uow.session
        now = uow.now()
        # A challenge this server issued is used up, unless it was another's to use: a
        # terminal holding someone else's challenge cannot spoil it for them.
        if opened is not None and opened.issued_to(key.asker_tag(presented.asker)):
            use_challenge(uow, opened.use_id, now)
        card_key = _card_key_if_readable(proof)
        s.add(
            CardProofAttempt(
                challenge_id=opened.use_id if opened is not None else None,
                card_key=card_key,
                actor=actor,
                outcome=failed.code,
                at=now,
            )
        )
        s.flush()
        holder = s.get(ResidentCard, card_key) if card_key else None
        if holder is not None:  # a failed use of a known card is part of its ID's history
            usage.record(
                uow,
                mykey_id=holder.mykey_id,
                action="failed_proof",
                actor=actor,
                purpose=failed.code,
            )

    uow.run(body)


def run_with_card_proofs(
    uow: UnitOfWork, body: Callable[[], T | MyKeyError], *, statement_begin: bool = False
) -> T:
    """Run `body` as one transaction in which card proofs are checked and their challenges
    used (`verify_in_transaction`). A refusal raised by `body` rolls everything back, the
    challenge's use included; a refusal *returned* by `body` is raised after the commit (for
    an operation that must keep a record of its refusal). A failed proof is recorded in a
    transaction of its own, then raised. `statement_begin`: see `UnitOfWork.run`."""
    try:
        outcome = uow.run(body, statement_begin=statement_begin)
    except CardProofError as failed:
        if not uow.in_transaction:  # the outermost runner records it, after the rollback
            record_failure(uow, failed)
        raise
    if isinstance(outcome, MyKeyError):
        raise outcome
    return outcome


def with_card(uow: UnitOfWork, card: Card, operation: Callable[[VerifiedCard], T]) -> T:
    """`operation` with the checked card, in one transaction with the use of its challenge:
    a refused operation leaves the challenge unused (the card need not be tapped again)."""
    return run_with_card_proofs(uow, lambda: operation(verify_in_transaction(uow, card)))


def verify_card_proof(
    uow: UnitOfWork,
    *,
    proof: CardProof,
    anchors: TrustAnchors,
    actor: str,
    asker: str | None = None,
) -> VerifiedCard:
    """Check a card proof and use its challenge now (see the module docstring); a failure is
    recorded, then raised. For an operation, prefer `with_card`: its refusal keeps the
    challenge."""
    return with_card(uow, PresentedCard(proof, anchors, actor, asker), lambda card: card)


def revoke_card(uow: UnitOfWork, *, card_key: str, reason: str, actor: str) -> None:
    """Refuse a card everywhere from now on (idempotent)."""

    def body() -> None:
        if uow.session.get(CardRevocation, card_key) is None:
            uow.session.add(
                CardRevocation(card_key=card_key, reason=reason, actor=actor, revoked_at=uow.now())
            )
            uow.session.flush()

    uow.run(body)
