"""Tile throughput with a bearer token against anonymous access (issue 14 item 10).

This service, cache off and warm, serves the same tiles (z14–16 of public layers, identical
content for both callers) to wrk at concurrency 16, once anonymously and once with
``Authorization: Bearer <token>`` of a signed-in planner, the two interleaved in every round
(anonymous then bearer in odd rounds, bearer then anonymous in even ones), so a slow spell
of this shared machine falls on both alike. Each round gives one paired ratio (bearer /
anonymous, measured back to back); the target is a median paired ratio ≥ 0.95 for every
case. The table's rates are the medians of the rounds, and the ratios' range is reported
with them: with a warm cache a tile costs ~0.13 ms of CPU, so a few milliseconds of another
process's work move one round by tens of percent, and the pairing is what makes the
comparison hold on a shared machine.

A bearer request resolves its principal through the access policy: the first request of a
token on a worker verifies its signature and reads its session, later ones find it in the
worker's token cache (``gis_service/access/tokens.py``) — this measures what is left.

    .venv/bin/python -m bench.auth_tiles_bench            # or: make bench-auth
    .venv/bin/python -m bench.auth_tiles_bench --quick    # smoke run (results file left as it was)

Results: ``bench/results/auth_tiles.md``. The synthetic dataset is the tile benchmark's
(``bench/synthetic.py``, database ``ecomap_bench``, built on first use).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mapbox_vector_tile
import psycopg

from bench import tiles_bench
from bench.serving import ECOMAP_SERVE, GROUPS, ROOT, server
from bench.tiles_bench import Measured, prepare_database, run_wrk, sample_tiles

CASES = [("redline", "14-16"), ("river", "14-16")]
"""Public layers: the planner's tiles are the anonymous ones (same cache variant, same bytes)."""
CONCURRENCY = 16
TARGET = 0.95
LOGIN = "bench-planner"
COMMAND = ".venv/bin/python -m bench.auth_tiles_bench"


def _account(database_url: str) -> str:
    """A planner account in the benchmark's database with a fresh password (returned)."""
    from gis_service.access.passwords import hash_password

    password = secrets.token_urlsafe(18)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO account (login, role, password_hash) VALUES (%s, 'planner', %s)"
            " ON CONFLICT (login) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = 'planner',"
            " chief_id = NULL, enabled = true",
            [LOGIN, hash_password(password)],
        )
        conn.execute("DELETE FROM login_throttle")
    return password


def _token(base: str, password: str) -> str:
    response = httpx.post(f"{base}/api/auth/token", data={"username": LOGIN, "password": password}, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def _features(content: bytes) -> dict[str, list]:
    """A tile's features per layer in id order (without an ORDER BY, PostgreSQL may return a
    tile's rows in another order from one render to the next: the same tile, other bytes)."""
    return {
        name: sorted(repr(f) for f in layer["features"]) for name, layer in mapbox_vector_tile.decode(content).items()
    }


def _same_tiles(base: str, urls: list[str], headers: dict[str, str]) -> None:
    """The bearer tiles must be the anonymous ones (else the comparison is not like for like)."""
    with httpx.Client(timeout=60) as client:
        for url in urls[:20]:
            anonymous, bearer = client.get(url), client.get(url, headers=headers)
            same = anonymous.status_code == bearer.status_code and (
                anonymous.content == bearer.content
                or (anonymous.status_code == 200 and _features(anonymous.content) == _features(bearer.content))
            )
            if not same:
                sys.exit(
                    f"the bearer tile differs from the anonymous one at {url}: not like for like (statuses"
                    f" {anonymous.status_code}/{bearer.status_code})"
                )


async def _hot_path(app: object, paths: list[str], headers: list[tuple[bytes, bytes]], requests: int) -> float:
    """CPU microseconds per tile request answered by the app in this process (ASGI calls, no
    network, no other process on the path): the fast path's own cost, with ``headers``."""
    replies: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            replies.append(message["status"])

    started = time.process_time()
    for number in range(requests):
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": paths[number % len(paths)], "raw_path": b"", "root_path": "", "query_string": b"",
            "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        await app(scope, receive, send)  # type: ignore[operator]
    elapsed = time.process_time() - started
    if set(replies) - {200, 204}:
        sys.exit(f"the in-process tile requests answered {sorted(set(replies))}: not all tiles")
    return elapsed / requests * 1e6


def in_process(database_url: str, env: dict[str, str], password: str, band_paths: dict[str, list[str]], rounds: int):
    """Per request CPU of the warm tile hot path in this process, anonymous and bearer, each
    round measuring both back to back (order alternating): the microseconds the token check adds."""
    import asyncio

    from gis_service import create_app
    from gis_service.settings import Settings

    os.environ.update(env)
    app = create_app(Settings(database_url=database_url))

    async def run() -> dict[str, tuple[float, float]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                response = await client.post("/api/auth/token", data={"username": LOGIN, "password": password})
                response.raise_for_status()
                bearer = [(b"authorization", f"Bearer {response.json()['access_token']}".encode())]
            found = {}
            for layer, paths in band_paths.items():
                await _hot_path(app, paths, bearer, len(paths))  # warm: every tile cached, the token verified
                anonymous, authenticated = [], []
                for number in range(rounds):
                    pair = ((anonymous, []), (authenticated, bearer))
                    for into, headers in pair if number % 2 == 0 else pair[::-1]:
                        into.append(await _hot_path(app, paths, headers, 3000))
                found[layer] = (statistics.median(anonymous), statistics.median(authenticated))
            return found

    return asyncio.run(run())


def report(
    rows: list[tuple[str, str, str, str, float, float, float, float]],
    ratios: dict[tuple[str, str, str], list[float]],
    hot: dict[str, tuple[float, float]],
    args: argparse.Namespace,
) -> str:
    lines = [
        "# Tile throughput: bearer token against anonymous",
        "",
        f"Run {dt.datetime.now().isoformat(timespec='minutes')} on this machine ({os.cpu_count()} cores), "
        f"{args.workers} worker(s), concurrency {CONCURRENCY}; each figure is the median of {args.rounds} rounds "
        f"of {args.duration} s, anonymous and bearer measured back to back in every round (order alternating);"
        f" load average at the start {args.load_at_start:.1f}.",
        "",
        f"Command: `{COMMAND}" + (f" --rounds {args.rounds}" if args.rounds != 9 else "") + "`",
        "",
        "| cache | layer | zooms | caller | tiles/s | p50 ms | p99 ms | CPU ms/tile |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cache, layer, band, caller, rate, p50, p99, cpu in rows:
        lines.append(f"| {cache} | {layer} | {band} | {caller} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {cpu:.3f} |")
    lines += [
        "",
        "## Targets",
        "",
        "Median of the paired ratios (bearer / anonymous of the same round), with their range.",
        "",
        "| case | bearer / anonymous | range | needed | met |",
        "|---|---|---|---|---|",
    ]
    for (cache, layer, band), paired in ratios.items():
        ratio = statistics.median(paired)
        met = "yes" if ratio >= TARGET else "**no**"
        spread = f"{min(paired):.2f}–{max(paired):.2f}"
        lines.append(f"| {cache}, {layer} z{band}, c{CONCURRENCY} | {ratio:.3f} | {spread} | {TARGET} | {met} |")
    if hot:
        lines += [
            "",
            "## The hot path's own cost (in this process, warm cache)",
            "",
            "CPU microseconds per tile request of the app called in this process (ASGI, no network), median of"
            f" {args.rounds} paired rounds of 3,000 requests: what the bearer check adds to a cached tile.",
            "",
            "| layer | anonymous µs/tile | bearer µs/tile | bearer − anonymous µs | ratio |",
            "|---|---|---|---|---|",
        ]
        for layer, (anonymous, bearer) in hot.items():
            lines.append(
                f"| {layer} | {anonymous:.1f} | {bearer:.1f} | {bearer - anonymous:+.1f} | {anonymous / bearer:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=9, help="paired rounds (the median ratio is kept)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the service")
    parser.add_argument("--quick", action="store_true", help="smoke run on the small dataset; results file untouched")
    args = parser.parse_args()
    args.load_at_start = os.getloadavg()[0]
    if args.quick:
        tiles_bench._database, args.rounds, args.duration = tiles_bench.QUICK_DB, 1, 1
    prepare_database(False, tiles_bench.QUICK_SCALE if args.quick else 1.0)
    database_url = tiles_bench.database_url()
    password = _account(database_url)
    samples = {band: sample_tiles(band, 60 if args.quick else 300) for _, band in CASES}
    env = {
        "ECOMAP_DATABASE_URL": database_url,
        "ECOMAP_DB__POOL_MAX_SIZE": "20",
        "ECOMAP_ACCESS__SECRET_KEY": secrets.token_urlsafe(48),  # both servers verify the same tokens
        "ECOMAP_ACCESS__ACCESS_TOKEN_TTL_S": "7200",  # outlives the run
        # Tiles alone: the alert evaluator's passes over the bench layer's 100,000 stations every
        # 10 s would fall on some rounds and not others (a deployment runs it where it chooses).
        "ECOMAP_ALERTS__ENABLED": "false",
    }
    serve = [*ECOMAP_SERVE, "--workers", str(args.workers), "--no-access-log"]
    workdir = Path(tempfile.mkdtemp(prefix="ecomap-auth-bench-"))
    rows = []
    ratios: dict[tuple[str, str, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        meter = stack.enter_context(psycopg.connect(database_url, autocommit=True))
        off_env = {**env, "ECOMAP_TILES__CACHE_ENABLED": "false"}
        off = stack.enter_context(server([*serve, "--port", "8121"], off_env, 8121, workdir / "off.log", args.workers))
        warm = stack.enter_context(server([*serve, "--port", "8122"], env, 8122, workdir / "warm.log", args.workers))
        headers = {"Authorization": f"Bearer {_token(off, password)}"}
        for cache, base in (("off", off), ("warm", warm)):
            for layer, band in CASES:
                urls = [f"{base}/tiles/{layer}/{t.z}/{t.x}/{t.y}.pbf" for t in samples[band]]
                _same_tiles(base, urls, headers)
                if cache == "warm":  # every tile once, then every tile is a hit for both callers
                    with httpx.Client(timeout=120) as client:
                        for url in urls:
                            client.get(url)
                rounds: dict[str, list[Measured]] = {"anonymous": [], "bearer": []}
                for number in range(args.rounds):
                    for caller in ("anonymous", "bearer") if number % 2 == 0 else ("bearer", "anonymous"):
                        sent = headers if caller == "bearer" else None
                        rounds[caller].append(
                            run_wrk(urls, CONCURRENCY, args.duration, workdir, GROUPS[base], meter, sent)
                        )
                ratios[(cache, layer, band)] = [
                    b[0] / a[0] for a, b in zip(rounds["anonymous"], rounds["bearer"], strict=True)
                ]
                for caller, measured in rounds.items():
                    rate, p50, p99, _, _, cpu = (statistics.median(m[i] for m in measured) for i in range(6))
                    rows.append((cache, layer, band, caller, rate, p50, p99, cpu))
                    print(f"cache {cache:4s} {layer:8s} z{band} {caller:9s} {rate:9.1f} tiles/s  p50 {p50:5.1f} ms")
    paths = {layer: [f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.pbf" for t in samples[band]] for layer, band in CASES}
    hot = in_process(database_url, env, password, paths, args.rounds)
    for layer, (anonymous, bearer) in hot.items():
        print(f"in process {layer:8s} anonymous {anonymous:6.1f} us/tile  bearer {bearer:6.1f} us/tile")
    text = report(rows, ratios, hot, args)
    print(text)
    if args.quick:
        print("(a quick run: bench/results/auth_tiles.md is left as it was)")
        return
    out = ROOT / "bench" / "results" / "auth_tiles.md"
    out.write_text(text)
    print("written to", out)


if __name__ == "__main__":
    main()
