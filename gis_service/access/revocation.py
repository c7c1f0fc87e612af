"""Access changes reach every worker at once: a LISTEN on ``ecomap_access_changed``.

The database NOTIFYs the channel whenever a credential stops or changes meaning (migration
0015's triggers: a session revoked, an account disabled or given another role or chief, a
key revoked or changed, a chief's assignments changed). Each worker listens on its own
connection and bumps ``generation`` on every notification: token and key principals and
scope areas cached before that are not used again (``TokenCache`` compares generations),
so signing out, disabling an account or revoking a key holds from the next request on, on
every worker, while a verified token costs a dictionary look-up on the hot path.

While the listener is not connected, a change could be missed: caches then fall back to
their short lifetime (``ECOMAP_ACCESS__TOKEN_CACHE_S``), as without notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import psycopg

logger = logging.getLogger(__name__)

CHANNEL = "ecomap_access_changed"
generation = 0
"""Bumped on every access change notified (and on every (re)connection: one may have been missed)."""
_connected = 0


def listening() -> bool:
    """Whether a listener of this process is connected (cached credentials are then kept exact)."""
    return _connected > 0


_subscribers: list[Callable[[], None]] = []


def on_change(callback: Callable[[], None]) -> None:
    """Call ``callback`` at every access change (the policy drops the scopes it keeps)."""
    _subscribers.append(callback)


def changed() -> None:
    """Note an access change: everything cached before it is stale."""
    global generation
    generation += 1
    for callback in _subscribers:
        callback()


async def _listen(dsn: str, retry_s: float) -> None:
    global _connected
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=2) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                changed()  # changes made while not listening
                _connected += 1
                try:
                    async for _ in conn.notifies():
                        changed()
                finally:
                    _connected -= 1
        except asyncio.CancelledError:
            raise
        except psycopg.Error as exc:
            logger.warning("access change listener: %s; cached credentials expire by age until it reconnects", exc)
        await asyncio.sleep(retry_s)


@contextlib.asynccontextmanager
async def listener(dsn: str, retry_s: float = 1.0) -> AsyncIterator[None]:
    """Listen for access changes while the block runs (the app's lifespan)."""
    task = asyncio.create_task(_listen(dsn, retry_s), name="access-change-listener")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
