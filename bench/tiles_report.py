"""The tile benchmark's results and its report (bench/results/tiles.md).

Every comparison is given at concurrency 1 and 16 alike: throughput ratios and CPU time per
tile, both medians of the rounds, with the share of CPU time stolen by other guests of the
host while each was measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
from dataclasses import dataclass

OFF = "ecomap (cache off)"
WARM = "ecomap (warm cache)"
FLOOR = "floor: stored SQL over HTTP"
"""The floor: plain ST_AsMVT on the service's own stored tables, over a connection pool,
measured with wrk (bench/raw_tile_server.py, bench/tile_queries.py)."""
RAW_TABLES = "raw tables over HTTP"
"""A second floor: the same server running plain ST_AsMVT on the raw tables (ST_Transform per row)."""
TIPG = "tipg 1.6.1"
PGBENCH = "PostGIS alone (pgbench)"
"""A reference, not a target: the floor's SQL from pgbench (C, no HTTP, no application)."""
CASES = [("redline", "8-10"), ("redline", "11-13"), ("redline", "14-16"), ("river", "14-16"), ("station", "14-16")]
CONCURRENCIES = (1, 16)


@dataclass
class Result:
    target: str
    layer: str
    band: str
    concurrency: int
    tiles_per_s: float
    p50_ms: float
    p99_ms: float
    mean_kb: float | None = None
    cpu_ms: float = float("nan")
    """The machine's CPU time per tile, less the load generator's (``bench.cpu``)."""
    stolen: float = float("nan")
    """Share of the machine's CPU time the hypervisor gave to other guests meanwhile."""
    server_cpu_ms: float = float("nan")
    """CPU time per tile of the server's processes and its PostgreSQL backends (``bench.cpu``)."""


def _command(args: argparse.Namespace) -> str:
    return (
        "`.venv/bin/python -m bench.tiles_bench"
        + (" --quick" if args.quick else "")
        + (f" --duration {args.duration}" if args.duration != 4 and not args.quick else "")
        + (f" --rounds {args.rounds}" if args.rounds != 3 and not args.quick else "")
        + (f" --workers {args.workers}" if args.workers != 2 else "")
        + (" --no-tipg" if args.no_tipg else "")
        + "".join(f" --case {case}" for case in args.case or [])
        + "` (or `make bench`)"
    )


def report(
    results: list[Result],
    visible_s: float,
    stolen: float,
    args: argparse.Namespace,
    differences: list[str],
    notes: list[str],
) -> str:
    """The Markdown report: all measurements, the service against its floors at c1 and c16, the targets."""

    def find(target: str, layer: str, band: str, c: int) -> Result | None:
        return next(
            (r for r in results if r.target == target and r.layer == layer and r.band == band and r.concurrency == c),
            None,
        )

    lines = [
        "# Vector tile benchmark",
        "",
        f"Run {dt.datetime.now().isoformat(timespec='minutes')} on this machine ({os.cpu_count()} cores),"
        f" {args.workers} worker(s) for this service, each floor and TiPg; each figure is the median of"
        f" {args.rounds} rounds of {args.duration} s, the targets measured in turn in each round."
        f" CPU time stolen by other guests of the host during the run: {stolen:.0%} (per row: *stolen*)."
        " *CPU ms/tile*: CPU time per tile of the target's own processes and of the PostgreSQL"
        " backends of the benchmark's database (other tenants of the machine do not count);"
        " *machine CPU*: all the machine's CPU time per tile, less the load generator's (wrk,"
        " pgbench), which counts the kernel's network work but also anything else running."
        " Every wrk connection requests its own tiles in its own seeded order.",
        "",
        f"Command: {_command(args)}",
        "",
    ]
    if differences:
        lines += ["**Tiles differ from the service's** (the comparison is not like for like):", ""]
        lines += [f"- {d}" for d in differences] + [""]
    else:
        lines += [
            "The floor's tiles hold the same MVT layers, features and properties as the service's,"
            " and TiPg's are not empty where the service's are not (checked on 20 tiles per case).",
            "",
        ]
    lines += [f"**Warning**: {note}." for note in notes] + ([""] if notes else [])
    lines += [
        "| target | layer | zooms | conc. | tiles/s | p50 ms | p99 ms | mean KB | CPU ms/tile | machine CPU | stolen |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        size = f"{r.mean_kb:.1f}" if r.mean_kb is not None else ""
        lines.append(
            f"| {r.target} | {r.layer} | {r.band} | {r.concurrency} | {r.tiles_per_s:.1f} |"
            f" {r.p50_ms:.1f} | {r.p99_ms:.1f} | {size} | {r.server_cpu_ms:.3f} | {r.cpu_ms:.3f} | {r.stolen:.0%} |"
        )
    lines += [
        "",
        "## The service against its floors, at c1 and c16",
        "",
        "Throughput ratios (service ÷ other: above 1, the service serves more tiles/s) and CPU ratios"
        " (other's CPU ms/tile ÷ the service's: above 1, the service spends less per tile).",
        "",
        "| layer | zooms | conc. | ÷ floor tiles/s | ÷ floor CPU | ÷ raw tables tiles/s | ÷ raw tables CPU"
        " | ÷ TiPg tiles/s | ÷ TiPg CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, band in CASES:
        for c in CONCURRENCIES:
            off = find(OFF, layer, band, c)
            if off is None:
                continue
            cells = []
            for other in (FLOOR, RAW_TABLES, TIPG):
                them = find(other, layer, band, c)
                cells += (
                    [f"{off.tiles_per_s / them.tiles_per_s:.2f}", f"{them.server_cpu_ms / off.server_cpu_ms:.2f}"]
                    if them
                    else ["", ""]
                )
            lines.append(f"| {layer} | {band} | {c} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets", ""]
    checks = []
    for layer in ("redline", "river", "station"):
        for c in CONCURRENCIES:
            off, floor = find(OFF, layer, "14-16", c), find(FLOOR, layer, "14-16", c)
            if off and floor:
                name = f"cache off, {layer} z14–16, c{c}: ≥ 0.8× the floor"
                checks.append((name, off.tiles_per_s / floor.tiles_per_s, 0.8))
        off, tipg = find(OFF, layer, "14-16", 16), find(TIPG, layer, "14-16", 16)
        if off and tipg:
            checks.append((f"cache off, {layer} z14–16, c16: ≥ 2× TiPg", off.tiles_per_s / tipg.tiles_per_s, 2.0))
    off, tipg = find(OFF, "redline", "8-10", 16), find(TIPG, "redline", "8-10", 16)
    if off and tipg:
        checks.append(("cache off, red lines z8–10, c16: ≥ 20× TiPg", off.tiles_per_s / tipg.tiles_per_s, 20.0))
        if off.mean_kb and tipg.mean_kb:
            checks.append(("red lines z8–10 mean tile size ≤ ¼ of TiPg's", tipg.mean_kb / off.mean_kb, 4.0))
    if off:
        checks.append(("red lines z8–10 p99 < 150 ms (ratio 150/p99 ≥ 1)", 150.0 / off.p99_ms, 1.0))
    warm_rates = [r.tiles_per_s for r in results if r.target == WARM and r.concurrency == 16]
    if warm_rates:
        checks.append(
            ("warm cache ≥ 3,000 tiles/s (median over cases, c16)", statistics.median(warm_rates) / 3000, 1.0)
        )
    checks.append(("edited feature visible in its tile within 1 s (median of 5)", 1.0 / max(visible_s, 1e-3), 1.0))
    lines += ["| target | ratio | needed | met |", "|---|---|---|---|"]
    for name, ratio, needed in checks:
        lines.append(f"| {name} | {ratio:.2f} | {needed} | {'yes' if ratio >= needed else '**no**'} |")
    lines += ["", f"Edit-to-visible latency (median of 5): {visible_s * 1000:.0f} ms.", ""]
    references = [
        (layer, band, c, off.tiles_per_s / alone.tiles_per_s)
        for layer, band in CASES
        for c in CONCURRENCIES
        if (off := find(OFF, layer, band, c)) and (alone := find(PGBENCH, layer, band, c))
    ]
    if references:
        lines += [
            "For reference (not a target): cache off against PostGIS alone, the floor's SQL run by",
            "pgbench with no HTTP and no application — "
            + ", ".join(f"{layer} z{band} c{c} {ratio:.2f}×" for layer, band, c, ratio in references)
            + ".",
            "",
        ]
    return "\n".join(lines)
