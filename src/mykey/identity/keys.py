"""API keys for terminals, provider staff, municipality staff and council operators.

A key is `mk_<id>_<secret>`: shown once when created, kept only as the SHA-256 of the secret.
A terminal's or provider staff's key is bound to one provider; a municipality staff key to
one municipality; an operator key to the council.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine, select

from mykey.db import UnitOfWork
from mykey.errors import ErrorKind, MyKeyError, invalid, not_found
from mykey.identity import auth_cache
from mykey.identity.models import ApiKey, Provider
from mykey.municipalities.codes import parse_code


class Role(StrEnum):
    TERMINAL = "terminal"  # a counter terminal or lending machine of one provider
    PROVIDER_STAFF = "provider_staff"  # staff of one provider (links users)
    MUNICIPALITY_STAFF = "municipality_staff"  # staff of one municipality
    OPERATOR = "operator"  # the operating council
    PARTNER = "partner"  # a partner company (bound to it in points.partner_keys)


PROVIDER_BOUND = frozenset({Role.TERMINAL, Role.PROVIDER_STAFF})


@dataclass(frozen=True)
class Principal:
    """Who is calling, as their key says."""

    key_id: str
    role: Role
    provider_id: str | None
    municipality: str | None

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.key_id}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def bad_key() -> MyKeyError:
    return MyKeyError(
        "invalid_api_key",
        ErrorKind.UNAUTHENTICATED,
        "The API key is missing, unknown or revoked.",
        "API キーがないか、不明か、無効化されています。",
    )


def create_key(
    uow: UnitOfWork,
    *,
    role: Role | str,
    label: str,
    provider_id: str | None = None,
    municipality: str | None = None,
) -> tuple[str, Principal]:
    """A new key; returns the key itself (show it once) and what it stands for."""
    try:
        role = Role(role)
    except ValueError:
        raise invalid(
            "invalid_role",
            f"Unknown role {role!r}; one of {', '.join(r.value for r in Role)}.",
            f"役割 {role!r} は不明です。",
        ) from None
    if (role in PROVIDER_BOUND) != (provider_id is not None):
        raise invalid(
            "invalid_key_binding",
            "Terminal and provider staff keys belong to one provider; other keys to none.",
            "端末・事業者職員のキーは一つの事業者に属します。",
        )
    if (role is Role.MUNICIPALITY_STAFF) != (municipality is not None):
        raise invalid(
            "invalid_key_binding",
            "A municipality staff key belongs to one municipality.",
            "自治体職員のキーは一つの自治体に属します。",
        )
    if municipality is not None:
        municipality = parse_code(municipality)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)

    def body() -> Principal:
        if provider_id is not None and uow.session.get(Provider, provider_id) is None:
            raise not_found(
                "unknown_provider",
                f"There is no provider {provider_id}.",
                f"事業者 {provider_id} は登録されていません。",
            )
        uow.session.add(
            ApiKey(
                id=key_id,
                secret_hash=_hash(secret),
                role=role.value,
                provider_id=provider_id,
                municipality=municipality,
                label=label[:200],
                created_at=uow.now(),
                revoked_at=None,
            )
        )
        uow.session.flush()
        return Principal(key_id, role, provider_id, municipality)

    principal = uow.run(body)
    return f"mk_{key_id}_{secret}", principal


def _parts(presented: str) -> tuple[str, str]:
    parts = presented.split("_", 2) if presented.startswith("mk_") else []
    if len(parts) != 3:
        raise bad_key()
    return parts[1], _hash(parts[2])


def known_principal(engine: Engine, presented: str) -> Principal | None:
    """The principal of a presented key verified in the last few seconds (`auth_cache`), with
    no statement; None if the cache does not know the key; `invalid_api_key` for a malformed
    key or a secret that is not the known key's. For a caller that must not block (the web's
    event loop): on None it calls `authenticate`, which reads the database."""
    key_id, hashed = _parts(presented)
    cached = auth_cache.of(engine).get(key_id)
    if cached is None:
        return None
    if not hmac.compare_digest(cached[0], hashed):
        raise bad_key()
    return cached[1]


def authenticate(uow: UnitOfWork, presented: str) -> Principal:
    """The principal of a presented key, or `invalid_api_key`. A key verified in the last few
    seconds is answered from the process's cache, without a transaction (`auth_cache`)."""
    known = known_principal(uow.engine, presented)
    if known is not None:
        return known
    key_id, hashed = _parts(presented)
    cache = auth_cache.of(uow.engine)
    generation = cache.generation()

    def body() -> Principal:
        row = uow.session.get(ApiKey, key_id)
        if (
            row is None
            or row.revoked_at is not None
            or not hmac.compare_digest(row.secret_hash, hashed)
        ):
            raise bad_key()
        return Principal(row.id, Role(row.role), row.provider_id, row.municipality)

    principal = uow.read(body)
    cache.put(key_id, (hashed, principal), generation=generation)
    return principal


def revoke_key(uow: UnitOfWork, key_id: str) -> None:
    """End a key: at once in this process (its cached entry is dropped after the commit), within
    `MYKEY_AUTH_CACHE_SECONDS` in other serving processes."""

    def body() -> None:
        row = uow.session.get(ApiKey, key_id)
        if row is None:
            raise not_found("unknown_api_key", f"No key {key_id}.", f"キー {key_id} はありません。")
        if row.revoked_at is None:
            row.revoked_at = uow.now()
            uow.session.flush()

    uow.run(body)
    auth_cache.forget(uow.engine, key_id)  # after the commit: no request can read it unrevoked


@dataclass(frozen=True)
class KeyView:
    """A key as the council's console lists it (never its secret)."""

    id: str
    role: str
    label: str
    provider_id: str | None
    municipality: str | None
    created_at: datetime
    revoked_at: datetime | None


def list_keys(uow: UnitOfWork, *, limit: int = 200) -> list[KeyView]:
    """The most recent keys, newest first."""

    def body() -> list[KeyView]:
        rows = uow.session.scalars(
            select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id).limit(limit)
        )
        return [
            KeyView(
                r.id, r.role, r.label, r.provider_id, r.municipality, r.created_at, r.revoked_at
            )
            for r in rows
        ]

    return uow.read(body)
