"""Zonal-statistics latency (p50/p95) over the demo rasters: land cover, elevation and slope.

In process (no HTTP, no database): ``zonal_statistics`` as the zone check and the red-line
stats endpoint call it, for the same sites as ``bench/zone_check_bench.py`` (a wavy ring of
radius 3 km around 118.02 E 24.75 N, 同安/集美 hills). Each run computes the exact coverage
of the site on the raster grid once (the three demo rasters share it), reads the
full-resolution window of each raster and aggregates. The first call of the process (opening
the files) is reported apart. The table is printed and written to
``bench/results/rasters_zonal.md``.

    .venv/bin/python bench/raster_stats_bench.py --runs 50

The demo rasters are taken from ``--data-dir`` (default: the service's raster data dir) and
generated there first when missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.zone_check_bench import CASES, percentile  # noqa: E402 - after the path set-up
from gis_service.services import raster_stats  # noqa: E402
from gis_service.services.raster_stats import ZonalRasters, buffer_on_ellipsoid, zonal_statistics  # noqa: E402
from gis_service.settings import Settings  # noqa: E402
from layers.catalog import load_catalog  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "rasters_zonal.md"


def demo_rasters(data_dir: Path) -> ZonalRasters:
    """The catalog's land-cover/elevation/slope rasters, generating the demo files when missing."""
    from layers.demo.rasters import write_demo_rasters

    data_dir.mkdir(parents=True, exist_ok=True)
    if write_demo_rasters(data_dir):
        print(f"generated the demo rasters in {data_dir}")
    return ZonalRasters.from_catalog(load_catalog(), data_dir)


def cases() -> dict[str, shapely.Geometry]:
    sites = {name: shapely.geometry.shape(geometry) for name, geometry in CASES.items()}
    sites["point, 500 m buffer"] = buffer_on_ellipsoid(sites["point"], 500)
    return sites


def measure(site: shapely.Geometry, rasters: ZonalRasters, runs: int, warmup: int) -> tuple[list[float], dict]:
    timings, result = [], {}
    for index in range(warmup + runs):
        start = time.perf_counter()
        result = zonal_statistics(site, rasters)
        elapsed = (time.perf_counter() - start) * 1000
        if index >= warmup:
            timings.append(elapsed)
    return timings, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="Raster data directory (default: settings)")
    parser.add_argument("--runs", type=int, default=50, help="Timed calls per case")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed calls per case first")
    parser.add_argument("--no-write", action="store_true", help=f"Do not write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    rasters = demo_rasters(args.data_dir or Settings().rasters.data_dir)
    sites = cases()
    load_before = os.getloadavg()[0]

    raster_stats._OPEN.clear()  # the first call opens the three files
    start = time.perf_counter()
    zonal_statistics(sites["polygon, 1,000 vertices"], rasters)
    first_ms = (time.perf_counter() - start) * 1000

    grid = raster_stats.open_raster(rasters.land_cover.path(rasters.data_dir)).grid
    rows = []
    for name, site in sites.items():
        timings, result = measure(site, rasters, args.runs, args.warmup)
        land_cover = result["land_cover"]
        cells = len(raster_stats.zone_cells(site, grid)[0].rows)
        rows.append(
            (
                name,
                statistics.median(timings),
                percentile(timings, 0.95),
                max(timings),
                cells,
                land_cover["area_km2"],
                len(land_cover["classes"]),
            )
        )
    header = (
        "| case | p50 (ms) | p95 (ms) | max (ms) | cells touched | area (km²) | classes |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    table = "\n".join(
        f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {cells:,} | {area:.3f} | {classes} |"
        for name, p50, p95, worst, cells, area, classes in rows
    )
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(header)
    print(table)
    print(f"\nfirst call of the process (opens the files): {first_ms:.1f} ms; {load}")
    if args.no_write:
        return
    command = "python bench/raster_stats_bench.py " + " ".join(sys.argv[1:])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Zonal statistics latency (land cover, elevation, slope)\n\n"
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}), in process, over the demo rasters "
        "(EPSG:4326, 1″ cells ≈ 31 m × 28 m; the three rasters share one grid, so the exact coverage is "
        f"computed once per call), {args.runs} timed calls after {args.warmup} warm-up calls per case; "
        f"{load} (other work on the machine inflates the figures).\n\n"
        f"Command:\n\n```\n.venv/bin/{command.strip()}\n```\n\n"
        f"{header}\n{table}\n\n"
        f"First call of the process (opens the three COGs): {first_ms:.1f} ms.\n\n"
        "Every call reads the full-resolution window of the site's bounding box (no overviews: they would "
        "not be exact) and weighs each cell by its exact coverage × its area on the WGS84 ellipsoid.\n",
        encoding="utf-8",
    )
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
