"""Chiefs at work on the map, in real Chromium: river segments drawn in their sections' class
colours with a legend, a station popup with a chart of its last days, a chief's view opening on
their open alerts and overdue issues, and the river's file (一河一档) opened from it and printed
to PDF with its content."""

from __future__ import annotations

import io
import re
import unicodedata
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from pypdf import PdfReader

from gis_service.access import admin
from gis_service.access.audit import AuditContext
from gis_service.monitoring.status.service import refresh_status
from tests.browser.conftest import ARTIFACTS, MapPage
from tests.conftest import run_async

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chief_case(database_url: str) -> Iterator[dict]:
    """A town chief of a river segment with a classed station, an account, an open alert routed to
    them and an overdue issue of theirs (removed afterwards)."""

    async def setup() -> tuple[str, str]:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await refresh_status(conn)
            login, password = f"chief-{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex
            await admin.add_user(conn, AuditContext("test-suite", "cli"), login, "chief", password, row[0])
            return login, password

    with psycopg.connect(database_url, autocommit=True) as db:
        row = db.execute(
            "SELECT a.chief_id, r.id, r.name, s.id, c.name FROM chief_assignment AS a"
            " JOIN chief AS c ON c.id = a.chief_id JOIN river AS r ON a.layer = 'river' AND r.id = a.feature_id"
            " JOIN station AS s ON s.river_id = r.id AND s.kind <> 'outfall'"
            " JOIN station_status AS ss ON ss.station_id = s.id AND ss.water_class IS NOT NULL"
            " ORDER BY c.level = 'town' DESC, a.chief_id, r.id LIMIT 1"
        ).fetchone()
        assert row, "the demo data should have a chief of a segment with a classed station"
        login, password = run_async(setup())
        alert = db.execute(
            "INSERT INTO workflow_alert (rule, station_id, state, severity, first_seen, last_seen)"
            " VALUES ('browser_test', %s, 'open', 'high', now() - interval '3 hours', now()) RETURNING id",
            [row[3]],
        ).fetchone()[0]
        db.execute("INSERT INTO workflow_alert_chief (alert_id, chief_id) VALUES (%s, %s)", [alert, row[0]])
        issue = db.execute(
            "INSERT INTO workflow_issue (title, category, severity, source, state, geom, river_id, deadline, reporter)"
            " SELECT '河面漂浮垃圾待清理', 'floating', 'medium', 'patrol', 'assigned', ST_PointOnSurface(r.geom), r.id,"
            " now() - interval '1 day', 'test' FROM river AS r WHERE r.id = %s RETURNING id",
            [row[1]],
        ).fetchone()[0]
        db.execute("INSERT INTO workflow_issue_chief (issue_id, chief_id) VALUES (%s, %s)", [issue, row[0]])
        yield {
            "chief": row[0],
            "river": row[1],
            "river_name": row[2],
            "station": row[3],
            "chief_name": row[4],
            "login": login,
            "password": password,
            "alert": alert,
            "issue": issue,
        }
        db.execute("DELETE FROM workflow_alert WHERE id = %s", [alert])
        db.execute("DELETE FROM workflow_issue WHERE id = %s", [issue])


def sign_in(page: MapPage, login: str, password: str) -> None:
    page.open()
    page.page.click("#account-toggle")
    page.page.fill("#signin-username", login)
    page.page.fill("#signin-password", password)
    with page.page.expect_navigation():
        page.page.click("#signin-form button[type=submit]")
    page.page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)


def test_a_chief_opens_on_their_alerts_and_prints_the_river_file(map_page: MapPage, chief_case: dict) -> None:
    sign_in(map_page, chief_case["login"], chief_case["password"])
    page = map_page.page
    page.wait_for_selector(f"#chief-work [data-alert='{chief_case['alert']}']")
    page.wait_for_selector(f"#chief-work [data-issue='{chief_case['issue']}']")
    assert "河面漂浮垃圾待清理" in page.inner_text("#chief-work")
    map_page.wait_idle()
    map_page.screenshot("chief-work")

    link = page.locator(f".water-file-link[data-file='river/{chief_case['river']}']")
    with page.context.expect_page() as opened:
        link.click()
    file_page = opened.value
    file_page.wait_for_load_state()
    body = file_page.inner_text("body")
    assert "一河一档" in body and "River file" in body and chief_case["river_name"] in body
    assert chief_case["chief_name"] in body and "河面漂浮垃圾待清理" in body
    trend_cells = file_page.locator("table.trend tr").nth(1).locator("td.cls").count()
    assert trend_cells == 13  # current class and 12 months
    file_page.screenshot(path=str(ARTIFACTS / "river-file.png"), full_page=True)
    pdf = file_page.pdf(format="A4", print_background=True)
    (ARTIFACTS / "river-file.pdf").write_bytes(pdf)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    flat = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))  # NFKC: the "ﬁ" ligature is "fi"
    for expected in ("一河一档", "Riverfile", chief_case["river_name"], chief_case["chief_name"], "12-monthtrend"):
        assert expected in flat, expected
    assert "打印/Print" not in flat  # the print button is for the screen
    file_page.close()

    # The assessment workbook of a month is one click from the chief panel (the list).
    page.click("#chief-back")
    href = page.get_attribute("#assessment-download", "href")
    answer = map_page.js("(href) => fetch(href).then((r) => [r.status, r.headers.get('content-type')])", href)
    assert answer[0] == 200 and answer[1].startswith("application/vnd.openxmlformats")
    assert not map_page.errors, map_page.errors


def test_rivers_are_coloured_by_class_with_a_legend_and_stations_chart_their_days(
    map_page: MapPage, chief_case: dict, db
) -> None:
    lon, lat = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM station WHERE id = %s", [chief_case["station"]]
    ).fetchone()
    map_page.open(f"#map=14/{lat}/{lon}")
    map_page.page.wait_for_function(
        "() => window.ecomapMap.queryRenderedFeatures({layers: ['river-line']}).length > 0", timeout=30_000
    )
    classed = map_page.js(
        "() => window.ecomapMap.queryRenderedFeatures({layers: ['river-line']})"
        ".filter((f) => f.properties.water_class)"
        ".map((f) => [f.id, f.properties.water_class, f.properties.status_colour])"
    )
    assert classed, "the segments with a classed station are drawn with their class"
    expected = dict(
        db.execute(
            "SELECT s.river_id, ss.colour FROM station AS s JOIN station_status AS ss ON ss.station_id = s.id"
            " WHERE s.river_id = ANY(%s) AND s.kind <> 'outfall' AND ss.water_class IS NOT NULL",
            [[c[0] for c in classed]],
        ).fetchall()
    )
    assert {c[0] for c in classed} <= set(expected)
    # The legend of the river layer lists the GB 3838 classes.
    legend = map_page.js("() => [...document.querySelectorAll('.status-legend')].map((e) => e.textContent).join(' ')")
    assert "GB 3838" in legend and "劣V" in legend

    pixel = map_page.find_feature_pixel("station-circle")
    assert pixel, "a station is drawn"
    x, y = map_page.canvas_point(pixel["x"], pixel["y"])
    map_page.page.mouse.click(x, y)
    map_page.page.wait_for_selector(".ecomap-popup .station-chart, .ecomap-popup .station-chart-empty", timeout=20_000)
    map_page.wait_idle()
    map_page.screenshot("station-popup-chart")
    if map_page.page.locator(".ecomap-popup .station-chart").count():
        assert map_page.page.locator(".ecomap-popup .station-chart circle").count() >= 1
