"""Search: coordinates, gazetteer places, and names across every layer and the chiefs.

Matching rules (README "Search"), each giving a score; a result keeps its best:

- a coordinate the text denotes (:mod:`gis_service.services.coordinates`): 10, first;
- a name (Chinese, English, a place's aliases; case-insensitive) equal to the text: 3,
  starting with it: 2, containing it: 1;
- a place's pinyin (syllables run together, tones and spaces ignored) equal to the text: 2.8,
  starting with it (3 letters or more): 1.9; its pinyin initials equal to the text (2 letters
  or more): 2.5, starting with it: 1.5 (``yundanghu``, ``yun dang hu`` and ``ydh`` find 筼筜湖);
- Chinese text whose characters all occur in a name in the same order (``厦大`` in 厦门大学): 0.9;
  of three characters or more, two thirds of whose characters occur in a name (``筼当湖``): 0.6;
- fuzzy: trigram similarity (pg_trgm) of at least 0.3 to a name, or 0.4 to a place's pinyin
  (``yundanhu``): 0.4 + 0.5 × similarity (below 0.9).

Ties: shorter names first, then places before layer features. Layer features are read through
the caller's scope (only the layers and features it may read); places are public reference
data, like a basemap's labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from gis_service.services.coordinates import read_coordinates
from layers.catalog import Layer
from layers.regions import Region

SEARCHED_PROPERTIES = ("name", "name_zh", "name_en", "code", "segment", "area_name", "source_name")
MAX_RESULTS = 100
NAME_SIMILARITY = 0.3
PINYIN_SIMILARITY = 0.4
COORDINATE_SCORE = 10.0
_CJK = re.compile(r"[\u3400-\u9fff]")
_PINYIN_TEXT = re.compile(r"^[A-Za-zÜüv\s'’0-9-]+$")


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def pinyin_key(text: str) -> str:
    """The text as run-together toneless pinyin (``Yun dang hu``, ``yun2dang1hu2`` → ``yundanghu``);
    empty when it is not Latin letters."""
    if not _PINYIN_TEXT.match(text):
        return ""
    return re.sub(r"[^a-z]", "", text.lower().replace("ü", "v"))


def _columns(layer: Layer) -> list[str]:
    names = [layer.name_property]
    names += [n for n in SEARCHED_PROPERTIES if n != layer.name_property and layer.get_property(n) is not None]
    return names


def _name_score(column: sql.Composable) -> sql.Composable:
    """The score of one name column: exact, prefix, substring, in-order characters, fuzzy."""
    return sql.SQL(
        "CASE WHEN lower({c}) = lower(%(q)s) THEN 3 WHEN {c} ILIKE %(prefix)s ESCAPE '\\' THEN 2 "
        "WHEN {c} ILIKE %(substring)s ESCAPE '\\' THEN 1 "
        "WHEN %(in_order)s::text IS NOT NULL AND {c} LIKE %(in_order)s ESCAPE '\\' THEN 0.9 "
        "WHEN %(chars_needed)s::int IS NOT NULL AND (SELECT count(*) FROM unnest(%(chars)s::text[]) AS ch "
        "WHERE strpos({c}, ch) > 0) >= %(chars_needed)s::int THEN 0.6 "
        "WHEN similarity({c}, %(q)s) >= {threshold} THEN 0.4 + 0.5 * similarity({c}, %(q)s) ELSE 0 END"
    ).format(c=column, threshold=sql.Literal(NAME_SIMILARITY))


def _score(columns: list[sql.Composable]) -> sql.Composable:
    """The best score over some text columns (0 = no match)."""
    cases = [_name_score(c) for c in columns]
    return sql.SQL("GREATEST({})").format(sql.SQL(", ").join(cases)) if len(cases) > 1 else cases[0]


_RESULT_COLUMNS = (
    "{layer} AS layer, {id} AS id, {name} AS name, {name_en} AS name_en, {detail} AS detail, "
    "{approximate} AS approximate, {score}::float8 AS score, ARRAY[ST_XMin({g}), ST_YMin({g}), ST_XMax({g}), "
    "ST_YMax({g})] AS bbox"
)


def _layer_part(layer: Layer, scope: FeatureScope | None = None) -> sql.Composable:
    names = _columns(layer)
    columns = [sql.SQL("t.{}::text").format(sql.Identifier(n)) for n in names]
    name_en = sql.SQL("t.name_en") if layer.get_property("name_en") is not None else sql.SQL("NULL::text")
    detail_names = [n for n in ("segment", "code", "area_name") if n in names]
    detail = sql.SQL("t.{}::text").format(sql.Identifier(detail_names[0])) if detail_names else sql.SQL("NULL::text")
    return sql.SQL("SELECT * FROM (SELECT " + _RESULT_COLUMNS + " FROM {table} AS t) AS m WHERE m.score > 0").format(
        layer=sql.Literal(layer.id),
        id=sql.SQL("t.{}").format(sql.Identifier(layer.id_column)),
        name=sql.SQL("t.{}::text").format(sql.Identifier(layer.name_property)),
        name_en=name_en,
        detail=detail,
        approximate=sql.SQL("NULL::boolean"),
        score=_score(columns),
        g=sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column)),
        table=scoped_table(layer, scope),
    )


_PINYIN_SCORE = sql.SQL(
    "CASE WHEN %(py)s = '' THEN 0 WHEN p.pinyin_compact = %(py)s THEN 2.8 "
    "WHEN length(%(py)s) >= 2 AND p.initials = %(py)s THEN 2.5 "
    "WHEN length(%(py)s) >= 3 AND p.pinyin_compact LIKE %(py)s || '%%' THEN 1.9 "
    "WHEN length(%(py)s) >= 2 AND p.initials LIKE %(py)s || '%%' THEN 1.5 "
    "WHEN similarity(p.pinyin_compact, %(py)s) >= {threshold} THEN 0.4 + 0.5 * similarity(p.pinyin_compact, %(py)s) "
    "ELSE 0 END"
).format(threshold=sql.Literal(PINYIN_SIMILARITY))


def _places_part() -> sql.Composable:
    """Gazetteer places matching by name, English name, alias, pinyin, initials or fuzzily."""
    names = [sql.SQL("p.name_zh"), sql.SQL("p.name_en")]
    alias = sql.SQL("coalesce((SELECT max({}) FROM unnest(p.aliases) AS a(alias)), 0)").format(
        _name_score(sql.SQL("a.alias"))
    )
    score = sql.SQL("GREATEST({}, {}, {})").format(_score(names), alias, _PINYIN_SCORE)
    return sql.SQL("SELECT * FROM (SELECT " + _RESULT_COLUMNS + " FROM place AS p) AS m WHERE m.score > 0").format(
        layer=sql.Literal("place"),
        id=sql.SQL("p.id"),
        name=sql.SQL("p.name_zh"),
        name_en=sql.SQL("p.name_en"),
        detail=sql.SQL("p.kind"),
        approximate=sql.SQL("p.approximate"),
        score=score,
        g=sql.SQL("p.geom"),
    )


_CHIEFS = """
    SELECT * FROM (SELECT 'chief' AS layer, c.id, c.name, NULL::text AS name_en, c.title AS detail,
           NULL::boolean AS approximate, {score}::float8 AS score,
           (SELECT ARRAY[min(b.x0), min(b.y0), max(b.x1), max(b.y1)] FROM chief_assignment AS a
            CROSS JOIN LATERAL (
                SELECT ST_XMin(g) AS x0, ST_YMin(g) AS y0, ST_XMax(g) AS x1, ST_YMax(g) AS y1 FROM (
                    SELECT geom AS g FROM {river} AS r WHERE a.layer = 'river' AND r.id = a.feature_id
                    UNION ALL SELECT geom FROM {bay} AS b WHERE a.layer = 'bay' AND b.id = a.feature_id
                    UNION ALL SELECT geom FROM {watershed} AS w WHERE a.layer = 'watershed' AND w.id = a.feature_id
                ) AS u
            ) AS b WHERE a.chief_id = c.id) AS bbox
    FROM chief AS c) AS m WHERE m.score > 0
"""
"""Chiefs matching, with the extent of their units (those the caller's scope lets it read)."""
CHIEF_UNIT_LAYERS = ("river", "bay", "watershed")


def _chiefs_part(layers: dict[str, Layer], scope: FeatureScope | None) -> sql.Composable:
    tables = {
        layer_id: scoped_table(layers[layer_id], scope) if layer_id in layers else sql.Identifier(layer_id)
        for layer_id in CHIEF_UNIT_LAYERS
    }
    return sql.SQL(_CHIEFS).format(score=_score([sql.SQL("c.name"), sql.SQL("c.title")]), **tables)


def coordinate_results(text: str, region: Region) -> list[dict[str, Any]]:
    """The points a text denotes, as search results (layer ``coordinate``)."""
    results = []
    for reading in read_coordinates(text, region):
        lat = f"{abs(reading.lat):.5f}°{'N' if reading.lat >= 0 else 'S'}"
        lon = f"{abs(reading.lon):.5f}°{'E' if reading.lon >= 0 else 'W'}"
        results.append(
            {
                "layer": "coordinate",
                "id": None,
                "name": f"{lat} {lon}",
                "name_en": f"{lat} {lon}",
                "detail": reading.how,
                "approximate": None,
                "score": COORDINATE_SCORE,
                "bbox": [reading.lon, reading.lat, reading.lon, reading.lat],
                "lon": reading.lon,
                "lat": reading.lat,
                "inside": bool(region.contains(reading.lon, reading.lat)),
            }
        )
    return results


def _parameters(text: str) -> dict[str, Any]:
    pattern = escape_like(text)
    compact = re.sub(r"\s+", "", text)
    in_order, chars, needed = None, None, None
    if _CJK.search(compact) and len(compact) >= 2:
        in_order = "%" + "%".join(escape_like(c) for c in compact) + "%"
    if _CJK.search(compact) and len(set(compact)) >= 3:
        chars = sorted(set(compact))
        needed = -(-2 * len(chars) // 3)  # two thirds, rounded up
    return {
        "q": text,
        "prefix": pattern + "%",
        "substring": "%" + pattern + "%",
        "in_order": in_order,
        "chars": chars,
        "chars_needed": needed,
        "py": pinyin_key(text),
    }


async def search(
    conn: AsyncConnection,
    catalog: Iterable[Layer],
    query: str,
    limit: int = 20,
    *,
    chiefs: bool = True,
    scope: FeatureScope | None = None,
    places: bool = True,
    region: Region | None = None,
) -> list[dict[str, Any]]:
    """Coordinates (with ``region``), gazetteer places (with ``places``), features of these layers
    and chiefs (unless ``chiefs`` is false) matching the query, best first; features only those
    the caller's ``scope`` lets it read."""
    text = query.strip()
    if not text:
        return []
    limit = min(limit, MAX_RESULTS)
    results = coordinate_results(text, region) if region is not None else []
    layers = list(catalog)
    parts = [_layer_part(layer, scope) for layer in layers]
    if chiefs:
        parts.append(_chiefs_part({layer.id: layer for layer in layers}, scope))
    if places:
        parts.append(_places_part())
    if not parts or len(results) >= limit:
        return results[:limit]
    statement = sql.SQL(
        "SELECT * FROM ({}) AS hits ORDER BY score DESC, length(name), layer <> 'place', layer, id LIMIT %(limit)s"
    ).format(sql.SQL(" UNION ALL ").join(parts))
    cursor = await conn.execute(statement, {**_parameters(text), "limit": limit - len(results), **scope_params(scope)})
    columns = [c.name for c in cursor.description or []]
    for row in await cursor.fetchall():
        hit = dict(zip(columns, row, strict=True))
        hit["score"] = round(float(hit["score"]), 4)
        if hit["bbox"] is not None and hit["bbox"][0] is None:
            hit["bbox"] = None
        if hit["approximate"] is None:
            del hit["approximate"]
        results.append(hit)
    return results
