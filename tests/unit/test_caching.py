"""The in-process cache (issue #14): time to live, size bound, invalidation that wins races."""

from __future__ import annotations

import threading

from mykey.caching import TtlCache


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_for_its_time_to_live() -> None:
    ticks = Ticks()
    cache: TtlCache[str, int] = TtlCache(seconds=5, size=10, clock=ticks)
    assert cache.put("a", 1, generation=cache.generation())
    ticks.now = 4.999
    assert cache.get("a") == 1
    ticks.now = 5.0
    assert cache.get("a") is None


def test_the_least_recently_used_go_first_and_the_size_holds() -> None:
    cache: TtlCache[int, int] = TtlCache(seconds=60, size=3, clock=Ticks())
    for n in range(3):
        cache.put(n, n, generation=cache.generation())
    assert cache.get(0) == 0  # 1 is now the least recently used
    for n in range(3, 1000):
        cache.put(n, n, generation=cache.generation())
    assert cache.stats().size == 3
    assert cache.get(0) is None and cache.get(1) is None and cache.get(999) == 999


def test_a_value_loaded_before_an_invalidation_is_not_kept() -> None:
    cache: TtlCache[str, str] = TtlCache(seconds=60, size=10, clock=Ticks())
    before = cache.generation()  # a request starts reading the row …
    cache.drop("key")  # … another thread commits a change and drops the entry …
    assert not cache.put("key", "old row", generation=before)  # … the old row is not kept
    assert cache.get("key") is None
    assert cache.put("key", "new row", generation=cache.generation())
    cache.clear()
    assert cache.get("key") is None


def test_off_keeps_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(seconds=0, size=10)
    assert not cache.put("a", 1, generation=cache.generation())
    assert cache.get("a") is None


def test_threads_share_it_safely() -> None:
    cache: TtlCache[int, int] = TtlCache(seconds=60, size=50)

    def work(offset: int) -> None:
        for n in range(2000):
            key = (n + offset) % 200
            got = cache.get(key)
            assert got is None or got == key
            cache.put(key, key, generation=cache.generation())
            if n % 97 == 0:
                cache.drop(key)

    threads = [threading.Thread(target=work, args=(i * 7,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.stats().size <= 50
