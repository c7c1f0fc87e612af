"""Authorization as data (issue 14, phase 2): the catalog's access classes and property
visibility, enforced the same way on every route — a matrix of roles × endpoints (allowed,
401, 403) including the leak paths (composite tile, search hit, zone-check overlap, style,
TileJSON field list, queryables, export), tile caching per access class, and the strict
validation of the rules. The matrix also covers the endpoints added since: station status
(latest, series, water and air summaries, the event stream), SensorThings reads and creates,
issues, patrols, assessment, public reports, river and bay files, revision lists and diffs
(there is no /api/alerts route: alerts enter as issues of source ``alert``). Real sign-in
through the API, real PostGIS, real app.

Two catalogs: the bundled one (every layer public, ``station.operator`` internal), and a test
copy where ``station`` is ``internal`` and ``district`` ``restricted`` (same tables)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.access import endpoint_rules
from gis_service.access.keys import create_key
from gis_service.settings import LimitsSettings
from layers.catalog import CATALOG_DIR, CatalogError, load_catalog
from tests.conftest import make_settings
from tests.test_access import (
    _forget_failed_sign_ins,  # noqa: F401 - autouse fixture
    access_settings,
    add_user,
    bearer,
    sign_in,
    unique,
)

USER_ROLES = ["planner", "chief", "analyst", "data_manager", "admin"]
CALLERS = ["anonymous", *USER_ROLES, "station_key", "partner_key"]
WMQ = morecantile.tms.get("WebMercatorQuad")


def _start(database_url: str, catalog_dir: Path | None) -> TestClient:
    settings = make_settings(database_url, access=access_settings(), catalog_dir=catalog_dir)
    client = TestClient(create_app(settings))
    client.__enter__()
    return client


@pytest.fixture(scope="module")
def rules_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled catalog with station internal and district restricted."""
    directory = tmp_path_factory.mktemp("catalog")
    for path in CATALOG_DIR.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    for layer, rule in (("station", "{class: internal}"), ("district", "{class: restricted}")):
        path = directory / f"{layer}.yaml"
        path.write_text(path.read_text(encoding="utf-8") + f"access: {rule}\n", encoding="utf-8")
    return directory


def _key(database_url: str, role: str, layers: list[str] | None = None) -> str:
    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            _, secret = await create_key(conn, name=unique(role), role=role, created_by="test-suite", layers=layers)
            return secret

    with ThreadPoolExecutor(1) as pool:  # asyncio.run() in a thread: Playwright may hold the main thread's loop
        return pool.submit(asyncio.run, create()).result()


@pytest.fixture(scope="module")
def credentials(database_url: str) -> dict[str, dict[str, str]]:
    """Headers of each kind of caller: accounts signed in through the API, keys in X-API-Key."""
    client = _start(database_url, None)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM login_throttle")
            chief = conn.execute("SELECT min(id) FROM chief").fetchone()[0]
        headers: dict[str, dict[str, str]] = {"anonymous": {}}
        for role in USER_ROLES:
            login, password = add_user(database_url, role, chief if role == "chief" else None)
            headers[role] = bearer(sign_in(client, login, password)["access_token"])
        headers["station_key"] = {"X-API-Key": _key(database_url, "station")}
        headers["partner_key"] = {"X-API-Key": _key(database_url, "partner", ["station", "river", "bay"])}
        return headers
    finally:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def strict(database_url: str, rules_catalog: Path) -> Iterator[TestClient]:
    client = _start(database_url, rules_catalog)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def bundled(database_url: str) -> Iterator[TestClient]:
    client = _start(database_url, None)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def station_tile(database_url: str) -> tuple[int, int, int, int, str]:
    """A z14 tile holding a station with an operator: (z, x, y, station id, its name)."""
    with psycopg.connect(database_url) as conn:
        sid, name, lon, lat = conn.execute(
            "SELECT id, name, ST_X(geom), ST_Y(geom) FROM station WHERE operator IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()
    tile = WMQ.tile(lon, lat, 14)
    return tile.z, tile.x, tile.y, sid, name


def _expect(response, status: int, *named: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "sign in" in response.json()["detail"]
    if status == 403:
        detail = response.json()["detail"]
        assert all(repr(name) in detail for name in named), detail


def _reads_station(caller: str) -> bool:
    return caller in USER_ROLES or caller == "partner_key"


def _reads_district(caller: str) -> bool:
    return caller in ("data_manager", "admin")


def _status(caller: str, allowed: bool) -> int:
    return 200 if allowed else 401 if caller == "anonymous" else 403


# -- the matrix on the strict catalog ------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_single_layer_tile_and_its_tilejson(strict, credentials, station_tile, caller: str) -> None:
    z, x, y, sid, _ = station_tile
    headers = credentials[caller]
    for path in (f"/tiles/station/{z}/{x}/{y}.pbf", f"/ogc/collections/station/tiles/WebMercatorQuad/{z}/{y}/{x}"):
        response = strict.get(path, headers=headers)
        _expect(response, _status(caller, _reads_station(caller)), "station")
        if response.status_code == 200:
            assert response.headers["cache-control"].startswith("private")
            features = mapbox_vector_tile.decode(response.content)["station"]["features"]
            mine = next(f for f in features if f["id"] == sid)
            assert ("operator" in mine["properties"]) == (caller in USER_ROLES)  # partners: public properties
    document = strict.get("/tiles/station.json", headers=headers)
    _expect(document, _status(caller, _reads_station(caller)), "station")
    if document.status_code == 200:
        fields = next(v for v in document.json()["vector_layers"] if v["id"] == "station")["fields"]
        assert ("operator" in fields) == (caller in USER_ROLES) and "kind" in fields


@pytest.mark.parametrize("caller", CALLERS)
def test_a_composite_tile_with_an_unreadable_layer_is_refused_naming_it(strict, credentials, db, caller: str) -> None:
    point = "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM river ORDER BY id LIMIT 1) AS s"
    tile = WMQ.tile(*db.execute(point).fetchone(), 11)
    response = strict.get(f"/tiles/river,district/{tile.z}/{tile.x}/{tile.y}.pbf", headers=credentials[caller])
    _expect(response, _status(caller, _reads_district(caller)), "district")
    if caller == "partner_key":
        assert "'river'" not in response.json()["detail"]  # only the refused layer is named
    if response.status_code == 200:
        decoded = mapbox_vector_tile.decode(response.content)
        assert decoded["district"]["features"] and decoded["river"]["features"]
        assert response.headers["cache-control"].startswith("private")


@pytest.mark.parametrize("caller", CALLERS)
def test_listings_show_only_readable_layers_and_visible_fields(strict, credentials, caller: str) -> None:
    headers = credentials[caller]
    expected = set(load_catalog().ids)
    if not _reads_station(caller):
        expected.discard("station")
    if not _reads_district(caller):
        expected.discard("district")
    # (a partner key reads the public layers and its named ones: here station, river and bay)
    style = strict.get("/styles/default.json", headers=headers).json()
    assert set(style["metadata"]["ecomap:layers"]) == expected
    drawn = {layer["source-layer"] for layer in style["layers"] if "source-layer" in layer}
    assert {d.removesuffix("_label") for d in drawn} <= expected
    source_fields = {v["id"]: v["fields"] for v in style["sources"]["ecomap"]["vector_layers"]}
    if "station" in expected:
        assert ("operator" in source_fields["station"]) == (caller in USER_ROLES)
    layers = strict.get("/api/layers", headers=headers).json()["layers"]
    assert {layer["id"] for layer in layers} == expected
    collections = strict.get("/ogc/collections", headers=headers, params={"f": "json"}).json()["collections"]
    assert {c["id"] for c in collections} == expected


@pytest.mark.parametrize("caller", CALLERS)
def test_queryables_items_and_export_of_an_internal_layer(strict, credentials, caller: str) -> None:
    headers = credentials[caller]
    status = _status(caller, _reads_station(caller))
    queryables = strict.get("/ogc/collections/station/queryables", headers=headers, params={"f": "json"})
    _expect(queryables, status, "station")
    items = strict.get("/ogc/collections/station/items", headers=headers, params={"limit": 500, "f": "json"})
    _expect(items, status, "station")
    export = strict.get("/api/layers/station/export", headers=headers, params={"format": "geojson"})
    _expect(export, status, "station")
    _expect(strict.get("/api/layers/station/features", headers=headers), status, "station")
    if status != 200:  # station keeps no history (404 for its readers): the refusal comes first
        _expect(strict.get("/api/layers/station/revisions", headers=headers), status, "station")
        _expect(strict.get("/api/layers/station/diff", headers=headers), status, "station")
    if status == 200:
        sees = caller in USER_ROLES
        assert ("operator" in queryables.json()["properties"]) == sees
        assert any("operator" in f["properties"] for f in items.json()["features"]) == sees
        exported = json.loads(export.content)["features"]
        assert exported and any("operator" in f["properties"] for f in exported) == sees


@pytest.mark.parametrize("caller", CALLERS)
def test_search_never_hits_an_unreadable_layer(strict, credentials, station_tile, caller: str) -> None:
    _, _, _, sid, name = station_tile
    results = strict.get("/api/search", params={"q": name}, headers=credentials[caller]).json()["results"]
    hit = any(r["layer"] == "station" and r["id"] == sid for r in results)
    assert hit == _reads_station(caller)
    assert all(r["layer"] != "district" for r in results) or _reads_district(caller)


@pytest.mark.parametrize("caller", CALLERS)
def test_zone_check_and_report_need_every_layer_they_weigh(strict, credentials, caller: str) -> None:
    site = {"type": "Polygon", "coordinates": [[[118.1, 24.5], [118.11, 24.5], [118.11, 24.51], [118.1, 24.5]]]}
    allowed = _reads_station(caller) and _reads_district(caller)
    for path in ("/api/zone-check", "/api/zone-check/report"):
        response = strict.post(path, json={"geometry": site}, headers=credentials[caller])
        _expect(response, _status(caller, allowed))
        if response.status_code == 403:
            detail = response.json()["detail"]
            assert "'district'" in detail and ("'station'" in detail) == (not _reads_station(caller))


@pytest.mark.parametrize("caller", CALLERS)
def test_chiefs_and_network_need_their_layers(strict, credentials, db, caller: str) -> None:
    chief = db.execute("SELECT min(id) FROM chief").fetchone()[0]
    river = db.execute("SELECT min(id) FROM river").fetchone()[0]
    headers = credentials[caller]
    for path in ("/api/chiefs", f"/api/chiefs/{chief}", f"/api/chiefs/{chief}/map"):  # they list stations
        _expect(strict.get(path, headers=headers), _status(caller, _reads_station(caller)), "station")
    for path in (f"/api/rivers/{river}/upstream", f"/api/rivers/{river}/downstream"):
        _expect(strict.get(path, headers=headers), _status(caller, _reads_station(caller)), "station")


# -- the endpoints added since: monitoring, SensorThings, the chiefs' work, revision diffs ----------

WORKFLOW_READERS = {"planner", "chief", "analyst", "data_manager", "admin"}
"""``readers`` of gis_service/workflow/workflow.yaml (issues, patrols, assessment, files)."""


def _role_status(caller: str, allowed: set[str]) -> int:
    return _status(caller, caller in allowed)


@pytest.fixture(scope="module")
def last_observation(database_url: str) -> dt.datetime:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT max(phenomenon_time) FROM observation").fetchone()[0]


@pytest.mark.parametrize("caller", CALLERS)
def test_station_status_needs_the_station_layer(strict, credentials, db, last_observation, caller: str) -> None:
    sid = db.execute("SELECT min(station_id) FROM datastream WHERE factor_code = 'w01001'").fetchone()[0]
    day = (last_observation - dt.timedelta(days=1)).date().isoformat()
    series = {"property": "w01001", "from": (last_observation - dt.timedelta(days=1)).isoformat()}
    series["to"] = last_observation.isoformat()
    status = _status(caller, _reads_station(caller))
    headers = credentials[caller]
    for path, params in (
        (f"/api/stations/{sid}/latest", {}),
        (f"/api/stations/{sid}/series", series),
        ("/api/water-quality/summary", {"date": day}),
        ("/api/air-quality/summary", {"date": day}),
    ):
        response = strict.get(path, params=params, headers=headers)
        _expect(response, status, "station")
        if status == 200:
            assert response.json(), path
    if status != 200:  # an endless stream when allowed: only the refusal is asked for here
        _expect(strict.get("/api/monitoring/events", headers=headers), status, "station")


@pytest.mark.parametrize("caller", CALLERS)
def test_sensorthings_reads_need_the_station_layer_and_creates_a_station_key(strict, credentials, caller: str) -> None:
    headers = credentials[caller]
    assert strict.get("/sta/v1.1", headers=headers).status_code == 200  # the service root lists entity sets
    for path in ("/sta/v1.1/Things", "/sta/v1.1/Datastreams", "/sta/v1.1/Observations?$top=5"):
        response = strict.get(path, headers=headers)
        _expect(response, _status(caller, _reads_station(caller)), "station")
        if response.status_code == 200:
            assert response.json()["value"]
    pushes = caller == "station_key"
    for path, body in (
        ("/sta/v1.1/Observations", {"result": 1.0}),  # no Datastream: 400 once the key is accepted
        ("/sta/v1.1/Datastreams(1)/Observations", {"result": "high"}),
        ("/sta/v1.1/CreateObservations", [{"components": ["result"]}]),
    ):
        response = strict.post(path, json=body, headers=headers)
        _expect(response, 400 if pushes else _status(caller, False))
        if response.status_code == 403:
            assert "observations:push" in response.json()["detail"] and "station" in response.json()["detail"]


@pytest.mark.parametrize("caller", CALLERS)
def test_issues_patrols_and_assessment_follow_the_workflow_roles(strict, credentials, last_observation, caller: str):
    headers = credentials[caller]
    status = _role_status(caller, WORKFLOW_READERS)
    assert strict.get("/api/workflow", headers=headers).status_code == 200  # the rules themselves are public
    since = (last_observation - dt.timedelta(days=30)).isoformat()
    for path, params in (
        ("/api/issues", {}),
        ("/api/patrols", {}),
        # the map's layers: the same lists as GeoJSON, for the same callers
        ("/api/issues", {"f": "geojson", "bbox": "117.8,24.3,118.5,24.9"}),
        ("/api/alerts", {"f": "geojson", "bbox": "117.8,24.3,118.5,24.9"}),
        ("/api/patrols", {"f": "geojson", "bbox": "117.8,24.3,118.5,24.9"}),
        ("/api/patrols/frequency", {"since": since, "until": last_observation.isoformat()}),
        ("/api/assessment", {"since": since, "until": last_observation.isoformat()}),
    ):
        _expect(strict.get(path, params=params, headers=headers), status)
    for path in ("/api/issues/2147483000", "/api/patrols/2147483000"):
        _expect(strict.get(path, headers=headers), 404 if status == 200 else status)
    # writes: a body valid in form, refused after the role check (a point off the region, a future
    # start), so the allowed roles answer 400 and nothing is written
    issue = {
        "title": "t",
        "category": "waste",
        "source": "patrol",
        "geometry": {"type": "Point", "coordinates": [0, 0]},
    }
    reported = strict.post("/api/issues", json=issue, headers=headers)
    _expect(reported, 400 if caller in ("chief", "admin") else _status(caller, False))
    if reported.status_code == 403:
        assert "allowed: admin, chief" in reported.json()["detail"]
    hotline = {**issue, "source": "hotline"}
    _expect(
        strict.post("/api/issues", json=hotline, headers=headers),
        400 if caller in ("data_manager", "admin") else _status(caller, False),
    )
    patrol = {"started_at": "2099-01-01T08:00:00+08:00"}
    _expect(
        strict.post("/api/patrols", json=patrol, headers=headers), 400 if caller == "chief" else _status(caller, False)
    )


@pytest.mark.parametrize("caller", CALLERS)
def test_river_and_bay_files_need_a_workflow_reader_who_reads_their_layers(strict, credentials, db, caller: str):
    river = db.execute("SELECT min(id) FROM river").fetchone()[0]
    bay = db.execute("SELECT min(id) FROM bay").fetchone()[0]
    for path in (f"/api/rivers/{river}/file", f"/api/bays/{bay}/file"):
        response = strict.get(path, headers=credentials[caller])
        _expect(response, _role_status(caller, WORKFLOW_READERS))
        if response.status_code == 200:
            assert response.json()["name"]
            assert ("contact" in json.dumps(response.json()["chiefs"])) == (caller in USER_ROLES)


@pytest.fixture(scope="module")
def unlimited(database_url: str, rules_catalog: Path) -> Iterator[TestClient]:
    """The strict catalog without rate limits (public reports allow three per address)."""
    settings = make_settings(
        database_url, access=access_settings(), catalog_dir=rules_catalog, limits=LimitsSettings(enabled=False)
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("caller", CALLERS)
def test_public_reports_are_open_to_anyone(unlimited, credentials, caller: str) -> None:
    headers = credentials[caller]
    form = {"title": "排污", "category": "sewage", "lon": "0", "lat": "0"}
    refused = unlimited.post("/api/public-reports", data=form, headers=headers)
    assert refused.status_code == 400 and "region" in refused.json()["detail"], refused.text  # checked, not refused
    unknown = unlimited.get("/api/public-reports/not-a-code", headers=headers)
    assert unknown.status_code == 404 and "tracking code" in unknown.json()["detail"]


@pytest.mark.parametrize("caller", CALLERS)
def test_revisions_and_diffs_of_a_public_layer_are_for_everyone(strict, credentials, caller: str) -> None:
    headers = credentials[caller]
    revisions = strict.get("/api/layers/redline/revisions", headers=headers)
    assert revisions.status_code == 200 and revisions.json()["revisions"]
    latest = revisions.json()["revisions"][0]["number"]
    diff = strict.get("/api/layers/redline/diff", params={"from": 0, "to": latest}, headers=headers)
    assert (
        diff.status_code == 200 and diff.json()["summary"]["added"] == revisions.json()["revisions"][0]["feature_count"]
    )
    assert strict.get("/api/layers/redline/features", headers=headers).status_code == 200


# -- the bundled catalog: public layers, one internal property -----------------------------------


def test_public_map_layers_stay_public(bundled) -> None:
    catalog = load_catalog()
    for layer in ("redline", "protected_area", "water_source_zone", "river", "bay", "watershed", "district"):
        assert catalog.get(layer).access.is_public
    assert catalog.get("station").get_property("operator").access == "internal"
    style = bundled.get("/styles/default.json").json()
    assert set(style["metadata"]["ecomap:layers"]) == set(catalog.ids)


def test_an_internal_property_is_hidden_from_the_public_and_cached_per_access_class(
    bundled, credentials, station_tile
) -> None:
    z, x, y, sid, _ = station_tile
    path = f"/tiles/station/{z}/{x}/{y}.pbf"

    def fetch(caller: str):
        response = bundled.get(path, headers=credentials[caller])
        assert response.status_code == 200, response.text
        feature = next(f for f in mapbox_vector_tile.decode(response.content)["station"]["features"] if f["id"] == sid)
        return response, feature["properties"]

    anonymous, seen = fetch("anonymous")  # fast path, no credentials
    assert "operator" not in seen and "kind" in seen
    assert anonymous.headers["cache-control"] == "no-cache" and "Authorization" in anonymous.headers["vary"]
    planner, planner_seen = fetch("planner")  # fast path, bearer token
    assert planner_seen["operator"] and planner.headers["cache-control"].startswith("private")
    assert planner.headers["etag"] != anonymous.headers["etag"]
    again, seen_again = fetch("anonymous")  # the planner's cached tile is not the public one
    assert "operator" not in seen_again and again.headers["etag"] == anonymous.headers["etag"]
    partner, partner_seen = fetch("partner_key")
    assert "operator" not in partner_seen and partner.headers["etag"] == anonymous.headers["etag"]
    assert bundled.get(path, headers={"If-None-Match": anonymous.headers["etag"]}).status_code == 304
    # the documented route (a query string) answers the same
    routed = bundled.get(path, params={"filter": "kind = 'outfall' OR kind <> 'outfall'"})
    assert routed.status_code == 200 and routed.headers["cache-control"] == "no-cache"
    assert all(
        "operator" not in f["properties"] for f in mapbox_vector_tile.decode(routed.content)["station"]["features"]
    )


def test_asking_for_a_hidden_property_is_refused_not_thinned(bundled, credentials, station_tile) -> None:
    z, x, y, _, _ = station_tile
    path = f"/tiles/station/{z}/{x}/{y}.pbf"
    _expect(bundled.get(path, params={"properties": "name,operator"}), 401)
    _expect(bundled.get(path, params={"properties": "operator"}, headers=credentials["partner_key"]), 403, "operator")
    assert bundled.get(path, params={"properties": "operator"}, headers=credentials["analyst"]).status_code == 200
    filtered = bundled.get(path, params={"filter": "operator = 'x'"})  # a filter may not probe hidden values
    assert filtered.status_code == 400 and "operator" in filtered.json()["detail"]
    items = bundled.get("/ogc/collections/station/items", params={"filter": "operator IS NOT NULL", "f": "json"})
    assert items.status_code == 400


def test_public_queryables_items_export_and_chiefs_hide_internal_fields(bundled, credentials) -> None:
    anonymous = bundled.get("/ogc/collections/station/queryables", params={"f": "json"}).json()["properties"]
    planner = bundled.get(
        "/ogc/collections/station/queryables", params={"f": "json"}, headers=credentials["planner"]
    ).json()
    assert "operator" not in anonymous and "operator" in planner["properties"]
    exported = json.loads(bundled.get("/api/layers/station/export", params={"format": "geojson"}).content)
    assert exported["features"] and all("operator" not in f["properties"] for f in exported["features"])
    public_chiefs = bundled.get("/api/chiefs").json()["chiefs"]
    staff_chiefs = bundled.get("/api/chiefs", headers=credentials["chief"]).json()["chiefs"]
    assert public_chiefs and all("contact" not in c for c in public_chiefs)
    assert any(c.get("contact") for c in staff_chiefs)
    detail = bundled.get(f"/api/chiefs/{public_chiefs[0]['id']}").json()
    assert "contact" not in json.dumps(detail)


def test_zone_check_chiefs_lose_their_contact_for_the_public(bundled, credentials, db) -> None:
    point = "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM river ORDER BY id LIMIT 1) AS s"
    lon, lat = db.execute(point).fetchone()
    body = {"geometry": {"type": "Point", "coordinates": [lon, lat]}, "buffer_m": 200}
    public = bundled.post("/api/zone-check", json=body).json()
    staff = bundled.post("/api/zone-check", json=body, headers=credentials["admin"]).json()
    assert public["chiefs"] and all("contact" not in c for c in public["chiefs"])
    assert any(c.get("contact") for c in staff["chiefs"])
    report = bundled.post("/api/zone-check/report", json=body)
    contacts = {c["contact"] for c in staff["chiefs"] if c.get("contact")}
    assert report.status_code == 200 and not any(contact in report.text for contact in contacts)


def test_invalid_credentials_on_a_public_tile_are_401_not_anonymous(bundled, station_tile) -> None:
    z, x, y, _, _ = station_tile
    response = bundled.get(f"/tiles/station/{z}/{x}/{y}.pbf", headers={"Authorization": "Bearer junk"})
    _expect(response, 401)
    keyed = bundled.get(f"/tiles/redline/{z}/{x}/{y}.pbf", headers={"X-API-Key": "ek_" + "x" * 43})
    assert keyed.status_code == 401


# -- strict validation of the rules --------------------------------------------------------------


def _layer_file(tmp_path: Path, extra: str, source: str = "station") -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir(exist_ok=True)
    path = directory / f"{source}.yaml"
    path.write_text((CATALOG_DIR / f"{source}.yaml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return directory


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("access: {class: internal, colour: red}\n", "unknown key 'access.colour'"),
        ("access: {class: secret}\n", "access.class"),
        ("access: {class: public, roles: [planner]}\n", "roles apply to internal or restricted layers"),
        ("access: {class: internal, roles: [planner, janitor]}\n", "access.roles.1"),
        ("access: {class: internal, roles: []}\n", "at least one role"),
    ],
)
def test_layer_rules_are_validated_strictly(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message) as error:
        load_catalog(_layer_file(tmp_path, extra))
    assert "station.yaml" in str(error.value)


def test_a_styled_property_may_not_be_hidden_from_the_layers_readers(tmp_path: Path) -> None:
    directory = tmp_path / "catalog"
    directory.mkdir()
    text = (CATALOG_DIR / "station.yaml").read_text(encoding="utf-8")
    text = text.replace("values: [air_national,", "access: internal\n    values: [air_national,")
    (directory / "station.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=r"properties \['kind'\] are styled"):
        load_catalog(directory)
    (directory / "station.yaml").write_text(text + "access: {class: internal}\n", encoding="utf-8")
    assert load_catalog(directory).get("station").access.access_class == "internal"


def test_endpoint_rules_are_validated_strictly(tmp_path: Path) -> None:
    assert endpoint_rules.load_rules().chiefs.fields == {"contact": "internal"}
    endpoint_rules.load_rules().check_catalog(load_catalog())
    bad = tmp_path / "rules.yaml"
    bad.write_text("chiefs: {reads: [river], field: {}}\nnetwork: {reads: [river]}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"rules.yaml: unknown key 'chiefs.field'"):
        endpoint_rules.load_rules(bad)
    bad.write_text("chiefs: {reads: [rivers]}\nnetwork: {reads: [river]}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"chiefs.reads: unknown layers \['rivers'\]"):
        endpoint_rules.load_rules(bad).check_catalog(load_catalog(), bad)


def test_an_export_with_non_public_content_is_audited(bundled, credentials, db) -> None:
    def exports() -> int:
        return db.execute("SELECT count(*) FROM audit_log WHERE action = 'layer.export'").fetchone()[0]

    before = exports()
    assert bundled.get("/api/layers/station/export", params={"format": "geojson"}).status_code == 200
    public = bundled.get("/api/layers/redline/export", params={"format": "csv"}, headers=credentials["planner"])
    assert public.status_code == 200
    assert exports() == before  # public content: not recorded
    response = bundled.get(
        "/api/layers/station/export",
        params={"format": "geojson"},
        headers={**credentials["planner"], "X-Request-ID": "r-42"},
    )
    assert response.status_code == 200
    assert any("operator" in f["properties"] for f in json.loads(response.content)["features"])
    actor, target, detail, request_id = db.execute(
        "SELECT actor, target, detail, request_id FROM audit_log WHERE action = 'layer.export' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert exports() == before + 1 and target == "station" and request_id == "r-42"
    assert actor.startswith("planner-") and detail["format"] == "geojson" and detail["features"] > 0


@pytest.mark.parametrize("caller", ["anonymous", "planner", "partner_key"])
def test_search_finds_chiefs_only_with_their_layers_and_tilesets_list_visible_fields(
    strict, credentials, db, caller: str
) -> None:
    name = db.execute("SELECT name FROM chief ORDER BY id LIMIT 1").fetchone()[0]
    results = strict.get("/api/search", params={"q": name}, headers=credentials[caller]).json()["results"]
    assert any(r["layer"] == "chief" for r in results) == _reads_station(caller)
    tileset = strict.get("/ogc/collections/station/tiles/WebMercatorQuad", headers=credentials[caller])
    _expect(tileset, _status(caller, _reads_station(caller)), "station")
    if tileset.status_code == 200:
        fields = json.dumps(tileset.json()["layers"])
        assert ("operator" in fields) == (caller == "planner") and "kind" in fields
