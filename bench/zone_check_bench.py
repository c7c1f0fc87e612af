"""Zone-check latency (p50/p95) for a point, a 1,000-vertex and a 10,000-vertex polygon.

End to end over HTTP against a real service: either one you give (``--url``) or one this
script starts on a free port for the database in ``ECOMAP_DATABASE_URL`` (the demo data
must be loaded: ``ecomap demo load``). Requests are sequential after a warm-up; the
table is printed and written to ``bench/results/zone_check.md``.

    ECOMAP_DATABASE_URL="$(scripts/pgcluster.sh web-url ecomap)" \\
        .venv/bin/python bench/zone_check_bench.py --runs 50

Target: a 1,000-vertex polygon under 50 ms p95 on the demo data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from bench.serving import ECOMAP_SERVE, ROOT, free_port, server

RESULTS = ROOT / "bench" / "results" / "zone_check.md"
CENTRE = (118.02, 24.75)
"""同安/集美 hills: the site overlaps watersheds, a district and water-source zones, near red lines."""


def polygon(vertices: int, radius_m: float) -> dict:
    """A wavy ring of ``vertices`` distinct vertices around the centre."""
    lon0, lat0 = CENTRE
    ring = []
    for i in range(vertices):
        angle = 2 * math.pi * i / vertices
        radius = radius_m * (1 + 0.1 * math.sin(7 * angle))
        ring.append(
            [
                lon0 + radius * math.cos(angle) / (111_320 * math.cos(math.radians(lat0))),
                lat0 + radius * math.sin(angle) / 110_574,
            ]
        )
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


CASES = {
    "point": {"type": "Point", "coordinates": list(CENTRE)},
    "polygon, 1,000 vertices": polygon(1_000, 3_000),
    "polygon, 10,000 vertices": polygon(10_000, 3_000),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[index]


@contextmanager
def service(url: str | None) -> Iterator[str]:
    """The base URL of a running service; starts one when no URL is given."""
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    with server([*ECOMAP_SERVE, "--port", str(port)], {}, port) as base:
        yield base


def measure(client: httpx.Client, geometry: dict, runs: int, warmup: int) -> tuple[list[float], dict]:
    body = json.dumps({"geometry": geometry, "buffer_m": 200}).encode()  # encoded once, as a client would
    headers = {"content-type": "application/json"}
    result: dict = {}
    timings = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        response = client.post("/api/zone-check", content=body, headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        response.raise_for_status()
        result = response.json()
        if index >= warmup:
            timings.append(elapsed)
    return timings, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Base URL of a running service (default: start one)")
    parser.add_argument("--runs", type=int, default=50, help="Timed requests per case")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed requests per case first")
    parser.add_argument("--no-write", action="store_true", help=f"Do not write {RESULTS.relative_to(ROOT)}")
    parser.add_argument(
        "--large",
        action="store_true",
        help="The database holds the large synthetic dataset of the tile benchmark (bench/synthetic.py): "
        "target 200 ms, results to bench/results/zone_check_large.md",
    )
    args = parser.parse_args()
    limit_ms, results, dataset = (
        (
            200,
            RESULTS.with_name("zone_check_large.md"),
            "the large synthetic dataset (5,000 red lines, 20,000 rivers, 100,000 stations)",
        )
        if args.large
        else (50, RESULTS, "demo data")
    )

    rows = []
    load_before = os.getloadavg()[0]
    with service(args.url) as base, httpx.Client(base_url=base, timeout=60) as client:
        for name, geometry in CASES.items():
            timings, result = measure(client, geometry, args.runs, args.warmup)
            rows.append(
                (
                    name,
                    statistics.median(timings),
                    percentile(timings, 0.95),
                    max(timings),
                    len(result["overlaps"]),
                    result["verdict"],
                )
            )

    header = "| case | p50 (ms) | p95 (ms) | max (ms) | overlaps | verdict |\n|---|---:|---:|---:|---:|---|"
    table = "\n".join(
        f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {overlaps} | {verdict} |"
        for name, p50, p95, worst, overlaps, verdict in rows
    )
    print(header)
    print(table)
    target = next(p95 for name, _, p95, *_ in rows if name.startswith("polygon, 1,000"))
    verdict = "met" if target < limit_ms else "NOT met"
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(f"\ntarget (1,000-vertex polygon p95 < {limit_ms} ms): {verdict} ({target:.1f} ms); {load}")
    if args.no_write:
        return
    command = "python bench/zone_check_bench.py " + " ".join(sys.argv[1:])
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(
        "# Zone-check latency\n\n"
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}), {dataset}, sequential requests over HTTP "
        f"to one uvicorn worker, buffer 200 m, {args.runs} timed runs after {args.warmup} warm-up runs per case; "
        f"{load} (other work on the machine inflates the figures).\n\n"
        f"Command:\n\n```\nECOMAP_DATABASE_URL=... .venv/bin/{command.strip()}\n```\n\n"
        f"{header}\n{table}\n\n"
        f"Target: 1,000-vertex polygon p95 < {limit_ms} ms — {verdict} ({target:.1f} ms).\n",
        encoding="utf-8",
    )
    print(f"written to {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
