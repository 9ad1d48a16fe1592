"""Staff accounts and the browser sessions of the web pages.

- A staff account is a username, an argon2 password hash and a role: `operator` (the council),
  `municipality_staff` (bound to one municipality), `partner` (bound to one partner) or
  `shop_staff` (bound to one shop). The roles are the API key roles' names where they match.
- Failed logins slow down and then lock, per username and per client address, as residents'
  do (`identity.residents`), and an unknown username costs the same work as a wrong password.
- A page session is a random cookie value (only its SHA-256 is kept) with a CSRF token and an
  expiry. Anyone who opens a form gets an anonymous one; signing in replaces it by a new one
  (no session fixation); signing out ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, delete, func, or_, select

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError, conflict, invalid
from mykey.identity.models import PageSession, ResidentSession, StaffAccount, StaffLoginFailure
from mykey.identity.residents import FAILURE_WINDOW, LOCK_AFTER, SLOW_AFTER
from mykey.municipalities.codes import parse_code

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
PAGE_SESSION_LIFETIME = timedelta(hours=8)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-password-" + secrets.token_hex(8))


class StaffRole(StrEnum):
    OPERATOR = "operator"  # the operating council
    MUNICIPALITY_STAFF = "municipality_staff"  # staff of one municipality
    PARTNER = "partner"  # staff of one partner company
    SHOP_STAFF = "shop_staff"  # staff of one shop or facility


@dataclass(frozen=True)
class StaffMember:
    """Who is signed in, as their account says."""

    username: str
    role: StaffRole
    municipality: str | None = None
    partner_id: str | None = None
    shop_id: str | None = None

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


@dataclass(frozen=True)
class PageSessionView:
    """A live page session: the cookie value is not in here, only what it stands for."""

    token_hash: str
    csrf_token: str
    staff: StaffMember | None
    mykey_id: str | None
    notes: str | None = None  # JSON: what a page shows after a form (post/redirect/get)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _member(row: StaffAccount) -> StaffMember:
    return StaffMember(
        row.username, StaffRole(row.role), row.municipality, row.partner_id, row.shop_id
    )


def bad_staff_credentials() -> MyKeyError:
    return MyKeyError(
        "invalid_credentials",
        ErrorKind.UNAUTHENTICATED,
        "The username or the password is wrong.",
        "ユーザー名またはパスワードが正しくありません。",
    )


def add_staff(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    role: StaffRole | str,
    municipality: str | None = None,
    partner_id: str | None = None,
    shop_id: str | None = None,
) -> StaffMember:
    """A new staff account; each role is bound to exactly what it works for."""
    name = username.strip().lower() if isinstance(username, str) else ""
    if not USERNAME.fullmatch(name):
        raise invalid(
            "invalid_username",
            "A username is 3 to 64 lower-case letters, digits, dots, dashes or underscores.",
            "ユーザー名は英小文字・数字・「.」「-」「_」の 3〜64 文字です。",
        )
    if not isinstance(password, str) or not 8 <= len(password) <= 128:
        raise invalid(
            "weak_password",
            "A password is 8 to 128 characters.",
            "パスワードは 8〜128 文字で設定してください。",
        )
    try:
        chosen = StaffRole(role)
    except ValueError:
        raise invalid(
            "invalid_role",
            f"Unknown role {role!r}; one of {', '.join(r.value for r in StaffRole)}.",
            f"役割 {role!r} は不明です。",
        ) from None
    bindings = {
        StaffRole.MUNICIPALITY_STAFF: municipality,
        StaffRole.PARTNER: partner_id,
        StaffRole.SHOP_STAFF: shop_id,
    }
    given = {r for r, v in bindings.items() if v}
    if given != ({chosen} if chosen in bindings else set()):
        raise invalid(
            "invalid_staff_binding",
            "Municipality staff need --municipality, partner staff --partner, shop staff"
            " --shop; operators none of them.",
            "自治体職員は自治体、協力企業は企業、店舗職員は店舗を一つ指定します（運営者は指定なし）。",
        )
    code = parse_code(municipality) if municipality else None
    password_hash = _hasher.hash(password)

    def body() -> StaffMember:
        if uow.session.get(StaffAccount, name) is not None:
            raise conflict(
                "username_taken",
                f"The username {name} is taken.",
                f"ユーザー名 {name} は既に使われています。",
            )
        row = StaffAccount(
            username=name,
            password_hash=password_hash,
            role=chosen.value,
            municipality=code,
            partner_id=partner_id or None,
            shop_id=shop_id or None,
            created_at=uow.now(),
            disabled_at=None,
        )
        uow.session.add(row)
        uow.session.flush()
        return _member(row)

    return uow.run(body)


def staff_exists(uow: UnitOfWork, username: str) -> bool:
    return uow.read(lambda: uow.session.get(StaffAccount, username) is not None)


def _throttle(uow: UnitOfWork, username: str, client: str) -> None:
    now = uow.now()
    since = now - FAILURE_WINDOW
    for column, value in (
        (StaffLoginFailure.username, username),
        (StaffLoginFailure.client, client),
    ):
        count, last = uow.session.execute(
            select(func.count(), func.max(StaffLoginFailure.at)).where(
                column == value, StaffLoginFailure.at > since
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


def _new_page_session(
    uow: UnitOfWork, *, staff: str | None = None, resident_session: str | None = None
) -> tuple[str, PageSession]:
    token = secrets.token_urlsafe(32)
    now = uow.now()
    row = PageSession(
        token_hash=_hash(token),
        csrf_token=secrets.token_urlsafe(32),
        staff_username=staff,
        resident_session=resident_session,
        created_at=now,
        expires_at=now + PAGE_SESSION_LIFETIME,
        ended_at=None,
    )
    uow.session.add(row)
    uow.session.flush()
    return token, row


def start_anonymous_session(uow: UnitOfWork) -> tuple[str, str]:
    """A new session for a visitor who opens a form: (cookie value, CSRF token)."""

    def body() -> tuple[str, str]:
        token, row = _new_page_session(uow)
        return token, row.csrf_token

    return uow.run(body)


def _end(uow: UnitOfWork, token: str | None) -> None:
    if token:
        row = uow.session.get(PageSession, _hash(token))
        if row is not None and row.ended_at is None:
            row.ended_at = uow.now()
            row.notes = None
            uow.session.flush()


def login_staff(
    uow: UnitOfWork, *, username: str, password: str, client: str, old_token: str | None
) -> tuple[str, StaffMember]:
    """Sign a staff member in: a new page session (the old one, if any, ends)."""
    tried = username.strip().lower()[:64] if isinstance(username, str) else "?"

    def body() -> tuple[str, StaffMember] | MyKeyError:
        _throttle(uow, tried, client[:64])
        row = uow.session.get(StaffAccount, tried)
        try:
            _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
            ok = row is not None and row.disabled_at is None
        except (VerificationError, InvalidHashError, TypeError):
            ok = False
        if not ok or row is None:
            uow.session.add(StaffLoginFailure(username=tried, client=client[:64], at=uow.now()))
            uow.session.flush()
            return bad_staff_credentials()
        _end(uow, old_token)
        token, _ = _new_page_session(uow, staff=row.username)
        return token, _member(row)

    outcome = uow.run(body)
    if isinstance(outcome, MyKeyError):
        raise outcome
    return outcome


def attach_resident(uow: UnitOfWork, *, resident_token: str, old_token: str | None) -> str:
    """A new page session for a resident who has just logged in (`residents.login_*`)."""

    def body() -> str:
        _end(uow, old_token)
        token, _ = _new_page_session(uow, resident_session=_hash(resident_token))
        return token

    return uow.run(body)


def page_session(uow: UnitOfWork, token: str) -> PageSessionView | None:
    """The live session of a cookie value, or None (unknown, ended, expired, or its staff
    account disabled, or its resident session ended)."""

    def body() -> PageSessionView | None:
        row = uow.session.get(PageSession, _hash(token))
        now = uow.now()
        if row is None or row.ended_at is not None or now >= row.expires_at:
            return None
        staff = None
        if row.staff_username is not None:
            account = uow.session.get(StaffAccount, row.staff_username)
            if account is None or account.disabled_at is not None:
                return None
            staff = _member(account)
        mykey_id = None
        if row.resident_session is not None:
            resident = uow.session.get(ResidentSession, row.resident_session)
            if resident is None or resident.ended_at is not None or now >= resident.expires_at:
                return None
            mykey_id = resident.mykey_id
        return PageSessionView(row.token_hash, row.csrf_token, staff, mykey_id, row.notes)

    return uow.read(body)


def set_page_notes(uow: UnitOfWork, token_hash: str, notes: str | None) -> None:
    """Keep what a page shows after a form in the live session (None: nothing)."""

    def body() -> None:
        row = uow.session.get(PageSession, token_hash)
        if row is not None and row.ended_at is None:
            row.notes = notes
            uow.session.flush()

    uow.run(body)


def end_page_session(uow: UnitOfWork, token: str) -> None:
    """Sign out: the page session ends, and the resident session behind it too."""

    def body() -> None:
        row = uow.session.get(PageSession, _hash(token))
        if row is None:
            return
        if row.resident_session is not None:
            resident = uow.session.get(ResidentSession, row.resident_session)
            if resident is not None and resident.ended_at is None:
                resident.ended_at = uow.now()
        _end(uow, token)

    uow.run(body)


def csrf_matches(view: PageSessionView | None, presented: str | None) -> bool:
    """Is `presented` the CSRF token of this session? (constant-time)"""
    if view is None or not presented:
        return False
    return hmac.compare_digest(view.csrf_token.encode(), presented.encode())


def purge_page_sessions(uow: UnitOfWork) -> int:
    """Delete page sessions that expired or were ended more than a day ago (they only held a
    token hash and a CSRF token; nothing refers to them). Returns how many went."""
    cutoff = uow.now() - timedelta(days=1)

    def body() -> int:
        done = uow.session.execute(
            delete(PageSession).where(
                or_(
                    PageSession.expires_at < cutoff,
                    and_(PageSession.ended_at.is_not(None), PageSession.ended_at < cutoff),
                )
            )
        )
        return int(getattr(done, "rowcount", 0) or 0)

    return uow.run(body)
