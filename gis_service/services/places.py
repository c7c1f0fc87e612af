"""Place labels for the map: the gazetteer's places as GeoJSON points with the zoom from which
the offline basemap labels them.

The gazetteer is small (a city's lakes, mountains, towns, universities…, a few hundred rows at
most), so the map asks once for the places of its region and MapLibre places the labels (symbol
collision, one label per place); ``bbox`` and ``limit`` keep a larger gazetteer's answer small.
Places are public reference data, like a basemap's labels.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

MAX_PLACES = 2000

LABEL_MINZOOM: dict[str, float] = {
    # Zoom from which a kind of place is labelled: districts and big water bodies first, the
    # villages and stations only close up.
    "district": 9.0,
    "bay": 10.0,
    "island": 10.0,
    "mountain": 11.0,
    "lake": 11.0,
    "reservoir": 11.0,
    "town": 11.0,
    "port": 12.0,
    "university": 12.0,
    "subdistrict": 12.5,
    "landmark": 13.0,
    "station": 13.0,
    "village": 13.5,
}
LABEL_RANK = {kind: rank for rank, kind in enumerate(LABEL_MINZOOM)}
"""Which label wins a collision (lower first): the order of ``LABEL_MINZOOM``."""


async def place_labels(
    conn: AsyncConnection,
    bbox: tuple[float, float, float, float] | None = None,
    kinds: list[str] | None = None,
    limit: int = 500,
) -> dict[str, Any]:
    """The places inside ``bbox`` (all without it), of ``kinds`` (all without them), as a GeoJSON
    FeatureCollection of points with ``name_zh``, ``name_en``, ``kind``, ``minzoom`` and ``rank``;
    the most prominent kinds first when ``limit`` cuts the list."""
    cursor = await conn.execute(
        """
        SELECT p.id, p.name_zh, p.name_en, p.kind, ST_X(p.geom), ST_Y(p.geom)
        FROM place AS p
        JOIN unnest(%(kinds)s::text[]) WITH ORDINALITY AS k(kind, rank) ON k.kind = p.kind
        WHERE %(x0)s::float8 IS NULL OR p.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)
        ORDER BY k.rank, p.name_zh, p.id
        LIMIT %(limit)s
        """,
        {
            "kinds": [k for k in LABEL_MINZOOM if kinds is None or k in kinds],
            "x0": bbox[0] if bbox else None,
            "y0": bbox[1] if bbox else None,
            "x1": bbox[2] if bbox else None,
            "y1": bbox[3] if bbox else None,
            "limit": limit,
        },
    )
    features = [
        {
            "type": "Feature",
            "id": place_id,
            "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
            "properties": {
                "name_zh": name_zh,
                "name_en": name_en,
                "kind": kind,
                "minzoom": LABEL_MINZOOM[kind],
                "rank": LABEL_RANK[kind],
            },
        }
        for place_id, name_zh, name_en, kind, lon, lat in await cursor.fetchall()
    ]
    return {"type": "FeatureCollection", "features": features}
