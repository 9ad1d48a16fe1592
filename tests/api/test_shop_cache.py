"""A terminal's shop and the municipalities it accepts come from the process's cache (#14).

A payment at a terminal whose key was seen in the last seconds does not read it, and reads its
shop and what it accepts in its one look-up statement (so it sees any change at once); balance
look-ups, cancellations and refunds take the shop from the cache, where a change made in this
process is seen at once and one made by another process within the time to live (5 seconds);
a "not accepted here" is never answered from the cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey.identity.simulator import SimulatedCard
from mykey.points import shop_cache
from tests.api.test_counter import MAEBASHI, TENRI, _pay, keys, town  # noqa: F401 -- fixtures
from tests.conftest import Database
from tests.roundtrips import statements

MYKEY = Path(sys.executable).parent / "mykey"
SHOP_TABLES = ("api_keys", "shops", "shop_accepts", "point_programs")


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(database: Database, card_client: TestClient) -> Iterator[Ticks]:
    """The app's shop cache on a clock the test moves by hand (5 seconds to live)."""
    clock = Ticks()
    shop_cache.configure(database.engine, seconds=5, clock=clock)
    yield clock
    shop_cache.configure(database.engine)


def reading(seen: list[str], *tables: str) -> list[str]:
    return [s for s in seen if any(f" {t}" in s or f'"{t}"' in s for t in tables)]


def change_shop_elsewhere(database: Database, accepts: str) -> None:
    """`mykey shops add` in its own process (another server of the fleet, an operator's shell):
    the Tenri shop now takes only these municipalities' points."""
    done = subprocess.run(
        [
            str(MYKEY),
            "shops",
            "add",
            "tenri-shop1",
            "--name",
            "天理本通りの本屋",
            "--municipality",
            TENRI,
            "--kind",
            "shop",
            "--accepts",
            accepts,
            "--street",
            "tenri-honten",
        ],
        env={**os.environ, "MYKEY_DATABASE_URL": database.url, "MYKEY_ENVIRONMENT": "test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_payment_reads_no_key_and_no_shop_once_they_are_known(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
) -> None:
    c = card_client
    engine = c.app.state.engine  # type: ignore[attr-defined]
    assert _pay(c, town["shop"], cards[0], MAEBASHI, 100, "p-1").status_code == 201
    with statements(engine) as seen:
        paid = _pay(c, town["shop"], cards[0], MAEBASHI, 100, "p-2")
    assert paid.status_code == 201, paid.json()
    assert paid.json()["balance"] == 2800
    assert reading(seen, "api_keys") == []
    # a payment reads its shop, what it accepts and the points' name in its one look-up
    assert len(reading(seen, "shops", "shop_accepts", "point_programs")) == 1
    shop_cache.configure(engine, seconds=0)  # off: the payment is the same
    with statements(engine) as off:
        assert _pay(c, town["shop"], cards[0], MAEBASHI, 100, "p-3").status_code == 201
    assert len(reading(off, "shops", "shop_accepts", "point_programs")) == 1
    shop_cache.configure(engine)


def test_a_change_made_here_is_seen_at_once(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    keys: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    ticks: Ticks,
) -> None:
    c = card_client
    assert _pay(c, town["shop"], cards[0], MAEBASHI, 100, "h-1").status_code == 201
    changed = c.put(
        "/api/v1/shops/tenri-shop1",
        headers={"Authorization": f"Bearer {keys['operator']}"},
        json={
            "name": "天理本通りの本屋",
            "municipality": TENRI,
            "kind": "shop",
            "accepts": [TENRI],
            "street_id": "tenri-honten",
        },
    )
    assert changed.status_code == 200, changed.json()
    nope = _pay(c, town["shop"], cards[0], MAEBASHI, 100, "h-2")  # no time has passed
    assert nope.status_code == 409 and nope.json()["code"] == "not_accepted_here"


def test_a_payment_sees_a_change_made_elsewhere_at_once(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
    ticks: Ticks,
) -> None:
    c = card_client
    assert _pay(c, town["shop"], cards[0], MAEBASHI, 100, "e-1").status_code == 201  # cached
    change_shop_elsewhere(database, TENRI)  # stops taking Maebashi points
    ticks.now += 1
    # the shop is still in this process's cache, but a payment reads what it accepts itself
    nope = _pay(c, town["shop"], cards[0], MAEBASHI, 100, "e-3")
    assert nope.status_code == 409 and nope.json()["code"] == "not_accepted_here"
    # taking them again is seen at once: a "no" is always asked of the database
    change_shop_elsewhere(database, f"{TENRI},{MAEBASHI}")
    assert _pay(c, town["shop"], cards[0], MAEBASHI, 100, "e-4").status_code == 201


def test_a_refusal_is_never_answered_from_the_cache(
    card_client: TestClient,
    town: dict[str, str],  # noqa: F811 -- the fixture
    cards: list[SimulatedCard],
    database: Database,
    ticks: Ticks,
) -> None:
    c = card_client
    change_shop_elsewhere(database, TENRI)
    nope = _pay(c, town["museum"], cards[0], TENRI, 100, "r-1")  # the museum: Maebashi only
    assert nope.status_code == 409 and nope.json()["code"] == "not_accepted_here"
    assert _pay(c, town["shop"], cards[0], TENRI, 100, "r-2").status_code == 201  # cached now
    change_shop_elsewhere(database, f"{TENRI},{MAEBASHI}")  # within the TTL
    paid = _pay(c, town["shop"], cards[0], MAEBASHI, 100, "r-3")
    assert paid.status_code == 201, paid.json()
