"""Import throughput and peak memory: 100,000 points and 5,000 large polygons from GeoPackages.

    .venv/bin/python bench/import_bench.py            # both cases, writes bench/results/import.md
    .venv/bin/python bench/import_bench.py --points 20000 --polygons 1000 --no-write

Each import runs in its own subprocess (``ecomap import`` semantics: one transaction,
validation, staging, history triggers, tile generalization), so the peak resident
memory reported is the import's alone. The database is a scratch one on the project's
cluster (``ECOMAP_BENCH_ADMIN_URL``, default the local cluster on port 55432).
Targets (issue 4): each import under 60 s on this 2-core machine, peak memory < 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "import.md"
ADMIN_URL = os.environ.get("ECOMAP_BENCH_ADMIN_URL")
"""Default: the local cluster's owner role (README "Database roles")."""
BENCH_DB = "ecomap_bench_import"
WEST, SOUTH, EAST, NORTH = 117.9, 24.4, 118.4, 24.9


def make_points(path: Path, count: int, seed: int = 1) -> None:
    """Station points spread over Xiamen with unique codes and Chinese names."""
    import geopandas as gpd
    import pyogrio
    import shapely

    rng = np.random.default_rng(seed)
    lon = rng.uniform(WEST, EAST, count)
    lat = rng.uniform(SOUTH, NORTH, count)
    kinds = np.array(["air_local", "water_auto", "seawater", "outfall", "section"])
    frame = gpd.GeoDataFrame(
        {
            "code": [f"P{i:06d}" for i in range(count)],
            "name": [f"测试站点{i}号" for i in range(count)],
            "kind": kinds[rng.integers(0, len(kinds), count)],
            "status": "active",
        },
        geometry=shapely.points(lon, lat),
        crs=4326,
    ).to_crs(4527)  # CGCS2000 Gauss-Krüger zone 39, as official files come
    pyogrio.write_dataframe(frame, path, layer="stations")


def make_polygons(path: Path, count: int, seed: int = 2) -> int:
    """Non-overlapping red-line parcels of 300-3,000 vertices; returns the vertex total.

    Each outline is a wavy closed curve (low-frequency harmonics, like natural boundaries)
    with digitizing jitter of a fifth of a segment, inside its own grid cell.
    """
    import geopandas as gpd
    import pyogrio
    import shapely

    rng = np.random.default_rng(seed)
    columns = int(np.ceil(np.sqrt(count * 2)))
    rows = int(np.ceil(count / columns))
    width, height = (EAST - WEST) / columns, (NORTH - SOUTH) / rows
    geoms, vertices = [], 0
    for i in range(count):
        cx = WEST + (i % columns + 0.5) * width
        cy = SOUTH + (i // columns + 0.5) * height
        n = int(rng.integers(300, 3001))
        angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
        radius = 0.33 + sum(0.05 / k * np.sin(k * angle + rng.uniform(0, 2 * np.pi)) for k in range(1, 8))
        radius += rng.normal(0, 0.2 * 2 * np.pi * 0.33 / n, n)
        ring = np.column_stack([cx + radius * width * np.cos(angle), cy + radius * height * np.sin(angle)])
        geoms.append(shapely.Polygon(ring))
        vertices += n + 1
    functions = np.array(["水源涵养", "生物多样性维护", "水土保持", "海岸生态稳定"])
    frame = gpd.GeoDataFrame(
        {
            "code": [f"HX-{i:05d}" for i in range(count)],
            "name": [f"测试红线{i}号" for i in range(count)],
            "function_type": functions[rng.integers(0, len(functions), count)],
            "domain": "陆域",
            "approval_doc": "厦府〔2025〕12号",
        },
        geometry=geoms,
        crs=4326,
    ).to_crs(4548)  # Gauss-Krüger CM 117°E
    pyogrio.write_dataframe(frame, path, layer="redline")
    return vertices


def run_import(database_url: str, layer_id: str, path: str) -> dict:
    """Child process: one import; reports timings and its own peak memory as JSON."""
    import psycopg

    from layers.catalog import load_catalog
    from layers.importer import import_layer

    layer = load_catalog().get(layer_id)
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = import_layer(conn, layer, path, author="bench", generalize=False)
        imported = time.perf_counter()
        import_peak = _peak_rss()
        from tiles.generalize import generalize_layer

        with conn.transaction():
            generalized = generalize_layer(conn, layer)
    finished = time.perf_counter()
    peak = _peak_rss()
    return {
        "features": result.report.features,
        "inserted": result.inserted,
        "revision": result.revision,
        "import_s": imported - started,
        "generalize_s": finished - imported,
        "generalized_rows": generalized,
        "import_peak_bytes": import_peak,
        "peak_bytes": peak,
    }


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(database_url: str, layer_id: str, path: Path) -> dict:
    command = [sys.executable, __file__, "--child", layer_id, str(path), "--database-url", database_url]
    started = time.perf_counter()
    output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    report["wall_s"] = time.perf_counter() - started
    return report


def _database() -> str:
    sys.path.insert(0, str(ROOT))
    import psycopg
    from psycopg import sql

    from gis_service.settings import OWNER_ROLE, local_database_url, with_database
    from layers import db

    admin = ADMIN_URL or local_database_url(OWNER_ROLE, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(BENCH_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = with_database(admin, BENCH_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    db.upgrade(url)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--polygons", type=int, default=5_000)
    parser.add_argument("--no-write", action="store_true", help="Do not write bench/results/import.md")
    parser.add_argument("--child", nargs=2, metavar=("LAYER", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run_import(args.database_url, *args.child)))
        return
    url = _database()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecomap-bench-") as tmp:
        points = Path(tmp) / "points.gpkg"
        make_points(points, args.points)
        rows.append(("points (station, EPSG:4527)", args.points, args.points, points, _child(url, "station", points)))
        polygons = Path(tmp) / "polygons.gpkg"
        vertices = make_polygons(polygons, args.polygons)
        rows.append(
            ("polygons (redline, EPSG:4548)", args.polygons, vertices, polygons, _child(url, "redline", polygons))
        )
        lines = [
            "# Import benchmark",
            "",
            f"Command: `.venv/bin/python bench/import_bench.py --points {args.points} --polygons {args.polygons}`",
            "",
            f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; "
            "PostGIS on the local project cluster. Each import runs in a fresh subprocess: read in chunks with "
            "pyogrio, reproject, validate, COPY to a staging table, write in one transaction (history triggers "
            "on for redline), then recompute the tile generalization (its own transaction here, timed apart).",
            "",
            "| file | features | vertices | file MB | import s | features/s | import peak RSS MB |"
            " generalize s | peak RSS with generalize MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, count, vertex_count, path, r in rows:
            lines.append(
                f"| {name} | {count:,} | {vertex_count:,} | {path.stat().st_size / 1e6:.0f} | {r['import_s']:.1f} |"
                f" {count / r['import_s']:,.0f} | {r['import_peak_bytes'] / 2**20:.0f} | {r['generalize_s']:.1f} |"
                f" {r['peak_bytes'] / 2**20:.0f} |"
            )
        lines += [
            "",
            "Targets: each import < 60 s, peak memory < 1 GB. `import s` covers reading, validation, staging and",
            "the transactional write (with revision history for redline); `import peak RSS` is the whole child",
            "process (Python, GDAL, shapely) at the end of the import. `generalize s` is the low-zoom tile geometry",
            "(tiles.generalize, full-layer coverage simplification), run afterwards in the same process and timed",
            "apart: `ecomap import` runs it inside the import transaction only for layers up to 32 MB and otherwise",
            "leaves the new features in gen_dirty for the service's background regeneralization, which is what",
            "happens for the polygon file here.",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
