"""The chiefs' work on the map: ``f=geojson`` (and ``bbox``) on ``/api/issues``, ``/api/alerts``
and ``/api/patrols`` answer the same records as the lists, with the same access, as features
the map clusters and draws. Expected geometries, labels, lengths and box memberships are
worked out here (shapely, pyproj, the workflow file, the test's own SQL), not taken from the
service."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from shapely import wkt
from shapely.geometry import Point, box, shape

from gis_service.workflow.alerts.rules import load_rules
from gis_service.workflow.machine import load_workflow
from tests.test_access import add_user, bearer, make_client, sign_in
from tests.test_workflow import geodesic_length, gpx

WORKFLOW = load_workflow()
RULES = load_rules()
GEOJSON = "application/geo+json"


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    with make_client(database_url) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def place(database_url: str) -> dict:
    """A river segment with a chief (``chief_id``), a point on it, a water station near it, and a
    chief responsible for neither (``outsider``)."""
    with psycopg.connect(database_url) as db:
        chief_id, river_id, lon, lat = db.execute(
            "SELECT a.chief_id, r.id, ST_X(p), ST_Y(p) FROM chief_assignment AS a"
            " JOIN river AS r ON a.layer = 'river' AND r.id = a.feature_id,"
            " LATERAL ST_ClosestPoint(r.geom, ST_Centroid(r.geom)) AS p ORDER BY a.chief_id, r.id LIMIT 1"
        ).fetchone()
        station_id, s_lon, s_lat = db.execute(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM station ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
            " LIMIT 1",
            [lon, lat],
        ).fetchone()
        responsible = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT a.chief_id FROM chief_assignment AS a WHERE (a.layer = 'river' AND a.feature_id = %s)"
                " OR (a.layer = 'watershed' AND a.feature_id IN (SELECT w.id FROM watershed AS w"
                "     WHERE ST_Intersects(w.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))))",
                [river_id, lon, lat],
            )
        ]
        outsider = db.execute("SELECT min(id) FROM chief WHERE id <> ALL(%s)", [responsible]).fetchone()[0]
        chief_name = db.execute("SELECT name FROM chief WHERE id = %s", [chief_id]).fetchone()[0]
    return {
        "chief_id": chief_id,
        "chief_name": chief_name,
        "river_id": river_id,
        "lon": lon,
        "lat": lat,
        "station": (station_id, s_lon, s_lat),
        "outsider": outsider,
    }


@pytest.fixture(scope="module")
def people(client: TestClient, database_url: str, place: dict) -> dict[str, dict[str, str]]:
    def token(role: str, chief: int | None = None) -> dict[str, str]:
        return bearer(sign_in(client, *add_user(database_url, role, chief))["access_token"])

    return {
        "chief": token("chief", place["chief_id"]),
        "outsider": token("chief", place["outsider"]),
        "planner": token("planner"),
        "admin": token("admin"),
    }


def square(lon: float, lat: float, half: float) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


@pytest.fixture(scope="module")
def issues(client: TestClient, people: dict, place: dict, database_url: str) -> dict[str, dict]:
    """A point issue on the river (assigned, then past its deadline) and an area issue beside it."""
    lon, lat = place["lon"], place["lat"]
    body = {"title": "排污口冒黑水", "category": "sewage", "severity": "high", "source": "patrol"}
    point = client.post(
        "/api/issues", json={**body, "geometry": {"type": "Point", "coordinates": [lon, lat]}}, headers=people["chief"]
    )
    assert point.status_code == 201, point.text
    area = client.post(
        "/api/issues",
        json={**body, "title": "岸边垃圾", "category": "waste", "severity": "low", "geometry": square(lon, lat, 0.003)},
        headers=people["chief"],
    )
    assert area.status_code == 201, area.text
    assigned = client.post(
        f"/api/issues/{point.json()['id']}/transitions",
        json={"to": "assigned", "department": "水利局", "deadline": "2099-01-01T18:00:00+08:00"},
        headers=people["chief"],
    )
    assert assigned.status_code == 200, assigned.text
    with psycopg.connect(database_url) as db:  # the deadline passes
        db.execute("UPDATE workflow_issue SET deadline = now() - interval '1 day' WHERE id = %s", [point.json()["id"]])
    return {"point": point.json(), "area": area.json()}


def features(answer) -> dict[int, dict]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(GEOJSON)
    collection = answer.json()
    assert collection["type"] == "FeatureCollection" and collection["numberReturned"] == len(collection["features"])
    return {f["id"]: f for f in collection["features"]}


def around(lon: float, lat: float, half: float = 0.01) -> str:
    return f"{lon - half},{lat - half},{lon + half},{lat + half}"


def test_issues_as_points_with_their_labels_and_overdue_flag(client, people, place, issues) -> None:
    answer = client.get(
        "/api/issues", params={"f": "geojson", "bbox": around(place["lon"], place["lat"])}, headers=people["planner"]
    )
    found = features(answer)
    point, area = found[issues["point"]["id"]], found[issues["area"]["id"]]
    assert point["geometry"] == {"type": "Point", "coordinates": pytest.approx([place["lon"], place["lat"]])}
    assert point["properties"]["state"] == "assigned"
    assert point["properties"]["state_label"] == {"zh": "交办", "en": "Assigned"}  # workflow.yaml
    assert point["properties"]["category_label"] == {"zh": "污水直排", "en": "Sewage discharge"}
    assert point["properties"]["severity"] == "high" and point["properties"]["severity_label"]["zh"] == "严重"
    assert point["properties"]["overdue"] is True and point["properties"]["area"] is False
    drawn = shape(square(place["lon"], place["lat"], 0.003))
    assert area["geometry"]["type"] == "Point" and drawn.contains(shape(area["geometry"]))
    assert area["properties"]["area"] is True and area["properties"]["overdue"] is False
    assert area["properties"]["state_label"] == WORKFLOW.states["reported"].model_dump()
    # the same issues, in the same order, as the JSON list with the same filters
    listed = client.get("/api/issues", params={"bbox": around(place["lon"], place["lat"])}, headers=people["planner"])
    assert [i["id"] for i in listed.json()["issues"]] == list(found)
    overdue = features(client.get("/api/issues", params={"f": "geojson", "overdue": True}, headers=people["planner"]))
    assert issues["point"]["id"] in overdue and issues["area"]["id"] not in overdue


def test_the_box_filters_issues_alerts_and_patrols(client, people, place, issues, database_url) -> None:
    far = around(place["lon"] + 0.2, place["lat"] + 0.2, 0.005)
    for path in ("/api/issues", "/api/alerts", "/api/patrols"):
        for feature in features(
            client.get(path, params={"f": "geojson", "bbox": far}, headers=people["admin"])
        ).values():
            assert shape(feature["geometry"]).intersects(box(*map(float, far.split(",")))), (path, feature)
    assert issues["point"]["id"] not in features(
        client.get("/api/issues", params={"f": "geojson", "bbox": far}, headers=people["admin"])
    )
    # every issue of a box is listed, worked out here from the stored geometries (shapely)
    view = box(place["lon"] - 0.05, place["lat"] - 0.05, place["lon"] + 0.05, place["lat"] + 0.05)
    with psycopg.connect(database_url) as db:
        stored = db.execute("SELECT id, ST_AsText(geom) FROM workflow_issue").fetchall()
    expected = {i for i, text in stored if wkt.loads(text).intersects(view)}
    assert len(expected) <= 500, "the box holds more issues than one page"
    bbox = ",".join(str(v) for v in view.bounds)
    got = features(
        client.get("/api/issues", params={"f": "geojson", "bbox": bbox, "limit": 500}, headers=people["admin"])
    )
    assert set(got) == expected


@pytest.fixture()
def alert(database_url: str, place: dict) -> Iterator[dict]:
    """An open alert at the station near the river, routed to the river's chief (stored as the
    evaluator stores one; removed afterwards)."""
    station_id, lon, lat = place["station"]
    rule = "data_missing"
    first = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    with psycopg.connect(database_url) as db:
        db.execute(
            "DELETE FROM workflow_alert WHERE station_id = %s AND rule = %s AND state = 'open'", [station_id, rule]
        )
        alert_id = db.execute(
            "INSERT INTO workflow_alert (rule, station_id, state, severity, first_seen, last_seen, measure)"
            " VALUES (%s, %s, 'open', 'medium', %s, %s, 6) RETURNING id",
            [rule, station_id, first, first + dt.timedelta(hours=6)],
        ).fetchone()[0]
        db.execute(
            "INSERT INTO workflow_alert_chief (alert_id, chief_id) VALUES (%s, %s)", [alert_id, place["chief_id"]]
        )
    yield {"id": alert_id, "rule": rule, "station": (station_id, lon, lat), "first_seen": first}
    with psycopg.connect(database_url) as db:
        db.execute("DELETE FROM workflow_alert WHERE id = %s", [alert_id])


def test_alerts_at_their_stations_and_a_chief_sees_their_own(client, people, place, alert) -> None:
    station_id, lon, lat = alert["station"]
    mine = features(client.get("/api/alerts", params={"f": "geojson", "state": "open"}, headers=people["chief"]))
    feature = mine[alert["id"]]
    assert feature["geometry"] == {"type": "Point", "coordinates": pytest.approx([lon, lat])}
    props = feature["properties"]
    assert props["rule"] == "data_missing" and props["station_id"] == station_id
    assert props["rule_label"] == {"zh": RULES.rules["data_missing"].zh, "en": RULES.rules["data_missing"].en}
    assert props["severity_label"] == {"zh": "较重", "en": "Medium"}
    assert dt.datetime.fromisoformat(props["since"]) == alert["first_seen"]
    # the outsider chief's map (their own alerts, as their list) does not hold it; everyone's does
    assert alert["id"] not in features(client.get("/api/alerts", params={"f": "geojson"}, headers=people["outsider"]))
    assert alert["id"] in features(
        client.get("/api/alerts", params={"f": "geojson", "all": True}, headers=people["outsider"])
    )
    assert alert["id"] in features(
        client.get("/api/alerts", params={"f": "geojson", "bbox": around(lon, lat)}, headers=people["planner"])
    )
    away = around(lon + 0.3, lat + 0.3, 0.01)
    assert alert["id"] not in features(
        client.get("/api/alerts", params={"f": "geojson", "bbox": away}, headers=people["planner"])
    )


def test_a_chiefs_issues_and_anonymous_callers(client, people, place, issues) -> None:
    own = {"f": "geojson", "chief_id": place["chief_id"]}
    assert issues["point"]["id"] in features(client.get("/api/issues", params=own, headers=people["chief"]))
    other = {"f": "geojson", "chief_id": place["outsider"]}
    assert issues["point"]["id"] not in features(client.get("/api/issues", params=other, headers=people["outsider"]))
    for path in ("/api/issues", "/api/alerts", "/api/patrols"):
        answer = client.get(path, params={"f": "geojson", "bbox": around(place["lon"], place["lat"])})
        assert answer.status_code == 401, (path, answer.text)
        assert "sign in" in answer.json()["detail"] and "features" not in answer.json()


def test_patrol_tracks_as_lines_with_the_chief_date_and_length(client, people, place, database_url) -> None:
    lon, lat = place["lon"], place["lat"]
    track = [(lon - 0.002, lat - 0.001), (lon, lat), (lon + 0.002, lat + 0.0015)]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    upload = client.post(
        "/api/patrols/gpx",
        files={"file": ("walk.gpx", io.BytesIO(gpx(track, start)), "application/gpx+xml")},
        headers=people["chief"],
    )
    assert upload.status_code == 201, upload.text
    pid = upload.json()["id"]
    found = features(
        client.get("/api/patrols", params={"f": "geojson", "bbox": around(lon, lat)}, headers=people["planner"])
    )
    line = found[pid]
    assert line["geometry"]["type"] == "LineString"
    assert line["geometry"]["coordinates"] == [pytest.approx(list(p)) for p in track]
    props = line["properties"]
    assert props["chief_id"] == place["chief_id"] and props["chief_name"] == place["chief_name"]
    assert props["length_m"] == pytest.approx(geodesic_length(track), rel=1e-3)
    china = dt.timezone(dt.timedelta(hours=8))
    assert props["date"] == start.astimezone(china).date().isoformat()
    assert props["duration_s"] == 2 * 60
    # only finished patrols have a track to draw: an active one is not a feature
    active = client.post("/api/patrols", json={}, headers=people["chief"])
    assert active.status_code == 201
    assert active.json()["id"] not in features(
        client.get("/api/patrols", params={"f": "geojson"}, headers=people["admin"])
    )
    assert Point(lon, lat).distance(shape(line["geometry"])) < 1e-6


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"bbox": "a,b,c,d"}, "not a list of numbers"),
        ({"bbox": "118,24,119"}, "4 finite numbers"),
        ({"bbox": "119,24,118,25"}, "greater than its maximum"),
        ({"bbox": "118,24,200,25"}, "-180..180"),
        ({"bbox": "118,24,119,nan"}, "finite"),
        ({"f": "kml"}, "f"),
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_views_and_formats_are_400_saying_what_to_fix(client, people, params, words) -> None:
    for path in ("/api/issues", "/api/alerts", "/api/patrols"):
        answer = client.get(path, params={"f": "geojson", **params}, headers=people["planner"])
        assert answer.status_code == 400, (path, params, answer.text)
        assert words in str(answer.json()["detail"]), answer.json()


def test_the_map_formats_are_documented(client) -> None:
    document = client.get("/openapi.json").json()
    for path in ("/api/issues", "/api/alerts", "/api/patrols"):
        operation = document["paths"][path]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert "minlon,minlat,maxlon,maxlat" in parameters["bbox"]["description"]
        assert parameters["f"]["schema"]["enum"] == ["json", "geojson"]
        assert GEOJSON in operation["responses"]["200"]["content"]
        assert {"400", "401", "403"} <= set(operation["responses"])
