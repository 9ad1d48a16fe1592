"""One card, many services (R2) over HTTP: counter lookups, staff links, operators' registry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from mykey.identity import links, usage
from mykey.identity.proofs import with_card
from mykey.identity.residents import normalise_mykey_id, suspend_card
from mykey.web.api.cards import CardProofIn, binder_of, expected, presented
from mykey.web.api.numbers import MAX_ID
from mykey.web.api.resident import UsageOut
from mykey.web.auth import CurrentOperator, CurrentProviderStaff, CurrentTerminal
from mykey.web.deps import Uow

router = APIRouter(prefix="/api/v1", tags=["services"])


class LookupIn(BaseModel):
    card_proof: CardProofIn
    purpose: str = Field(default="counter", max_length=200, description="e.g. lending, entry")
    expected_holder: str | None = Field(
        default=None,
        description="the `holder_binding.token` of an earlier lookup: refused with 409"
        " `wrong_card` if this card's holder is someone else",
    )


class HolderBindingOut(BaseModel):
    token: str = Field(description="send back as `expected_holder`")
    holder: str = Field(description="the MyKey ID, masked (MY12****)")
    expires_at: datetime


class LookupOut(BaseModel):
    provider_id: str
    user_number: str
    holder: str = Field(description="whose number it is: the MyKey ID, masked (MY12****)")
    holder_binding: HolderBindingOut


class StaffLinkIn(BaseModel):
    user_number: str
    card_proof: CardProofIn | None = None
    mykey_id: str | None = Field(default=None, description="only for a user linked in the zone")


class LinkOut(BaseModel):
    mykey_id: str
    provider_id: str
    user_number: str
    linked_at: datetime


class ZoneIn(BaseModel):
    id: str
    name: str


class ProviderIn(BaseModel):
    id: str
    name: str
    kind: str
    municipality: str
    zone_id: str | None = None


class ProviderOut(BaseModel):
    id: str
    name: str
    kind: str
    municipality: str
    zone_id: str | None


@router.post("/terminal/lookups", response_model=LookupOut, tags=["terminal"])
def lookup(body: LookupIn, uow: Uow, request: Request, terminal: CurrentTerminal) -> LookupOut:
    """The card is tapped: this provider's user number of its holder, or `not_linked`."""
    assert terminal.provider_id is not None
    found = links.lookup(
        uow,
        provider_id=terminal.provider_id,
        card=presented(request, body.card_proof, actor=terminal.actor),
        actor=terminal.actor,
        purpose=body.purpose,
        binder=binder_of(request),
        expected_holder=expected(request, body.expected_holder),
    )
    assert found.binding is not None
    return LookupOut(
        provider_id=terminal.provider_id,
        user_number=found.user_number,
        holder=found.holder,
        holder_binding=HolderBindingOut(**vars(found.binding)),
    )


@router.post("/provider/links", response_model=LinkOut, status_code=201, tags=["provider"])
def staff_link(
    body: StaffLinkIn, uow: Uow, request: Request, staff: CurrentProviderStaff
) -> LinkOut:
    """Staff link a user's MyKey ID to their user number here (with the card, or in a zone)."""
    assert staff.provider_id is not None
    provider_id = staff.provider_id
    mykey_id = normalise_mykey_id(body.mykey_id) if body.mykey_id else None
    if body.card_proof is None:
        view = links.link_by_staff(
            uow,
            provider_id=provider_id,
            user_number=body.user_number,
            actor=staff.actor,
            mykey_id=mykey_id,
        )
    else:  # a refused link (a bad user number, say) leaves the card's challenge unused
        view = with_card(
            uow,
            presented(request, body.card_proof, actor=staff.actor),
            lambda card: links.link_by_staff(
                uow,
                provider_id=provider_id,
                user_number=body.user_number,
                actor=staff.actor,
                card=card,
            ),
        )
    return LinkOut(**vars(view))


@router.delete("/provider/links/{mykey_id}", status_code=204, tags=["provider"])
def staff_unlink(mykey_id: str, uow: Uow, staff: CurrentProviderStaff) -> Response:
    assert staff.provider_id is not None
    links.unlink(
        uow,
        mykey_id=normalise_mykey_id(mykey_id),
        provider_id=staff.provider_id,
        actor=staff.actor,
    )
    return Response(status_code=204)


@router.post("/operator/zones", status_code=201, tags=["operator"])
def add_zone(body: ZoneIn, uow: Uow, operator: CurrentOperator) -> ZoneIn:
    links.add_zone(uow, zone_id=body.id, name=body.name)
    return body


@router.post("/operator/providers", response_model=ProviderOut, status_code=201, tags=["operator"])
def add_provider(body: ProviderIn, uow: Uow, operator: CurrentOperator) -> ProviderOut:
    view = links.add_provider(
        uow,
        provider_id=body.id,
        name=body.name,
        kind=body.kind,
        municipality=body.municipality,
        zone_id=body.zone_id,
    )
    return ProviderOut(**vars(view))


@router.post("/operator/cards/{card_key}/suspend", status_code=204, tags=["operator"])
def operator_suspend(card_key: str, uow: Uow, operator: CurrentOperator) -> Response:
    """Suspend a card reported lost at a counter or by phone: refused everywhere at once."""
    suspend_card(uow, mykey_id=None, card_key=card_key, actor=operator.actor)
    return Response(status_code=204)


@router.get(
    "/operator/mykey-ids/{mykey_id}/history", response_model=list[UsageOut], tags=["operator"]
)
def history_of(
    mykey_id: str,
    uow: Uow,
    operator: CurrentOperator,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[UsageOut]:
    """A MyKey ID's usage history, newest first (council operators only)."""
    entries = usage.history(uow, mykey_id=normalise_mykey_id(mykey_id), before=before)
    return [UsageOut.of(e) for e in entries]
