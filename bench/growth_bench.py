"""Tile cost growth with the data (issue 18 item 7): the synthetic dataset at N× (default 10:
50,000 red lines, 200,000 rivers, 1 M stations) against 1×, tiles/s at z8–10 and z14–16.

The N× dataset is the incremental-generalization benchmark's (``bench.generalize_bench
--scale N`` builds it with its full generalization and reports the build: import,
generalization time and peak memory; run it first); 1× is the tile benchmark's dataset (the
same generator, seed and counts) or the generalization benchmark's at 1×. The features cover
the same extent N times as densely, so a tile holds about N times as many. Two servers (tile
cache off: every tile rendered), one per dataset, serve the same tile list to wrk at
concurrency 16; each round measures both back to back (order alternating), and the ratio is
the median of the rounds' paired ratios (N× / 1×).

    .venv/bin/python -m bench.generalize_bench --scale 10 --no-full   # builds the 10× dataset
    .venv/bin/python -m bench.growth_bench [--scale 10]               # results/growth_x10.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

from bench import tiles_bench
from bench.generalize_bench import ADMIN_URL, database_name
from bench.scaleout_bench import instance_env, paired, run_wrk, serve
from bench.serving import ROOT
from bench.synthetic import FULL_COUNTS
from bench.tiles_bench import sample_tiles
from gis_service.settings import with_database

BANDS = ("8-10", "14-16")
LAYERS = ("redline", "river")
CONCURRENCY = 16


def ready(url: str) -> bool:
    with contextlib.suppress(psycopg.Error), psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM redline_gen").fetchone()[0] > 0
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10.0, help="the larger dataset: features × this")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds per case")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each server")
    args = parser.parse_args()
    # 1×: the tile benchmark's dataset (the same seed and counts, built by `make bench` or on
    # first use of bench.tiles_bench.prepare_database) or the generalization benchmark's.
    small = with_database(ADMIN_URL, database_name(1.0))
    urls = {1.0: small if ready(small) else tiles_bench.database_url()}
    urls[args.scale] = with_database(ADMIN_URL, database_name(args.scale))
    for scale, url in urls.items():
        if not ready(url):
            command = f".venv/bin/python -m bench.generalize_bench --scale {scale:g}"
            sys.exit(f"the {scale:g}× dataset is missing: run `{command}`")
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="ecomap-growth-bench-"))
    results = {}
    with contextlib.ExitStack() as stack:
        bases = {
            scale: serve(stack, instance_env(url, cache=False), args.workers, workdir, f"x{scale:g}")[0]
            for scale, url in urls.items()
        }
        for layer in LAYERS:
            for band in BANDS:
                paths = [f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.pbf" for t in sample_tiles(band, 300)]

                def measure(base: str, paths: list[str] = paths) -> dict[str, float]:
                    return run_wrk([base + p for p in paths], CONCURRENCY, args.duration, workdir)

                cases = {f"{scale:g}×": lambda b=base: measure(b) for scale, base in bases.items()}
                results[(layer, band)] = paired(cases, args.rounds)
                for name, m in results[(layer, band)][0].items():
                    print(f"{layer:8s} z{band:5s} {name:4s} {m['rate']:8.1f} tiles/s p50 {m['p50']:7.1f} ms")
    big = f"{args.scale:g}×"
    lines = [
        f"# Tile cost growth: the synthetic dataset at {big} against 1×",
        "",
        f"Run {dt.datetime.now().isoformat(timespec='minutes')} on this machine ({os.cpu_count()} cores, load average"
        f" at the start {load:.1f}); tile cache off, {args.workers} workers per server, wrk c{CONCURRENCY},"
        f" {args.rounds} paired rounds of {args.duration} s, 300 tiles per band.",
        "",
        f"Command: `.venv/bin/python -m bench.growth_bench --scale {args.scale:g}`",
        "",
        f"Data: 1× = {FULL_COUNTS['redline']:,} red lines, {FULL_COUNTS['river']:,} rivers,"
        f" {FULL_COUNTS['station']:,} stations; {big} = {round(FULL_COUNTS['redline'] * args.scale):,},"
        f" {round(FULL_COUNTS['river'] * args.scale):,}, {round(FULL_COUNTS['station'] * args.scale):,} over the same"
        f" extent. The build figures (import, generalization, peak memory) are in generalize_x{args.scale:g}.md.",
        "",
        f"| layer | zooms | 1× tiles/s | {big} tiles/s | 1× p50 ms | {big} p50 ms | {big} / 1× (paired) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (layer, band), (medians, ratios) in results.items():
        small, large = medians["1×"], medians[big]
        lines.append(
            f"| {layer} | z{band} | {small['rate']:.1f} | {large['rate']:.1f} | {small['p50']:.1f} | {large['p50']:.1f}"
            f" | {statistics.median(ratios):.2f} | {small['errors'] + large['errors']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / f"growth_x{args.scale:g}.md"
    out.write_text(text)
    print("written to", out)


if __name__ == "__main__":
    main()
