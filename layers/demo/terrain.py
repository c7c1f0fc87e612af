"""The base geography of the demo: districts, land, sea and the bay management units.

The district boundaries are real (AMap, GCJ-02, converted to WGS84). Like most
administrative data they include the enclosed bays (同安湾, 杏林湾, 马銮湾, 东坑湾), so
those waters are drawn approximately inside the districts; the open sea is the part
of a hand-drawn outline of Xiamen's waters (mid-channel towards 漳州, 金门 and 泉州)
outside the districts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, shape
from shapely.geometry.base import BaseGeometry

from layers.demo import places
from layers.demo.geometry import (
    as_multipolygon,
    clean_area,
    local_point,
    local_polygon,
    perturb_polygon,
    repair,
    to_local,
    union_all,
)
from layers.gcj02 import geometry_gcj02_to_wgs84

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class District:
    adcode: str
    name_zh: str
    name_en: str
    geom: MultiPolygon
    """WGS84 lon/lat."""


@dataclass
class Terrain:
    """Everything later steps place features on, in local metres (see geometry.py)."""

    districts: list[District]
    district_geoms: list[BaseGeometry]
    """Local-metre district polygons, in the order of ``districts``."""
    land: BaseGeometry
    """The city's territory: union of the districts (includes the enclosed bays)."""
    dry_land: BaseGeometry
    """Land proper: the territory without the enclosed bays."""
    sea: BaseGeometry
    """All sea water: the open sea around the coast plus the enclosed bays."""
    bays: dict[str, BaseGeometry]
    """Bay management units keyed by name; a partition of ``sea``."""
    coastline: BaseGeometry
    """The boundary between dry land and sea (lines)."""

    def district_at(self, geom: BaseGeometry) -> str:
        """Adcode of the district containing a point (or the nearest one, e.g. at sea)."""
        point = geom if isinstance(geom, Point) else geom.representative_point()
        distances = [g.distance(point) for g in self.district_geoms]
        return self.districts[int(np.argmin(distances))].adcode


@cache
def _read_districts() -> tuple[District, ...]:
    with (DATA_DIR / "districts_gcj02.geojson").open(encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    districts = []
    for feature in features:
        props = feature["properties"]
        geom = repair(geometry_gcj02_to_wgs84(shape(feature["geometry"])))
        districts.append(District(props["adcode"], props["name_zh"], props["name_en"], as_multipolygon(geom)))
    return tuple(sorted(districts, key=lambda d: d.adcode))


def read_districts() -> list[District]:
    """The six districts with WGS84 boundaries, ordered by adcode."""
    return list(_read_districts())


def _voronoi_partition(area: BaseGeometry, seeds: dict[str, list[Point]]) -> dict[str, BaseGeometry]:
    """Split ``area`` among named seed groups by nearest seed (straight-line divides)."""
    names = [name for name, pts in seeds.items() for _ in pts]
    points = shapely.MultiPoint([p for pts in seeds.values() for p in pts])
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=area.envelope.buffer(5000.0), ordered=True))
    owner: dict[str, list[BaseGeometry]] = {}
    for name, cell in zip(names, cells, strict=True):
        owner.setdefault(name, []).append(cell)
    return {name: shapely.intersection(area, union_all(owner.get(name, []))) for name in seeds}


def build_terrain(rng: np.random.Generator) -> Terrain:
    """Districts, land, sea and bays; the enclosed bays get a randomly perturbed shore."""
    districts = read_districts()
    district_geoms = [to_local(d.geom) for d in districts]
    land = union_all(district_geoms)
    inner: dict[str, BaseGeometry] = {}
    for name, ring in places.INNER_WATERS.items():
        shore = perturb_polygon(local_polygon(ring), rng, amplitude=140.0)
        inner[name] = shapely.difference(shore, union_all(inner.values()))
    inner_union = union_all(inner.values())
    dry_land = clean_area(shapely.difference(land, inner_union), min_part=50_000.0)
    open_sea = shapely.difference(local_polygon(places.SEA_OUTLINE), land)
    sea = clean_area(shapely.union(open_sea, inner_union), min_part=200_000.0)
    sea = clean_area(shapely.difference(sea, dry_land))
    seeds = {name: [local_point(*p) for p in pts] for name, pts in places.BAY_SEEDS.items()}
    outer = _voronoi_partition(shapely.difference(sea, inner_union), seeds)
    bays: dict[str, BaseGeometry] = {}
    for name in places.BAY_ORDER:
        parts = [g for g in (inner.get(name), outer.get(name)) if g is not None]
        bays[name] = clean_area(shapely.intersection(union_all(parts), sea), min_part=50_000.0)
    coastline = shapely.intersection(dry_land.boundary, sea.buffer(1.0))
    return Terrain(
        districts=districts,
        district_geoms=district_geoms,
        land=land,
        dry_land=dry_land,
        sea=sea,
        bays=bays,
        coastline=coastline,
    )
