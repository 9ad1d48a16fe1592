"""Settings from the environment (prefix MYKEY_), with safe embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-not-a-secret"  # noqa: S105 -- a marker that production refuses


def default_database_url() -> str:
    """The embedded default: a SQLite file under ./var of the working directory."""
    return f"sqlite:///{Path.cwd() / 'var' / 'mykey.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MYKEY_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = ""
    secret_key: str = DEV_SECRET
    timezone: str = "Asia/Tokyo"
    # Card proofs: a PEM bundle of the CAs whose cards are accepted, and CRL files (comma-
    # separated). Development falls back to the simulator CA in var/cards (`mykey cards new-ca`).
    card_trust_anchors: str = ""
    card_crls: str = ""
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

    def card_anchor_paths(self) -> tuple[Path | None, list[Path]]:
        bundle = Path(self.card_trust_anchors) if self.card_trust_anchors else None
        if bundle is None and self.environment != "production":
            candidate = Path.cwd() / "var" / "cards" / "ca.pem"
            bundle = candidate if candidate.exists() else None
        crls = [Path(p.strip()) for p in self.card_crls.split(",") if p.strip()]
        return bundle, crls

    @model_validator(mode="after")
    def _fill_and_refuse_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = default_database_url()
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("MYKEY_SECRET_KEY must be set to a real secret in production")
        if self.environment == "production" and not self.log_signing_key:
            raise ValueError("MYKEY_LOG_SIGNING_KEY must be set in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
