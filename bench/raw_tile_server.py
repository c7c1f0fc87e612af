"""The raw-SQL floor over HTTP: the thinnest tile server one can write in Python.

A bare ASGI app (no framework, no cache, no logging, no validation beyond the path) that
answers ``GET /tiles/{layer}/{z}/{x}/{y}.pbf`` with one raw ``ST_AsMVT`` statement per
tile through an asyncpg connection pool (prepared statements, binary protocol: the fastest
Python driver there is). Measured with wrk like the other servers, it is what serving the
raw SQL over HTTP costs on this machine, the floor the service's own overhead is judged
against. Each layer has a list of queries by zoom (the last one serves every higher zoom),
so the same server runs the stored floor (the service's tables, per zoom) and the raw
tables (one query). Runs in the benchmark's separate environment (``.bench-venv``, beside TiPg):

    RAW_TILE_DSN=postgresql://... RAW_TILE_QUERIES='{"station": ["SELECT ... $1 $2 $3"]}' \\
        .bench-venv/bin/uvicorn bench.raw_tile_server:app --workers 2 --no-access-log
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import asyncpg

PATH = re.compile(r"^/tiles/(\w+)/(\d+)/(\d+)/(\d+)\.pbf$")
QUERIES: dict[str, list[str]] = json.loads(os.environ.get("RAW_TILE_QUERIES", "{}"))
"""Layer id -> SQL by zoom returning one MVT for the tile ($1 = z, $2 = x, $3 = y)."""
POOL_SIZE = int(os.environ.get("RAW_TILE_POOL_SIZE", "8"))
_pool: asyncpg.Pool | None = None


async def _reply(send: Any, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", b"application/vnd.mapbox-vector-tile"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(
                    os.environ["RAW_TILE_DSN"],
                    min_size=POOL_SIZE,
                    max_size=POOL_SIZE,
                    server_settings={"jit": "off", "max_parallel_workers_per_gather": "0"},
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    match = PATH.match(scope["path"])
    if match is None or match.group(1) not in QUERIES or _pool is None:
        return await _reply(send, 404)
    layer, z, x, y = match.groups()
    queries = QUERIES[layer]
    async with _pool.acquire() as conn:
        data = await conn.fetchval(queries[min(int(z), len(queries) - 1)], int(z), int(x), int(y))
    await _reply(send, 200 if data else 204, data or b"")
