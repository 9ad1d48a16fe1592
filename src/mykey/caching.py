"""A small in-process cache with a time to live, a size bound and invalidation (issue #14).

What the hot path reads on every request but rarely changes (who an API key is; which
municipalities' points a shop accepts) is kept here for a few seconds, so that a request makes
no database statement for it. The rules every user of it keeps:

- **A time to live** (seconds on a monotonic clock, injectable for tests): an entry older than
  it is gone, so a change made by another process is seen within that many seconds. 0 turns
  the cache off (every `get` misses, nothing is stored).
- **A size bound**: least recently used entries go first, so nothing the callers present can
  grow it without bound. Callers store only what the database confirmed.
- **Invalidation that wins races**: `drop` and `clear` move a generation counter on. A loader
  reads `generation()` *before* it opens its transaction and hands it to `put`; a value loaded
  before an invalidation is then refused, so a change made in this process (committed before
  its `drop`) is seen at once, never undone by a request that read the old row.
- **Thread-safe**: routes run in a thread pool; one lock, held only for dictionary work.

`Caches` keeps one cache per database (by its URL, password hidden), process-wide, so that a
change made through any engine on that database (the CLI's, a page's) invalidates what the
app's engine cached.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Monotonic = Callable[[], float]


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int


class TtlCache(Generic[K, V]):
    """A thread-safe LRU with a time to live (see the module docstring)."""

    def __init__(self, *, seconds: float, size: int, clock: Monotonic = time.monotonic) -> None:
        if seconds < 0 or size < 0:
            raise ValueError("a cache's seconds and size are not negative")
        self.seconds = float(seconds)
        self.size = int(size)
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._hits = 0
        self._misses = 0

    @property
    def enabled(self) -> bool:
        return self.seconds > 0 and self.size > 0

    def generation(self) -> int:
        """Read before loading a value from the database; pass it to `put`."""
        with self._lock:
            return self._generation

    def get(self, key: K) -> V | None:
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self._misses += 1
                return None
            expires, value = found
            if now >= expires:
                del self._entries[key]
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return value

    def put(self, key: K, value: V, *, generation: int) -> bool:
        """Keep `value` for the time to live, unless the cache was invalidated since
        `generation` was read (then the value may be older than the invalidation)."""
        if not self.enabled:
            return False
        expires = self.clock() + self.seconds
        with self._lock:
            if generation != self._generation:
                return False
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return True

    def drop(self, key: K) -> None:
        """Forget `key` (a change was committed in this process) and refuse older loads."""
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries))


_NAMES: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def database_of(engine: Engine) -> str:
    """The name a cache is kept under: the database's URL without its password (rendered once
    per engine: rendering costs ~10 µs, a look-up here ~0.3 µs)."""
    name = _NAMES.get(engine)
    if name is None:
        name = engine.url.render_as_string(hide_password=True)
        _NAMES[engine] = name
    return name


class Caches(Generic[K, V]):
    """One `TtlCache` per database, process-wide, made with the defaults on first use or as
    `configure` says (the app does, from its settings)."""

    def __init__(self, *, seconds: float, size: int) -> None:
        self.default_seconds = seconds
        self.default_size = size
        self._caches: dict[str, TtlCache[K, V]] = {}
        self._lock = threading.Lock()
        _EVERY.append(self)

    def of(self, engine: Engine) -> TtlCache[K, V]:
        name = database_of(engine)
        cache = self._caches.get(name)
        if cache is None:
            with self._lock:
                cache = self._caches.get(name)
                if cache is None:
                    cache = TtlCache(seconds=self.default_seconds, size=self.default_size)
                    self._caches[name] = cache
        return cache

    def configure(
        self,
        engine: Engine,
        *,
        seconds: float | None = None,
        size: int | None = None,
        clock: Monotonic = time.monotonic,
    ) -> TtlCache[K, V]:
        """A fresh, empty cache for `engine`'s database, with these settings."""
        cache: TtlCache[K, V] = TtlCache(
            seconds=self.default_seconds if seconds is None else seconds,
            size=self.default_size if size is None else size,
            clock=clock,
        )
        with self._lock:
            old = self._caches.get(database_of(engine))
            self._caches[database_of(engine)] = cache
        if old is not None:
            old.clear()  # a loader still holding it cannot put into the new one anyway
        return cache

    def clear_all(self) -> None:
        """Empty every database's cache (a database restored or emptied under the process)."""
        with self._lock:
            caches = list(self._caches.values())
        for cache in caches:
            cache.clear()


_EVERY: list[Caches[Any, Any]] = []


def clear_all() -> None:
    """Empty every cache of every kind in this process (tests empty the database under it)."""
    for caches in list(_EVERY):
        caches.clear_all()
