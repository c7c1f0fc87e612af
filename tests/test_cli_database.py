"""The ``ecomap`` CLI and the service find the same database the same way, and say which."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gis_service.settings import PASSFILE, Settings, database_url, describe_database, owner_database_url
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
_DATABASE_VARIABLES = ("DATABASE_URL", "ECOMAP_DATABASE_URL", "ECOMAP_DATABASE_OWNER_URL", "ECOMAP_PG_PORT")


def ecomap(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess with only the given database variables set."""
    clean = {k: v for k, v in os.environ.items() if k not in _DATABASE_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "gis_service.cli", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_database_url_prefers_the_url_then_the_local_port() -> None:
    assert database_url({}) == f"postgresql://ecomap_web@127.0.0.1:55432/ecomap?passfile={PASSFILE}"
    assert (
        database_url({"ECOMAP_PG_PORT": "55999"})
        == f"postgresql://ecomap_web@127.0.0.1:55999/ecomap?passfile={PASSFILE}"
    )
    given = "postgresql://u:p@db.example:5432/gis"
    assert database_url({"ECOMAP_PG_PORT": "55999", "DATABASE_URL": given}) == given
    assert database_url({"ECOMAP_DATABASE_URL": given, "DATABASE_URL": "postgresql://x@y/z"}) == given
    # The CLI's (migrations, imports): the owner role; one URL serves both when no owner URL is set.
    assert owner_database_url({}) == f"postgresql://ecomap_owner@127.0.0.1:55432/ecomap?passfile={PASSFILE}"
    assert owner_database_url({"ECOMAP_DATABASE_URL": given}) == given
    owner = "postgresql://o:q@db.example:5432/gis"
    assert owner_database_url({"ECOMAP_DATABASE_URL": given, "ECOMAP_DATABASE_OWNER_URL": owner}) == owner


def test_service_settings_follow_the_local_port(monkeypatch) -> None:
    for name in _DATABASE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ECOMAP_PG_PORT", "55998")
    assert Settings().dsn == f"postgresql://ecomap_web@127.0.0.1:55998/ecomap?passfile={PASSFILE}"


def test_cli_uses_ecomap_pg_port_and_names_it_when_nothing_listens() -> None:
    port = str(free_port())  # bound and released: nothing listens there
    result = ecomap("revisions", "redline", ECOMAP_PG_PORT=port)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"127.0.0.1:{port}/ecomap" in result.stderr
    assert "cannot reach the database" in result.stderr and "ECOMAP_PG_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    upgrade = ecomap("db", "upgrade", ECOMAP_PG_PORT=port)
    assert upgrade.returncode == 1 and f"127.0.0.1:{port}" in upgrade.stderr
    demo = ecomap("demo", "load", "--if-empty", ECOMAP_PG_PORT=port)
    assert demo.returncode == 1 and f"127.0.0.1:{port}" in demo.stderr and "Traceback" not in demo.stderr


def test_cli_says_which_database_it_uses_without_the_password(database_url: str) -> None:
    result = ecomap("db", "upgrade", DATABASE_URL=database_url)  # at head already: changes nothing
    assert result.returncode == 0, result.stderr
    assert f"database: {describe_database(database_url)}" in result.stderr
    assert "passfile" not in result.stderr + result.stdout
    assert "database migrated to head" in result.stdout


def test_an_unknown_region_is_a_clear_cli_error() -> None:
    result = ecomap("revisions", "redline", ECOMAP_REGION="fuzhou")
    assert result.returncode == 2
    assert "ECOMAP_REGION must be one of xiamen" in result.stderr and "Traceback" not in result.stderr
