"""API keys of machine clients: ``station`` (pushes monitoring data), ``partner`` (reads named layers).

A key is 256 random bits shown once at creation; only its SHA-256 is stored. Every keyed
request looks the hash up (one indexed query), so expiry and revocation hold at once on
every worker.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import class_row

from gis_service.access.principal import KEY_ROLES, Principal, Role
from gis_service.access.tokens import token_hash
from gis_service.errors import InvalidRequest, NotFound, Unauthorized

KEY_PREFIX = "ek_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COLUMNS = "id, name, role, layers, prefix, created_at, created_by, expires_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    """A key as listed (never the key itself)."""

    id: int
    name: str
    role: str
    layers: list[str]
    prefix: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


def _check(name: str, role: str, layers: list[str], known_layers: Iterable[str] | None) -> None:
    if not NAME_PATTERN.match(name):
        raise InvalidRequest(f"invalid key name {name!r}: use 1-64 letters, digits and . _ -")
    if role not in {r.value for r in KEY_ROLES}:
        raise InvalidRequest(f"unknown key role {role!r}; key roles: {', '.join(r.value for r in KEY_ROLES)}")
    if role == Role.PARTNER and not layers:
        raise InvalidRequest("a partner key needs the layers it may read (--layers a,b)")
    if role == Role.STATION and layers:
        raise InvalidRequest("station keys push data and read no layers: leave --layers out")
    if known_layers is not None:
        known = set(known_layers)
        unknown = [layer for layer in layers if layer not in known]
        if unknown:
            raise InvalidRequest(f"unknown layers {', '.join(unknown)}; valid layers: {', '.join(sorted(known))}")


async def create_key(
    conn: AsyncConnection,
    *,
    name: str,
    role: str,
    created_by: str,
    layers: list[str] | None = None,
    expires_at: dt.datetime | None = None,
    known_layers: Iterable[str] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the secret key (shown once, not stored)."""
    layers = sorted(set(layers or []))
    _check(name, role, layers, known_layers)
    if expires_at is not None and expires_at <= dt.datetime.now(dt.UTC):
        raise InvalidRequest(f"the expiry {expires_at.isoformat()} is in the past")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(
            "INSERT INTO api_key (name, role, layers, key_hash, prefix, created_by, expires_at)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}",
            [name, role, layers, token_hash(secret), secret[:10], created_by, expires_at],
        )
        key = await cur.fetchone()
    if key is None:
        raise InvalidRequest(f"a key named {name!r} exists; choose another name or revoke it first")
    return key, secret


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM api_key ORDER BY name")
        return await cur.fetchall()


async def revoke_key(conn: AsyncConnection, name: str) -> ApiKey:
    """Revoke a key now (refused from the next request on, on every worker)."""
    if not NAME_PATTERN.match(name):
        raise NotFound(f"no API key named {name[:100]!r} (see `ecomap keys list`)")
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(
            f"UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s RETURNING {_COLUMNS}",
            [name],
        )
        key = await cur.fetchone()
    if key is None:
        raise NotFound(f"no API key named {name!r} (see `ecomap keys list`)")
    return key


async def key_principal(conn: AsyncConnection, secret: str) -> Principal:
    """The principal of a presented key; Unauthorized when unknown, revoked or expired."""
    row = await (
        await conn.execute(
            "SELECT id, name, role, layers, revoked_at IS NOT NULL, expires_at IS NOT NULL AND expires_at <= now()"
            " FROM api_key WHERE key_hash = %s",
            [token_hash(secret)],
        )
    ).fetchone()
    if row is None:
        raise Unauthorized("the API key (X-API-Key) is not known: check it, or ask an admin for a key")
    key_id, name, role, layers, revoked, expired = row
    if revoked:
        raise Unauthorized(f"the API key {name!r} has been revoked: ask an admin for a new key")
    if expired:
        raise Unauthorized(f"the API key {name!r} has expired: ask an admin for a new key")
    return Principal(kind=role, name=name, role=Role(role), method="api_key", layers=frozenset(layers), key_id=key_id)
