"""Sign-in: password check (throttled, audited), sessions, rotating refresh tokens, sign-out.

A session is created at each sign-in and lasts ``refresh_token_ttl_s``. It has one live
refresh token at a time: using it marks it used and issues the next; presenting a used one
again (a stolen copy, or a replay) revokes the whole session (OAuth 2.0 Security BCP §4.14).
A token used less than ``refresh_reuse_grace_s`` ago is the exception: two tabs of one
browser renewing at the same moment send the same refresh cookie, and the second must not
sign the user out, so it gets a pair of its own (the "reuse interval" of common identity
providers; the window is short and configurable, 0 turns it off).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psycopg import AsyncConnection

from gis_service.access import audit, passwords, throttle
from gis_service.access.accounts import Account, find_account, recordable_login
from gis_service.access.audit import AuditContext
from gis_service.access.principal import Principal, Role
from gis_service.access.tokens import issue_access_token, opaque_token, token_hash
from gis_service.errors import Forbidden, InvalidRequest, TooManyRequests, Unauthorized
from gis_service.settings import AccessSettings

MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class Grant:
    """What a successful sign-in or refresh hands out."""

    account: Account
    session_id: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    csrf: str | None


async def _issue(
    conn: AsyncConnection, settings: AccessSettings, key: bytes, account: Account, session_id: str, browser: bool
) -> Grant:
    refresh = opaque_token()
    await conn.execute(
        "INSERT INTO refresh_token (token_hash, session_id) VALUES (%s, %s)", [token_hash(refresh), session_id]
    )
    csrf = opaque_token() if browser else None
    access, expires_at = issue_access_token(
        key,
        login=account.login,
        role=account.role,
        chief_id=account.chief_id,
        session_id=session_id,
        ttl_s=settings.access_token_ttl_s,
        csrf=csrf,
    )
    return Grant(account, session_id, access, expires_at, refresh, csrf)


async def sign_in(
    conn: AsyncConnection,
    settings: AccessSettings,
    key: bytes,
    context: AuditContext,
    login: str,
    password: str,
    *,
    browser: bool = False,
) -> Grant:
    """Check a login and password and open a session; every attempt is audited.

    Raises TooManyRequests (429) while the login or address is locked, Unauthorized (401)
    for a wrong login or password (the same answer for both), Forbidden (403) for a
    disabled account with the right password."""
    login = recordable_login(login)
    keys = throttle.throttle_keys(login, context.client_addr)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    try:
        await throttle.check_not_locked(conn, keys)
    except TooManyRequests:
        await audit.record(conn, context, "auth.login", outcome="refused", actor=login, detail={"reason": "throttled"})
        raise
    found = await find_account(conn, login)
    stored_hash = found[1] if found else None
    if not await asyncio.to_thread(passwords.verify_password, stored_hash, password):
        await throttle.record_failure(conn, keys, settings)
        await audit.record(
            conn, context, "auth.login", outcome="failure", actor=login, detail={"reason": "wrong login or password"}
        )
        raise Unauthorized("wrong login or password")
    account = found[0]  # type: ignore[index]  # verify_password fails without an account
    if not account.enabled:
        await audit.record(
            conn, context, "auth.login", outcome="refused", actor=login, detail={"reason": "account disabled"}
        )
        raise Forbidden(f"the account {login!r} is disabled: ask an administrator to enable it")
    await throttle.clear_login(conn, keys, settings)
    if passwords.needs_rehash(stored_hash):  # type: ignore[arg-type]
        new_hash = await asyncio.to_thread(passwords.HASHER.hash, password)
        await conn.execute("UPDATE account SET password_hash = %s WHERE id = %s", [new_hash, account.id])
    return await open_session(conn, settings, key, context, account, browser=browser)


async def open_session(
    conn: AsyncConnection,
    settings: AccessSettings,
    key: bytes,
    context: AuditContext,
    account: Account,
    *,
    browser: bool,
    detail: dict[str, str] | None = None,
) -> Grant:
    """Open a session for an account whose credentials were checked (a password, or single
    sign-on); the sign-in is audited with ``detail`` added."""
    method = "cookie" if browser else "bearer"
    async with conn.transaction():
        await conn.execute(  # sessions ended a day ago or more are of no use: keep the table small
            "DELETE FROM auth_session WHERE account_id = %s"
            " AND (expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day')",
            [account.id],
        )
        row = await (
            await conn.execute(
                "INSERT INTO auth_session (account_id, method, client_addr, expires_at)"
                " VALUES (%s, %s, %s, now() + make_interval(secs => %s)) RETURNING id::text",
                [account.id, method, context.client_addr, settings.refresh_token_ttl_s],
            )
        ).fetchone()
        grant = await _issue(conn, settings, key, account, row[0], browser)
        detail = {"method": method, "session": row[0], **(detail or {})}
        await audit.record(conn, context, "auth.login", actor=account.login, detail=detail)
    return grant


async def refresh(
    conn: AsyncConnection, settings: AccessSettings, key: bytes, context: AuditContext, refresh_token: str
) -> Grant:
    """Rotate a refresh token: the presented one is used up, a new pair is issued (audited)."""
    async with conn.transaction():
        row = await (
            await conn.execute(
                "SELECT r.used_at IS NOT NULL AND r.used_at <= now() - make_interval(secs => %s), s.id::text,"
                " s.revoked_at IS NOT NULL OR s.expires_at <= now(), s.method, a.login, a.enabled,"
                " r.used_at IS NOT NULL"
                " FROM refresh_token r JOIN auth_session s ON s.id = r.session_id JOIN account a ON a.id = s.account_id"
                " WHERE r.token_hash = %s FOR UPDATE OF r",
                [settings.refresh_reuse_grace_s, token_hash(refresh_token)],
            )
        ).fetchone()
        if row is None:
            raise Unauthorized("the refresh token is not known: sign in again (POST /api/auth/token)")
        used, session_id, ended, method, login, enabled, again = row  # again: reused within the grace period
        if used or ended or not enabled:
            if used:
                reason = "refresh token reused: session revoked"
                await conn.execute("UPDATE auth_session SET revoked_at = now() WHERE id = %s", [session_id])
            else:
                reason = "session ended" if enabled else "account disabled"
            detail = {"reason": reason, "session": session_id}
            await audit.record(conn, context, "auth.refresh", outcome="refused", actor=login, detail=detail)
        else:
            await conn.execute(  # a reuse within the grace period keeps the first use's time
                "UPDATE refresh_token SET used_at = coalesce(used_at, now()) WHERE token_hash = %s",
                [token_hash(refresh_token)],
            )
            account = (await find_account(conn, login))[0]  # type: ignore[index]
            grant = await _issue(conn, settings, key, account, session_id, browser=method == "cookie")
            detail = {"session": session_id, **({"reuse": "within the grace period"} if again else {})}
            await audit.record(conn, context, "auth.refresh", actor=login, detail=detail)
            return grant
    if used:
        raise Unauthorized("the refresh token was already used: the session is revoked, sign in again")
    raise Unauthorized("the session has ended (signed out, expired or account disabled): sign in again")


async def sign_out(conn: AsyncConnection, context: AuditContext, principal: Principal) -> None:
    """End the caller's session (its refresh token stops working at once); audited."""
    await conn.execute(
        "UPDATE auth_session SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s", [principal.session_id]
    )
    await audit.record(conn, context, "auth.logout", detail={"session": principal.session_id})


async def session_principal(
    conn: AsyncConnection, login: str, session_id: str, method: str, csrf: str | None
) -> Principal:
    """The principal of a verified token whose session is live and account enabled, else 401."""
    row = await (
        await conn.execute(
            "SELECT a.id, a.login, a.role, a.chief_id FROM auth_session s JOIN account a ON a.id = s.account_id"
            " WHERE s.id = %s::uuid AND a.login = %s AND s.revoked_at IS NULL AND s.expires_at > now() AND a.enabled",
            [session_id, login],
        )
    ).fetchone()
    if row is None:
        raise Unauthorized("the session of this token has ended (signed out, or account disabled): sign in again")
    account_id, login, role, chief_id = row
    return Principal(
        kind="user",
        name=login,
        role=Role(role),
        method=method,  # type: ignore[arg-type]
        chief_id=chief_id,
        account_id=account_id,
        session_id=session_id,
        csrf=csrf,
    )
