"""MyKey IDs (R1): creating one with a card, logging in, sessions, and the cards of an ID.

- A MyKey ID is 8 characters of A–Z and 0–9, case-insensitive (kept upper-case), unique,
  chosen by the resident or suggested; it comes with a password (argon2, 8 to 128 characters).
  One card key belongs to one MyKey ID; one MyKey ID has many cards over the years.
- Login with MyKey ID and password, or with a card proof, gives a session token (only its
  SHA-256 is stored) that expires; logout ends it.
- Failed logins slow down and then lock, per MyKey ID and per client address, and never say
  whether a MyKey ID exists: an unknown ID and a wrong password get the same answer after the
  same work.
- A renewed or reissued card is linked to the same MyKey ID with the old card's proof or the
  password. It replaces every older card of that MyKey ID: an older card is refused everywhere
  (`card_replaced`, checked with the card proof) once the grace period after the new card's
  linking has passed (`MYKEY_REPLACED_CARD_GRACE_HOURS`, by default none: at once).
- A lost card is suspended by the resident or an operator, and is refused everywhere at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from mykey.db import RetryTransaction, UnitOfWork
from mykey.errors import ErrorKind, MyKeyError, conflict, invalid, not_found, refused
from mykey.identity import usage
from mykey.identity.models import (
    CardReplacement,
    CardRevocation,
    LoginFailure,
    Resident,
    ResidentCard,
    ResidentSession,
)
from mykey.identity.proofs import VerifiedCard, revoke_card

MYKEY_ID = re.compile(r"[A-Z0-9]{8}")
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # suggestions avoid I, O, 0 and 1
SESSION_LIFETIME = timedelta(hours=2)
FAILURE_WINDOW = timedelta(minutes=15)
SLOW_AFTER = 3  # failures before each further try must wait (1 s, 2 s, 4 s …)
LOCK_AFTER = 5  # failures in the window that lock the ID or the address for the window

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-password-" + secrets.token_hex(8))


@dataclass(frozen=True)
class SessionToken:
    token: str  # shown once to the client; only its hash is kept
    mykey_id: str
    expires_at: datetime


@dataclass(frozen=True)
class CardView:
    card_key: str
    linked_at: datetime
    not_after: datetime
    suspended: bool
    replaced_at: datetime | None = None  # when a newer card of the same MyKey ID was linked
    replaced_by: str | None = None  # that newer card's key
    usable_until: datetime | None = None  # a replaced card: refused from then (after the grace)


def _unauthenticated(
    message: str, message_ja: str, code: str = "invalid_credentials"
) -> MyKeyError:
    return MyKeyError(code, ErrorKind.UNAUTHENTICATED, message, message_ja)


def bad_credentials() -> MyKeyError:
    return _unauthenticated(
        "The MyKey ID or the password is wrong.",
        "マイキーIDまたはパスワードが正しくありません。",
    )


def normalise_mykey_id(value: object) -> str:
    if not isinstance(value, str) or not MYKEY_ID.fullmatch(value.strip().upper()):
        raise invalid(
            "invalid_mykey_id",
            "A MyKey ID is 8 letters (A–Z) and digits (0–9).",
            "マイキーIDは英字（A〜Z）と数字（0〜9）の 8 文字です。",
        )
    return value.strip().upper()


def _check_password(password: object) -> str:
    if not isinstance(password, str) or not 8 <= len(password) <= 128:
        raise invalid(
            "weak_password",
            "A password is 8 to 128 characters.",
            "パスワードは 8〜128 文字で設定してください。",
        )
    return password


def _suggest(uow: UnitOfWork) -> str:
    for _ in range(20):
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(8))
        if uow.session.get(Resident, candidate) is None:
            return candidate
    raise RetryTransaction  # pragma: no cover -- 32^8 ids; twenty misses do not happen


def suggest_mykey_ids(uow: UnitOfWork, *, count: int = 3) -> list[str]:
    """Free MyKey IDs to offer a resident who has no wish of their own."""
    return uow.read(lambda: [_suggest(uow) for _ in range(max(1, min(count, 10)))])


def create_mykey_id(
    uow: UnitOfWork, *, card: VerifiedCard, password: str, mykey_id: str | None = None
) -> str:
    """A new MyKey ID for the resident holding `card` (already verified)."""
    wanted = normalise_mykey_id(mykey_id) if mykey_id is not None else None
    _check_password(password)
    password_hash = _hasher.hash(password)

    def body() -> str:
        s = uow.session
        if s.get(ResidentCard, card.card_key) is not None:
            raise conflict(
                "card_already_registered",
                "This card already has a MyKey ID; log in with it instead.",
                "このカードには既にマイキーIDがあります。ログインしてください。",
            )
        chosen = wanted or _suggest(uow)
        if s.get(Resident, chosen) is not None:
            raise conflict(
                "mykey_id_taken",
                f"The MyKey ID {chosen} is taken; choose another.",
                f"マイキーID {chosen} は既に使われています。別の ID を選んでください。",
            )
        now = uow.now()
        s.add(Resident(mykey_id=chosen, password_hash=password_hash, created_at=now))
        s.flush()
        s.add(
            ResidentCard(
                card_key=card.card_key, mykey_id=chosen, not_after=card.not_after, linked_at=now
            )
        )
        try:
            s.flush()
        except IntegrityError as exc:  # a twin request took the id or the card just now
            raise RetryTransaction from exc
        usage.record(uow, mykey_id=chosen, action="create", actor=f"resident:{chosen}")
        return chosen

    return uow.run(body)


def _throttle(uow: UnitOfWork, mykey_id: str, client: str) -> None:
    """Refuse a login try that comes too soon after failures (by ID or by address)."""
    now = uow.now()
    since = now - FAILURE_WINDOW
    for column, value in ((LoginFailure.mykey_id, mykey_id), (LoginFailure.client, client)):
        count, last = uow.session.execute(
            select(func.count(), func.max(LoginFailure.at)).where(
                column == value, LoginFailure.at > since
            )
        ).one()
        if count >= LOCK_AFTER:
            raise MyKeyError(
                "login_locked",
                ErrorKind.THROTTLED,
                "Too many failed logins; try again in 15 minutes.",
                "ログインの失敗が続いたため、15 分間ログインできません。",
                details={"retry_after": int(FAILURE_WINDOW.total_seconds())},
            )
        if count >= SLOW_AFTER and last is not None:
            wait = timedelta(seconds=2 ** (count - SLOW_AFTER))
            last_at = last if last.tzinfo else last.replace(tzinfo=now.tzinfo)
            if now < last_at + wait:
                raise MyKeyError(
                    "login_throttled",
                    ErrorKind.THROTTLED,
                    "Too many failed logins; wait a moment and try again.",
                    "ログインの失敗が続いています。少し待ってから再度お試しください。",
                    details={"retry_after": max(1, int((last_at + wait - now).total_seconds()))},
                )


def _new_session(uow: UnitOfWork, mykey_id: str, method: str) -> SessionToken:
    token = secrets.token_urlsafe(32)
    now = uow.now()
    expires = now + SESSION_LIFETIME
    uow.session.add(
        ResidentSession(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            mykey_id=mykey_id,
            method=method,
            created_at=now,
            expires_at=expires,
            ended_at=None,
        )
    )
    uow.session.flush()
    usage.record(
        uow, mykey_id=mykey_id, action="login", actor=f"resident:{mykey_id}", purpose=method
    )
    return SessionToken(token, mykey_id, expires)


def login_with_password(
    uow: UnitOfWork, *, mykey_id: str, password: str, client: str
) -> SessionToken:
    tried = mykey_id.strip().upper()[:16] if isinstance(mykey_id, str) else "?"

    def body() -> SessionToken | MyKeyError:
        _throttle(uow, tried, client)
        resident = uow.session.get(Resident, tried) if MYKEY_ID.fullmatch(tried) else None
        try:
            # The same work whether or not the ID exists: no timing tells them apart.
            _hasher.verify(resident.password_hash if resident else _DUMMY_HASH, password)
            ok = resident is not None
        except (VerificationError, InvalidHashError, TypeError):
            ok = False
        if not ok or resident is None:
            uow.session.add(LoginFailure(mykey_id=tried, client=client, at=uow.now()))
            uow.session.flush()
            return bad_credentials()
        return _new_session(uow, resident.mykey_id, "password")

    outcome = uow.run(body)
    if isinstance(outcome, MyKeyError):
        raise outcome
    return outcome


def login_with_card(uow: UnitOfWork, *, card: VerifiedCard) -> SessionToken:
    def body() -> SessionToken:
        link = uow.session.get(ResidentCard, card.card_key)
        if link is None:
            raise not_found(
                "card_not_registered",
                "This card has no MyKey ID yet; create one first.",
                "このカードにはまだマイキーIDがありません。先に作成してください。",
            )
        return _new_session(uow, link.mykey_id, "card")

    return uow.run(body)


def _session_row(uow: UnitOfWork, token: str) -> ResidentSession:
    row = uow.session.get(ResidentSession, hashlib.sha256(token.encode()).hexdigest())
    if row is None or row.ended_at is not None or uow.now() >= row.expires_at:
        raise _unauthenticated(
            "Your session has ended; please log in again.",
            "セッションが終了しました。もう一度ログインしてください。",
            code="invalid_session",
        )
    return row


def resident_for_session(uow: UnitOfWork, token: str) -> str:
    """The MyKey ID of a live session, or `invalid_session`."""
    return uow.read(lambda: _session_row(uow, token).mykey_id)


def logout(uow: UnitOfWork, token: str) -> None:
    def body() -> None:
        row = _session_row(uow, token)
        uow.session.execute(
            update(ResidentSession)
            .where(ResidentSession.token_hash == row.token_hash)
            .values(ended_at=uow.now())
        )

    uow.run(body)


def _view(
    card: ResidentCard,
    *,
    suspended: bool,
    replacement: CardReplacement | None,
    grace: timedelta,
) -> CardView:
    if replacement is None:
        return CardView(card.card_key, card.linked_at, card.not_after, suspended)
    return CardView(
        card.card_key,
        card.linked_at,
        card.not_after,
        suspended,
        replacement.replaced_at,
        replacement.replaced_by,
        replacement.replaced_at + grace,
    )


def cards_of(uow: UnitOfWork, mykey_id: str, *, grace: timedelta = timedelta(0)) -> list[CardView]:
    """The cards of a MyKey ID, oldest first, with their suspension and replacement (`grace`:
    how long a replaced card is still accepted, `MYKEY_REPLACED_CARD_GRACE_HOURS`)."""

    def body() -> list[CardView]:
        rows = uow.session.execute(
            select(ResidentCard, CardRevocation.card_key, CardReplacement)
            .outerjoin(CardRevocation, CardRevocation.card_key == ResidentCard.card_key)
            .outerjoin(CardReplacement, CardReplacement.card_key == ResidentCard.card_key)
            .where(ResidentCard.mykey_id == mykey_id)
            .order_by(ResidentCard.linked_at, ResidentCard.card_key)
        ).all()
        return [
            _view(card, suspended=revoked is not None, replacement=replacement, grace=grace)
            for card, revoked, replacement in rows
        ]

    return uow.read(body)


def _replace_older_cards(
    uow: UnitOfWork, *, mykey_id: str, new_card_key: str, at: datetime
) -> list[str]:
    """Mark every other card of the MyKey ID that is not replaced yet as replaced by the new
    card, at its linking time `at`. Returns their keys."""
    s = uow.session
    older = list(
        s.scalars(
            select(ResidentCard.card_key)
            .outerjoin(CardReplacement, CardReplacement.card_key == ResidentCard.card_key)
            .where(
                ResidentCard.mykey_id == mykey_id,
                ResidentCard.card_key != new_card_key,
                CardReplacement.card_key.is_(None),
            )
            .order_by(ResidentCard.linked_at, ResidentCard.card_key)
        )
    )
    s.add_all(
        CardReplacement(card_key=key, replaced_by=new_card_key, replaced_at=at) for key in older
    )
    try:
        s.flush()
    except IntegrityError as exc:  # a twin link replaced the same card just now: read again
        raise RetryTransaction from exc
    return older


def link_new_card(
    uow: UnitOfWork,
    *,
    mykey_id: str,
    new_card: VerifiedCard,
    old_card: VerifiedCard | None = None,
    password: str | None = None,
    grace: timedelta = timedelta(0),
) -> CardView:
    """Link a renewed or reissued card to a MyKey ID, proven by the old card or the password.
    The new card replaces every older card of the MyKey ID (see the module docstring); linking
    a card that is already this MyKey ID's changes nothing."""

    def body() -> CardView:
        s = uow.session
        resident = s.get(Resident, mykey_id)
        if resident is None:
            raise bad_credentials()
        if old_card is not None:
            old = s.get(ResidentCard, old_card.card_key)
            if old is None or old.mykey_id != mykey_id:
                raise refused(
                    "old_card_mismatch",
                    "The old card does not belong to this MyKey ID.",
                    "旧カードはこのマイキーIDのものではありません。",
                )
        else:
            try:
                _hasher.verify(resident.password_hash, password or "")
            except (VerificationError, InvalidHashError):
                raise bad_credentials() from None
        existing = s.get(ResidentCard, new_card.card_key)
        if existing is not None:
            if existing.mykey_id == mykey_id:
                return _view(
                    existing,
                    suspended=s.get(CardRevocation, existing.card_key) is not None,
                    replacement=s.get(CardReplacement, existing.card_key),
                    grace=grace,
                )
            raise conflict(
                "card_already_registered",
                "The new card already belongs to another MyKey ID.",
                "新しいカードは既に別のマイキーIDに登録されています。",
            )
        now = uow.now()
        s.add(
            ResidentCard(
                card_key=new_card.card_key,
                mykey_id=mykey_id,
                not_after=new_card.not_after,
                linked_at=now,
            )
        )
        s.flush()
        usage.record(
            uow,
            mykey_id=mykey_id,
            action="card_linked",
            actor=f"resident:{mykey_id}",
            purpose="old card" if old_card is not None else "password",
        )
        older = _replace_older_cards(uow, mykey_id=mykey_id, new_card_key=new_card.card_key, at=now)
        for replaced in older:
            usage.record(
                uow,
                mykey_id=mykey_id,
                action="card_replaced",
                actor=f"resident:{mykey_id}",
                purpose=replaced[:12],
            )
        return CardView(new_card.card_key, now, new_card.not_after, False)

    return uow.run(body)


def suspend_card(uow: UnitOfWork, *, mykey_id: str | None, card_key: str, actor: str) -> None:
    """Suspend a card (lost or stolen). A resident (`mykey_id`) may suspend only their own
    cards; an operator (`mykey_id=None`) any card. Refused everywhere from now on."""

    def body() -> None:
        link = uow.session.get(ResidentCard, card_key)
        if link is None or (mykey_id is not None and link.mykey_id != mykey_id):
            raise not_found(
                "unknown_card",
                "There is no such card among yours.",
                "該当するカードはありません。",
            )
        revoke_card(uow, card_key=card_key, reason="suspended", actor=actor)
        usage.record(uow, mykey_id=link.mykey_id, action="card_suspended", actor=actor)

    uow.run(body)
