"""A small vector basemap in the Protomaps basemap schema, written by the suite as a PMTiles
archive: land (``earth``), a lake (``water``), a major road (``roads``) and a town (``places``)
around Xiamen, encoded as MVT with mapbox_vector_tile and packed with the pmtiles package (as `ecomap tiles
export` packs its archives)."""

from __future__ import annotations

import gzip
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import shapely
from pmtiles.tile import zxy_to_tileid
from shapely.geometry import LineString, Point, box, mapping
from shapely.geometry.base import BaseGeometry

from tiles.grid import TMS
from tiles.offline import write_pmtiles

BBOX = (118.00, 24.40, 118.25, 24.65)
LAKE = box(118.08, 24.50, 118.12, 24.53)  # a square "lake" (fills the view at zoom 12)
ROAD = LineString([(118.02, 24.56), (118.22, 24.56)])
TOWN = Point(118.13, 24.545)
TOWN_NAME = "测试镇"
MAXZOOM = 10
EARTH_RADIUS = 6378137.0


def _mercator(geom: BaseGeometry) -> BaseGeometry:
    """Lon/lat to Web Mercator metres (the tile grid's CRS)."""

    def project(coords: np.ndarray) -> np.ndarray:
        lon, lat = np.radians(coords[:, 0]), np.radians(coords[:, 1])
        return np.column_stack([EARTH_RADIUS * lon, EARTH_RADIUS * np.log(np.tan(np.pi / 4 + lat / 2))])

    return shapely.transform(geom, project)


def _tile(z: int, x: int, y: int) -> bytes:
    bounds = TMS.xy_bounds(x, y, z)
    layers = [
        {"name": "earth", "features": [{"geometry": mapping(_mercator(box(*BBOX))), "properties": {"kind": "earth"}}]},
        {
            "name": "water",
            "features": [{"geometry": mapping(_mercator(LAKE)), "properties": {"kind": "lake", "name": "测试湖"}}],
        },
        {
            "name": "roads",
            "features": [
                {
                    "geometry": mapping(_mercator(ROAD)),
                    "properties": {"kind": "major_road", "name": "测试路", "min_zoom": 7},
                }
            ],
        },
        {
            "name": "places",
            "features": [
                {
                    "geometry": mapping(_mercator(TOWN)),
                    "properties": {
                        # As in Protomaps builds: the name, its script and the language variants.
                        "kind": "locality",
                        "name": TOWN_NAME,
                        "script": "Han",
                        "name:zh-Hans": TOWN_NAME,
                        "name:en": "Test Town",
                        "min_zoom": 1,
                        "population_rank": 10,
                    },
                }
            ],
        },
    ]
    quantize = (bounds.left, bounds.bottom, bounds.right, bounds.top)
    return mapbox_vector_tile.encode(layers, default_options={"quantize_bounds": quantize, "extents": 4096})


def write_basemap_archive(path: Path) -> Path:
    """Writes the archive (zoom 0 to MAXZOOM over BBOX) and returns its path."""
    tiles = {}
    for z in range(MAXZOOM + 1):
        for t in TMS.tiles(*BBOX, zooms=[z]):
            tiles[zxy_to_tileid(t.z, t.x, t.y)] = gzip.compress(_tile(t.z, t.x, t.y))
    layers = [{"id": name, "fields": {}} for name in ("earth", "water", "roads", "places")]
    write_pmtiles(path, tiles, 0, MAXZOOM, BBOX, {"name": "test basemap", "vector_layers": layers})
    return path
