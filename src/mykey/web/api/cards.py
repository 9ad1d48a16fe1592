"""Card proofs over HTTP: challenges for a card to sign, and a check of a signed proof."""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from mykey.identity.binding import Binder, ExpectedHolder
from mykey.identity.proofs import (
    CardProof,
    PresentedCard,
    TrustAnchors,
    issue_challenge,
    verify_card_proof,
)
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1/card", tags=["cards"])


class ChallengeOut(BaseModel):
    challenge_id: str
    nonce: str = Field(description="base64 of the 32 bytes the card must sign")
    expires_at: datetime


class CardProofIn(BaseModel):
    certificate: str = Field(description="the card's user-authentication certificate, base64 DER")
    challenge_id: str
    signature: str = Field(description="RSASSA-PKCS1-v1_5 / SHA-256 over the nonce, base64")


class VerifiedCardOut(BaseModel):
    card_key: str = Field(description="hex SHA-256 of the certificate's SubjectPublicKeyInfo")
    not_after: datetime


def anchors_of(request: Request) -> TrustAnchors:
    anchors: TrustAnchors | None = request.app.state.card_anchors
    if anchors is None:
        raise HTTPException(
            status_code=503,
            detail="No card trust anchors are configured (MYKEY_CARD_TRUST_ANCHORS)."
            " / カード検証用の信頼点が設定されていません。",
        )
    return anchors


def presented(request: Request, proof: CardProofIn, *, actor: str | None = None) -> PresentedCard:
    """A card proof of a request, to be checked in the transaction of what it proves (so that
    a refused request leaves its challenge unused: `identity.proofs.with_card`)."""
    client = request.client.host if request.client else "unknown"
    return PresentedCard(
        CardProof(proof.certificate, proof.challenge_id, proof.signature),
        anchors_of(request),
        actor or f"client:{client}",
    )


def binder_of(request: Request) -> Binder:
    """Signs and checks holder bindings with the server's secret key."""
    return Binder.from_secret(request.app.state.settings.secret_key)


def expected(request: Request, token: str | None) -> ExpectedHolder | None:
    """The holder a request expects (a binding from the balances shown), if it names one."""
    return ExpectedHolder(token, binder_of(request)) if token is not None else None


@router.post("/challenges", response_model=ChallengeOut, status_code=201)
def new_challenge(uow: Uow, request: Request) -> ChallengeOut:
    """A single-use challenge (valid 60 s) for a card to sign with its authentication key."""
    client = request.client.host if request.client else "unknown"
    challenge = issue_challenge(uow, actor=f"client:{client}")
    return ChallengeOut(
        challenge_id=challenge.id,
        nonce=base64.b64encode(challenge.nonce).decode(),
        expires_at=challenge.expires_at,
    )


@router.post("/verifications", response_model=VerifiedCardOut)
def verify(body: CardProofIn, uow: Uow, request: Request) -> VerifiedCardOut:
    """Check a card proof: a reader's self-test. Failures are 4xx with a stable code."""
    client = request.client.host if request.client else "unknown"
    card = verify_card_proof(
        uow,
        proof=CardProof(body.certificate, body.challenge_id, body.signature),
        anchors=anchors_of(request),
        actor=f"client:{client}",
    )
    return VerifiedCardOut(card_key=card.card_key, not_after=card.not_after)
