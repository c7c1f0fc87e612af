"""The SQL the tile benchmark's reference servers run, and the requests each target gets.

Two floors, both plain ``ST_AsMVT`` SQL written by hand (not built by ``tiles.sql``):

- *stored* (the floor the service is judged against): what this service's tiles hold, read
  from the same tables — the stored ``geom_3857``, the zoom's precomputed ``<table>_gen``
  rows below zoom 16 with the properties stored with them, at 16 and beyond the layer table
  with the properties the zoom's tiles carry (catalog ``tile_minzoom``), and the
  ``<layer>_label`` points where the service adds them;
- *raw tables*: what a hand-written tile server on the raw tables runs — every property, the
  4326 geometry transformed to Web Mercator for every row of every tile, no generalization.

Either form comes for the raw-SQL HTTP server (the tile bound as ``$1, $2, $3``) or for
pgbench (the tile read from ``bench_tiles``: ``:band``, ``:i``, one script per zoom).
"""

from __future__ import annotations

from dataclasses import dataclass

from layers.catalog import Layer, load_catalog
from tiles.grid import MAX_ZOOM
from tiles.properties import tile_properties
from tiles.sql import has_label_points, label_properties
from tiles.zooms import DETAIL_ZOOM, generalized_zooms


@dataclass(frozen=True)
class TileSource:
    """Where a query takes its tile from: SQL for z, x, y (and z alone), and what to add to
    FROM and WHERE."""

    zxy: str
    zoom: str
    tables: str
    condition: str


HTTP_PARAMS = TileSource("$1, $2, $3", "$1", "", "")
"""The raw-SQL HTTP server binds z, x, y as parameters."""


def pgbench_tiles(z: int) -> TileSource:
    """pgbench reads the tile of zoom z from ``bench_tiles`` (``:band`` and ``:i`` are set per run)."""
    return TileSource("b.z, b.x, b.y", "b.z", ", bench_tiles b", f"b.band = :band AND b.z = {z} AND b.i = :i AND ")


def _columns(layer: Layer, names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(
        f"t.{p.name}" + ("::text" if p.type == "date" else "") for p in layer.properties if p.name in names
    )


def stored_floor_sql(layer_id: str, z: int, source: TileSource = HTTP_PARAMS) -> str:
    """The tile of zoom z as this service's tiles hold it, from the same stored tables."""
    layer = load_catalog().get(layer_id)
    extent, buffer = layer.tiles.extent, layer.tiles.buffer
    envelope = f"ST_TileEnvelope({source.zxy})"
    area = f"ST_TileEnvelope({source.zxy}, margin => {buffer / extent})"
    if z < DETAIL_ZOOM and z in generalized_zooms(layer):
        rows = (
            f"SELECT g.id, g.props, ST_AsMVTGeom(g.geom, {envelope}, {extent}, {buffer}, true) AS geom"
            f" FROM {layer.table}_gen g{source.tables}"
            f" WHERE {source.condition}g.z = {source.zoom} AND g.geom && {area}"
        )
    else:
        columns = _columns(layer, tile_properties(layer, z))
        rows = (
            f"SELECT t.id, {columns}, ST_AsMVTGeom(t.geom_3857, {envelope}, {extent}, {buffer}, true) AS geom"
            f" FROM {layer.table} t{source.tables} WHERE {source.condition}t.geom_3857 && {area}"
        )
    query = f"SELECT ST_AsMVT(q, '{layer.id}', {extent}, 'geom', 'id') FROM ({rows}) q"
    if not has_label_points(layer, z):
        return query
    labels = (
        f"SELECT ST_AsMVT(l, '{layer.id}_label', {extent}, 'geom', 'id') FROM ("
        f"SELECT t.id, {_columns(layer, label_properties(layer))},"
        f" ST_AsMVTGeom(t.label_3857, {envelope}, {extent}, {buffer}, true) AS geom"
        f" FROM {layer.table} t{source.tables} WHERE {source.condition}t.label_3857 && {area}) l"
    )
    return f"SELECT COALESCE(({query}), ''::bytea) || COALESCE(({labels}), ''::bytea)"


def raw_tables_sql(layer_id: str, source: TileSource = HTTP_PARAMS) -> str:
    """The plain query of a hand-written tile server on the raw tables: every property, the
    4326 geometry reprojected per row and tile, the same SQL at every zoom."""
    layer = load_catalog().get(layer_id)
    columns = _columns(layer, [p.name for p in layer.properties])
    margin = layer.tiles.buffer / layer.tiles.extent
    return (
        f"SELECT ST_AsMVT(q, '{layer.id}', 4096, 'geom', 'id') FROM ("
        f" SELECT t.id, {columns},"
        f" ST_AsMVTGeom(ST_Transform(t.geom, 3857), ST_TileEnvelope({source.zxy}), 4096, 64, true) AS geom"
        f" FROM {layer.table} t{source.tables} WHERE {source.condition}"
        f"t.geom && ST_Transform(ST_TileEnvelope({source.zxy}, margin => {margin}), 4326)) q"
    )


def stored_floor_queries(layer_id: str) -> list[str]:
    """The stored floor's query of every zoom 0..MAX_ZOOM, for the raw-SQL HTTP server."""
    return [stored_floor_sql(layer_id, z) for z in range(MAX_ZOOM + 1)]


TIPG_SCHEMA = "tipg_bench"
"""TiPg's copies of the layer tables, with the stored Web Mercator geometry as their only one."""


def tipg_tables_sql(layer_id: str) -> list[str]:
    """Statements that (re)make TiPg's copy of a layer table: its id and properties, and the
    stored ``geom_3857`` as a typed 3857 column with its GiST index — the layer tables' own
    ``geom_3857`` is an untyped generated column (SRID unknown to the catalog), which TiPg
    cannot tile (its tiles come out empty); TiPg transforms a 3857 column to 3857: a no-op."""
    layer = load_catalog().get(layer_id)
    columns = ", ".join(["id", *(p.name for p in layer.properties)])
    table = f"{TIPG_SCHEMA}.{layer.table}"
    return [
        f"CREATE SCHEMA IF NOT EXISTS {TIPG_SCHEMA}",
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} AS SELECT {columns},"
        f" geom_3857::geometry({layer.geometry_type}, 3857) AS geom FROM public.{layer.table}",
        f"ALTER TABLE {table} ADD PRIMARY KEY (id)",
        f"CREATE INDEX ON {table} USING gist (geom)",
        f"ANALYZE {table}",
    ]


def tipg_url(base: str, layer_id: str, z: int, x: int, y: int) -> str:
    """A TiPg tile of its copy of the layer (``tipg_tables_sql``), with the properties this
    service's tile of that zoom carries."""
    layer = load_catalog().get(layer_id)
    properties = ",".join(tile_properties(layer, z))
    return f"{base}/collections/{TIPG_SCHEMA}.{layer.table}/tiles/WebMercatorQuad/{z}/{x}/{y}?properties={properties}"
