"""Card proofs over HTTP: challenges for a card to sign, and a check of a signed proof."""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from mykey.identity.binding import Binder, ExpectedHolder
from mykey.identity.proofs import (
    CardProof,
    ChallengeKey,
    PresentedCard,
    TrustAnchors,
    issue_challenge,
    verify_card_proof,
)
from mykey.web.auth import bearer_token
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1/card", tags=["cards"])


class ChallengeOut(BaseModel):
    challenge_id: str = Field(
        description="the challenge itself, a token signed by the server (87 characters,"
        " base64url): send it back as `challenge_id` of the card proof"
    )
    nonce: str = Field(description="base64 of the 32 bytes the card must sign")
    expires_at: datetime


class CardProofIn(BaseModel):
    certificate: str = Field(description="the card's user-authentication certificate, base64 DER")
    challenge_id: str = Field(description="the `challenge_id` of POST /api/v1/card/challenges")
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


def asker_of(request: Request) -> str | None:
    """Whom a challenge asked for by this request is issued to, and who presents a proof: the
    credential the request carries (`Authorization: Bearer`), or anyone (None). Read from the
    request alone, so issuing a challenge touches no database."""
    token = bearer_token(request.headers.get("authorization"))
    return f"bearer:{token}" if token else None


def presented(request: Request, proof: CardProofIn, *, actor: str | None = None) -> PresentedCard:
    """A card proof of a request, to be checked in the transaction of what it proves (so that
    a refused request leaves its challenge unused: `identity.proofs.with_card`)."""
    client = request.client.host if request.client else "unknown"
    return PresentedCard(
        CardProof(proof.certificate, proof.challenge_id, proof.signature),
        anchors_of(request),
        actor or f"client:{client}",
        asker_of(request),
    )


def binder_of(request: Request) -> Binder:
    """Signs and checks holder bindings with the server's secret key."""
    return Binder.from_secret(request.app.state.settings.secret_key)


def expected(request: Request, token: str | None) -> ExpectedHolder | None:
    """The holder a request expects (a binding from the balances shown), if it names one."""
    return ExpectedHolder(token, binder_of(request)) if token is not None else None


# The key is optional here: a challenge asked for with one is bound to it (`asker_of`).
OPTIONAL_KEY: dict[str, object] = {"security": [{}, {"bearer": []}]}


@router.post(
    "/challenges", response_model=ChallengeOut, status_code=201, openapi_extra=OPTIONAL_KEY
)
def new_challenge(uow: Uow, request: Request) -> ChallengeOut:
    """A single-use challenge (valid 60 s) for a card to sign with its authentication key.

    Asked for with a key (`Authorization: Bearer`, e.g. a terminal's), it can be used only in
    requests made with that key (`challenge_not_yours` otherwise); asked for without one, by
    anyone. Issuing one writes nothing: the challenge is a token signed by the server."""
    key: ChallengeKey = request.app.state.challenge_key
    challenge = issue_challenge(uow, key=key, asker=asker_of(request))
    return ChallengeOut(
        challenge_id=challenge.id,
        nonce=base64.b64encode(challenge.nonce).decode(),
        expires_at=challenge.expires_at,
    )


@router.post("/verifications", response_model=VerifiedCardOut, openapi_extra=OPTIONAL_KEY)
def verify(body: CardProofIn, uow: Uow, request: Request) -> VerifiedCardOut:
    """Check a card proof: a reader's self-test. Failures are 4xx with a stable code. A
    challenge asked for with a key is checked with the key this request carries."""
    client = request.client.host if request.client else "unknown"
    card = verify_card_proof(
        uow,
        proof=CardProof(body.certificate, body.challenge_id, body.signature),
        anchors=anchors_of(request),
        actor=f"client:{client}",
        asker=asker_of(request),
    )
    return VerifiedCardOut(card_key=card.card_key, not_after=card.not_after)
