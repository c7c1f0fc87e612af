"""Identity and access: sign-in, throttling, tokens (expiry, refresh rotation, sign-out), browser
cookies with CSRF, ``/api/auth/me`` for every kind of principal, admin routes — against the real
PostgreSQL of the suite, through the real app."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.access import admin
from gis_service.access.audit import AuditContext
from gis_service.settings import AccessSettings
from tests.conftest import make_settings, run_async

SECRET = "test-signing-key-" + "x" * 40
TEST_CONTEXT = AuditContext("test-suite", "cli")


def access_settings(**overrides: Any) -> AccessSettings:
    return AccessSettings(secret_key=SECRET, **overrides)


def make_client(database_url: str, **overrides: Any) -> TestClient:
    """A client of a fresh app (a worker of its own) with the given access settings."""
    settings = make_settings(database_url, access=access_settings(**overrides))
    return TestClient(create_app(settings))


@pytest.fixture()
def app_factory(database_url: str) -> Iterator[Callable[..., TestClient]]:
    """Start apps (lifespan running) with access settings of the test's choosing."""
    started: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        client = make_client(database_url, **overrides)
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _forget_failed_sign_ins(db: psycopg.Connection) -> None:
    """Each test starts with no throttled login or address (all test clients share one address)."""
    db.execute("DELETE FROM login_throttle")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def add_user(database_url: str, role: str, chief_id: int | None = None) -> tuple[str, str]:
    """Create an account through the service (as the CLI does); returns its login and password."""
    login, password = unique(role.replace("_", "-")), "pw-" + uuid.uuid4().hex

    async def create() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await admin.add_user(conn, TEST_CONTEXT, login, role, password, chief_id)

    run_async(create())
    return login, password


def sign_in(client: TestClient, login: str, password: str, **headers: str) -> dict:
    response = client.post("/api/auth/token", data={"username": login, "password": password}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def first_chief(db: psycopg.Connection) -> int:
    return db.execute("SELECT min(id) FROM chief").fetchone()[0]


def test_sign_in_issues_a_signed_short_lived_token(app_factory, database_url: str) -> None:
    import jwt

    client = app_factory(access_token_ttl_s=600)
    login, password = add_user(database_url, "planner")
    body = sign_in(client, login.upper(), password)  # logins are case-insensitive
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 600 and body["refresh_token"]
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], issuer="ecomap")
    assert claims["sub"] == login and claims["role"] == "planner" and claims["chief"] is None
    assert claims["exp"] - claims["iat"] == 600 and len(claims["jti"]) == 32 and "csrf" not in claims
    me = client.get("/api/auth/me", headers=bearer(body["access_token"])).json()
    assert me == {"kind": "user", "name": login, "role": "planner", "chief_id": None, "layers": [], "method": "bearer"}


def test_a_forged_or_malformed_token_is_refused(app_factory, database_url: str) -> None:
    import jwt

    client = app_factory()
    login, password = add_user(database_url, "admin")
    token = sign_in(client, login, password)["access_token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    forged = jwt.encode(claims, "another-key-" + "y" * 40, algorithm="HS256")
    for headers in (bearer(forged), bearer("not.a.token"), {"Authorization": f"Basic {token}"}):
        response = client.get("/api/auth/me", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in response.json()["detail"] or "Bearer" in response.json()["detail"]


def test_wrong_password_and_unknown_login_get_the_same_answer(app_factory, database_url: str) -> None:
    client = app_factory()
    login, _ = add_user(database_url, "analyst")
    wrong = client.post("/api/auth/token", data={"username": login, "password": "not-the-password"})
    unknown = client.post("/api/auth/token", data={"username": unique("nobody"), "password": "whatever-password"})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == {"detail": "wrong login or password"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    missing = client.post("/api/auth/token", data={"username": login})
    assert missing.status_code == 400 and "password" in missing.json()["detail"]


def test_disabled_account_is_refused_and_its_sessions_end(app_factory, database_url: str) -> None:
    client = app_factory(token_cache_s=0)
    login, password = add_user(database_url, "planner")
    tokens = sign_in(client, login, password)

    async def disable() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await admin.set_enabled(conn, TEST_CONTEXT, login, False)

    run_async(disable())
    response = client.post("/api/auth/token", data={"username": login, "password": password})
    assert response.status_code == 403
    assert response.json()["detail"] == f"the account {login!r} is disabled: ask an administrator to enable it"
    assert client.get("/api/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
    refreshed = client.post("/api/auth/refresh", data={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401 and "session has ended" in refreshed.json()["detail"]


def test_repeated_failures_lock_the_login_with_retry_after(app_factory, database_url: str, db) -> None:
    client = app_factory(login_max_failures=3, lockout_base_s=60, address_max_failures=100)
    login, password = add_user(database_url, "planner")
    for _ in range(3):
        assert client.post("/api/auth/token", data={"username": login, "password": "wrong-guess!"}).status_code == 401
    locked = client.post("/api/auth/token", data={"username": login, "password": password})  # even the right one
    assert locked.status_code == 429, locked.text
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    assert locked.json()["detail"].startswith("too many failed sign-ins for this login: try again in")
    # another login from the same address still signs in
    other, other_password = add_user(database_url, "planner")
    sign_in(client, other, other_password)
    refused = db.execute(
        "SELECT outcome, detail->>'reason' FROM audit_log WHERE actor = %s ORDER BY id", [login]
    ).fetchall()
    assert refused == [("failure", "wrong login or password")] * 3 + [("refused", "throttled")]


def test_back_off_doubles_with_each_failure_after_a_lock(app_factory, database_url: str, db) -> None:
    client = app_factory(login_max_failures=2, lockout_base_s=0.5, address_max_failures=100)
    login, _ = add_user(database_url, "planner")

    def attempt() -> int:
        return client.post("/api/auth/token", data={"username": login, "password": "wrong-guess!"}).status_code

    assert [attempt(), attempt()] == [401, 401]

    def lock_seconds() -> float:
        return db.execute(
            "SELECT extract(epoch FROM locked_until - last_failure_at) FROM login_throttle WHERE key = %s",
            [f"login:{login}"],
        ).fetchone()[0]

    assert float(lock_seconds()) == 0.5
    assert attempt() == 429
    wait_for(lambda: attempt() == 401, what="the lock to pass")  # the third failure locks for twice as long
    assert float(lock_seconds()) == 1.0


def test_failures_from_one_address_lock_it_for_every_login(app_factory, database_url: str) -> None:
    client = app_factory(login_max_failures=100, address_max_failures=2, lockout_base_s=30)
    for _ in range(2):
        client.post("/api/auth/token", data={"username": unique("guess"), "password": "wrong-guess!"})
    login, password = add_user(database_url, "planner")
    locked = client.post("/api/auth/token", data={"username": login, "password": password})
    assert locked.status_code == 429
    assert "this client address" in locked.json()["detail"] and int(locked.headers["Retry-After"]) >= 1


def test_a_token_expires(app_factory, database_url: str) -> None:
    # 4 s: long enough for the first request to come before expiry on a loaded machine.
    client = app_factory(access_token_ttl_s=4)
    login, password = add_user(database_url, "analyst")
    token = sign_in(client, login, password)["access_token"]
    assert client.get("/api/auth/me", headers=bearer(token)).json()["name"] == login
    wait_for(
        lambda: client.get("/api/auth/me", headers=bearer(token)).status_code == 401, timeout=30, what="token expiry"
    )
    response = client.get("/api/auth/me", headers=bearer(token))
    assert "expired" in response.json()["detail"] and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(app_factory, database_url: str) -> None:
    client = app_factory(token_cache_s=0, refresh_reuse_grace_s=0)
    login, password = add_user(database_url, "planner")
    first = sign_in(client, login, password)
    second = client.post("/api/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert client.get("/api/auth/me", headers=bearer(second["access_token"])).json()["name"] == login
    reused = client.post("/api/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and "already used" in reused.json()["detail"]
    # the reuse revoked the session: the newer tokens die with it
    assert client.post("/api/auth/refresh", data={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.get("/api/auth/me", headers=bearer(second["access_token"])).status_code == 401
    unknown = client.post("/api/auth/refresh", data={"refresh_token": "made-up"})
    assert unknown.status_code == 401 and "not known" in unknown.json()["detail"]


def test_two_tabs_renewing_at_once_keep_the_session(app_factory, database_url: str, db) -> None:
    """Two tabs of one browser send the same refresh cookie at the same moment: within the grace
    period the second gets a pair of its own and the session lives on (audited as such)."""
    client = app_factory(token_cache_s=0)  # default grace: 10 s
    login, password = add_user(database_url, "planner")
    first = sign_in(client, login, password)
    tabs = [client.post("/api/auth/refresh", data={"refresh_token": first["refresh_token"]}) for _ in range(2)]
    assert [tab.status_code for tab in tabs] == [200, 200], [tab.text for tab in tabs]
    a, b = (tab.json() for tab in tabs)
    assert a["refresh_token"] != b["refresh_token"]
    for pair in (a, b):  # both tabs stay signed in, and each can renew again
        assert client.get("/api/auth/me", headers=bearer(pair["access_token"])).json()["name"] == login
        assert client.post("/api/auth/refresh", data={"refresh_token": pair["refresh_token"]}).status_code == 200
    reuses = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.refresh' AND actor = %s AND detail->>'reuse' IS NOT NULL",
        [login],
    ).fetchone()[0]
    assert reuses == 1


def test_logout_revokes_the_session_on_this_and_other_workers(app_factory, database_url: str) -> None:
    worker = app_factory()  # caches verified tokens for the default 10 s
    other = app_factory(token_cache_s=0)
    login, password = add_user(database_url, "data_manager")
    tokens = sign_in(worker, login, password)
    headers = bearer(tokens["access_token"])
    assert worker.get("/api/auth/me", headers=headers).status_code == 200  # now cached on this worker
    assert worker.post("/api/auth/logout", headers=headers).status_code == 204
    assert worker.get("/api/auth/me", headers=headers).status_code == 401
    assert other.get("/api/auth/me", headers=headers).status_code == 401
    assert worker.post("/api/auth/refresh", data={"refresh_token": tokens["refresh_token"]}).status_code == 401
    anonymous = worker.post("/api/auth/logout")
    assert anonymous.status_code == 400 and "signed-in user" in anonymous.json()["detail"]


def _set_cookies(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_browser_session_uses_httponly_cookies_and_csrf_for_writes(app_factory, database_url: str) -> None:
    client = app_factory()
    login, password = add_user(database_url, "planner")
    signed = client.post("/api/auth/session", data={"username": login, "password": password})
    assert signed.status_code == 200, signed.text
    csrf = signed.json()["csrf_token"]
    cookies = _set_cookies(signed)
    session, refresh, csrf_cookie = cookies["ecomap_session"], cookies["ecomap_refresh"], cookies["ecomap_csrf"]
    assert "HttpOnly" in session and "SameSite=lax" in session and "Secure" not in session  # plain http here
    assert "HttpOnly" in refresh and "Path=/api/auth" in refresh and "SameSite=strict" in refresh
    assert "HttpOnly" not in csrf_cookie and f"ecomap_csrf={csrf}" in csrf_cookie
    me = client.get("/api/auth/me").json()
    assert me["name"] == login and me["method"] == "cookie"

    no_token = client.post("/api/auth/logout")
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
    wrong = client.post("/api/auth/logout", headers={"X-CSRF-Token": "guessed"})
    assert wrong.status_code == 403
    refresh_without = client.post("/api/auth/refresh")
    assert refresh_without.status_code == 403 and "CSRF" in refresh_without.json()["detail"]
    refreshed = client.post("/api/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert refreshed.status_code == 200, refreshed.text
    new_csrf = client.cookies.get("ecomap_csrf")
    assert new_csrf and new_csrf != csrf
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 403  # the old one
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": new_csrf}).status_code == 204
    assert client.get("/api/auth/me").json()["kind"] == "anonymous"  # the cookies were cleared


def test_cookies_are_secure_over_https_or_when_configured(app_factory, database_url: str) -> None:
    login, password = add_user(database_url, "planner")
    form = {"username": login, "password": password}
    over_https = app_factory()
    over_https.base_url = "https://testserver"
    response = over_https.post("https://testserver/api/auth/session", data=form)
    assert all("Secure" in cookie for cookie in _set_cookies(response).values())
    forced = app_factory(cookie_secure=True)
    response = forced.post("/api/auth/session", data=form)
    assert all("Secure" in cookie for cookie in _set_cookies(response).values())


def test_me_for_every_kind_of_principal(app_factory, database_url: str, db) -> None:
    client = app_factory()
    assert client.get("/api/auth/me").json() == {
        "kind": "anonymous",
        "name": None,
        "role": None,
        "chief_id": None,
        "layers": [],
        "method": "none",
    }
    chief_id = first_chief(db)
    login, password = add_user(database_url, "chief", chief_id)
    me = client.get("/api/auth/me", headers=bearer(sign_in(client, login, password)["access_token"])).json()
    assert (me["kind"], me["role"], me["chief_id"]) == ("user", "chief", chief_id)
    admin_login, admin_password = add_user(database_url, "admin")
    admin_headers = bearer(sign_in(client, admin_login, admin_password)["access_token"])
    for role, layers in (("station", []), ("partner", ["river", "bay"])):
        created = client.post(
            "/api/admin/keys", json={"name": unique(role), "role": role, "layers": layers}, headers=admin_headers
        )
        assert created.status_code == 201, created.text
        me = client.get("/api/auth/me", headers={"X-API-Key": created.json()["key"]}).json()
        assert me == {
            "kind": role,
            "name": created.json()["name"],
            "role": role,
            "chief_id": None,
            "layers": sorted(layers),
            "method": "api_key",
        }


def test_admin_routes_answer_401_anonymous_and_403_other_roles(app_factory, database_url: str) -> None:
    client = app_factory()
    anonymous = client.get("/api/admin/users")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert "sign in" in anonymous.json()["detail"]
    for role in ("planner", "analyst", "data_manager"):
        login, password = add_user(database_url, role)
        headers = bearer(sign_in(client, login, password)["access_token"])
        for method, path in (("GET", "/api/admin/users"), ("GET", "/api/admin/keys"), ("GET", "/api/audit")):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 403, (role, path, response.text)
            assert f"not allowed for {login} (role {role}); it needs: admin" in response.json()["detail"]


def test_admin_creates_disables_and_re_roles_users_over_http(app_factory, database_url: str, db) -> None:
    client = app_factory()
    admin_login, admin_password = add_user(database_url, "admin")
    headers = bearer(sign_in(client, admin_login, admin_password)["access_token"])
    login, password = unique("analyst"), "a-long-password-1"
    created = client.post(
        "/api/admin/users", json={"login": login, "role": "analyst", "password": password}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "analyst" and created.json()["enabled"] is True
    assert login in {u["login"] for u in client.get("/api/admin/users", headers=headers).json()}
    duplicate = client.post(
        "/api/admin/users", json={"login": login, "role": "analyst", "password": password}, headers=headers
    )
    assert duplicate.status_code == 400 and "taken" in duplicate.json()["detail"]
    no_chief = client.patch(f"/api/admin/users/{login}", json={"role": "chief"}, headers=headers)
    assert no_chief.status_code == 400 and "chief record" in no_chief.json()["detail"]
    bad_chief = client.patch(f"/api/admin/users/{login}", json={"role": "chief", "chief_id": -5}, headers=headers)
    assert bad_chief.status_code == 400 and "no chief with id -5" in bad_chief.json()["detail"]
    chief_id = first_chief(db)
    rerole = client.patch(f"/api/admin/users/{login}", json={"role": "chief", "chief_id": chief_id}, headers=headers)
    assert rerole.status_code == 200 and rerole.json()["chief_id"] == chief_id
    disabled = client.patch(f"/api/admin/users/{login}", json={"enabled": False}, headers=headers)
    assert disabled.json()["enabled"] is False
    assert client.post("/api/auth/token", data={"username": login, "password": password}).status_code == 403
    short = client.post(
        "/api/admin/users", json={"login": unique("x"), "role": "planner", "password": "short"}, headers=headers
    )
    assert short.status_code == 400 and "password" in short.json()["detail"]
    missing = client.patch(f"/api/admin/users/{unique('ghost')}", json={"enabled": True}, headers=headers)
    assert missing.status_code == 404 and "no account" in missing.json()["detail"]


def test_cross_site_requests_are_refused_by_origin(app_factory, database_url: str) -> None:
    client = app_factory()
    login, password = add_user(database_url, "planner")
    form = {"username": login, "password": password}
    evil = {"Origin": "https://evil.example"}
    refused = client.post("/api/auth/session", data=form, headers=evil)
    assert refused.status_code == 403 and "Origin 'https://evil.example' is not this service" in refused.text
    assert "set-cookie" not in refused.headers
    signed = client.post("/api/auth/session", data=form, headers={"Origin": "http://testserver"})
    assert signed.status_code == 200, signed.text
    csrf = signed.json()["csrf_token"]
    assert client.post("/api/auth/logout", headers={**evil, "X-CSRF-Token": csrf}).status_code == 403
    assert client.post("/api/auth/refresh", headers={**evil, "X-CSRF-Token": csrf}).status_code == 403
    assert client.get("/api/auth/me").json()["name"] == login  # still signed in
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204


def test_an_admin_cannot_lock_themselves_out(app_factory, database_url: str) -> None:
    client = app_factory()
    login, password = add_user(database_url, "admin")
    headers = bearer(sign_in(client, login, password)["access_token"])
    for change in ({"enabled": False}, {"role": "planner"}):
        response = client.patch(f"/api/admin/users/{login}", json=change, headers=headers)
        assert response.status_code == 400 and "your own account" in response.json()["detail"]
    assert client.get("/api/admin/users", headers=headers).status_code == 200


def test_a_verified_token_is_reused_until_an_access_change_is_notified(app_factory, database_url: str, db) -> None:
    cached = app_factory(token_cache_s=3600)
    other = app_factory(token_cache_s=3600)  # another worker holding the same token
    uncached = app_factory(token_cache_s=0)
    login, password = add_user(database_url, "analyst")
    headers = bearer(sign_in(cached, login, password)["access_token"])
    for worker in (cached, other):
        assert worker.get("/api/auth/me", headers=headers).status_code == 200  # verified once, now cached
    revoke = "UPDATE auth_session SET revoked_at = now() WHERE account_id = (SELECT id FROM account WHERE login = %s)"
    with db.transaction():  # a change the triggers do not see (disabled by the owner): nothing is notified
        db.execute("ALTER TABLE auth_session DISABLE TRIGGER USER")
        db.execute(revoke, [login])
        db.execute("ALTER TABLE auth_session ENABLE TRIGGER USER")
    assert cached.get("/api/auth/me", headers=headers).status_code == 200  # no database round trip
    assert uncached.get("/api/auth/me", headers=headers).status_code == 401  # checks the session every time
    db.execute(
        "UPDATE auth_session SET revoked_at = NULL WHERE account_id = (SELECT id FROM account WHERE login = %s)",
        [login],
    )
    db.execute(revoke, [login])  # notified (ecomap_access_changed): every worker drops what it cached
    for worker in (cached, other):
        wait_for(lambda w=worker: w.get("/api/auth/me", headers=headers).status_code == 401, 2.0, "revocation")


def test_nul_bytes_and_garbage_get_4xx_not_500(app_factory, database_url: str, db) -> None:
    client = app_factory()
    for username in ("a\x00b", "x" * 5000):
        response = client.post("/api/auth/token", data={"username": username, "password": "whatever-password"})
        assert response.status_code == 401, response.text
    recorded = db.execute("SELECT actor FROM audit_log WHERE actor LIKE %s ORDER BY id DESC LIMIT 1", ["'a\\\\x00b'"])
    assert recorded.fetchone() == ("'a\\x00b'",)  # escaped, not dropped
    login, password = add_user(database_url, "admin")
    headers = bearer(sign_in(client, login, password)["access_token"])
    for refused in (
        client.patch("/api/admin/users/a%00b", json={"enabled": True}, headers=headers),
        client.delete("/api/admin/keys/a%00b", headers=headers),
    ):  # a NUL in the path is refused before any route runs (errors.RequestGuard)
        assert refused.status_code == 400 and "NUL" in refused.json()["detail"], refused.text
    assert client.get("/api/audit", params={"actor": "a\x00b"}, headers=headers).status_code == 400


def test_tiles_follow_sign_in_and_sign_out_on_the_fast_path(app_factory, database_url: str, db) -> None:
    """A plain tile request is answered by the fast path (gis_service/fastpath.py), which finds
    verified credentials in the token cache: the caller's view while signed in (the station
    layer's internal ``operator`` property), 401 as soon as the session ends — by bearer token
    and by browser cookie alike, never the anonymous tile."""
    client = app_factory(token_cache_s=3600)
    lon, lat = db.execute("SELECT ST_X(geom), ST_Y(geom) FROM station WHERE operator IS NOT NULL LIMIT 1").fetchone()
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 14)
    url = f"/tiles/station/14/{tile.x}/{tile.y}.pbf"

    def operators(response) -> set[str]:
        assert response.status_code == 200, response.text
        features = mapbox_vector_tile.decode(response.content)["station"]["features"]
        return {str(f["properties"].get("operator")) for f in features}

    assert operators(client.get(url)) == {"None"}  # anonymous: internal property left out
    login, password = add_user(database_url, "planner")
    headers = bearer(sign_in(client, login, password)["access_token"])
    for _ in range(2):  # verified once, then from the token cache
        response = client.get(url, headers=headers)
        assert "None" not in operators(response) and "private" in response.headers["cache-control"]
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    ended = client.get(url, headers=headers)
    assert ended.status_code == 401 and ended.headers["WWW-Authenticate"].startswith("Bearer")

    signed = client.post("/api/auth/session", data={"username": login, "password": password})
    session = signed.cookies["ecomap_session"]
    for _ in range(2):  # the client sends the cookies it was given
        assert "None" not in operators(client.get(url))
    csrf = signed.json()["csrf_token"]
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("ecomap_session", session)  # the ended session's cookie, sent again
    assert client.get(url).status_code == 401
