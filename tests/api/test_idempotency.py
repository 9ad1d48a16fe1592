"""One idempotency, everywhere (issue #13, item 7): at every keyed endpoint that is not a
counter operation, the same key with another body is 409 `idempotency_key_reused` and changes
nothing, the same key with the same body replays the first answer, and a refused request stays
refused under its key, even once the refusal's reason has gone (HTTP, both engines)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from httpx2 import Response

from mykey import ledger
from mykey.demo import MUNICIPALITIES
from mykey.identity import residents
from mykey.identity.keys import create_key
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import AccountKind
from mykey.municipalities.registry import upsert
from tests.api.conftest import PASSWORD, bearer, proof
from tests.api.test_conversions import Partner
from tests.api.test_coupons import order
from tests.api.test_online import Shop
from tests.builders import jobs_finished
from tests.conftest import Database

OGUNI, TENRI = "434248", "292044"
SHOP = "tenri-furusato"  # the online shop of tests.api.test_online, here in Oguni
WHO = "MY123456"
REUSED = {
    "code": "idempotency_key_reused",
    "detail_en": "This idempotency key was already used for a different request.",
    "detail_ja": "この冪等キーは別の内容の依頼で使用済みです。",
}
PROGRAM = {
    "point_name": "小国町ポイント",
    "usable_at": ["shop", "online"],
    "rules": [{"activity": "health_walk", "name": "健康ウォークラリー", "points": 500}],
}


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cheap password hash: these tests are about keys, not about password storage."""
    monkeypatch.setattr(residents, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))


@dataclass
class World:
    client: TestClient
    database: Database
    operator: dict[str, str]
    staff: dict[str, str]  # oguni (two staff members: a, b) and tenri
    me: dict[str, str]  # the resident's My Page session
    jal: Partner  # converts by ID linkage
    saison: Partner  # orders coupons
    shop: Shop  # an online shop of Oguni

    def post(self, path: str, who: dict[str, str], **body: Any) -> Response:
        return self.client.post(f"/api/v1{path}", headers=who, json=body)

    def balance(self, code: str = OGUNI) -> int:
        uow = self.database.uow()
        wallet = ledger.open_account(uow, ledger=code, kind=AccountKind.WALLET, owner=WHO)
        return ledger.balance(uow, wallet.id).available

    def transfers(self) -> int:
        return self.database.count("ledger_transfers")


@pytest.fixture
def world(card_client: TestClient, database: Database, cards: list[SimulatedCard]) -> World:
    c = card_client
    uow = database.uow()
    upsert(uow, MUNICIPALITIES)
    operator = bearer(create_key(uow, role="operator", label="council")[0])
    staff = {
        name: bearer(create_key(uow, role="municipality_staff", label=name, municipality=code)[0])
        for name, code in (("a", OGUNI), ("b", OGUNI), ("tenri", TENRI))
    }
    for code, program in ((OGUNI, PROGRAM), (TENRI, PROGRAM | {"point_name": "天理市"})):
        put = c.put(f"/api/v1/municipalities/{code}/program", headers=operator, json=program)
        assert put.status_code == 200, put.json()
    for partner, methods in (("jal", ["id_linkage"]), ("saison", ["coupon_paper"])):
        put = c.put(
            f"/api/v1/partners/{partner}",
            headers=operator,
            json={"name": partner.upper(), "methods": methods},
        )
        assert put.status_code == 200, put.json()
        agreed = c.post(
            f"/api/v1/partners/{partner}/agreements",
            headers=operator,
            json={
                "effective_from": "2026-10-15",
                "rate_units": 1,
                "rate_points": 1,
                "minimum": 1000,
                "step": 1000,
                "daily_limit": 5000,
            },
        )
        assert agreed.status_code == 201, agreed.json()
    keys = {
        p: c.post(f"/api/v1/partners/{p}/keys", headers=operator, json={}).json()
        for p in ("jal", "saison")
    }
    shop = c.put(
        f"/api/v1/shops/{SHOP}",
        headers=operator,
        json={
            "name": "小国ふるさと便",
            "municipality": OGUNI,
            "kind": "online",
            "accepts": [OGUNI],
        },
    )
    assert shop.status_code == 200, shop.json()
    online = c.post(f"/api/v1/online/{SHOP}/keys", headers=operator, json={})
    assert online.status_code == 201, online.json()
    made = c.post(
        "/api/v1/mykey-ids",
        json={"card_proof": proof(c, cards[0]), "password": PASSWORD, "mykey_id": WHO},
    )
    assert made.status_code == 201, made.json()
    token = c.post("/api/v1/sessions", json={"mykey_id": WHO, "password": PASSWORD}).json()
    me = bearer(token["token"])
    for service, external in (("jal", "JL-1"), (SHOP, "F-1")):
        registered = c.post(
            "/api/v1/me/service-ids", headers=me, json={"service": service, "external_id": external}
        )
        assert registered.status_code == 201, registered.json()
    return World(
        client=c,
        database=database,
        operator=operator,
        staff=staff,
        me=me,
        jal=Partner(c, database, keys["jal"]),
        saison=Partner(c, database, keys["saison"]),
        shop=Shop(c, database, online.json()),
    )


def reused(response: Response) -> None:
    """The one error of a key used for another request: 409, one code, one wording."""
    body = response.json()
    assert response.status_code == 409, body
    assert {k: body[k] for k in REUSED} == REUSED


def refused_again(response: Response, code: str) -> None:
    body = response.json()
    assert (response.status_code, body["code"], body["details"]["replayed"]) == (409, code, True)


def unchanged(world: World, act: Callable[[], Response]) -> Response:
    """Run `act` and check that it moved no points at all."""
    before = world.transfers()
    response = act()
    assert world.transfers() == before
    return response


def grant(world: World, key: str, who: str = "a", **body: Any) -> Response:
    fields = {"mykey_id": WHO, "points": 1000, "reason": "敬老祝い", "key": key} | body
    return world.post(f"/municipalities/{OGUNI}/grants", world.staff[who], **fields)


# ---------------------------------------------------------------------------------------------
# staff


def test_grant_same_key_another_body(world: World) -> None:
    first = grant(world, "g-1")
    assert first.status_code == 201, first.json()
    # The event was not part of the check before: the second grant replayed the first quietly.
    reused(unchanged(world, lambda: grant(world, "g-1", event="秋祭り")))
    reused(unchanged(world, lambda: grant(world, "g-1", points=2000)))
    again = unchanged(world, lambda: grant(world, "g-1"))
    assert (again.status_code, again.json()["replayed"]) == (201, True)
    assert again.json()["transfer_id"] == first.json()["transfer_id"]
    assert world.balance() == 1000


def test_a_refused_grant_stays_refused_under_its_key(world: World) -> None:
    budget = PROGRAM | {"annual_budget": 1500}
    put = world.client.put(
        f"/api/v1/municipalities/{OGUNI}/program", headers=world.operator, json=budget
    )
    assert put.status_code == 200, put.json()
    assert grant(world, "g-1").status_code == 201
    over = unchanged(world, lambda: grant(world, "g-2"))
    assert (over.status_code, over.json()["code"]) == (409, "budget_exceeded")
    bigger = PROGRAM | {"annual_budget": 10_000}
    world.client.put(f"/api/v1/municipalities/{OGUNI}/program", headers=world.operator, json=bigger)
    # The budget allows it now, but a retry of the refused request is not a new request.
    refused_again(unchanged(world, lambda: grant(world, "g-2")), "budget_exceeded")
    reused(unchanged(world, lambda: grant(world, "g-2", points=10)))
    assert grant(world, "g-3").status_code == 201  # a new request, a new key
    assert world.balance() == 2000


def job(world: World, key: str, data: bytes, who: str = "a", **params: Any) -> Response:
    """Send a list, and wait for the app's job runner to finish what it queued."""
    sent = world.client.post(
        f"/api/v1/municipalities/{OGUNI}/grant-jobs",
        content=data,
        params={"points": 300, "reason": "敬老祝い"} | params,
        headers={**world.staff[who], "Content-Type": "text/csv", "Idempotency-Key": key},
    )
    jobs_finished(world.client.app.state.engine)  # type: ignore[attr-defined]
    return sent


def test_grant_job_same_key_another_body(world: World) -> None:
    first = job(world, "j-1", f"mykey_id\n{WHO}\n".encode())
    assert first.status_code == 202, first.json()
    reused(unchanged(world, lambda: job(world, "j-1", f"mykey_id\n{WHO}\n".encode(), points=301)))
    again = unchanged(world, lambda: job(world, "j-1", f"mykey_id\n{WHO}\n".encode()))
    assert (again.json()["id"], again.json()["replayed"]) == (first.json()["id"], True)
    assert world.balance() == 300


def award_body(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "activity": "health_walk",
        "from": "2026-10-01",
        "to": "2026-10-31",
        "top": 10,
        "points": 700,
        "reason": "上位者への商店街券",
        "key": key,
    } | fields


def test_award_same_key_another_body(world: World) -> None:
    assert grant(world, "walk", points=None, activity="health_walk").status_code == 201
    awards = f"/municipalities/{OGUNI}/rankings/awards"
    first = world.post(awards, world.staff["a"], **award_body("w-1"))
    assert (first.status_code, first.json()["granted"]) == (200, 1), first.json()
    reused(
        unchanged(world, lambda: world.post(awards, world.staff["a"], **award_body("w-1", top=5)))
    )
    reused(
        unchanged(
            world,
            lambda: world.post(awards, world.staff["a"], **award_body("w-1", to="2026-11-30")),
        )
    )
    assert world.balance() == 500 + 700


def test_correction_same_key_another_body(world: World) -> None:
    made = grant(world, "g-1")
    tid = made.json()["transfer_id"]
    cases = f"/municipalities/{OGUNI}/corrections"
    body = {"kind": "reverse", "transfer_id": tid, "reason_code": "duplicate", "note": "二重付与"}
    first = world.post(cases, world.staff["a"], key="c-1", **body)
    assert first.status_code == 201, first.json()
    reused(world.post(cases, world.staff["a"], key="c-1", **body | {"reason_code": "other"}))
    again = world.post(cases, world.staff["a"], key="c-1", **body)
    assert (again.json()["id"], again.json()["replayed"]) == (first.json()["id"], True)


# ---------------------------------------------------------------------------------------------
# partners


def test_conversion_same_key_another_body(world: World) -> None:
    jal = world.jal
    first = jal.convert(service_id="JL-1", units=1000, municipality=OGUNI, idempotency_key="k1")
    assert first.status_code == 201, first.json()
    # Neither was checked before: a retry naming reserved points (null), or another reference,
    # replayed the first conversion quietly.
    reused(
        unchanged(
            world,
            lambda: jal.convert(
                service_id="JL-1", units=1000, municipality=None, idempotency_key="k1"
            ),
        )
    )
    reused(
        unchanged(
            world,
            lambda: jal.convert(
                service_id="JL-1",
                units=1000,
                municipality=OGUNI,
                reference="order-2",
                idempotency_key="k1",
            ),
        )
    )
    reused(
        unchanged(
            world,
            lambda: jal.convert(
                service_id="JL-1", units=2000, municipality=OGUNI, idempotency_key="k1"
            ),
        )
    )
    again = jal.convert(service_id="JL-1", units=1000, municipality=OGUNI, idempotency_key="k1")
    assert (again.json()["replayed"], again.json()["conversion_id"]) == (
        True,
        first.json()["conversion_id"],
    )
    assert world.balance() == 1000


def test_a_conversion_refused_for_the_daily_limit_stays_refused(world: World) -> None:
    jal = world.jal
    done = jal.convert(service_id="JL-1", units=4000, municipality=OGUNI, idempotency_key="k1")
    assert done.status_code == 201, done.json()
    over = unchanged(
        world,
        lambda: jal.convert(
            service_id="JL-1", units=2000, municipality=OGUNI, idempotency_key="k2"
        ),
    )
    assert (over.status_code, over.json()["code"]) == (409, "daily_limit_reached")
    world.database.clock.advance(days=1)  # a new day: the limit would allow it now
    refused_again(
        unchanged(
            world,
            lambda: jal.convert(
                service_id="JL-1", units=2000, municipality=OGUNI, idempotency_key="k2"
            ),
        ),
        "daily_limit_reached",
    )
    fresh = jal.convert(service_id="JL-1", units=2000, municipality=OGUNI, idempotency_key="k3")
    assert fresh.status_code == 201, fresh.json()
    assert world.balance() == 6000


def test_coupon_order_same_key_another_body(world: World) -> None:
    body = {"count": 2, "units": 1000, "delivery": "paper", "expires_on": "2026-12-31"}
    first = order(world.saison, idempotency_key="b1", **body)
    assert first.status_code == 201, first.json()
    reused(order(world.saison, idempotency_key="b1", **body | {"count": 3}))
    again = order(world.saison, idempotency_key="b1", **body)
    assert (again.json()["batch_id"], again.json()["replayed"]) == (first.json()["batch_id"], True)
    assert world.database.count("coupons") == 2


# ---------------------------------------------------------------------------------------------
# residents


BATCHES = count()


def coupon(world: World) -> str:
    body = {"count": 1, "units": 1000, "delivery": "paper", "expires_on": "2026-12-31"}
    ordered = order(world.saison, idempotency_key=f"b-{next(BATCHES)}", **body)
    assert ordered.status_code == 201, ordered.json()
    return str(ordered.json()["coupons"][0]["code"])


def test_coupon_redemption_same_key_another_body(world: World) -> None:
    code = coupon(world)
    redeem = "/me/coupons/redemptions"
    first = world.post(redeem, world.me, code=code, municipality=OGUNI, key="r-1")
    assert first.status_code == 201, first.json()
    # Reserved points (null) were not compared before: the retry replayed quietly.
    reused(unchanged(world, lambda: world.post(redeem, world.me, code=code, key="r-1")))
    reused(
        unchanged(
            world, lambda: world.post(redeem, world.me, code=code, municipality=TENRI, key="r-1")
        )
    )
    again = world.post(redeem, world.me, code=code, municipality=OGUNI, key="r-1")
    assert (again.status_code, again.json()["replayed"]) == (201, True)
    assert again.json()["conversion_id"] == first.json()["conversion_id"]
    assert world.balance() == 1000


def test_a_refused_coupon_redemption_stays_refused(world: World) -> None:
    first, second = coupon(world), coupon(world)
    redeem = "/me/coupons/redemptions"
    took = world.post(redeem, world.me, code=first, municipality=OGUNI, key="r-1")
    assert took.status_code == 201, took.json()
    used = world.post(redeem, world.me, code=first, municipality=OGUNI, key="r-2")
    assert (used.status_code, used.json()["code"]) == (409, "coupon_used")
    refused_again(
        world.post(redeem, world.me, code=first, municipality=OGUNI, key="r-2"), "coupon_used"
    )
    reused(world.post(redeem, world.me, code=second, municipality=OGUNI, key="r-2"))
    assert (
        world.post(redeem, world.me, code=second, municipality=OGUNI, key="r-3").status_code == 201
    )
    assert world.balance() == 2000


def reserve(world: World, units: int, key: str) -> None:
    done = world.jal.convert(service_id="JL-1", units=units, municipality=None, idempotency_key=key)
    assert done.status_code == 201, done.json()


def test_reserved_assignment_same_key_another_body(world: World) -> None:
    reserve(world, 3000, "k1")
    assign = "/me/reserved/assignments"
    first = world.post(assign, world.me, municipality=OGUNI, points=1000, key="a-1")
    assert first.status_code == 201, first.json()
    # Only the resident and the municipality were compared before: another number of points
    # under the key replayed the first assignment quietly.
    reused(
        unchanged(
            world, lambda: world.post(assign, world.me, municipality=OGUNI, points=2000, key="a-1")
        )
    )
    reused(unchanged(world, lambda: world.post(assign, world.me, municipality=OGUNI, key="a-1")))
    again = world.post(assign, world.me, municipality=OGUNI, points=1000, key="a-1")
    assert (again.json()["replayed"], again.json()["assignment_id"]) == (
        True,
        first.json()["assignment_id"],
    )
    assert (world.balance(), world.balance("reserved")) == (1000, 2000)


def test_a_refused_reserved_assignment_stays_refused(world: World) -> None:
    reserve(world, 1000, "k1")
    assign = "/me/reserved/assignments"
    short = world.post(assign, world.me, municipality=OGUNI, points=2000, key="a-1")
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_reserved")
    reserve(world, 1000, "k2")  # enough now, but the refused request stays refused
    refused_again(
        unchanged(
            world, lambda: world.post(assign, world.me, municipality=OGUNI, points=2000, key="a-1")
        ),
        "insufficient_reserved",
    )
    assert (
        world.post(assign, world.me, municipality=OGUNI, points=2000, key="a-2").status_code == 201
    )
    assert world.balance() == 2000


# ---------------------------------------------------------------------------------------------
# online shops


def funded(world: World, points: int = 5000) -> None:
    assert grant(world, f"fund-{points}", points=points).status_code == 201


def test_online_authorize_same_key_another_body(world: World) -> None:
    funded(world)
    shop = world.shop
    order_ = {"service_id": "F-1", "municipality": OGUNI, "expires_in_seconds": 3600}
    first = shop.authorize(key="o-1", points=1000, **order_)
    assert first.status_code == 201, first.json()
    reused(
        unchanged(
            world, lambda: shop.authorize(key="o-1", points=1000, **order_ | {"order_ref": "B"})
        )
    )
    reused(unchanged(world, lambda: shop.authorize(key="o-1", points=999, **order_)))
    again = shop.authorize(key="o-1", points=1000, **order_)
    assert (again.json()["authorization_id"], again.json()["replayed"]) == (
        first.json()["authorization_id"],
        True,
    )
    assert world.balance() == 4000


def test_online_capture_void_and_refund_same_key_another_body(world: World) -> None:
    funded(world)
    shop = world.shop
    order_ = {"service_id": "F-1", "municipality": OGUNI, "expires_in_seconds": 3600}
    one = shop.authorize(key="o-1", points=1000, **order_).json()["authorization_id"]
    two = shop.authorize(key="o-2", points=1000, **order_).json()["authorization_id"]

    captured = shop.post(f"/authorizations/{one}/capture", points=800, key="c-1")
    assert captured.status_code == 200, captured.json()
    reused(
        unchanged(world, lambda: shop.post(f"/authorizations/{one}/capture", points=700, key="c-1"))
    )
    assert shop.post(f"/authorizations/{one}/capture", points=800, key="c-1").json()["replayed"]

    voided = shop.post(f"/authorizations/{two}/void", key="v-1")
    assert voided.status_code == 200, voided.json()
    reused(unchanged(world, lambda: shop.post(f"/authorizations/{one}/void", key="v-1")))
    assert shop.post(f"/authorizations/{two}/void", key="v-1").json()["replayed"]

    cid = captured.json()["capture_id"]
    refunded = shop.post(f"/captures/{cid}/refunds", points=300, key="r-1")
    assert refunded.status_code == 201, refunded.json()
    reused(unchanged(world, lambda: shop.post(f"/captures/{cid}/refunds", points=301, key="r-1")))
    again = shop.post(f"/captures/{cid}/refunds", points=300, key="r-1")
    assert (again.json()["refund_id"], again.json()["replayed"]) == (
        refunded.json()["refund_id"],
        True,
    )
    assert world.balance() == 5000 - 800 + 300


def test_an_online_key_is_one_request_whatever_the_operation(world: World) -> None:
    """A key used to hold points is no capture's, void's or refund's key (it was: each
    operation kept keys of its own, so the one key captured and voided)."""
    funded(world)
    shop = world.shop
    order_ = {"service_id": "F-1", "municipality": OGUNI, "expires_in_seconds": 3600}
    one = shop.authorize(key="o-1", points=1000, **order_).json()["authorization_id"]
    two = shop.authorize(key="o-2", points=1000, **order_).json()["authorization_id"]
    reused(unchanged(world, lambda: shop.post(f"/authorizations/{one}/capture", key="o-1")))
    reused(unchanged(world, lambda: shop.post(f"/authorizations/{two}/void", key="o-1")))
    captured = shop.post(f"/authorizations/{one}/capture", points=800, key="c-1")
    assert captured.status_code == 200, captured.json()
    cid = captured.json()["capture_id"]
    reused(unchanged(world, lambda: shop.post(f"/captures/{cid}/refunds", points=100, key="c-1")))
    reused(unchanged(world, lambda: shop.authorize(key="c-1", points=1000, **order_)))
    # a refusal's key too: refused for points the resident does not have, then a void
    short = shop.authorize(key="o-3", points=9000, **order_)
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_points")
    reused(unchanged(world, lambda: shop.post(f"/authorizations/{two}/void", key="o-3")))
    assert world.balance() == 5000 - 800 - 1000
    report = ledger.check(world.database.uow())
    assert report.ok, report.problems


def test_online_refusals_stay_refused(world: World) -> None:
    funded(world, 1000)
    shop = world.shop
    order_ = {"service_id": "F-1", "municipality": OGUNI, "expires_in_seconds": 3600}
    short = unchanged(world, lambda: shop.authorize(key="o-1", points=3000, **order_))
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_points")
    funded(world, 5000)  # enough now, but the refused request stays refused
    refused_again(
        unchanged(world, lambda: shop.authorize(key="o-1", points=3000, **order_)),
        "insufficient_points",
    )
    held = shop.authorize(key="o-2", points=3000, **order_)
    assert held.status_code == 201, held.json()

    aid = held.json()["authorization_id"]
    assert shop.post(f"/authorizations/{aid}/capture", key="c-1").status_code == 200
    cid = shop.get(f"/authorizations/{aid}").json()["capture_id"]
    over = shop.post(f"/captures/{cid}/refunds", points=3001, key="r-1")
    assert (over.status_code, over.json()["code"]) == (409, "refund_exceeds_capture")
    refused_again(
        shop.post(f"/captures/{cid}/refunds", points=3001, key="r-1"), "refund_exceeds_capture"
    )
    assert world.balance() == 6000 - 3000
    report = ledger.check(world.database.uow())
    assert report.ok, report.problems
