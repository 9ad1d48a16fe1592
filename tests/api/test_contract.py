"""The OpenAPI tells the truth: a bounded schemathesis run over every operation, as each role.

Every operation of /openapi.json is called with generated requests, valid and invalid, with a
key of each role: a resident's session token, a shop's counter terminal, a library's provider
staff, a municipality's staff, the council's operator, a partner (signed with HMAC-SHA256 as
partners sign), an online shop (every call signed), and no key at all. No answer may be a 5xx,
have a status code or a content type its operation does not declare, or break the schema it
declares; the ledger still checks afterwards (the `database` fixture), on both engines.

Bounded: an operation that declares no security is called without a key only. Otherwise each
role is first probed with one request made by hand (the path naming the role's own things,
nothing else), or, where that is refused as invalid before the credentials are looked at (a
resident's token is checked after the body), with one generated valid request; where the
answer is 401/403 it is not let in and the probe is enough (its answer is checked too).
Where it is let in, generated valid requests (with the path naming things that exist: the
staff's own town, the payment, the voucher, the order, the ranking award and its winner, the
correction case, the bulk job) and invalid ones follow: fewer for a read (GET), whose
answer depends on the caller and the state more than on the request.
Hypothesis runs from a fixed seed, so every run makes the same requests.

Operations added later are covered without change here; a failure names the operation, the
role and the request.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mykey import demo
from mykey.db import tokyo_date
from mykey.identity.keys import create_key
from mykey.identity.residents import login_with_password
from mykey.identity.simulator import SimulatedCard
from mykey.ledger import check
from mykey.points.online import issue_online_key
from mykey.points.partner_keys import issue_partner_key, sign
from mykey.points.shops import set_shop
from tests.api.conftest import bearer, proof
from tests.conftest import Database

# Generated requests per operation where the role is let in: (valid, invalid), by method.
EXAMPLES = {"get": (4, 3)}
WRITE_EXAMPLES = (10, 5)
TOSHIMA = "131164"
ONLINE_SHOP = "toshima-online"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
REFUSED_CALLER = {401, 403}
INVALID = {400, 422}


class Bearer(requests.auth.AuthBase):
    """Authorization: Bearer <key or token>, or no Authorization at all."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        if self.token is not None:
            r.headers["Authorization"] = f"Bearer {self.token}"
        return r


class Signer(Bearer):
    """A partner's or an online shop's server: signs every request it sends."""

    def __init__(self, token: str, secret: str, database: Database) -> None:
        super().__init__(token)
        self.secret, self.database = secret, database

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        super().__call__(r)
        self.database.clock.advance(seconds=1)  # a new timestamp: no signature is replayed
        timestamp = str(int(self.database.clock.now.timestamp()))
        body = r.body or b""
        body = body.encode() if isinstance(body, str) else body
        r.headers["X-MyKey-Timestamp"] = timestamp
        r.headers["X-MyKey-Signature"] = sign(
            self.secret, r.method or "GET", r.path_url, timestamp, body
        )
        return r


@dataclass
class World:
    auths: dict[str, Bearer]
    # Path parameters naming things that exist, per role (and for every role).
    paths: dict[str, dict[str, str]] = field(default_factory=dict)


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def build_world(client: TestClient, database: Database, card: SimulatedCard) -> World:
    """The demo's towns, shops and partners; a resident with points, a payment, vouchers and an
    online order; a key of each role."""
    uow = database.uow()
    secret_key = client.app.state.settings.secret_key  # type: ignore[attr-defined]
    demo.load(uow)
    demo.register_residents(uow, {"MY123456": card})
    set_shop(
        uow,
        shop_id=ONLINE_SHOP,
        name="としまオンライン",
        municipality=TOSHIMA,
        kind="online",
        accepts=[TOSHIMA],
    )
    token = login_with_password(
        uow, mykey_id="MY123456", password=demo.DEMO_PASSWORD, client="contract"
    ).token
    terminal = create_key(uow, role="terminal", label="counter", provider_id="toshima-museum")[0]
    library = create_key(uow, role="provider_staff", label="library", provider_id="A1")[0]
    staff = create_key(uow, role="municipality_staff", label="toshima", municipality=TOSHIMA)[0]
    operator = create_key(uow, role="operator", label="council")[0]
    partner = issue_partner_key(uow, partner="jal", label="jal", secret_key=secret_key)
    shop = issue_online_key(uow, shop=ONLINE_SHOP, label="online", secret_key=secret_key)
    online = Signer(shop.api_key, shop.signing_secret, database)

    granted = _ok(
        client.post(
            f"/api/v1/municipalities/{TOSHIMA}/grants",
            headers=bearer(staff),
            json={"mykey_id": "MY123456", "points": 5000, "reason": "contract", "key": "g-1"},
        )
    )
    paid = _ok(
        client.post(
            "/api/v1/terminal/payments",
            headers=bearer(terminal),
            json={
                "card_proof": proof(client, card),
                "municipality": TOSHIMA,
                "points": 100,
                "key": "pay-1",
            },
        )
    )
    issued = _ok(
        client.post(
            "/api/v1/terminal/vouchers",
            headers=bearer(terminal),
            json={
                "card_proof": proof(client, card),
                "municipality": TOSHIMA,
                "points": 1000,
                "key": "voucher-1",
            },
        )
    )
    _ok(
        client.post(
            "/api/v1/me/service-ids",
            headers=bearer(token),
            json={"service": ONLINE_SHOP, "external_id": "F-0001"},
        )
    )
    with asgi.get_client(client.app) as signed:
        signed.auth = online
        base = f"http://{asgi.HOST}/api/v1/online/{ONLINE_SHOP}"
        order = _ok(
            signed.post(
                f"{base}/authorizations",
                data=json.dumps(
                    {
                        "service_id": "F-0001",
                        "municipality": TOSHIMA,
                        "points": 500,
                        "expires_in_seconds": 3600,
                        "key": "order-1",
                    }
                ),
                headers={"Content-Type": "application/json"},
            )
        )
        captured = _ok(
            signed.post(
                f"{base}/authorizations/{order['authorization_id']}/capture",
                data=json.dumps({"points": 300, "key": "capture-1"}),
                headers={"Content-Type": "application/json"},
            ),
            200,
        )
    # the town's one-off actions: a ranking award with prize vouchers, a correction case, a job
    today = tokyo_date(database.clock.now)
    award = _ok(
        client.post(
            f"/api/v1/municipalities/{TOSHIMA}/rankings/awards",
            headers=bearer(staff),
            json={
                "from": (today - timedelta(days=30)).isoformat(),
                "to": today.isoformat(),
                "top": 3,
                "points": 10,
                "vouchers": {
                    "count": 2,
                    "face_value": 500,
                    "valid_days": 90,
                    "shop_ids": ["toshima-museum"],
                },
                "reason": "contract",
                "key": "award-1",
            },
        ),
        200,
    )
    case = _ok(
        client.post(
            f"/api/v1/municipalities/{TOSHIMA}/corrections",
            headers=bearer(staff),
            json={
                "kind": "reverse",
                "transfer_id": granted["transfer_id"],
                "reason_code": "duplicate",
                "note": "contract",
                "key": "case-1",
            },
        )
    )
    job = _ok(
        client.post(
            f"/api/v1/municipalities/{TOSHIMA}/grant-jobs",
            headers={**bearer(staff), "Idempotency-Key": "job-1", "Content-Type": "text/csv"},
            content=b"mykey_id,points,reason\nMY123456,10,contract\n",
        ),
        202,
    )
    everyone = {
        "code": TOSHIMA,
        "mykey_id": "MY123456",
        "fiscal_year": "2026",
        "month": "2026-10",
        "provider_id": "A1",
        "street_id": "otsuka",
        "card_key": card.card_key,
        "payment_id": paid["transaction_id"],
        "transfer_id": paid["transaction_id"],
        "number": issued["vouchers"][0]["number"],
        "issue_transfer_id": issued["transaction_id"],
        "authorization_id": order["authorization_id"],
        "capture_id": str(captured["capture_id"]),
        "award_id": award["award_id"],
        "case_id": case["id"],
        "job_id": job["id"],
    }
    return World(
        auths={
            "no key": Bearer(None),
            "resident": Bearer(token),
            "terminal": Bearer(terminal),
            "provider staff": Bearer(library),
            "municipality staff": Bearer(staff),
            "operator": Bearer(operator),
            "partner": Signer(partner.api_key, partner.signing_secret, database),
            "online shop": online,
        },
        paths={
            "*": everyone,
            "terminal": {"shop_id": "toshima-museum"},
            "municipality staff": {"shop_id": "toshima-museum", "shop": ONLINE_SHOP},
            "operator": {"shop_id": "toshima-museum", "partner": "jal", "shop": ONLINE_SHOP},
            "partner": {"partner": "jal"},
            "online shop": {"shop": ONLINE_SHOP},
        },
    )


@dataclass
class Findings:
    """Failed checks, counted per operation, role, check and status, with one example each."""

    seen: dict[str, list[Any]] = field(default_factory=dict)
    calls: int = 0

    def add(self, label: str, role: str, case: Any, response: Any, group: FailureGroup) -> None:
        for failure in group.exceptions:
            key = f"{label} as {role}: {failure.title} ({response.status_code})"
            if key in self.seen:
                self.seen[key][0] += 1
                continue
            body = case.body if not isinstance(case.body, bytes) else case.body[:200]
            request = f"{case.method} {case.formatted_path} query={case.query} body={body!r:.200}"
            self.seen[key] = [1, f"{request}\n      -> {response.text[:300]}"]

    def crash(self, label: str, role: str, case: Any, exc: Exception) -> None:
        key = f"{label} as {role}: raised {type(exc).__name__} (a 500)"
        if key in self.seen:
            self.seen[key][0] += 1
            return
        request = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r:.200}"
        self.seen[key] = [1, f"{request}\n      -> {str(exc).splitlines()[0][:300]}"]

    def report(self) -> str:
        return "\n".join(f"{n} × {key}\n    {example}" for key, (n, example) in self.seen.items())


def _run(
    operation: Any,
    client: Any,
    findings: Findings,
    role: str,
    *,
    mode: GenerationMode,
    examples: int,
    path_parameters: dict[str, str] | None = None,
) -> set[int]:
    """`examples` requests of this mode; returns the statuses answered."""
    statuses: set[int] = set()
    wanted = {p.name for p in operation.path_parameters}
    fixed = {k: v for k, v in (path_parameters or {}).items() if k in wanted} or None
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

    # The same requests every run (derandomize=True would hash the source of `call` each time).
    @seed(0)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: Any) -> None:
        findings.calls += 1
        try:
            response = case.call(session=client)
        except Exception as exc:  # the app raised: a 500 for a client
            findings.crash(operation.label, role, case, exc)
            return
        statuses.add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            findings.add(operation.label, role, case, response, group)

    with contextlib.suppress(Unsatisfiable):  # nothing invalid can be made of it
        call()
    return statuses


def _probe(
    operation: Any, client: Any, findings: Findings, role: str, path_parameters: dict[str, str]
) -> int:
    """One request, by hand: the path naming the role's own things (or a placeholder), nothing
    else. The credentials are checked first, so the answer says whether the role is let in;
    it is checked as any other answer."""
    names = [p.name for p in operation.path_parameters]
    case = operation.Case(path_parameters={n: path_parameters.get(n, "x") for n in names})
    findings.calls += 1
    try:
        response = case.call(session=client)
    except Exception as exc:  # the app raised: a 500 for a client
        findings.crash(operation.label, role, case, exc)
        return 500
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        findings.add(operation.label, role, case, response, group)
    return int(response.status_code)


def _can_be_invalid(operation: Any, paths: dict[str, str]) -> bool:
    """Is anything of the request left to make invalid: a query, a header, a body, or a path
    parameter the world does not name? (Otherwise hypothesis rejects every try before it
    gives up, which costs more than the valid requests of such an operation.)"""
    if len(operation.query) or len(operation.headers) or len(operation.body):
        return True
    return any(p.name not in paths for p in operation.path_parameters)


def _order(operations: list[Any]) -> Iterator[Any]:
    """Ending the resident's session comes last, so every other call still has it."""
    yield from sorted(operations, key=lambda op: op.label == "DELETE /api/v1/sessions/current")


def test_every_operation_answers_as_its_openapi_says(
    card_client: TestClient, database: Database, cards: list[SimulatedCard]
) -> None:
    world = build_world(card_client, database, cards[0])
    app = card_client.app
    # hundreds of calls a second from one client: the channels' rate budgets (their own tests,
    # tests/api/test_surge.py) would answer a share of them 503 channel_busy; off here
    for budget in app.state.channels.budgets.values():  # type: ignore[attr-defined]
        budget.rate = 0.0
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    findings = Findings()
    started, cpu = time.monotonic(), time.process_time()
    with asgi.get_client(app) as client:
        for operation in _order(operations):
            # An operation that declares no security is the same for every caller: no key.
            secured = bool(operation.definition.raw.get("security"))
            positive, negative = EXAMPLES.get(operation.method.lower(), WRITE_EXAMPLES)
            for role, auth in world.auths.items() if secured else [("no key", Bearer(None))]:
                client.auth = auth
                paths = {**world.paths["*"], **world.paths.get(role, {})}
                valid = dict(mode=GenerationMode.POSITIVE, path_parameters=paths)
                if secured:
                    answered = {_probe(operation, client, findings, role, paths)}
                    if answered <= INVALID:  # the request is checked before the credentials
                        answered = _run(operation, client, findings, role, examples=1, **valid)
                    if answered <= REFUSED_CALLER:
                        continue  # not let in: the probe was enough
                _run(operation, client, findings, role, examples=positive, **valid)
                if _can_be_invalid(operation, paths):
                    invalid = GenerationMode.NEGATIVE
                    _run(operation, client, findings, role, mode=invalid, examples=negative)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    print(
        f"\ncontract: {len(operations)} operations, {findings.calls} calls,"
        f" {elapsed:.0f} s ({cpu:.0f} s of CPU)"
    )
    assert not findings.seen, f"{len(findings.seen)} kinds of failure:\n{findings.report()}"
    assert check(database.uow()).ok
