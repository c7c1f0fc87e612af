"""The one access policy: who the caller is (``current_principal``) and what they may do.

Every route asks this module: ``require(principal, action, resource)`` raises 401 (not
signed in, with ``WWW-Authenticate``) or 403 (signed in, not allowed, with the reason);
``can_read_layer`` and ``can_write`` answer without raising. Rules are data: roles per
action in ``ACTION_ROLES``, readers per layer access class in ``LAYER_READERS``. Which
class each layer and property has is data (the catalog's ``access`` keys); the layer and
property decisions every data route asks are in ``gis_service.access.layer_rules``, built
on ``LAYER_READERS``.

Per-feature scopes (``feature_scope``): the ``scopes`` of ``gis_service/access/rules.yaml``
give a role an area — a partner key's shared area, a chief's jurisdiction — and the layers
it scopes. A caller of the role then reads those layers' features only inside the area, or
their non-public properties only for features inside it (null elsewhere). The scope is a
``FeatureScope`` (``gis_service.access.scopes``): the area (bound as a parameter, EWKB) and the
SQL that every feature query puts in place of a layer's table (``FeatureScope.source``): OGC
items, search, exports, revisions and diffs, the zone check's overlaps, chiefs, the river
network, station status, and tiles (``tiles.engine``: the tile cache keeps a variant per scope,
``Cache-Control: private``). Areas are read once per worker and kept
until an access change is notified (or ``token_cache_s`` passes without the listener).

Credentials, first found wins: ``X-API-Key`` (machine clients), ``Authorization: Bearer``
(API clients), the ``ecomap_session`` cookie (the browser; unsafe methods must come from this
service's origin when they name one, and repeat the ``ecomap_csrf`` cookie in an
``X-CSRF-Token`` header, checked against the signed token).
Credentials that are present but invalid answer 401, never anonymous.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from psycopg import AsyncConnection
from starlette.requests import cookie_parser

from gis_service.access import revocation
from gis_service.access.keys import key_principal
from gis_service.access.principal import ANONYMOUS, USER_ROLES, Principal, Role
from gis_service.access.scopes import FeatureScope
from gis_service.access.sessions import session_principal
from gis_service.access.state import AccessState, get_access
from gis_service.access.tokens import verify_access_token
from gis_service.db import connection
from gis_service.errors import Forbidden, Unauthorized
from layers.catalog import Catalog

SESSION_COOKIE = "ecomap_session"
REFRESH_COOKIE = "ecomap_refresh"
CSRF_COOKIE = "ecomap_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Action(StrEnum):
    """What a principal may be asked to be allowed to do."""

    READ_LAYER = "layer:read"
    WRITE_LAYER = "layer:write"
    PUSH_OBSERVATIONS = "observations:push"
    MANAGE_USERS = "users:manage"
    MANAGE_KEYS = "keys:manage"
    READ_AUDIT = "audit:read"


ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.WRITE_LAYER: frozenset({Role.DATA_MANAGER, Role.ADMIN}),
    Action.PUSH_OBSERVATIONS: frozenset({Role.STATION}),
    Action.MANAGE_USERS: frozenset({Role.ADMIN}),
    Action.MANAGE_KEYS: frozenset({Role.ADMIN}),
    Action.READ_AUDIT: frozenset({Role.ADMIN}),
}
"""Roles allowed each action that is not a layer read."""

LAYER_READERS: dict[str, frozenset[Role] | None] = {
    "public": None,  # everyone, anonymous included
    "internal": frozenset(USER_ROLES),
    "restricted": frozenset({Role.DATA_MANAGER, Role.ADMIN}),
}
"""Who reads a layer of each access class (None: anyone). Partner keys read their named layers."""


def can_read_layer(principal: Principal, layer: str, access_class: str = "public") -> bool:
    """Whether the principal may read a layer of the given access class (unknown classes: nobody)."""
    if access_class not in LAYER_READERS:
        return False
    readers = LAYER_READERS[access_class]
    if readers is None:
        return True
    if principal.role == Role.PARTNER:
        return layer in principal.layers
    return principal.role in readers


def can_write(principal: Principal, action: Action = Action.WRITE_LAYER) -> bool:
    """Whether the principal may perform a write (or administrative) action."""
    return principal.role is not None and principal.role in ACTION_ROLES.get(action, frozenset())


def allowed(principal: Principal, action: Action, resource: str | None = None) -> bool:
    """The decision for one action on one resource (a layer id for layer reads)."""
    if action == Action.READ_LAYER:
        return can_read_layer(principal, resource or "")
    return can_write(principal, action)


def require(principal: Principal, action: Action, resource: str | None = None) -> Principal:
    """Return the principal if allowed; else Unauthorized (anonymous) or Forbidden, saying why."""
    if allowed(principal, action, resource):
        return principal
    what = f"{action.value}" + (f" on {resource!r}" if resource else "")
    if principal.is_anonymous:
        raise Unauthorized(f"{what} needs you to sign in (POST /api/auth/token, or an X-API-Key)")
    roles = ", ".join(sorted(r.value for r in ACTION_ROLES.get(action, frozenset()))) or "no role"
    raise Forbidden(f"{what} is not allowed for {principal.actor} (role {principal.role}); it needs: {roles}")


def require_role(principal: Principal, roles: Iterable[Role], what: str) -> Principal:
    """Return the principal if its role is one of ``roles`` (rules other packages keep as data,
    e.g. the issue workflow); else Unauthorized (anonymous) or Forbidden, saying who may."""
    roles = frozenset(roles)
    if principal.role is not None and principal.role in roles:
        return principal
    if principal.is_anonymous and roles:
        raise Unauthorized(f"{what} needs you to sign in (POST /api/auth/token)")
    needed = ", ".join(sorted(r.value for r in roles)) or "nobody: the platform does it itself"
    raise Forbidden(f"{what} is not allowed for {principal.actor} (role {principal.role}); allowed: {needed}")


async def _bearer_principal(request: Request, access: AccessState, token: str, method: str) -> Principal:
    cache_key = f"{method} {token}"
    cached = access.cache.get(cache_key)
    if cached is None:
        generation = revocation.generation  # before the session is read: a change meanwhile is not cached over
        claims = verify_access_token(access.key, token)
        async with connection(request.app.state.pool) as conn:
            cached = await session_principal(conn, claims.login, claims.session_id, method, claims.csrf)
        access.cache.put(cache_key, cached, claims.expires_at, generation)
    return cached


async def _key_principal(request: Request, access: AccessState, secret: str) -> Principal:
    cache_key = f"key {secret}"
    cached = access.cache.get(cache_key)
    if cached is None:
        generation = revocation.generation
        async with connection(request.app.state.pool) as conn:
            cached, expires_at = await key_principal(conn, secret)
        access.cache.put(cache_key, cached, expires_at, generation)
    return cached


def check_origin(request: Request) -> None:
    """Refuse a browser request sent from another site (its ``Origin`` is not this service's).

    Requests without ``Origin`` (curl, API clients, same-origin GETs) pass; the service's
    origin is the request's own scheme and host, or ``ECOMAP_PUBLIC_URL`` behind a proxy."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    public = request.app.state.settings.public_url
    if public:
        parts = urlsplit(public)
        own.add(f"{parts.scheme}://{parts.netloc}")
    if origin.rstrip("/") not in own:
        raise Forbidden(f"cross-site request refused: Origin {origin!r} is not this service ({', '.join(sorted(own))})")


def _check_csrf(request: Request, principal: Principal) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = principal.csrf or ""
    if not (sent and expected and hmac.compare_digest(sent, expected) and hmac.compare_digest(sent, cookie)):
        raise Forbidden(
            f"CSRF check failed: a {request.method} signed in by cookie must send the {CSRF_HEADER} header"
            f" with the value of the {CSRF_COOKIE} cookie"
        )


async def resolve_principal(request: Request) -> Principal:
    """Who is asking, from the request's credentials (see the module docstring)."""
    access = get_access(request)
    api_key = request.headers.get("x-api-key")
    if api_key:
        return await _key_principal(request, access, api_key)
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <access token>'")
        return await _bearer_principal(request, access, token.strip(), "bearer")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await _bearer_principal(request, access, cookie, "cookie")
        if request.method not in SAFE_METHODS:
            check_origin(request)
            _check_csrf(request, principal)
        return principal
    return ANONYMOUS


_BEARER_KEYS: dict[bytes, str] = {}
"""Token-cache keys of raw ``Authorization`` header values (a look-up instead of decoding and
splitting the header on every tile): only a key, the cache still decides whether it is valid."""


def cached_principal(
    app_state: Any, api_key: bytes | None, authorization: bytes | None, cookie: bytes | None
) -> Principal | None:
    """The tile hot path's look-up: the principal of already verified credentials, straight from
    the token cache (raw header values as the ASGI scope holds them, first found wins as in
    ``resolve_principal``), or None when they must be resolved in full (first use, expiry,
    an access change, or anything but a plain GET's credentials)."""
    access = getattr(app_state, "access", None)
    if access is None:
        return None
    if api_key is not None:
        return access.cache.get(f"key {api_key.decode('latin-1')}")
    if authorization is not None:
        key = _BEARER_KEYS.get(authorization)
        if key is None:
            scheme, _, token = authorization.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            if len(_BEARER_KEYS) >= 4096:  # bounded: a worker sees a few tokens per signed-in user
                _BEARER_KEYS.clear()
            key = _BEARER_KEYS[authorization] = f"bearer {token.strip()}"
        return access.cache.get(key)
    if cookie is not None:
        session = cookie_parser(cookie.decode("latin-1")).get(SESSION_COOKIE)
        return access.cache.get(f"cookie {session}") if session else None
    return None


BEARER_SCHEME = OAuth2PasswordBearer(
    tokenUrl="/api/auth/token", auto_error=False, description="Access token from POST /api/auth/token"
)
API_KEY_SCHEME = APIKeyHeader(name="X-API-Key", auto_error=False, description="Key of a station or partner client")


async def current_principal(
    request: Request,
    _bearer: Annotated[str | None, Depends(BEARER_SCHEME)] = None,  # declared for OpenAPI ("Authorize" in /docs)
    _api_key: Annotated[str | None, Depends(API_KEY_SCHEME)] = None,
) -> Principal:
    """FastAPI dependency: the request's principal, resolved once per request."""
    cached = getattr(request.state, "principal", None)
    if cached is None:
        cached = await resolve_principal(request)
        request.state.principal = cached
    return cached


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def requires(action: Action):
    """A dependency allowing only principals that may perform ``action`` (e.g. admin routes)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        return require(principal, action)

    return Depends(dependency)


AREA_FRESH_S = 10.0
"""How long an area read is kept while the access change listener is not connected."""
_AREAS: dict[tuple, tuple[float, FeatureScope | None]] = {}
"""Scopes read (area kind and owner -> (read at, scope)), per worker; cleared when access changes."""


def forget_scopes() -> None:
    """Drop every area read (an access change was notified)."""
    _AREAS.clear()


revocation.on_change(forget_scopes)

_scope_rules: Callable[[], Any] | None = None
"""The endpoint rules' loader (``endpoint_rules.rules``), registered by that module, which
imports this one (so this one cannot import it)."""


def use_scope_rules(loader: Callable[[], Any]) -> None:
    """Register where the per-feature scope rules come from (``access/rules.yaml``)."""
    global _scope_rules
    _scope_rules = loader


async def _area(conn: AsyncConnection, catalog: Catalog, area: str, principal: Principal) -> bytes | None:
    if area == "key_area":
        cursor = await conn.execute("SELECT ST_AsEWKB(area) FROM api_key WHERE id = %s", [principal.key_id])
    else:  # jurisdiction
        from gis_service.services.chiefs import jurisdiction_area_sql  # services import the policy

        cursor = await conn.execute(jurisdiction_area_sql(catalog), {"chief": principal.chief_id})
    row = await cursor.fetchone()
    return bytes(row[0]) if row is not None and row[0] is not None else None


SCOPED_ROLES = frozenset({Role.PARTNER, Role.CHIEF})


async def feature_scope(
    catalog: Catalog, principal: Principal, connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
) -> FeatureScope | None:
    """The caller's per-feature scope, None when its role has none (or a partner key has no
    area). The area is read through ``connect()`` only when this worker does not hold it: kept
    until an access change is notified (or for ``AREA_FRESH_S`` while the change listener is down)."""
    if principal.role not in SCOPED_ROLES:
        return None
    if _scope_rules is None:
        raise RuntimeError("the scope rules are not loaded: import gis_service.access.endpoint_rules first")
    role = principal.role.value  # type: ignore[union-attr]
    rule = _scope_rules().scopes.get(role)  # type: ignore[call-overload]
    if rule is None:
        return None
    subject = principal.key_id if rule.area == "key_area" else principal.chief_id
    key = (rule.area, subject)
    found = _AREAS.get(key)
    if found is None or (not revocation.listening() and time.monotonic() - found[0] > AREA_FRESH_S):
        generation = revocation.generation
        async with connect() as conn:
            area = await _area(conn, catalog, rule.area, principal)
        scope = None  # a partner key without an area reads its layers whole
        if area is not None or rule.area != "key_area":
            digest = hashlib.blake2b(area or b"", digest_size=6).hexdigest()
            features = None if rule.features == "all" else frozenset(rule.features)
            scope = FeatureScope(f"{role}:{subject}:{digest}", area, features, frozenset(rule.fields))
        found = (time.monotonic(), scope)
        if generation == revocation.generation:  # not over a change notified meanwhile
            if len(_AREAS) >= 4096:
                _AREAS.clear()
            _AREAS[key] = found
    return found[1]


async def scope_on(conn: AsyncConnection, catalog: Catalog, principal: Principal) -> FeatureScope | None:
    """``feature_scope`` for a route that holds a connection already."""
    return await feature_scope(catalog, principal, lambda: nullcontext(conn))
