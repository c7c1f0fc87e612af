"""Keeps a tile engine's cache exact: listens for layer changes and invalidates tiles.

Every write to a layer table sends a NOTIFY on ``ecomap_layer_changed`` (see migration
0002) with the layer, its new revision and the changed extent; recomputed
generalizations send one for their zooms. Each worker process runs one listener.

While the listener is not connected, notifications could be missed, so the engine does
not trust its cache (it serves cached tiles only marked stale, while the database is
down); on (re)connection the layer revisions are compared with those the cache last knew
(kept in the cache directory for the on-disk store) and every layer that changed
meanwhile is dropped whole before the cache is trusted again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import psycopg

from tiles.engine import TileEngine

logger = logging.getLogger(__name__)

CHANNEL = "ecomap_layer_changed"
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2}
"""TCP keepalives on the listening connection: a network that silently drops it is noticed in ~10 s."""
State = dict[str, list[int]]


class ChangeListener:
    """LISTENs for layer changes on its own connection and invalidates the engine's cache."""

    def __init__(
        self,
        dsn: str,
        engine: TileEngine,
        on_data_change: Any = None,
        on_change: Any = None,
        connect_timeout_s: float = 2.0,
        retry_s: float = 1.0,
    ) -> None:
        self.dsn = dsn
        self.connect_timeout_s = max(1, round(connect_timeout_s))  # libpq takes whole seconds
        self.retry_s = retry_s
        self.engine = engine
        self.on_data_change = on_data_change
        self.on_change = on_change
        """Called with (layer, bbox or None, maxzoom or None) for every change applied to the
        cache, e.g. to ban the same tiles from an HTTP cache in front (gis_service/scaleout)."""
        self.connected = asyncio.Event()
        cache_dir = engine.cache.directory if engine.cache is not None else None
        self.state_path: Path | None = cache_dir / "state.json" if cache_dir is not None else None
        self.known: State = self._load_state()

    def _load_state(self) -> State:
        if self.state_path is None or not self.state_path.exists():
            return {}
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(f".state-{os.getpid()}.json")
        tmp.write_text(json.dumps(self.known))
        os.replace(tmp, self.state_path)

    async def run(self) -> None:
        """Listen for ever, reconnecting after failures (the cache is not trusted meanwhile).

        A connection that cannot be made marks the database down for the engine (its circuit
        breaker: tile requests stop waiting for it and cached tiles are served stale) until
        one can be made again and the cache has been revalidated."""
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s, **KEEPALIVES
                )
            except asyncio.CancelledError:
                raise
            except psycopg.OperationalError as exc:
                if not self.engine.database_down:
                    logger.warning("database unreachable (%s): cached tiles are served stale until it is back", exc)
                self.engine.database_down = True
                await asyncio.sleep(self.retry_s)
                continue
            pause = self.retry_s
            try:
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._resync(conn)
                    self.engine.database_down = False
                    self.engine.cache_active = True
                    self.connected.set()
                    async for notification in conn.notifies():
                        self.handle(notification.payload)
            except asyncio.CancelledError:
                raise
            except psycopg.OperationalError as exc:  # connection lost: reconnect soon (or learn it is down)
                logger.warning("tile change listener disconnected (%s); reconnecting", exc)
                pause = 0.1
            except Exception as exc:
                logger.warning("tile change listener failed (%s); tile cache not trusted until it reconnects", exc)
            finally:
                self.engine.cache_active = False
                self.connected.clear()
            await asyncio.sleep(pause)

    async def _resync(self, conn: psycopg.AsyncConnection) -> None:
        cursor = await conn.execute("SELECT layer, revision, gen_revision FROM layer_state")
        current: State = {row[0]: [row[1], row[2]] for row in await cursor.fetchall()}
        if self.engine.cache is not None and not self.known and len(self.engine.cache) == 0:
            self.engine.cache.clear()  # an on-disk store of unknown age
        else:
            for layer, state in current.items():
                if self.known.get(layer) != state:
                    self.engine.invalidate(layer, None)
                    if self.on_change is not None:
                        self.on_change(layer, None, None)
        self.known = current
        self._save_state()

    def handle(self, payload: str) -> None:
        """Apply one change notification."""
        try:
            change = json.loads(payload)
            layer = change["layer"]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring malformed change notification %r", payload)
            return
        bbox = tuple(change["bbox"]) if change.get("bbox") else None
        dropped = self.engine.invalidate(layer, bbox, change.get("maxzoom"))
        if self.on_change is not None:
            self.on_change(layer, bbox, change.get("maxzoom"))
        state = self.known.setdefault(layer, [0, 0])
        if change.get("revision") is not None:
            state[0] = change["revision"]
            if self.on_data_change is not None:
                self.on_data_change(layer)
        if change.get("gen_revision") is not None:
            state[1] = change["gen_revision"]
        self._save_state()
        logger.debug("layer %s changed in %s: %d cached tiles dropped", layer, bbox, dropped)
