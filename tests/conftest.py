"""Test fixtures: a real PostGIS database with the demo data, the app, and a live server.

The suite uses the project's own PostgreSQL cluster (``make test`` starts it with
scripts/pgcluster.sh) or ``ECOMAP_TEST_DATABASE_URL``. It recreates a database for the
session, migrates it and loads the Xiamen demo dataset as the owner role; the apps and the live
server under test connect as the web role (``make_settings``, ``live_server``). Nothing is mocked: when the
database cannot be reached the whole run fails with a message saying how to start it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from gis_service import create_app
from gis_service.settings import OWNER_ROLE, Settings, as_role, describe_database, local_database_url, with_database
from layers import db as layer_db
from layers.catalog import load_catalog
from layers.grants import web_role
from tiles.generalize import generalize_catalog

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("ECOMAP_TEST_ADMIN_URL") or local_database_url(OWNER_ROLE, "postgres")
"""The owner role (it creates, migrates and fills the test databases; README "Database roles")."""
TEST_DB = os.environ.get("ECOMAP_TEST_DB", "ecomap_test")
DEMO_OBSERVATION_DAYS = "14"
"""Days of demo observations the suite's databases hold (`make run` loads a year; tests of the
year's shape generate it without a database)."""
os.environ.setdefault("ECOMAP_DEMO_OBSERVATION_DAYS", DEMO_OBSERVATION_DAYS)
os.environ.setdefault("ECOMAP_ALERTS__ENABLED", "false")
"""The apps and the live server of the suite run without the alert evaluator: it would open
issues in the shared session database while other tests count them. The alert tests start it
(``tests/test_alerts.py``) over a database of their own."""


def _url_for(database: str) -> str:
    return with_database(ADMIN_URL, database)


def web_url(database_url: str) -> str:
    """The same database as the web role (``ECOMAP_DB__WEB_ROLE``, default ecomap_web), which the
    service under test connects as."""
    return as_role(database_url, web_role())


def recreate_database(name: str) -> str:
    """Drop and create a database with PostGIS; returns its URL."""
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",  # not autovacuum (superuser)
                [name],
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        pytest.exit(
            f"cannot reach PostgreSQL at {describe_database(ADMIN_URL)} as the owner role ({exc}).\n"
            "Run the suite with `make test` (it starts the project's PostGIS cluster), or start it with "
            "`scripts/pgcluster.sh start`, or set ECOMAP_TEST_ADMIN_URL to a PostGIS server you own.",
            returncode=3,
        )
    url = _url_for(name)
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        except psycopg.errors.FeatureNotSupported as exc:  # pragma: no cover - depends on the machine
            pytest.exit(f"PostGIS is not installed for this server: apt-get install postgresql-15-postgis-3 ({exc})", 3)
    return url


def scratch_database_name(purpose: str) -> str:
    """The name of a private database for tests that write (``<session database>_<purpose>``):
    one per session database, so suites run at once (``ECOMAP_TEST_DB``) never drop each other's."""
    return f"{TEST_DB}_{purpose}"


def demo_database(name: str) -> str:
    """A recreated, migrated database holding the demo data (for tests that write); its URL."""
    url = recreate_database(name)
    layer_db.upgrade(url)
    from layers.demo import build_demo_dataset, load_demo

    engine = layer_db.make_engine(url)
    with engine.begin() as conn:
        load_demo(conn, build_demo_dataset())
    engine.dispose()
    from gis_service.monitoring.status.service import refresh_all_status

    run_async(refresh_all_status(url))
    return url


def generalized_demo_database(name: str) -> str:
    """A recreated database with the demo data, generalized for tiles like the session one
    (for tests that edit what tiles show); its URL."""
    url = demo_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        generalize_catalog(conn, load_catalog())
    return url


@pytest.fixture(scope="session")
def database_url() -> str:
    """A migrated test database holding the Xiamen demo dataset, generalized for tiles."""
    url = demo_database(TEST_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        generalize_catalog(conn, load_catalog())
    return url


@pytest.fixture(scope="session")
def demo():
    """The demo dataset as generated (the same seed as loaded into the database)."""
    from layers.demo import build_demo_dataset

    return build_demo_dataset()


@pytest.fixture(scope="session", autouse=True)
def raster_dir(tmp_path_factory: pytest.TempPathFactory, demo) -> Iterator[Path]:
    """The demo rasters (land cover, DEM, slope) generated into a temporary raster data directory,
    which ``ECOMAP_RASTERS__DATA_DIR`` names for the whole session (apps, CLI runs, live server)."""
    from layers.demo.rasters import write_demo_rasters

    directory = tmp_path_factory.mktemp("rasters")
    write_demo_rasters(directory, demo)
    previous = os.environ.get("ECOMAP_RASTERS__DATA_DIR")
    os.environ["ECOMAP_RASTERS__DATA_DIR"] = str(directory)
    yield directory
    if previous is None:
        os.environ.pop("ECOMAP_RASTERS__DATA_DIR", None)
    else:
        os.environ["ECOMAP_RASTERS__DATA_DIR"] = previous


@pytest.fixture()
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A direct autocommit connection to the test database, for independent checks."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings of an app over ``database_url``, connecting as the web role."""
    return Settings(database_url=web_url(database_url), **overrides)


@pytest.fixture()
def client(database_url: str) -> Iterator[TestClient]:
    """The app, with its lifespan running, over the test database."""
    with TestClient(create_app(make_settings(database_url))) as test_client:
        yield test_client


def run_async(coroutine):
    """Run a coroutine to completion in a loop of its own, in a thread of its own: the browser
    tests' Playwright leaves an event loop running in the main thread, where asyncio.run fails."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def serving(database_url: str, log: Path, **env: str) -> Iterator[str]:
    """The real service in a uvicorn subprocess, connected as the web role, with extra
    ``ECOMAP_*`` environment settings; yields its base URL and stops it afterwards."""
    port = free_port()
    environ = {**os.environ, "ECOMAP_DATABASE_URL": web_url(database_url), **env}  # the web role
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gis_service.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz")
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"the live server did not start:\n{log.read_text()}") from None
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service in a uvicorn subprocess, connected as the web role; yields its base URL."""
    with serving(database_url, tmp_path_factory.mktemp("live") / "server.log") as base:
        yield base
