"""Monitoring stations of the demo: air, automatic water, sections, outfalls, sea, intakes.

The six national-control air stations use their published codes, names and
coordinates. Water stations, sections and river outfalls sit on their river segment
(``river_id`` set); seawater stations lie inside their bay; intakes inside their
reservoir; coastal outfalls just off the shore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from layers.demo.geometry import xy
from layers.demo.hydro import Hydrology
from layers.demo.places import BAYS, LonLat
from layers.demo.terrain import Terrain
from layers.demo.zones import intake_points

Record = dict[str, Any]


@dataclass(frozen=True)
class NationalAirStation:
    code: str
    name: str
    lon: float
    lat: float


NATIONAL_AIR_STATIONS: list[NationalAirStation] = [
    # Published coordinates (datum unstated), kept as published.
    NationalAirStation("1286A", "溪东", 118.1608, 24.8169),
    NationalAirStation("1287A", "洪文", 118.1514, 24.4767),
    NationalAirStation("1288A", "鼓浪屿", 118.0661, 24.4444),
    NationalAirStation("2842A", "湖里中学", 118.0936, 24.5058),
    NationalAirStation("3527A", "集美中学", 118.0958, 24.5688),
    NationalAirStation("3528A", "同安二实小", 118.1493, 24.7245),
]

LOCAL_AIR: list[tuple[str, LonLat]] = [
    ("海沧区政府", (118.035, 24.487)),
    ("海沧东孚", (117.935, 24.585)),
    ("集美灌口", (117.990, 24.622)),
    ("同安五显", (118.085, 24.785)),
    ("同安西柯", (118.115, 24.665)),
    ("翔安马巷", (118.250, 24.640)),
    ("翔安新圩", (118.275, 24.722)),
    ("大嶝", (118.335, 24.556)),
    ("思明环岛路", (118.150, 24.447)),
    ("湖里五缘湾", (118.172, 24.520)),
]

WATER_AUTO: list[tuple[str, str, float]] = [
    # (name, segment key, position along the segment 0..1)
    ("东西溪入海口水质自动站", "dxx-5", 0.6),
    ("西溪五显水质自动站", "dxx-3", 0.2),
    ("东溪汀溪水质自动站", "dx-2", 0.3),
    ("后溪杏林湾入口水质自动站", "hx-4", 0.5),
    ("许溪水质自动站", "xx-2", 0.5),
    ("过芸溪水质自动站", "gy-2", 0.6),
    ("深青溪水质自动站", "sq-2", 0.5),
    ("九溪水质自动站", "jx-3", 0.4),
    ("官浔溪水质自动站", "gx-2", 0.6),
]

SECTIONS: list[tuple[str, str, float]] = [
    ("西溪莲花水库上游对照断面", "dxx-1", 0.3),
    ("西溪洪塘断面", "dxx-3", 0.7),
    ("东西溪双溪口断面", "dxx-4", 0.05),
    ("东西溪西洋坝断面", "dxx-5", 0.95),
    ("东溪汀溪上游断面", "dx-1", 0.4),
    ("官浔溪入海口断面", "gx-2", 0.95),
    ("九溪新圩断面", "jx-1", 0.9),
    ("九溪入海口断面", "jx-3", 0.95),
    ("后溪石兜上游断面", "hx-1", 0.3),
    ("后溪入湾断面", "hx-4", 0.95),
    ("许溪汇入口断面", "xx-2", 0.95),
    ("深青溪灌口断面", "sq-1", 0.9),
    ("深青溪入湾断面", "sq-2", 0.95),
    ("过芸溪东孚断面", "gy-1", 0.9),
    ("过芸溪入湾断面", "gy-2", 0.95),
]

RIVER_OUTFALLS: list[tuple[str, str, float]] = [
    ("同安城区污水处理厂排口", "dxx-5", 0.3),
    ("五显镇生活污水排口", "dxx-3", 0.35),
    ("后溪工业区排口", "hx-3", 0.6),
    ("马巷污水处理厂排口", "jx-2", 0.8),
    ("灌口污水处理厂排口", "sq-2", 0.4),
]

COASTAL_OUTFALLS: list[tuple[str, LonLat]] = [
    ("海沧污水处理厂入海排口", (118.030, 24.445)),
    ("筼筜污水处理厂入海排口", (118.075, 24.478)),
    ("前埔污水处理厂入海排口", (118.195, 24.465)),
    ("翔安污水处理厂入海排口", (118.280, 24.525)),
    ("集美污水处理厂入海排口", (118.100, 24.565)),
]

SEAWATER: dict[str, int] = {
    # Bay -> number of seawater stations.
    "同安湾": 3,
    "西海域": 3,
    "东南部海域": 3,
    "大嶝海域": 2,
    "九龙江口": 2,
    "马銮湾": 1,
    "杏林湾": 1,
    "东坑湾": 1,
}

INTAKES = ["汀溪水库", "莲花水库", "坂头水库", "石兜水库", "上李水库"]

OPERATORS = {
    "air_national": "中国环境监测总站",
    "air_local": "厦门市环境监测站",
    "water_auto": "厦门市环境监测站",
    "section": "厦门市环境监测站",
    "seawater": "厦门市海洋环境监测站",
    "outfall": "厦门市生态环境局",
    "drinking_intake": "厦门水务集团有限公司",
}
STATUSES = ["active", "maintenance", "inactive"]
STATUS_WEIGHTS = [0.86, 0.10, 0.04]
CODE_PREFIX = {
    "air_local": "XM-AQ",
    "water_auto": "XM-SZ",
    "section": "XM-DM",
    "seawater": "XM-HS",
    "outfall": "XM-PK",
    "drinking_intake": "XM-QS",
}


def _inside(region: BaseGeometry, point: Point, margin: float = 60.0) -> Point:
    """``point`` if it lies in ``region``, else a point of the region just inside its edge."""
    if region.contains(point):
        return point
    nearest = nearest_points(region, point)[0]
    return shapely.intersection(region, nearest.buffer(margin)).representative_point()


def _sample_in(region: BaseGeometry, rng: np.random.Generator, keep_off: float) -> Point:
    """A random point of ``region`` at least ``keep_off`` metres from its edge (if possible)."""
    core = shapely.buffer(region, -keep_off)
    target = core if not core.is_empty else region
    minx, miny, maxx, maxy = target.bounds
    for _ in range(500):
        point = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if target.contains(point):
            return point
    return target.representative_point()


INTAKE_TARGET = "II"
"""Drinking-water intakes: class II, the target of a first-grade source protection zone (GB 3838 表1 II类)."""


def _standard_and_target(kind: str, river_target: str | None, bay: str | None) -> tuple[str | None, str | None]:
    """The standard kind (river/lake/sea/air) of a station and its section's water target (水质目标):
    a river station takes its segment's target, a seawater station its bay's, an intake class II.
    Outfalls are held to discharge limits, not to an ambient standard: none."""
    if kind.startswith("air"):
        return "air", None
    if kind == "seawater":
        return "sea", BAYS[bay].target_class if bay else None
    if kind == "drinking_intake":
        return "lake", INTAKE_TARGET
    if kind in ("water_auto", "section"):
        return "river", river_target
    return None, None


def build_stations(
    terrain: Terrain, hydro: Hydrology, reservoirs: dict[str, Polygon], rng: np.random.Generator
) -> list[Record]:
    """Station records in local metres; national stations are replaced by their published lon/lat later."""
    records: list[Record] = []

    river_target = {river["id"]: river["target_class"] for river in hydro.rivers}

    def add(
        kind: str,
        name: str,
        point: Point,
        code: str | None = None,
        river_key: str | None = None,
        bay: str | None = None,
    ) -> None:
        count = sum(r["kind"] == kind for r in records) + 1
        river_id = hydro.segment_ids[river_key] if river_key else None
        standard, target = _standard_and_target(kind, river_target.get(river_id), bay)
        status = "active" if kind == "air_national" else str(rng.choice(STATUSES, p=STATUS_WEIGHTS))
        records.append(
            {
                "id": len(records) + 1,
                "code": code or f"{CODE_PREFIX[kind]}-{count:02d}",
                "name": name,
                "kind": kind,
                "operator": OPERATORS[kind],
                "status": status,
                "river_id": river_id,
                "mn": f"XM212{len(records) + 1:09d}",  # HJ 212 device code of the station's data logger
                "standard": standard,
                "water_target": target,
                "geom": point,
            }
        )

    def on_river(key: str, fraction: float) -> Point:
        return hydro.segment_lines[key].interpolate(fraction, normalized=True)

    for station in NATIONAL_AIR_STATIONS:
        add("air_national", station.name, Point(xy(station.lon, station.lat)), code=station.code)
    for name, lonlat in LOCAL_AIR:
        add("air_local", name, _inside(terrain.dry_land, Point(xy(*lonlat))))
    for kind, table in (("water_auto", WATER_AUTO), ("section", SECTIONS), ("outfall", RIVER_OUTFALLS)):
        for name, key, fraction in table:
            add(kind, name, on_river(key, fraction), river_key=key)
    for name, lonlat in COASTAL_OUTFALLS:
        shore = nearest_points(terrain.coastline, Point(xy(*lonlat)))[0]
        add("outfall", name, shapely.intersection(terrain.sea, shore.buffer(80.0)).representative_point())
    for bay, count in SEAWATER.items():
        for number in range(1, count + 1):
            add("seawater", f"{bay}{number}号海水站", _sample_in(terrain.bays[bay], rng, keep_off=300.0), bay=bay)
    intakes = intake_points(reservoirs)
    for name in INTAKES:
        add("drinking_intake", f"{name}取水口", intakes[name])
    return records
