"""Launch-surge isolation: each channel of traffic has its own budget in every web process.

Mynapoint's launch day overloaded its site: residents flooding one set of pages took the
capacity everyone else needed. Here the requests of each **channel** —

- `counter`: counter terminals and the counter pages (`/api/v1/terminal/…`, card challenges
  and verifications, `/counter/…`);
- `partner`: partners, online shops, service providers and operators (HMAC-signed APIs,
  `/console/p/…`);
- `resident`: residents' pages and API (`/mypage/…`, `/api/v1/me/…`, sign-in);
- `public`: Point Navi, the public lists, the history log's proofs and tiles, `/docs`;
- `other`: staff consoles and staff APIs, whatever is not above —

are admitted against that channel's budget: at most `concurrency` of its requests in flight in
this process, and at most `rate` a second (a token bucket holding one second's worth). A
request over the concurrency waits a quarter of a second at most for a place (a burst of
ordinary traffic is smoothed, with at most four times the concurrency waiting); a request over
that, or over the rate, is answered at once: `503 Service Unavailable` with `Retry-After`,
problem+json (`channel_busy`) for the API and, for people, a calm page in their language that
says when to come back. The other channels keep their threads and their latency: with the
defaults, the capped channels together hold at most 80 % of the threads a process serves with
(`MYKEY_DATABASE_POOL_SIZE`), so counters and staff always find some.

Budgets are per process (a fleet's is the sum over its web processes); `MYKEY_CHANNEL_LIMITS`
sets them, e.g. `resident=4/150, public=2/100, partner=2/100, counter=0` (`concurrency/rate`,
0 or no rate: no limit). Static files, `/healthz`, `/readyz` and `/metrics` are in no channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mykey.channels import Channel

log = logging.getLogger("mykey.web")

RETRY_AFTER_API = 5  # seconds: a program retries; its writes carry idempotency keys
RETRY_AFTER_PAGE = 30  # seconds: what a person is asked to wait
MAX_WAIT = 0.25  # seconds a request over its channel's concurrency may wait for a place
QUEUE = 4  # … with at most this many times the concurrency waiting
CHANNEL = "mykey.channel"  # the request's channel, in its ASGI scope once the guard has seen it


# (prefix, channel), the first that matches wins; a prefix matches the path itself or the path
# followed by "/" (so "/api/v1/me" is not "/api/v1/media").
PREFIXES: tuple[tuple[str, Channel | None], ...] = (
    ("/static", None),
    ("/assets", None),
    ("/favicon.ico", None),
    ("/healthz", None),
    ("/readyz", None),
    ("/metrics", None),
    ("/api/v1/terminal", Channel.COUNTER),
    ("/api/v1/card", Channel.COUNTER),
    ("/counter", Channel.COUNTER),
    ("/api/v1/partners", Channel.PARTNER),
    ("/api/v1/online", Channel.PARTNER),
    ("/api/v1/operator", Channel.PARTNER),
    ("/api/v1/provider", Channel.PARTNER),
    ("/console/p", Channel.PARTNER),
    ("/api/v1/me", Channel.RESIDENT),
    ("/api/v1/mykey-ids", Channel.RESIDENT),
    ("/api/v1/sessions", Channel.RESIDENT),
    ("/mypage", Channel.RESIDENT),
    ("/api/v1/log", Channel.PUBLIC),
    ("/api/v1/programs", Channel.PUBLIC),
    ("/navi", Channel.PUBLIC),
    ("/docs", Channel.PUBLIC),
    ("/openapi.json", Channel.PUBLIC),
)
# the public list of municipalities and one municipality's page; below it, staff APIs
PUBLIC_MUNICIPALITIES = re.compile(r"^/api/v1/municipalities(/[^/]+)?/?$")


def channel_of(path: str) -> Channel | None:
    """The channel a request path belongs to (None: no budget, e.g. static files)."""
    if path == "/":
        return Channel.PUBLIC
    for prefix, channel in PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return channel
    if PUBLIC_MUNICIPALITIES.match(path):
        return Channel.PUBLIC
    return Channel.OTHER


@dataclass
class Budget:
    """One channel's budget in this process, and what it has admitted and refused.

    Used from the event loop only (no lock). A request over the concurrency waits for a place
    at most `MAX_WAIT` seconds, with at most `QUEUE` × concurrency others (a burst of ordinary
    traffic is smoothed, not refused); beyond that, or over the rate, it is refused at once."""

    concurrency: int = 0  # 0: no limit
    rate: float = 0.0  # requests a second; 0: no limit
    in_flight: int = 0
    admitted: int = 0
    refused: int = 0
    _tokens: float = field(default=0.0, repr=False)
    _at: float = field(default=0.0, repr=False)
    _waiting: deque[asyncio.Future[None]] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        self._tokens = self.rate

    def _within_rate(self, now: float) -> bool:
        if not self.rate:
            return True
        self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _admit(self) -> bool:
        if self.concurrency and self.in_flight >= self.concurrency:
            return False
        self.in_flight += 1
        self.admitted += 1
        return True

    async def enter(self, now: float) -> bool:
        """Admit one request (counted in flight until `leave`), or refuse it; over the
        concurrency it waits a little for a place (see above)."""
        if not self._within_rate(now):
            self.refused += 1
            return False
        if self._admit():
            return True
        if len(self._waiting) >= QUEUE * self.concurrency:
            self.refused += 1
            return False
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        try:
            await asyncio.wait_for(place, MAX_WAIT)
        except TimeoutError:
            self.refused += 1
            return False
        finally:
            if not place.done() or place.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiting.remove(place)
        self.admitted += 1  # the place of a request that left, handed over: in_flight stays
        return True

    def leave(self) -> None:
        while self._waiting:
            place = self._waiting.popleft()
            if not place.done():
                place.set_result(None)  # its place to the first still waiting
                return
        self.in_flight -= 1

    def as_dict(self) -> dict[str, float | int]:
        return {
            "concurrency": self.concurrency,
            "rate": self.rate,
            "in_flight": self.in_flight,
            "waiting": len(self._waiting),
            "admitted": self.admitted,
            "refused": self.refused,
        }


class Channels:
    """The budgets of one web process."""

    def __init__(
        self, limits: dict[Channel, tuple[int, float]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budgets = {c: Budget(*limits.get(c, (0, 0.0))) for c in Channel}
        self.clock = clock

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {c.value: b.as_dict() for c, b in self.budgets.items()}


Refusal = Callable[[Request, Channel], Response]


class SurgeGuard:
    """ASGI middleware: admit each request against its channel's budget, or refuse it at once
    with `refuse(request, channel)` (an ASGI response). It runs on the event loop, before a
    request takes a thread: a refused request costs no thread and no database connection."""

    def __init__(
        self,
        app: ASGIApp,
        channels: Channels,
        refuse: Refusal,
        refused: Callable[[Channel], None] = lambda _: None,
    ) -> None:
        self.app = app
        self.channels = channels
        self.refuse = refuse
        self.refused = refused  # told of each refusal (the metrics count them)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        channel = channel_of(scope["path"])
        scope[CHANNEL] = channel  # for the metrics around (they count by channel)
        if channel is None:
            await self.app(scope, receive, send)
            return
        budget = self.channels.budgets[channel]
        if not await budget.enter(self.channels.clock()):
            self.refused(channel)
            if budget.refused == 1 or budget.refused % 1000 == 0:
                log.warning(
                    "channel %s over its budget (%s): %d refused so far",
                    channel.value,
                    budget.as_dict(),
                    budget.refused,
                )
            response = self.refuse(Request(scope), channel)
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            budget.leave()
