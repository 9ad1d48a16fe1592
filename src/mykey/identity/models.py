"""Tables of the identity domain: card challenges, their single use, proof attempts, revocations.

No field of a card's certificate is stored: a card is known by its card key, the SHA-256 of
its SubjectPublicKeyInfo.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class CardChallenge(Base):
    """Challenges as they were issued before issue #14: kept, no longer written (a challenge is
    now a signed token, `identity.proofs.ChallengeKey`)."""

    __tablename__ = "card_challenges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(32))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardChallengeUse(Base):
    """A challenge is used once: the row's primary key makes a second use impossible. The key
    is the challenge's id (the UUID inside its token; before issue #14, a `card_challenges` id),
    the row inserted in the transaction of the operation the challenge proves."""

    __tablename__ = "card_challenge_uses"

    challenge_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardProofAttempt(Base):
    """Every failed card proof, with who tried it and why it failed (append-only)."""

    __tablename__ = "card_proof_attempts"
    __table_args__ = (Index("ix_card_proof_attempts_card_key", "card_key", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    challenge_id: Mapped[str | None] = mapped_column(String(36))
    card_key: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardRevocation(Base):
    """A card refused everywhere (lost, stolen, reissued), by its card key."""

    __tablename__ = "card_revocations"

    card_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Resident(Base):
    """A MyKey ID: the resident's stable key (no certificate field survives renewal)."""

    __tablename__ = "residents"

    mykey_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ResidentCard(Base):
    """A card linked to a MyKey ID: one card key → one MyKey ID; one MyKey ID, many cards."""

    __tablename__ = "resident_cards"
    __table_args__ = (Index("ix_resident_cards_mykey_id", "mykey_id"),)

    card_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), ForeignKey("residents.mykey_id"))
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardReplacement(Base):
    """A card replaced by a newer card linked to the same MyKey ID (renewal or reissue): it is
    refused from `replaced_at` plus the grace period (`MYKEY_REPLACED_CARD_GRACE_HOURS`, by
    default none). Rows are only ever added."""

    __tablename__ = "card_replacements"

    card_key: Mapped[str] = mapped_column(
        String(64), ForeignKey("resident_cards.card_key"), primary_key=True
    )
    replaced_by: Mapped[str] = mapped_column(String(64), ForeignKey("resident_cards.card_key"))
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ResidentSession(Base):
    """A My Page session: only the SHA-256 of its token is stored."""

    __tablename__ = "resident_sessions"
    __table_args__ = (Index("ix_resident_sessions_mykey_id", "mykey_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), ForeignKey("residents.mykey_id"))
    method: Mapped[str] = mapped_column(String(16))  # password | card
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginFailure(Base):
    """A failed login, by the MyKey ID tried (registered or not) and the client address."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_mykey_id", "mykey_id", "at"),
        Index("ix_login_failures_client", "client", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    mykey_id: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """A machine or staff key: `mk_<id>_<secret>`; only the SHA-256 of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))  # terminal | provider_staff | operator …
    provider_id: Mapped[str | None] = mapped_column(String(16), ForeignKey("providers.id"))
    municipality: Mapped[str | None] = mapped_column(String(6))
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Zone(Base):
    """Providers that share their users (the Omuta regional libraries, R2.4)."""

    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Provider(Base):
    """A service provider (事業者) with its own user database: a library, a gym …"""

    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # 事業者ID, e.g. A1
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    municipality: Mapped[str] = mapped_column(String(6))
    zone_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("zones.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProviderLink(Base):
    """MyKey ID · provider → the provider's own user number (利用者番号)."""

    __tablename__ = "provider_links"
    __table_args__ = (Index("uq_provider_links_number", "provider_id", "user_number", unique=True),)

    mykey_id: Mapped[str] = mapped_column(
        String(8), ForeignKey("residents.mykey_id"), primary_key=True
    )
    provider_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("providers.id"), primary_key=True
    )
    user_number: Mapped[str] = mapped_column(String(32))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    linked_by: Mapped[str] = mapped_column(String(128))


class ServiceId(Base):
    """An ID the resident has at a partner company or online service (R2.6)."""

    __tablename__ = "service_ids"

    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(8), ForeignKey("residents.mykey_id"))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageEntry(Base):
    """The MyKey usage history (R1.5): who used a MyKey ID, where, when, for what."""

    __tablename__ = "mykey_usage"
    __table_args__ = (Index("ix_mykey_usage_mykey_id", "mykey_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    mykey_id: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    provider_id: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffAccount(Base):
    """A staff member who signs in to the web pages (separate from residents): a council
    operator, a municipality's staff, a partner's staff or a shop's staff."""

    __tablename__ = "staff_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))  # operator | municipality_staff | partner …
    municipality: Mapped[str | None] = mapped_column(String(6))
    partner_id: Mapped[str | None] = mapped_column(String(32))
    shop_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffLoginFailure(Base):
    """A failed staff login, by the username tried (known or not) and the client address."""

    __tablename__ = "staff_login_failures"
    __table_args__ = (
        Index("ix_staff_login_failures_username", "username", "at"),
        Index("ix_staff_login_failures_client", "client", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class PageSession(Base):
    """A browser session of the web pages: its CSRF token, and who signed in with it (a staff
    account, or a resident's session of `resident_sessions`, by that session's token hash).
    Only the SHA-256 of the cookie's value is kept."""

    __tablename__ = "page_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    staff_username: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("staff_accounts.username")
    )
    resident_session: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What a page shows after a form (post/redirect/get), as JSON, for a short while
    # (web/pages/base.py `Page.keep`); cleared at sign-out.
    notes: Mapped[str | None] = mapped_column(Text)
