"""What row-level security would cost for area-scoped reads (issue 14 item 5), against how
the service scopes them now, in the same run.

The data: the tile benchmark's synthetic layers (``bench/synthetic.py``: 100,000 stations) in
a database of its own (``ecomap_bench_rls``, recreated each run), and a partner key whose
shared area is an irregular polygon of 720 vertices (a district's size, about a tenth of the
stations). Every read runs as the web role, as the service does (row-level security does not
bind a table's owner).

- **reference: as we do it** — the statement the service sends for a partner with an area: the
  scope's SQL (``FeatureScope.source`` for items, its ``inside`` condition for tiles, built by
  ``gis_service.services.features.build_items_query`` and ``tiles.sql.build_tile_query``) with
  the area bound as a parameter (EWKB, read once per worker by the policy), one statement in
  autocommit, like the service's pooled connections;
- **RLS, area in the setting** — a copy of the table with a policy
  ``ST_Intersects(geom, current_setting('ecomap.scope_area')::geometry)``; each request is
  ``BEGIN; SELECT set_config('ecomap.scope_area', <EWKB hex>, true); <the unscoped statement>;
  COMMIT`` (what ``SET LOCAL`` per transaction means);
- **RLS, key id in the setting** — the same, the policy reading the area of the key named by
  ``ecomap.key_id`` from ``api_key`` (``SET LOCAL`` the caller, the policy finds its area);
- **RLS, one policy for every caller** — a table's policy must also let unscoped callers read:
  ``current_setting('ecomap.role') <> 'partner' OR ST_Intersects(geom, <the key's area>)``;
- **the policies alone** — the RLS statements inside one open transaction whose setting is
  made once (the per-row cost of the policy without the per-request transaction);
- **SET LOCAL alone** — ``BEGIN; set_config(…); COMMIT`` with no read: the round trips a
  request would add.

Cases: an items page (``limit=100``, bbox 0.02°, in and across the area's edge), z12 and z14
station tiles over the area's bounding box. Before timing, every case's rows (items ids, MVT
feature ids) are checked to be the same through every variant. Each variant runs every
request of a case in turn, in ``--rounds`` rounds interleaving the variants; the report gives
the median latency per request over all rounds and its ratio to the reference.

    .venv/bin/python -m bench.rls_bench            # or: make bench-rls
    .venv/bin/python -m bench.rls_bench --quick    # smoke run (results file left as it was)

Results: ``bench/results/rls.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mapbox_vector_tile
import morecantile
import psycopg
import shapely
import shapely.geometry
from psycopg import sql

from bench import synthetic
from bench.monitoring import create_database, machine_facts, now_text
from gis_service.access.keys import area_of_geojson, create_key
from gis_service.access.scopes import FeatureScope
from gis_service.services.features import ItemsQuery, build_items_query
from gis_service.settings import WEB_ROLE, as_role
from layers.catalog import Layer, load_catalog
from tiles.sql import build_tile_query

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "ecomap_bench_rls"
RESULTS = ROOT / "bench" / "results" / "rls.md"
COMMAND = ".venv/bin/python -m bench.rls_bench"
TMS = morecantile.tms.get("WebMercatorQuad")
CENTRE, RADIUS, VERTICES = (118.15, 24.65), 0.09, 720
SETTING_TABLE, LOOKUP_TABLE, ALL_ROLES_TABLE = "station_rls_setting", "station_rls_key", "station_rls_roles"

POLICIES = {
    SETTING_TABLE: "ST_Intersects(geom, nullif(current_setting('ecomap.scope_area', true), '')::geometry)",
    LOOKUP_TABLE: (
        "ST_Intersects(geom, (SELECT k.area FROM api_key AS k"
        " WHERE k.id = nullif(current_setting('ecomap.key_id', true), '')::int))"
    ),
    ALL_ROLES_TABLE: (
        "coalesce(current_setting('ecomap.role', true), '') <> 'partner' OR ST_Intersects(geom, (SELECT k.area"
        " FROM api_key AS k WHERE k.id = nullif(current_setting('ecomap.key_id', true), '')::int))"
    ),
}
"""Each copy of the station table and its row-level security policy (FOR SELECT, every role)."""


def shared_area(seed: int = 3) -> shapely.Polygon:
    """An irregular polygon about a district's size: a noisy circle of ``VERTICES`` vertices."""
    rng = random.Random(seed)
    ring = []
    for i in range(VERTICES):
        angle = 2 * math.pi * i / VERTICES
        r = RADIUS * (1 + 0.15 * math.sin(7 * angle) + 0.05 * rng.uniform(-1, 1))
        ring.append((CENTRE[0] + r * math.cos(angle), CENTRE[1] + r * math.sin(angle) * 0.9))
    return shapely.Polygon(ring)


def prepare(url: str, scale: float) -> tuple[int, bytes, dict[str, int]]:
    """Load the data, the partner key and the RLS copies; returns the key id, its area (EWKB)
    and the table sizes."""
    synthetic.build(url, scale=scale)
    area = area_of_geojson(shapely.geometry.mapping(shared_area()), "area")

    async def key() -> int:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            made, _ = await create_key(
                conn, name="rls-bench", role="partner", created_by="bench", layers=["station"], area=area
            )
            return made.id

    key_id = asyncio.run(key())
    with psycopg.connect(url, autocommit=True) as conn:
        for table, policy in POLICIES.items():
            name = sql.Identifier(table)
            conn.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM station").format(name))
            conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(name))
            for column in ("geom", "geom_3857"):
                conn.execute(sql.SQL("CREATE INDEX ON {} USING gist ({})").format(name, sql.Identifier(column)))
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(name))
            conn.execute(sql.SQL("CREATE POLICY scope ON {} FOR SELECT USING ({})").format(name, sql.SQL(policy)))
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(name, sql.Identifier(WEB_ROLE)))
            conn.execute(sql.SQL("ANALYZE {}").format(name))
        ewkb = bytes(conn.execute("SELECT ST_AsEWKB(area) FROM api_key WHERE id = %s", [key_id]).fetchone()[0])
        sizes = {
            "stations": conn.execute("SELECT count(*) FROM station").fetchone()[0],
            "inside": conn.execute(
                "SELECT count(*) FROM station, api_key AS k WHERE k.id = %s AND ST_Intersects(station.geom, k.area)",
                [key_id],
            ).fetchone()[0],
        }
    return key_id, ewkb, sizes


@dataclass(frozen=True)
class Request:
    """One read: its statement and parameters, and what it returns (ids) for the check."""

    statement: bytes
    params: dict


def _copy(layer: Layer, table: str) -> Layer:
    return Layer.model_validate({**layer.model_dump(by_alias=True), "table": table})


def item_requests(layer: Layer, scope: FeatureScope | None, boxes: list[tuple[float, ...]]) -> list[Request]:
    requests = []
    for box in boxes:
        statement, params = build_items_query(layer, ItemsQuery(limit=100, bbox=box, scope=scope))  # type: ignore[arg-type]
        requests.append(Request(statement.as_bytes(None), params))
    return requests


def tile_requests(layer: Layer, scope: FeatureScope | None, tiles: list[morecantile.Tile]) -> list[Request]:
    where = scope.inside(layer, "t") if scope is not None else None
    query = build_tile_query(layer, None, where)
    params = scope.params if scope is not None else {}
    return [
        Request(query.for_zoom(t.z).text, {**query.for_zoom(t.z).params, **params, "z": t.z, "x": t.x, "y": t.y})
        for t in tiles
    ]


def item_boxes(count: int, seed: int = 5) -> list[tuple[float, float, float, float]]:
    """Boxes of 0.02° around the area: inside it, across its edge and (a few) outside."""
    rng = random.Random(seed)
    x0, y0 = CENTRE[0] - 1.3 * RADIUS, CENTRE[1] - 1.2 * RADIUS
    boxes = []
    for _ in range(count):
        x, y = rng.uniform(x0, x0 + 2.6 * RADIUS - 0.02), rng.uniform(y0, y0 + 2.4 * RADIUS - 0.02)
        boxes.append((x, y, x + 0.02, y + 0.02))
    return boxes


def area_tiles(zoom: int) -> list[morecantile.Tile]:
    minx, miny, maxx, maxy = shared_area().bounds
    return list(TMS.tiles(minx, miny, maxx, maxy, zooms=[zoom]))


Runner = Callable[[psycopg.Connection, Request], list]


def plain(conn: psycopg.Connection, request: Request) -> list:
    return conn.execute(request.statement, request.params).fetchall()


def with_setting(settings: dict[str, str]) -> Runner:
    """A request in a transaction of its own that first sets the caller (SET LOCAL)."""

    def run(conn: psycopg.Connection, request: Request) -> list:
        with conn.transaction():
            for name, value in settings.items():
                conn.execute("SELECT set_config(%s, %s, true)", [name, value])
            return conn.execute(request.statement, request.params).fetchall()

    return run


HEX_GEOMETRY = re.compile(r"'[0-9A-F]{32,}'::geometry")


def scan_lines(conn: psycopg.Connection, request: Request, settings: dict[str, str]) -> list[str]:
    """The index condition, filter and rows filtered out of the scan of an items request's plan."""
    with conn.transaction():
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        plan = conn.execute(b"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + request.statement, request.params)
        keep = ("Index Cond", "Filter", "Rows Removed by Filter")
        lines = [row[0].strip() for row in plan.fetchall() if row[0].strip().startswith(keep)]
    return [HEX_GEOMETRY.sub("<geometry>", line) for line in lines]


def ids(kind: str, rows: list) -> list:
    if kind == "items":
        return sorted(json.loads(row[0])["id"] for row in rows)
    body = rows[0][0] if rows and rows[0][0] is not None else b""
    return sorted(f["id"] for layer in mapbox_vector_tile.decode(bytes(body)).values() for f in layer["features"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each running every variant in turn")
    parser.add_argument("--quick", action="store_true", help="smoke run: a tenth of the data, one round")
    args = parser.parse_args()
    scale, rounds = (0.1, 1) if args.quick else (1.0, args.rounds)
    owner_url = create_database(DATABASE)
    facts = machine_facts(owner_url)
    started = time.monotonic()
    key_id, area, sizes = prepare(owner_url, scale)
    print(f"prepared in {time.monotonic() - started:.0f} s: {sizes}")
    station = load_catalog().get("station")
    scope = FeatureScope(f"partner:{key_id}:bench", area, None, frozenset())
    cases = {
        "items page (limit 100, bbox 0.02°)": ("items", item_boxes(20 if not args.quick else 10)),
        "station tiles z12": ("tiles", area_tiles(12)),
        "station tiles z14": ("tiles", area_tiles(14)),
    }
    key_setting = {"ecomap.key_id": str(key_id)}
    variants: dict[str, tuple[str | None, FeatureScope | None, Runner]] = {
        "as we do it: scope SQL, area bound (reference)": (None, scope, plain),
        "RLS, area in the setting": (SETTING_TABLE, None, with_setting({"ecomap.scope_area": area.hex()})),
        "RLS, key id in the setting": (LOOKUP_TABLE, None, with_setting(key_setting)),
        "RLS, one policy for every caller": (
            ALL_ROLES_TABLE,
            None,
            with_setting({**key_setting, "ecomap.role": "partner"}),
        ),
        "unscoped read of the table (for scale)": (None, None, plain),
    }
    requests: dict[tuple[str, str], list[Request]] = {}
    for case, (kind, sample) in cases.items():
        for variant, (table, variant_scope, _) in variants.items():
            layer = _copy(station, table) if table else station
            build = item_requests if kind == "items" else tile_requests
            requests[case, variant] = build(layer, variant_scope, sample)  # type: ignore[arg-type]
    web = as_role(owner_url, WEB_ROLE)
    latencies: dict[tuple[str, str], list[float]] = {key: [] for key in requests}
    policy_alone: dict[tuple[str, str], list[float]] = {}
    set_local: list[float] = []
    mismatches = []
    with psycopg.connect(web, autocommit=True) as conn:
        for case, (kind, _) in cases.items():  # the same rows through every variant (and warm-up)
            reference = [ids(kind, plain(conn, r)) for r in requests[case, next(iter(variants))]]
            for variant, (_, _, runner) in list(variants.items())[1:-1]:
                got = [ids(kind, runner(conn, r)) for r in requests[case, variant]]
                if got != reference:
                    mismatches.append(f"{case}: {variant} returns other rows than the reference")
            if not any(reference):
                mismatches.append(f"{case}: the sample returns nothing")
        items_case = next(iter(cases))
        first = {variant: requests[items_case, variant][0] for variant in variants}
        plans = {
            "reference": scan_lines(conn, first[next(iter(variants))], {}),
            "RLS, key id in the setting": scan_lines(conn, first["RLS, key id in the setting"], key_setting),
        }
        for round_number in range(rounds):
            for case in cases:
                for variant, (_, _, runner) in variants.items():
                    for request in requests[case, variant]:
                        t0 = time.perf_counter()
                        runner(conn, request)
                        latencies[case, variant].append(time.perf_counter() - t0)
                for variant, (table, _, _) in variants.items():
                    if table is None:
                        continue
                    settings = {"ecomap.scope_area": area.hex(), **key_setting, "ecomap.role": "partner"}
                    with conn.transaction():
                        for name, value in settings.items():
                            conn.execute("SELECT set_config(%s, %s, true)", [name, value])
                        for request in requests[case, variant]:
                            t0 = time.perf_counter()
                            plain(conn, request)
                            policy_alone.setdefault((case, variant), []).append(time.perf_counter() - t0)
            for _ in range(200):
                t0 = time.perf_counter()
                with conn.transaction():
                    conn.execute("SELECT set_config('ecomap.key_id', %s, true)", [str(key_id)])
                set_local.append(time.perf_counter() - t0)
            print(f"round {round_number + 1}/{rounds} done")
    text = report(cases, variants, latencies, policy_alone, set_local, sizes, facts, rounds, mismatches, args, plans)
    print(text)
    if args.quick:
        print("(--quick: results/rls.md left as it was)")
    else:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    if mismatches:
        sys.exit(1)


def report(cases, variants, latencies, policy_alone, set_local, sizes, facts, rounds, mismatches, args, plans) -> str:
    """The results file (Markdown)."""
    reference = next(iter(variants))
    lines = [
        "# Row-level security for area-scoped reads: its cost against the scope's SQL",
        "",
        f"Run {now_text()}. Command: `{COMMAND}" + (f" --rounds {args.rounds}" if args.rounds != 3 else "") + "`",
        "",
        f"Machine: {facts}.",
        "",
        f"Data: {sizes['stations']:,} synthetic stations (`bench/synthetic.py`), a partner key whose area (a"
        f" {VERTICES}-vertex polygon) holds {sizes['inside']:,} of them; reads as the web role over one"
        f" connection, {rounds} rounds interleaving the variants. Median latency per request (ms) over all"
        " rounds, and its ratio to the reference measured in the same run (lower is faster).",
        "",
    ]
    if mismatches:
        lines += ["**Mismatches:** " + "; ".join(mismatches), ""]
    header = "| variant | " + " | ".join(cases) + " |"
    lines += [header, "|---|" + "---|" * len(cases)]
    medians = {key: statistics.median(values) for key, values in latencies.items()}
    for variant in variants:
        cells = [
            f"{medians[case, variant] * 1000:.2f} ({medians[case, variant] / medians[case, reference]:.2f}×)"
            for case in cases
        ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The policies alone, inside one open transaction whose settings were made once (no per-request"
        " BEGIN / set_config / COMMIT):",
        "",
        header,
        "|---|" + "---|" * len(cases),
    ]
    for variant, (table, _, _) in variants.items():
        if table is None:
            continue
        cells = []
        for case in cases:
            alone = statistics.median(policy_alone[case, variant])
            cells.append(f"{alone * 1000:.2f} ({alone / medians[case, reference]:.2f}×)")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"SET LOCAL alone (`BEGIN; SELECT set_config('ecomap.key_id', …, true); COMMIT`, no read):"
        f" median {statistics.median(set_local) * 1000:.3f} ms over {len(set_local)} transactions.",
        "",
        "Why: the scan of the first items page (`EXPLAIN ANALYZE`; `<geometry>`: a bound geometry, the area or"
        " the bbox; `$0`: the area the policy reads). Under a policy, the request's own"
        " conditions (the bbox's `&&`, the tile envelope) may not run before the policy's, as PostGIS's"
        " operators are not `LEAKPROOF`: the index finds every row of the area, the bbox only filters them.",
        "",
    ]
    for variant, scan in plans.items():
        lines += [f"- {variant}:", *(f"  - `{line}`" for line in scan)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
