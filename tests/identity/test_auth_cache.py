"""API keys are authenticated from the process's cache, without a transaction (issue #14).

A key verified in the last few seconds needs no database statement; a key revoked in this
process stops working at once, one revoked by another process within the time to live; a
wrong secret is never taken for the right one; with the cache off every request reads the key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mykey.config import Settings
from mykey.errors import MyKeyError
from mykey.identity import auth_cache
from mykey.identity.keys import Principal, authenticate, create_key, revoke_key
from mykey.web.app import create_app
from tests.conftest import Database
from tests.roundtrips import statements

MYKEY = Path(sys.executable).parent / "mykey"


class Ticks:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(database: Database, key: str) -> bool:
    try:
        authenticate(database.uow(), key)
    except MyKeyError as error:
        assert error.code == "invalid_api_key"
        return True
    return False


def revoke_in_another_process(database: Database, key_id: str) -> None:
    """`mykey keys revoke`, as an operator runs it on another machine: its own process."""
    done = subprocess.run(
        [str(MYKEY), "keys", "revoke", key_id],
        env={**os.environ, "MYKEY_DATABASE_URL": database.url, "MYKEY_ENVIRONMENT": "test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def ticks(database: Database) -> Iterator[Ticks]:
    clock = Ticks()
    auth_cache.configure(database.engine, seconds=5, clock=clock)
    yield clock
    auth_cache.configure(database.engine)  # the defaults again, empty


def operator_key(database: Database) -> tuple[str, Principal]:
    return create_key(database.uow(), role="operator", label="協議会")


def test_a_verified_key_is_answered_without_a_statement(database: Database, ticks: Ticks) -> None:
    key, principal = operator_key(database)
    with statements(database.engine) as first:
        assert authenticate(database.uow(), key) == principal
    assert first, "the first use reads the key"
    with statements(database.engine) as again:
        for _ in range(5):
            assert authenticate(database.uow(), key) == principal
    assert again == []  # no statement, not even a connection taken from the pool


def test_a_wrong_secret_is_refused_even_for_a_cached_key(database: Database, ticks: Ticks) -> None:
    key, principal = operator_key(database)
    authenticate(database.uow(), key)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with statements(database.engine) as seen:
        assert refused(database, forged)
    assert seen == []  # the key's secret never changes: refused without asking the database
    assert authenticate(database.uow(), key) == principal


def test_bad_keys_are_not_kept(database: Database, ticks: Ticks) -> None:
    key, _ = operator_key(database)
    key_id = key.split("_")[1]
    for n in range(50):
        assert refused(database, f"mk_{n:012x}_nosuchsecret")
        assert refused(database, f"mk_{key_id}_wrong{n}")
    assert auth_cache.of(database.engine).stats().size == 0
    with statements(database.engine) as seen:
        assert refused(database, f"mk_{key_id}_wrong")
    assert seen, "an unconfirmed key is looked up every time, never answered from the cache"


def test_a_key_revoked_here_stops_working_at_once(database: Database, ticks: Ticks) -> None:
    key, principal = operator_key(database)
    assert authenticate(database.uow(), key) == principal  # now cached
    revoke_key(database.uow(), principal.key_id)
    assert refused(database, key)  # no time has passed


def test_a_key_revoked_elsewhere_stops_working_within_the_ttl(
    database: Database, ticks: Ticks
) -> None:
    key, principal = operator_key(database)
    assert authenticate(database.uow(), key) == principal  # cached at t = 0
    revoke_in_another_process(database, principal.key_id)
    ticks.now += 4.9
    assert authenticate(database.uow(), key) == principal  # this process has not heard yet
    ticks.now += 0.1
    assert refused(database, key)  # 5 seconds after it was verified: the database says no
    ticks.now += 60
    assert refused(database, key)  # and the refusal was not kept as a success


def test_with_the_cache_off_every_request_reads_the_key(database: Database) -> None:
    auth_cache.configure(database.engine, seconds=0)
    try:
        key, principal = operator_key(database)
        for _ in range(3):
            with statements(database.engine) as seen:
                assert authenticate(database.uow(), key) == principal
            assert seen
        revoke_in_another_process(database, principal.key_id)
        assert refused(database, key)  # at once
    finally:
        auth_cache.configure(database.engine)


def test_the_app_authenticates_a_repeated_key_without_a_statement(
    database: Database, tmp_path: Path
) -> None:
    """Over HTTP: the second request of a key makes no statement to know who is calling (here
    a terminal asks to change a shop: refused 403 once its key is known, nothing else read)."""
    settings = Settings(database_url=database.url, environment="test", auth_cache_seconds=5)
    app = create_app(settings, clock=database.clock)
    engine = app.state.engine
    terminal = _terminal_key(database)
    body = {"name": "店", "municipality": "131164", "kind": "shop", "accepts": ["131164"]}
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {terminal}"}
        with statements(engine) as first:
            assert client.put("/api/v1/shops/S1", json=body, headers=headers).status_code == 403
        with statements(engine) as again:
            assert client.put("/api/v1/shops/S1", json=body, headers=headers).status_code == 403
        assert first and again == []
        # revoked through this process (as the council's console does): refused at once
        revoke_key(database.uow(), terminal.split("_")[1])
        answer = client.put("/api/v1/shops/S1", json=body, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_api_key"
    app.state.engine.dispose()
    auth_cache.configure(database.engine)


def _terminal_key(database: Database) -> str:
    from mykey.identity.links import add_provider

    add_provider(database.uow(), provider_id="S1", name="店", kind="shop", municipality="131164")
    key, _ = create_key(database.uow(), role="terminal", label="レジ1", provider_id="S1")
    return key
