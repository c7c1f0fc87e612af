"""User and key administration, each change audited in the same transaction (web and CLI alike)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable

from psycopg import AsyncConnection

from gis_service.access import accounts, audit, keys, passwords
from gis_service.access.accounts import Account
from gis_service.access.audit import AuditContext
from gis_service.access.keys import ApiKey
from gis_service.errors import InvalidRequest


async def add_user(
    conn: AsyncConnection, context: AuditContext, login: str, role: str, password: str, chief_id: int | None = None
) -> Account:
    """Create an account (the password hashed with argon2id off the event loop)."""
    accounts.check_login(login)
    accounts.check_role(role, chief_id)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    async with conn.transaction():
        account = await accounts.create_account(conn, login, role, password_hash, chief_id)
        await audit.record(
            conn, context, "user.create", target=account.login, detail={"role": role, "chief_id": chief_id}
        )
    return account


def _not_yourself(context: AuditContext, login: str, what: str) -> None:
    """Admins cannot lock themselves out (another admin, or the CLI, can)."""
    if context.actor == accounts.normalise_login(login):
        raise InvalidRequest(f"you cannot {what} your own account; ask another admin or use the ecomap CLI")


async def set_enabled(conn: AsyncConnection, context: AuditContext, login: str, enabled: bool) -> Account:
    if not enabled:
        _not_yourself(context, login, "disable")
    async with conn.transaction():
        account = await accounts.set_enabled(conn, login, enabled)
        await audit.record(conn, context, "user.enable" if enabled else "user.disable", target=account.login)
    return account


async def set_role(
    conn: AsyncConnection, context: AuditContext, login: str, role: str, chief_id: int | None = None
) -> Account:
    if role != "admin":
        _not_yourself(context, login, "take the admin role from")
    async with conn.transaction():
        account = await accounts.set_role(conn, login, role, chief_id)
        await audit.record(
            conn, context, "user.set_role", target=account.login, detail={"role": role, "chief_id": chief_id}
        )
    return account


async def reset_password(conn: AsyncConnection, context: AuditContext, login: str, password: str) -> Account:
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    async with conn.transaction():
        account = await accounts.set_password_hash(conn, login, password_hash)
        await audit.record(conn, context, "user.reset_password", target=account.login)
    return account


async def create_key(
    conn: AsyncConnection,
    context: AuditContext,
    *,
    name: str,
    role: str,
    layers: list[str] | None = None,
    expires_at: dt.datetime | None = None,
    known_layers: Iterable[str] | None = None,
    area: keys.KeyArea | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key; returns it and the secret (shown once)."""
    async with conn.transaction():
        key, secret = await keys.create_key(
            conn,
            name=name,
            role=role,
            created_by=context.actor,
            layers=layers,
            expires_at=expires_at,
            known_layers=known_layers,
            area=area,
        )
        await audit.record(
            conn,
            context,
            "key.create",
            target=key.name,
            detail={
                "role": key.role,
                "layers": key.layers,
                "expires_at": key.expires_at and key.expires_at.isoformat(),
                "area_km2": key.area_km2,
            },
        )
    return key, secret


async def revoke_key(conn: AsyncConnection, context: AuditContext, name: str) -> ApiKey:
    async with conn.transaction():
        key = await keys.revoke_key(conn, name)
        await audit.record(conn, context, "key.revoke", target=key.name)
    return key
