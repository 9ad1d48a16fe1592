"""Transactions begun by the use case's own statements (issue #14): `uow.run(fn,
statement_begin=True)` with `db.send_together` on PostgreSQL, as a counter payment uses them.

The use case sends BEGIN with its first statements and COMMIT with its last, each batch one
round trip (psycopg's pipeline mode). What a user would notice if this went wrong: a write
kept although the statement sent with it failed, a statement run outside the transaction (and
committed alone), a refusal that commits half of what it wrote.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from psycopg import errors as pg_errors
from sqlalchemy import text

from mykey.db import UnitOfWork, send_together
from tests.conftest import Database
from tests.roundtrips import counting

USE = "INSERT INTO card_challenge_uses (challenge_id, used_at) VALUES (%(id)s, %(at)s)"
NOW = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)
# PostgreSQL's (on SQLite `run(…, statement_begin=True)` is a plain `run`)
pytestmark = pytest.mark.parametrize("database", ["postgres"], indirect=True)


def _uses(uow: UnitOfWork, *ids: str) -> int:
    def body() -> int:
        found = uow.connection.execute(
            text("SELECT count(*) FROM card_challenge_uses WHERE challenge_id = ANY(:ids)"),
            {"ids": list(ids)},
        )
        return int(found.scalar_one())

    return uow.read(body)


def test_begin_and_commit_ride_with_the_statements(database: Database) -> None:
    """Two statements in the transaction, two round trips, one commit; both are kept."""
    uow = database.uow()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())

    def body() -> None:
        assert uow.statement_begin
        send_together(uow, [(USE, {"id": a, "at": NOW})], begin=True)
        send_together(uow, [(USE, {"id": b, "at": NOW})], commit=True)

    with counting(database.engine) as count:
        uow.run(body, statement_begin=True)
    assert (count.round_trips, count.commits) == (2, 1), count.listing()
    assert _uses(database.uow(), a, b) == 2


def test_a_failing_statement_sent_with_the_commit_keeps_nothing(database: Database) -> None:
    """The first statement's write is in the same transaction as the failing one: the COMMIT
    sent with it does nothing, and neither row is there."""
    uow = database.uow()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    send_twice = [(USE, {"id": b, "at": NOW}), (USE, {"id": b, "at": NOW})]

    def body() -> None:
        send_together(uow, [(USE, {"id": a, "at": NOW})], begin=True)
        send_together(uow, send_twice, commit=True)

    with pytest.raises(pg_errors.UniqueViolation):
        uow.run(body, statement_begin=True, attempts=1)
    assert _uses(database.uow(), a, b) == 0


def test_a_refusal_after_the_begin_rolls_back(database: Database) -> None:
    """A use case that refuses after its first statements (not enough points, a wrong card)
    leaves nothing: the unit of work rolls back the transaction the statements began."""
    uow = database.uow()
    a = str(uuid.uuid4())

    def body() -> None:
        send_together(uow, [(USE, {"id": a, "at": NOW})], begin=True)
        raise LookupError("refused")

    with pytest.raises(LookupError):
        uow.run(body, statement_begin=True)
    assert _uses(database.uow(), a) == 0


def test_a_statement_before_the_begin_is_refused(database: Database) -> None:
    """In autocommit a statement sent before the use case's BEGIN would commit on its own:
    the unit of work refuses it instead of running it."""
    uow = database.uow()
    a = str(uuid.uuid4())

    def body() -> None:
        uow.connection.execute(
            text("INSERT INTO card_challenge_uses (challenge_id, used_at) VALUES (:id, :at)"),
            {"id": a, "at": NOW},
        )

    with pytest.raises(RuntimeError, match="before the use case's BEGIN"):
        uow.run(body, statement_begin=True)
    assert _uses(database.uow(), a) == 0


def test_the_connection_goes_back_to_the_pool_as_it_came(database: Database) -> None:
    """After a statement-begun transaction the next unit of work on the same pooled connection
    is a plain one again: psycopg begins its transaction, and a refusal rolls it back."""
    uow = database.uow()
    uow.run(
        lambda: send_together(uow, [("SELECT 1", {})], begin=True, commit=True),
        statement_begin=True,
    )
    a = str(uuid.uuid4())

    def plain() -> None:
        assert not uow.statement_begin
        uow.connection.execute(
            text("INSERT INTO card_challenge_uses (challenge_id, used_at) VALUES (:id, :at)"),
            {"id": a, "at": NOW},
        )
        raise LookupError("refused")

    with pytest.raises(LookupError):
        uow.run(plain)
    assert _uses(database.uow(), a) == 0
