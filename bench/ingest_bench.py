"""Observation ingest benchmark: bulk loads (COPY, the batch API) and the HJ 212 TCP receiver.

    .venv/bin/python -m bench.ingest_bench            # writes bench/results/ingest.md
    .venv/bin/python -m bench.ingest_bench --quick    # a smoke run (figures not worth quoting)

Bulk (target ≥ 50,000 observations/s): the store's bulk path
(``monitoring.store.copy_observations``: COPY into a temporary table, one INSERT … ON
CONFLICT DO NOTHING into the partitioned ``observation``, the latest values moved
forward, one transaction per batch) against the floor measured in the same run: plain
COPY into an unpartitioned table with the same columns and primary key (no conflict
handling, no latest values), and the SensorThings dataArray endpoint
``POST /sta/v1.1/CreateObservations`` (the service over HTTP, a station key, batches of the
same size).

HJ 212 (target ≥ 5,000 packets/s from 500 concurrent connections): the service
(``ecomap serve``, its receiver with group commit) and 500 simulated data loggers in this
process (pre-built packets, asyncio protocols: the loggers' CPU is measured and small), each on
its own connection for its own station, sending CN 2011 packets of six
water factors and waiting for each reply before the next (as loggers do). The reference
in the same run is the same service with group commit off (one packet per transaction,
up to 16 at once: the receiver as it was). Afterwards every acknowledged packet is looked
up in the database: all its observations must be there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from bench.cpu import CpuMeter
from bench.monitoring import create_database, machine_facts, now_text, summary_ms
from bench.serving import ECOMAP_SERVE, GROUPS, free_port, server
from gis_service.monitoring.hj212.codec import build_data_packet
from gis_service.monitoring.hj212.simulator import readings_for
from gis_service.monitoring.store import BulkObservation, PartitionKeeper, copy_observations
from gis_service.settings import as_role
from layers.grants import web_role

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ingest.md"
DATABASE = "ecomap_bench_ingest"
CREATE_OBSERVATIONS = "/sta/v1.1/CreateObservations"
WATER_FACTORS = ["w01001", "w01009", "w01019", "w21003", "w21011", "w21001"]
BULK_START = datetime(2026, 1, 1, tzinfo=UTC)
HJ212_START = datetime(2026, 11, 20, tzinfo=UTC)


def prepare(url: str, stations: int) -> list[tuple[int, str]]:
    """Stations with device codes and a water datastream per factor (hourly); their (id, mn)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO station (code, name, kind, mn, geom)"
            " SELECT 'B' || i, '基准站' || i, 'water_auto', 'BENCH' || lpad(i::text, 10, '0'),"
            " ST_SetSRID(ST_MakePoint(117.9 + (i %% 100) * 0.005, 24.4 + (i / 100) * 0.005), 4326)"
            " FROM generate_series(1, %s) AS i",
            (stations,),
        )
        conn.execute(
            "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
            " SELECT s.id, f, 'hour', f, 'mg/L' FROM station s, unnest(%s::text[]) AS f",
            (WATER_FACTORS,),
        )
        return [(int(i), mn) for i, mn in conn.execute("SELECT id, mn FROM station ORDER BY id")]


# ---------------------------------------------------------------- bulk


def service_env(url: str) -> dict[str, str]:
    """The service as it runs: connected as the web role (README "Database roles")."""
    return {"ECOMAP_DATABASE_URL": as_role(url, web_role())}


def bulk_rows(url: str, count: int, offset_hours: int) -> list[BulkObservation]:
    """``count`` hourly observations: every datastream, hour after hour (as a network sends them)."""
    with psycopg.connect(url) as conn:
        streams = [r[0] for r in conn.execute("SELECT id FROM datastream ORDER BY id")]
    rng = random.Random(7)
    rows = []
    hour = offset_hours
    while len(rows) < count:
        moment = BULK_START + timedelta(hours=hour)
        rows += [BulkObservation(d, moment, round(rng.uniform(0, 10), 3)) for d in streams[: count - len(rows)]]
        hour += 1
    return rows


async def bulk_store(url: str, rows: list[BulkObservation], batch: int) -> tuple[float, int]:
    """Seconds to load ``rows`` through ``copy_observations`` in batches of ``batch``, and how many were new."""
    partitions = PartitionKeeper()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        inserted = 0
        for i in range(0, len(rows), batch):
            inserted += await copy_observations(conn, rows[i : i + batch], partitions, "bench")
        elapsed = time.perf_counter() - started
    return elapsed, inserted


def bulk_floor(url: str, rows: list[BulkObservation], batch: int) -> float:
    """Seconds to COPY ``rows`` into an unpartitioned table with the same columns and key."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS observation_floor")
        conn.execute("CREATE TABLE observation_floor (LIKE observation INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        conn.execute("ALTER TABLE observation_floor ADD PRIMARY KEY (datastream_id, phenomenon_time)")
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            with (
                conn.transaction(),
                conn.cursor().copy(
                    "COPY observation_floor (datastream_id, phenomenon_time, value, flag, quality, source) FROM STDIN"
                ) as copy,
            ):
                for r in rows[i : i + batch]:
                    copy.write_row((r.datastream_id, r.phenomenon_time, r.value, r.flag, "good", "bench"))
        return time.perf_counter() - started


def station_key(url: str) -> str:
    """A station API key (the role that may push observations) for the SensorThings creates."""
    from gis_service.access.keys import create_key

    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return (await create_key(conn, name="bench-ingest", role="station", created_by="ingest-bench"))[1]

    return asyncio.run(create())


def http_bodies(rows: list[BulkObservation], batch: int) -> list[bytes]:
    """The dataArray bodies of ``rows`` in batches of ``batch``, JSON-encoded before the clock starts
    (the measurement is the service's, not the client's encoding)."""
    bodies = []
    for i in range(0, len(rows), batch):
        by_stream: dict[int, list[list]] = {}
        for r in rows[i : i + batch]:
            by_stream.setdefault(r.datastream_id, []).append(
                [r.phenomenon_time.isoformat().replace("+00:00", "Z"), r.value]
            )
        body = [
            {
                "Datastream": {"@iot.id": d},
                "components": ["phenomenonTime", "result"],
                "dataArray@iot.count": len(values),
                "dataArray": values,
            }
            for d, values in by_stream.items()
        ]
        bodies.append(json.dumps(body).encode())
    return bodies


def bulk_http(base: str, bodies: list[bytes], key: str, clients: int = 1) -> tuple[float | None, str]:
    """Seconds to post the dataArray ``bodies`` to CreateObservations, by ``clients`` clients at
    once (each posting its share one after the other), or None and why not."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def post(share: list[bytes]) -> str:
        with httpx.Client(base_url=base, timeout=300) as client:
            for body in share:
                response = client.post(CREATE_OBSERVATIONS, content=body, headers=headers)
                if response.status_code >= 300:
                    return f"HTTP {response.status_code}: {response.text[:300]}"
        return ""

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        errors = [e for e in pool.map(post, [bodies[k::clients] for k in range(clients)]) if e]
    return (None, errors[0]) if errors else (time.perf_counter() - started, "")


# ---------------------------------------------------------------- HJ 212


@dataclass
class LoadResult:
    packets: int = 0
    acknowledged: list[tuple[str, datetime]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    elapsed: float = 0.0
    service_cpu_s: float = 0.0
    """CPU seconds of the service's processes and its PostgreSQL backends during the load."""
    client_cpu_s: float = 0.0


def build_packets(stations: list[tuple[int, str]], per_logger: int, start: datetime) -> list[list[bytes]]:
    """Each logger's packets: CN 2011 real-time data, one a second, six water factors."""
    rng = random.Random(212)
    out = []
    for _, mn in stations:
        packets = []
        for k in range(per_logger):
            moment = start + timedelta(seconds=k)
            readings = [r for r in readings_for("water_auto", moment, rng) if r.code in WATER_FACTORS]
            packets.append(
                build_data_packet(mn=mn, cn="2011", data_time=moment, readings=readings, qn=f"{mn[-6:]}{k:011d}")
            )
        out.append(packets)
    return out


class _Logger(asyncio.Protocol):
    """One simulated data logger: sends a packet, waits for its reply, sends the next (pre-built
    packets, an asyncio protocol: a few microseconds of the loggers' CPU a packet, so the
    machine's cores go to the service and PostgreSQL)."""

    def __init__(
        self, mn: str, packets: list[bytes], start: datetime, result: LoadResult, done: asyncio.Future
    ) -> None:
        self.mn, self.packets, self.start, self.result, self.done = mn, packets, start, result, done
        self.k = 0
        self.sent = 0.0
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        if self.k == len(self.packets):
            assert self.transport is not None
            self.transport.close()
            return
        self.sent = time.perf_counter()
        self.result.packets += 1
        self.transport.write(self.packets[self.k])  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n", 1)
            self.result.latencies.append(time.perf_counter() - self.sent)
            self.result.acknowledged.append((self.mn, self.start + timedelta(seconds=self.k)))
            self.k += 1
            self.send()

    def overdue(self, now: float) -> None:
        """No reply in 30 s: counted, and the next packet sent (a logger would re-send it; not here)."""
        if self.k < len(self.packets) and now - self.sent > 30:
            self.result.timeouts += 1
            self.k += 1
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run_loggers(port: int, packets: list[list[bytes]], mns: list[str], start: datetime) -> LoadResult:
    """Every logger on its own connection, sending a packet and waiting for its reply."""
    result = LoadResult()
    loop = asyncio.get_running_loop()
    loggers = []
    for mn, own in zip(mns, packets, strict=True):
        logger = _Logger(mn, own, start, result, loop.create_future())
        loggers.append(logger)
    started = time.perf_counter()
    for logger in loggers:
        await loop.create_connection(lambda logger=logger: logger, "127.0.0.1", port)
    pending = [logger.done for logger in loggers]
    while True:
        _, waiting = await asyncio.wait(pending, timeout=1.0)
        if not waiting:
            break
        now = time.perf_counter()
        for logger in loggers:
            logger.overdue(now)
    result.elapsed = time.perf_counter() - started
    return result


def verify(url: str, acknowledged: list[tuple[str, datetime]]) -> int:
    """How many acknowledged packets do not have all their observations in the database."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TEMPORARY TABLE acked (mn text, t timestamptz)")
        with conn.cursor().copy("COPY acked FROM STDIN") as copy:
            for row in acknowledged:
                copy.write_row(row)
        missing = conn.execute(
            "SELECT count(*) FROM acked a WHERE (SELECT count(*) FROM observation o"
            " JOIN datastream d ON d.id = o.datastream_id JOIN station s ON s.id = d.station_id"
            " WHERE s.mn = a.mn AND d.aggregation = 'rtd' AND o.phenomenon_time = a.t) <> %s",
            (len(WATER_FACTORS),),
        ).fetchone()[0]
    return int(missing)


def receiver_run(
    url: str,
    name: str,
    env: dict[str, str],
    workers: int,
    stations: list[tuple[int, str]],
    per_logger: int,
    start: datetime,
) -> tuple[LoadResult, int, str]:
    """One run of the service's receiver under ``env`` with ``workers`` worker processes: the
    load, packets missing, its log's summary (one line per worker)."""
    packets = build_packets(stations, per_logger, start)
    http_port, hj212_port = free_port(), free_port()
    log = Path(tempfile.gettempdir()) / f"ecomap-bench-ingest-{name}.log"
    env = {**service_env(url), "ECOMAP_HJ212__PORT": str(hj212_port), "ECOMAP_HJ212__HOST": "127.0.0.1", **env}
    with (
        server(
            [*ECOMAP_SERVE, "--port", str(http_port), "--no-access-log", "--workers", str(workers)],
            env,
            http_port,
            log,
            workers if workers > 1 else None,
        ) as base,
        psycopg.connect(url, autocommit=True) as meter,
    ):
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        with CpuMeter(GROUPS[base], meter) as cpu:
            load = asyncio.run(run_loggers(hj212_port, packets, [mn for _, mn in stations], start))
        client_after = resource.getrusage(resource.RUSAGE_SELF)
    load.service_cpu_s = cpu.attributed
    load.client_cpu_s = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    summary = "; ".join(
        line.split("hj212 receiver stopped: ")[-1]
        for line in log.read_text().splitlines()
        if "hj212 receiver stopped" in line
    )
    return load, verify(url, load.acknowledged), summary


# ---------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulk-rows", type=int, default=1_000_000, help="observations per bulk path")
    parser.add_argument("--batch", type=int, default=50_000, help="observations per bulk transaction / request")
    parser.add_argument("--loggers", type=int, default=500, help="concurrent HJ 212 connections")
    parser.add_argument("--packets", type=int, default=60, help="packets per logger (group commit run)")
    parser.add_argument("--reference-packets", type=int, default=20, help="packets per logger (reference run)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100,000 rows, 100 loggers; no results file")
    args = parser.parse_args()
    if args.quick:
        args.bulk_rows, args.loggers, args.packets, args.reference_packets = 100_000, 100, 10, 5
    url = create_database(DATABASE)
    stations = prepare(url, max(args.loggers, 1000))
    facts = machine_facts(url)
    started_at = now_text()
    lines = ["# Ingest benchmark", ""]
    command = f".venv/bin/python -m bench.ingest_bench {' '.join(sys.argv[1:])}".strip()
    lines += [f"Command: `{command}`  ", f"Date: {started_at}  ", f"Machine: {facts}", ""]

    # Bulk paths.
    rows = bulk_rows(url, args.bulk_rows, 0)
    print(f"bulk: {len(rows):,} observations in batches of {args.batch:,}")
    floor_s = bulk_floor(url, rows, args.batch)
    store_s, inserted = asyncio.run(bulk_store(url, rows, args.batch))
    again_s, again = asyncio.run(bulk_store(url, rows, args.batch))  # the same rows again: all duplicates
    assert (inserted, again) == (len(rows), 0), f"{inserted} then {again} new of {len(rows)}"
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM observation WHERE source = 'bench'").fetchone()[0]
    assert stored == len(rows), f"{stored} stored of {len(rows)}"
    bulk = [
        ("COPY into an unpartitioned table, same columns and key (floor)", floor_s, "reference"),
        ("store bulk path: COPY → temp table → INSERT … ON CONFLICT into `observation`, latest moved", store_s, ""),
        ("the same rows again (all duplicates: nothing new stored)", again_s, ""),
    ]
    measured = ["COPY floor", "store bulk path", "SensorThings CreateObservations over HTTP"]
    http_rows = bulk_rows(url, args.bulk_rows, 24 * 200)  # other hours (July): new observations
    bodies = http_bodies(http_rows, args.batch)
    http_port = free_port()
    key = station_key(url)
    with server([*ECOMAP_SERVE, "--port", str(http_port), "--no-access-log"], service_env(url), http_port):
        http_s, why = bulk_http(f"http://127.0.0.1:{http_port}", bodies, key)
    if http_s is None:
        raise SystemExit(f"POST {CREATE_OBSERVATIONS} refused the benchmark's batches: {why}")
    # The same with the service as deployed here (`--workers 2`) and two clients posting at once.
    more_rows = bulk_rows(url, args.bulk_rows, 24 * 100)  # other hours again (April): new observations
    more_bodies = http_bodies(more_rows, args.batch)
    http_port = free_port()
    serve_two = [*ECOMAP_SERVE, "--port", str(http_port), "--no-access-log", "--workers", "2"]
    with server(serve_two, service_env(url), http_port, workers=2):
        http2_s, why = bulk_http(f"http://127.0.0.1:{http_port}", more_bodies, key, clients=2)
    if http2_s is None:
        raise SystemExit(f"POST {CREATE_OBSERVATIONS} refused the benchmark's batches: {why}")
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM observation WHERE source = 'sta'").fetchone()[0]
    assert stored == len(http_rows) + len(more_rows), f"{stored} stored of {len(http_rows) + len(more_rows)} posted"
    bulk.append(
        (
            f"SensorThings dataArray `POST {CREATE_OBSERVATIONS}` over HTTP (station key, JSON → COPY → INSERT)",
            http_s,
            "",
        )
    )
    bulk.append(("the same, `--workers 2` and two clients posting at once", http2_s, ""))
    print("bulk paths measured:", ", ".join(measured))
    lines += [
        f"## Bulk ingest ({len(rows):,} hourly observations of {len(rows) // 1000:,}k, batches of {args.batch:,})",
        "",
        "Target: ≥ 50,000 observations/s.",
        "",
        "| path | seconds | observations/s | vs floor |",
        "|---|---:|---:|---:|",
    ]
    for label, seconds, note in bulk:
        rate = len(rows) / seconds
        ratio = note or f"{floor_s / seconds:.2f}×"
        lines.append(f"| {label} | {seconds:.2f} | {rate:,.0f} | {ratio} |")
    lines += [
        "",
        f"Paths measured: {', '.join(measured)}. The store's paths run in this process (one connection, one"
        " transaction per batch); the SensorThings ones post pre-encoded bodies to `ecomap serve`"
        " (one worker, then two)",
        " connected as the web role. Every path keeps `datastream_latest` and `observation_daily` (the"
        " observation trigger, migration 0021).",
        "",
    ]

    # HJ 212 receiver.
    n = args.loggers
    runs = []
    group_env = {}  # the service's defaults: group commit on
    reference_env = {
        "ECOMAP_HJ212__GROUP_WINDOW_MS": "0",
        "ECOMAP_HJ212__GROUP_MAX_PACKETS": "1",
        "ECOMAP_HJ212__WRITERS": "16",
    }
    chosen = stations[:n]
    for index, (name, env, workers, per_logger) in enumerate(
        [
            ("reference: one packet per transaction, 16 at once", reference_env, 1, args.reference_packets),
            ("group commit (defaults: 2 ms window, ≤ 500 packets, 4 writers)", group_env, 1, args.packets),
            ("group commit, `--workers 2` (both workers receive: SO_REUSEPORT)", group_env, 2, args.packets),
        ]
    ):
        print(f"hj212: {name}: {n} loggers × {per_logger} packets")
        start = HJ212_START + timedelta(days=index)  # each run its own data times: all new packets
        load, missing, summary = receiver_run(url, f"run{index}", env, workers, chosen, per_logger, start)
        rate = len(load.acknowledged) / load.elapsed
        p50, p95 = summary_ms(load.latencies) if load.latencies else (float("nan"), float("nan"))
        runs.append((name, load, missing, summary, rate, p50, p95))
        print(
            f"   {rate:,.0f} packets/s acknowledged, p50 {p50:.1f} ms, p95 {p95:.1f} ms, missing {missing},"
            f" service CPU {load.service_cpu_s * 1000 / max(load.packets, 1):.2f} ms/packet; {summary}"
        )
    reference_rate = runs[0][4]
    lines += [
        f"## HJ 212 receiver ({n} concurrent logger connections, CN 2011 packets of 6 factors, each logger waiting"
        " for every reply)",
        "",
        "Target: ≥ 5,000 packets/s, every acknowledged packet in the database.",
        "",
        "| receiver | packets sent | acknowledged | packets/s | observations/s | reply p50 ms | reply p95 ms |"
        " no reply in 30 s | acknowledged but not stored | vs reference | service + PostgreSQL CPU ms/packet |"
        " loggers' CPU ms/packet | receiver's own count |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, load, missing, summary, rate, p50, p95 in runs:
        ratio = "reference" if name.startswith("reference") else f"{rate / reference_rate:.2f}×"
        lines.append(
            f"| {name} | {load.packets:,} | {len(load.acknowledged):,} | {rate:,.0f} |"
            f" {rate * len(WATER_FACTORS):,.0f} | {p50:.1f} | {p95:.1f} | {load.timeouts} | {missing} | {ratio} |"
            f" {load.service_cpu_s * 1000 / max(load.packets, 1):.2f} |"
            f" {load.client_cpu_s * 1000 / max(load.packets, 1):.2f} | {summary} |"
        )
    lines += [
        "",
        "Throughput is closed-loop: each logger sends its next packet once the previous one is acknowledged,",
        "so packets/s = connections / reply time. The loggers (asyncio protocols, this process), the service",
        "(HTTP and the receiver in each worker) and PostgreSQL share the machine's cores. CPU ms/packet counts the",
        "service's processes and the PostgreSQL backends of the benchmark's database (`bench/cpu.py`): what",
        "a packet costs whatever else the machine runs; 1,000 ms of CPU per second is one core.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.quick:
        print("(quick run: bench/results/ingest.md left as it was)")
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
