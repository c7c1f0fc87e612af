"""What the monitoring benchmarks share: their databases, the machine's facts, percentiles."""

from __future__ import annotations

import math
import os
import platform
import statistics
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from gis_service.settings import OWNER_ROLE, local_database_url, with_database
from layers import db as layer_db

ADMIN_URL = os.environ.get("ECOMAP_BENCH_ADMIN_URL") or local_database_url(OWNER_ROLE, "postgres")
"""The owner role on the checkout's cluster (README "Database roles"; its password from .data/pgpass)."""


def database_url(name: str) -> str:
    return with_database(ADMIN_URL, name)


def database_exists(name: str) -> bool:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def create_database(name: str) -> str:
    """Drop and create a benchmark database with PostGIS and the project's migrations; its URL."""
    drop_database(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    layer_db.upgrade(url)
    return url


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def machine_facts(url: str) -> str:
    """One line: cores, memory, OS, Python, PostgreSQL and its main settings, load average."""
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = ", ".join(
            f"{name} {conn.execute(sql.SQL('SHOW {}').format(sql.Identifier(name))).fetchone()[0]}"
            for name in ("shared_buffers", "work_mem", "synchronous_commit", "max_wal_size")
        )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()}, "
        f"PostgreSQL {version} ({settings}) on the same machine; load average at the start {load} "
        "(other helpers' work included: read ratios)"
    )


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary_ms(values: list[float]) -> tuple[float, float]:
    """Median and p95 of durations in seconds, in milliseconds."""
    return statistics.median(values) * 1000, percentile(values, 95) * 1000
