"""The large synthetic Xiamen dataset of the tile benchmark (seeded, reproducible).

5,000 irregular red-line polygons of hundreds to thousands of vertices (~3.25 M in all),
20,000 river lines (~1.6 M vertices) and 100,000 stations over Xiamen's extent, loaded
with COPY into a freshly migrated database.

    python -m bench.synthetic "$(scripts/pgcluster.sh url ecomap_bench)"
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import psycopg
import shapely

from layers import db as layer_db

BBOX = (117.87, 24.40, 118.43, 24.90)
FUNCTION_TYPES = [
    "水源涵养",
    "生物多样性维护",
    "水土保持",
    "防风固沙",
    "海岸生态稳定",
    "水土流失敏感",
    "土地沙化敏感",
    "石漠化敏感",
]
KINDS = ["air_national", "air_local", "water_auto", "seawater", "drinking_intake", "outfall", "section"]
FULL_COUNTS = {"redline": 5000, "river": 20000, "station": 100_000}
"""Features per layer of the full dataset."""
M_PER_DEG_LAT = 110_950.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(24.65))


def redline_polygons(rng: np.random.Generator, count: int = 5000) -> list[shapely.Polygon]:
    """Disjoint star-shaped blobs on a jittered grid, 200–2,000 vertices each (mean ~650)."""
    cols = math.ceil(math.sqrt(count * (BBOX[2] - BBOX[0]) / (BBOX[3] - BBOX[1])))
    rows = math.ceil(count / cols)
    dx, dy = (BBOX[2] - BBOX[0]) / cols, (BBOX[3] - BBOX[1]) / rows
    polygons = []
    for i in range(count):
        cx = BBOX[0] + (i % cols + 0.5 + rng.uniform(-0.1, 0.1)) * dx
        cy = BBOX[1] + (i // cols + 0.5 + rng.uniform(-0.1, 0.1)) * dy
        n = int(np.clip(rng.lognormal(math.log(548), 0.6), 200, 2000))
        theta = np.linspace(0, 2 * math.pi, n, endpoint=False)
        radius = np.ones(n)
        for k in range(2, 9):
            radius += rng.uniform(0, 0.25 / k * 3) * np.sin(k * theta + rng.uniform(0, 2 * math.pi))
        radius += rng.normal(0, 0.01, n)
        radius = np.clip(radius, 0.3, None)
        radius *= 0.38 / radius.max()
        x = cx + radius * np.cos(theta) * dx
        y = cy + radius * np.sin(theta) * dy
        polygons.append(shapely.Polygon(np.column_stack([x, y])))
    return polygons


def river_lines(rng: np.random.Generator, count: int = 20000) -> list[shapely.LineString]:
    """Random-walk streams of 20–150 vertices (mean ~80), each a few hundred metres to km long."""
    lines = []
    for _ in range(count):
        n = int(rng.integers(20, 150))
        start = rng.uniform(BBOX[:2], BBOX[2:])
        heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.25, n))
        step = rng.uniform(15, 40)
        x = start[0] + np.cumsum(np.cos(heading) * step / M_PER_DEG_LON)
        y = start[1] + np.cumsum(np.sin(heading) * step / M_PER_DEG_LAT)
        lines.append(shapely.LineString(np.column_stack([x, y])))
    return lines


def _ewkb(geoms: list, multi: bool) -> list[str]:
    array = np.array(geoms, dtype=object)
    if multi:
        array = np.array(
            [shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else shapely.MultiLineString([g]) for g in array],
            dtype=object,
        )
    return list(shapely.to_wkb(shapely.set_srid(array, 4326), hex=True, include_srid=True))


def build(database_url: str, seed: int = 7, scale: float = 1.0) -> dict[str, int]:
    """(Re)create the schema in an existing database and load the synthetic layers (``scale``
    times as many features: the benchmark's ``--quick`` smoke run loads a twentieth)."""
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    layer_db.upgrade(database_url)
    counts = {name: max(1, round(n * scale)) for name, n in FULL_COUNTS.items()}
    polygons = redline_polygons(rng, counts["redline"])
    lines = river_lines(rng, counts["river"])
    points = rng.uniform(BBOX[:2], BBOX[2:], size=(counts["station"], 2))
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE redline, river, station CASCADE")  # station: datastream refers to it
        with conn.cursor().copy(
            "COPY redline (code, name, function_type, domain, area_km2, is_sample, geom) FROM STDIN"
        ) as copy:
            for i, value in enumerate(_ewkb(polygons, multi=True)):
                copy.write_row((f"SYN-{i:05d}", f"合成红线 {i}", FUNCTION_TYPES[i % 8], "陆域", None, True, value))
        with conn.cursor().copy("COPY river (name, segment, length_km, is_sample, geom) FROM STDIN") as copy:
            for i, value in enumerate(_ewkb(lines, multi=True)):
                copy.write_row((f"合成河流 {i}", f"段 {i}", None, True, value))
        with conn.cursor().copy("COPY station (code, name, kind, status, is_sample, geom) FROM STDIN") as copy:
            for i, (lon, lat) in enumerate(points):
                copy.write_row(
                    (
                        f"SYN{i:06d}",
                        f"合成站点 {i}",
                        KINDS[i % 7],
                        "active",
                        True,
                        f"SRID=4326;POINT({lon:.6f} {lat:.6f})",
                    )
                )
        conn.execute("ANALYZE redline; ANALYZE river; ANALYZE station")
        vertices = conn.execute("SELECT sum(ST_NPoints(geom)) FROM redline").fetchone()[0]
    print(
        f"synthetic data loaded in {time.monotonic() - started:.0f} s: {counts['redline']:,} red lines"
        f" ({vertices:,} vertices), {counts['river']:,} rivers, {counts['station']:,} stations"
    )
    return {**counts, "redline_vertices": int(vertices)}


if __name__ == "__main__":
    build(sys.argv[1])
