"""Single sign-on against a real OpenID provider (tests/oidc: the `oidc-provider` package).

The suite starts the provider; these tests drive its login and consent pages over HTTP and
the service's /api/auth/sso routes through the app, and check the session, the account link,
the role mapping, every refusal (with its reason) and the audit rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.settings import OidcSettings, Settings
from tests.conftest import demo_database, free_port, scratch_database_name
from tests.oidc.harness import OidcTestProvider, sign_in_at_provider, start_provider

CALLBACK = "http://127.0.0.1/api/auth/sso/callback"  # what the app derives behind TestClient (host testserver)


@pytest.fixture(scope="module")
def sso_database() -> str:
    return demo_database(scratch_database_name("sso"))


@pytest.fixture(scope="module")
def chief_id(sso_database: str) -> int:
    with psycopg.connect(sso_database) as conn:
        return conn.execute("SELECT min(id) FROM chief").fetchone()[0]


@pytest.fixture(scope="module")
def provider(chief_id: int) -> Iterator[OidcTestProvider]:
    users = {
        "sso-planner": {"role": "planner", "name": "Planner"},
        "sso-chief": {"role": "chief", "chief_id": chief_id},
        "sso-chief-without-record": {"role": "chief"},
        "sso-hezhang": {"role": ["staff", "hezhang"], "chief_id": str(chief_id)},
        "sso-intern": {"role": "intern"},
        "sso-no-role": {},
        "Not A Login!": {"role": "analyst"},
    }
    with start_provider(free_port(), [CALLBACK], users) as running:
        yield running


@pytest.fixture()
def make_client(sso_database: str, provider: OidcTestProvider) -> Iterator[Callable[..., TestClient]]:
    started: list[TestClient] = []

    def make(**oidc: object) -> TestClient:
        base = {
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            "timeout_s": 30,  # a loaded test machine
        }
        settings = Settings(database_url=sso_database, oidc=OidcSettings(**{**base, **oidc}))
        client = TestClient(create_app(settings))
        client.__enter__()
        started.append(client)
        return client

    yield make
    for client in started:
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture()
def db(sso_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(sso_database, autocommit=True) as conn:
        yield conn


def start(client: TestClient, **params: str) -> str:
    """GET /api/auth/sso/login: the provider's authorization URL (the flow cookie is kept by the client)."""
    response = client.get("/api/auth/sso/login", params=params, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def callback(client: TestClient, query: dict[str, str], **headers: str):
    return client.get("/api/auth/sso/callback", params=query, headers=headers, follow_redirects=False)


def round_trip(client: TestClient, login: str, **params: str):
    return callback(client, sign_in_at_provider(start(client, **params), login))


def last_sso_audit(db: psycopg.Connection) -> tuple:
    return db.execute(
        "SELECT actor, outcome, detail FROM audit_log WHERE action = 'auth.login' AND detail->>'method' = 'sso'"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()


def test_login_redirects_to_the_provider_with_pkce_state_and_nonce(
    client: TestClient, provider: OidcTestProvider
) -> None:
    response = client.get("/api/auth/sso/login", follow_redirects=False)
    assert response.status_code == 302
    url = urlsplit(response.headers["location"])
    assert f"{url.scheme}://{url.netloc}" == provider.issuer and url.path == "/auth"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == provider.client_id
    assert query["redirect_uri"] == CALLBACK and "openid" in query["scope"].split()
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43  # base64url SHA-256
    assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("ecomap_sso=") and "HttpOnly" in cookie and "Path=/api/auth/sso" in cookie
    assert "Max-Age=600" in cookie and "SameSite=lax" in cookie
    assert query["code_challenge"] not in cookie  # the verifier is kept, never the challenge (it is signed)


def test_round_trip_signs_in_with_the_mapped_role_and_a_linked_account(
    client: TestClient, db: psycopg.Connection, provider: OidcTestProvider
) -> None:
    response = round_trip(client, "sso-planner")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("ecomap_session=") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("ecomap_csrf=") for c in cookies)
    me = client.get("/api/auth/me").json()
    assert me == {
        "kind": "user",
        "name": "sso-planner",
        "role": "planner",
        "chief_id": None,
        "layers": [],
        "method": "cookie",
    }
    actor, outcome, detail = last_sso_audit(db)
    assert (actor, outcome, detail["issuer"], detail["subject"]) == (
        "sso-planner",
        "success",
        provider.issuer,
        "sso-planner",
    )
    # A second sign-on is the same account, linked by (issuer, subject), never a new one.
    assert round_trip(client, "sso-planner").status_code == 303
    rows = db.execute(
        "SELECT a.login, a.role FROM account_identity i JOIN account a ON a.id = i.account_id"
        " WHERE i.issuer = %s AND i.subject = 'sso-planner'",
        [provider.issuer],
    ).fetchall()
    assert rows == [("sso-planner", "planner")]
    # The account made by single sign-on has no password.
    refused = client.post("/api/auth/token", data={"username": "sso-planner", "password": "!sso"})
    assert refused.status_code == 401


def test_a_chief_gets_the_chief_record_of_the_claim(client: TestClient, chief_id: int) -> None:
    assert round_trip(client, "sso-chief").status_code == 303
    me = client.get("/api/auth/me").json()
    assert (me["role"], me["chief_id"]) == ("chief", chief_id)


def test_role_map_maps_provider_role_names_and_lists(make_client, chief_id: int) -> None:
    client = make_client(role_map={"hezhang": "chief"})
    assert round_trip(client, "sso-hezhang").status_code == 303
    me = client.get("/api/auth/me").json()
    assert (me["role"], me["chief_id"]) == ("chief", chief_id)


def test_a_login_name_the_service_cannot_use_gets_a_derived_one(client: TestClient) -> None:
    assert round_trip(client, "Not A Login!").status_code == 303
    me = client.get("/api/auth/me").json()
    assert me["role"] == "analyst" and me["name"].startswith("sso-") and len(me["name"]) == 16


def test_next_returns_to_a_path_on_this_site_only(client: TestClient) -> None:
    assert round_trip(client, "sso-planner", next="/#lang=en").headers["location"] == "/#lang=en"
    assert round_trip(client, "sso-planner", next="https://evil.example/").headers["location"] == "/"
    assert round_trip(client, "sso-planner", next="//evil.example/").headers["location"] == "/"


@pytest.mark.parametrize(
    ("login", "needle"),
    [
        ("sso-intern", "no EcoMap role in the claim 'role' (values: 'intern')"),
        ("sso-no-role", "(values: none)"),
        ("sso-chief-without-record", "names no chief record"),
    ],
)
def test_no_usable_role_is_refused_with_the_reason(
    client: TestClient, db: psycopg.Connection, login: str, needle: str
) -> None:
    response = round_trip(client, login)
    assert response.status_code == 403, response.text
    assert needle in response.json()["detail"]
    assert "ecomap_session" not in response.headers.get("set-cookie", "")
    assert client.get("/api/auth/me").json()["kind"] == "anonymous"
    actor, outcome, detail = last_sso_audit(db)
    assert (actor, outcome, detail["subject"]) == (login, "refused", login) and needle in detail["reason"]


def test_a_disabled_account_is_refused(client: TestClient, db: psycopg.Connection) -> None:
    assert round_trip(client, "sso-chief").status_code == 303
    db.execute("UPDATE account SET enabled = false WHERE login = 'sso-chief'")
    try:
        response = round_trip(client, "sso-chief")
        assert response.status_code == 403 and "is disabled" in response.json()["detail"]
    finally:
        db.execute("UPDATE account SET enabled = true WHERE login = 'sso-chief'")


def test_denied_consent_answers_403(client: TestClient, db: psycopg.Connection) -> None:
    query = sign_in_at_provider(start(client), "sso-planner", consent=False)
    assert query["error"] == "access_denied"
    response = callback(client, query)
    assert response.status_code == 403
    assert "did not sign you in (access_denied" in response.json()["detail"]
    assert last_sso_audit(db)[1:] == ("refused", {"method": "sso", "reason": response.json()["detail"]})


def test_a_state_that_does_not_match_is_refused(client: TestClient, db: psycopg.Connection) -> None:
    query = sign_in_at_provider(start(client), "sso-planner")
    response = callback(client, {**query, "state": "forged-" + query["state"]})
    assert response.status_code == 400 and "state does not match" in response.json()["detail"]
    assert last_sso_audit(db)[:2] == ("anonymous", "failure")
    assert client.get("/api/auth/me").json()["kind"] == "anonymous"


def test_a_callback_without_a_sign_on_under_way_is_refused(client: TestClient, make_client) -> None:
    query = sign_in_at_provider(start(client), "sso-planner")
    other_browser = make_client()
    response = callback(other_browser, query)
    assert response.status_code == 400 and "cookie is missing" in response.json()["detail"]
    forged = make_client()
    forged.cookies.set("ecomap_sso", "not.a.token", path="/api/auth/sso")
    response = callback(forged, query)
    assert response.status_code == 400 and "not valid" in response.json()["detail"]


def test_a_code_used_twice_is_refused_by_the_provider(client: TestClient) -> None:
    query = sign_in_at_provider(start(client), "sso-planner")
    flow = client.cookies.get("ecomap_sso")
    assert callback(client, query).status_code == 303
    client.cookies.set("ecomap_sso", flow, path="/api/auth/sso")
    replay = callback(client, query)
    assert replay.status_code == 401 and "invalid_grant" in replay.json()["detail"]


def test_provider_down_answers_502_json_or_a_page(make_client) -> None:
    client = make_client(issuer=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    response = client.get("/api/auth/sso/login", follow_redirects=False)
    assert response.status_code == 502, response.text
    assert "cannot be reached" in response.json()["detail"] and "sign in with a password" in response.json()["detail"]
    page = client.get("/api/auth/sso/login", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 502 and page.headers["content-type"].startswith("text/html")
    assert "cannot be reached" in page.text and 'href="/"' in page.text


def test_a_discovery_document_of_another_issuer_is_refused(make_client, provider: OidcTestProvider) -> None:
    other_name = provider.issuer.replace("127.0.0.1", "localhost")  # the same server under another name
    response = make_client(issuer=other_name).get("/api/auth/sso/login", follow_redirects=False)
    assert response.status_code == 502
    assert f"names the issuer {provider.issuer!r}, not {other_name!r}" in response.json()["detail"]


def test_errors_come_as_a_page_to_a_browser(client: TestClient) -> None:
    query = sign_in_at_provider(start(client), "sso-intern")
    page = callback(client, query, Accept="text/html,application/xhtml+xml")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "Single sign-on failed" in page.text and "&#x27;intern&#x27;" in page.text  # escaped
    assert 'ecomap_sso=""' in page.headers["set-cookie"]  # the flow cookie is dropped


def test_sso_off_without_an_issuer(sso_database: str) -> None:
    with TestClient(create_app(Settings(database_url=sso_database))) as client:
        response = client.get("/api/auth/sso/login", follow_redirects=False)
        assert response.status_code == 404 and "ECOMAP_OIDC__ISSUER" in response.json()["detail"]
        assert client.get("/api/config").json()["sso_login"] is None


def test_config_names_the_sso_start(client: TestClient) -> None:
    assert client.get("/api/config").json()["sso_login"] == "api/auth/sso/login"
