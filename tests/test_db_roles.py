"""Least privilege in PostgreSQL (README "Database roles"): the service runs as a web role that
reads the layers and writes only its own tables; migrations and imports run as the owner.

Everything here talks to the real cluster: privileges are checked by PostgreSQL refusing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from gis_service.db import act_as
from gis_service.settings import OWNER_ROLE
from layers import grants
from layers.catalog import load_catalog
from tests.conftest import (
    ADMIN_URL,
    ROOT,
    TEST_DB,
    demo_database,
    free_port,
    run_async,
    scratch_database_name,
    web_url,
)
from tiles.generalize import generalize_layer


@pytest.fixture(scope="module")
def scratch_url() -> str:
    """A private demo database (owner URL) for the tests that write."""
    return demo_database(scratch_database_name("roles"))


@pytest.fixture()
def web(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the session database as the web role."""
    with psycopg.connect(web_url(database_url), autocommit=True) as conn:
        yield conn


def _passfile() -> Path:
    """The libpq password file the test URLs use (``?passfile=``, else PGPASSFILE or ~/.pgpass)."""
    named = conninfo_to_dict(ADMIN_URL).get("passfile") or os.environ.get("PGPASSFILE")
    return Path(named) if named else Path.home() / ".pgpass"


def _passwords() -> list[str]:
    lines = [line.split(":") for line in _passfile().read_text().splitlines() if line and not line.startswith("#")]
    return [fields[4] for fields in lines if len(fields) == 5 and fields[3] in (grants.web_role(), OWNER_ROLE)]


def test_the_web_role_has_no_special_attributes(web: psycopg.Connection) -> None:
    row = web.execute(
        "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication"
        " FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (grants.web_role(), False, False, False, False, False)


def test_the_web_role_cannot_create_tables(web: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema public"):
        web.execute("CREATE TABLE roles_probe (id int)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        web.execute("CREATE FUNCTION roles_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TABLE audit_log",
    ],
)
def test_the_web_role_cannot_alter_the_audit_log(web: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit_log"):
        web.execute(statement)


def test_the_web_role_appends_to_the_audit_log_and_reads_it(web: psycopg.Connection) -> None:
    row = web.execute(
        "INSERT INTO audit_log (actor, actor_kind, action, outcome)"
        " VALUES ('roles-test', 'account', 'probe', 'success') RETURNING id"
    ).fetchone()
    assert web.execute("SELECT action FROM audit_log WHERE id = %s", [row[0]]).fetchone() == ("probe",)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE redline SET name = name",
        "DELETE FROM protected_area",
        "INSERT INTO chief (name) VALUES ('x')",
        "TRUNCATE gen_dirty",
        "LOCK TABLE redline IN SHARE MODE",
        "UPDATE layer_revision SET author = 'x'",
    ],
)
def test_the_web_role_cannot_write_the_layers(web: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"), web.transaction():
        web.execute(statement)


def test_the_web_role_reads_every_layer(web: psycopg.Connection) -> None:
    for layer in load_catalog():
        count = web.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.table))).fetchone()[0]
        assert count > 0, layer.id


def test_the_live_service_connects_as_the_web_role(live_server: str, db: psycopg.Connection) -> None:
    assert httpx.get(live_server + "/healthz", timeout=10).status_code == 200
    users = {
        r[0]
        for r in db.execute(
            "SELECT usename FROM pg_stat_activity WHERE datname = %s AND application_name = 'ecomap'", [TEST_DB]
        ).fetchall()
    }
    assert users == {grants.web_role()}


def test_passwords_are_generated_private_and_never_in_the_tree_or_logs(
    live_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    passfile = _passfile()
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    passwords = _passwords()
    assert len(passwords) == 2 and all(len(p) >= 32 for p in passwords)
    assert "ecomap:ecomap@" not in ADMIN_URL
    for password in passwords:
        found = subprocess.run(
            ["git", "grep", "--untracked", "-F", "-l", password], cwd=ROOT, capture_output=True, text=True
        )
        assert found.returncode == 1 and not found.stdout, f"a database password is in {found.stdout}"
    httpx.get(live_server + "/api/layers", timeout=10)
    logs = [p.read_text() for p in tmp_path_factory.getbasetemp().glob("live*/server.log")]
    assert logs and all(password not in log for log in logs for password in passwords)
    urls = subprocess.run(
        ["bash", "-c", "scripts/pgcluster.sh url ecomap && scripts/pgcluster.sh web-url ecomap"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [conninfo_to_dict(u)["user"] for u in urls] == ["ecomap_owner", "ecomap_web"]
    assert all("password" not in conninfo_to_dict(u) for u in urls)


def test_ingest_creates_partitions_through_the_owners_function(scratch_url: str) -> None:
    with psycopg.connect(web_url(scratch_url), autocommit=True) as conn:
        name = conn.execute("SELECT observation_ensure_partition('2031-05-17T08:00:00Z')").fetchone()[0]
        assert name == "observation_y2031m05"
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = %s", [name]).fetchone()[0]
        assert owner == conninfo_to_dict(scratch_url)["user"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"DROP TABLE {name}")


def test_the_web_role_regeneralizes_a_layer_through_the_lock_function(scratch_url: str) -> None:
    layer = load_catalog().get("bay")
    with psycopg.connect(web_url(scratch_url), autocommit=True) as conn:
        with conn.transaction():
            assert generalize_layer(conn, layer) > 0
        assert conn.execute("SELECT count(*) FROM gen_dirty WHERE layer = 'bay'").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a generalized layer table: audit_log"):
            conn.execute("SELECT ecomap_lock_for_generalization('audit_log')")


def test_new_tables_are_readable_and_writable_after_one_line(scratch_url: str, monkeypatch) -> None:
    from sqlalchemy import text

    from layers.db import make_engine

    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE roles_new_table (id int)"))  # as the owner, as a migration would
    with psycopg.connect(web_url(scratch_url), autocommit=True) as web:
        assert web.execute("SELECT count(*) FROM roles_new_table").fetchone() == (0,)  # default privileges
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            web.execute("INSERT INTO roles_new_table VALUES (1)")
        monkeypatch.setitem(grants.WEB_WRITES, "roles_new_table", "INSERT")
        with engine.begin() as conn:
            assert grants.apply_grants(conn)
        web.execute("INSERT INTO roles_new_table VALUES (1)")
        monkeypatch.delitem(grants.WEB_WRITES, "roles_new_table")
        with engine.begin() as conn:
            grants.apply_grants(conn)  # taken back when the line goes
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            web.execute("INSERT INTO roles_new_table VALUES (2)")
    engine.dispose()


def test_edits_record_the_signed_in_person_as_revision_author(scratch_url: str) -> None:
    async def edit() -> tuple[str, str]:
        async with await psycopg.AsyncConnection.connect(scratch_url, autocommit=True) as conn:
            async with conn.transaction():
                await act_as(conn, "planner.li")
                await conn.execute(
                    "UPDATE redline SET name = name || ' (checked)' WHERE id = (SELECT min(id) FROM redline)"
                )
            cur = await conn.execute(
                "SELECT author, origin FROM layer_revision WHERE layer = 'redline' ORDER BY id DESC"
            )
            return await cur.fetchone()

    assert run_async(edit()) == ("planner.li", "sql")


def test_pgcluster_creates_the_roles_and_moves_a_cluster_of_the_old_layout() -> None:
    """scripts/pgcluster.sh on a cluster of its own: a new one gets the two roles, and one made by
    the old script (superuser ``ecomap`` with a known password, owning the data) is moved."""
    checkout = Path(tempfile.mkdtemp(prefix="pgc"))  # short: Unix socket paths are limited
    (checkout / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "pgcluster.sh", checkout / "scripts")
    port = str(free_port())
    env = {**os.environ, "ECOMAP_PG_PORT": port, "ECOMAP_PG_FSYNC": "off"}

    def pgcluster(*args: str) -> str:
        return subprocess.run(
            ["bash", str(checkout / "scripts" / "pgcluster.sh"), *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout

    data = None
    try:
        pgcluster("start")
        data = Path(pgcluster("status").rsplit("(", 1)[1].strip().rstrip(")")).parent
        assert stat.S_IMODE((checkout / ".data" / "pgpass").stat().st_mode) == 0o600
        superuser = f"host={data / 'sock'} port={port} user=ecomap"
        with psycopg.connect(superuser + " dbname=postgres", autocommit=True) as conn:  # the old layout
            conn.execute("ALTER ROLE ecomap PASSWORD 'ecomap'")
            conn.execute("CREATE DATABASE legacy")
        with psycopg.connect(superuser + " dbname=legacy", autocommit=True) as conn:
            conn.execute("CREATE TABLE old_table (id int)")
        pgcluster("start")
        with psycopg.connect(pgcluster("url", "legacy").strip()) as conn:
            assert conn.execute(
                "SELECT current_user, (SELECT tableowner FROM pg_tables WHERE tablename = 'old_table'),"
                " (SELECT datdba::regrole::text FROM pg_database WHERE datname = 'legacy')"
            ).fetchone() == ("ecomap_owner", "ecomap_owner", "ecomap_owner")
            assert conn.execute("SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'postgis'").fetchone()
        with psycopg.connect(pgcluster("web-url", "ecomap").strip()) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("ecomap_web",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"postgresql://ecomap:ecomap@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(["bash", str(checkout / "scripts" / "pgcluster.sh"), "stop"], env=env, capture_output=True)
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(checkout, ignore_errors=True)
