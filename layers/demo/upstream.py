"""The demo upstream of Xiamen: the Jiulong River (九龙江) through Zhangzhou and Longyan.

Xiamen draws its water from the Jiulong and receives it in the 九龙江口 bay, so the region's
river network does not stop at the city boundary: the North branch (北溪) comes down from
Longyan (新罗, 漳平) through Zhangzhou's 华安 to 江东 (the 北溪引水 intake), the West branch
(西溪) from 南靖 through 芗城, and below their confluence near 石码 the main stem runs past
海门岛 into Xiamen's 九龙江口 bay, where its last segment ends: tracing upstream from the bay
or from a Xiamen bay station crosses into Zhangzhou and Longyan.

Everything here is sample data at approximately the real places: the waypoints follow the
rivers as drawn on a small-scale map (±2–5 km), the lengths are not the published ones (北溪
≈ 274 km, 西溪 ≈ 172 km), the basin outline is hand-drawn (the real basin is ≈ 14,700 km²)
and the cross-boundary sections sit where such sections plausibly are, not at the official
ones. Each feature names its city (``city``: the city's adcode); a watershed the city of its
outlet. Stations of the neighbours carry their city's adcode (the demo has no county boundaries
outside Xiamen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from layers.demo.geometry import as_multilinestring, clean_area, local_polygon, meander_path, union_all, xy
from layers.demo.places import LonLat
from layers.demo.terrain import Terrain

Record = dict[str, Any]
XIAMEN, ZHANGZHOU, LONGYAN = "350200", "350600", "350800"
MEANDER_SCALE = 0.6
"""Meanders of a large river are broad: a smaller amplitude than the Xiamen streams'."""


@dataclass(frozen=True)
class UpstreamSegment:
    key: str
    segment: str
    waypoints: list[LonLat]
    city: str
    target_class: str = "III"


@dataclass(frozen=True)
class UpstreamStream:
    """A branch of the Jiulong as a chain of segments, source first, joining ``joins`` (or the bay)."""

    name: str
    name_en: str
    segments: list[UpstreamSegment]
    joins: str | None = None


MAIN_STEM_KEY = "jl-1"
STREAMS: list[UpstreamStream] = [
    UpstreamStream(
        "九龙江北溪",
        "Jiulong River North Branch",
        [
            UpstreamSegment(
                "bx-1",
                "雁石溪 新罗—漳平段",
                [(117.030, 25.100), (117.100, 25.190), (117.200, 25.290), (117.320, 25.310), (117.420, 25.290)],
                LONGYAN,
                "II",
            ),
            UpstreamSegment(
                "bx-2",
                "北溪 漳平—华安交界段",
                [(117.420, 25.290), (117.455, 25.225), (117.485, 25.165), (117.500, 25.120)],
                LONGYAN,
                "II",
            ),
            UpstreamSegment(
                "bx-3",
                "北溪 华安段",
                [(117.500, 25.120), (117.530, 25.020), (117.550, 24.920), (117.600, 24.800)],
                ZHANGZHOU,
                "II",
            ),
            UpstreamSegment(
                "bx-4",
                "北溪 浦南—江东段",
                [(117.600, 24.800), (117.660, 24.700), (117.720, 24.610), (117.760, 24.550)],
                ZHANGZHOU,
                "II",
            ),
            UpstreamSegment(
                "bx-5", "北溪 江东—石码段", [(117.760, 24.550), (117.790, 24.500), (117.820, 24.460)], ZHANGZHOU
            ),
        ],
        joins=MAIN_STEM_KEY,
    ),
    UpstreamStream(
        "九龙江西溪",
        "Jiulong River West Branch",
        [
            UpstreamSegment(
                "xix-1",
                "西溪 南靖上游段",
                [(117.200, 24.640), (117.280, 24.590), (117.360, 24.520)],
                ZHANGZHOU,
                "II",
            ),
            UpstreamSegment(
                "xix-2",
                "西溪 南靖—芗城段",
                [(117.360, 24.520), (117.460, 24.535), (117.560, 24.520), (117.650, 24.510)],
                ZHANGZHOU,
            ),
            UpstreamSegment(
                "xix-3",
                "西溪 芗城—石码段",
                [(117.650, 24.510), (117.720, 24.480), (117.780, 24.462), (117.820, 24.460)],
                ZHANGZHOU,
            ),
        ],
        joins=MAIN_STEM_KEY,
    ),
    UpstreamStream(
        "九龙江",
        "Jiulong River",
        [
            UpstreamSegment(
                MAIN_STEM_KEY,
                "干流 石码—海门岛—九龙江口段",
                [(117.820, 24.460), (117.860, 24.450), (117.900, 24.441), (117.941, 24.437)],
                ZHANGZHOU,
            ),
        ],
    ),
]

BASIN_OUTLINE: list[LonLat] = [
    # The Jiulong basin, hand-drawn [approx]: 新罗/连城 in the west, 漳平 in the north, 长泰 and
    # the Xiamen border in the east, 平和/南靖 in the south (Xiamen's land and sea are cut away).
    (116.850, 25.100),
    (116.950, 25.350),
    (117.150, 25.480),
    (117.400, 25.520),
    (117.600, 25.400),
    (117.700, 25.200),
    (117.780, 24.980),
    (117.870, 24.800),
    (117.900, 24.640),
    (117.930, 24.520),
    (117.945, 24.455),
    (117.930, 24.410),
    (117.800, 24.370),
    (117.600, 24.300),
    (117.400, 24.300),
    (117.200, 24.380),
    (117.050, 24.520),
    (116.950, 24.720),
    (116.880, 24.900),
]


@dataclass(frozen=True)
class UpstreamWatershed:
    name: str
    name_en: str
    level: str
    city: str
    segments: list[str] = field(default_factory=list)
    children: list[UpstreamWatershed] = field(default_factory=list)


WATERSHEDS = UpstreamWatershed(
    "九龙江流域",
    "Jiulong River Basin",
    "basin",
    ZHANGZHOU,
    children=[
        UpstreamWatershed(
            "北溪子流域",
            "North Branch Sub-basin",
            "sub_basin",
            ZHANGZHOU,
            children=[
                UpstreamWatershed(
                    "北溪上游（龙岩）小流域", "Upper North Branch (Longyan)", "small", LONGYAN, ["bx-1", "bx-2"]
                ),
                UpstreamWatershed("北溪华安小流域", "North Branch at Hua'an", "small", ZHANGZHOU, ["bx-3"]),
                UpstreamWatershed("北溪下游小流域", "Lower North Branch", "small", ZHANGZHOU, ["bx-4", "bx-5"]),
            ],
        ),
        UpstreamWatershed("西溪子流域", "West Branch Sub-basin", "sub_basin", ZHANGZHOU, ["xix-1", "xix-2", "xix-3"]),
        UpstreamWatershed("九龙江干流子流域", "Jiulong Main Stem Sub-basin", "sub_basin", ZHANGZHOU, [MAIN_STEM_KEY]),
    ],
)
DOWNSTREAM_UNITS = {
    # What each unit drains into (same level, or the coarser unit below it).
    "北溪上游（龙岩）小流域": "北溪华安小流域",
    "北溪华安小流域": "北溪下游小流域",
    "北溪下游小流域": "九龙江干流子流域",
    "北溪子流域": "九龙江干流子流域",
    "西溪子流域": "九龙江干流子流域",
}
EXTRA_SEEDS: dict[str, list[LonLat]] = {
    # Tributaries the demo does not draw, widening the catchments towards the divides.
    "bx-1": [(116.950, 25.300), (117.250, 25.450)],
    "bx-3": [(117.700, 25.100)],
    "xix-1": [(117.150, 24.450), (117.400, 24.350)],
}


@dataclass(frozen=True)
class UpstreamStation:
    kind: str
    name: str
    segment: str
    fraction: float
    code: str
    upstream_city: str | None = None
    downstream_city: str | None = None


STATIONS: list[UpstreamStation] = [
    UpstreamStation("water_auto", "雁石溪新罗水质自动站", "bx-1", 0.25, "LY-SZ-01"),
    UpstreamStation("section", "北溪漳平城区断面", "bx-2", 0.15, "LY-DM-01"),
    # 交接断面: where the North branch leaves Longyan for Zhangzhou (华安 boundary) and where the
    # main stem leaves Zhangzhou for Xiamen's waters (海门岛); placed plausibly, not the official sites.
    UpstreamStation("section", "北溪龙岩—漳州交接断面（华安）", "bx-3", 0.03, "JJ-DM-01", LONGYAN, ZHANGZHOU),
    UpstreamStation("water_auto", "北溪浦南水质自动站", "bx-4", 0.15, "ZZ-SZ-01"),
    UpstreamStation("section", "北溪江东断面（北溪引水）", "bx-4", 0.95, "ZZ-DM-01"),
    UpstreamStation("water_auto", "西溪南靖水质自动站", "xix-1", 0.8, "ZZ-SZ-02"),
    UpstreamStation("section", "西溪芗城断面", "xix-2", 0.9, "ZZ-DM-02"),
    UpstreamStation("outfall", "漳州市区污水处理厂排口", "xix-3", 0.2, "ZZ-PK-01"),
    UpstreamStation("section", "九龙江漳州—厦门交接断面（海门岛）", MAIN_STEM_KEY, 0.9, "JJ-DM-02", ZHANGZHOU, XIAMEN),
]
OPERATORS = {
    LONGYAN: "龙岩市生态环境监测站",
    ZHANGZHOU: "漳州市生态环境监测站",
}
CROSS_BOUNDARY_OPERATOR = "福建省生态环境监测中心"
"""Cross-boundary sections are run by the province, not by either city."""
MN_PREFIX = {XIAMEN: "XM", ZHANGZHOU: "ZZ", LONGYAN: "LY"}


@dataclass
class Upstream:
    """The neighbours' river segments, watersheds and stations (local metres), ids continuing Xiamen's."""

    rivers: list[Record]
    watersheds: list[Record]
    stations: list[Record]
    segment_ids: dict[str, int]
    segment_lines: dict[str, LineString]


def _lines(rng: np.random.Generator, xiamen: BaseGeometry) -> dict[str, LineString]:
    lines: dict[str, LineString] = {}
    for stream in STREAMS:
        for segment in stream.segments:
            seed = int(rng.integers(0, 2**31))
            line = meander_path([xy(*p) for p in segment.waypoints], seed, scale=MEANDER_SCALE)
            if line.intersects(xiamen) and segment.key != MAIN_STEM_KEY:
                raise ValueError(f"{segment.key} ({segment.segment}) crosses Xiamen; move its waypoints")
            lines[segment.key] = line
    return lines


def _segments() -> list[tuple[UpstreamStream, UpstreamSegment, str | None]]:
    out = []
    for stream in STREAMS:
        keys = [s.key for s in stream.segments]
        for segment, below in zip(stream.segments, [*keys[1:], stream.joins], strict=True):
            out.append((stream, segment, below))
    return out


def _units(spec: UpstreamWatershed, parent: UpstreamWatershed | None = None) -> list[tuple[UpstreamWatershed, Any]]:
    return [(spec, parent), *(unit for child in spec.children for unit in _units(child, spec))]


def _members(spec: UpstreamWatershed) -> set[str]:
    return {*spec.segments, *(key for child in spec.children for key in _members(child))}


def _catchments(lines: dict[str, LineString], basin: BaseGeometry) -> dict[str, BaseGeometry]:
    """Each segment's catchment: the part of the basin closer to it than to any other segment."""
    labels, points = [], []
    for key, line in lines.items():
        for x, y in list(shapely.segmentize(line, 2000.0).coords)[:-1]:
            labels.append(key)
            points.append((x, y))
    for key, extra in EXTRA_SEEDS.items():
        for lon, lat in extra:
            labels.append(key)
            points.append(xy(lon, lat))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=basin.envelope, ordered=True)
    )
    grouped: dict[str, list[BaseGeometry]] = {key: [] for key in lines}
    for label, cell in zip(labels, cells, strict=True):
        grouped[label].append(cell)
    return {key: shapely.intersection(union_all(c), basin) for key, c in grouped.items()}


def build_upstream(
    terrain: Terrain, rng: np.random.Generator, *, first_river: int, first_watershed: int, first_station: int
) -> Upstream:
    """The Jiulong's segments, watersheds and stations; ids start at the given numbers."""
    xiamen = shapely.union(terrain.land, terrain.sea)
    lines = _lines(rng, terrain.land)
    ids = {segment.key: first_river + i for i, (_, segment, _) in enumerate(_segments())}
    units = _units(WATERSHEDS)
    unit_ids = {spec.name: first_watershed + i for i, (spec, _) in enumerate(units)}
    deepest: dict[str, str] = {}
    for spec, _ in units:  # parents come first: the deepest unit holding a segment wins
        for key in _members(spec):
            deepest[key] = spec.name
    rivers = [
        {
            "id": ids[segment.key],
            "name": stream.name,
            "name_en": stream.name_en,
            "segment": segment.segment,
            "target_class": segment.target_class,
            "downstream_id": ids[below] if below else None,
            "watershed_id": unit_ids[deepest[segment.key]],
            "city": segment.city,
            "geom": as_multilinestring(lines[segment.key]),
        }
        for stream, segment, below in _segments()
    ]
    basin = clean_area(shapely.difference(local_polygon(BASIN_OUTLINE), xiamen.buffer(1.0)))
    catchments = _catchments(lines, basin)
    watersheds = []
    for spec, parent in units:
        geom = clean_area(union_all(catchments[k] for k in sorted(_members(spec))))
        below = DOWNSTREAM_UNITS.get(spec.name)
        watersheds.append(
            {
                "id": unit_ids[spec.name],
                "name": spec.name,
                "name_en": spec.name_en,
                "level": spec.level,
                "parent_id": unit_ids[parent.name] if parent else None,
                "downstream_id": unit_ids[below] if below else None,
                "city": spec.city,
                "geom": geom,
            }
        )
    targets = {segment.key: segment.target_class for _, segment, _ in _segments()}
    cities = {segment.key: segment.city for _, segment, _ in _segments()}
    stations = []
    for number, spec in enumerate(STATIONS):
        city = cities[spec.segment]
        water = spec.kind in ("water_auto", "section")
        stations.append(
            {
                "id": first_station + number,
                "code": spec.code,
                "name": spec.name,
                "kind": spec.kind,
                "operator": CROSS_BOUNDARY_OPERATOR if spec.upstream_city else OPERATORS[city],
                "status": "active",
                "adcode": city,
                "river_id": ids[spec.segment],
                "mn": f"{MN_PREFIX[city]}212{first_station + number:09d}",
                "standard": "river" if water else None,
                "water_target": targets[spec.segment] if water else None,
                "city": city,
                "upstream_city": spec.upstream_city,
                "downstream_city": spec.downstream_city,
                "geom": lines[spec.segment].interpolate(spec.fraction, normalized=True),
            }
        )
    return Upstream(rivers, watersheds, stations, ids, lines)


def chief_plan(upstream: Upstream) -> list[tuple[str, str, str, list[tuple[str, int]]]]:
    """City-level chiefs of the neighbours: (adcode, title, role, [(layer, feature id)])."""
    by_city: dict[str, list[int]] = {}
    for river in upstream.rivers:
        by_city.setdefault(river["city"], []).append(river["id"])
    basins = [(w["city"], w["id"]) for w in upstream.watersheds if w["level"] == "basin"]
    longyan_units = [w["id"] for w in upstream.watersheds if w["city"] == LONGYAN]
    plan: list[tuple[str, str, str, list[tuple[str, int]]]] = [
        (ZHANGZHOU, "漳州市市长", "river", [("watershed", i) for c, i in basins if c == ZHANGZHOU]),
        (ZHANGZHOU, "漳州市副市长", "river", [("river", i) for i in by_city[ZHANGZHOU]]),
        (LONGYAN, "龙岩市市长", "river", [("watershed", i) for i in longyan_units]),
        (LONGYAN, "龙岩市副市长", "river", [("river", i) for i in by_city[LONGYAN]]),
    ]
    return plan
