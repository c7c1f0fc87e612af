"""Name search across every layer and the chiefs.

Each layer contributes its name property and the other naming properties it has
(English name, code, segment, protected-area or water-source name). Matches rank
exact > prefix > substring (case-insensitive), then shorter names first. ILIKE with a
bound, escaped pattern is plenty for this data size (a few thousand names).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from layers.catalog import Layer

SEARCHED_PROPERTIES = ("name", "name_zh", "name_en", "code", "segment", "area_name", "source_name")
MAX_RESULTS = 100
SCORES = {"exact": 3.0, "prefix": 2.0, "substring": 1.0}


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _columns(layer: Layer) -> list[str]:
    names = [layer.name_property]
    names += [n for n in SEARCHED_PROPERTIES if n != layer.name_property and layer.get_property(n) is not None]
    return names


def _score(columns: list[sql.Composable]) -> sql.Composable:
    """The best match class over some text columns (3 exact, 2 prefix, 1 substring, 0 none)."""
    cases = [
        sql.SQL(
            "CASE WHEN lower({c}) = lower(%(q)s) THEN 3 WHEN {c} ILIKE %(prefix)s ESCAPE '\\' THEN 2 "
            "WHEN {c} ILIKE %(substring)s ESCAPE '\\' THEN 1 ELSE 0 END"
        ).format(c=c)
        for c in columns
    ]
    return sql.SQL("GREATEST({})").format(sql.SQL(", ").join(cases)) if len(cases) > 1 else cases[0]


def _layer_part(layer: Layer, scope: FeatureScope | None = None) -> sql.Composable:
    names = _columns(layer)
    columns = [sql.SQL("t.{}::text").format(sql.Identifier(n)) for n in names]
    geom = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
    name_en = sql.SQL("t.name_en") if layer.get_property("name_en") is not None else sql.SQL("NULL::text")
    detail_names = [n for n in ("segment", "code", "area_name") if n in names]
    detail = sql.SQL("t.{}::text").format(sql.Identifier(detail_names[0])) if detail_names else sql.SQL("NULL::text")
    return sql.SQL(
        "SELECT {layer} AS layer, t.{id} AS id, t.{name}::text AS name, {name_en} AS name_en, {detail} AS detail, "
        "{score} AS score, ARRAY[ST_XMin({g}), ST_YMin({g}), ST_XMax({g}), ST_YMax({g})] AS bbox "
        "FROM {table} AS t WHERE {score} > 0"
    ).format(
        layer=sql.Literal(layer.id),
        id=sql.Identifier(layer.id_column),
        name=sql.Identifier(layer.name_property),
        name_en=name_en,
        detail=detail,
        score=_score(columns),
        g=geom,
        table=scoped_table(layer, scope),
    )


_CHIEFS = """
    SELECT 'chief' AS layer, c.id, c.name, NULL::text AS name_en, c.title AS detail,
           {score} AS score,
           (SELECT ARRAY[min(b.x0), min(b.y0), max(b.x1), max(b.y1)] FROM chief_assignment AS a
            CROSS JOIN LATERAL (
                SELECT ST_XMin(g) AS x0, ST_YMin(g) AS y0, ST_XMax(g) AS x1, ST_YMax(g) AS y1 FROM (
                    SELECT geom AS g FROM {river} AS r WHERE a.layer = 'river' AND r.id = a.feature_id
                    UNION ALL SELECT geom FROM {bay} AS b WHERE a.layer = 'bay' AND b.id = a.feature_id
                    UNION ALL SELECT geom FROM {watershed} AS w WHERE a.layer = 'watershed' AND w.id = a.feature_id
                ) AS u
            ) AS b WHERE a.chief_id = c.id) AS bbox
    FROM chief AS c WHERE {score} > 0
"""
"""Chiefs matching, with the extent of their units (those the caller's scope lets it read)."""
CHIEF_UNIT_LAYERS = ("river", "bay", "watershed")


def _chiefs_part(layers: dict[str, Layer], scope: FeatureScope | None) -> sql.Composable:
    tables = {
        layer_id: scoped_table(layers[layer_id], scope) if layer_id in layers else sql.Identifier(layer_id)
        for layer_id in CHIEF_UNIT_LAYERS
    }
    return sql.SQL(_CHIEFS).format(score=_score([sql.SQL("c.name"), sql.SQL("c.title")]), **tables)


async def search(
    conn: AsyncConnection,
    catalog: Iterable[Layer],
    query: str,
    limit: int = 20,
    *,
    chiefs: bool = True,
    scope: FeatureScope | None = None,
) -> list[dict[str, Any]]:
    """Features of these layers (and chiefs, unless ``chiefs`` is false) whose names match the
    query, best first; only those the caller's ``scope`` lets it read."""
    text = query.strip()
    if not text:
        return []
    pattern = escape_like(text)
    layers = list(catalog)
    parts = [_layer_part(layer, scope) for layer in layers]
    if chiefs:
        parts.append(_chiefs_part({layer.id: layer for layer in layers}, scope))
    if not parts:
        return []
    statement = sql.SQL(
        "SELECT * FROM ({}) AS hits ORDER BY score DESC, length(name), layer, id LIMIT %(limit)s"
    ).format(sql.SQL(" UNION ALL ").join(parts))
    cursor = await conn.execute(
        statement,
        {
            "q": text,
            "prefix": pattern + "%",
            "substring": "%" + pattern + "%",
            "limit": min(limit, MAX_RESULTS),
            **scope_params(scope),
        },
    )
    columns = [c.name for c in cursor.description or []]
    results = []
    for row in await cursor.fetchall():
        hit = dict(zip(columns, row, strict=True))
        hit["score"] = float(hit["score"])
        if hit["bbox"] is not None and hit["bbox"][0] is None:
            hit["bbox"] = None
        results.append(hit)
    return results
