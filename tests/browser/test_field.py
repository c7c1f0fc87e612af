"""The field app on a phone, in real Chromium: a chief patrols with the phone's GPS (emulated),
adds findings with photos, loses the network (points, a finding and the patrol's end are made
offline, the page is even reloaded offline and served by the service worker), and when the
network returns the service holds every point, finding and photo exactly once — also when the
answer to an upload was lost and it was sent again. A patrol finished elsewhere meanwhile is
explained, not dropped silently. Anyone reports pollution with a photo and gets a tracking code.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Route

from gis_service.access import admin
from gis_service.access.audit import AuditContext
from tests.browser.conftest import PHONE, MapPage, _new_map_page
from tests.conftest import run_async

pytestmark = pytest.mark.browser
MIN_TARGET = 44
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


@pytest.fixture(scope="module")
def patrol_case(database_url: str) -> dict:
    """A town river chief and eight points along their segment (lon, lat), in walking order."""
    with psycopg.connect(database_url) as conn:
        chief_id, segment = conn.execute(
            "SELECT a.chief_id, a.feature_id FROM chief_assignment AS a JOIN chief AS c ON c.id = a.chief_id"
            " WHERE a.layer = 'river' AND c.level = 'town' ORDER BY a.chief_id, a.feature_id LIMIT 1"
        ).fetchone()
        points = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM river AS r,"
            " LATERAL generate_series(1, 8) AS i,"
            " LATERAL ST_LineInterpolatePoint(ST_GeometryN(ST_Multi(r.geom), 1), i / 10.0) AS p"
            " WHERE r.id = %s ORDER BY i",
            [segment],
        ).fetchall()
    return {"chief_id": chief_id, "segment": segment, "points": [(float(x), float(y)) for x, y in points]}


def chief_login(database_url: str, chief_id: int) -> tuple[str, str]:
    login, password = f"field-{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex

    async def create() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await admin.add_user(conn, AuditContext("test-suite", "cli"), login, "chief", password, chief_id)

    run_async(create())
    return login, password


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture()
def gps_phone(
    browser: Browser, live_server: str, patrol_case: dict, request: pytest.FixtureRequest
) -> Iterator[tuple[MapPage, BrowserContext]]:
    """A phone (390x844, touch) that may use its location, standing at the patrol's first point."""
    lon, lat = patrol_case["points"][0]
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
        permissions=["geolocation"],
    )
    phone = _new_map_page(context, live_server)
    yield phone, context
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        phone.screenshot(f"FAILED-{request.node.name}")
    context.close()


def sign_in(phone: MapPage, login: str, password: str) -> None:
    page = phone.page
    phone.open()
    page.locator("#account-toggle").tap()
    page.locator("#signin-username").fill(login)
    page.locator("#signin-password").fill(password)
    with page.expect_navigation():
        page.locator("#signin-form button[type=submit]").tap()
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
    page.locator("#field-start").wait_for()
    # The service worker installed on the first load controls the page since.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def points_shown(phone: MapPage) -> int:
    return int(phone.page.locator("#field-stats").get_attribute("data-points"))


def walk_to(phone: MapPage, context: BrowserContext, point: tuple[float, float], expected_points: int) -> None:
    context.set_geolocation({"longitude": point[0], "latitude": point[1], "accuracy": 8})
    phone.page.wait_for_function(
        "(n) => Number(document.getElementById('field-stats')?.dataset.points) === n", arg=expected_points
    )


QUEUED_JS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open('ecomap-field');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const count = open.result.transaction('ops').objectStore('ops').count();
    count.onsuccess = () => resolve(count.result);
  };
})"""
"""How many requests the phone's outbox holds (IndexedDB, the truth the dock shows)."""


def wait_all_sent(phone: MapPage) -> None:
    """Until the outbox is empty and the dock says so."""
    phone.page.wait_for_function(f"async () => ({QUEUED_JS})().then((n) => n === 0)", timeout=30_000)
    phone.page.wait_for_function(
        "() => { const s = document.getElementById('field-status');"
        " return s && s.dataset.pending === '0' && s.classList.contains('is-online'); }"
    )


def small_targets(phone: MapPage, selector: str) -> list:
    return phone.js(
        """([selector, min]) => [...document.querySelectorAll(selector)]
          .filter((el) => el.offsetParent !== null)
          .map((el) => {
            const r = el.getBoundingClientRect();
            return [el.id || el.textContent.trim(), r.width, r.height];
          })
          .filter(([, w, h]) => Math.min(w, h) < min - 0.5)""",
        [selector, MIN_TARGET],
    )


def add_finding(phone: MapPage, note: str, photo: bytes, *, tap_map: bool = False) -> None:
    page = phone.page
    page.locator("#field-finding").tap()
    page.locator("#finding-form").wait_for()
    page.locator("#finding-category").select_option("sewage")
    page.locator("#finding-severity label", has_text="严重").first.tap()
    page.locator("#finding-note").fill(note)
    page.locator("#finding-photo").set_input_files(files=[{"name": "p.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    page.locator("#finding-photo-preview img").wait_for()
    if tap_map:
        page.locator("#field-location-tap").tap()
        page.locator("#field-pick-banner").wait_for()
        box = page.locator(".maplibregl-canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
        page.locator("#finding-form").wait_for()
        assert page.locator("#field-location-status").get_attribute("data-set") == "tapped"
    else:
        page.wait_for_function("() => document.getElementById('field-location-status').dataset.set === 'current'")
    assert small_targets(phone, "#finding-dialog button, #finding-dialog .field-option, #finding-dialog select") == []
    phone.screenshot("phone-field-finding-form-map" if tap_map else "phone-field-finding-form")
    page.locator("#finding-save").tap()
    page.locator("#finding-dialog").wait_for(state="detached")


def test_a_patrol_recorded_partly_offline_arrives_once(
    gps_phone: tuple[MapPage, BrowserContext], patrol_case: dict, database_url: str
) -> None:
    phone, context = gps_phone
    page = phone.page
    login, password = chief_login(database_url, patrol_case["chief_id"])
    sign_in(phone, login, password)
    assert small_targets(phone, "#field-dock button") == []

    # Keep the jurisdiction's map for offline use.
    page.locator("#field-offline").tap()
    page.wait_for_function("() => document.getElementById('field-offline').dataset.saved > 0", timeout=120_000)
    kept = phone.js("async () => (await (await caches.open('ecomap-tiles')).keys()).length")
    assert kept > 0

    # The first answer to a batch of points and to the finding is lost on the way back: the phone
    # sends them again, the service keeps each once. (A photo's multipart body is a Blob, which
    # Playwright's interception does not see: tests/test_workflow.py sends a photo twice.)
    first_photo = jpeg(1200, 900, (40, 40, 40))
    lost: dict[str, int] = {}

    def lose_first_answer(route: Route) -> None:
        kind = route.request.url.rsplit("/", 1)[-1]
        answer = route.fetch()  # the service has it ...
        if kind not in lost:
            lost[kind] = answer.status
            route.abort("connectionreset")  # ... the phone never hears back
        else:
            route.fulfill(response=answer)

    lossy = ["**/api/patrols/*/points", "**/api/issues"]
    for pattern in lossy:
        context.route(pattern, lose_first_answer)

    points = patrol_case["points"]
    page.locator("#field-start").tap()
    for index in range(3):
        walk_to(phone, context, points[index], index + 1)
    assert page.locator("#field-duration").inner_text().startswith("00:")
    add_finding(phone, "排口冒黑水，有异味", first_photo)
    wait_all_sent(phone)
    assert lost == {"points": 200, "issues": 201}, "each kind of upload lost its first answer"
    for pattern in lossy:
        context.unroute(pattern)
    phone.screenshot("phone-field-patrol-online")

    # The network goes: points and a finding (located by a tap) are kept on the phone.
    context.set_offline(True)
    page.wait_for_function("() => document.getElementById('field-status').classList.contains('is-offline')")
    for index in range(3, 6):
        walk_to(phone, context, points[index], index + 1)
    add_finding(phone, "岸边堆放垃圾", jpeg(900, 1200, (120, 90, 30)), tap_map=True)
    pending = phone.js(QUEUED_JS)
    assert pending == 3 + 2, "three points, the finding and its photo wait"
    page.wait_for_function("(n) => document.getElementById('field-status').dataset.pending === String(n)", arg=pending)
    phone.screenshot("phone-field-patrol-offline")

    # Reloaded without network: the service worker serves the app, the patrol goes on.
    page.reload()
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
    page.locator("#field-stop").wait_for()
    assert points_shown(phone) == 6
    assert int(page.locator("#field-status").get_attribute("data-pending")) == pending
    phone.wait_idle()
    rivers = phone.js(
        "() => window.ecomapMap.queryRenderedFeatures({layers: window.ecomapMap.getStyle().layers"
        ".filter((l) => l.metadata?.['ecomap:layer'] === 'river').map((l) => l.id)}).length"
    )
    assert rivers > 0, "the jurisdiction's rivers are drawn from the kept tiles"
    walk_to(phone, context, points[6], 7)
    page.locator("#field-stop").tap()
    page.locator("#field-start").wait_for()
    recorded = int(page.locator("#field-last-patrol").get_attribute("data-points"))
    length_m = float(page.locator("#field-last-patrol").get_attribute("data-length-m"))
    assert recorded in (7, 8), "seven places, and where it ended when a later fix came"
    phone.screenshot("phone-field-offline-reloaded")

    # The network returns: everything goes up, once.
    context.set_offline(False)
    wait_all_sent(phone)
    assert page.locator("#field-problems-toggle").count() == 0, "nothing was refused"
    with psycopg.connect(database_url) as conn:
        patrols = conn.execute(
            "SELECT id, state, length_m, (SELECT count(*) FROM workflow_patrol_point AS pt WHERE pt.patrol_id = p.id),"
            " (SELECT count(DISTINCT recorded_at) FROM workflow_patrol_point AS pt WHERE pt.patrol_id = p.id)"
            " FROM workflow_patrol AS p WHERE actor = %s",
            [login],
        ).fetchall()
        assert len(patrols) == 1, patrols
        patrol_id, state, server_length, stored, distinct = patrols[0]
        assert state == "finished" and stored == distinct == recorded
        track = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM workflow_patrol_point WHERE patrol_id = %s ORDER BY recorded_at",
            [patrol_id],
        ).fetchall()
        places = [(round(x, 7), round(y, 7)) for x, y in track]
        places = [place for i, place in enumerate(places) if i == 0 or place != places[i - 1]]
        assert places == [(round(x, 7), round(y, 7)) for x, y in points[:7]]
        # The length shown live is the one the service measured on the ellipsoid.
        assert server_length == pytest.approx(length_m, rel=1e-6)
        issues = conn.execute(
            "SELECT i.title, i.source, i.state, i.river_id, (SELECT count(*) FROM workflow_photo AS ph"
            " WHERE ph.issue_id = i.id) FROM workflow_issue AS i WHERE reporter = %s ORDER BY i.id",
            [login],
        ).fetchall()
    assert [(title, source, state, photos) for title, source, state, _, photos in issues] == [
        ("排口冒黑水，有异味", "patrol", "reported", 1),
        ("岸边堆放垃圾", "patrol", "reported", 1),
    ]
    assert issues[0][3] == patrol_case["segment"], "the finding at the GPS fix lies on the chief's segment"
    assert page.locator("#field-last-patrol").is_visible()
    phone.screenshot("phone-field-all-sent")


def test_a_patrol_finished_elsewhere_is_explained(
    gps_phone: tuple[MapPage, BrowserContext], patrol_case: dict, database_url: str, live_server: str
) -> None:
    phone, context = gps_phone
    page = phone.page
    login, password = chief_login(database_url, patrol_case["chief_id"])
    sign_in(phone, login, password)
    points = patrol_case["points"]
    page.locator("#field-start").tap()
    for index in range(2):
        walk_to(phone, context, points[index], index + 1)
    wait_all_sent(phone)
    context.set_offline(True)
    for index in range(2, 4):
        walk_to(phone, context, points[index], index + 1)
    # The same chief finishes the patrol on another device meanwhile.
    with httpx.Client(base_url=live_server) as other:
        token = other.post("/api/auth/token", data={"username": login, "password": password}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        patrol = other.get("/api/patrols", headers=headers).json()["patrols"]
        mine = [p for p in patrol if p["actor"] == login]
        assert len(mine) == 1
        finished = other.post(f"/api/patrols/{mine[0]['id']}/finish", json={}, headers=headers)
        assert finished.status_code == 200, finished.text
    context.set_offline(False)
    # The phone says what happened, and stops recording the patrol the service has closed.
    page.locator("#field-problems li").first.wait_for(timeout=30_000)
    page.locator("#field-start").wait_for()
    problem = page.locator("#field-problems li").first.inner_text()
    assert "已在别处结束" in problem and "2 个轨迹点" in problem, problem
    assert "finished" in problem, "the service's own reason is shown"
    phone.screenshot("phone-field-conflict")
    # In English too, nothing of the dock left in Chinese.
    page.locator("#lang-toggle").tap()
    english = page.locator("#field-dock").inner_text()
    assert "finished elsewhere" in english and "2 points" in english, english
    assert not CJK.search(english), english
    phone.screenshot("phone-field-conflict-en")
    page.locator("#lang-toggle").tap()
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM workflow_patrol_point WHERE patrol_id = %s", [mine[0]["id"]]
        ).fetchone()[0]
    assert stored == 2, "the points after the patrol ended are not added to it"
    page.locator("#field-problems li button").first.tap()
    page.locator("#field-problems-toggle").wait_for(state="detached")


def test_anyone_reports_pollution_with_a_photo_and_gets_a_tracking_code(phone_page: MapPage, database_url: str) -> None:
    page = phone_page.page
    phone_page.open()
    page.locator("#public-report-open").tap()
    page.locator("#public-report-form").wait_for()
    page.locator("#public-title").fill("河面漂浮大量垃圾")
    page.locator("#public-category").select_option("floating")
    page.locator("#public-description").fill("桥下往东约五十米")
    page.locator("#public-contact").fill("13800000001")
    page.locator("#public-photo").set_input_files(
        files=[{"name": "r.jpg", "mimeType": "image/jpeg", "buffer": jpeg(800, 600, (10, 120, 200))}]
    )
    page.locator("#field-location-tap").tap()
    box = page.locator(".maplibregl-canvas").bounding_box()
    # Where the tap lands.
    where = phone_page.js(
        "([x, y]) => window.ecomapMap.unproject([x, y]).toArray()", [box["width"] / 2, box["height"] / 2]
    )
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator("#public-report-form").wait_for()
    assert page.locator(".maplibregl-popup").count() == 0, "the location tap opens no feature popup"
    targets = "#public-report button, #public-report input:not([type=file]), #public-report select"
    assert small_targets(phone_page, targets) == []
    phone_page.screenshot("phone-public-report-form")
    page.locator("#public-report-send").tap()
    code = page.locator("#public-report-code").inner_text()
    assert len(code) >= 16
    phone_page.screenshot("phone-public-report-receipt")
    page.locator("#public-report-follow").tap()
    page.wait_for_function("() => document.getElementById('public-report-state').textContent.includes('上报')")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT i.source, i.state, i.reporter, i.reporter_contact, ST_X(i.geom), ST_Y(i.geom),"
            " (SELECT count(*) FROM workflow_photo AS p WHERE p.issue_id = i.id)"
            " FROM workflow_issue AS i WHERE public_code_hash = %s",
            [hashlib.sha256(code.encode()).hexdigest()],
        ).fetchall()
    assert len(rows) == 1
    source, state, reporter, contact, lon, lat, photos = rows[0]
    assert (source, state, reporter, contact, photos) == ("public", "reported", "public", "13800000001", 1)
    # The report lies where the map was tapped.
    assert lon == pytest.approx(where[0], abs=1e-6) and lat == pytest.approx(where[1], abs=1e-6)
    assert phone_page.errors == []
