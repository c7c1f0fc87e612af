"""API keys (revocation at once on every worker, expiry), the append-only audit log and its API,
the ``ecomap users / keys / audit`` CLI, the demo accounts of ``ecomap setup``, and anonymous
access to the public endpoints unchanged."""

# ruff: noqa: F811 - the fixtures imported from test_access are used as parameters by name

from __future__ import annotations

import datetime as dt
import getpass
import re
import stat
from concurrent.futures import ThreadPoolExecutor

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from typer.testing import CliRunner

from gis_service.cli import app as cli_app
from tests.test_access import (
    SECRET,
    _forget_failed_sign_ins,  # noqa: F401 - autouse fixture: no test inherits another's failed sign-ins
    add_user,
    app_factory,  # noqa: F401 - the fixture starting apps
    bearer,
    first_chief,
    sign_in,
    unique,
    wait_for,
)


@pytest.fixture()
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> CliRunner:
    """The ``ecomap`` CLI on the test database (signing key file in a temporary directory)."""
    monkeypatch.setenv("ECOMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("ECOMAP_ACCESS__SECRET_KEY_FILE", str(tmp_path / "secret" / "access_secret_key"))
    monkeypatch.delenv("ECOMAP_ACCESS__SECRET_KEY", raising=False)
    return CliRunner()


def invoke(runner: CliRunner, *args: str, stdin: str | None = None, code: int = 0):
    """Run the CLI in a thread of its own: its asyncio.run() cannot run in the main thread, where
    the browser tests' Playwright leaves an event loop running."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(runner.invoke, cli_app, list(args), input=stdin).result()
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def test_key_revocation_holds_at_once_on_every_worker(app_factory, cli: CliRunner) -> None:
    one, two = app_factory(), app_factory()  # two apps: two workers, each with its own caches
    name = unique("zhangzhou")
    created = invoke(cli, "keys", "create", "--name", name, "--role", "partner", "--layers", "river,bay")
    key = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"ek_[A-Za-z0-9_-]{43}", key)
    headers = {"X-API-Key": key}
    for worker in (one, two):
        me = worker.get("/api/auth/me", headers=headers).json()
        assert (me["kind"], me["name"], me["layers"]) == ("partner", name, ["bay", "river"])
    invoke(cli, "keys", "revoke", name)
    for worker in (one, two):
        response = worker.get("/api/auth/me", headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["detail"] == f"the API key {name!r} has been revoked: ask an admin for a new key"
    listed = invoke(cli, "keys", "list").stdout
    line = next(row for row in listed.splitlines() if row.startswith(name))
    assert "\tpartner\tbay,river\t" in line and "revoked" in line and key[:10] in line


def test_keys_are_stored_hashed_and_expire(app_factory, cli: CliRunner, db) -> None:
    client = app_factory()
    name = unique("station")
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    key = invoke(cli, "keys", "create", "--name", name, "--role", "station", "--expires", expires).stdout.split()[-1]
    stored = db.execute("SELECT key_hash, prefix FROM api_key WHERE name = %s", [name]).fetchone()
    assert key.encode() not in bytes(stored[0]) and len(bytes(stored[0])) == 32 and key.startswith(stored[1])
    assert client.get("/api/auth/me", headers={"X-API-Key": key}).json()["kind"] == "station"
    wait_for(lambda: client.get("/api/auth/me", headers={"X-API-Key": key}).status_code == 401, what="key expiry")
    assert "has expired" in client.get("/api/auth/me", headers={"X-API-Key": key}).json()["detail"]
    unknown = client.get("/api/auth/me", headers={"X-API-Key": "ek_made-up"})
    assert unknown.status_code == 401 and "not known" in unknown.json()["detail"]


def test_key_creation_errors_are_clear(cli: CliRunner) -> None:
    result = invoke(cli, "keys", "create", "--name", unique("p"), "--role", "partner", code=2)
    assert "a partner key needs the layers it may read" in result.output
    result = invoke(cli, "keys", "create", "--name", unique("p"), "--role", "partner", "--layers", "rivers", code=2)
    assert "unknown layers rivers; valid layers:" in result.output
    result = invoke(cli, "keys", "create", "--name", unique("p"), "--role", "admin", code=2)
    assert "unknown key role 'admin'" in result.output
    result = invoke(cli, "keys", "create", "--name", unique("s"), "--role", "station", "--expires", "soon", code=2)
    assert "--expires must be a date" in result.output
    result = invoke(
        cli, "keys", "create", "--name", unique("s"), "--role", "station", "--expires", "2001-01-01", code=2
    )
    assert "is in the past" in result.output
    assert "no API key named" in invoke(cli, "keys", "revoke", unique("ghost"), code=1).output


def test_users_cli_add_list_disable_enable_set_role_reset(app_factory, cli: CliRunner, db) -> None:
    client = app_factory()
    login, password = unique("planner"), "a-long-password-2"
    out = invoke(cli, "users", "add", login, "--role", "planner", "--password-stdin", stdin=password + "\n").stdout
    assert f"account {login} created (role planner)" in out and password not in out
    assert f"{login}\tplanner\t-\tenabled" in invoke(cli, "users", "list").stdout
    sign_in(client, login, password)
    invoke(cli, "users", "disable", login)
    assert f"{login}\tplanner\t-\tDISABLED" in invoke(cli, "users", "list").stdout
    assert client.post("/api/auth/token", data={"username": login, "password": password}).status_code == 403
    invoke(cli, "users", "enable", login)
    sign_in(client, login, password)
    assert (
        "needs the id of its chief record" in invoke(cli, "users", "set-role", login, "--role", "chief", code=2).output
    )
    chief_id = first_chief(db)
    invoke(cli, "users", "set-role", login, "--role", "chief", "--chief", str(chief_id))
    me = client.get("/api/auth/me", headers=bearer(sign_in(client, login, password)["access_token"])).json()
    assert (me["role"], me["chief_id"]) == ("chief", chief_id)
    reset = invoke(cli, "users", "reset-password", login).stdout
    new_password = reset.strip().split()[-1]
    assert f"new password of {login} (shown once): {new_password}" in reset
    assert client.post("/api/auth/token", data={"username": login, "password": password}).status_code == 401
    sign_in(client, login, new_password)
    assert "unknown role 'boss'" in invoke(cli, "users", "add", unique("x"), "--role", "boss", code=2).output
    assert "at least 12 characters" in invoke(cli, "users", "add", unique("x"), "--role", "planner",
                                              "--password-stdin", stdin="short\n", code=2).output  # fmt: skip
    assert "is taken" in invoke(cli, "users", "add", login, "--role", "planner", "--password-stdin",
                                stdin=password + "\n", code=2).output  # fmt: skip
    assert "no account with login" in invoke(cli, "users", "disable", unique("ghost"), code=1).output


def test_every_audited_action_leaves_a_row(app_factory, cli: CliRunner, database_url: str, db) -> None:
    client = app_factory()
    start = db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]
    admin_login, admin_password = add_user(database_url, "admin")  # user.create by the test suite
    failed = client.post(
        "/api/auth/token", data={"username": admin_login, "password": "wrong-password"}, headers={"X-Request-ID": "r-1"}
    )
    assert failed.status_code == 401
    tokens = sign_in(client, admin_login, admin_password, **{"X-Request-ID": "r-2"})
    tokens = client.post("/api/auth/refresh", data={"refresh_token": tokens["refresh_token"]}).json()
    headers = bearer(tokens["access_token"])
    key_name, login = unique("station"), unique("analyst")
    assert (
        client.post("/api/admin/keys", json={"name": key_name, "role": "station"}, headers=headers).status_code == 201
    )
    assert client.delete(f"/api/admin/keys/{key_name}", headers=headers).status_code == 200
    body = {"login": login, "role": "analyst", "password": "a-long-password-3"}
    assert client.post("/api/admin/users", json=body, headers=headers).status_code == 201
    client.patch(f"/api/admin/users/{login}", json={"enabled": False}, headers=headers)
    client.patch(f"/api/admin/users/{login}", json={"role": "planner"}, headers=headers)
    invoke(cli, "users", "enable", login)
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    rows = db.execute(
        "SELECT actor, actor_kind, action, outcome, target, client_addr, request_id FROM audit_log"
        " WHERE id > %s AND (actor IN (%s, %s) OR target IN (%s, %s, %s)) ORDER BY id",
        [start, admin_login, "cli:" + getpass.getuser(), admin_login, login, key_name],
    ).fetchall()
    actions = [(r[0], r[2], r[3], r[4]) for r in rows]
    assert actions[:3] == [
        ("test-suite", "user.create", "success", admin_login),
        (admin_login, "auth.login", "failure", None),
        (admin_login, "auth.login", "success", None),
    ]
    assert (admin_login, "auth.refresh", "success", None) in actions
    for expected in (
        ("key.create", key_name),
        ("key.revoke", key_name),
        ("user.create", login),
        ("user.disable", login),
        ("user.set_role", login),
    ):
        assert (admin_login, *expected[:1], "success", expected[1]) in actions, expected
    assert any(r[1] == "cli" and r[2] == "user.enable" and r[4] == login for r in rows)
    assert actions[-1] == (admin_login, "auth.logout", "success", None)
    by_request = {r[6]: r for r in rows if r[6]}
    assert by_request["r-1"][3] == "failure" and by_request["r-2"][3] == "success"
    assert by_request["r-1"][5] == "testclient"  # the client address the server saw
    assert all(r[1] == "user" for r in rows if r[0] == admin_login)  # sign-ins name the account tried


def test_audit_log_refuses_update_delete_and_truncate(db) -> None:
    db.execute(
        "INSERT INTO audit_log (actor, actor_kind, action, outcome) VALUES ('probe', 'cli', 'probe.write', 'success')"
    )
    row_id = db.execute("SELECT max(id) FROM audit_log WHERE actor = 'probe'").fetchone()[0]
    for statement in (
        "UPDATE audit_log SET actor = 'someone else' WHERE id = %s",
        "DELETE FROM audit_log WHERE id = %s",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit_log is append-only"):
            db.execute(statement, [row_id] if "%s" in statement else None)
    assert db.execute("SELECT actor FROM audit_log WHERE id = %s", [row_id]).fetchone() == ("probe",)


def test_audit_api_filters_and_pages(app_factory, database_url: str) -> None:
    client = app_factory()
    admin_login, admin_password = add_user(database_url, "admin")
    target, target_password = add_user(database_url, "planner")
    for _ in range(3):
        client.post("/api/auth/token", data={"username": target, "password": "wrong-password"})
    sign_in(client, target, target_password)
    headers = bearer(sign_in(client, admin_login, admin_password)["access_token"])
    everything = client.get("/api/audit", params={"actor": target, "action": "auth.login"}, headers=headers).json()
    assert [e["outcome"] for e in everything["entries"]] == ["success", "failure", "failure", "failure"]
    assert everything["next"] is None
    seen, url, params = [], "/api/audit", {"actor": target, "limit": 2}
    while url:
        page = client.get(url, params=params, headers=headers).json()
        seen += [e["id"] for e in page["entries"]]
        url, params = page["next"], None
    assert seen == [e["id"] for e in everything["entries"]]
    later = client.get(
        "/api/audit", params={"actor": target, "since": everything["entries"][0]["at"]}, headers=headers
    ).json()
    assert [e["id"] for e in later["entries"]] == [everything["entries"][0]["id"]]
    earlier = client.get(
        "/api/audit", params={"actor": target, "until": everything["entries"][0]["at"]}, headers=headers
    ).json()
    assert [e["id"] for e in earlier["entries"]] == [e["id"] for e in everything["entries"][1:]]
    bad = client.get("/api/audit", params={"since": "yesterday"}, headers=headers)
    assert bad.status_code == 400 and "since" in bad.json()["detail"]


def test_audit_cli_lists_and_filters(cli: CliRunner, app_factory, database_url: str) -> None:
    client = app_factory()
    login, _ = add_user(database_url, "planner")
    client.post("/api/auth/token", data={"username": login, "password": "wrong-password"})
    lines = invoke(cli, "audit", "--actor", login).stdout.strip().splitlines()
    assert len(lines) == 1 and "\tauth.login\tfailure\ttestclient" in lines[0] and lines[0].split("\t")[1] == login
    import json

    (entry,) = [json.loads(line) for line in invoke(cli, "audit", "--actor", login, "--json").stdout.splitlines()]
    assert entry["detail"] == {"reason": "wrong login or password"}


def test_setup_creates_the_signing_key_and_one_demo_account_per_role(app_factory, cli: CliRunner, db, tmp_path) -> None:
    db.execute("DELETE FROM auth_session WHERE account_id IN (SELECT id FROM account WHERE login LIKE 'demo-%%')")
    db.execute("DELETE FROM account WHERE login LIKE 'demo-%%'")
    out = invoke(cli, "setup").stdout
    key_file = tmp_path / "secret" / "access_secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) >= 32
    assert key_file.read_text().strip() not in out
    created = dict(re.findall(r"^  (demo-[a-z-]+)\s+[a-z_]+\s+(\S+)$", out, flags=re.M))
    assert set(created) == {"demo-planner", "demo-chief", "demo-analyst", "demo-data-manager", "demo-admin"}
    roles = dict(db.execute("SELECT login, role FROM account WHERE login LIKE 'demo-%%'").fetchall())
    assert roles == {
        "demo-planner": "planner",
        "demo-chief": "chief",
        "demo-analyst": "analyst",
        "demo-data-manager": "data_manager",
        "demo-admin": "admin",
    }
    assert len(set(created.values())) == 5  # random, not one shared password
    client = app_factory()
    me = client.get(
        "/api/auth/me", headers=bearer(sign_in(client, "demo-chief", created["demo-chief"])["access_token"])
    )
    assert me.json()["chief_id"] == first_chief(db)
    db.execute("UPDATE account SET chief_id = -1 WHERE login = 'demo-chief'")  # as if the chiefs were replaced
    again = invoke(cli, "setup").stdout
    assert "demo accounts created" not in again and "signing key generated" not in again
    assert db.execute("SELECT chief_id FROM account WHERE login = 'demo-chief'").fetchone() == (first_chief(db),)


def test_no_demo_accounts_without_the_demo_dataset(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from gis_service.cli_access import ensure_demo_accounts
    from layers import db as layer_db
    from tests.conftest import recreate_database, scratch_database_name

    url = recreate_database(scratch_database_name("access_empty"))
    layer_db.upgrade(url)
    monkeypatch.setenv("ECOMAP_DATABASE_URL", url)
    with ThreadPoolExecutor(1) as pool:  # its asyncio.run() cannot run in the main thread (see invoke)
        pool.submit(ensure_demo_accounts).result()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM account").fetchone() == (0,)


def test_anonymous_public_endpoints_are_unchanged(app_factory, db) -> None:
    client = app_factory()
    lon, lat = db.execute("SELECT ST_X(geom), ST_Y(geom) FROM station ORDER BY id LIMIT 1").fetchone()
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 12)
    response = client.get(f"/tiles/station/12/{tile.x}/{tile.y}.pbf")
    assert response.status_code == 200 and "private" not in response.headers.get("cache-control", "")
    features = mapbox_vector_tile.decode(response.content)["station"]["features"]
    assert features
    items = client.get("/ogc/collections/station/items", params={"limit": 5})
    assert items.status_code == 200 and len(items.json()["features"]) == 5
    assert client.get("/api/layers").status_code == 200
    assert client.get("/api/auth/me").json()["kind"] == "anonymous"
    # credentials that are present but invalid are refused on tiles too (phase 2), never anonymous
    with_junk = client.get(f"/tiles/station/12/{tile.x}/{tile.y}.pbf", headers={"Authorization": "Bearer junk"})
    assert with_junk.status_code == 401 and with_junk.headers["WWW-Authenticate"].startswith("Bearer")


def test_signing_key_file_must_be_private(app_factory, tmp_path, database_url: str) -> None:
    from gis_service import create_app
    from gis_service.access.secrets_file import SecretKeyError, signing_key
    from gis_service.settings import AccessSettings
    from tests.conftest import make_settings

    path = tmp_path / "key"
    path.write_text("k" * 40)
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="readable by others"):
        signing_key(AccessSettings(secret_key_file=path))
    path.chmod(0o600)
    assert signing_key(AccessSettings(secret_key_file=path)) == b"k" * 40
    assert signing_key(AccessSettings(secret_key=SECRET)) == SECRET.encode()
    with pytest.raises(SecretKeyError, match="ECOMAP_ACCESS__SECRET_KEY is shorter than 32") as refused:
        signing_key(AccessSettings(secret_key="too-short-secret"))
    assert "too-short-secret" not in str(refused.value)
    made = tmp_path / "made" / "key"
    assert len(signing_key(AccessSettings(secret_key_file=made))) >= 32
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert create_app(make_settings(database_url, access=AccessSettings(secret_key_file=made)))
