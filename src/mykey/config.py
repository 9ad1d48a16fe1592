"""Settings from the environment (prefix MYKEY_), with safe embedded defaults."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mykey.channels import Channel, parse_limits

DEV_SECRET = "dev-only-not-a-secret"  # noqa: S105 -- a marker that production refuses


def default_database_url() -> str:
    """The embedded default: a SQLite file under ./var of the working directory."""
    return f"sqlite:///{Path.cwd() / 'var' / 'mykey.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MYKEY_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = ""
    # Seconds a SQLite write waits for another writer before giving up ("database is locked",
    # answered 503 with Retry-After). PostgreSQL waits for row locks as long as they are held.
    database_busy_timeout: float = Field(default=60.0, gt=0)
    # Connections each web process keeps open to the database (its pool), and as many threads
    # serve its requests, so a request never waits for a connection and none is opened per
    # request. A few more (overflow) may be opened at a peak; they are closed again when
    # returned. The background work of the process that leads it has a pool of its own (2, and
    # 2 more at a peak). A request that finds no connection free within the pool timeout answers
    # 503 with Retry-After. docs/deploy.md: processes × (pool + overflow + 1), plus 4 for the
    # leader, must stay under PostgreSQL's max_connections.
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    database_pool_overflow: int = Field(default=2, ge=0, le=1000)
    database_pool_timeout: float = Field(default=10.0, gt=0)
    # psycopg prepares a statement on the server after its fifth use. Turn off behind a
    # connection pooler in transaction mode that does not track prepared statements
    # (PgBouncer before 1.21, or max_prepared_statements = 0).
    database_prepared_statements: bool = True
    # The connection that holds the lock on the background work (one process runs it) needs a
    # session of its own: behind PgBouncer in transaction mode, point this at PostgreSQL itself
    # (or a session-mode pool). Default: MYKEY_DATABASE_URL.
    database_session_url: str = ""
    # A streaming replica of the primary (PostgreSQL hot standby), for read-only traffic: Point
    # Navi, the public lists, My Page's history, the log's proofs and tiles, statements. Used
    # while it keeps within the lag below; the primary otherwise (`mykey.replica`). A browser
    # that has just written reads from the primary for that long too (read your own writes).
    database_replica_url: str = ""
    database_replica_max_lag_seconds: float = Field(default=2.0, gt=0, le=300)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # IP addresses or networks (CIDR), e.g. "127.0.0.1" or "10.0.0.0/8, ::1". Default: none, so
    # a client cannot choose the address its login failures are counted under.
    trusted_proxies: str = ""
    secret_key: str = DEV_SECRET
    # Seconds a verified API key is kept in the serving process (no transaction to authenticate
    # it again): a key revoked by another process stops working within this many seconds; one
    # revoked in this process at once. 0 turns the cache off.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Seconds a serving process keeps a shop and the municipalities whose points it accepts: a
    # change made by another process is seen within this many seconds (a shop that stops
    # accepting a municipality's points may take them there that long); one made in this process
    # at once. A refusal is always read from the database. 0 turns the cache off.
    shop_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # The key card challenges are signed with (issue #14): every web process must have the same.
    # Unset, it is derived from the secret key. Set on its own, it can be rotated alone: that
    # invalidates only the challenges outstanding (they last 60 s).
    challenge_key: str = Field(default="", repr=False)
    timezone: str = "Asia/Tokyo"
    # Card proofs: a PEM bundle of the CAs whose cards are accepted, and CRL files (comma-
    # separated). Development falls back to the simulator CA in var/cards (`mykey cards new-ca`).
    card_trust_anchors: str = ""
    card_crls: str = ""
    # A card replaced by a newer card linked to the same MyKey ID (renewal, reissue) is refused
    # this many hours after the newer card was linked (0, the default: at once).
    replaced_card_grace_hours: int = Field(default=0, ge=0, le=24 * 366)
    # Expire lapsed points once a day in a background thread (`mykey serve` turns it on unless
    # MYKEY_DAILY_EXPIRY is set; off for apps built elsewhere, e.g. in tests).
    daily_expiry: bool = False
    # The history log (R8): its signing key, a C2SP note signer key
    # (PRIVATE+KEY+<origin>+<key id>+<base64>; `mykey log new-key` makes one). Outside production
    # a development key is generated into var/log/signing-key. While serving, integrate and
    # sign a checkpoint every this many seconds (0: only on demand, `mykey log checkpoint`).
    log_signing_key: str = ""
    # The key that salts the leaves' commitments (64 hex digits). Derived from the signing key
    # until the key is rotated (`mykey log rotate-key` prints it: it stays with the log, not
    # the key; outside production it is written to var/log/salt-key).
    log_salt_key: str = ""
    log_checkpoint_seconds: float = 0
    # The log's witnesses (R8.2): their cosignature verifier keys, comma-separated. Only they
    # may read record bytes (GET /api/v1/log/witness/entries) and have cosignatures kept.
    log_witnesses: str = ""

    # Each channel's budget per web process (`mykey.web.surge`): comma-separated
    # `channel=concurrency[/rate]` over the defaults (residents 40 %, the public 20 %, partners
    # 20 % of the pool's threads; counters and staff uncapped), e.g. "resident=4/150".
    channel_limits: str = ""
    # How `mykey serve` writes its log: "text" (uvicorn's lines) or "json" (one object a line,
    # with the request id: `mykey.web.observe`), for a log collector.
    log_format: Literal["text", "json"] = "text"

    # Who runs the background work (the job queue, the periodic jobs, the checkpoints):
    # "web", the one serving process that holds the leader lock (the embedded default: `make
    # run` is one command); or "workers", separate processes (`mykey worker`, `mykey log
    # checkpointer`; PostgreSQL only), and the web processes serve requests and nothing else.
    background: Literal["web", "workers"] = "web"
    # A worker holds a job this many seconds and renews it while it works; a job whose worker
    # died is run again by another this long after its last renewal.
    job_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    # Seconds an idle worker waits before it looks for due jobs again.
    job_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    def engine_options(self) -> dict[str, Any]:
        """`make_engine`'s keyword arguments for a serving process."""
        return {
            "busy_timeout": self.database_busy_timeout,
            "pool_size": self.database_pool_size,
            "max_overflow": self.database_pool_overflow,
            "pool_timeout": self.database_pool_timeout,
            "prepared_statements": self.database_prepared_statements,
        }

    def channel_budgets(self) -> dict[Channel, tuple[int, float]]:
        return parse_limits(self.channel_limits, self.database_pool_size)

    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies, each an IP address or a network in its normal form (a network
        given with host bits, 10.1.2.3/8, is 10.0.0.0/8)."""
        return [
            str(ipaddress.ip_network(item, strict=False)) if "/" in item else item
            for item in (p.strip() for p in self.trusted_proxies.split(","))
            if item
        ]

    def replaced_card_grace(self) -> timedelta:
        return timedelta(hours=self.replaced_card_grace_hours)

    def card_anchor_paths(self) -> tuple[Path | None, list[Path]]:
        bundle = Path(self.card_trust_anchors) if self.card_trust_anchors else None
        if bundle is None and self.environment != "production":
            candidate = Path.cwd() / "var" / "cards" / "ca.pem"
            bundle = candidate if candidate.exists() else None
        crls = [Path(p.strip()) for p in self.card_crls.split(",") if p.strip()]
        return bundle, crls

    @field_validator("channel_limits")
    @classmethod
    def _channel_limits_parse(cls, value: str) -> str:
        try:
            parse_limits(value, threads=10)
        except ValueError as exc:
            raise ValueError(f"MYKEY_CHANNEL_LIMITS: {exc}") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in (p.strip() for p in value.split(",")):
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"MYKEY_TRUSTED_PROXIES: {item!r} is not an IP address or network (CIDR)"
                ) from None
        return value

    @model_validator(mode="after")
    def _fill_and_refuse_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = default_database_url()
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("MYKEY_SECRET_KEY must be set to a real secret in production")
        if self.challenge_key and len(self.challenge_key) < 32:
            raise ValueError("MYKEY_CHALLENGE_KEY must be at least 32 characters")
        if self.environment == "production" and not self.log_signing_key:
            raise ValueError("MYKEY_LOG_SIGNING_KEY must be set in production")
        if self.background == "workers" and self.database_url.startswith("sqlite"):
            raise ValueError(
                "MYKEY_BACKGROUND=workers needs PostgreSQL: on SQLite the serving process runs"
                " the background work (MYKEY_BACKGROUND=web)"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
