"""Vector tile benchmark: this service (cache off / warm) against raw ST_AsMVT SQL and TiPg.

One command builds the large synthetic dataset (bench/synthetic.py) in its own database,
precomputes the generalization, starts the servers, and measures tiles/s and p50/p99
latency per zoom band at concurrency 1 and 16 with wrk (HTTP keep-alive), on the same tile
lists, interleaved, in one run, for: this service with the cache off and with a warm
cache; the floor — plain ST_AsMVT SQL on the same stored tables as the service (stored
Web Mercator geometry, the zoom's generalized rows and properties; bench/tile_queries.py)
over a connection pool behind the thinnest HTTP server (bench/raw_tile_server.py: bare
ASGI, asyncpg, prepared statements); the same server on the raw tables (reprojecting every
row); and TiPg (as many workers, on the stored 3857 column). PostGIS alone (the floor's SQL
from pgbench: C, no HTTP, no application) is measured too, as a reference for what the
HTTP layer costs. Every wrk connection requests its own tiles in its own seeded order, so
no two connections ask for the same tile at once (which the service's single-flight would
merge and the others cannot). Ratios at c1 and c16 are printed and the results are written
to bench/results/tiles.md with the command that produced them.

    make bench            # or: .venv/bin/python -m bench.tiles_bench [--rounds 3 --duration 4]
    .venv/bin/python -m bench.tiles_bench --quick   # a smoke run on a small dataset (~2 min)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import psycopg

from bench import synthetic, tiles_report
from bench.cpu import CpuMeter, machine_cpu_ticks
from bench.serving import ECOMAP_SERVE, GROUPS, ROOT, server, worker_deaths
from bench.tile_queries import (
    TIPG_SCHEMA,
    pgbench_tiles,
    raw_tables_sql,
    stored_floor_queries,
    stored_floor_sql,
    tipg_tables_sql,
    tipg_url,
)
from bench.tiles_report import CASES, FLOOR, OFF, PGBENCH, RAW_TABLES, TIPG, WARM, Result
from gis_service.settings import OWNER_ROLE, PASSFILE, WEB_ROLE, as_role, local_database_url, with_database
from layers import db as layer_db
from layers.catalog import load_catalog
from tiles.generalize import dirty_layers, generalize_catalog, outdated_layers

TMS = morecantile.tms.get("WebMercatorQuad")
BANDS = {"8-10": (8, 10), "11-13": (11, 13), "14-16": (14, 16)}
PORT = os.environ.get("ECOMAP_PG_PORT", "55432")
BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
"""The benchmark's own environment (TiPg, and asyncpg for the raw-SQL server)."""
ADMIN_URL = local_database_url(OWNER_ROLE, "postgres")  # the owner role (README "Database roles")
BENCH_DB = "ecomap_bench"
QUICK_DB = "ecomap_bench_quick"
"""The ``--quick`` smoke run's smaller dataset (a twentieth of the features)."""
QUICK_SCALE = 0.05
WRK_SCRIPT = """
-- Every connection its own tiles, in its own seeded order: thread k takes every n-th URL
-- from the k-th and shuffles them with seed SEED + k; its connections take the next URL in
-- turn, so no two connections request the same tile at the same time.
local next_id = 0
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end
function init(args)
  local threads = tonumber(os.getenv("THREADS"))
  local all = {}
  for line in io.lines(os.getenv("URLS")) do all[#all + 1] = line end
  urls = {}
  for k = 1, #all do
    if (k - 1) % threads == thread_id then urls[#urls + 1] = all[k] end
  end
  math.randomseed(tonumber(os.getenv("SEED")) + thread_id)
  for k = #urls, 2, -1 do
    local j = math.random(k)
    urls[k], urls[j] = urls[j], urls[k]
  end
  i = 0
end
function request()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
"""
WRK_SEED = 1013


def sample_tiles(band: str, count: int, seed: int = 11) -> list[morecantile.Tile]:
    """A fixed random sample of the tiles over the synthetic data at the band's zooms."""
    rng = random.Random(seed)
    lo, hi = BANDS[band]
    tiles = []
    for z in range(lo, hi + 1):
        tiles += list(TMS.tiles(*synthetic.BBOX, zooms=[z]))
    rng.shuffle(tiles)
    return tiles[:count]


_database = BENCH_DB


def database_url() -> str:
    return with_database(ADMIN_URL, _database)


def prepare_database(rebuild: bool, scale: float = 1.0) -> None:
    redlines = max(1, round(synthetic.FULL_COUNTS["redline"] * scale))
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [_database]).fetchone()
        if exists and not rebuild:
            with psycopg.connect(database_url(), autocommit=True) as bench:
                ready = bench.execute("SELECT to_regclass('redline_gen') IS NOT NULL").fetchone()[0]
                ready = ready and bench.execute("SELECT count(*) FROM redline").fetchone()[0] == redlines
            if ready:
                print("reusing the synthetic dataset in", _database)
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
        conn.execute(f'DROP DATABASE IF EXISTS "{_database}"')
        conn.execute(f'CREATE DATABASE "{_database}"')
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    synthetic.build(database_url(), scale=scale)
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


Measured = tuple[float, float, float, float, float, float]
"""Tiles/s, p50 ms, p99 ms, machine CPU ms per tile, stolen share, server + PostgreSQL CPU
ms per tile (``bench.cpu.CpuMeter``)."""


def run_wrk(
    urls: list[str],
    concurrency: int,
    duration: int,
    workdir: Path,
    group: int,
    database: psycopg.Connection,
    headers: dict[str, str] | None = None,
) -> Measured:
    """Measure with wrk; every connection requests its own tiles (``WRK_SCRIPT``). ``group``:
    the server's process group, ``database``: a connection to the benchmark's database,
    ``headers``: sent with every request (e.g. ``Authorization``)."""
    url_file = workdir / "urls.txt"
    url_file.write_text("\n".join(urls) + "\n")
    script = workdir / "urls.lua"
    script.write_text(WRK_SCRIPT)
    threads = 1 if concurrency == 1 else 2
    with CpuMeter(group, database) as cpu:
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
                *[f"-H{name}: {value}" for name, value in (headers or {}).items()],
                urls[0],
            ],
            env={**os.environ, "URLS": str(url_file), "THREADS": str(threads), "SEED": str(WRK_SEED)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = parse_ms(m.group(1)) if (m := re.search(r"^\s+50%\s+(\S+)\s*$", output, re.MULTILINE)) else float("nan")
    p99 = parse_ms(m.group(1)) if (m := re.search(r"^\s+99%\s+(\S+)\s*$", output, re.MULTILINE)) else float("nan")
    if p50 != p50 or p99 != p99:  # NaN: wrk printed no latency distribution (e.g. too few replies)
        print("   note: no latency percentiles in wrk's output:\n" + output)
    if "Non-2xx" in output:
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        print(f"   warning: {bad.group(1) if bad else '?'} non-2xx responses")
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    per_tile = 1000 / max(requests, 1)
    return rate, p50, p99, cpu.seconds * per_tile, cpu.stolen, cpu.attributed * per_tile


def run_pgbench(
    layer: str, band_index: int, per_zoom: dict[int, int], concurrency: int, duration: int, workdir: Path
) -> Measured:
    """Measure the floor's SQL with pgbench: one script per zoom of the band (its query
    differs by zoom), weighted by the sample's tiles of that zoom (``per_zoom``)."""
    scripts = []
    for z, count in per_zoom.items():
        script = workdir / f"{layer}-{z}.sql"
        query = stored_floor_sql(layer, z, pgbench_tiles(z))
        script.write_text(f"\\set band {band_index}\n\\set i random(0, {count - 1})\n{query};\n")
        scripts += ["-f", f"{script}@{count}"]
    log_prefix = workdir / "pgbench_log"
    for old in workdir.glob("pgbench_log*"):
        old.unlink()
    env = {**os.environ, "PGPASSFILE": str(PASSFILE), "PGOPTIONS": "-c jit=off"}
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
                *scripts,
                "-l",
                "--log-prefix",
                str(log_prefix),
                "-h",
                "127.0.0.1",
                "-p",
                PORT,
                "-U",
                OWNER_ROLE,
                _database,
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
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    return rate, p50, p99, cpu_ms, cpu.stolen, float("nan")


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


def same_content(service: bytes, floor: bytes) -> str | None:
    """How a service tile and the floor's tile of the same address differ in content (MVT
    layers, feature ids, property names), or None when they hold the same."""
    if not service or not floor:
        return None if service == floor else f"one is empty ({len(service)} vs {len(floor)} bytes)"
    a, b = mapbox_vector_tile.decode(service), mapbox_vector_tile.decode(floor)
    if set(a) != set(b):
        return f"layers {sorted(a)} vs {sorted(b)}"
    for name in a:
        ours = {f["id"]: sorted(f["properties"]) for f in a[name]["features"]}
        theirs = {f["id"]: sorted(f["properties"]) for f in b[name]["features"]}
        if ours != theirs:
            return f"{name}: {len(ours)} vs {len(theirs)} features, or other properties"
    return None


def check_like_for_like(
    off: str, floor: str, tipg: str | None, cases: list[tuple[str, str]], samples: dict
) -> list[str]:
    """Compare the service's tiles with the floor's on the first 20 tiles of each case, and
    check that TiPg's are not empty where the service's are not (TiPg names its MVT layer
    ``default`` and sets no feature ids: its tiles are compared by their features' properties)."""
    differences = []
    with httpx.Client(timeout=120) as client:
        for layer, band in cases:
            empty = 0
            for t in samples[band][:20]:
                path = f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.pbf"
                ours = client.get(off + path).content
                difference = same_content(ours, client.get(floor + path).content)
                if difference:
                    differences.append(f"{layer} {t.z}/{t.x}/{t.y}: {difference}")
                if tipg and ours and not client.get(tipg_url(tipg, layer, t.z, t.x, t.y)).content:
                    empty += 1
            if empty:
                differences.append(f"TiPg: {empty} of 20 {layer} z{band} tiles empty where the service's are not")
    return differences


def main() -> None:
    global _database
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per target and case (median kept)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the synthetic dataset")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of this service, the floors and TiPg")
    parser.add_argument("--no-tipg", action="store_true", help="skip TiPg (a shorter run; its targets go unchecked)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: a twentieth of the data ({QUICK_DB}), 60 tiles per band, 1 round of 1 s;"
        " checks the benchmark works, measures nothing worth quoting (results/tiles.md is left as it was)",
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=[f"{layer}:{band}" for layer, band in CASES],
        help="measure only this layer:band (repeatable; default: all; the targets need all)",
    )
    args = parser.parse_args()
    if args.quick:
        _database, args.rounds, args.duration = QUICK_DB, 1, 1
    cases = [(layer, band) for layer, band in CASES if not args.case or f"{layer}:{band}" in args.case]
    prepare_database(args.rebuild, QUICK_SCALE if args.quick else 1.0)
    samples = {band: sample_tiles(band, 60 if args.quick else 300) for band in BANDS}
    per_zoom = {
        band: {z: sum(t.z == z for t in samples[band]) for z in sorted({t.z for t in samples[band]})} for band in BANDS
    }
    ticks_before = machine_cpu_ticks()
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_tiles")
        conn.execute("CREATE TABLE bench_tiles (band int, z int, i int, x int, y int, PRIMARY KEY (band, z, i))")
        with conn.cursor().copy("COPY bench_tiles FROM STDIN") as copy:
            for band_index, band in enumerate(BANDS):
                for z in per_zoom[band]:
                    for i, t in enumerate(t for t in samples[band] if t.z == z):
                        copy.write_row((band_index, z, i, t.x, t.y))
        if not args.no_tipg:
            for layer in dict.fromkeys(layer for layer, _ in cases):
                for statement in tipg_tables_sql(layer):
                    conn.execute(statement)
    results: list[Result] = []
    workdir = Path(tempfile.mkdtemp(prefix="ecomap-bench-"))
    # The service as in production: the web role.
    ours_env = {  # tiles alone: no alert evaluator passing over the 100,000 bench stations (bench/README.md)
        "ECOMAP_DATABASE_URL": as_role(database_url(), WEB_ROLE),
        "ECOMAP_DB__POOL_MAX_SIZE": "20",
        "ECOMAP_ALERTS__ENABLED": "false",
    }
    # No access log, like TiPg and the raw-SQL servers (--no-access-log): logging each
    # request is left to the proxy in front (it costs ~25 % of the tiles/s of small tiles).
    workers = ["--workers", str(args.workers)]
    serve = [*ECOMAP_SERVE, *workers, "--no-access-log"]
    if not BENCH_PYTHON.exists():
        sys.exit(
            "the benchmark environment is missing: python3 -m venv .bench-venv && .bench-venv/bin/pip install"
            " tipg==1.6.1 asyncpg==0.32.0 'uvicorn[standard]==0.54.0' (make bench does it)"
        )
    with contextlib.ExitStack() as stack:
        meter = stack.enter_context(psycopg.connect(database_url(), autocommit=True))  # reads backends' pids

        def start(name: str, command: list[str], env: dict[str, str], port: int) -> str:
            return stack.enter_context(server(command, env, port, workdir / f"{name}.log", args.workers))

        off = start("off", [*serve, "--port", "8101"], {**ours_env, "ECOMAP_TILES__CACHE_ENABLED": "false"}, 8101)
        warm = start("warm", [*serve, "--port", "8102"], ours_env, 8102)
        raw_server = [str(BENCH_PYTHON), "-m", "uvicorn", "bench.raw_tile_server:app", *workers, "--no-access-log"]
        pool = {"RAW_TILE_DSN": database_url(), "RAW_TILE_POOL_SIZE": str(max(1, 16 // args.workers))}
        floor_queries = {layer: stored_floor_queries(layer) for layer, _ in cases}
        floor = start(
            "floor", [*raw_server, "--port", "8104"], {**pool, "RAW_TILE_QUERIES": json.dumps(floor_queries)}, 8104
        )
        raw_queries = {layer: [raw_tables_sql(layer)] for layer, _ in cases}
        raw = start("raw", [*raw_server, "--port", "8105"], {**pool, "RAW_TILE_QUERIES": json.dumps(raw_queries)}, 8105)
        # The service and its floors measured back to back in each round.
        targets = {OFF: off, FLOOR: floor, RAW_TABLES: raw, WARM: warm}
        if not args.no_tipg:
            tipg_env = {
                "DATABASE_URL": database_url(),
                "TIPG_DB_SCHEMAS": f'["{TIPG_SCHEMA}"]',
            }
            tipg = [str(BENCH_PYTHON), "-m", "uvicorn", "tipg.main:app", *workers, "--no-access-log"]
            targets[TIPG] = start("tipg", [*tipg, "--port", "8103"], tipg_env, 8103)

        def urls(target: str, base: str, layer: str, band: str) -> list[str]:
            if target == TIPG:
                return [tipg_url(base, layer, t.z, t.x, t.y) for t in samples[band]]
            return [f"{base}/tiles/{layer}/{t.z}/{t.x}/{t.y}.pbf" for t in samples[band]]

        logs = {
            name: workdir / f"{log}.log"
            for name, log in [(OFF, "off"), (WARM, "warm"), (FLOOR, "floor"), (RAW_TABLES, "raw"), (TIPG, "tipg")]
            if name in targets
        }
        deaths_before = {name: worker_deaths(log) for name, log in logs.items()}
        differences = check_like_for_like(off, floor, targets.get(TIPG), cases, samples)
        for difference in differences:
            print("   warning: the floor's tile differs from the service's:", difference)
        with httpx.Client(timeout=120) as client:  # warm the cache of the warm server
            for layer, band in cases:
                for url in urls(WARM, warm, layer, band):
                    client.get(url)
        for layer, band in cases:
            sizes = {
                name: mean_size_kb(urls(name, base, layer, band)) for name, base in targets.items() if name != WARM
            }
            band_index = list(BANDS).index(band)
            for concurrency in (1, 16):
                # Rounds of every target in turn: a slow spell of this shared machine falls
                # on all of them, and the median of the rounds leaves it out.
                rounds: dict[str, list[Measured]] = {}
                for _ in range(args.rounds):
                    for name, base in targets.items():
                        measured = run_wrk(
                            urls(name, base, layer, band), concurrency, args.duration, workdir, GROUPS[base], meter
                        )
                        rounds.setdefault(name, []).append(measured)
                    measured = run_pgbench(layer, band_index, per_zoom[band], concurrency, args.duration, workdir)
                    rounds.setdefault(PGBENCH, []).append(measured)
                for name, measured in rounds.items():
                    rate, p50, p99, cpu_ms, stolen, server_ms = (
                        statistics.median(m[i] for m in measured) for i in range(6)
                    )
                    results.append(
                        Result(
                            name, layer, band, concurrency, rate, p50, p99, sizes.get(name), cpu_ms, stolen, server_ms
                        )
                    )
                    print(
                        f"{name:27s} {layer:8s} z{band:6s} c{concurrency:<3d} {rate:9.1f} tiles/s"
                        f"  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  CPU {server_ms:6.3f} (machine {cpu_ms:6.3f}) ms/tile"
                        f"  stolen {stolen:4.0%}"
                    )
        notes = [
            f"{name}: {worker_deaths(log) - deaths_before[name]} worker(s) died and were restarted during the"
            " measurements (uvicorn's health check on a loaded machine): its figures are for fewer workers"
            for name, log in logs.items()
            if worker_deaths(log) > deaths_before[name]
        ]
        for note in notes:
            print("   warning:", note)
        visible = statistics.median(edit_visibility(warm) for _ in range(5))
    ticks = [now - before for now, before in zip(machine_cpu_ticks(), ticks_before, strict=True)]
    text = tiles_report.report(results, visible, ticks[7] / max(sum(ticks), 1), args, differences, notes)
    print(text)
    if args.case or args.quick:
        print("(a partial or quick run: bench/results/tiles.md is left as it was)")
        return
    out = ROOT / "bench" / "results" / "tiles.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
