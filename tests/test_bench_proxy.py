"""The counting proxy of `make bench-counter` (bench/pgproxy.py) counts what PostgreSQL counts:
round trips (a pipelined batch once), commits and rollbacks, messages by type."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

import psycopg
import pytest
from bench.pgproxy import CountingProxy
from sqlalchemy.engine import make_url


@pytest.fixture
def through_proxy(postgres_url: str) -> Iterator[tuple[psycopg.Connection, CountingProxy]]:
    url = make_url(postgres_url)
    proxy = CountingProxy(url.host or "127.0.0.1", url.port or 5432).start()
    with psycopg.connect(
        host="127.0.0.1",
        port=proxy.port,
        user=url.username or "postgres",
        dbname=url.database,
        sslmode="disable",
        gssencmode="disable",
    ) as conn:
        yield conn, proxy


def counted(proxy: CountingProxy, action: Callable[[], object]) -> Counter[str]:
    before = proxy.snapshot()
    action()
    time.sleep(0.1)  # the answer's last bytes pass the proxy's thread before it counts them
    return proxy.snapshot() - before


def test_counts_round_trips_commits_and_rollbacks(
    through_proxy: tuple[psycopg.Connection, CountingProxy],
) -> None:
    conn, proxy = through_proxy
    assert proxy.snapshot()["startup"] == 1

    def block() -> None:
        conn.execute("SELECT 1").fetchall()
        conn.commit()

    # BEGIN, the statement, COMMIT: three waits for an answer, one transaction committed
    assert counted(proxy, block) == Counter(round_trips=3, Q=3, commits=1)

    conn.autocommit = True
    one = counted(proxy, lambda: conn.execute("SELECT %s", (1,)).fetchall())
    assert (one["round_trips"], one["commits"], one["S"]) == (1, 1, 1)

    def fails() -> None:
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")

    failed = counted(proxy, fails)
    assert (failed["round_trips"], failed["commits"], failed["rollbacks"]) == (1, 0, 1)

    def pipelined() -> None:
        with conn.pipeline():
            for n in range(5):
                conn.execute("SELECT %s", (n,))

    batch = counted(proxy, pipelined)
    assert batch["E"] == 5
    assert batch["round_trips"] < 5
    # statements up to a Sync share one implicit transaction
    assert batch["commits"] == batch["S"] >= 1
