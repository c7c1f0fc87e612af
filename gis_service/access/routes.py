"""HTTP routes of identity and access: sign-in, tokens, who am I, user and key admin, the audit log."""

from __future__ import annotations

import datetime as dt
import html
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm
from psycopg import AsyncConnection

from gis_service.access import admin, audit, oidc, sessions
from gis_service.access.accounts import list_accounts
from gis_service.access.audit import AuditContext
from gis_service.access.keys import area_of, list_keys
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
from gis_service.errors import EcoMapError, Forbidden, InvalidRequest, NotFound, Unauthorized, status_for
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


def _cookie_secure(request: Request, access: AccessState) -> bool:
    secure = access.settings.cookie_secure
    return request.url.scheme == "https" if secure is None else secure


def _set_cookies(request: Request, response: Response, access: AccessState, grant: Grant) -> None:
    secure = _cookie_secure(request, access)
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


SSO_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "No sign-on under way in this browser, or its state does not match (start again)"},
    401: {"description": "The provider's answer or tokens were refused (error, bad code, ID token not valid)"},
    403: {"description": "Consent denied, no EcoMap role in the role claim, a chief without record, account disabled"},
    404: {"description": "Single sign-on is not configured (ECOMAP_OIDC__ISSUER unset)"},
    502: {"description": "The OpenID provider cannot be reached or answered badly"},
}


def _sso_failure(request: Request, error: EcoMapError) -> Response:
    """A failed sign-on: a page for a browser (it arrived by a redirect), else the JSON error."""
    if "text/html" not in request.headers.get("accept", ""):
        raise error
    message = html.escape(str(error))
    page = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>登录失败 · Sign-in failed</title></head><body>"
        f'<h1>统一身份认证登录失败 · Single sign-on failed</h1><p id="sso-error">{message}</p>'
        '<p><a href="/">返回地图 · Back to the map</a></p></body></html>'
    )
    reply = HTMLResponse(page, status_code=status_for(error))
    reply.delete_cookie(oidc.FLOW_COOKIE, path=oidc.FLOW_COOKIE_PATH)
    return reply


@router.get(
    "/auth/sso/login",
    status_code=302,
    summary="Sign in with single sign-on (redirects to the OpenID provider)",
    responses={302: {"description": "To the provider's sign-in page"}, **SSO_ERRORS},
)
async def sso_login(
    request: Request,
    access: Access,
    next: Annotated[
        str | None, Query(max_length=2000, pattern=NO_NUL, description="Path on this site to return to (default /)")
    ] = None,
) -> Response:
    """Start the authorization-code flow with PKCE: the browser goes to the provider, and comes back to
    ``/api/auth/sso/callback``. Keeps state, nonce and PKCE verifier in a signed 10-minute cookie."""
    try:
        client = oidc.get_oidc(request)
        redirect_uri = client.settings.redirect_url or f"{base_url(request)}/api/auth/sso/callback"
        url, flow = await oidc.begin(client, access.key, redirect_uri, next)
    except EcoMapError as exc:
        return _sso_failure(request, exc)
    reply = RedirectResponse(url, status_code=302)
    reply.set_cookie(
        oidc.FLOW_COOKIE,
        flow,
        max_age=oidc.FLOW_TTL_S,
        path=oidc.FLOW_COOKIE_PATH,
        httponly=True,
        secure=_cookie_secure(request, access),
        samesite="lax",  # the provider's redirect back is a top-level cross-site GET
    )
    return reply


@router.get(
    "/auth/sso/callback",
    status_code=303,
    summary="Where the OpenID provider sends the browser back (single sign-on)",
    responses={303: {"description": "Signed in (session cookies set): to the map"}, **SSO_ERRORS},
)
async def sso_callback(
    request: Request,
    conn: Connection,
    access: Access,
    code: Annotated[str | None, Query(max_length=4000, pattern=NO_NUL)] = None,
    state: Annotated[str | None, Query(max_length=4000, pattern=NO_NUL)] = None,
    error: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    error_description: Annotated[str | None, Query(max_length=2000, pattern=NO_NUL)] = None,
) -> Response:
    """Check the provider's answer and ID token, map the role claim, link or create the local
    account, and open a browser session (cookies, as ``POST /api/auth/session``); audited."""
    context = AuditContext("anonymous", "anonymous", client_address(request), request_id(request))
    identity = None
    try:
        client = oidc.get_oidc(request)
        flow = oidc.read_flow(access.key, request.cookies.get(oidc.FLOW_COOKIE))
        params = {"code": code, "state": state, "error": error, "error_description": error_description}
        identity = await oidc.finish(client, flow, {k: v for k, v in params.items() if v})
        account = await oidc.link_account(conn, client.settings, identity)
        detail = {"method": "sso", "issuer": identity.issuer, "subject": identity.subject}
        grant = await sessions.open_session(
            conn, access.settings, access.key, context, account, browser=True, detail=detail
        )
    except EcoMapError as exc:
        if not isinstance(exc, NotFound):
            detail = {"method": "sso", "reason": str(exc)[:500]}
            if identity is not None:
                detail |= {"issuer": identity.issuer, "subject": identity.subject}
            outcome = "refused" if isinstance(exc, Forbidden) else "failure"
            actor = identity.actor if identity else None
            await audit.record(conn, context, "auth.login", outcome=outcome, actor=actor, detail=detail)
        return _sso_failure(request, exc)
    reply = RedirectResponse(flow["next"], status_code=303)
    _set_cookies(request, reply, access, grant)
    reply.delete_cookie(oidc.FLOW_COOKIE, path=oidc.FLOW_COOKIE_PATH)
    return reply


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
    """Create a key; the answer holds the key itself, shown this once. A partner key's `area`
    (district adcodes or GeoJSON polygons) limits its layers to the features inside it."""
    area = area_of(body.area) if body.area is not None else None
    key, secret = await admin.create_key(
        conn,
        _context(request, principal),
        name=body.name,
        role=body.role,
        layers=body.layers,
        expires_at=body.expires_at,
        known_layers=catalog.ids,
        area=area,
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
