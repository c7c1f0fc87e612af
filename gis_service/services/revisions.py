"""Revisions, diffs, features as of a revision or date, and exports of a layer.

The SQL comes from :mod:`layers.history` and :mod:`layers.exporter` (shared with the
CLI); these functions run it on the service's async connections and translate history
errors into service errors.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from gis_service.errors import InvalidRequest, NotFound
from gis_service.services import resolve
from layers import geojson
from layers.catalog import Layer
from layers.crs import CRSProblem
from layers.exporter import ExportError, ExportResult, export_sql, export_to_temp, format_for, rows_to_frame
from layers.history import (
    HistoryError,
    RevisionNotFound,
    diff_features_sql,
    diff_totals_sql,
    features_as_of_sql,
    has_history,
    require_history,
    resolve_range,
    revision_record,
    revisions_sql,
    shape_diff,
)


def _require_history(layer: Layer) -> None:
    try:
        require_history(layer)
    except HistoryError as exc:
        raise NotFound(str(exc)) from None


async def list_revisions(conn: AsyncConnection, layer: Layer, scope: FeatureScope | None = None) -> dict[str, Any]:
    """The layer's revisions, newest first; their feature counts those of what the caller's
    ``scope`` lets it read."""
    _require_history(layer)
    inside = scope.inside(layer, "h") if scope is not None and scope.filters(layer) else None
    query, params = revisions_sql(layer, inside)
    cursor = await conn.execute(query, {**params, **(scope_params(scope) if inside is not None else {})})
    return {"layer": layer.id, "revisions": [revision_record(row) for row in await cursor.fetchall()]}


async def diff(
    conn: AsyncConnection, layer: Layer, start: int | None, end: int | None, scope: FeatureScope | None = None
) -> dict[str, Any]:
    """Features added, removed and changed between two revisions, with areas gained and lost, of
    what the caller's ``scope`` lets it read at each revision (a feature leaving the area is removed)."""
    _require_history(layer)
    try:
        span = resolve_range(await resolve.latest_revision(conn, layer), start, end)
    except RevisionNotFound as exc:
        raise NotFound(str(exc)) from None
    view = (lambda features: scoped_table(layer, scope, features)) if scope is not None else None
    query, params = diff_features_sql(layer, span, view)
    cursor = await conn.execute(query, {**params, **scope_params(scope)})
    features = await cursor.fetchall()
    query, params = diff_totals_sql(layer, span, view)
    cursor = await conn.execute(query, {**params, **scope_params(scope)})
    totals = await cursor.fetchone()
    return shape_diff(layer, span, features, totals)


async def check_revision(
    conn: AsyncConnection, layer: Layer, revision: int | None, asof: str | None, loaded_asof: str | None = None
) -> int | None:
    """The revision ``revision``/``asof``/``loaded_asof`` select (checked by the shared resolver);
    with none, the layer's latest revision (None for layers without history)."""
    moment, basis = resolve.asof_basis(asof, loaded_asof)
    number = await resolve.revision(conn, layer, revision, moment, by=basis)
    if number is None and has_history(layer):
        return await resolve.latest_revision(conn, layer)
    return number


async def features_geojson(
    conn: AsyncConnection,
    layer: Layer,
    revision: int | None,
    asof: str | None,
    limit: int,
    offset: int,
    scope: FeatureScope | None = None,
    loaded_asof: str | None = None,
) -> tuple[str, bool, int | None]:
    """A GeoJSON FeatureCollection (text) of the layer as of a revision or date (what the
    caller's ``scope`` lets it read).

    Returns the document, whether more features follow, and the revision it shows.
    """
    number = await check_revision(conn, layer, revision, asof, loaded_asof)
    historic = revision is not None or asof is not None or loaded_asof is not None
    subquery, params = features_as_of_sql(layer, number if historic else None)
    feature = geojson.feature(
        geojson.column("t", layer.id_column),
        geojson.column("t", layer.geometry_column),
        geojson.columns_object("t", layer.property_names),
    )
    query = sql.SQL(
        "SELECT {feature}::text FROM {features} AS t ORDER BY t.{id} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(feature=feature, features=scoped_table(layer, scope, subquery), id=sql.Identifier(layer.id_column))
    cursor = await conn.execute(query, {**params, **scope_params(scope), "limit": limit + 1, "offset": offset})
    rows = [row[0] for row in await cursor.fetchall()]
    more = len(rows) > limit
    header = f'{{"type":"FeatureCollection","layer":"{layer.id}","revision":{"null" if number is None else number},'
    body = header + f'"numberReturned":{min(len(rows), limit)},"features":[' + ",".join(rows[:limit]) + "]}"
    return body, more, number


async def export(
    conn: AsyncConnection,
    layer: Layer,
    fmt: str,
    crs: str | None,
    revision: int | None,
    asof: str | None,
    scope: FeatureScope | None = None,
    loaded_asof: str | None = None,
) -> ExportResult:
    """Write the layer (what the caller's ``scope`` lets it read) to a file in a new temporary
    directory (the caller deletes it)."""
    try:
        export_format = format_for(f"export.{fmt}", fmt)
    except ExportError as exc:
        raise InvalidRequest(str(exc)) from None
    number = await check_revision(conn, layer, revision, asof, loaded_asof)
    historic = revision is not None or asof is not None or loaded_asof is not None
    query, params = export_sql(layer, number if historic else None, view=lambda f: scoped_table(layer, scope, f))
    cursor = await conn.execute(query, {**params, **scope_params(scope)})
    rows = await cursor.fetchall()
    name = (
        layer.id + (f"_r{number}" if historic else "") + (f"_{re.sub(r'[^A-Za-z0-9]+', '', crs)[:24]}" if crs else "")
    )
    try:
        return await asyncio.to_thread(_write, layer, rows, export_format, crs, name)
    except (ExportError, CRSProblem) as exc:
        raise InvalidRequest(str(exc)) from None


def _write(layer: Layer, rows: list[tuple[Any, ...]], fmt: Any, crs: str | None, name: str) -> ExportResult:
    return export_to_temp(rows_to_frame(layer, rows), layer, fmt, crs, name)
