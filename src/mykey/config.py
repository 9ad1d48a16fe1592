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

    @model_validator(mode="after")
    def _fill_and_refuse_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = default_database_url()
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("MYKEY_SECRET_KEY must be set to a real secret in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
