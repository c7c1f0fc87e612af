"""Keeps a tile engine's cache exact: listens for layer changes and invalidates tiles.

Every write to a layer table sends a NOTIFY on ``ecomap_layer_changed`` (see migration
0002) with the layer, its new revision and the changed extent; recomputed
generalizations send one for their zooms. Each worker process runs one listener.

While the listener is not connected, notifications could be missed, so the engine's
cache is switched off; on (re)connection the layer revisions are compared with those
the cache last knew (kept in the cache directory for the on-disk store) and every
layer that changed meanwhile is dropped whole before the cache is used again.
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
State = dict[str, list[int]]


class ChangeListener:
    """LISTENs for layer changes on its own connection and invalidates the engine's cache."""

    def __init__(self, dsn: str, engine: TileEngine, on_data_change: Any = None) -> None:
        self.dsn = dsn
        self.engine = engine
        self.on_data_change = on_data_change
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
        """Listen for ever, reconnecting after failures (the cache is off meanwhile)."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=3) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._resync(conn)
                    self.engine.cache_active = True
                    self.connected.set()
                    async for notification in conn.notifies():
                        self.handle(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("tile change listener disconnected (%s); tile cache bypassed until it reconnects", exc)
            self.engine.cache_active = False
            self.connected.clear()
            await asyncio.sleep(1.0)

    async def _resync(self, conn: psycopg.AsyncConnection) -> None:
        cursor = await conn.execute("SELECT layer, revision, gen_revision FROM layer_state")
        current: State = {row[0]: [row[1], row[2]] for row in await cursor.fetchall()}
        if self.engine.cache is not None and not self.known and len(self.engine.cache) == 0:
            self.engine.cache.clear()  # an on-disk store of unknown age
        else:
            for layer, state in current.items():
                if self.known.get(layer) != state:
                    self.engine.invalidate(layer, None)
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
        state = self.known.setdefault(layer, [0, 0])
        if change.get("revision") is not None:
            state[0] = change["revision"]
            if self.on_data_change is not None:
                self.on_data_change(layer)
        if change.get("gen_revision") is not None:
            state[1] = change["gen_revision"]
        self._save_state()
        logger.debug("layer %s changed in %s: %d cached tiles dropped", layer, bbox, dropped)
