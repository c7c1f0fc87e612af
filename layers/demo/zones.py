"""Protected areas with their management zones, and drinking-water source zones.

Zones of one protected area nest as rings (core, buffer, experimental or core and
general control) and no two protected-area features overlap, so the layer is a
coverage. Drinking-water source zones are concentric too: grade I water and land
inside grade II inside the quasi-protection zone, as disjoint rings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from layers.demo import places
from layers.demo.geometry import blob, clean_area, largest_polygon, union_all, xy
from layers.demo.terrain import Terrain

Record = dict[str, Any]


@dataclass(frozen=True)
class AreaInfo:
    name: str
    name_en: str
    category: str
    level: str
    zoning_scheme: str
    established: int


ZONE_EN = {
    "核心区": "core zone",
    "缓冲区": "buffer zone",
    "实验区": "experimental zone",
    "核心保护区": "core protection zone",
    "一般控制区": "general control zone",
}

MARINE_RESERVE = AreaInfo(
    "厦门珍稀海洋物种国家级自然保护区",
    "Xiamen Rare Marine Species National Nature Reserve",
    "自然保护区",
    "国家级",
    "三区",
    2000,
)
TIANZHU = AreaInfo("天竺山国家森林公园", "Tianzhushan National Forest Park", "森林公园", "国家级", "两区", 2004)
GULANGYU = AreaInfo("鼓浪屿–万石山风景名胜区", "Gulangyu–Wanshishan Scenic Area", "风景名胜区", "国家级", "两区", 1988)
XIATANWEI = AreaInfo("下潭尾红树林湿地公园", "Xiatanwei Mangrove Wetland Park", "湿地公园", "市级", "两区", 2014)
LIANHUA = AreaInfo("莲花国家森林公园", "Lianhua National Forest Park", "森林公园", "国家级", "两区", 2004)


class _Placer:
    """Carves zones out of a region, never overlapping anything placed before."""

    def __init__(self, terrain: Terrain, rng: np.random.Generator) -> None:
        self.terrain = terrain
        self.rng = rng
        self.taken: BaseGeometry = Polygon()

    def blob(self, lonlat: places.LonLat, radius_km: float, **kw: Any) -> Polygon:
        return blob(xy(*lonlat), radius_km * 1000.0, self.rng, **kw)

    def take(self, shape: BaseGeometry, region: BaseGeometry) -> BaseGeometry:
        zone = clean_area(shapely.difference(shapely.intersection(shape, region), self.taken))
        if zone.is_empty:
            raise ValueError("a demo zone found no room; check the place table")
        self.taken = shapely.union(self.taken, zone)
        return zone


def _zone(info: AreaInfo, zone: str, geom: BaseGeometry) -> Record:
    return {
        "name": f"{info.name}{zone}",
        "name_en": f"{info.name_en} ({ZONE_EN[zone]})",
        "area_name": info.name,
        "category": info.category,
        "level": info.level,
        "zone": zone,
        "zoning_scheme": info.zoning_scheme,
        "established": info.established,
        "geom": geom,
    }


def _gulangyu_wanshishan(p: _Placer) -> list[Record]:
    t = p.terrain
    gulangyu = Point(xy(118.066, 24.446))
    island = min(shapely.get_parts(t.dry_land), key=gulangyu.distance)
    core = p.take(shapely.union(island, p.blob((118.108, 24.456), 0.9)), t.dry_land)
    general = p.take(shapely.union(p.blob((118.105, 24.459), 1.9), shapely.buffer(island, 350.0)), t.land.union(t.sea))
    return [_zone(GULANGYU, "核心保护区", core), _zone(GULANGYU, "一般控制区", general)]


def _forest_park(
    info: AreaInfo, center: places.LonLat, core_km: float, total_km: float
) -> Callable[[_Placer], list[Record]]:
    def build(p: _Placer) -> list[Record]:
        core = p.take(p.blob(center, core_km, irregularity=0.4), p.terrain.dry_land)
        general = p.take(p.blob(center, total_km, irregularity=0.45), p.terrain.dry_land)
        return [_zone(info, "核心保护区", core), _zone(info, "一般控制区", general)]

    return build


def _xiatanwei(p: _Placer) -> list[Record]:
    t = p.terrain
    shore = shapely.buffer(t.coastline, 450.0)
    core = p.take(shapely.intersection(p.blob((118.218, 24.652), 1.2), shore), t.sea)
    general = p.take(
        shapely.intersection(p.blob((118.220, 24.650), 2.0), shapely.buffer(t.coastline, 1100.0)),
        t.land.union(t.sea),
    )
    return [_zone(XIATANWEI, "核心保护区", core), _zone(XIATANWEI, "一般控制区", general)]


def _marine_reserve(p: _Placer) -> list[Record]:
    """Chinese white dolphin waters, egret islands 大屿/鸡屿, amphioxus grounds off 黄厝."""
    t = p.terrain
    core_shapes = [
        p.blob((118.050, 24.478), 1.3, elongation=1.8, angle=math.radians(75.0)),
        p.blob((118.050, 24.451), 0.45),
        p.blob((118.012, 24.412), 0.5),
        p.blob((118.195, 24.432), 1.3),
    ]
    core = p.take(union_all(core_shapes), t.sea)
    buffer_zone = p.take(shapely.buffer(core, 800.0), t.sea)
    excluded = union_all(t.bays[name] for name in ("马銮湾", "杏林湾", "九龙江口", "东坑湾"))
    north_tongan = shapely.box(*xy(118.10, 24.615), *xy(118.30, 24.75))
    outer = union_all(
        [
            shapely.buffer(core, 4000.0),
            p.blob((118.230, 24.465), 6.5),
            p.blob((118.330, 24.525), 4.5),
            p.blob((118.180, 24.575), 3.5),
            p.blob((118.065, 24.505), 3.0),
        ]
    )
    experimental = p.take(shapely.difference(outer, union_all([excluded, north_tongan])), t.sea)
    return [
        _zone(MARINE_RESERVE, "核心区", core),
        _zone(MARINE_RESERVE, "缓冲区", buffer_zone),
        _zone(MARINE_RESERVE, "实验区", experimental),
    ]


def build_protected_areas(terrain: Terrain, rng: np.random.Generator) -> list[Record]:
    """Protected-area zone records (local metres), ids from 1."""
    placer = _Placer(terrain, rng)
    builders: list[Callable[[_Placer], list[Record]]] = [
        _gulangyu_wanshishan,
        _xiatanwei,
        _marine_reserve,
        _forest_park(TIANZHU, (117.928, 24.617), 1.7, 3.3),
        _forest_park(LIANHUA, (118.055, 24.835), 1.2, 2.3),
    ]
    records = [record for build in builders for record in build(placer)]
    for number, record in enumerate(records, start=1):
        record["id"] = number
    return records


# --- drinking-water sources -----------------------------------------------------------

WATER_TARGET = {"一级": "GB 3838-2002 II类", "二级": "GB 3838-2002 III类", "准保护区": "GB 3838-2002 III类"}


def build_water_source_zones(
    terrain: Terrain, reservoirs: dict[str, Polygon], rng: np.random.Generator
) -> list[Record]:
    """Grade I/II/quasi zones (water and land parts) around the reservoirs that supply the city."""
    records: list[Record] = []
    taken: BaseGeometry = Polygon()
    for source, names in places.WATER_SOURCES.items():
        water = union_all(reservoirs[n] for n in names)
        intake = intake_points(reservoirs)[names[0]]
        center = water.centroid.coords[0]
        water_1 = clean_area(shapely.intersection(water, blob(intake.coords[0], 550.0, rng, irregularity=0.3)))
        water_2 = clean_area(shapely.difference(water, water_1))
        land_1 = clean_area(shapely.difference(shapely.buffer(water_1, 200.0), water))
        grade_2 = shapely.union(shapely.buffer(water, 1000.0), blob(center, 2200.0, rng, irregularity=0.4))
        land_2 = clean_area(shapely.difference(grade_2, union_all([water, land_1])))
        quasi = shapely.union(shapely.buffer(water, 2600.0), blob(center, 4200.0, rng, irregularity=0.45))
        land_q = clean_area(shapely.difference(quasi, union_all([water, land_1, land_2])))
        for zone, part, geom in (
            ("一级", "水域", water_1),
            ("一级", "陆域", land_1),
            ("二级", "水域", water_2),
            ("二级", "陆域", land_2),
            ("准保护区", "陆域", land_q),
        ):
            clipped = clean_area(shapely.difference(shapely.intersection(geom, terrain.dry_land), taken))
            if clipped.is_empty:
                continue
            taken = shapely.union(taken, clipped)
            zone_name = "准保护区" if zone == "准保护区" else f"{zone}保护区"
            records.append(
                {
                    "id": len(records) + 1,
                    "name": f"{source}饮用水水源{zone_name}（{part}）",
                    "source_name": source,
                    "zone": zone,
                    "part": part,
                    "water_target": WATER_TARGET[zone],
                    "geom": clipped,
                }
            )
    return records


def intake_points(reservoirs: dict[str, Polygon]) -> dict[str, Point]:
    """Where each reservoir's intake is (inside its water body)."""
    points = {}
    for name, water in reservoirs.items():
        point = Point(xy(*places.RESERVOIRS[name].intake))
        points[name] = point if water.contains(point) else largest_polygon(water).representative_point()
    return points
