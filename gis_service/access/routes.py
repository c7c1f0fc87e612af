"""HTTP routes of identity and access: sign-in, tokens, who am I, user and key admin, the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from psycopg import AsyncConnection

from gis_service.access import admin, audit, sessions
from gis_service.access.accounts import list_accounts
from gis_service.access.audit import AuditContext
from gis_service.access.keys import list_keys
from gis_service.access.policy import (
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    Action,
    CurrentPrincipal,
    check_origin,
    requires,
)
from gis_service.access.principal import Principal
from gis_service.access.schemas import (
    AccountChange,
    AccountIn,
    AccountOut,
    AuditEntry,
    AuditPage,
    KeyCreated,
    KeyIn,
    KeyOut,
    Me,
    SessionResponse,
    TokenResponse,
)
from gis_service.access.sessions import Grant
from gis_service.access.state import AccessState, client_address, get_access, request_id
from gis_service.errors import Forbidden, InvalidRequest, Unauthorized
from gis_service.routers.deps import base_url, get_catalog, get_connection
from layers.catalog import Catalog

router = APIRouter(prefix="/api", tags=["access"])

Connection = Annotated[AsyncConnection, Depends(get_connection)]
Access = Annotated[AccessState, Depends(get_access)]
PasswordForm = Annotated[OAuth2PasswordRequestForm, Depends()]
NO_NUL = r"^[^\x00]*$"


def _context(request: Request, principal: Principal) -> AuditContext:
    return AuditContext.of(principal, client_address(request), request_id(request))


def _token_response(access: AccessState, grant: Grant) -> TokenResponse:
    return TokenResponse(
        access_token=grant.access_token,
        expires_in=access.settings.access_token_ttl_s,
        refresh_token=grant.refresh_token,
    )


def _set_cookies(request: Request, response: Response, access: AccessState, grant: Grant) -> None:
    secure = access.settings.cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    common = {"secure": secure, "samesite": "lax"}
    response.set_cookie(
        SESSION_COOKIE, grant.access_token, max_age=access.settings.access_token_ttl_s, httponly=True, **common
    )
    response.set_cookie(
        REFRESH_COOKIE,
        grant.refresh_token,
        max_age=access.settings.refresh_token_ttl_s,
        httponly=True,
        path="/api/auth",
        secure=secure,
        samesite="strict",
    )
    response.set_cookie(CSRF_COOKIE, grant.csrf or "", max_age=access.settings.refresh_token_ttl_s, **common)


SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong login or password, or an invalid or used refresh token"},
    403: {"description": "The request did not come from this service's origin (cross-site sign-in)"},
    429: {"description": "Too many failed attempts for this login or address: retry after `Retry-After` s"},
}


@router.post(
    "/auth/token", response_model=TokenResponse, summary="Sign in (OAuth2 password flow)", responses=SIGN_IN_ERRORS
)
async def token(request: Request, form: PasswordForm, conn: Connection, access: Access) -> TokenResponse:
    """Exchange a login and password for a short-lived bearer access token and a refresh token."""
    context = AuditContext("anonymous", "anonymous", client_address(request), request_id(request))
    grant = await sessions.sign_in(conn, access.settings, access.key, context, form.username, form.password)
    return _token_response(access, grant)


@router.post(
    "/auth/session",
    response_model=SessionResponse,
    summary="Sign in from the browser (cookies)",
    responses=SIGN_IN_ERRORS,
)
async def browser_session(
    request: Request, response: Response, form: PasswordForm, conn: Connection, access: Access
) -> SessionResponse:
    """Sign in and set httpOnly session cookies; writes must then send ``X-CSRF-Token``.
    Refused from another site's page (``Origin``), so no page can sign a visitor in to its account."""
    check_origin(request)
    context = AuditContext("anonymous", "anonymous", client_address(request), request_id(request))
    grant = await sessions.sign_in(
        conn, access.settings, access.key, context, form.username, form.password, browser=True
    )
    _set_cookies(request, response, access, grant)
    return SessionResponse(
        login=grant.account.login,
        role=grant.account.role,
        chief_id=grant.account.chief_id,
        csrf_token=grant.csrf or "",
        expires_in=access.settings.access_token_ttl_s,
    )


@router.post("/auth/refresh", response_model=TokenResponse, summary="Rotate a refresh token", responses=SIGN_IN_ERRORS)
async def refresh(
    request: Request,
    response: Response,
    conn: Connection,
    access: Access,
    refresh_token: Annotated[str | None, Form(description="The refresh token (or the browser's cookie)")] = None,
) -> TokenResponse:
    """Use a refresh token once: a new access token and a new refresh token come back."""
    from_cookie = refresh_token is None
    refresh_token = refresh_token or request.cookies.get(REFRESH_COOKIE)
    if not refresh_token:
        raise Unauthorized("send refresh_token (form field) or sign in again (POST /api/auth/token)")
    if from_cookie:
        check_origin(request)
        sent, cookie = request.headers.get(CSRF_HEADER), request.cookies.get(CSRF_COOKIE)
        if not sent or sent != cookie:
            raise Forbidden(
                f"CSRF check failed: send the {CSRF_HEADER} header with the value of the {CSRF_COOKIE} cookie"
            )
    context = AuditContext("anonymous", "anonymous", client_address(request), request_id(request))
    grant = await sessions.refresh(conn, access.settings, access.key, context, refresh_token)
    if from_cookie:
        _set_cookies(request, response, access, grant)
    return _token_response(access, grant)


@router.post(
    "/auth/logout",
    status_code=204,
    summary="Sign out (end the session)",
    responses={400: {"description": "No signed-in user session to end (API keys are revoked by an admin)"}},
)
async def logout(
    request: Request, response: Response, principal: CurrentPrincipal, conn: Connection, access: Access
) -> Response:
    """End the caller's session: its refresh token stops working, its access token on this worker at once
    (on other workers within ``token_cache_s``)."""
    if principal.session_id is None:
        raise InvalidRequest("only a signed-in user has a session to end (API keys are revoked by an admin)")
    await sessions.sign_out(conn, _context(request, principal), principal)
    access.cache.forget_session(principal.session_id)
    reply = Response(status_code=204)
    for name, path in ((SESSION_COOKIE, "/"), (REFRESH_COOKIE, "/api/auth"), (CSRF_COOKIE, "/")):
        reply.delete_cookie(name, path=path)
    return reply


@router.get("/auth/me", response_model=Me, summary="Who am I")
async def me(principal: CurrentPrincipal) -> Me:
    """The caller: anonymous, a user (role, chief), or a station or partner key; and how they authenticated."""
    return Me.of(principal)


@router.get("/admin/users", response_model=list[AccountOut], summary="List accounts (admin)")
async def users(conn: Connection, _: Principal = requires(Action.MANAGE_USERS)) -> list[AccountOut]:
    return [AccountOut.of(a) for a in await list_accounts(conn)]


@router.post("/admin/users", response_model=AccountOut, status_code=201, summary="Create an account (admin)")
async def add_user(
    request: Request, body: AccountIn, conn: Connection, principal: Principal = requires(Action.MANAGE_USERS)
) -> AccountOut:
    account = await admin.add_user(
        conn, _context(request, principal), body.login, body.role, body.password, body.chief_id
    )
    return AccountOut.of(account)


@router.patch("/admin/users/{login}", response_model=AccountOut, summary="Enable, disable or re-role (admin)")
async def change_user(
    request: Request,
    login: str,
    body: AccountChange,
    conn: Connection,
    principal: Principal = requires(Action.MANAGE_USERS),
) -> AccountOut:
    context = _context(request, principal)
    if body.enabled is None and body.role is None:
        raise InvalidRequest("send enabled (true/false) and/or role (with chief_id for a chief)")
    account = None
    if body.role is not None:
        account = await admin.set_role(conn, context, login, body.role, body.chief_id)
    if body.enabled is not None:
        account = await admin.set_enabled(conn, context, login, body.enabled)
    return AccountOut.of(account)  # type: ignore[arg-type]


@router.get("/admin/keys", response_model=list[KeyOut], summary="List API keys (admin)")
async def api_keys(conn: Connection, _: Principal = requires(Action.MANAGE_KEYS)) -> list[KeyOut]:
    return [KeyOut.of(k) for k in await list_keys(conn)]


@router.post("/admin/keys", response_model=KeyCreated, status_code=201, summary="Create an API key (admin)")
async def create_key(
    request: Request,
    body: KeyIn,
    conn: Connection,
    catalog: Annotated[Catalog, Depends(get_catalog)],
    principal: Principal = requires(Action.MANAGE_KEYS),
) -> KeyCreated:
    """Create a key; the answer holds the key itself, shown this once."""
    key, secret = await admin.create_key(
        conn,
        _context(request, principal),
        name=body.name,
        role=body.role,
        layers=body.layers,
        expires_at=body.expires_at,
        known_layers=catalog.ids,
    )
    return KeyCreated(**KeyOut.of(key).model_dump(), key=secret)


@router.delete("/admin/keys/{name}", response_model=KeyOut, summary="Revoke an API key (admin)")
async def revoke_key(
    request: Request, name: str, conn: Connection, principal: Principal = requires(Action.MANAGE_KEYS)
) -> KeyOut:
    """Revoke a key: refused from the next request on, on every worker."""
    return KeyOut.of(await admin.revoke_key(conn, _context(request, principal), name))


@router.get("/audit", response_model=AuditPage, summary="The audit log (admin)")
async def audit_log(
    request: Request,
    conn: Connection,
    actor: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Only this actor (login, key:NAME, cli:USER)")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description="Only this action, e.g. auth.login")
    ] = None,
    since: Annotated[dt.datetime | None, Query(description="From this time on (ISO 8601)")] = None,
    until: Annotated[dt.datetime | None, Query(description="Before this time (ISO 8601)")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="Entries older than this id (paging)")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
    _: Principal = requires(Action.READ_AUDIT),
) -> AuditPage:
    """Entries newest first; follow ``next`` for older ones."""
    rows = await audit.list_entries(
        conn, actor=actor, action=action, since=since, until=until, before_id=before, limit=limit
    )
    next_url = None
    if len(rows) == limit:
        query = urlencode({**request.query_params, "before": rows[-1]["id"]})
        next_url = f"{base_url(request)}{request.url.path}?{query}"
    return AuditPage(entries=[AuditEntry(**row) for row in rows], next=next_url)
