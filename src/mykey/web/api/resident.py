"""The resident's API: creating a MyKey ID, logging in and out, their cards (R1)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from mykey.config import Settings
from mykey.errors import ErrorKind, MyKeyError
from mykey.identity import links, residents, usage
from mykey.identity.proofs import CardProof, VerifiedCard, verify_card_proof, with_card
from mykey.web import openapi
from mykey.web.api.cards import CardProofIn, anchors_of, asker_of, presented
from mykey.web.api.numbers import MAX_ID
from mykey.web.auth import bearer_token
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["residents"])


class CreateMyKeyIdIn(BaseModel):
    card_proof: CardProofIn
    password: str = Field(min_length=1, max_length=200)
    mykey_id: str | None = Field(default=None, description="8 of A–Z, 0–9; omit for a suggestion")


class MyKeyIdOut(BaseModel):
    mykey_id: str


class SuggestionsOut(BaseModel):
    suggestions: list[str]


class LoginIn(BaseModel):
    mykey_id: str | None = None
    password: str | None = None
    card_proof: CardProofIn | None = None


class SessionOut(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>`")
    mykey_id: str
    expires_at: datetime


class CardOut(BaseModel):
    card_key: str
    linked_at: datetime
    not_after: datetime
    suspended: bool
    replaced_at: datetime | None = Field(
        default=None, description="when a newer card of this MyKey ID was linked"
    )
    replaced_by: str | None = Field(default=None, description="the newer card's key")
    usable_until: datetime | None = Field(
        default=None, description="a replaced card is refused (card_replaced) from this time"
    )


class MeOut(BaseModel):
    mykey_id: str
    cards: list[CardOut]


class LinkCardIn(BaseModel):
    new_card_proof: CardProofIn
    old_card_proof: CardProofIn | None = None
    password: str | None = None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _replaced_card_grace(request: Request) -> timedelta:
    settings: Settings = request.app.state.settings
    return settings.replaced_card_grace()


def verify_proof(
    uow: Uow, request: Request, proof: CardProofIn, *, actor: str | None = None
) -> VerifiedCard:
    """Check a card proof now, its challenge used in a transaction of its own. For an
    operation prefer `with_card(uow, presented(request, proof), operation)`: a refused
    operation then leaves the tap usable."""
    return verify_card_proof(
        uow,
        proof=CardProof(proof.certificate, proof.challenge_id, proof.signature),
        anchors=anchors_of(request),
        actor=actor or f"client:{_client(request)}",
        asker=asker_of(request),
    )


def bearer(authorization: Annotated[str | None, Header()] = None) -> str:
    token = bearer_token(authorization)
    if token is None:
        raise MyKeyError(
            "login_required",
            ErrorKind.UNAUTHENTICATED,
            "Log in first (Authorization: Bearer <token>).",
            "ログインしてください。",
        )
    return token


Token = Annotated[str, Depends(bearer)]


@router.get("/mykey-ids/suggestions", response_model=SuggestionsOut)
def suggestions(uow: Uow) -> SuggestionsOut:
    """Free MyKey IDs to offer."""
    return SuggestionsOut(suggestions=residents.suggest_mykey_ids(uow))


@router.post("/mykey-ids", response_model=MyKeyIdOut, status_code=201)
def create(body: CreateMyKeyIdIn, uow: Uow, request: Request) -> MyKeyIdOut:
    """Create a MyKey ID with the card (a card proof) and a password."""
    if body.mykey_id is not None:
        residents.normalise_mykey_id(body.mykey_id)  # refuse a bad ID before using the card
    made = with_card(  # a refusal (ID taken, weak password) leaves the card's challenge unused
        uow,
        presented(request, body.card_proof),
        lambda card: residents.create_mykey_id(
            uow, card=card, password=body.password, mykey_id=body.mykey_id
        ),
    )
    return MyKeyIdOut(mykey_id=made)


@router.post(
    "/sessions", response_model=SessionOut, status_code=201, responses=openapi.problems(401, 429)
)
def login(body: LoginIn, uow: Uow, request: Request) -> SessionOut:
    """Log in to My Page with MyKey ID and password, or with a card proof."""
    if body.card_proof is not None:
        token = with_card(
            uow,
            presented(request, body.card_proof),
            lambda card: residents.login_with_card(uow, card=card),
        )
    elif body.mykey_id is not None and body.password is not None:
        token = residents.login_with_password(
            uow, mykey_id=body.mykey_id, password=body.password, client=_client(request)
        )
    else:
        raise MyKeyError(
            "invalid_login",
            ErrorKind.INVALID,
            "Send mykey_id and password, or card_proof.",
            "マイキーIDとパスワード、またはカードの証明を送ってください。",
        )
    return SessionOut(token=token.token, mykey_id=token.mykey_id, expires_at=token.expires_at)


@router.delete("/sessions/current", status_code=204)
def logout(uow: Uow, token: Token) -> Response:
    residents.logout(uow, token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
def me(uow: Uow, token: Token, request: Request) -> MeOut:
    """Who I am, and my cards."""
    mykey_id = residents.resident_for_session(uow, token)
    return MeOut(
        mykey_id=mykey_id,
        cards=[
            CardOut(**vars(c))
            for c in residents.cards_of(uow, mykey_id, grace=_replaced_card_grace(request))
        ],
    )


@router.post("/me/cards", response_model=CardOut, status_code=201)
def link_card(body: LinkCardIn, uow: Uow, request: Request, token: Token) -> CardOut:
    """Link a renewed or reissued card, proven by the old card or the password."""
    mykey_id = residents.resident_for_session(uow, token)
    old_proof = body.old_card_proof
    view = with_card(  # both cards' challenges are used with the link, or neither
        uow,
        presented(request, body.new_card_proof),
        lambda new: residents.link_new_card(
            uow,
            mykey_id=mykey_id,
            new_card=new,
            old_card=(
                with_card(uow, presented(request, old_proof), lambda old: old)
                if old_proof
                else None
            ),
            password=body.password,
            grace=_replaced_card_grace(request),
        ),
    )
    return CardOut(**vars(view))


class LinkIn(BaseModel):
    provider_id: str
    user_number: str


class LinkOut(BaseModel):
    provider_id: str
    user_number: str
    linked_at: datetime


class ServiceIdIn(BaseModel):
    service: str = Field(description="e.g. jal, docomo, chubu-electric, an online shop")
    external_id: str


class UsageOut(BaseModel):
    id: int
    action: str
    actor: str
    provider_id: str | None
    purpose: str
    at: datetime

    @classmethod
    def of(cls, entry: usage.Usage) -> UsageOut:
        return cls(
            id=entry.id,
            action=entry.action,
            actor=entry.actor,
            provider_id=entry.provider_id,
            purpose=entry.purpose,
            at=entry.at,
        )


@router.get("/me/links", response_model=list[LinkOut])
def my_links(uow: Uow, token: Token) -> list[LinkOut]:
    mykey_id = residents.resident_for_session(uow, token)
    return [
        LinkOut(provider_id=v.provider_id, user_number=v.user_number, linked_at=v.linked_at)
        for v in links.links_of(uow, mykey_id)
    ]


@router.post("/me/links", response_model=LinkOut, status_code=201)
def link(body: LinkIn, uow: Uow, token: Token) -> LinkOut:
    """Link my MyKey ID to my user number at a provider (a library card number, say)."""
    mykey_id = residents.resident_for_session(uow, token)
    view = links.link_by_resident(
        uow, mykey_id=mykey_id, provider_id=body.provider_id, user_number=body.user_number
    )
    return LinkOut(
        provider_id=view.provider_id, user_number=view.user_number, linked_at=view.linked_at
    )


@router.delete("/me/links/{provider_id}", status_code=204)
def unlink(provider_id: str, uow: Uow, token: Token) -> Response:
    mykey_id = residents.resident_for_session(uow, token)
    links.unlink(uow, mykey_id=mykey_id, provider_id=provider_id, actor=f"resident:{mykey_id}")
    return Response(status_code=204)


@router.get("/me/service-ids", response_model=list[ServiceIdIn])
def my_service_ids(uow: Uow, token: Token) -> list[ServiceIdIn]:
    mykey_id = residents.resident_for_session(uow, token)
    return [ServiceIdIn(service=s, external_id=e) for s, e in links.service_ids_of(uow, mykey_id)]


@router.post("/me/service-ids", response_model=ServiceIdIn, status_code=201)
def add_service_id(body: ServiceIdIn, uow: Uow, token: Token) -> ServiceIdIn:
    """Register my ID at a partner or online service, so it can find my MyKey ID."""
    mykey_id = residents.resident_for_session(uow, token)
    links.register_service_id(
        uow, mykey_id=mykey_id, service=body.service, external_id=body.external_id
    )
    return body


@router.get("/me/history", response_model=list[UsageOut])
def my_history(
    uow: Uow, token: Token, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[UsageOut]:
    """Every use of my MyKey ID: lookups, logins, links, failed card proofs — newest first."""
    mykey_id = residents.resident_for_session(uow, token)
    return [UsageOut.of(e) for e in usage.history(uow, mykey_id=mykey_id, before=before)]


@router.post("/me/cards/{card_key}/suspend", status_code=204)
def suspend(card_key: str, uow: Uow, token: Token) -> Response:
    """Suspend one of my cards (lost or stolen): refused everywhere from now on."""
    mykey_id = residents.resident_for_session(uow, token)
    residents.suspend_card(uow, mykey_id=mykey_id, card_key=card_key, actor=f"resident:{mykey_id}")
    return Response(status_code=204)
