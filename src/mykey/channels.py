"""The channels of traffic a web process budgets apart (`mykey.web.surge`), and their limits.

Here, not in `mykey.web`, so that the settings can check `MYKEY_CHANNEL_LIMITS` when they are
read: a typo in it stops the process at start, not at the first flood.
"""

from __future__ import annotations

import math
from enum import StrEnum


class Channel(StrEnum):
    COUNTER = "counter"
    PARTNER = "partner"
    RESIDENT = "resident"
    PUBLIC = "public"
    OTHER = "other"


def default_limits(threads: int) -> dict[Channel, tuple[int, float]]:
    """Per-process budgets from the number of threads that serve requests: residents 40 %,
    the public 20 %, partners 20 % of them (at least one each); counters and staff uncapped.
    The rates hold a flooded channel to its share of the process's CPU (a refusal costs a
    tenth of a page): 100 resident reads a second took half a core here, and the counters'
    p99 went to 2.2 × (`make bench-surge`); at 50 a second, a quarter, and 1.1–1.3 ×."""

    def share(part: float) -> int:
        return max(1, math.floor(threads * part))

    return {
        Channel.RESIDENT: (share(0.4), 50.0),
        Channel.PUBLIC: (share(0.2), 100.0),
        Channel.PARTNER: (share(0.2), 100.0),
        Channel.COUNTER: (0, 0.0),
        Channel.OTHER: (0, 0.0),
    }


def parse_limits(spec: str, threads: int) -> dict[Channel, tuple[int, float]]:
    """`resident=4/300, public=2` over the defaults; ValueError says what is wrong."""
    limits = default_limits(threads)
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        try:
            channel = Channel(name.strip())
        except ValueError:
            known = ", ".join(c.value for c in Channel)
            raise ValueError(f"unknown channel {name.strip()!r} (one of {known})") from None
        concurrency, _, rate = value.partition("/")
        try:
            limits[channel] = (int(concurrency), float(rate) if rate.strip() else 0.0)
        except ValueError:
            raise ValueError(f"{item!r}: give concurrency[/rate], e.g. resident=4/300") from None
        count, per_second = limits[channel]
        if not sep or count < 0 or per_second < 0 or not math.isfinite(per_second):
            raise ValueError(f"{item!r}: give concurrency[/rate], e.g. resident=4/300")
    return limits
