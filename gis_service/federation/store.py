"""The copies of remote layers in PostGIS: one table for all (``remote_feature``, migration 0027).

One table keyed by layer id rather than a table per remote layer: declaring a remote layer
needs no DDL (the web role runs none, README "Database roles"), the change trigger,
indexes and grants exist once, and the zone check looks at all remote layers in one
statement. Each layer's declared properties live in ``props`` (jsonb) and are read back
typed (``typed_rows``), so tiles and CQL2 filters see the same columns as on a catalog table.

A refresh writes in one transaction, under a per-layer advisory lock: the validated rows are
staged, rows that differ are deleted and the new versions inserted (unchanged rows are left
alone, so the change trigger reports, and tile caches drop, only what changed), and the
layer's state is updated. A failure changes nothing but the recorded error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from gis_service.federation.config import TABLE
from layers.catalog import Layer

LOCK_CLASS = 0x45434F46  # "ECOF": advisory lock class of remote layer refreshes (key: hashtext(layer))
_CASTS = {"string": "text", "integer": "bigint", "number": "float8", "boolean": "boolean", "date": "date"}


def typed_rows(layer: Layer) -> sql.Composed:
    """The remote layer's rows shaped as a catalog table (id, geom, geom_3857, one typed column
    per property, source_url, fetched_at): the ``source`` of its tile queries."""
    columns = [
        sql.SQL("(r.props ->> {})::{} AS {}").format(
            sql.Literal(prop.name), sql.SQL(_CASTS[prop.type]), sql.Identifier(prop.name)
        )
        for prop in layer.properties
    ]
    return sql.SQL(
        "SELECT r.id, r.geom, r.geom_3857, {columns}, r.source_url, r.fetched_at"
        " FROM {table} AS r WHERE r.layer = {layer}"
    ).format(columns=sql.SQL(", ").join(columns), table=sql.Identifier(TABLE), layer=sql.Literal(layer.id))


@dataclass
class RemoteState:
    """What is known of a remote layer's copy (``remote_layer_state``)."""

    layer: str
    source_url: str | None = None
    etag: str | None = None
    declaration: str | None = None
    content_hash: str | None = None
    feature_count: int = 0
    checked_at: dt.datetime | None = None
    fetched_at: dt.datetime | None = None
    changed_at: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
        return out


_STATE_COLUMNS = (
    "layer, source_url, etag, declaration, content_hash, feature_count, checked_at, fetched_at, changed_at,"
    " last_error, last_error_at, errors"
)


async def states(conn: AsyncConnection) -> dict[str, RemoteState]:
    """The state of every remote layer fetched or tried at least once."""
    cursor = await conn.execute(f"SELECT {_STATE_COLUMNS} FROM remote_layer_state")
    return {row[0]: RemoteState(*row) for row in await cursor.fetchall()}


async def state(conn: AsyncConnection, layer_id: str) -> RemoteState:
    """One remote layer's state (empty when never fetched)."""
    cursor = await conn.execute(
        f"SELECT {_STATE_COLUMNS} FROM remote_layer_state WHERE layer = %s",
        [layer_id],
    )
    row = await cursor.fetchone()
    return RemoteState(*row) if row else RemoteState(layer_id)


async def try_lock(conn: AsyncConnection, layer_id: str) -> bool:
    """Take the layer's refresh lock for the transaction (False: another instance refreshes it)."""
    cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", [LOCK_CLASS, layer_id])
    row = await cursor.fetchone()
    return bool(row and row[0])


async def record_check(conn: AsyncConnection, layer_id: str, url: str, etag: str | None) -> None:
    """The partner said (or showed) the copy is current: only the check time moves."""
    await conn.execute(
        "UPDATE remote_layer_state SET checked_at = now(), fetched_at = now(), source_url = %(url)s,"
        " etag = COALESCE(%(etag)s, etag), last_error = NULL, errors = 0 WHERE layer = %(layer)s",
        {"layer": layer_id, "url": url, "etag": etag},
    )


async def record_error(conn: AsyncConnection, layer_id: str, url: str, message: str) -> None:
    """A refresh failed: the copy stays as it was, the error is kept for the admin list."""
    await conn.execute(
        "INSERT INTO remote_layer_state AS s (layer, source_url, checked_at, last_error, last_error_at, errors)"
        " VALUES (%(layer)s, %(url)s, now(), %(error)s, now(), 1)"
        " ON CONFLICT (layer) DO UPDATE SET checked_at = now(), last_error = %(error)s, last_error_at = now(),"
        " errors = s.errors + 1",
        {"layer": layer_id, "url": url, "error": message[:2000]},
    )


@dataclass(frozen=True)
class RemoteRow:
    """One validated feature to store: our id, the partner's id, hex EWKB (SRID 4326), kept properties."""

    id: int
    remote_id: str
    ewkb: str
    props: dict[str, Any]


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    deleted: int
    count: int


async def replace_copy(
    conn: AsyncConnection,
    layer_id: str,
    url: str,
    rows: list[RemoteRow],
    etag: str | None,
    content_hash: str,
    declaration: str,
) -> WriteResult:
    """Make the stored copy equal ``rows`` (inside the caller's transaction): rows that differ
    are deleted and inserted anew, unchanged ones are left alone."""
    await conn.execute(
        "CREATE TEMPORARY TABLE remote_stage (id bigint PRIMARY KEY, remote_id text NOT NULL,"
        " geom geometry(Geometry, 4326) NOT NULL, props jsonb NOT NULL) ON COMMIT DROP"
    )
    async with conn.cursor() as cur, cur.copy("COPY remote_stage (id, remote_id, geom, props) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row((row.id, row.remote_id, row.ewkb, Jsonb(row.props)))
    same = "s.id = r.id AND s.remote_id = r.remote_id AND s.props = r.props AND ST_AsEWKB(s.geom) = ST_AsEWKB(r.geom)"
    deleted = await conn.execute(
        f"DELETE FROM {TABLE} AS r WHERE r.layer = %(layer)s"
        f" AND NOT EXISTS (SELECT 1 FROM remote_stage AS s WHERE {same})",
        {"layer": layer_id},
    )
    inserted = await conn.execute(
        f"INSERT INTO {TABLE} (layer, id, remote_id, geom, props, source_url)"
        " SELECT %(layer)s, s.id, s.remote_id, s.geom, s.props, %(url)s FROM remote_stage AS s"
        f" WHERE NOT EXISTS (SELECT 1 FROM {TABLE} AS r WHERE r.layer = %(layer)s AND {same})",
        {"layer": layer_id, "url": url},
    )
    changed = (deleted.rowcount or 0) + (inserted.rowcount or 0) > 0
    await conn.execute(
        "INSERT INTO remote_layer_state AS s (layer, source_url, etag, declaration, content_hash, feature_count,"
        " checked_at, fetched_at, changed_at)"
        " VALUES (%(layer)s, %(url)s, %(etag)s, %(declaration)s, %(hash)s, %(count)s, now(), now(), now())"
        " ON CONFLICT (layer) DO UPDATE SET source_url = %(url)s, etag = %(etag)s, declaration = %(declaration)s,"
        " content_hash = %(hash)s,"
        " feature_count = %(count)s, checked_at = now(), fetched_at = now(),"
        " changed_at = CASE WHEN %(changed)s THEN now() ELSE s.changed_at END, last_error = NULL, errors = 0",
        {
            "layer": layer_id,
            "url": url,
            "etag": etag,
            "declaration": declaration,
            "hash": content_hash,
            "count": len(rows),
            "changed": changed,
        },
    )
    return WriteResult(inserted.rowcount or 0, deleted.rowcount or 0, len(rows))


async def forget(conn: AsyncConnection, layer_id: str) -> int:
    """Delete a remote layer's copy and state (a layer no longer declared); the rows deleted."""
    async with conn.transaction():
        deleted = await conn.execute(f"DELETE FROM {TABLE} WHERE layer = %s", [layer_id])
        await conn.execute("DELETE FROM remote_layer_state WHERE layer = %s", [layer_id])
    return deleted.rowcount or 0
