"""The zone check's look at remote layers: partners' features the site touches or comes near.

Listed apart from our own layers' overlaps (``remote_overlaps``), each with its source (the
partner, the collection URL) and the copy's age, so a reader never mistakes a partner's copy
for our data; they inform, they do not change the verdict (the rules weigh our layers). Areas
and distances are on the ellipsoid (the site's local equal-area projection, as our overlaps).
"""

from __future__ import annotations

import math
from typing import Any

import shapely
from psycopg import AsyncConnection

from gis_service.services.site import Site
from layers.catalog import Layer
from layers.crs import LocalEqualArea, transform_geometry

_OVERLAPS = """
WITH site AS MATERIALIZED (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g)
SELECT r.layer, r.id, r.remote_id, r.props, r.source_url, r.fetched_at, ST_Intersects(r.geom, s.g) AS touches,
       CASE WHEN ST_Intersects(r.geom, s.g) AND %(dimension)s > 0
            THEN ST_AsBinary(ST_CollectionExtract(ST_Intersection(r.geom, s.g), %(dimension)s + 1)) END AS part,
       CASE WHEN NOT ST_Intersects(r.geom, s.g) THEN ST_Distance(r.geom::geography, s.g::geography) END AS distance_m
FROM remote_feature AS r CROSS JOIN site AS s
WHERE r.layer = ANY(%(layers)s) AND r.geom && ST_Expand(s.g, %(degrees)s)
  AND (ST_Intersects(r.geom, s.g) OR ST_DWithin(r.geom::geography, s.g::geography, %(buffer_m)s))
ORDER BY r.layer, r.id
"""
_AGES = "SELECT layer, fetched_at FROM remote_layer_state WHERE layer = ANY(%s)"


def _degrees(site: Site, metres: float) -> float:
    latitude = min(89.0, max(abs(site.geometry.bounds[1]), abs(site.geometry.bounds[3])) + 0.5)
    return (metres + 100.0) / (111_000.0 * math.cos(math.radians(latitude)))


async def remote_overlaps(
    conn: AsyncConnection, layers: list[Layer], site: Site, buffer_m: float
) -> list[dict[str, Any]]:
    """The features of readable remote ``layers`` touching the site or within ``buffer_m`` of it."""
    if not layers:
        return []
    by_id = {layer.id: layer for layer in layers}
    params = {
        "wkb": shapely.to_wkb(site.geometry),
        "dimension": site.dimension,
        "layers": list(by_id),
        "degrees": _degrees(site, buffer_m),
        "buffer_m": buffer_m,
    }
    rows = await (await conn.execute(_OVERLAPS, params)).fetchall()
    ages = {row[0]: row[1] for row in await (await conn.execute(_AGES, [list(by_id)])).fetchall()}
    projection = LocalEqualArea.around(site.geometry).transformer
    out = []
    for layer_id, fid, remote_id, props, source_url, fetched_at, touches, part, distance in rows:
        layer = by_id[layer_id]
        assert layer.remote is not None  # noqa: S101 - remote layers only
        measure = None
        if part is not None:
            projected = transform_geometry(shapely.from_wkb(part), projection)
            measure = float(shapely.area(projected) if site.dimension == 2 else shapely.length(projected))
        share = measure / site.measure if measure is not None and site.measure else (1.0 if touches else None)
        out.append(
            {
                "layer": layer_id,
                "layer_title": layer.title.model_dump(),
                "id": fid,
                "remote_id": remote_id,
                "name": props.get(layer.name_property),
                "touches": touches,
                {2: "overlap_m2", 1: "overlap_length_m"}.get(site.dimension, "overlap"): round(measure, 2)
                if measure is not None
                else None,
                "share": round(min(share, 1.0), 4) if share is not None else None,
                "distance_m": round(distance, 1) if distance is not None else None,
                "source": {
                    "partner": layer.remote.partner.model_dump(),
                    "url": source_url,
                    "feature_fetched_at": fetched_at.isoformat(),
                    "layer_fetched_at": ages[layer_id].isoformat() if ages.get(layer_id) else None,
                },
            }
        )
    return out
