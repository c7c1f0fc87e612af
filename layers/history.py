"""Revision history of red lines and protected areas: SQL for features as of a revision or
date, the revision log, and diffs between revisions.

The tables and triggers are created by migration 0004 (``layer_revision`` and
``<table>_history``). Everything here builds SQL from validated catalog identifiers
(``sql.Identifier``) with values bound as *named* parameters, so the same statements
run on the sync connections of the CLI and the async ones of the service, and a
subquery can be embedded in a larger statement (e.g. the tile SQL) without clashes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql

from layers.catalog import Layer

HISTORY_LAYERS = ("redline", "protected_area")
"""Layers whose every revision is kept (migration 0004)."""

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
"""Dates without a time of day (``asof=2025-06-30``) mean the end of that day in China."""

AsOfBasis = Literal["valid", "loaded"]
"""What ``asof`` compares: the legal validity date of each revision, or the time it was loaded."""


EXTRA_COLUMNS = ("geom_3857", "is_sample", "updated_at")
"""Table columns besides the id, properties and geometry that a features subquery keeps."""


class HistoryError(ValueError):
    """A request about history that cannot be answered (no history kept, unknown revision)."""


class RevisionNotFound(HistoryError):
    """The requested revision does not exist (yet)."""


def has_history(layer: Layer) -> bool:
    """True when the layer keeps a revision history."""
    return layer.id in HISTORY_LAYERS


def require_history(layer: Layer) -> None:
    """Raise HistoryError naming the layers that do keep history."""
    if not has_history(layer):
        raise HistoryError(
            f"layer {layer.id!r} keeps no revision history; revisions are kept for: {', '.join(HISTORY_LAYERS)}"
        )


def history_table(layer: Layer) -> sql.Identifier:
    return sql.Identifier(f"{layer.table}_history")


def feature_columns(layer: Layer) -> list[str]:
    """The columns a features subquery exposes, the same for current and historic data."""
    columns = [layer.id_column, *layer.property_names, layer.geometry_column]
    return columns + [c for c in EXTRA_COLUMNS if c not in columns]


def parse_asof(value: str | dt.date | dt.datetime) -> dt.datetime:
    """Read an ``asof`` value: an ISO date (end of that day, China time) or date-time.

    A date-time without a UTC offset is taken as China Standard Time (UTC+8).
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time.max)
    else:
        text = value.strip()
        try:
            if len(text) == 10:
                moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time.max)
            else:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise HistoryError(
                f"asof {value!r} is not a date or date-time; use e.g. 2025-06-30 or 2025-06-30T12:00:00+08:00"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA_STANDARD_TIME)


def features_as_of_sql(
    layer: Layer,
    revision: int | None = None,
    asof: dt.datetime | dt.date | str | None = None,
    *,
    prefix: str = "asof_",
    by: AsOfBasis = "valid",
) -> tuple[sql.Composed, dict[str, Any]]:
    """A ``SELECT`` of the layer's features as of a revision or a moment, and its parameters.

    With neither ``revision`` nor ``asof`` it selects the current table. The columns are
    the same in every case (:func:`feature_columns`: id, properties, ``geom``,
    ``geom_3857``, ``is_sample``, ``updated_at``), so callers embed it as
    ``FROM ({subquery}) AS t`` in place of the table; spatial filters on ``geom`` or
    ``geom_3857`` still use the history table's GiST indexes. Parameters are named
    ``%(<prefix>...)s`` so two of these can share one statement. ``asof`` selects the revision
    in force on that day by validity (``by="valid"``) or the one loaded by then
    (``by="loaded"``); see :func:`revision_at_query`.

    Raises:
        HistoryError: the layer keeps no history, or both revision and asof were given.
    """
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in feature_columns(layer))
    if revision is None and asof is None:
        return sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(layer.table)), {}
    require_history(layer)
    if revision is not None and asof is not None:
        raise HistoryError("give either a revision or an asof date, not both")
    rev_param = sql.Placeholder(f"{prefix}revision")
    if revision is not None:
        if revision < 0:
            raise HistoryError(f"revision must be 0 or more, not {revision}")
        query = sql.SQL(
            "SELECT {columns} FROM {hist} WHERE revision_from <= {rev} AND (revision_to IS NULL OR revision_to > {rev})"
        ).format(columns=columns, hist=history_table(layer), rev=rev_param)
        return query, {f"{prefix}revision": int(revision)}
    number, params = revision_at_query(layer, asof, by=by, prefix=prefix)  # type: ignore[arg-type]
    query = sql.SQL(
        "SELECT {columns} FROM {hist} AS h, ({number}) AS asof(n)"
        " WHERE h.revision_from <= asof.n AND (h.revision_to IS NULL OR h.revision_to > asof.n)"
    ).format(
        columns=sql.SQL(", ").join(sql.SQL("h.{}").format(sql.Identifier(c)) for c in feature_columns(layer)),
        hist=history_table(layer),
        number=number,
    )
    return query, params


def china_day(moment: dt.datetime) -> dt.date:
    """The calendar day in China of a moment (validity dates are China calendar days)."""
    return moment.astimezone(CHINA_STANDARD_TIME).date()


def revision_valid_from(layer: Layer, revision: sql.Composable) -> sql.Composable:
    """The day a revision (a ``layer_revision`` row, alias given) takes legal effect.

    The latest temporal start (catalog ``temporal.start``: a red line's ``valid_from``, a
    protected area's ``established`` year as 1 January) among the feature versions the
    revision wrote; a revision that wrote none (it only removed features) or whose features
    carry no date takes effect on the China day it was loaded.
    """
    loaded = sql.SQL("({}.created_at AT TIME ZONE 'Asia/Shanghai')::date").format(revision)
    start = layer.temporal.start if layer.temporal is not None else None
    prop = layer.get_property(start) if start is not None else None
    if prop is None or prop.type not in ("date", "integer"):
        return loaded
    value = sql.SQL("max(h.{})").format(sql.Identifier(prop.name))
    if prop.type == "integer":
        value = sql.SQL("make_date({}::int, 1, 1)").format(value)
    return sql.SQL("coalesce((SELECT {value} FROM {hist} AS h WHERE h.revision_from = {r}.number), {loaded})").format(
        value=value, hist=history_table(layer), r=revision, loaded=loaded
    )


def revision_at_query(
    layer: Layer, asof: dt.datetime | dt.date | str, *, by: AsOfBasis = "valid", prefix: str = ""
) -> tuple[sql.Composed, dict[str, Any]]:
    """``SELECT`` of the number of the layer's revision in force at a moment (0 = none).

    ``by="valid"`` (what ``asof`` means): the latest revision whose validity date
    (:func:`revision_valid_from`) is on or before the moment's China calendar day.
    ``by="loaded"``: the latest revision loaded (``created_at``) at or before the moment.
    """
    moment = parse_asof(asof)
    layer_param = sql.Placeholder(f"{prefix}layer")
    if by == "loaded":
        query = sql.SQL(
            "SELECT coalesce(max(number), 0) FROM layer_revision WHERE layer = {layer} AND created_at <= {moment}"
        ).format(layer=layer_param, moment=sql.Placeholder(f"{prefix}time"))
        return query, {f"{prefix}layer": layer.id, f"{prefix}time": moment}
    query = sql.SQL(
        "SELECT coalesce(max(r.number), 0) FROM layer_revision AS r WHERE r.layer = {layer} AND {valid} <= {day}"
    ).format(
        layer=layer_param, valid=revision_valid_from(layer, sql.Identifier("r")), day=sql.Placeholder(f"{prefix}day")
    )
    return query, {f"{prefix}layer": layer.id, f"{prefix}day": china_day(moment)}


def revision_at_sql(
    layer: Layer, asof: dt.datetime | dt.date | str, *, by: AsOfBasis = "valid"
) -> tuple[sql.Composed, dict[str, Any]]:
    """The number of the layer's revision in force at a moment (0 = none); see :func:`revision_at_query`."""
    return revision_at_query(layer, asof, by=by)


REVISION_FIELDS = (
    "number",
    "created_at",
    "author",
    "origin",
    "source_file",
    "checksum",
    "approval_doc",
    "note",
    "feature_count",
    "features_added",
    "features_removed",
    "features_changed",
)


COUNT_FIELDS = ("feature_count", "features_added", "features_removed", "features_changed")
"""The fields of a revision that count its features (recomputed for a caller who reads only some)."""


def revisions_sql(layer: Layer, inside: sql.Composable | None = None) -> tuple[sql.Composed, dict[str, Any]]:
    """The layer's revisions, newest first (columns: :data:`REVISION_FIELDS`, then the day the
    revision takes effect, :func:`revision_valid_from`).

    ``inside``: a condition on a version of a feature (alias ``h``, a row of the history table)
    saying whether the caller reads it (a per-feature scope). The counts are then those of the
    layer as the caller reads it: features inside as of each revision, and added, removed or
    changed between the revision before and it (a feature moving into the area is added).
    """
    if inside is None:
        query = sql.SQL("SELECT {}, {} FROM layer_revision AS r WHERE layer = %(layer)s ORDER BY number DESC").format(
            sql.SQL(", ").join(sql.Identifier(f) for f in REVISION_FIELDS),
            revision_valid_from(layer, sql.Identifier("r")),
        )
        return query, {"layer": layer.id}
    fields = [sql.SQL("r.{}").format(sql.Identifier(f)) for f in REVISION_FIELDS if f not in COUNT_FIELDS]
    query = sql.SQL(
        """
        WITH v AS MATERIALIZED (SELECT h.{id} AS id, h.revision_from, h.revision_to FROM {hist} AS h WHERE {inside})
        SELECT {fields},
               (SELECT count(*) FROM v WHERE v.revision_from <= r.number
                                         AND (v.revision_to IS NULL OR v.revision_to > r.number))::int,
               (SELECT count(*) FROM v AS s WHERE s.revision_from = r.number
                 AND NOT EXISTS (SELECT FROM v AS e WHERE e.id = s.id AND e.revision_to = r.number))::int,
               (SELECT count(*) FROM v AS e WHERE e.revision_to = r.number
                 AND NOT EXISTS (SELECT FROM v AS s WHERE s.id = e.id AND s.revision_from = r.number))::int,
               (SELECT count(*) FROM v AS s JOIN v AS e ON e.id = s.id
                 WHERE s.revision_from = r.number AND e.revision_to = r.number)::int,
               {valid_from}
        FROM layer_revision AS r WHERE r.layer = %(layer)s ORDER BY r.number DESC
        """
    ).format(
        id=sql.Identifier(layer.id_column),
        hist=history_table(layer),
        inside=inside,
        fields=sql.SQL(", ").join(fields),
        valid_from=revision_valid_from(layer, sql.Identifier("r")),
    )
    return query, {"layer": layer.id}


def latest_revision_sql(layer: Layer) -> tuple[sql.Composed, dict[str, Any]]:
    """The number of the layer's latest revision (0 when it has none)."""
    return sql.Composed([sql.SQL("SELECT coalesce(max(number), 0) FROM layer_revision WHERE layer = %(layer)s")]), {
        "layer": layer.id
    }


def revision_record(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row of :func:`revisions_sql` as JSON-ready data."""
    record = dict(zip((*REVISION_FIELDS, "valid_from"), row, strict=True))
    record["created_at"] = record["created_at"].isoformat()
    record["valid_from"] = record["valid_from"].isoformat()
    return record


@dataclass(frozen=True)
class DiffRange:
    """Two revisions to compare; 0 stands for the empty layer before its first revision."""

    start: int
    end: int


def resolve_range(latest: int, start: int | None, end: int | None) -> DiffRange:
    """Default ``end`` to the latest revision and ``start`` to the one before; check both exist."""
    if latest == 0:
        raise RevisionNotFound("the layer has no revision yet; import data first")
    end = latest if end is None else end
    start = max(end - 1, 0) if start is None else start
    for name, value in (("from", start), ("to", end)):
        if not 0 <= value <= latest:
            raise RevisionNotFound(f"revision {name}={value} does not exist; revisions are 1 to {latest} (0 = empty)")
    return DiffRange(start, end)


def _props_json(layer: Layer, alias: str) -> sql.Composed:
    parts: list[sql.Composable] = []
    for name in layer.property_names:
        parts.extend([sql.Literal(name), sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(name))])
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(parts))


View = Callable[[sql.Composable], sql.Composable]
"""Turns a features subquery into what is read in its place (a caller's scope: ``(SELECT …)``)."""


def _pairs_cte(layer: Layer, span: DiffRange, view: View | None = None) -> tuple[sql.Composed, dict[str, Any]]:
    """``a`` / ``b`` = the features at the two revisions (as ``view`` shows them), ``pairs`` =
    joined by feature id."""
    before, before_params = features_as_of_sql(layer, span.start, prefix="from_")
    after, after_params = features_as_of_sql(layer, span.end, prefix="to_")
    if view is not None:
        before = sql.SQL("SELECT * FROM {} AS v").format(view(before))
        after = sql.SQL("SELECT * FROM {} AS v").format(view(after))
    query = sql.SQL(
        """
        WITH a AS ({before}), b AS ({after}),
        pairs AS (
            SELECT coalesce(b.{id}, a.{id}) AS id, a.{id} IS NULL AS added, b.{id} IS NULL AS removed,
                   a.{geom} AS ga, b.{geom} AS gb, {props_a} AS pa, {props_b} AS pb
            FROM a FULL JOIN b ON a.{id} = b.{id}
        )
        """
    ).format(
        before=before,
        after=after,
        id=sql.Identifier(layer.id_column),
        geom=sql.Identifier(layer.geometry_column),
        props_a=_props_json(layer, "a"),
        props_b=_props_json(layer, "b"),
    )
    return query, {**before_params, **after_params}


def diff_features_sql(layer: Layer, span: DiffRange, view: View | None = None) -> tuple[sql.Composed, dict[str, Any]]:
    """Features added, removed or changed between two revisions, with their areas (km², ellipsoidal);
    ``view``: what the caller reads of the features at each revision (default: all).

    Columns: id, change, properties before, properties after, geometry changed,
    area before, area after, area gained, area lost.
    """
    pairs, params = _pairs_cte(layer, span, view)
    query = sql.SQL(
        """{pairs}
        SELECT id, CASE WHEN added THEN 'added' WHEN removed THEN 'removed' ELSE 'changed' END,
               CASE WHEN added THEN NULL ELSE pa END, CASE WHEN removed THEN NULL ELSE pb END,
               ga IS DISTINCT FROM gb,
               ST_Area(ga::geography) / 1e6, ST_Area(gb::geography) / 1e6,
               CASE WHEN added THEN ST_Area(gb::geography)
                    WHEN removed OR ga = gb THEN 0
                    ELSE ST_Area(ST_Difference(ST_MakeValid(gb), ST_MakeValid(ga))::geography) END / 1e6,
               CASE WHEN removed THEN ST_Area(ga::geography)
                    WHEN added OR ga = gb THEN 0
                    ELSE ST_Area(ST_Difference(ST_MakeValid(ga), ST_MakeValid(gb))::geography) END / 1e6
        FROM pairs
        WHERE added OR removed OR pa IS DISTINCT FROM pb OR ga IS DISTINCT FROM gb
        ORDER BY id
        """
    ).format(pairs=pairs)
    return query, params


def diff_totals_sql(layer: Layer, span: DiffRange, view: View | None = None) -> tuple[sql.Composed, dict[str, Any]]:
    """Area of the layer at both revisions and the territory gained and lost (km², ellipsoidal),
    of the features ``view`` shows (default: all).

    Gained = union(after) minus union(before), lost = the reverse. Only moved geometry is
    unioned: features whose geometry did not change are in both unions and are only
    subtracted where they touch the moved parts.
    """
    pairs, params = _pairs_cte(layer, span, view)
    query = sql.SQL(
        """{pairs},
        moved_a AS (SELECT ST_Union(ST_MakeValid(ga)) AS g FROM pairs WHERE ga IS NOT NULL AND ga IS DISTINCT FROM gb),
        moved_b AS (SELECT ST_Union(ST_MakeValid(gb)) AS g FROM pairs WHERE gb IS NOT NULL AND ga IS DISTINCT FROM gb),
        empty AS (SELECT 'SRID=4326;GEOMETRYCOLLECTION EMPTY'::geometry AS g),
        kept_near_b AS (SELECT ST_Union(ST_MakeValid(ga)) AS g FROM pairs, moved_b WHERE ga = gb AND ga && moved_b.g),
        kept_near_a AS (SELECT ST_Union(ST_MakeValid(gb)) AS g FROM pairs, moved_a WHERE ga = gb AND gb && moved_a.g)
        SELECT
            (SELECT coalesce(sum(ST_Area(ga::geography)), 0) FROM pairs) / 1e6,
            (SELECT coalesce(sum(ST_Area(gb::geography)), 0) FROM pairs) / 1e6,
            coalesce(ST_Area(ST_Difference(
                mb.g, ST_Union(ARRAY[coalesce(ma.g, e.g), coalesce(kb.g, e.g)]))::geography), 0) / 1e6,
            coalesce(ST_Area(ST_Difference(
                ma.g, ST_Union(ARRAY[coalesce(mb.g, e.g), coalesce(ka.g, e.g)]))::geography), 0) / 1e6
        FROM moved_a AS ma, moved_b AS mb, empty AS e, kept_near_a AS ka, kept_near_b AS kb
        """
    ).format(pairs=pairs)
    return query, params


def _km2(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def shape_diff(
    layer: Layer, span: DiffRange, features: list[tuple[Any, ...]], totals: tuple[Any, ...] | None
) -> dict[str, Any]:
    """Turn the rows of :func:`diff_features_sql` and :func:`diff_totals_sql` into the diff document."""
    items = []
    counts = {"added": 0, "removed": 0, "changed": 0}
    for fid, change, before, after, geometry_changed, area_a, area_b, gained, lost in features:
        counts[change] += 1
        props = after if after is not None else before
        item: dict[str, Any] = {
            "id": fid,
            "change": change,
            "name": (props or {}).get(layer.name_property),
            "properties": props,
            "area_from_km2": _km2(area_a),
            "area_to_km2": _km2(area_b),
            "area_gained_km2": _km2(gained),
            "area_lost_km2": _km2(lost),
        }
        if change == "changed":
            item["geometry_changed"] = bool(geometry_changed)
            item["changed_properties"] = {
                key: {"from": before.get(key), "to": after.get(key)}
                for key in layer.property_names
                if before.get(key) != after.get(key)
            }
        items.append(item)
    area_a, area_b, gained, lost = totals or (0.0, 0.0, 0.0, 0.0)
    return {
        "layer": layer.id,
        "from": span.start,
        "to": span.end,
        "summary": {
            **counts,
            "area_from_km2": _km2(area_a),
            "area_to_km2": _km2(area_b),
            "area_gained_km2": _km2(gained),
            "area_lost_km2": _km2(lost),
            "area_method": "ellipsoidal (PostGIS geography, WGS84)",
        },
        "features": items,
    }


def diff_revisions(conn: Any, layer: Layer, start: int | None = None, end: int | None = None) -> dict[str, Any]:
    """The diff between two revisions on a sync psycopg connection (the CLI's)."""
    require_history(layer)
    latest = conn.execute(*latest_revision_sql(layer)).fetchone()[0]
    span = resolve_range(latest, start, end)
    features = conn.execute(*diff_features_sql(layer, span)).fetchall()
    totals = conn.execute(*diff_totals_sql(layer, span)).fetchone()
    return shape_diff(layer, span, features, totals)


def list_revisions(conn: Any, layer: Layer) -> list[dict[str, Any]]:
    """The layer's revisions, newest first, on a sync psycopg connection."""
    require_history(layer)
    return [revision_record(row) for row in conn.execute(*revisions_sql(layer)).fetchall()]
