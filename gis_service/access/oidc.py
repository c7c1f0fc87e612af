"""Single sign-on with an OpenID Connect provider: the authorization-code flow with PKCE (authlib).

Off while ``ECOMAP_OIDC__ISSUER`` is unset. The provider's endpoints and keys come from its
``/.well-known/openid-configuration`` (read at the first sign-on, retried while it fails).

1. ``GET /api/auth/sso/login``: :func:`begin` has authlib make the authorization URL with a
   fresh ``state``, ``nonce`` and PKCE verifier (S256 challenge); the three are kept in the
   ``ecomap_sso`` cookie, signed with the service's token key, httpOnly, valid 10 minutes,
   sent only to ``/api/auth/sso``.
2. The provider signs the person in and sends the browser to ``/api/auth/sso/callback``:
   :func:`finish` checks the returned ``state`` against the cookie, exchanges the code with
   the verifier, and has authlib verify the ID token (signature by the provider's JWKS,
   ``iss``, ``aud``, ``exp``, ``nonce``).
3. The role comes from the claim ``role_claim`` (a string, or a list of strings; dots reach
   into objects, e.g. ``realm_access.roles``), through ``role_map`` (EcoMap role names map to
   themselves). A sign-on whose claim maps to no EcoMap role is **refused with 403** (naming
   the values seen), never given a default role: a provider's new or misspelt role must not
   open the internal layers. Of several mapped roles the strongest wins (admin, data_manager,
   analyst, chief, planner). A chief's record is the claim ``chief_claim``, else the one an
   administrator linked to the account.
4. :func:`link_account` finds the local account of (issuer, subject) in ``account_identity``,
   or creates one (login: the ``preferred_username`` when free and well-formed, else
   ``sso-<hash>``; no password), and keeps its role in step with the provider. The route then
   opens a normal browser session (cookies and CSRF token, as a password sign-in).

Every outcome is audited as ``auth.login`` with ``method: sso`` (failures with the reason).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import Request
from joserfc.errors import JoseError
from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation

from gis_service.access import accounts
from gis_service.access.accounts import Account, create_account, get_account
from gis_service.access.principal import USER_ROLES, Role
from gis_service.errors import Forbidden, InvalidRequest, NotFound, ProviderUnavailable, Unauthorized
from gis_service.settings import OidcSettings

FLOW_COOKIE = "ecomap_sso"
FLOW_COOKIE_PATH = "/api/auth/sso"
FLOW_TTL_S = 600
NO_PASSWORD = "!sso"  # noqa: S105 - not an argon2 hash: no password signs in to an account made by SSO
ROLE_STRENGTH = (Role.ADMIN, Role.DATA_MANAGER, Role.ANALYST, Role.CHIEF, Role.PLANNER)
_FLOW_ALGORITHM = "HS256"
_FLOW_AUDIENCE = "ecomap-sso-flow"
START_AGAIN = "start again from the map's “Sign in with SSO” (GET /api/auth/sso/login)"


@dataclass(frozen=True)
class Identity:
    """A person the provider vouched for: the verified claims of their ID token."""

    issuer: str
    subject: str
    username: str | None
    claims: dict[str, Any]

    @classmethod
    def of(cls, claims: dict[str, Any]) -> Identity:
        username = claims.get("preferred_username") or claims.get("email")
        return cls(str(claims["iss"]), str(claims["sub"]), str(username) if username else None, dict(claims))

    @property
    def actor(self) -> str:
        """How the audit log names the person before (or without) an account."""
        return accounts.recordable_login(self.username) if self.username else f"sso:{self.subject}"


@dataclass
class OidcClient:
    """The configured provider (one per app, made on first use)."""

    settings: OidcSettings
    app: StarletteOAuth2App

    @property
    def issuer(self) -> str:
        return str(self.settings.issuer)


def make_client(settings: OidcSettings) -> OidcClient:
    issuer = str(settings.issuer).rstrip("/")
    registry = OAuth()
    app = registry.register(
        "ecomap",
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value() if settings.client_secret else None,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.scopes, "code_challenge_method": "S256", "timeout": settings.timeout_s},
    )
    return OidcClient(settings, app)


def get_oidc(request: Request) -> OidcClient:
    """The app's provider client; 404 saying how to configure it when single sign-on is off."""
    settings: OidcSettings = request.app.state.settings.oidc
    if not settings.issuer or not settings.client_id:
        raise NotFound(
            "single sign-on is not configured on this service: set ECOMAP_OIDC__ISSUER and "
            "ECOMAP_OIDC__CLIENT_ID (and ECOMAP_OIDC__CLIENT_SECRET); sign in with a password instead"
        )
    client = getattr(request.app.state, "oidc", None)
    if client is None:
        client = request.app.state.oidc = make_client(settings)
    return client


def _unreachable(client: OidcClient, exc: Exception) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"the OpenID provider {client.issuer} cannot be reached or answered badly ({type(exc).__name__}: {exc});"
        " try again later, or sign in with a password"
    )


def safe_next(path: str | None) -> str:
    """Where to send the browser after signing in: a path on this site only (never another host)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


async def _check_issuer(client: OidcClient) -> None:
    """The discovery document must name the configured issuer (OpenID Connect Discovery §4.3):
    ID tokens are checked against it, so a document served for another issuer is refused."""
    issuer = str((await client.app.load_server_metadata()).get("issuer", "")).rstrip("/")
    if issuer != client.issuer.rstrip("/"):
        raise ProviderUnavailable(
            f"the OpenID provider's discovery document names the issuer {issuer!r}, not {client.issuer!r}:"
            " set ECOMAP_OIDC__ISSUER to the provider's issuer exactly"
        )


async def begin(client: OidcClient, key: bytes, redirect_uri: str, next_path: str | None) -> tuple[str, str]:
    """The provider's authorization URL and the signed flow cookie to set with the redirect."""
    try:
        await _check_issuer(client)
        flow = await client.app.create_authorization_url(redirect_uri)
    except (httpx2.HTTPError, ValueError, RuntimeError) as exc:  # unreachable, not JSON, no endpoint
        client.app.server_metadata.pop("_loaded_at", None)  # read the discovery document again next time
        raise _unreachable(client, exc) from exc
    cookie = jwt.encode(
        {
            "aud": _FLOW_AUDIENCE,
            "exp": int(time.time()) + FLOW_TTL_S,
            "state": flow["state"],
            "nonce": flow["nonce"],
            "verifier": flow["code_verifier"],
            "redirect": redirect_uri,
            "next": safe_next(next_path),
        },
        key,
        algorithm=_FLOW_ALGORITHM,
    )
    return flow["url"], cookie


def read_flow(key: bytes, cookie: str | None) -> dict[str, Any]:
    """The flow a sign-on started in this browser; 400 when there is none (or it expired, or was forged)."""
    if not cookie:
        raise InvalidRequest(
            f"no single sign-on is under way in this browser (the {FLOW_COOKIE} cookie is missing): {START_AGAIN}"
        )
    try:
        return jwt.decode(cookie, key, algorithms=[_FLOW_ALGORITHM], audience=_FLOW_AUDIENCE)
    except jwt.ExpiredSignatureError:
        raise InvalidRequest(f"the sign-on took longer than {FLOW_TTL_S // 60} minutes: {START_AGAIN}") from None
    except jwt.InvalidTokenError:
        raise InvalidRequest(f"the sign-on state cookie is not valid: {START_AGAIN}") from None


async def finish(client: OidcClient, flow: dict[str, Any], params: dict[str, str]) -> Identity:
    """Check the provider's answer (query parameters of the callback) and the ID token it issues."""
    error = params.get("error")
    if error:
        description = params.get("error_description") or "no description"
        if error in ("access_denied", "consent_required", "login_required", "interaction_required"):
            raise Forbidden(f"the provider did not sign you in ({error}: {description}); {START_AGAIN}")
        raise Unauthorized(f"the provider answered with an error ({error}: {description}); {START_AGAIN}")
    state, code = params.get("state"), params.get("code")
    if not state or not hmac.compare_digest(state, str(flow["state"])):
        raise InvalidRequest(
            "the sign-on state does not match the one this browser started (a stale, replayed or forged"
            f" callback): {START_AGAIN}"
        )
    if not code:
        raise InvalidRequest(f"the provider's answer has no authorization code: {START_AGAIN}")
    try:
        token = await client.app.fetch_access_token(
            redirect_uri=flow["redirect"], code=code, code_verifier=flow["verifier"]
        )
        claims = await client.app.parse_id_token(token, nonce=flow["nonce"])
    except (httpx2.HTTPError, RuntimeError) as exc:
        raise _unreachable(client, exc) from exc
    except (AuthlibBaseError, JoseError, ValueError) as exc:
        raise Unauthorized(f"the provider's tokens were refused ({type(exc).__name__}: {exc}); {START_AGAIN}") from exc
    if claims is None:
        raise Unauthorized(f"the provider sent no ID token (is 'openid' in ECOMAP_OIDC__SCOPES?); {START_AGAIN}")
    return Identity.of(claims)


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def map_role(settings: OidcSettings, claims: dict[str, Any]) -> Role:
    """The EcoMap role of the claims: the strongest one the role claim maps to; 403 when none."""
    raw = _claim(claims, settings.role_claim)
    values = [raw] if isinstance(raw, str) else [v for v in raw if isinstance(v, str)] if isinstance(raw, list) else []
    known = {r.value for r in USER_ROLES}
    mapped = {settings.role_map.get(v, v if v in known else None) for v in values} - {None}
    for role in ROLE_STRENGTH:
        if role.value in mapped:
            return role
    seen = ", ".join(repr(v) for v in values) or "none"
    raise Forbidden(
        f"the provider gives no EcoMap role in the claim {settings.role_claim!r} (values: {seen});"
        f" EcoMap roles: {', '.join(sorted(known))}; ECOMAP_OIDC__ROLE_MAP maps the provider's role names to them"
    )


def _chief_claim(settings: OidcSettings, claims: dict[str, Any]) -> int | None:
    value = _claim(claims, settings.chief_claim)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _login_for(identity: Identity) -> tuple[str | None, str]:
    """The login a new account gets: the provider's user name when well-formed, and a fallback."""
    digest = hashlib.sha256(f"{identity.issuer}\n{identity.subject}".encode()).hexdigest()[:12]
    wanted = accounts.normalise_login(identity.username or "")
    return (wanted if accounts.LOGIN_PATTERN.match(wanted) else None), f"sso-{digest}"


async def link_account(conn: AsyncConnection, settings: OidcSettings, identity: Identity) -> Account:
    """The local account of an identity, created at its first sign-on, its role in step with the provider.

    403 for no EcoMap role in the claims, a disabled account, or a chief without a chief record
    (claim or administrator's link)."""
    role = map_role(settings, identity.claims)
    account = await _linked_account(conn, identity)
    chief_id = _chief_claim(settings, identity.claims)
    if role == Role.CHIEF and chief_id is None and account is not None:
        chief_id = account.chief_id  # linked by an administrator (`ecomap users set-role … --chief ID`)
    if role == Role.CHIEF and chief_id is None:
        raise Forbidden(
            "the provider says role 'chief' but names no chief record (the ECOMAP_OIDC__CHIEF_CLAIM claim):"
            " ask an administrator to link the account to a chief (`ecomap users set-role LOGIN --role chief"
            " --chief ID`) or the provider to send it"
        )
    if role != Role.CHIEF:
        chief_id = None
    if account is None:
        try:
            account = await _create(conn, identity, role, chief_id)
        except UniqueViolation:  # the same person's first sign-on in another tab won the race
            account = await _linked_account(conn, identity)
            if account is None:
                raise
    if not account.enabled:
        raise Forbidden(f"the account {account.login!r} is disabled: ask an administrator to enable it")
    if (account.role, account.chief_id) != (role.value, chief_id):
        try:
            account = await accounts.set_role(conn, account.login, role.value, chief_id)
        except InvalidRequest as exc:  # a chief id the database does not know
            raise Forbidden(f"the provider's chief record cannot be used: {exc}") from None
    await conn.execute(
        "UPDATE account_identity SET last_sign_in_at = now() WHERE issuer = %s AND subject = %s",
        [identity.issuer, identity.subject],
    )
    return account


async def _linked_account(conn: AsyncConnection, identity: Identity) -> Account | None:
    row = await (
        await conn.execute(
            "SELECT a.login FROM account_identity i JOIN account a ON a.id = i.account_id"
            " WHERE i.issuer = %s AND i.subject = %s",
            [identity.issuer, identity.subject],
        )
    ).fetchone()
    return await get_account(conn, row[0]) if row else None


async def _create(conn: AsyncConnection, identity: Identity, role: Role, chief_id: int | None) -> Account:
    wanted, fallback = _login_for(identity)
    account = None
    async with conn.transaction():
        for login in [wanted, fallback] if wanted else [fallback]:
            try:
                async with conn.transaction():
                    account = await create_account(conn, login, role.value, NO_PASSWORD, chief_id)
                break
            except InvalidRequest as exc:
                if "is taken" in str(exc):
                    continue  # a local account of that name is someone else's: never linked by name
                raise Forbidden(f"the provider's chief record cannot be used: {exc}") from None
        if account is None:
            raise Forbidden(f"no free login for this identity (tried {wanted!r}, {fallback!r}): ask an administrator")
        await conn.execute(
            "INSERT INTO account_identity (issuer, subject, account_id) VALUES (%s, %s, %s)",
            [identity.issuer, identity.subject, account.id],
        )
    return account
