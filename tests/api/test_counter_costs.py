"""Every counter operation is one transaction (issue #14): balances, payment, cancellation,
refund, voucher issue and redemption, a library's look-up of its user number, each tapped or
sent over HTTP as a terminal does, commits once (on PostgreSQL counted on the wire, on SQLite
at the driver), and a terminal's key costs no statement once it is known.

The payment's own bound (two round trips on PostgreSQL) is `tests/points/test_payment_cost.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from mykey.identity.keys import create_key
from mykey.identity.links import link_by_resident
from mykey.identity.simulator import SimulatedCard
from tests.api.conftest import bearer, proof
from tests.api.test_counter import TENRI, keys, town  # noqa: F401 -- the fixtures
from tests.conftest import Database
from tests.roundtrips import Count, counting


def _counted(client: TestClient, send: Callable[[], Any]) -> tuple[Any, Count]:
    with counting(client.app.state.engine) as count:  # type: ignore[attr-defined]
        answer = send()
    return answer, count


def test_each_counter_operation_commits_once(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c, alice, shop = card_client, cards[0], bearer(town["shop"])
    uow = database.uow()
    link_by_resident(uow, mykey_id="MY111111", provider_id="tenri-shop1", user_number="4711")
    c.post("/api/v1/terminal/balances", headers=shop, json={"card_proof": proof(c, alice)})

    def post(path: str, body: dict[str, Any], tapped: bool = False) -> Any:
        if tapped:
            body = {"card_proof": proof(c, alice), **body}  # the challenge: another request
        return lambda: c.post(path, headers=shop, json=body)

    def pay(key: str) -> dict[str, Any]:
        body = {"municipality": TENRI, "points": 100, "key": key}
        return {"card_proof": proof(c, alice), **body}

    paid_body, refund_body = pay("cost-p1"), pay("cost-p2")
    operations: dict[str, Callable[[], Any]] = {
        "balances": post("/api/v1/terminal/balances", {}, tapped=True),
        "payment": lambda: c.post("/api/v1/terminal/payments", headers=shop, json=paid_body),
    }
    answers: dict[str, Any] = {}
    costs: dict[str, Count] = {}
    for name, send in operations.items():
        answers[name], costs[name] = _counted(c, send)
    paid = answers["payment"].json()
    refunded = c.post("/api/v1/terminal/payments", headers=shop, json=refund_body).json()
    issued_body = {"municipality": TENRI, "points": 100, "key": "cost-v1"}
    # the town's first vouchers open its voucher float (once, three more round trips)
    first_vouchers = {"card_proof": proof(c, alice), **issued_body, "key": "cost-v0"}
    assert c.post("/api/v1/terminal/vouchers", headers=shop, json=first_vouchers).status_code == 201
    more: dict[str, Callable[[], Any]] = {
        "cancellation": post(
            f"/api/v1/terminal/payments/{paid['transaction_id']}/cancellation", {"key": "cost-c1"}
        ),
        "refund": post(
            "/api/v1/terminal/refunds",
            {"payment_id": refunded["transaction_id"], "points": 40, "key": "cost-r1"},
        ),
        "voucher issue": post("/api/v1/terminal/vouchers", issued_body, tapped=True),
        "library look-up": post("/api/v1/terminal/lookups", {"purpose": "lending"}, tapped=True),
    }
    for name, send in more.items():
        answers[name], costs[name] = _counted(c, send)
    number = answers["voucher issue"].json()["vouchers"][0]["number"]
    answers["voucher redemption"], costs["voucher redemption"] = _counted(
        c,
        post("/api/v1/terminal/voucher-redemptions", {"number": number, "key": "cost-x1"}),
    )
    assert {name: a.status_code for name, a in answers.items()} == {
        "balances": 200,
        "payment": 201,
        "cancellation": 201,
        "refund": 201,
        "voucher issue": 201,
        "library look-up": 200,
        "voucher redemption": 201,
    }, {name: a.json() for name, a in answers.items()}
    assert answers["library look-up"].json()["user_number"] == "4711"
    listing = "\n".join(f"{n}: {c.listing()}" for n, c in costs.items())
    if costs["balances"].dialect == "postgresql":  # each as the payment: two round trips
        for name, count in costs.items():
            assert count.round_trips <= 2, f"{name}: {count.listing()}"
    assert {name: count.commits for name, count in costs.items()} == dict.fromkeys(costs, 1), (
        listing
    )
    # the terminal's key was read before (the balances above): no statement reads it again
    assert not any("api_keys" in sql for count in costs.values() for sql, _ in count.statements), (
        listing
    )


def test_a_new_key_is_read_once_then_known(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    """The first request of a key reads it (in the thread pool: the event loop does not wait
    for the database), the next ones do not."""
    c = card_client
    fresh = create_key(database.uow(), role="terminal", label="2", provider_id="tenri-shop1")[0]
    body = {"card_proof": proof(c, cards[0])}
    first, cost = _counted(
        c, lambda: c.post("/api/v1/terminal/balances", headers=bearer(fresh), json=body)
    )
    assert first.status_code == 200, first.json()
    assert any("api_keys" in sql for sql, _ in cost.statements), cost.listing()
    body = {"card_proof": proof(c, cards[0])}
    again, cost = _counted(
        c, lambda: c.post("/api/v1/terminal/balances", headers=bearer(fresh), json=body)
    )
    assert again.status_code == 200
    assert not any("api_keys" in sql for sql, _ in cost.statements), cost.listing()
    wrong = c.post(
        "/api/v1/terminal/balances",
        headers=bearer(fresh[:-2] + ("xx" if not fresh.endswith("xx") else "yy")),
        json={"card_proof": proof(c, cards[0])},
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_api_key"
