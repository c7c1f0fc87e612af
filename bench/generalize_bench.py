"""Incremental generalization against the full recomputation, in the same run.

On the synthetic dataset (bench/synthetic.py: 5,000 red lines of ~650 vertices, 20,000
rivers; ``--scale`` multiplies the features) in its own database, each round edits one
feature (a red line, then a river: moved by ~20 m, a different feature each round) and
measures, in turn, in separate child processes (so each one's peak memory is its own,
``ru_maxrss``):

- *incremental*: the edit, then ``tiles.incremental.generalize_changes`` (what the service's
  scheduler runs after an edit);
- *full*: the same edit, then ``tiles.generalize.generalize_layer`` (the whole layer).

Both run in a transaction that is rolled back, so the database stays as built. The report
keeps the median of the rounds and the ratio, with the machine's load (``uptime``) before
and after, and writes bench/results/generalize.md (``--scale`` N: generalize_xN.md).

    make bench-generalize            # or: .venv/bin/python -m bench.generalize_bench [--rounds 5]
    .venv/bin/python -m bench.generalize_bench --quick   # a smoke run on a twentieth of the data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench import synthetic
from gis_service.settings import OWNER_ROLE, local_database_url, with_database

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = local_database_url(OWNER_ROLE, "postgres")
LAYERS = ("redline", "river")
EDIT = "UPDATE {} SET geom = ST_Translate(geom, 0.0002, 0.0001) WHERE id = %s"
"""The edit: the feature moved by ~20 m east and ~11 m north."""
TARGET_S = 2.0
"""Issue 18: an edit of one red line re-generalized in at most 2 s."""


def database_name(scale: float) -> str:
    return "ecomap_bench_generalize" if scale == 1 else f"ecomap_bench_generalize_x{scale:g}".replace(".", "_")


def prepare(url: str, name: str, scale: float, rebuild: bool) -> dict[str, float]:
    """Build (or reuse) the dataset and its full generalization; returns the build figures."""
    from layers import db as layer_db

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not rebuild:
            layer_db.upgrade(url)
            with psycopg.connect(url) as bench:
                ready = bench.execute("SELECT count(*) FROM redline_gen").fetchone()[0] > 0
                clean = bench.execute("SELECT count(*) FROM gen_dirty").fetchone()[0] == 0
            if ready and clean:
                print("reusing the synthetic dataset in", name)
                return {}
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    started = time.monotonic()
    synthetic.build(url, scale=scale)
    figures = {"build_s": time.monotonic() - started}
    for layer in LAYERS:  # the full generalization, once, in a child (its own peak memory)
        result = measure(url, "full", layer, None, commit=True)
        figures[f"{layer}_full_s"], figures[f"{layer}_full_mb"] = result["seconds"], result["peak_mb"]
        figures[f"{layer}_full_backend_mb"] = result["backend_mb"]
        print(
            f"{layer}: generalized in {result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB"
            f" (PostgreSQL backend {result['backend_mb']:.0f} MB)"
        )
    return figures


def measure(url: str, mode: str, layer: str, feature: int | None, commit: bool = False) -> dict:
    """Run one measurement in a child process (``--child``); its JSON result."""
    command = [sys.executable, "-m", "bench.generalize_bench", "--child", mode, layer, url, str(feature or 0)]
    if commit:
        command.append("--commit")
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{mode} {layer} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(mode: str, layer_id: str, url: str, feature: int, commit: bool) -> None:
    """Edit one feature (unless 0), re-generalize (``mode``), report seconds and peak memory."""
    from layers.catalog import load_catalog
    from tiles.generalize import generalize_layer
    from tiles.incremental import generalize_changes

    layer = load_catalog().get(layer_id)
    with psycopg.connect(url) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        if feature:
            conn.execute(sql.SQL(EDIT).format(sql.Identifier(layer.table)), [feature])
        started = time.perf_counter()
        if mode == "incremental":
            changes = generalize_changes(conn, layer)
            detail = {"rewritten": changes.rewritten, "context": changes.context, "full": changes.full}
        else:
            detail = {"rows": generalize_layer(conn, layer)}
        seconds = time.perf_counter() - started
        backend_mb = peak_rss_mb(str(backend))
        if commit:
            conn.commit()
        else:
            conn.rollback()
    peak_mb = peak_rss_mb("self")
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "backend_mb": backend_mb, **detail}))


def peak_rss_mb(pid: str) -> float:
    """The peak resident memory (``VmHWM``) of a process: this child's (not ``ru_maxrss``, which
    Linux carries over from the parent across the spawn's exec) or the PostgreSQL backend's
    serving it (where the generalization's SQL runs)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="features × this (10: 50,000 red lines)")
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated: redline, river")
    parser.add_argument("--no-full", action="store_true", help="measure the incremental only (large scales)")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a smoke run on a twentieth of the data")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "LAYER", "URL", "FEATURE"), help=argparse.SUPPRESS)
    parser.add_argument("--commit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, layer, url, feature = args.child
        child(mode, layer, url, int(feature), args.commit)
        return
    scale = 0.05 if args.quick else args.scale
    name = database_name(scale)
    url = with_database(ADMIN_URL, name)
    load_before = load()
    figures = prepare(url, name, scale, args.rebuild)
    layers = [part.strip() for part in args.layers.split(",") if part.strip()]
    with psycopg.connect(url) as conn:
        ids = {
            layer: [r[0] for r in conn.execute(sql.SQL("SELECT id FROM {} ORDER BY id").format(sql.Identifier(layer)))]
            for layer in layers
        }
    results: dict[tuple[str, str], list[dict]] = {}
    for round_number in range(args.rounds):
        for layer in layers:
            # a different feature each round, spread over the layer
            feature = ids[layer][(round_number * 7919 + len(ids[layer]) // 3) % len(ids[layer])]
            for mode in ("incremental",) if args.no_full else ("incremental", "full"):
                result = measure(url, mode, layer, feature)
                results.setdefault((layer, mode), []).append(result)
                print(f"round {round_number + 1} {layer} #{feature} {mode}: {result}")
    load_after = load()
    text = report(results, figures, scale, args, load_before, load_after)
    print(text)
    if args.quick:
        print("(a quick run: bench/results is left as it was)")
        return
    suffix = "" if scale == 1 else f"_x{scale:g}"
    out = ROOT / "bench" / "results" / f"generalize{suffix}.md"
    out.write_text(text)
    print("written to", out.relative_to(ROOT))


def report(
    results: dict[tuple[str, str], list[dict]],
    figures: dict[str, float],
    scale: float,
    args: argparse.Namespace,
    load_before: str,
    load_after: str,
) -> str:
    command = " ".join(["python -m bench.generalize_bench", *sys.argv[1:]])
    counts = {name: round(n * scale) for name, n in synthetic.FULL_COUNTS.items()}
    lines = [
        "# Incremental generalization benchmark",
        "",
        f"Command: `{command}` — {args.rounds} rounds, interleaved (each round: incremental, then full, per layer).",
        "",
        f"Machine: {os.cpu_count()} cores (shared with other work), {platform.platform()}, Python"
        f" {platform.python_version()}. Load before: `{load_before}`; after: `{load_after}`.",
        "",
        f"Data: bench/synthetic.py × {scale:g}: {counts['redline']:,} red lines, {counts['river']:,} rivers,"
        f" {counts['station']:,} stations. Each measurement is one child process: the edit of one feature"
        " (moved ~20 m), then the re-generalization, timed alone, in a transaction rolled back afterwards;"
        " peak RSS is the child's `VmHWM`, the backend's its PostgreSQL backend's.",
        "",
        "| layer | mode | median s | min s | max s | rewritten features | median peak RSS MB | backend peak MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (layer, mode), runs in results.items():
        seconds = [r["seconds"] for r in runs]
        rewritten = statistics.median(r.get("rewritten", 0) for r in runs) if mode == "incremental" else "all"
        lines.append(
            f"| {layer} | {mode} | {statistics.median(seconds):.3f} | {min(seconds):.3f} | {max(seconds):.3f}"
            f" | {rewritten} | {statistics.median(r['peak_mb'] for r in runs):.0f}"
            f" | {statistics.median(r.get('backend_mb', float('nan')) for r in runs):.0f} |"
        )
    lines += ["", "| layer | full / incremental (median of the rounds' ratios) | incremental ≤ 2 s |", "|---|---:|---|"]
    for layer in dict.fromkeys(layer for layer, _ in results):
        inc, full = results.get((layer, "incremental"), []), results.get((layer, "full"), [])
        ratio = statistics.median(f["seconds"] / i["seconds"] for i, f in zip(inc, full, strict=True)) if full else None
        worst = max(r["seconds"] for r in inc)
        lines.append(
            f"| {layer} | {f'{ratio:.0f}×' if ratio else '—'} | {'yes' if worst <= TARGET_S else 'no'}"
            f" (slowest {worst:.2f} s) |"
        )
    if figures:
        lines += ["", "Built in this run: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
