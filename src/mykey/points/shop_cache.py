"""A terminal's shop and the municipalities whose points it accepts, kept in the process.

Every counter operation names its shop by the terminal key's provider id and reads the shop,
its accepted municipalities (with the shop's account in each ledger) and the points' names.
These change rarely (`shops.set_shop`, `program_setup.set_up_program`), so a serving process
keeps them for `MYKEY_SHOP_CACHE_SECONDS` (default 5; 0 turns it off):

- a change made in this process is seen at once: the function that makes it drops the cache
  after its commit (`forget`), and a load read before that drop is not kept (`caching`);
- a change made by another process is seen within the time to live: a shop that stops
  accepting a municipality's points may still take them here for at most that many seconds
  after the change (docs/spending.md);
- only a "yes" is answered from the cache. "No such shop" and "not accepted here" are
  confirmed in the operation's own transaction before they refuse (a counter refusal is kept
  under its idempotency key for good, so it must never come from an old copy);
- a shop's account in a ledger never changes (one SHOP account per shop and ledger, never
  closed), so the account a cached entry credits is always the right one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import Engine, select

from mykey.caching import Caches, Monotonic, TtlCache
from mykey.db import UnitOfWork
from mykey.points.models import PointProgram, Shop, ShopAccept

DEFAULT_SECONDS = 5.0
SIZE = 10_000  # shops per process and database


@dataclass(frozen=True)
class Accepted:
    """A municipality whose points the shop accepts."""

    code: str
    account_id: int  # the shop's SHOP account in that municipality's ledger
    point_name: str  # the program's name of its points (the code if it has no program)


@dataclass(frozen=True)
class TerminalShop:
    id: str
    accepts: Mapping[str, Accepted]  # by municipality code, read-only

    @property
    def codes(self) -> list[str]:
        return sorted(self.accepts)


_CACHES: Caches[str, TerminalShop] = Caches(seconds=DEFAULT_SECONDS, size=SIZE)


def _load(uow: UnitOfWork, shop_id: str) -> TerminalShop | None:
    """The shop as the database has it now, in the caller's transaction (two statements)."""
    s = uow.session
    if s.get(Shop, shop_id) is None:
        return None
    rows = s.execute(
        select(ShopAccept.code, ShopAccept.account_id, PointProgram.point_name)
        .outerjoin(PointProgram, PointProgram.code == ShopAccept.code)
        .where(ShopAccept.shop_id == shop_id)
    )
    accepts = {
        code: Accepted(code, int(account_id), name or code) for code, account_id, name in rows
    }
    return TerminalShop(shop_id, MappingProxyType(accepts))


MEMO = "mykey.shop_cache"  # the session's info key: what this transaction loaded already


def _memo(uow: UnitOfWork) -> dict[str, TerminalShop] | None:
    if not uow.in_transaction:
        return None
    memo: dict[str, TerminalShop] = uow.session.info.setdefault(MEMO, {})
    return memo


def _fresh(uow: UnitOfWork, shop_id: str) -> TerminalShop | None:
    cache = _CACHES.of(uow.engine)
    generation = cache.generation()
    found = uow.run(lambda: _load(uow, shop_id))
    if found is not None:
        cache.put(shop_id, found, generation=generation)
        memo = _memo(uow)
        if memo is not None:
            memo[shop_id] = found
    return found


def shop_of(uow: UnitOfWork, shop_id: str) -> TerminalShop | None:
    """The shop `shop_id` with what it accepts, or None if there is no such shop (confirmed
    by the database, never answered from the cache). Loaded at most once per transaction, even
    with the cache off."""
    found = _CACHES.of(uow.engine).get(shop_id)
    if found is None:
        memo = _memo(uow)
        found = memo.get(shop_id) if memo is not None else None
    return found if found is not None else _fresh(uow, shop_id)


def accepted(uow: UnitOfWork, shop: TerminalShop, code: str) -> Accepted | None:
    """Whether `shop` accepts `code`'s points: a "yes" may come from the cache (at most the time
    to live old), a "no" is read again from the database first."""
    found = shop.accepts.get(code)
    if found is not None:
        return found
    again = _fresh(uow, shop.id)
    return again.accepts.get(code) if again is not None else None


def of(engine: Engine) -> TtlCache[str, TerminalShop]:
    return _CACHES.of(engine)


def configure(
    engine: Engine,
    *,
    seconds: float = DEFAULT_SECONDS,
    size: int = SIZE,
    clock: Monotonic = time.monotonic,
) -> TtlCache[str, TerminalShop]:
    """Start an empty cache for `engine`'s database with this time to live (the app does, from
    `MYKEY_SHOP_CACHE_SECONDS`)."""
    return _CACHES.configure(engine, seconds=seconds, size=size, clock=clock)


def forget(engine: Engine, shop_id: str | None = None) -> None:
    """A shop changed (or, with no id, a program's name of its points: every shop)."""
    cache = _CACHES.of(engine)
    if shop_id is None:
        cache.clear()
    else:
        cache.drop(shop_id)
