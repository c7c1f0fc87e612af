"""Raster tile latency, cold and cached, over the demo rasters (land cover, DEM, slope).

Starts the real service (one uvicorn worker, on a free port) twice on freshly generated demo
rasters in a temporary raster directory: once with the tile cache off (every request reads
the COG with rio-tiler, warps, colours and encodes: "cold"; GDAL's block cache stays warm as
in a running server) and once with it on, after requesting each tile once ("cached"). The
tiles are a fixed random sample (seeded) of the WebMercatorQuad tiles over Xiamen at each
zoom, requested sequentially over keep-alive HTTP (p50/p95), then all at once by 8
concurrent clients (tiles/s). Results go to ``bench/results/rasters.md``.

    .venv/bin/python -m bench.raster_bench --tiles 100

Target: a cold raster tile under 50 ms p50.

Zonal statistics timing (a 1,000-vertex polygon) belongs in ``zonal_stats_section`` below;
it is measured separately until it is added there.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import morecantile

from bench.serving import ECOMAP_SERVE, ROOT, free_port, server

RESULTS = ROOT / "bench" / "results" / "rasters.md"
RASTERS = ["landcover", "dem", "slope"]
ZOOMS = [9, 11, 13, 15]
XIAMEN = (117.88, 24.40, 118.44, 24.91)
TMS = morecantile.tms.get("WebMercatorQuad")
CONCURRENCY = 8


def sample_tiles(z: int, count: int, seed: int = 7) -> list[morecantile.Tile]:
    """A fixed random sample of the tiles covering Xiamen at zoom z."""
    tiles = list(TMS.tiles(*XIAMEN, zooms=[z]))
    random.Random(seed + z).shuffle(tiles)
    return tiles[:count]


@contextmanager
def service(data_dir: Path, cache: bool) -> Iterator[str]:
    """The real service in a subprocess; yields its base URL."""
    port = free_port()
    env = {"ECOMAP_RASTERS__DATA_DIR": str(data_dir), "ECOMAP_TILES__CACHE_ENABLED": "true" if cache else "false"}
    with server([*ECOMAP_SERVE, "--port", str(port)], env, port) as base:
        yield base


def sequential(client: httpx.Client, urls: list[str]) -> tuple[list[float], int]:
    """Latency of each request in ms, and how many answered 200 (the others 204)."""
    latencies, drawn = [], 0
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        latencies.append((time.perf_counter() - start) * 1000)
        assert response.status_code in (200, 204), (url, response.status_code, response.text)
        drawn += response.status_code == 200
    return latencies, drawn


async def concurrent_rate(urls: list[str]) -> float:
    """Tiles per second with ``CONCURRENCY`` keep-alive clients sharing the list."""
    queue = list(urls)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY)) as client:

        async def worker() -> None:
            while queue:
                await client.get(queue.pop())

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(urls) / (time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(base: str, tiles_per_zoom: int, warm: bool) -> list[dict]:
    rows = []
    with httpx.Client() as client:
        client.get(f"{base}/tiles/raster/dem/12/3392/1760.png")  # open the datasets
        for raster in RASTERS:
            for z in ZOOMS:
                urls = [f"{base}/tiles/raster/{raster}/{t.z}/{t.x}/{t.y}.png" for t in sample_tiles(z, tiles_per_zoom)]
                if warm:
                    sequential(client, urls)
                latencies, drawn = sequential(client, urls)
                rate = asyncio.run(concurrent_rate(urls))
                rows.append(
                    {
                        "raster": raster,
                        "z": z,
                        "n": len(urls),
                        "drawn": drawn,
                        "p50": statistics.median(latencies),
                        "p95": percentile(latencies, 0.95),
                        "rate": rate,
                    }
                )
                print(f"{'cached' if warm else 'cold':6} {raster:9} z{z:<2} {rows[-1]}", flush=True)
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| raster | zoom | tiles (drawn) | p50 (ms) | p95 (ms) | tiles/s (c=8) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        timing = f"{r['p50']:.1f} | {r['p95']:.1f} | {r['rate']:.0f}"
        lines.append(f"| {r['raster']} | {r['z']} | {r['n']} ({r['drawn']}) | {timing} |")
    return lines


def zonal_stats_section() -> list[str]:
    """Zonal statistics timing (1,000-vertex polygon): measured by bench/raster_stats_bench.py for now."""
    return [
        "## Zonal statistics",
        "",
        "Measured separately: `.venv/bin/python -m bench.raster_stats_bench` (results in `rasters_zonal.md`).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=100, help="tiles per raster and zoom (default 100)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write bench/results/rasters.md")
    args = parser.parse_args()

    from layers.demo.rasters import write_demo_rasters

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ecomap-raster-bench-") as tmp:
        data_dir = Path(tmp)
        start = time.perf_counter()
        write_demo_rasters(data_dir)
        generation_s = time.perf_counter() - start
        with service(data_dir, cache=False) as base:
            cold = measure(base, args.tiles, warm=False)
        with service(data_dir, cache=True) as base:
            cached = measure(base, args.tiles, warm=True)
    load_after = os.getloadavg()[0]

    overall_p50 = statistics.median([r["p50"] for r in cold])
    worst_p50 = max(r["p50"] for r in cold)
    met = "met" if worst_p50 < 50 else "NOT met"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Raster tile latency",
        "",
        f"Measured {now} on {platform.machine()} ({os.cpu_count()} CPUs, Python {platform.python_version()}): "
        f"demo rasters (1″ grid, EPSG:4326 COGs, generated in {generation_s:.1f} s including the demo vectors), "
        f"one uvicorn worker, {args.tiles} random tiles over Xiamen per raster and zoom, PNG; sequential "
        f"keep-alive requests for p50/p95, then {CONCURRENCY} concurrent clients for tiles/s. "
        f"Load average {load_before:.1f} before, {load_after:.1f} after (other work on the machine inflates "
        'the figures). A tile with nothing to draw answers 204 (counted; "drawn" = 200).',
        "",
        "Command:",
        "",
        "```",
        f".venv/bin/python -m bench.raster_bench --tiles {args.tiles}",
        "```",
        "",
        "## Cold: tile cache off (every tile read, warped, coloured and encoded)",
        "",
        *table(cold),
        "",
        f"Target: cold tile p50 < 50 ms — {met} (worst raster/zoom p50 {worst_p50:.1f} ms, median of the "
        f"p50s {overall_p50:.1f} ms).",
        "",
        "## Cached: tile cache on, every tile requested once before",
        "",
        *table(cached),
        "",
        *zonal_stats_section(),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
