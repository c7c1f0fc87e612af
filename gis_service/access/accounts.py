"""Accounts of people: create, list, enable/disable, change role, reset password.

Functions take an async connection and leave hashing to ``passwords`` (callers run it off
the event loop). A chief account names an existing ``chief`` row, its jurisdiction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import class_row

from gis_service.access.principal import USER_ROLES, Role
from gis_service.errors import InvalidRequest, NotFound

LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
_COLUMNS = "id, login, role, chief_id, enabled, created_at, updated_at"


@dataclass(frozen=True)
class Account:
    """An account as shown to administrators (never its password hash)."""

    id: int
    login: str
    role: str
    chief_id: int | None
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def normalise_login(login: str) -> str:
    """Logins are case-insensitive: stored and compared lower-case, without surrounding blanks."""
    return login.strip().lower()


def check_login(login: str) -> str:
    login = normalise_login(login)
    if not LOGIN_PATTERN.match(login):
        raise InvalidRequest(
            f"invalid login {login!r}: use 2-64 characters, lower-case letters, digits and . _ @ -,"
            " starting with a letter or digit"
        )
    return login


def check_role(role: str, chief_id: int | None) -> Role:
    """The role, validated with its chief id (required for chief, refused otherwise)."""
    if role not in {r.value for r in USER_ROLES}:
        raise InvalidRequest(f"unknown role {role!r}; account roles: {', '.join(r.value for r in USER_ROLES)}")
    if role == Role.CHIEF and chief_id is None:
        raise InvalidRequest("a chief account needs the id of its chief record (--chief ID; see GET /api/chiefs)")
    if role != Role.CHIEF and chief_id is not None:
        raise InvalidRequest(f"only chief accounts have a chief id (role {role!r} given)")
    return Role(role)


async def _check_chief_exists(conn: AsyncConnection, chief_id: int | None) -> None:
    if chief_id is None:
        return
    row = await (await conn.execute("SELECT 1 FROM chief WHERE id = %s", [chief_id])).fetchone()
    if row is None:
        raise InvalidRequest(f"there is no chief with id {chief_id} (see GET /api/chiefs for their ids)")


def recordable_login(login: str) -> str:
    """A login as the throttle and the audit log may record it: as given when well-formed,
    else escaped and cut (no NUL bytes or megabytes of garbage reach the database)."""
    login = normalise_login(login)
    return login if LOGIN_PATTERN.match(login) else repr(login)[:100]


async def find_account(conn: AsyncConnection, login: str) -> tuple[Account, str] | None:
    """An account and its password hash, by login; None when there is none."""
    if not LOGIN_PATTERN.match(normalise_login(login)):
        return None  # no account can have it
    row = await (
        await conn.execute(f"SELECT {_COLUMNS}, password_hash FROM account WHERE login = %s", [normalise_login(login)])
    ).fetchone()
    if row is None:
        return None
    return Account(*row[:-1]), row[-1]


async def get_account(conn: AsyncConnection, login: str) -> Account:
    found = await find_account(conn, login)
    if found is None:
        raise NotFound(f"no account with login {normalise_login(login)!r} (see `ecomap users list`)")
    return found[0]


async def create_account(
    conn: AsyncConnection, login: str, role: str, password_hash: str, chief_id: int | None = None
) -> Account:
    """Create an enabled account; InvalidRequest when the login is taken or the role is wrong."""
    login = check_login(login)
    check_role(role, chief_id)
    await _check_chief_exists(conn, chief_id)
    async with conn.cursor(row_factory=class_row(Account)) as cur:
        await cur.execute(
            f"INSERT INTO account (login, role, chief_id, password_hash) VALUES (%s, %s, %s, %s)"
            f" ON CONFLICT (login) DO NOTHING RETURNING {_COLUMNS}",
            [login, role, chief_id, password_hash],
        )
        account = await cur.fetchone()
    if account is None:
        raise InvalidRequest(f"the login {login!r} is taken; choose another")
    return account


async def list_accounts(conn: AsyncConnection) -> list[Account]:
    async with conn.cursor(row_factory=class_row(Account)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM account ORDER BY login")
        return await cur.fetchall()


async def _update(conn: AsyncConnection, login: str, assignments: str, values: list[object]) -> Account:
    if not LOGIN_PATTERN.match(normalise_login(login)):
        raise NotFound(f"no account with login {recordable_login(login)} (see `ecomap users list`)")
    async with conn.cursor(row_factory=class_row(Account)) as cur:
        await cur.execute(
            f"UPDATE account SET {assignments}, updated_at = now() WHERE login = %s RETURNING {_COLUMNS}",
            [*values, normalise_login(login)],
        )
        account = await cur.fetchone()
    if account is None:
        raise NotFound(f"no account with login {normalise_login(login)!r} (see `ecomap users list`)")
    return account


async def revoke_sessions(conn: AsyncConnection, account_id: int) -> None:
    """End every sign-in session of an account (its refresh tokens stop working at once)."""
    await conn.execute(
        "UPDATE auth_session SET revoked_at = now() WHERE account_id = %s AND revoked_at IS NULL", [account_id]
    )


async def set_enabled(conn: AsyncConnection, login: str, enabled: bool) -> Account:
    """Enable or disable an account; disabling ends its sessions."""
    account = await _update(conn, login, "enabled = %s", [enabled])
    if not enabled:
        await revoke_sessions(conn, account.id)
    return account


async def set_role(conn: AsyncConnection, login: str, role: str, chief_id: int | None = None) -> Account:
    """Change an account's role (and chief); its sessions end, so new tokens carry the new role."""
    check_role(role, chief_id)
    await _check_chief_exists(conn, chief_id)
    account = await _update(conn, login, "role = %s, chief_id = %s", [role, chief_id])
    await revoke_sessions(conn, account.id)
    return account


async def set_password_hash(conn: AsyncConnection, login: str, password_hash: str) -> Account:
    """Store a new password hash; the account's sessions end."""
    account = await _update(conn, login, "password_hash = %s", [password_hash])
    await revoke_sessions(conn, account.id)
    return account
