"""OGC API Features paging throughput: this service against TiPg 1.6.1, same table, same run.

Pages through the 100,000 synthetic stations of the tile benchmark's database
(``bench/synthetic.py``; run ``python -m bench.tiles_bench`` once to build it) with
``limit`` = 100 and 1,000, following ``next`` links as a client would, and reports
pages/s and features/s (median of 3 passes over the first 20,000 features).

    .venv/bin/python -m bench.items_bench
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.serving import ROOT, server
from bench.tiles_bench import database_url

FEATURES = 20_000


def page_through(client: httpx.Client, url: str) -> tuple[float, int]:
    """Follow ``next`` links from url until FEATURES features were read; returns (seconds, pages)."""
    started, pages, features = time.perf_counter(), 0, 0
    while url and features < FEATURES:
        body = client.get(url).raise_for_status().json()
        features += len(body["features"])
        pages += 1
        url = next((link["href"] for link in body.get("links", []) if link["rel"] == "next"), None)
    return time.perf_counter() - started, pages


def main() -> None:
    tipg_python = ROOT / ".bench-venv" / "bin" / "python"
    if not tipg_python.exists():
        sys.exit("TiPg is not installed: run `make bench` once (it creates .bench-venv)")
    workdir = Path(tempfile.mkdtemp(prefix="ecomap-items-"))
    ours = [str(Path(sys.executable).with_name("ecomap")), "serve", "--port", "8111"]
    tipg = [str(tipg_python), "-m", "uvicorn", "tipg.main:app", "--port", "8112", "--log-level", "warning"]
    tipg_env = {"DATABASE_URL": database_url(), "TIPG_DB_SCHEMAS": '["public"]', "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    rows = []
    with (
        server(ours, {"ECOMAP_DATABASE_URL": database_url()}, 8111, workdir / "items-ours.log") as base,
        server(tipg, tipg_env, 8112, workdir / "items-tipg.log") as tipg_base,
        httpx.Client(timeout=120) as client,
    ):
        for limit in (100, 1000):
            urls = {
                "ecomap": f"{base}/ogc/collections/station/items?limit={limit}",
                "tipg 1.6.1": f"{tipg_base}/collections/public.station/items?limit={limit}",
            }
            for name, url in urls.items():
                page_through(client, url)  # warm-up
                runs = [page_through(client, url) for _ in range(3)]
                seconds = statistics.median(r[0] for r in runs)
                pages = runs[0][1]
                rows.append((name, limit, pages / seconds, FEATURES / seconds))
                print(
                    f"{name:12s} limit {limit:5d}: {pages / seconds:7.1f} pages/s  {FEATURES / seconds:9.0f} features/s"
                )
    table = "\n".join(f"| {n} | {lim} | {p:.1f} | {f:.0f} |" for n, lim, p, f in rows)
    ratio = {
        lim: next(f for n, li, _, f in rows if n == "ecomap" and li == lim)
        / next(f for n, li, _, f in rows if n != "ecomap" and li == lim)
        for lim in (100, 1000)
    }
    text = (
        "# OGC API Features paging throughput\n\n"
        f"Run {dt.datetime.now().isoformat(timespec='minutes')}: paging through {FEATURES:,} of the 100,000 synthetic "
        "stations by `next` links, median of 3 passes, one client, one server worker each.\n\n"
        "Command: `.venv/bin/python -m bench.items_bench`\n\n"
        "| server | limit | pages/s | features/s |\n|---|---|---|---|\n"
        f"{table}\n\n" + "".join(f"Ratio ecomap / TiPg at limit {lim}: {r:.2f}\n" for lim, r in ratio.items())
    )
    print(text)
    (ROOT / "bench" / "results" / "items.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
