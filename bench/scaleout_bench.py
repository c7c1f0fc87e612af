"""Scale-out on existing engines (issue 18 item 7): two instances behind nginx + Varnish
against one instance, reads from a streaming replica against the primary, and the latency
from an edit to the fresh tile through the cache.

1. **Edge stack vs one instance** (z14–16 red-line tiles of the tile benchmark's synthetic
   dataset, wrk at concurrency 64, every connection its own tiles):
   - *cold*: every request rendered — one instance with its tile cache off, against Varnish
     passing every tile (the shipped VCL with ``return (pass)``) to nginx in front of two
     instances with their caches off;
   - *warm*: one instance with its cache warm, against the shipped stack with Varnish warm
     (every tile requested once before).
   Each round measures both back to back (order alternating); the ratio reported is the
   median of the rounds' paired ratios (stack / one), with their range, and every run's
   errors (socket errors and non-2xx replies) are counted: the target is none.
2. **Purge to fresh**: on the warm stack, a station is renamed on the primary and its z16 tile
   requested through Varnish every 10 ms until the new name is in it (the service's change
   listener bans the tile at every zoom in Varnish as it drops it from its own cache): the
   median and the worst of the edits, and each instance checked fresh too.
3. **Replica vs primary**: a real streaming replica of the local cluster
   (``scripts/pgcluster.sh replica-start``, pg_basebackup -R), the service with its tile cache
   off reading tiles and OGC items from the replica (``ECOMAP_DB__REPLICA_URLS``) against the
   same service reading the primary, paired rounds at concurrency 16; the replica's share of
   the reads is read from ``/healthz``. The replica runs on the same two cores as the primary:
   what this measures is the cost of the routing and the replica's own speed, not the added
   capacity of a second machine.

    .venv/bin/python -m bench.scaleout_bench          # or: make bench-scaleout
    .venv/bin/python -m bench.scaleout_bench --quick  # smoke run (results file left as it was)

Results: ``bench/results/scaleout.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import psycopg

from bench import tiles_bench
from bench.edge import nginx, varnish
from bench.serving import ECOMAP_SERVE, ROOT, free_port, server
from bench.tiles_bench import WRK_SCRIPT, WRK_SEED, parse_ms, prepare_database, sample_tiles

TMS = morecantile.tms.get("WebMercatorQuad")
COMMAND = ".venv/bin/python -m bench.scaleout_bench"
PGCLUSTER = ROOT / "scripts" / "pgcluster.sh"
EDGE_CONCURRENCY = 64
REPLICA_CONCURRENCY = 16


def run_wrk(urls: list[str], concurrency: int, duration: int, workdir: Path) -> dict[str, float]:
    """wrk over ``urls`` (every connection its own tiles): rate, p50/p99 ms and errors."""
    (workdir / "urls.txt").write_text("\n".join(urls) + "\n")
    (workdir / "urls.lua").write_text(WRK_SCRIPT)
    output = subprocess.run(
        [
            *("wrk", "-t2", f"-c{concurrency}", f"-d{duration}s", "--latency", "--timeout", "30s"),
            *("-s", str(workdir / "urls.lua"), urls[0]),
        ],
        env={**os.environ, "URLS": str(workdir / "urls.txt"), "THREADS": "2", "SEED": str(WRK_SEED)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)\s*$", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)\s*$", output, re.MULTILINE)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = (sum(int(n) for n in sockets.groups()) if sockets else 0) + (int(non_2xx.group(1)) if non_2xx else 0)
    return {
        "rate": rate,
        "p50": parse_ms(p50.group(1)) if p50 else float("nan"),
        "p99": parse_ms(p99.group(1)) if p99 else float("nan"),
        "errors": errors,
    }


def paired(
    cases: dict[str, Callable[[], dict[str, float]]], rounds: int
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Both cases measured back to back in every round, order alternating: the medians of
    each case and the paired ratios (second case / first)."""
    (first, run_first), (second, run_second) = cases.items()
    measured: dict[str, list[dict[str, float]]] = {first: [], second: []}
    for number in range(rounds):
        order = ((first, run_first), (second, run_second))
        for name, run in order if number % 2 == 0 else order[::-1]:
            measured[name].append(run())
    ratios = [b["rate"] / a["rate"] for a, b in zip(measured[first], measured[second], strict=True)]
    medians = {
        name: {
            "rate": statistics.median(m["rate"] for m in runs),
            "p50": statistics.median(m["p50"] for m in runs),
            "p99": statistics.median(m["p99"] for m in runs),
            "errors": sum(m["errors"] for m in runs),
        }
        for name, runs in measured.items()
    }
    return medians, ratios


def instance_env(database_url: str, *, cache: bool, purge: str | None = None, replica: str | None = None) -> dict:
    env = {
        "ECOMAP_DATABASE_URL": database_url,
        "ECOMAP_DB__POOL_MAX_SIZE": "20",
        "ECOMAP_TILES__CACHE_ENABLED": "true" if cache else "false",
        "ECOMAP_ALERTS__ENABLED": "false",  # tiles alone (see bench/auth_tiles_bench.py)
        "ECOMAP_HJ212__ENABLED": "false",  # several instances on one machine: one receiver port
    }
    if purge:
        env["ECOMAP_HTTP_CACHE__PURGE_URLS"] = purge
    if replica:
        env["ECOMAP_DB__REPLICA_URLS"] = replica
    return env


def serve(
    stack: contextlib.ExitStack, env: dict, workers: int, workdir: Path, name: str, port: int | None = None
) -> tuple[str, int]:
    port = port or free_port()
    command = [*ECOMAP_SERVE, "--workers", str(workers), "--no-access-log", "--port", str(port)]
    return stack.enter_context(server(command, env, port, workdir / f"{name}.log", workers, 180.0)), port


def warm_up(urls: list[str]) -> None:
    with httpx.Client(timeout=120) as client:
        for url in urls:
            client.get(url).raise_for_status()


def edge_cases(args: argparse.Namespace, database_url: str, workdir: Path) -> dict:
    tiles = sample_tiles("14-16", args.tiles)
    paths = [f"/tiles/redline/{t.z}/{t.x}/{t.y}.pbf" for t in tiles]
    found: dict = {}
    for mode in ("cold", "warm"):
        with contextlib.ExitStack() as stack:
            single = instance_env(database_url, cache=mode == "warm")
            one, _ = serve(stack, single, args.workers, workdir, f"one-{mode}")
            ports = [free_port(), free_port()]
            front = stack.enter_context(nginx(ports, workdir / f"nginx-{mode}"))
            edit = (lambda vcl: vcl.replace("return (hash);", "return (pass);")) if mode == "cold" else None
            edge = stack.enter_context(varnish(front, workdir / f"varnish-{mode}", edit=edit))
            env = instance_env(database_url, cache=mode == "warm", purge=edge + "/")
            for number, port in enumerate(ports):
                serve(stack, env, args.workers, workdir, f"stack-{mode}-{number}", port)
            urls = {"one": [one + p for p in paths], "stack": [edge + p for p in paths]}
            if mode == "warm":
                warm_up(urls["one"])
                warm_up(urls["stack"])
                hit = httpx.get(urls["stack"][0], timeout=30).headers.get("x-edge-cache")
                if hit != "HIT":
                    sys.exit(f"the warm stack did not answer from Varnish (X-Edge-Cache: {hit})")
            found[mode] = paired(
                {
                    "one instance": lambda u=urls["one"]: run_wrk(u, EDGE_CONCURRENCY, args.duration, workdir),
                    "2 instances + nginx + Varnish": lambda u=urls["stack"]: run_wrk(
                        u, EDGE_CONCURRENCY, args.duration, workdir
                    ),
                },
                args.rounds,
            )
            for name, m in found[mode][0].items():
                print(f"{mode:4s} {name:30s} {m['rate']:9.1f} tiles/s p50 {m['p50']:6.1f} ms errors {m['errors']:.0f}")
            if mode == "warm":
                found["purge"] = purge_to_fresh(database_url, edge, ports, args.edits)
    return found


def station_names(content: bytes) -> set[str]:
    layers = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return {f["properties"].get("name") for f in layers.get("station", {}).get("features", [])}


def purge_to_fresh(database_url: str, edge: str, ports: list[int], edits: int) -> list[float]:
    """Seconds from the commit of a rename to the first fresh tile through Varnish."""
    latencies = []
    with psycopg.connect(database_url, autocommit=True) as db, httpx.Client(timeout=30) as client:
        rows = db.execute(
            "SELECT id, name, ST_X(geom), ST_Y(geom) FROM station ORDER BY id LIMIT %s", [edits]
        ).fetchall()
        for number, (station_id, name, lon, lat) in enumerate(rows):
            tile = TMS.tile(lon, lat, 16)
            path = f"/tiles/station/16/{tile.x}/{tile.y}.pbf"
            client.get(edge + path)
            cached = client.get(edge + path)
            if cached.headers.get("x-edge-cache") != "HIT" or name not in station_names(cached.content):
                sys.exit(f"{path} was not cached in Varnish with {name!r} before the edit")
            renamed = f"bench rename {number} {time.time_ns()}"
            db.execute("UPDATE station SET name = %s WHERE id = %s", [renamed, station_id])
            started = time.perf_counter()
            while renamed not in station_names(client.get(edge + path).content):
                if time.perf_counter() - started > 30:
                    sys.exit(f"{path} still stale through Varnish 30 s after the edit")
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
            for port in ports:
                if renamed not in station_names(client.get(f"http://127.0.0.1:{port}{path}").content):
                    sys.exit(f"instance :{port} served the old {path} after Varnish had the new one")
            db.execute("UPDATE station SET name = %s WHERE id = %s", [name, station_id])
    print(f"purge to fresh: median {statistics.median(latencies) * 1000:.0f} ms, worst {max(latencies) * 1000:.0f} ms")
    return latencies


def pgcluster(*args: str) -> str:
    done = subprocess.run([str(PGCLUSTER), *args], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.exit(f"pgcluster.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def replica_cases(args: argparse.Namespace, database_url: str, workdir: Path) -> dict:
    """Tiles and OGC items read from a streaming replica of the local cluster against the primary."""
    pgcluster("replica-start")
    try:
        replica_url = pgcluster("replica-url", tiles_bench._database)
        deadline = time.monotonic() + 600
        with psycopg.connect(database_url, autocommit=True) as primary:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        with psycopg.connect(replica_url, autocommit=True) as replica:
            while not replica.execute("SELECT pg_last_wal_replay_lsn() >= %s", [target]).fetchone()[0]:
                if time.monotonic() > deadline:
                    sys.exit("the replica did not catch up within 10 minutes")
                time.sleep(0.5)
        tiles = sample_tiles("14-16", args.tiles, seed=29)
        rng_boxes = [TMS.bounds(t) for t in sample_tiles("11-13", 200, seed=31)]
        tile_paths = [f"/tiles/redline/{t.z}/{t.x}/{t.y}.pbf" for t in tiles]
        item_paths = [
            f"/ogc/collections/redline/items?bbox={b.left:.5f},{b.bottom:.5f},{b.right:.5f},{b.top:.5f}&limit=50"
            for b in rng_boxes
        ]
        found: dict = {}
        with contextlib.ExitStack() as stack:
            primary_base, _ = serve(stack, instance_env(database_url, cache=False), args.workers, workdir, "primary")
            env = instance_env(database_url, cache=False, replica=replica_url)
            replica_base, _ = serve(stack, env, args.workers, workdir, "replica")
            before = httpx.get(replica_base + "/healthz", timeout=30).json()["replicas"]["reads"]
            for kind, paths in (("tiles z14–16", tile_paths), ("OGC items, bbox, limit 50", item_paths)):
                found[kind] = paired(
                    {
                        "primary": lambda p=paths: run_wrk(
                            [primary_base + x for x in p], REPLICA_CONCURRENCY, args.duration, workdir
                        ),
                        "replica": lambda p=paths: run_wrk(
                            [replica_base + x for x in p], REPLICA_CONCURRENCY, args.duration, workdir
                        ),
                    },
                    args.rounds,
                )
                for name, m in found[kind][0].items():
                    print(f"{kind:26s} {name:8s} {m['rate']:9.1f}/s p50 {m['p50']:6.1f} ms errors {m['errors']:.0f}")
            after = httpx.get(replica_base + "/healthz", timeout=30).json()["replicas"]["reads"]
            found["reads"] = {key: after[key] - before.get(key, 0) for key in after}
        return found
    finally:
        pgcluster("replica-drop")


def table(found: dict, concurrency: int) -> list[str]:
    medians, ratios = found
    lines = ["| setup | requests/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
    for name, m in medians.items():
        lines.append(f"| {name} | {m['rate']:.1f} | {m['p50']:.1f} | {m['p99']:.1f} | {m['errors']:.0f} |")
    ratio = statistics.median(ratios)
    spread = f"{min(ratios):.2f}–{max(ratios):.2f}"
    lines += ["", f"Paired ratio (second / first, c{concurrency}): **{ratio:.2f}** (range {spread})"]
    return lines


def report(edge: dict, replica: dict, args: argparse.Namespace, load: float) -> str:
    lines = [
        "# Scale-out: nginx + Varnish in front of two instances, a streaming replica",
        "",
        f"Run {dt.datetime.now().isoformat(timespec='minutes')} on this machine ({os.cpu_count()} cores; load average"
        f" at the start {load:.1f}); every instance {args.workers} worker(s); {args.rounds} paired rounds of"
        f" {args.duration} s per case (order alternating), {args.tiles} z14–16 red-line tiles of the synthetic"
        " dataset (bench/synthetic.py: 5,000 red lines, 20,000 rivers, 100,000 stations).",
        "",
        f"Command: `{COMMAND}`",
        "",
    ]
    for mode, title in (("cold", "Cold: every tile rendered"), ("warm", "Warm: every tile cached")):
        lines += [f"## {title} (c{EDGE_CONCURRENCY})", "", *table(edge[mode], EDGE_CONCURRENCY), ""]
    latencies = sorted(edge["purge"])
    lines += [
        "## Purge to fresh (warm stack, unloaded)",
        "",
        f"{len(latencies)} station renames on the primary, each tile polled through Varnish every 10 ms: median"
        f" **{statistics.median(latencies) * 1000:.0f} ms**, worst {latencies[-1] * 1000:.0f} ms from the commit to the"
        " first fresh tile; both instances served the fresh tile too, every time.",
        "",
    ]
    reads = replica.pop("reads")
    for kind, found in replica.items():
        heading = f"## Replica vs primary: {kind} (cache off, c{REPLICA_CONCURRENCY})"
        lines += [heading, "", *table(found, REPLICA_CONCURRENCY), ""]
    lines += [
        f"Reads of the replica-reading service during its runs (one worker's counts, `/healthz`): {reads['replica']:,}"
        f" on the replica, {reads['primary']:,} on the primary, {reads['behind']:,} sent to the primary because the"
        " replica was behind a change.",
        "Primary and replica share this machine's two cores: the ratio shows what routing reads to a replica"
        " costs, not the capacity a replica on its own machine adds.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds per case (the median ratio is kept)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every instance")
    parser.add_argument("--tiles", type=int, default=2000, help="distinct z14–16 tiles requested")
    parser.add_argument("--edits", type=int, default=15, help="renames timed for purge to fresh")
    parser.add_argument("--quick", action="store_true", help="smoke run on the small dataset; results file untouched")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if args.quick:
        tiles_bench._database = tiles_bench.QUICK_DB
        args.rounds, args.duration, args.tiles, args.edits = 1, 1, 200, 3
    prepare_database(False, tiles_bench.QUICK_SCALE if args.quick else 1.0)
    database_url = tiles_bench.database_url()
    workdir = Path(tempfile.mkdtemp(prefix="ecomap-scaleout-bench-"))
    edge = edge_cases(args, database_url, workdir)
    replica = replica_cases(args, database_url, workdir)
    text = report(edge, replica, args, load)
    print(text)
    if args.quick:
        print("(a quick run: bench/results/scaleout.md is left as it was)")
        return
    out = ROOT / "bench" / "results" / "scaleout.md"
    out.write_text(text)
    print("written to", out)


if __name__ == "__main__":
    main()
