"""Streams, their chief-managed segments and the nested watersheds they drain.

Segments are wiggly lines through the waypoints of ``places.STREAMS``; each stream
ends on the shore of its bay or at its confluence. Catchments are approximated by
the Voronoi cells of points along the segments (divides halfway between streams),
restricted to dry land; watershed units are unions of their segments' catchments,
so small watersheds nest exactly in sub-basins and sub-basins in basins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from layers.demo import places
from layers.demo.geometry import (
    as_multilinestring,
    blob,
    clean_area,
    largest_polygon,
    meander_path,
    union_all,
    xy,
)
from layers.demo.places import WatershedSpec
from layers.demo.terrain import Terrain

Record = dict[str, Any]
_LEVEL_RANK = {"basin": 0, "sub_basin": 1, "small": 2}


@dataclass
class Hydrology:
    """River segment and watershed records (local metres) and how segments map to ids."""

    rivers: list[Record]
    watersheds: list[Record]
    segment_ids: dict[str, int]
    """Segment key -> river feature id."""
    segment_lines: dict[str, LineString] = field(default_factory=dict)
    """Segment key -> its line in local metres (source to mouth)."""


def _segment_line(waypoints: list[places.LonLat], seed: int, scale: float, dry_land: BaseGeometry) -> LineString:
    """A meandering segment, cut at the shore if it runs into the sea."""
    line = meander_path([xy(*p) for p in waypoints], seed, scale=scale)
    if dry_land.covers(line):
        return line
    source = Point(line.coords[0])
    merged = shapely.line_merge(shapely.intersection(line, dry_land))
    parts = [merged] if isinstance(merged, LineString) else list(getattr(merged, "geoms", []))
    return min(parts, key=lambda part: part.distance(source))


def _check_stream(stream: places.Stream, terrain: Terrain) -> None:
    source = Point(xy(*stream.segments[0].waypoints[0]))
    mouth = Point(xy(*stream.segments[-1].waypoints[-1]))
    if not terrain.dry_land.contains(source):
        raise ValueError(f"the source of {stream.name} lies outside the city's land; move it inland")
    if stream.bay is not None and not terrain.sea.contains(mouth):
        raise ValueError(f"{stream.name} must end inside {stream.bay}; extend its last waypoint into the bay")


def _stream_lines(stream: places.Stream, rng: np.random.Generator, dry_land: BaseGeometry) -> dict[str, LineString]:
    """Lines of a stream's segments; meanders scaled to the published length if there is one."""
    seeds = [int(s) for s in rng.integers(0, 2**31, len(stream.segments))]

    def draw(scale: float) -> dict[str, LineString]:
        return {
            seg.key: _segment_line(seg.waypoints, seed, scale, dry_land)
            for seg, seed in zip(stream.segments, seeds, strict=True)
        }

    if stream.length_km is None:
        return draw(1.0)
    low, high = 0.0, 4.0
    for _ in range(25):
        mid = (low + high) / 2.0
        total_km = sum(line.length for line in draw(mid).values()) / 1000.0
        low, high = (mid, high) if total_km < stream.length_km else (low, mid)
    return draw((low + high) / 2.0)


def _downstream_segments() -> dict[str, str | None]:
    downstream: dict[str, str | None] = {}
    for stream in places.STREAMS:
        keys = [s.key for s in stream.segments]
        for here, there in zip(keys, [*keys[1:], stream.joins], strict=True):
            downstream[here] = there
    return downstream


def build_rivers(terrain: Terrain, rng: np.random.Generator) -> Hydrology:
    """River segment records (without watershed ids yet) and their lines."""
    rivers: list[Record] = []
    lines: dict[str, LineString] = {}
    ids: dict[str, int] = {}
    for stream in places.STREAMS:
        _check_stream(stream, terrain)
        for segment in stream.segments:
            ids[segment.key] = len(ids) + 1
        lines.update(_stream_lines(stream, rng, terrain.dry_land))
    downstream = _downstream_segments()
    for stream in places.STREAMS:
        for segment in stream.segments:
            below = downstream[segment.key]
            rivers.append(
                {
                    "id": ids[segment.key],
                    "name": stream.name,
                    "name_en": stream.name_en,
                    "segment": segment.segment,
                    "target_class": segment.target_class,
                    "downstream_id": ids[below] if below else None,
                    "watershed_id": None,
                    "geom": as_multilinestring(lines[segment.key]),
                }
            )
    return Hydrology(rivers=rivers, watersheds=[], segment_ids=ids, segment_lines=lines)


def _catchments(terrain: Terrain, lines: dict[str, LineString]) -> dict[str, BaseGeometry]:
    """Catchment of each segment: land closer to it than to any other stream or the coast seeds."""
    labels: list[str | None] = []
    points: list[tuple[float, float]] = []
    seen: set[tuple[float, float]] = set()
    for key, line in lines.items():
        dense = shapely.segmentize(line, 250.0)
        for x, y in list(dense.coords)[:-1]:
            if (x, y) not in seen:
                seen.add((x, y))
                labels.append(key)
                points.append((x, y))
    for key, extra in places.CATCHMENT_EXTRA_SEEDS.items():
        for lon, lat in extra:
            labels.append(key)
            points.append(xy(lon, lat))
    for lon, lat in places.COASTAL_CATCHMENT_SEEDS:
        labels.append(None)
        points.append(xy(lon, lat))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=terrain.land.envelope, ordered=True)
    )
    grouped: dict[str, list[BaseGeometry]] = {key: [] for key in lines}
    for label, cell in zip(labels, cells, strict=True):
        if label is not None:
            grouped[label].append(cell)
    return {key: clean_area(shapely.intersection(union_all(c), terrain.dry_land)) for key, c in grouped.items()}


def _flatten(specs: list[WatershedSpec]) -> list[tuple[WatershedSpec, WatershedSpec | None]]:
    out: list[tuple[WatershedSpec, WatershedSpec | None]] = []

    def visit(spec: WatershedSpec, parent: WatershedSpec | None) -> None:
        out.append((spec, parent))
        for child in spec.children:
            visit(child, spec)

    for spec in specs:
        visit(spec, None)
    return out


def _segments_of(spec: WatershedSpec) -> list[str]:
    return [*spec.segments, *(key for child in spec.children for key in _segments_of(child))]


def build_watersheds(terrain: Terrain, hydro: Hydrology) -> None:
    """Add nested watershed records to ``hydro`` and set each segment's watershed_id."""
    catchments = _catchments(terrain, hydro.segment_lines)
    units = _flatten(places.WATERSHEDS)
    unit_id = {spec.name: i + 1 for i, (spec, _) in enumerate(units)}
    members = {spec.name: set(_segments_of(spec)) for spec, _ in units}
    parents = {spec.name: parent for spec, parent in units}
    downstream = _downstream_segments()

    def ancestors(name: str) -> set[str]:
        found, parent = set(), parents[name]
        while parent is not None:
            found.add(parent.name)
            parent = parents[parent.name]
        return found

    def downstream_unit(spec: WatershedSpec) -> int | None:
        outlets = [downstream[k] for k in members[spec.name] if downstream[k] not in members[spec.name]]
        target = next((k for k in outlets if k is not None), None)
        if target is None:
            return None
        candidates = [s for s, _ in units if target in members[s.name] and s.name not in ancestors(spec.name)]
        same = [s for s in candidates if s.level == spec.level]
        coarser = [s for s in candidates if _LEVEL_RANK[s.level] < _LEVEL_RANK[spec.level]]
        pick = same or sorted(coarser, key=lambda s: -_LEVEL_RANK[s.level])
        return unit_id[pick[0].name] if pick else None

    for spec, parent in units:
        geom = clean_area(union_all(catchments[k] for k in sorted(members[spec.name])))
        hydro.watersheds.append(
            {
                "id": unit_id[spec.name],
                "name": spec.name,
                "name_en": spec.name_en,
                "level": spec.level,
                "parent_id": unit_id[parent.name] if parent else None,
                "downstream_id": downstream_unit(spec),
                "geom": geom,
            }
        )
    key_of = {river_id: key for key, river_id in hydro.segment_ids.items()}
    for river in hydro.rivers:
        key = key_of[river["id"]]
        deepest = max((s for s, _ in units if key in members[s.name]), key=lambda s: _LEVEL_RANK[s.level])
        river["watershed_id"] = unit_id[deepest.name]


def build_reservoirs(terrain: Terrain, hydro: Hydrology, rng: np.random.Generator) -> dict[str, Polygon]:
    """Reservoir water bodies: an irregular lake plus arms reaching up the stream valleys."""
    streams = union_all(hydro.segment_lines.values())
    reservoirs: dict[str, Polygon] = {}
    for name, spec in places.RESERVOIRS.items():
        center = xy(*spec.center)
        body = blob(
            center,
            spec.radius_m,
            rng,
            irregularity=0.5,
            elongation=spec.elongation,
            angle=math.radians(spec.angle_deg),
        )
        reach = Point(center).buffer(spec.radius_m * spec.elongation * 1.6)
        arms = shapely.buffer(shapely.intersection(streams, reach), 70.0)
        water = shapely.intersection(shapely.union(body, arms), terrain.dry_land)
        water = shapely.difference(water, union_all(reservoirs.values()))
        reservoirs[name] = largest_polygon(clean_area(water))
    return reservoirs
