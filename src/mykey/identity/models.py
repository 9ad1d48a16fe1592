"""Tables of the identity domain: card challenges, their single use, proof attempts, revocations.

No field of a card's certificate is stored: a card is known by its card key, the SHA-256 of
its SubjectPublicKeyInfo.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mykey.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class CardChallenge(Base):
    __tablename__ = "card_challenges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(32))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardChallengeUse(Base):
    """A challenge is used once: the row's primary key makes a second use impossible."""

    __tablename__ = "card_challenge_uses"

    challenge_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("card_challenges.id"), primary_key=True
    )
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
