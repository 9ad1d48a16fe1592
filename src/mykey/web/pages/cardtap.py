"""A card tap from a page: in the demo, a simulator card picked from a list signs a fresh
server challenge on the server side (DEMO ONLY: a real counter has a card reader that signs the
challenge on the card itself, after the holder's PIN).

Pages never keep a card between requests: every operation (log in, show balances, pay, issue
a voucher, look up a user number) taps again. The signed proof is checked in the operation's
own transaction (`identity.proofs.with_card`), so a refused operation leaves the challenge
unused, as at the API.
The simulator cards are `var/cards/cards/*.json` of the working directory (`mykey demo` makes
them); in production there are none, and a tap is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from mykey.errors import ErrorKind, MyKeyError
from mykey.identity.proofs import (
    CardProof,
    PresentedCard,
    TrustAnchors,
    VerifiedCard,
    issue_challenge,
    with_card,
)
from mykey.identity.simulator import SimulatedCard
from mykey.web.pages.base import Page

CARD_FIELD = "card"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _folder() -> Path:
    return Path.cwd() / "var" / "cards" / "cards"


def simulator_cards(page: Page) -> list[str]:
    """The demo cards one may pick (none in production)."""
    if page.request.app.state.settings.environment == "production":
        return []
    folder = _folder()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.fullmatch(p.stem))


def card_options(page: Page) -> list[tuple[str, str]]:
    """The picker's options: none yet, then each simulator card by its name."""
    return [("", page.t("card.simulator.none"))] + [(n, n) for n in simulator_cards(page)]


def no_card() -> MyKeyError:
    return MyKeyError(
        "card_not_read",
        ErrorKind.INVALID,
        "No card was read. Tap the card (pick a simulator card) and try again.",
        "カードを読み取れませんでした。カードをかざして（シミュレータのカードを選んで）"
        "もう一度お試しください。",
    )


def present(page: Page, name: str | None, *, actor: str) -> PresentedCard:
    """Read the picked simulator card: a fresh challenge, signed by the card. The operation
    checks the proof, in its own transaction, as any card proof is checked (trust anchors,
    dates, revocations and suspensions, signature): `identity.proofs.with_card`."""
    if not name or name not in simulator_cards(page):
        raise no_card()
    anchors: TrustAnchors | None = page.request.app.state.card_anchors
    if anchors is None:
        raise MyKeyError(
            "no_trust_anchors",
            ErrorKind.REFUSED,
            "Cards cannot be checked: no trust anchors are configured.",
            "カードを確認できません（信頼点が設定されていません）。",
        )
    card = SimulatedCard.from_json((_folder() / f"{name}.json").read_text(encoding="utf-8"))
    challenge = issue_challenge(page.uow, key=anchors.challenge_key, asker=actor)
    proof = card.proof(challenge.id, challenge.nonce)
    return PresentedCard(
        CardProof(proof["certificate"], proof["challenge_id"], proof["signature"]),
        anchors,
        actor,
        actor,
    )


def tap(page: Page, name: str | None, *, actor: str) -> VerifiedCard:
    """Read the picked simulator card and check its proof now (its challenge used in a
    transaction of its own). For an operation prefer `present` and `with_card`, so that a
    refused operation leaves the tap usable."""
    return with_card(page.uow, present(page, name, actor=actor), lambda card: card)
