"""Vector tile benchmark: this service (cache off / warm) against raw ST_AsMVT SQL and TiPg.

One command builds the large synthetic dataset (bench/synthetic.py) in its own database,
precomputes the generalization, starts the servers, and measures tiles/s and p50/p99
latency per zoom band at concurrency 1 and 16 with wrk (HTTP keep-alive), on the same tile
lists, interleaved, in one run, for: this service with the cache off and with a warm
cache; the raw ST_AsMVT SQL over a connection pool behind the thinnest HTTP server
(bench/raw_tile_server.py: bare ASGI, asyncpg, prepared statements — the floor); and TiPg.
PostGIS alone (the same raw SQL from pgbench: C, no HTTP, no application) is measured too,
as a reference for what the HTTP layer costs. Ratios are printed and the results are
written to bench/results/tiles.md with the command that produced them.

    make bench            # or: .venv/bin/python -m bench.tiles_bench [--rounds 3 --duration 4]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import morecantile
import psycopg

from bench import synthetic
from bench.serving import ECOMAP_SERVE, ROOT, server
from layers import db as layer_db
from layers.catalog import load_catalog
from tiles.generalize import dirty_layers, generalize_catalog, outdated_layers

TMS = morecantile.tms.get("WebMercatorQuad")
BANDS = {"8-10": (8, 10), "11-13": (11, 13), "14-16": (14, 16)}
CASES = [("redline", "8-10"), ("redline", "11-13"), ("redline", "14-16"), ("river", "14-16"), ("station", "14-16")]
PORT = os.environ.get("ECOMAP_PG_PORT", "55432")
BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
"""The benchmark's own environment (TiPg, and asyncpg for the raw-SQL server)."""
ADMIN_URL = f"postgresql://ecomap:ecomap@127.0.0.1:{PORT}/postgres"
BENCH_DB = "ecomap_bench"
RAW_HTTP = "raw ST_AsMVT over HTTP"
"""The floor of the issue: the raw SQL over a connection pool, measured with wrk (bench/raw_tile_server.py)."""
PGBENCH = "PostGIS alone (pgbench)"
"""A reference, not a target: the raw SQL from pgbench (C, no HTTP, no application)."""
WRK_SCRIPT = """
local urls = {}
for line in io.lines(os.getenv("URLS")) do urls[#urls + 1] = line end
local i = math.random(#urls)
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
"""


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
    """CPU time per tile (``CpuMeter``)."""


def sample_tiles(band: str, count: int = 300, seed: int = 11) -> list[morecantile.Tile]:
    """A fixed random sample of the tiles over the synthetic data at the band's zooms."""
    rng = random.Random(seed)
    lo, hi = BANDS[band]
    tiles = []
    for z in range(lo, hi + 1):
        tiles += list(TMS.tiles(*synthetic.BBOX, zooms=[z]))
    rng.shuffle(tiles)
    return tiles[:count]


def database_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + BENCH_DB


def prepare_database(rebuild: bool) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if exists and not rebuild:
            with psycopg.connect(database_url(), autocommit=True) as bench:
                ready = bench.execute("SELECT to_regclass('redline_gen') IS NOT NULL").fetchone()[0]
                ready = ready and bench.execute("SELECT count(*) FROM redline").fetchone()[0] == 5000
            if ready:
                print("reusing the synthetic dataset in", BENCH_DB)
                layer_db.upgrade(database_url())
                with psycopg.connect(database_url(), autocommit=True) as bench:
                    # Generalized rows from before a schema change (e.g. 0008's grid), or left
                    # behind by the last run's edit check (dirty), are recomputed.
                    measured = ["redline", "river"]
                    outdated = {*outdated_layers(bench, load_catalog(), measured), *dirty_layers(bench)}
                    stale = sorted(outdated & {*measured})
                    if stale:
                        print("recomputing the generalization of", ", ".join(stale))
                        generalize_catalog(bench, load_catalog(), stale)
                return
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    synthetic.build(database_url())
    started = time.monotonic()
    with psycopg.connect(database_url(), autocommit=True) as conn:
        written = generalize_catalog(conn, load_catalog(), ["redline", "river"])
    print(f"generalization precomputed in {time.monotonic() - started:.0f} s: {written}")


def parse_ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def machine_cpu_ticks() -> list[int]:
    """This machine's CPU ticks so far (/proc/stat): user, nice, system, idle, iowait, irq,
    softirq, steal (time the hypervisor gave to other guests)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


class CpuMeter:
    """CPU time this machine spends on a measurement, less the load generator's own (wrk or
    pgbench, children of this process): the server, PostgreSQL and the kernel's network work."""

    def __enter__(self) -> CpuMeter:
        self._machine, self._client = self._machine_s(), self._client_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = (self._machine_s() - self._machine) - (self._client_s() - self._client)

    @staticmethod
    def _machine_s() -> float:
        user, nice, system, _, _, irq, softirq, _ = machine_cpu_ticks()
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _client_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime


def run_wrk(urls: list[str], concurrency: int, duration: int, workdir: Path) -> tuple[float, float, float, float]:
    """Tiles/s, p50 and p99 ms, and CPU ms per tile (``CpuMeter``)."""
    url_file = workdir / "urls.txt"
    url_file.write_text("\n".join(urls) + "\n")
    script = workdir / "urls.lua"
    script.write_text(WRK_SCRIPT)
    threads = 1 if concurrency == 1 else 2
    with CpuMeter() as cpu:
        output = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{duration}s",
                "--latency",
                "--timeout",
                "30s",
                "-s",
                str(script),
                urls[0],
            ],
            env={**os.environ, "URLS": str(url_file)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = parse_ms(m.group(1)) if (m := re.search(r"^\s+50%\s+(\S+)$", output, re.MULTILINE)) else float("nan")
    p99 = parse_ms(m.group(1)) if (m := re.search(r"^\s+99%\s+(\S+)$", output, re.MULTILINE)) else float("nan")
    if p50 != p50 or p99 != p99:  # NaN: wrk printed no latency distribution (e.g. too few replies)
        print("   note: no latency percentiles in wrk's output:\n" + output)
    if "Non-2xx" in output:
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        print(f"   warning: {bad.group(1) if bad else '?'} non-2xx responses")
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return rate, p50, p99, cpu.seconds * 1000 / max(requests, 1)


def raw_sql(layer: str, per_request: bool = False) -> str:
    """The plain ST_AsMVT query a hand-written tile server would run (reprojecting per tile):
    for pgbench, the tile comes from ``bench_tiles`` (``:band``, ``:i``); ``per_request``,
    from the parameters ($1 = z, $2 = x, $3 = y) of the raw-SQL HTTP server."""
    spec = load_catalog().get(layer)
    columns = ", ".join(f"t.{p.name}" + ("::text" if p.type == "date" else "") for p in spec.properties)
    margin = spec.tiles.buffer / spec.tiles.extent
    zxy, tiles = ("$1, $2, $3", "") if per_request else ("b.z, b.x, b.y", ", bench_tiles b")
    where = "" if per_request else "b.band = :band AND b.i = :i AND "
    return (
        f"SELECT ST_AsMVT(q, '{layer}', 4096, 'geom', 'id') FROM ("
        f" SELECT t.id, {columns},"
        f" ST_AsMVTGeom(ST_Transform(t.geom, 3857), ST_TileEnvelope({zxy}), 4096, 64, true) AS geom"
        f" FROM {layer} t{tiles} WHERE {where}"
        f"t.geom && ST_Transform(ST_TileEnvelope({zxy}, margin => {margin}), 4326)) q"
    )


def run_pgbench(
    layer: str, band_index: int, count: int, concurrency: int, duration: int, workdir: Path
) -> tuple[float, float, float, float]:
    """Tiles/s, p50 and p99 ms, and CPU ms per tile (``CpuMeter``)."""
    script = workdir / f"{layer}.sql"
    script.write_text(f"\\set band {band_index}\n\\set i random(0, {count - 1})\n{raw_sql(layer)};\n")
    log_prefix = workdir / "pgbench_log"
    for old in workdir.glob("pgbench_log*"):
        old.unlink()
    env = {**os.environ, "PGPASSWORD": "ecomap", "PGOPTIONS": "-c jit=off"}
    with CpuMeter() as cpu:
        output = subprocess.run(
            [
                "pgbench",
                "-n",
                "-M",
                "prepared",
                "-c",
                str(concurrency),
                "-j",
                str(min(concurrency, 2)),
                "-T",
                str(duration),
                "-f",
                str(script),
                "-l",
                "--log-prefix",
                str(log_prefix),
                "-h",
                "127.0.0.1",
                "-p",
                PORT,
                "-U",
                "ecomap",
                BENCH_DB,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = float(re.search(r"tps = ([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latencies = []
    for log in workdir.glob("pgbench_log*"):
        latencies += [int(line.split()[2]) / 1000 for line in log.read_text().splitlines() if line]
    latencies.sort()
    cpu_ms = cpu.seconds * 1000 / max(len(latencies), 1)
    return rate, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)], cpu_ms


def mean_size_kb(urls: list[str]) -> float:
    with httpx.Client(timeout=60) as client:
        sizes = [len(client.get(url).content) for url in urls[:60]]
    return statistics.mean(sizes) / 1024


def edit_visibility(base: str) -> float:
    """Seconds from an SQL edit of a red line to its tile showing the change (cache on)."""
    with psycopg.connect(database_url(), autocommit=True) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM redline WHERE id = 1) s"
        ).fetchone()
        tile = TMS.tile(lon, lat, 14)
        url = f"{base}/tiles/redline/{tile.z}/{tile.x}/{tile.y}.pbf"
        with httpx.Client() as client:
            before = client.get(url).headers.get("etag")
            assert client.get(url).headers.get("etag") == before
            conn.execute("UPDATE redline SET geom = ST_Translate(geom, 0.0005, 0) WHERE id = 1")
            started = time.monotonic()
            while client.get(url).headers.get("etag") == before:
                if time.monotonic() - started > 10:
                    break
                time.sleep(0.005)
            elapsed = time.monotonic() - started
            conn.execute("UPDATE redline SET geom = ST_Translate(geom, -0.0005, 0) WHERE id = 1")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per target and case (median kept)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the synthetic dataset")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of this service (TiPg runs 1)")
    parser.add_argument("--no-tipg", action="store_true", help="skip TiPg (a shorter run; its targets go unchecked)")
    parser.add_argument(
        "--case",
        action="append",
        choices=[f"{layer}:{band}" for layer, band in CASES],
        help="measure only this layer:band (repeatable; default: all; the targets need all)",
    )
    args = parser.parse_args()
    cases = [(layer, band) for layer, band in CASES if not args.case or f"{layer}:{band}" in args.case]
    prepare_database(args.rebuild)
    samples = {band: sample_tiles(band) for band in BANDS}
    ticks_before = machine_cpu_ticks()
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_tiles")
        conn.execute("CREATE TABLE bench_tiles (band int, i int, z int, x int, y int, PRIMARY KEY (band, i))")
        with conn.cursor().copy("COPY bench_tiles FROM STDIN") as copy:
            for band_index, band in enumerate(BANDS):
                for i, t in enumerate(samples[band]):
                    copy.write_row((band_index, i, t.z, t.x, t.y))
    results: list[Result] = []
    workdir = Path(tempfile.mkdtemp(prefix="ecomap-bench-"))
    ours_env = {"ECOMAP_DATABASE_URL": database_url(), "ECOMAP_DB__POOL_MAX_SIZE": "20"}
    # No access log, like TiPg (--log-level warning) and the raw-SQL server: logging each
    # request is left to the proxy in front (it costs ~25 % of the tiles/s of small tiles).
    serve = [*ECOMAP_SERVE, "--workers", str(args.workers), "--no-access-log"]
    if not BENCH_PYTHON.exists():
        sys.exit(
            "the benchmark environment is missing: python3 -m venv .bench-venv && .bench-venv/bin/pip install"
            " tipg==1.6.1 asyncpg==0.32.0 'uvicorn[standard]==0.54.0' (make bench does it)"
        )
    with contextlib.ExitStack() as stack:
        off = stack.enter_context(
            server(
                [*serve, "--port", "8101"],
                {**ours_env, "ECOMAP_TILES__CACHE_ENABLED": "false"},
                8101,
                workdir / "off.log",
            )
        )
        warm = stack.enter_context(server([*serve, "--port", "8102"], ours_env, 8102, workdir / "warm.log"))
        raw_env = {
            "RAW_TILE_DSN": database_url(),
            "RAW_TILE_QUERIES": json.dumps({layer: raw_sql(layer, per_request=True) for layer, _ in cases}),
            "RAW_TILE_POOL_SIZE": str(max(1, 16 // args.workers)),
        }
        raw_options = ["--workers", str(args.workers), "--no-access-log"]
        raw = stack.enter_context(
            server(
                [str(BENCH_PYTHON), "-m", "uvicorn", "bench.raw_tile_server:app", "--port", "8104", *raw_options],
                raw_env,
                8104,
                workdir / "raw.log",
            )
        )
        # The service and its floor measured back to back in each round.
        targets = {"ecomap (cache off)": off, RAW_HTTP: raw, "ecomap (warm cache)": warm}
        if not args.no_tipg:
            tipg_env = {
                "DATABASE_URL": database_url(),
                "TIPG_DB_SCHEMAS": '["public"]',
                "TIPG_DB_EXCLUDE_TABLES": '["public.bench_tiles"]',
            }
            targets["tipg 1.6.1"] = stack.enter_context(
                server(
                    [str(BENCH_PYTHON), "-m", "uvicorn", "tipg.main:app", "--port", "8103", "--log-level", "warning"],
                    tipg_env,
                    8103,
                    workdir / "tipg.log",
                )
            )

        def urls(target: str, base: str, layer: str, band: str) -> list[str]:
            if target.startswith("tipg"):
                return [
                    f"{base}/collections/public.{layer}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}?geom-column=geom"
                    for t in samples[band]
                ]
            return [f"{base}/tiles/{layer}/{t.z}/{t.x}/{t.y}.pbf" for t in samples[band]]

        with httpx.Client(timeout=120) as client:  # warm the cache of the warm server
            for layer, band in cases:
                for url in urls("warm", warm, layer, band):
                    client.get(url)
        for layer, band in cases:
            sizes = {
                name: mean_size_kb(urls(name, base, layer, band))
                for name, base in targets.items()
                if "warm" not in name
            }
            band_index = list(BANDS).index(band)
            for concurrency in (1, 16):
                # Rounds of every target in turn: a slow spell of this shared machine falls
                # on all of them, and the median of the rounds leaves it out.
                rounds: dict[str, list[tuple[float, float, float, float]]] = {}
                for _ in range(args.rounds):
                    for name, base in targets.items():
                        measured = run_wrk(urls(name, base, layer, band), concurrency, args.duration, workdir)
                        rounds.setdefault(name, []).append(measured)
                    measured = run_pgbench(layer, band_index, len(samples[band]), concurrency, args.duration, workdir)
                    rounds.setdefault(PGBENCH, []).append(measured)
                for name, measured in rounds.items():
                    rate, p50, p99, cpu_ms = (statistics.median(m[i] for m in measured) for i in range(4))
                    results.append(Result(name, layer, band, concurrency, rate, p50, p99, sizes.get(name), cpu_ms))
                    print(
                        f"{name:23s} {layer:8s} z{band:6s} c{concurrency:<3d} {rate:9.1f} tiles/s"
                        f"  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  CPU {cpu_ms:6.3f} ms/tile"
                    )
        visible = statistics.median(edit_visibility(warm) for _ in range(5))
    ticks = [now - before for now, before in zip(machine_cpu_ticks(), ticks_before, strict=True)]
    report(results, visible, ticks[7] / max(sum(ticks), 1), args)


def report(results: list[Result], visible_s: float, stolen: float, args: argparse.Namespace) -> None:
    def find(target: str, layer: str, band: str, c: int) -> Result | None:
        return next(
            (
                r
                for r in results
                if r.target.startswith(target) and r.layer == layer and r.band == band and r.concurrency == c
            ),
            None,
        )

    lines = [
        "# Vector tile benchmark",
        "",
        f"Run {dt.datetime.now().isoformat(timespec='minutes')} on this machine ({os.cpu_count()} cores), "
        f"{args.workers} service worker(s); each figure is the median of {args.rounds} rounds of {args.duration} s,"
        " the targets measured in turn in each round."
        f" CPU time stolen by other guests of the host during the run: {stolen:.0%}."
        " CPU ms/tile: CPU time the machine spent per tile, less the load generator's (wrk, pgbench):"
        " the server, PostgreSQL and the kernel's network work; less sensitive than tiles/s to"
        " other guests of the host.",
        "",
        "Command: `.venv/bin/python -m bench.tiles_bench"
        + (f" --duration {args.duration}" if args.duration != 4 else "")
        + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
        + (f" --workers {args.workers}" if args.workers != 2 else "")
        + "` (or `make bench`)",
        "",
        "| target | layer | zooms | conc. | tiles/s | p50 ms | p99 ms | mean KB | CPU ms/tile |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        size = f"{r.mean_kb:.1f}" if r.mean_kb is not None else ""
        lines.append(
            f"| {r.target} | {r.layer} | {r.band} | {r.concurrency} | {r.tiles_per_s:.1f} |"
            f" {r.p50_ms:.1f} | {r.p99_ms:.1f} | {size} | {r.cpu_ms:.3f} |"
        )
    lines += ["", "## Targets", ""]
    checks = []
    for layer in ("redline", "river", "station"):
        off, tipg = (find(t, layer, "14-16", 16) for t in ("ecomap (cache off)", "tipg"))
        if off and tipg:
            checks.append((f"cache off, {layer} z14–16, c16: ≥ 2× TiPg", off.tiles_per_s / tipg.tiles_per_s, 2.0))
        raw = find(RAW_HTTP, layer, "14-16", 16)
        if off and raw:
            name = f"cache off, {layer} z14–16, c16: ≥ 0.8× {RAW_HTTP}"
            checks.append((name, off.tiles_per_s / raw.tiles_per_s, 0.8))
    off, tipg = find("ecomap (cache off)", "redline", "8-10", 16), find("tipg", "redline", "8-10", 16)
    if off and tipg:
        checks.append(("cache off, red lines z8–10, c16: ≥ 20× TiPg", off.tiles_per_s / tipg.tiles_per_s, 20.0))
        if off.mean_kb and tipg.mean_kb:
            checks.append(("red lines z8–10 mean tile size ≤ ¼ of TiPg's", tipg.mean_kb / off.mean_kb, 4.0))
    if off:
        checks.append(("red lines z8–10 p99 < 150 ms (ratio 150/p99 ≥ 1)", 150.0 / off.p99_ms, 1.0))
    warm_rates = [r.tiles_per_s for r in results if r.target.startswith("ecomap (warm") and r.concurrency == 16]
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
        (layer, band, off.tiles_per_s / alone.tiles_per_s)
        for layer, band in CASES
        if (off := find("ecomap (cache off)", layer, band, 16)) and (alone := find(PGBENCH, layer, band, 16))
    ]
    if references:
        lines += [
            "For reference (not a target): cache off at c16 against PostGIS alone, the same raw SQL",
            "run by pgbench with no HTTP and no application — "
            + ", ".join(f"{layer} z{band} {ratio:.2f}×" for layer, band, ratio in references)
            + ".",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    if args.case:
        print("(a partial run: bench/results/tiles.md is left as it was)")
        return
    out = ROOT / "bench" / "results" / "tiles.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
