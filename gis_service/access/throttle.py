"""Login throttling shared by every worker (table ``login_throttle``).

Failed sign-ins are counted per login and per client address. From the N-th failure on
(``login_max_failures``, ``address_max_failures``) the key is locked for
``lockout_base_s`` × 2^(failures − N) seconds (at most ``lockout_max_s``); a locked key
answers 429 with ``Retry-After`` before any password is checked. Failures older than
``failure_window_s`` are forgotten; a successful sign-in clears its login's count (not the
address's, so a valid account does not reset an address's guessing budget).
"""

from __future__ import annotations

import math

from psycopg import AsyncConnection

from gis_service.errors import TooManyRequests
from gis_service.settings import AccessSettings


def throttle_keys(login: str, client_addr: str | None) -> dict[str, str]:
    """The throttle keys of a sign-in attempt: per login and per client address."""
    keys = {"login": f"login:{login}"}
    if client_addr:
        keys["address"] = f"addr:{client_addr}"
    return keys


async def check_not_locked(conn: AsyncConnection, keys: dict[str, str]) -> None:
    """TooManyRequests (429, Retry-After) when the login or the address is locked now."""
    row = await (
        await conn.execute(
            "SELECT key, extract(epoch FROM locked_until - now()) FROM login_throttle"
            " WHERE key = ANY(%s) AND locked_until > now() ORDER BY locked_until DESC LIMIT 1",
            [list(keys.values())],
        )
    ).fetchone()
    if row is None:
        return
    key, remaining = row
    what = "this login" if key.startswith("login:") else "this client address"
    wait = math.ceil(float(remaining))
    raise TooManyRequests(f"too many failed sign-ins for {what}: try again in {wait} s", wait)


async def record_failure(conn: AsyncConnection, keys: dict[str, str], settings: AccessSettings) -> None:
    """Count a failed sign-in against each key, locking those that reached their limit."""
    limits = {"login": settings.login_max_failures, "address": settings.address_max_failures}
    for kind, key in keys.items():
        await conn.execute(
            """
            INSERT INTO login_throttle AS t (key, failures, last_failure_at, locked_until)
            VALUES (%(key)s, 1, now(), CASE WHEN %(limit)s <= 1 THEN now() + make_interval(secs => %(base)s) END)
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN t.last_failure_at < now() - make_interval(secs => %(window)s)
                                THEN 1 ELSE t.failures + 1 END,
                last_failure_at = now(),
                locked_until = CASE
                    WHEN (CASE WHEN t.last_failure_at < now() - make_interval(secs => %(window)s)
                               THEN 1 ELSE t.failures + 1 END) >= %(limit)s
                    THEN now() + make_interval(secs => least(%(max)s, %(base)s * power(2,
                        (CASE WHEN t.last_failure_at < now() - make_interval(secs => %(window)s)
                              THEN 1 ELSE t.failures + 1 END) - %(limit)s)))
                END
            """,
            {
                "key": key,
                "limit": limits[kind],
                "base": settings.lockout_base_s,
                "max": settings.lockout_max_s,
                "window": settings.failure_window_s,
            },
        )


async def clear_login(conn: AsyncConnection, keys: dict[str, str], settings: AccessSettings) -> None:
    """Forget a login's failures after it signed in successfully, and every count gone stale."""
    await conn.execute(
        "DELETE FROM login_throttle WHERE key = %s OR (last_failure_at < now() - make_interval(secs => %s)"
        " AND (locked_until IS NULL OR locked_until < now()))",
        [keys["login"], settings.failure_window_s],
    )
