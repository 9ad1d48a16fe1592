"""Launch-surge isolation (issue #16): a flooded channel answers 503 at once; the others serve.

The app runs under a real uvicorn; the flood is residents' requests held in flight (their
session look-up waits on a gate), so the channel is full for as long as the test says.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mykey.channels import Channel, parse_limits
from mykey.config import Settings
from mykey.identity.simulator import SimulatedCard, SimulatorCA
from mykey.web.api import resident as resident_api
from mykey.web.app import create_app
from mykey.web.surge import QUEUE, Budget, channel_of
from tests.api.test_outage import served
from tests.builders import MAEBASHI, museum_with_resident
from tests.conftest import Database


def test_every_route_is_in_the_channel_of_who_uses_it(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", environment="test"))
    expected = {
        "terminal": Channel.COUNTER,
        "card": Channel.COUNTER,
        "partners": Channel.PARTNER,
        "online": Channel.PARTNER,
        "operator": Channel.PARTNER,
        "provider": Channel.PARTNER,
        "me": Channel.RESIDENT,
        "sessions": Channel.RESIDENT,
        "mykey-ids": Channel.RESIDENT,
        "log": Channel.PUBLIC,
    }
    for path in app.openapi()["paths"]:
        if path in ("/healthz", "/readyz"):  # a load balancer's probes are in no channel
            assert channel_of(path) is None
            continue
        first = path.removeprefix("/api/v1/").split("/")[0]
        assert channel_of(path) is expected.get(first, channel_of(path)), path
        assert channel_of(path) is not None, path
    assert channel_of("/api/v1/terminal/payments") is Channel.COUNTER
    assert channel_of("/api/v1/card/challenges") is Channel.COUNTER
    assert channel_of("/counter/tap") is Channel.COUNTER
    assert channel_of("/api/v1/partners/jal/conversions") is Channel.PARTNER
    assert channel_of("/api/v1/online/shop-1/authorizations") is Channel.PARTNER
    assert channel_of("/api/v1/me/points") is Channel.RESIDENT
    assert channel_of("/api/v1/sessions") is Channel.RESIDENT
    assert channel_of("/mypage/login") is Channel.RESIDENT
    assert channel_of("/navi/map") is Channel.PUBLIC
    assert channel_of("/api/v1/municipalities") is Channel.PUBLIC
    assert channel_of("/api/v1/municipalities/102016") is Channel.PUBLIC
    assert channel_of("/api/v1/log/tile/0/000") is Channel.PUBLIC
    assert channel_of("/") is Channel.PUBLIC
    assert channel_of("/api/v1/municipalities/102016/grants") is Channel.OTHER
    assert channel_of("/console/m/102016/grants/bulk") is Channel.OTHER
    assert channel_of("/api/v1/media") is Channel.OTHER  # a prefix is a whole path segment
    assert channel_of("/static/css/site.css") is None
    assert channel_of("/healthz") is None


def test_limits_are_read_over_the_defaults_and_a_typo_stops_the_settings() -> None:
    limits = parse_limits("resident=3/50, counter=0", threads=10)
    assert limits[Channel.RESIDENT] == (3, 50.0)
    assert limits[Channel.COUNTER] == (0, 0.0)
    assert limits[Channel.PUBLIC] == (2, 100.0)  # the default: 20 % of 10 threads
    for bad in ("residents=3", "resident=x", "resident", "resident=-1", "resident=2/nan"):
        with pytest.raises(ValidationError, match="MYKEY_CHANNEL_LIMITS"):
            Settings(channel_limits=bad)


def test_a_rate_budget_refills_a_token_at_a_time() -> None:
    budget = Budget(concurrency=0, rate=2)

    def enter(now: float) -> bool:
        return asyncio.run(budget.enter(now))

    assert [enter(10.0) for _ in range(3)] == [True, True, False]
    assert enter(10.2) is False  # 0.4 of a token
    assert enter(10.5) is True
    assert (budget.admitted, budget.refused) == (3, 2)


def test_a_burst_waits_briefly_for_a_place_and_a_flood_beyond_the_queue_is_refused() -> None:
    async def scene() -> tuple[list[bool], list[bool], int, dict[str, float | int]]:
        budget = Budget(concurrency=1)
        assert await budget.enter(0.0)  # in flight
        waiting = [asyncio.create_task(budget.enter(0.0)) for _ in range(QUEUE)]
        await asyncio.sleep(0)
        flood = [await budget.enter(0.0) for _ in range(2)]  # the queue is full: at once
        budget.leave()  # its place goes to the first waiting
        first = await waiting[0]
        rest = await asyncio.gather(*waiting[1:])  # nobody leaves: they time out
        return [first, *rest], flood, budget.in_flight, budget.as_dict()

    served, flood, in_flight, counts = asyncio.run(scene())
    assert served == [True] + [False] * (QUEUE - 1)
    assert flood == [False, False]
    assert in_flight == 1  # the first waiting one, in the place of the one that left
    assert (counts["admitted"], counts["refused"], counts["waiting"]) == (2, QUEUE + 1, 0)


def _call(
    base: str, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    for name, value in {**(headers or {}), "Content-Type": "application/json"}.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, _lower(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read().decode()


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Residents' session look-ups wait until the gate opens (at most 30 s)."""
    opened = threading.Event()
    original = resident_api.residents.resident_for_session

    def held(*args: Any, **kwargs: Any) -> Any:
        opened.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(resident_api.residents, "resident_for_session", held)
    yield opened
    opened.set()


# The guard answers before any database work; the counter's payment on PostgreSQL is tested
# elsewhere (tests/api/test_counter*.py). One engine keeps the suite under its 10 minutes.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_flooded_residents_get_503_at_once_while_the_counter_and_navi_serve(
    database: Database, ca: SimulatorCA, cards: list[SimulatedCard], tmp_path: Path, gate: Any
) -> None:
    card = cards[0]
    terminal = museum_with_resident(database.uow(), card)
    ca.save(tmp_path / "ca")
    settings = Settings(
        database_url=database.url,
        environment="test",
        card_trust_anchors=str(tmp_path / "ca" / "ca.pem"),
        channel_limits="resident=2",
    )
    app = create_app(settings, clock=database.clock)
    with served(app) as base:
        held = [
            threading.Thread(
                target=_call, args=(base, "GET", "/api/v1/me", {"Authorization": "Bearer x"})
            )
            for _ in range(2)
        ]
        for thread in held:
            thread.start()
        deadline = time.monotonic() + 30
        while (
            json.loads(_call(base, "GET", "/healthz")[2])["channels"]["resident"]["in_flight"] < 2
        ):
            assert time.monotonic() < deadline, "the residents' requests never got in"
            time.sleep(0.02)

        # a third resident: refused at once, as problem+json for a program …
        status, headers, body = _call(base, "GET", "/api/v1/me/points")
        assert status == 503
        assert headers["retry-after"] == "5"
        problem = json.loads(body)
        assert (problem["code"], problem["channel"]) == ("channel_busy", "resident")
        # … and as a calm page, in the visitor's language, for a person
        status, headers, page = _call(base, "GET", "/mypage/login", {"Accept": "text/html"})
        assert (status, headers["retry-after"]) == (503, "30")
        assert "ただいま混み合っています" in page and "30秒ほど" in page
        assert 'data-type="info" role="status"' in page  # calm: no alarm, read out politely
        status, _, page = _call(base, "GET", "/mypage/login?lang=en", {"Accept": "text/html"})
        assert status == 503 and "Please open it again in about 30 seconds" in page

        # the counter and Point Navi are in other channels: they serve as usual
        challenge = json.loads(_call(base, "POST", "/api/v1/card/challenges")[2])
        signed = card.proof(challenge["challenge_id"], base64.b64decode(challenge["nonce"]))
        status, _, paid = _call(
            base,
            "POST",
            "/api/v1/terminal/payments",
            {"Authorization": f"Bearer {terminal}"},
            {"card_proof": signed, "municipality": MAEBASHI, "points": 100, "key": "surge-1"},
        )
        assert status == 201, paid
        assert _call(base, "GET", "/navi", {"Accept": "text/html"})[0] == 200

        gate.set()
        for thread in held:
            thread.join(timeout=30)
        # the flood is over: residents are served again (this one has no session: 401)
        assert _call(base, "GET", "/api/v1/me", {"Authorization": "Bearer x"})[0] == 401
        resident = json.loads(_call(base, "GET", "/healthz")[2])["channels"]["resident"]
        assert resident["refused"] == 3
        assert resident["in_flight"] == 0
    app.state.engine.dispose()
