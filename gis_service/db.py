"""The PostGIS connection pool: created and closed in the app's lifespan.

Connections are initialised once (JIT and parallel workers off: they add start-up
cost to the many small tile queries; a statement timeout; an application name), and
idle ones are checked before use, so the service recovers by itself after the
database has been unreachable.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gis_service.errors import DatabaseUnavailable, DatabaseUnreachable
from gis_service.settings import Settings

KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,
}
"""A network that silently drops connections is noticed in seconds, not minutes (libpq
parameters; ``tcp_user_timeout`` bounds how long sent data may stay unacknowledged)."""

IDLE_CHECK_S = 2.0
"""Connections idle longer than this are pinged before use (they may have died meanwhile)."""


async def _check_if_idle(conn: psycopg.AsyncConnection) -> None:
    """Ping a connection that sat idle, so the pool replaces it if the database went away.

    Busy connections are not pinged: that would double the round trips of every tile.
    """
    now = time.monotonic()
    last_used = getattr(conn, "_ecomap_last_used", 0.0)
    conn._ecomap_last_used = now  # type: ignore[attr-defined]
    if now - last_used > IDLE_CHECK_S:
        await AsyncConnectionPool.check_connection(conn)


def create_pool(settings: Settings, dsn: str | None = None, name: str = "ecomap") -> AsyncConnectionPool:
    """Build (but do not open) the async pool described by the settings (of ``dsn``: a replica's)."""

    async def configure(conn: psycopg.AsyncConnection) -> None:
        await conn.execute("SET jit = off")
        # Many small concurrent queries: parallel workers only add start-up cost (measured:
        # z8-10 tiles at concurrency 16 went from 106 to 147 tiles/s, p99 507 -> 304 ms).
        await conn.execute("SET max_parallel_workers_per_gather = 0")
        await conn.execute(f"SET statement_timeout = {int(settings.db.statement_timeout_ms)}")

    return AsyncConnectionPool(
        dsn or settings.dsn,
        min_size=settings.db.pool_min_size,
        max_size=settings.db.pool_max_size,
        kwargs={
            "application_name": "ecomap",
            "autocommit": True,
            "connect_timeout": max(1, int(settings.db.connect_timeout_s)),
            **KEEPALIVES,
        },
        configure=configure,
        check=_check_if_idle,
        open=False,
        timeout=settings.db.connect_timeout_s,
        reconnect_timeout=0,  # keep trying for ever: the database may come back
        name=name,
    )


@asynccontextmanager
async def connection(pool: AsyncConnectionPool, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection]:
    """Borrow a connection (waiting at most ``timeout`` seconds for one; default: the pool's),
    turning an unreachable database into DatabaseUnreachable and a statement timeout into
    DatabaseUnavailable (both 503). Other database errors go up as they are (the error
    handlers turn those a request's input caused into a 400)."""
    try:
        async with pool.connection(timeout=timeout) as conn:
            yield conn
    except psycopg.errors.QueryCanceled as exc:
        raise DatabaseUnavailable("the query took longer than the statement timeout; try a smaller request") from exc
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise DatabaseUnavailable(
            f"the database schema does not match this version ({exc.diag.message_primary}):"
            " run `ecomap setup` (or `ecomap db upgrade`); /healthz shows the migration it is at"
        ) from exc
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnreachable(f"the database is unreachable: {exc}".strip()) from exc


async def act_as(conn: psycopg.AsyncConnection, actor: str) -> None:
    """Name the signed-in principal (``Principal.actor``) as the author of the layer writes of
    the current transaction: revisions (layer_revision.author, migration 0004) then record the
    person, not the shared web role the service connects as. Transaction-local
    (``set_config(..., true)``, i.e. ``SET LOCAL``), bound as a parameter; call it inside the
    transaction that writes."""
    await conn.execute("SELECT set_config('ecomap.author', %s, true)", [actor])
