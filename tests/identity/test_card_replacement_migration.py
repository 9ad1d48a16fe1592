"""Migration 0022 on both engines: cards linked before it are replaced as a later link would
have replaced them (each by the next card its MyKey ID linked, at that card's linking), so an
old card of a renewed resident stops working on upgrade too."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from mykey.identity.residents import cards_of
from mykey.migrations import alembic_config, upgrade
from tests.conftest import Database


def test_cards_linked_before_the_migration_are_replaced_by_the_next_one(
    database: Database,
) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    with database.engine.begin() as conn:
        config = alembic_config(url)
        config.attributes["connection"] = conn
        command.downgrade(config, "0022-1")  # the schema before card replacements
    linked = {  # MY000001 renewed twice; MY000002 has one card
        "a" * 64: ("MY000001", datetime(2020, 4, 1, 1, 0, tzinfo=UTC)),
        "b" * 64: ("MY000001", datetime(2025, 4, 1, 1, 0, tzinfo=UTC)),
        "c" * 64: ("MY000001", datetime(2026, 10, 1, 1, 0, tzinfo=UTC)),
        "d" * 64: ("MY000002", datetime(2026, 10, 1, 1, 0, tzinfo=UTC)),
    }
    with database.engine.begin() as conn:
        for who in ("MY000001", "MY000002"):
            conn.execute(
                text("INSERT INTO residents VALUES (:who, 'x', :at)"),
                {"who": who, "at": datetime(2020, 4, 1, tzinfo=UTC)},
            )
        for card_key, (who, at) in linked.items():
            conn.execute(
                text("INSERT INTO resident_cards VALUES (:card, :who, :after, :at)"),
                {"card": card_key, "who": who, "after": datetime(2031, 1, 1, tzinfo=UTC), "at": at},
            )

    upgrade(database.engine)

    uow = database.uow()
    views = cards_of(uow, "MY000001")
    assert [(v.card_key[0], v.replaced_by and v.replaced_by[0], v.replaced_at) for v in views] == [
        ("a", "b", linked["b" * 64][1]),
        ("b", "c", linked["c" * 64][1]),
        ("c", None, None),
    ]
    assert [v.replaced_at for v in cards_of(uow, "MY000002")] == [None]
