"""The chiefs' work on the map, in real Chromium: open issues and alerts as a clustered layer
(cluster circles with counts at low zoom, single issues coloured by severity with the overdue
one flagged at high zoom, a cluster zooming in when clicked, an issue's popup with its state,
category and overdue badge) and patrol tracks, offered in the layer panel to signed-in staff
only and switched on for a chief, who sees their own issues."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from gis_service.access import admin
from gis_service.access.audit import AuditContext
from tests.browser.conftest import MapPage
from tests.browser.test_water_map import sign_in
from tests.conftest import run_async

pytestmark = pytest.mark.browser
SPACING = 0.0008
"""Degrees between the test's issues (about 80 m): one cluster at zoom 11, apart at zoom 17."""


def account(database_url: str, role: str, chief_id: int | None = None) -> tuple[str, str]:
    login, password = f"{role}-{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex

    async def create() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await admin.add_user(conn, AuditContext("test-suite", "cli"), login, role, password, chief_id)

    run_async(create())
    return login, password


@pytest.fixture(scope="module")
def work(database_url: str) -> Iterator[dict]:
    """Six open issues of a river's chief in a small grid by the river (one overdue, one critical),
    one issue of another chief beside them, an alert at the nearest station and a finished
    patrol along the grid (all removed afterwards)."""
    with psycopg.connect(database_url, autocommit=True) as db:
        chief, lon, lat = db.execute(
            "SELECT a.chief_id, ST_X(p), ST_Y(p) FROM chief_assignment AS a"
            " JOIN river AS r ON a.layer = 'river' AND r.id = a.feature_id,"
            " LATERAL ST_ClosestPoint(r.geom, ST_Centroid(r.geom)) AS p ORDER BY a.chief_id, r.id LIMIT 1"
        ).fetchone()
        lon, lat = lon + SPACING / 2, lat + SPACING / 2  # clear of the issues other tests report on the river
        other = db.execute("SELECT min(id) FROM chief WHERE id <> %s", [chief]).fetchone()[0]
        issues = []
        cases = [("high", "assigned", True), ("critical", "reported", False)] + [("low", "reported", False)] * 4
        for index, (severity, state, overdue) in enumerate(cases):
            x, y = lon + (index % 3) * SPACING, lat + (index // 3) * SPACING
            issue = db.execute(
                "INSERT INTO workflow_issue (title, category, severity, source, state, geom, deadline, reporter)"
                " VALUES (%s, 'floating', %s, 'patrol', %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326),"
                " CASE WHEN %s THEN now() - interval '1 day' END, 'test') RETURNING id",
                [f"地图测试问题 {index}", severity, state, x, y, overdue],
            ).fetchone()[0]
            db.execute("INSERT INTO workflow_issue_chief (issue_id, chief_id) VALUES (%s, %s)", [issue, chief])
            issues.append(issue)
        foreign = db.execute(
            "INSERT INTO workflow_issue (title, category, severity, source, state, geom, reporter)"
            " VALUES ('他人辖区问题', 'waste', 'medium', 'patrol', 'reported', ST_SetSRID(ST_MakePoint(%s, %s), 4326),"
            " 'test') RETURNING id",
            [lon + 3 * SPACING, lat],
        ).fetchone()[0]
        db.execute("INSERT INTO workflow_issue_chief (issue_id, chief_id) VALUES (%s, %s)", [foreign, other])
        station, s_lon, s_lat = db.execute(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM station"
            " ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1",
            [lon, lat],
        ).fetchone()
        db.execute("DELETE FROM workflow_alert WHERE station_id = %s AND rule = 'data_missing'", [station])
        alert = db.execute(
            "INSERT INTO workflow_alert (rule, station_id, state, severity, first_seen, last_seen)"
            " VALUES ('data_missing', %s, 'open', 'high', now() - interval '5 hours', now()) RETURNING id",
            [station],
        ).fetchone()[0]
        db.execute("INSERT INTO workflow_alert_chief (alert_id, chief_id) VALUES (%s, %s)", [alert, chief])
        patrol = db.execute(
            "INSERT INTO workflow_patrol (chief_id, actor, state, started_at, ended_at, track, length_m, origin)"
            " SELECT %s, 'test', 'finished', now() - interval '2 hours', now() - interval '1 hour', t,"
            " ST_Length(t::geography), 'app'"
            " FROM ST_SetSRID(ST_MakeLine(ST_MakePoint(%s, %s), ST_MakePoint(%s, %s)), 4326) AS t RETURNING id",
            [chief, lon - SPACING, lat - SPACING, lon + 3 * SPACING, lat + 2 * SPACING],
        ).fetchone()[0]
        yield {
            "chief": chief,
            "center": [lon + SPACING, lat + SPACING / 2],
            "issues": issues,
            "overdue": issues[0],
            "foreign": foreign,
            "alert": alert,
            "station_at": [s_lon, s_lat],
            "patrol": patrol,
            "chief_login": account(database_url, "chief", chief),
            "planner_login": account(database_url, "planner"),
        }
        db.execute("DELETE FROM workflow_patrol WHERE id = %s", [patrol])
        db.execute("DELETE FROM workflow_alert WHERE id = %s", [alert])
        db.execute("DELETE FROM workflow_issue WHERE id = ANY(%s)", [[*issues, foreign]])


def rendered(page: MapPage, layer: str) -> list[dict]:
    return page.js(
        """(layer) => window.ecomapMap.queryRenderedFeatures({layers: [layer]})
             .map((f) => ({properties: f.properties, coordinates: f.geometry.coordinates}))""",
        layer,
    )


def go(page: MapPage, center: list[float], zoom: float) -> None:
    page.js("([center, zoom]) => window.ecomapMap.jumpTo({center, zoom})", [center, zoom])
    page.wait_idle()
    page.page.wait_for_timeout(600)  # the view's features are read 250 ms after the move
    page.wait_idle()


def test_anonymous_visitors_get_no_work_layers(map_page: MapPage) -> None:
    map_page.open()
    assert map_page.page.locator("[data-group='work']").count() == 0
    assert map_page.js("() => window.ecomap.workLayers.available('issues')") is False
    assert not [url for url in map_page.requests if "/api/issues" in url or "/api/patrols" in url]


def test_issues_cluster_at_low_zoom_and_stand_apart_at_high_zoom(map_page: MapPage, work: dict) -> None:
    sign_in(map_page, *work["planner_login"])
    page = map_page.page
    page.wait_for_selector("#layer-toggle-work-issues")
    assert "问题与告警" in page.inner_text("[data-group='work']") and "巡查轨迹" in page.inner_text(
        "[data-group='work']"
    )
    assert not page.is_checked("#layer-toggle-work-issues")  # a planner turns it on
    page.check("#layer-toggle-work-issues")
    page.check("#layer-toggle-work-patrols")
    layers = map_page.js("() => new URLSearchParams(location.hash.slice(1)).get('layers')").split(",")
    assert {"work-issues", "work-patrols"} <= set(layers), "the link keeps the work layers"

    go(map_page, work["center"], 11)
    page.wait_for_function("() => window.ecomapMap.queryRenderedFeatures({layers: ['work-clusters']}).length > 0")
    clusters = rendered(map_page, "work-clusters")
    assert max(c["properties"]["point_count"] for c in clusters) >= len(work["issues"]) + 1  # the foreign one too
    assert rendered(map_page, "work-cluster-count"), "cluster counts are drawn"
    assert not [f for f in rendered(map_page, "work-issue-points") if f["properties"]["id"] in work["issues"]]
    map_page.screenshot("work-map-clusters")

    # a click on the cluster zooms in
    biggest = map_page.js(
        """() => { const map = window.ecomapMap;
             const [c] = map.queryRenderedFeatures({layers: ['work-clusters']})
               .sort((a, b) => b.properties.point_count - a.properties.point_count);
             const p = map.project(c.geometry.coordinates); return [p.x, p.y]; }"""
    )
    page.mouse.click(*map_page.canvas_point(*biggest))
    page.wait_for_function("() => window.ecomapMap.getZoom() > 11.5")

    go(map_page, work["center"], 17)
    points = {f["properties"]["id"]: f for f in rendered(map_page, "work-issue-points")}
    assert set(work["issues"]) <= set(points) and work["foreign"] in points
    assert points[work["overdue"]]["properties"]["overdue"] is True
    assert {points[i]["properties"]["severity"] for i in work["issues"]} == {"high", "critical", "low"}
    assert not rendered(map_page, "work-clusters")
    flags = rendered(map_page, "work-flags")
    assert any(f["properties"].get("id") == work["overdue"] for f in flags), "the overdue issue is flagged"
    tracks = {f["properties"]["id"] for f in rendered(map_page, "work-patrol-lines")}
    assert work["patrol"] in tracks
    map_page.screenshot("work-map-points")

    # the overdue issue's popup: state, category, overdue badge
    px, py = map_page.js(
        """(id) => { const map = window.ecomapMap;
             const f = map.queryRenderedFeatures({layers: ['work-issue-points']}).find((f) => f.properties.id === id);
             const p = map.project(f.geometry.coordinates); return [p.x, p.y]; }""",
        work["overdue"],
    )
    page.mouse.click(*map_page.canvas_point(px, py))
    popup = page.wait_for_selector(f".work-popup[data-kind='issue'][data-id='{work['overdue']}']")
    text = popup.inner_text()
    assert "交办" in text and "水面漂浮物" in text and "超期" in text, text
    assert page.locator(".work-popup [data-overdue='true']").count() == 1
    assert page.locator(".ecomap-popup:not(.work-layers-popup)").count() == 0, "no second popup of the layers below"
    map_page.wait_idle()
    map_page.screenshot("work-map-popup")
    assert not map_page.errors, map_page.errors


def test_a_chief_opens_with_the_layer_on_and_their_own_issues(map_page: MapPage, work: dict) -> None:
    sign_in(map_page, *work["chief_login"])
    page = map_page.page
    page.wait_for_function("() => window.ecomap.workLayers.isVisible('issues')")
    assert page.is_checked("#layer-toggle-work-issues")
    assert not map_page.js("() => window.ecomap.workLayers.isVisible('patrols')")
    # a link with the patrol tracks opens them too (once the chief's view has framed the jurisdiction)
    map_page.wait_idle()
    map_page.js("() => { location.hash = 'layers=river,work-issues,work-patrols'; }")
    page.wait_for_function("() => window.ecomap.workLayers.isVisible('patrols')")
    assert page.is_checked("#layer-toggle-work-patrols")
    go(map_page, work["center"], 17)
    page.wait_for_function(
        "(id) => window.ecomapMap.queryRenderedFeatures({layers: ['work-issue-points']})"
        ".some((f) => f.properties.id === id)",
        arg=work["overdue"],
    )
    points = {f["properties"]["id"] for f in rendered(map_page, "work-issue-points")}
    assert set(work["issues"]) <= points and work["foreign"] not in points
    go(map_page, work["station_at"], 15)
    alerts = {f["properties"]["id"] for f in rendered(map_page, "work-alert-points")}
    assert work["alert"] in alerts, "the alert routed to the chief is drawn at its station"
    map_page.screenshot("work-map-chief")
