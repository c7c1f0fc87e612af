"""Revisions, diffs, features as of a revision or date, and exports of a layer.

The SQL comes from :mod:`layers.history` and :mod:`layers.exporter` (shared with the
CLI); these functions run it on the service's async connections and translate history
errors into service errors.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from gis_service.errors import InvalidRequest, NotFound
from gis_service.services import resolve
from layers import geojson
from layers.catalog import Layer
from layers.crs import CRSProblem
from layers.exporter import ExportError, ExportResult, export_sql, export_to_temp, format_for, rows_to_frame
from layers.filters import FilterError, parse_filter
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
    selection: ExportSelection | None = None,
) -> ExportResult:
    """Write the layer (what the caller's ``scope`` lets it read; with ``selection``, its filter and
    chosen ids) to a file in a new temporary directory (the caller deletes it)."""
    try:
        export_format = format_for(f"export.{fmt}", fmt)
    except ExportError as exc:
        raise InvalidRequest(str(exc)) from None
    number = await check_revision(conn, layer, revision, asof, loaded_asof)
    historic = revision is not None or asof is not None or loaded_asof is not None
    where, where_params = (selection or ExportSelection()).condition(layer)
    query, params = export_sql(
        layer, number if historic else None, view=lambda f: scoped_table(layer, scope, f), where=where
    )
    cursor = await conn.execute(query, {**params, **scope_params(scope), **where_params})
    rows = await cursor.fetchall()
    name = (
        layer.id + (f"_r{number}" if historic else "") + (f"_{re.sub(r'[^A-Za-z0-9]+', '', crs)[:24]}" if crs else "")
    )
    try:
        return await asyncio.to_thread(_write, layer, rows, export_format, crs, name)
    except (ExportError, CRSProblem) as exc:
        raise InvalidRequest(str(exc)) from None


MAX_SELECTED_IDS = 1_000
"""Feature ids an export may name (``ids``; a larger set is exported by its filter)."""
MAX_IDS_LENGTH = 8_000
"""Characters of ``ids``: the URL stays within what servers and proxies accept."""


@dataclass(frozen=True)
class ExportSelection:
    """What of a layer an export writes: the features matching a CQL2 ``filter`` and, when
    ``ids`` is given, only those ids (a selection on the map or in the table)."""

    filter_text: str | None = None
    filter_lang: str = "cql2-text"
    ids: str | None = None

    def condition(self, layer: Layer) -> tuple[sql.Composable | None, dict[str, Any]]:
        """The condition over alias ``t`` and its values; 400 naming what to fix."""
        conditions: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if self.filter_text:
            try:
                compiled = parse_filter(self.filter_text, layer, prefix="export_f", language=self.filter_lang)
            except FilterError as exc:
                raise InvalidRequest(f"filter: {exc}") from None
            conditions.append(sql.SQL("({})").format(compiled.where))
            params.update(compiled.params)
        if self.ids is not None:
            try:
                ids = sorted({int(part) for part in self.ids.split(",") if part.strip()})
            except ValueError:
                raise InvalidRequest(
                    f"ids must be feature ids separated by commas, e.g. ids=3,17 (got {self.ids[:40]!r})"
                ) from None
            if len(ids) > MAX_SELECTED_IDS:
                raise InvalidRequest(
                    f"ids names {len(ids)} features; at most {MAX_SELECTED_IDS} (use a filter instead)"
                )
            conditions.append(sql.SQL("t.{} = ANY(%(export_ids)s)").format(sql.Identifier(layer.id_column)))
            params["export_ids"] = ids
        if not conditions:
            return None, {}
        return sql.SQL(" AND ").join(conditions), params


def _write(layer: Layer, rows: list[tuple[Any, ...]], fmt: Any, crs: str | None, name: str) -> ExportResult:
    return export_to_temp(rows_to_frame(layer, rows), layer, fmt, crs, name)
