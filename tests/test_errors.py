"""No request gets a 500 for its input, and none gets a non-JSON error.

Database errors a request's values cause answer 400 naming the parameter; NUL characters
are refused before any SQL; an exception nobody expected answers JSON 500 with the request
id (also sent in ``X-Request-ID`` on every response) and leaves the connection open.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from gis_service import create_app
from tests.conftest import free_port, make_settings

TILE = "/tiles/redline/10/856/441.pbf"


@pytest.fixture(scope="module")
def app_client(database_url: str) -> Iterator[TestClient]:
    # raise_server_exceptions=False: an exception leaving the app would show as a 500 here
    # instead of failing the test run; the assertions below require JSON answers.
    with TestClient(create_app(make_settings(database_url)), raise_server_exceptions=False) as client:
        yield client


def _detail(response) -> str:
    assert response.headers["content-type"].startswith("application/json"), (response.status_code, response.text)
    return response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        (TILE, {"filter": "area_km2 = 'abc'"}, ("abc",)),  # invalid_text_representation
        (TILE, {"filter": "valid_from > 'soon'"}, ("soon",)),  # invalid_datetime_format
        (TILE, {"filter": "valid_from = DATE('2025-13-45')"}, ("2025-13-45",)),  # datetime_field_overflow
        (TILE, {"filter": "revision > 99999999999999999999"}, ("out of range", "99999999999999999999")),
        (TILE, {"filter": "is_sample = 1"}, ("boolean", "is_sample")),  # cannot cast a number to boolean
        ("/ogc/collections/redline/items", {"filter": "area_km2 = 'abc'"}, ("abc",)),
        ("/ogc/collections/redline/items", {"filter": "id IN (1, 'a')"}, ("",)),  # mixed list: psycopg's DataError
        ("/ogc/collections/redline/items", {"filter": "revision > 99999999999999999999"}, ("out of range", "9999")),
    ],
)
def test_a_bad_value_in_a_filter_is_a_400_naming_the_parameter(
    app_client: TestClient, path: str, params: dict[str, str], named: tuple[str, ...]
) -> None:
    """The message names the parameter and what in it is wrong (the value, or its type)."""
    response = app_client.get(path, params=params)
    assert response.status_code == 400, response.text
    detail = _detail(response)
    assert "filter" in detail
    assert any(word.lower() in detail.lower() for word in named), detail


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/search?q=a%00b", "q"),
        ("/ogc/collections/redline/items?name=a%00b", "name"),
        ("/ogc/collections/redline/items?filter=name%3D%27a%00b%27", "filter"),
        (f"{TILE}?filter=name%3D%27a%00%27", "filter"),
        ("/api/search?limit=5&q=%00", "q"),
    ],
)
def test_a_nul_character_is_refused_before_any_sql(app_client: TestClient, path: str, name: str) -> None:
    response = app_client.get(path)
    assert response.status_code == 400, response.text
    assert _detail(response) == f"parameter {name} contains a NUL character (%00); remove it"
    assert response.headers["x-request-id"]


def test_postgis_input_errors_are_recognised(db: psycopg.Connection) -> None:
    """PostGIS reports a projection domain error or a malformed geometry as an internal error
    (XX000); coming from a request's values, they are the request's fault."""
    from gis_service.errors import input_error

    failures = {}
    for name, statement in {
        "bbox": "SELECT ST_Transform(ST_SetSRID(ST_MakePoint(0, 100), 4326), 3857)",
        "geometry": "SELECT ST_GeomFromText('POLYGON((0 0, 1 1))')",
    }.items():
        with pytest.raises(psycopg.Error) as caught:
            db.execute(statement)
        failures[name] = caught.value
    transform = input_error(failures["bbox"], [("bbox", "0,100,1,101"), ("limit", "10")])
    assert transform is not None and str(transform).startswith("one of the parameters bbox, limit")
    assert "transform: Invalid coordinate" in str(transform)
    geometry = input_error(failures["geometry"], [], has_body=True)
    assert geometry is not None and str(geometry).startswith("the request body")
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT * FROM no_such_table_here")
    assert input_error(caught.value, [("q", "x")]) is None, "a missing table is not the request's fault"


def test_every_response_carries_a_request_id(app_client: TestClient) -> None:
    generated = app_client.get("/api/layers")
    assert generated.status_code == 200
    assert len(generated.headers["x-request-id"]) >= 16
    assert app_client.get("/api/layers").headers["x-request-id"] != generated.headers["x-request-id"]
    chosen = app_client.get(TILE, headers={"X-Request-ID": "trace-42.a"})  # the fast path too
    assert chosen.headers["x-request-id"] == "trace-42.a"
    forged = app_client.get("/api/layers", headers={"X-Request-ID": "x" * 300})
    assert forged.headers["x-request-id"] != "x" * 300


def _serve(app) -> tuple[uvicorn.Server, threading.Thread, int]:
    """The app in a real uvicorn server (in a thread); returns it, its thread and its port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return server, thread, port


def test_an_unexpected_exception_answers_json_500_and_keeps_the_connection(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a route answers JSON 500 naming the request id, which the log names too; the
    server does not close the keep-alive connection (it would, if the exception reached it)."""
    app = create_app(make_settings(database_url))

    async def broken() -> dict:
        raise RuntimeError("a bug in a route")

    app.add_api_route("/test-only/broken", broken)
    app.router.routes.insert(0, app.router.routes.pop())  # before the frontend mounted at /

    server, thread, port = _serve(app)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/test-only/broken", headers={"X-Request-ID": "bug-report-1"})
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 500
        assert response.getheader("content-type") == "application/json"
        assert body == {"detail": "internal error; request id bug-report-1"}
        assert response.getheader("x-request-id") == "bug-report-1"
        assert response.getheader("connection") != "close"
        conn.request("GET", "/api/layers")  # the same connection still serves
        again = conn.getresponse()
        assert again.status == 200
        assert json.loads(again.read())["layers"]
        conn.close()
    finally:
        server.should_exit = True
        thread.join(30)
    logged = [r for r in caplog.records if "bug-report-1" in r.getMessage()]
    assert logged and logged[0].exc_info and "a bug in a route" in str(logged[0].exc_info[1])


HOST_PATHS = [
    "/tiles/redline,river.json",
    "/styles/default.json",
    "/ogc",
    "/ogc/collections",
    "/ogc/collections/redline/items?limit=2",
    "/ogc/collections/redline/tiles/WebMercatorQuad",
    "/api/layers",
    "/api/rasters",
]


@pytest.mark.parametrize("path", HOST_PATHS)
def test_a_forged_host_never_reaches_the_links(app_client: TestClient, path: str) -> None:
    """Behind a shared cache, one request with a forged Host would give every client links to
    it: links come from a trusted host only (no ECOMAP_PUBLIC_URL is set here)."""
    response = app_client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 200, response.text
    assert "evil.example" not in response.text
    assert "http://127.0.0.1" in response.text, "links are built from the first trusted host"
    trusted = app_client.get(path, headers={"Host": "localhost:8123"})
    assert "http://localhost:8123/" in trusted.text, "a trusted Host builds the links as asked"


def test_allowed_hosts_and_public_url(database_url: str) -> None:
    settings = make_settings(database_url, allowed_hosts="maps.example.cn, gis.example.cn:8443")
    with TestClient(create_app(settings)) as client:
        for host, base in [
            ("maps.example.cn", "http://maps.example.cn/"),
            ("gis.example.cn:8443", "http://gis.example.cn:8443/"),
            ("gis.example.cn:9999", "http://maps.example.cn/"),  # that host is trusted on 8443 only
            ("evil.example", "http://maps.example.cn/"),
        ]:
            tiles = client.get("/tiles/redline.json", headers={"Host": host}).json()["tiles"][0]
            assert tiles == f"{base}tiles/redline/{{z}}/{{x}}/{{y}}.pbf", host
    public = make_settings(database_url, public_url="https://eco.example.cn/map/")
    with TestClient(create_app(public)) as client:
        tiles = client.get("/tiles/redline.json", headers={"Host": "localhost"}).json()["tiles"][0]
        assert tiles == "https://eco.example.cn/map/tiles/redline/{z}/{x}/{y}.pbf"
