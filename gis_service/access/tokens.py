"""Signed bearer access tokens (JWT, HS256 through PyJWT), opaque refresh tokens, the token cache.

An access token is short-lived and carries ``sub`` (login), ``role``, ``chief``, ``sid``
(its sign-in session), ``exp``, ``iat`` and ``jti``; a browser session's token also carries
``csrf``, the value the ``X-CSRF-Token`` header must repeat on unsafe requests. Verifying
a token costs a signature check and a database look-up of its session, so each worker keeps
the resolved principal of a token until the token expires (bounded in entries): on the hot
path a token costs a dictionary look-up and a clock comparison. An access change (sign-out,
disabled account, revoked key: ``gis_service.access.revocation``) drops every entry at
once on every worker; while that listener is not connected, entries last ``token_cache_s``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from gis_service.access import revocation
from gis_service.access.principal import Principal
from gis_service.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "ecomap"


def opaque_token() -> str:
    """A random token of 256 bits (refresh tokens, CSRF tokens)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What is stored of a random token: its SHA-256 (the token has 256 bits: no salt or KDF needed)."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class AccessClaims:
    """The verified claims of an access token."""

    login: str
    role: str
    chief_id: int | None
    session_id: str
    expires_at: float
    csrf: str | None


def issue_access_token(
    key: bytes, *, login: str, role: str, chief_id: int | None, session_id: str, ttl_s: int, csrf: str | None = None
) -> tuple[str, int]:
    """A signed access token and its expiry (Unix seconds)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": login,
        "role": role,
        "chief": chief_id,
        "sid": session_id,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if csrf is not None:
        claims["csrf"] = csrf
    return jwt.encode(claims, key, algorithm=ALGORITHM), now + ttl_s


def verify_access_token(key: bytes, token: str) -> AccessClaims:
    """The claims of a valid token; Unauthorized (401) when it is forged, malformed or expired."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "role", "sid", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized(
            "the access token has expired: refresh it (POST /api/auth/refresh) or sign in again"
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the access token is not valid ({exc}): sign in again (POST /api/auth/token)") from exc
    chief = claims.get("chief")
    return AccessClaims(
        login=str(claims["sub"]),
        role=str(claims["role"]),
        chief_id=chief if isinstance(chief, int) else None,
        session_id=str(claims["sid"]),
        expires_at=float(claims["exp"]),
        csrf=claims.get("csrf"),
    )


@dataclass
class _Entry:
    principal: Principal
    expires_at: float  # the token's own expiry (wall clock)
    fresh_until: float  # without the change listener: re-check session and account after this (monotonic)
    generation: int  # revocation.generation when verified: any access change since makes it stale


class TokenCache:
    """Principals of verified tokens (and API keys), per worker, until an access change."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}

    def get(self, token: str) -> Principal | None:
        """The cached principal of a token still fresh and unexpired, else None."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if (
            entry.generation != revocation.generation
            or time.time() >= entry.expires_at
            or (time.monotonic() >= entry.fresh_until and not revocation.listening())
        ):
            del self._entries[token]
            return None
        return entry.principal

    def put(self, token: str, principal: Principal, expires_at: float, generation: int) -> None:
        """Keep a principal verified when ``revocation.generation`` was ``generation`` (read
        before the database was asked: a change notified meanwhile leaves it uncached)."""
        if self.ttl_s <= 0 or generation != revocation.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; a refill costs one query per token
        self._entries[token] = _Entry(principal, expires_at, time.monotonic() + self.ttl_s, generation)

    def forget_session(self, session_id: str) -> None:
        """Drop the tokens of a session signed out on this worker (others notice within ttl_s)."""
        for token in [t for t, e in self._entries.items() if e.principal.session_id == session_id]:
            del self._entries[token]
