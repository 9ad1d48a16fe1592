"""API keys verified recently, so that a request authenticates without a transaction.

`keys.authenticate` looks a presented key up here first, by its key id: an entry holds the
SHA-256 of the key's secret (what `api_keys.secret_hash` holds, never the secret itself) and
the principal. A key's secret never changes, so a presented secret whose hash differs from the
entry's is refused here too, without a statement. Only keys the database confirmed are kept;
an unknown, wrong or revoked key is never stored, so bad keys cannot fill the cache.

How long a change takes (docs/operators.md, `MYKEY_AUTH_CACHE_SECONDS`, default 5):

- a key revoked in this process (`keys.revoke_key`: the CLI, the council's console) stops
  working here at once: its entry is dropped after the revocation commits;
- a key revoked in another process stops working here within the time to live;
- 0 turns the cache off: every request reads the key in a transaction, as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy import Engine

from mykey.caching import Caches, Monotonic, TtlCache

if TYPE_CHECKING:  # keys imports this module
    from mykey.identity.keys import Principal

DEFAULT_SECONDS = 5.0
SIZE = 10_000  # keys per process and database: far more than the terminals one process serves

Entry: TypeAlias = "tuple[str, Principal]"  # (SHA-256 of the secret, hex; the principal)

_CACHES: Caches[str, Entry] = Caches(seconds=DEFAULT_SECONDS, size=SIZE)


def of(engine: Engine) -> TtlCache[str, Entry]:
    """The verified keys of `engine`'s database, in this process."""
    return _CACHES.of(engine)


def configure(
    engine: Engine,
    *,
    seconds: float = DEFAULT_SECONDS,
    size: int = SIZE,
    clock: Monotonic = time.monotonic,
) -> TtlCache[str, Entry]:
    """Start an empty cache for `engine`'s database with this time to live (the app does, from
    `MYKEY_AUTH_CACHE_SECONDS`)."""
    return _CACHES.configure(engine, seconds=seconds, size=size, clock=clock)


def forget(engine: Engine, key_id: str) -> None:
    """The key changed (revoked): look it up in the database next time."""
    _CACHES.of(engine).drop(key_id)


def clear_all() -> None:
    _CACHES.clear_all()
