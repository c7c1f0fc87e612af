"""The issue workflow (问题处置): reporting locates the issue on the river network, bays,
watersheds and districts and finds its chiefs; every step is allowed only from the right
state, to the right roles and (for chiefs) within their jurisdiction; everything is recorded.

Expected places and chiefs are worked out here with SQL of the test's own (point on the
segment, containing polygons, chief assignments), not taken from the service.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.access.principal import USER_ROLES
from gis_service.workflow.machine import RULES_FILE, WorkflowFileError, load_workflow, parse_workflow
from tests.test_access import add_user, bearer, make_client, sign_in

WORKFLOW = load_workflow()


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    with make_client(database_url) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def river_case(database_url: str) -> dict:
    """A river segment with a chief, a point on it, and where that point lies."""
    with psycopg.connect(database_url) as db:
        chief_id, river_id, lon, lat = db.execute(
            "SELECT a.chief_id, r.id, ST_X(p), ST_Y(p) FROM chief_assignment AS a"
            " JOIN river AS r ON a.layer = 'river' AND r.id = a.feature_id,"
            " LATERAL ST_ClosestPoint(r.geom, ST_Centroid(r.geom)) AS p ORDER BY a.chief_id, r.id LIMIT 1"
        ).fetchone()
        point = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)"
        where = {"lon": lon, "lat": lat}
        adcode = db.execute(f"SELECT adcode FROM district WHERE ST_Intersects(geom, {point})", where).fetchone()[0]
        watersheds = [r[0] for r in db.execute(f"SELECT id FROM watershed WHERE ST_Intersects(geom, {point})", where)]
        chiefs = sorted(
            r[0]
            for r in db.execute(
                "SELECT DISTINCT chief_id FROM chief_assignment WHERE (layer = 'river' AND feature_id = %(river)s)"
                " OR (layer = 'watershed' AND feature_id = ANY(%(sheds)s))",
                {"river": river_id, "sheds": watersheds},
            )
        )
        outsider = db.execute("SELECT min(id) FROM chief WHERE id <> ALL(%s)", [chiefs]).fetchone()[0]
    return {
        "chief_id": chief_id,
        "river_id": river_id,
        "point": {"type": "Point", "coordinates": [lon, lat]},
        "adcode": adcode,
        "watersheds": watersheds,
        "chiefs": chiefs,
        "outsider": outsider,
    }


@pytest.fixture(scope="module")
def tokens(client: TestClient, database_url: str, river_case: dict) -> dict[str, dict[str, str]]:
    """A bearer header per role; `chief` is responsible for the river case, `outsider` is not."""
    result = {}
    for role in USER_ROLES:
        chief = river_case["chief_id"] if role == "chief" else None
        result[str(role)] = bearer(sign_in(client, *add_user(database_url, str(role), chief))["access_token"])
    result["outsider"] = bearer(
        sign_in(client, *add_user(database_url, "chief", river_case["outsider"]))["access_token"]
    )
    return result


def report(client: TestClient, headers: dict, river_case: dict, **fields) -> dict:
    body = {"title": "排污口冒黑水", "category": "sewage", "severity": "high", "geometry": river_case["point"]}
    response = client.post("/api/issues", json={**body, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def step(client: TestClient, headers: dict, issue_id: int, **body):
    return client.post(f"/api/issues/{issue_id}/transitions", json=body, headers=headers)


def test_a_report_is_located_and_routed_to_its_chiefs(client, tokens, river_case) -> None:
    issue = report(client, tokens["chief"], river_case, source="patrol")
    assert issue["state"] == "reported" and issue["reporter"].startswith("chief-")
    assert issue["river_id"] == river_case["river_id"]
    assert issue["adcode"] == river_case["adcode"]
    assert issue["watershed_id"] in river_case["watersheds"]
    assert issue["chiefs"] == river_case["chiefs"] and river_case["chief_id"] in issue["chiefs"]
    listed = client.get("/api/issues", params={"chief_id": river_case["chief_id"]}, headers=tokens["planner"])
    assert issue["id"] in [i["id"] for i in listed.json()["issues"]]
    others = client.get("/api/issues", params={"chief_id": river_case["outsider"]}, headers=tokens["planner"])
    assert issue["id"] not in [i["id"] for i in others.json()["issues"]]


def test_an_issue_goes_from_report_to_closure_with_every_step_recorded(client, tokens, river_case, db) -> None:
    issue = report(client, tokens["chief"], river_case)
    iid = issue["id"]
    detail = client.get(f"/api/issues/{iid}", headers=tokens["chief"]).json()
    assert {a["to"] for a in detail["actions"]} == {"assigned", "closed"}

    missing = step(client, tokens["chief"], iid, to="assigned", department="思明区水利局")
    assert missing.status_code == 400 and "deadline" in missing.json()["detail"]
    assert (
        step(
            client, tokens["chief"], iid, to="assigned", department="思明区水利局", deadline="2020-01-01T00:00:00+08:00"
        ).status_code
        == 400
    )  # in the past
    assigned = step(
        client, tokens["chief"], iid, to="assigned", department="思明区水利局", deadline="2099-01-01T18:00:00+08:00"
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["department"] == "思明区水利局" and not assigned.json()["overdue"]

    assert step(client, tokens["data_manager"], iid, to="handled").status_code == 400  # evidence needed
    handled = step(client, tokens["data_manager"], iid, to="handled", note="已封堵排污口，附现场照片")
    assert handled.status_code == 200 and handled.json()["state"] == "handled"
    sent_back = step(client, tokens["chief"], iid, to="assigned", note="仍有渗漏")
    assert sent_back.status_code == 200 and sent_back.json()["state"] == "assigned"
    assert step(client, tokens["data_manager"], iid, to="handled", note="二次封堵").status_code == 200
    assert step(client, tokens["chief"], iid, to="verified").status_code == 200
    closed = step(client, tokens["chief"], iid, to="closed")
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None

    history = closed.json()["history"]
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        (None, "reported"),
        ("reported", "assigned"),
        ("assigned", "handled"),
        ("handled", "assigned"),
        ("assigned", "handled"),
        ("handled", "verified"),
        ("verified", "closed"),
    ]
    assert history[2]["note"] == "已封堵排污口，附现场照片" and history[2]["actor"].startswith("data-manager-")
    audited = db.execute(
        "SELECT count(*) FROM audit_log WHERE target = %s AND action = 'issue.transition'", [f"issue:{iid}"]
    ).fetchone()[0]
    assert audited == 6
    final = step(client, tokens["admin"], iid, to="assigned", department="x", deadline="2099-01-01T00:00:00Z")
    assert final.status_code == 409 and "final" in final.json()["detail"]


def test_steps_not_allowed_from_the_state_are_refused_naming_the_allowed_ones(client, tokens, river_case) -> None:
    iid = report(client, tokens["chief"], river_case)["id"]
    refused = step(client, tokens["chief"], iid, to="verified")
    assert refused.status_code == 409
    assert "reported" in refused.json()["detail"] and "assigned, closed" in refused.json()["detail"]
    unknown = step(client, tokens["chief"], iid, to="done")
    assert unknown.status_code == 400 and "closed" in unknown.json()["detail"]


def test_each_role_may_take_exactly_the_steps_the_workflow_gives_it(client, tokens, river_case) -> None:
    transition = WORKFLOW.transition("reported", "assigned")
    for role in USER_ROLES:
        iid = report(client, tokens["admin"], river_case, source="hotline", hotline_ref="12345-2026-001")["id"]
        answer = step(
            client,
            tokens[str(role)],
            iid,
            to="assigned",
            department="市生态环境局",
            deadline="2099-06-30T18:00:00+08:00",
        )
        expected = 200 if role in transition.roles else 403
        assert answer.status_code == expected, (role, answer.text)
        if expected == 403:
            assert "allowed: " in answer.json()["detail"]


def test_a_chief_acts_only_within_their_jurisdiction(client, tokens, river_case) -> None:
    iid = report(client, tokens["chief"], river_case)["id"]
    outside = step(client, tokens["outsider"], iid, to="closed", note="不是我的")
    assert outside.status_code == 403 and "jurisdiction" in outside.json()["detail"]
    assert client.get(f"/api/issues/{iid}", headers=tokens["outsider"]).json()["actions"] == []


def test_who_may_report_and_read(client, tokens, river_case) -> None:
    body = {"title": "t", "category": "waste", "geometry": river_case["point"]}
    assert client.post("/api/issues", json=body).status_code == 401
    assert client.get("/api/issues").status_code == 401
    planner = client.post("/api/issues", json=body, headers=tokens["planner"])
    assert planner.status_code == 403 and "chief" in planner.json()["detail"]
    alert = client.post("/api/issues", json={**body, "source": "alert"}, headers=tokens["admin"])
    assert alert.status_code == 403 and "platform" in alert.json()["detail"]


def test_a_report_sent_twice_is_recorded_once(client, tokens, river_case, db) -> None:
    key = uuid.uuid4().hex
    first = report(client, tokens["chief"], river_case, idempotency_key=key)
    again = client.post(
        "/api/issues",
        json={"title": "排污口冒黑水", "category": "sewage", "geometry": river_case["point"], "idempotency_key": key},
        headers=tokens["chief"],
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert db.execute("SELECT count(*) FROM workflow_issue WHERE idempotency_key = %s", [key]).fetchone()[0] == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"category": "noise"}, "category 'noise' is not one of sewage"),
        ({"severity": "huge"}, "severity"),
        ({"geometry": {"type": "LineString", "coordinates": [[118.1, 24.5], [118.11, 24.51]]}}, "not a line"),
        ({"geometry": {"type": "Point", "coordinates": [121.47, 31.23]}}, "ECOMAP_REGION"),
        ({"geometry": {"type": "Point", "coordinates": ["a", 1]}}, "coordinates"),
        ({"colour": "red"}, "colour"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_reports_get_a_clear_400_and_store_nothing(client, tokens, river_case, db, change, expected) -> None:
    before = db.execute("SELECT count(*) FROM workflow_issue").fetchone()[0]
    body = {"title": "t", "category": "sewage", "geometry": river_case["point"], **change}
    answer = client.post("/api/issues", json=body, headers=tokens["chief"])
    assert answer.status_code == 400, answer.text
    assert expected in answer.json()["detail"]
    assert db.execute("SELECT count(*) FROM workflow_issue").fetchone()[0] == before


def test_the_workflow_file_is_validated_strictly() -> None:
    text = RULES_FILE.read_text(encoding="utf-8")
    with pytest.raises(WorkflowFileError, match="unknown states"):
        parse_workflow(text.replace("{from: handled, to: verified", "{from: handled, to: approved"), "test.yaml")
    with pytest.raises(WorkflowFileError, match="machine keys"):
        parse_workflow(text.replace("roles: [chief, admin]}", "roles: [station]}", 1), "test.yaml")
    with pytest.raises(WorkflowFileError, match=r"test\.yaml"):
        parse_workflow(text + "\nescalation: {}\n", "test.yaml")
    labels = WORKFLOW.model_dump()["states"]
    assert labels["reported"] == {"zh": "上报", "en": "Reported"} and labels["closed"]["zh"] == "办结"


# --- patrols (巡河 / 巡湾) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def river_track(database_url: str, river_case: dict) -> list[tuple[float, float]]:
    """The river case's segment vertices (at most 40), a walk along it."""
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT ST_X(d.geom), ST_Y(d.geom) FROM river AS r, ST_DumpPoints(r.geom) AS d WHERE r.id = %s"
            " ORDER BY d.path LIMIT 40",
            [river_case["river_id"]],
        ).fetchall()
    assert len(rows) >= 2
    return [(float(x), float(y)) for x, y in rows]


def geodesic_length(track: list[tuple[float, float]]) -> float:
    from pyproj import Geod

    lons, lats = zip(*track, strict=True)
    return Geod(ellps="WGS84").line_length(lons, lats)


def timed(track: list[tuple[float, float]], start: dt.datetime, step_s: int = 30) -> list[dict]:
    return [
        {"lon": lon, "lat": lat, "time": (start + dt.timedelta(seconds=i * step_s)).isoformat(), "accuracy_m": 5}
        for i, (lon, lat) in enumerate(track)
    ]


def test_a_patrol_records_its_track_once_measures_it_and_finds_what_it_passed(
    client, tokens, river_case, river_track, db
) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    key = uuid.uuid4().hex
    began = client.post(
        "/api/patrols", json={"started_at": start.isoformat(), "idempotency_key": key}, headers=tokens["chief"]
    )
    assert began.status_code == 201, began.text
    pid = began.json()["id"]
    again = client.post(
        "/api/patrols", json={"started_at": start.isoformat(), "idempotency_key": key}, headers=tokens["chief"]
    )
    assert again.status_code == 200 and again.json()["id"] == pid
    points = timed(river_track, start)
    half = len(points) // 2
    assert (
        client.post(
            f"/api/patrols/{pid}/points", json={"points": points[: half + 1]}, headers=tokens["chief"]
        ).status_code
        == 200
    )
    resent = client.post(f"/api/patrols/{pid}/points", json={"points": points}, headers=tokens["chief"])
    assert resent.status_code == 200 and resent.json()["points"] == len(points), "re-sent points stored once"
    other = client.post(f"/api/patrols/{pid}/points", json={"points": points[:1]}, headers=tokens["outsider"])
    assert other.status_code == 403

    finished = client.post(f"/api/patrols/{pid}/finish", json={"note": "岸线整洁"}, headers=tokens["chief"])
    assert finished.status_code == 200, finished.text
    patrol = finished.json()
    assert patrol["state"] == "finished" and patrol["note"] == "岸线整洁"
    assert patrol["length_m"] == pytest.approx(geodesic_length(river_track), rel=1e-3)
    assert patrol["duration_s"] == (len(points) - 1) * 30
    assert {"layer": "river", "feature_id": river_case["river_id"]} in patrol["passed"]
    far = db.execute(
        "SELECT r.id FROM river AS r, workflow_patrol AS p WHERE p.id = %s"
        " ORDER BY ST_Distance(r.geom::geography, p.track::geography) DESC LIMIT 1",
        [pid],
    ).fetchone()[0]
    assert {"layer": "river", "feature_id": far} not in patrol["passed"]
    late = client.post(f"/api/patrols/{pid}/points", json={"points": points[:1]}, headers=tokens["chief"])
    assert late.status_code == 409 and "finished" in late.json()["detail"]
    assert client.get(f"/api/patrols/{pid}", headers=tokens["planner"]).json()["track"]["type"] == "LineString"


def gpx(track: list[tuple[float, float]], start: dt.datetime, with_time: bool = True) -> bytes:
    points = "".join(
        f'<trkpt lat="{lat}" lon="{lon}">'
        + (f"<time>{(start + dt.timedelta(seconds=60 * i)).strftime('%Y-%m-%dT%H:%M:%SZ')}</time>" if with_time else "")
        + "</trkpt>"
        for i, (lon, lat) in enumerate(track)
    )
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>巡河</name><trkseg>{points}</trkseg></trk></gpx>"
    ).encode()


def test_a_gpx_track_from_another_device_becomes_a_patrol(client, tokens, river_case, river_track) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    answer = client.post(
        "/api/patrols/gpx", files={"file": ("walk.gpx", gpx(river_track, start))}, headers=tokens["chief"]
    )
    assert answer.status_code == 201, answer.text
    patrol = answer.json()
    assert patrol["origin"] == "gpx" and patrol["points"] == len(river_track)
    assert patrol["length_m"] == pytest.approx(geodesic_length(river_track), rel=1e-3)
    assert patrol["duration_s"] == 60 * (len(river_track) - 1)
    for content, expected in (
        (b"not a gpx file", "not GPX"),
        (gpx(river_track, start, with_time=False), "<time>"),
        (gpx([(121.47, 31.23), (121.48, 31.24)], start), "ECOMAP_REGION"),
    ):
        refused = client.post("/api/patrols/gpx", files={"file": ("x.gpx", content)}, headers=tokens["chief"])
        assert refused.status_code == 400 and expected in refused.json()["detail"], refused.text
    planner = client.post(
        "/api/patrols/gpx", files={"file": ("w.gpx", gpx(river_track, start))}, headers=tokens["planner"]
    )
    assert planner.status_code == 403


def test_patrols_are_counted_against_each_levels_required_frequency(client, tokens, river_case, db) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    report_ = client.get(
        "/api/patrols/frequency",
        params={"since": since.isoformat(), "until": until.isoformat()},
        headers=tokens["planner"],
    )
    assert report_.status_code == 200, report_.text
    rows = {r["chief_id"]: r for r in report_.json()["chiefs"]}
    mine = rows[river_case["chief_id"]]
    done = db.execute(
        "SELECT count(*) FROM workflow_patrol WHERE chief_id = %s AND state = 'finished'"
        " AND started_at >= %s AND started_at < %s",
        [river_case["chief_id"], since, until],
    ).fetchone()[0]
    assert mine["done"] == done >= 1
    every = WORKFLOW.patrol_frequency[mine["level"]].every_days
    assert mine["required"] == -(-31 // every)  # 31 days, rounded up
    assert mine["meets"] == (done >= mine["required"])
    backwards = client.get(
        "/api/patrols/frequency",
        params={"since": until.isoformat(), "until": since.isoformat()},
        headers=tokens["planner"],
    )
    assert backwards.status_code == 400 and "after" in backwards.json()["detail"]
    assert client.post("/api/patrols", json={}, headers=tokens["planner"]).status_code == 403


# --- photos -------------------------------------------------------------------------------


def jpeg_with_exif(width: int, height: int, lon: float, lat: float, orientation: int = 6) -> bytes:
    from fractions import Fraction

    from PIL import ExifTags, Image

    def dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        seconds = Fraction(round(((value - degrees) * 60 - minutes) * 60 * 10000), 10000)
        return Fraction(degrees), Fraction(minutes), seconds

    image = Image.new("RGB", (width, height), (30, 90, 160))
    image.paste((200, 40, 40), (0, 0, width // 4, height // 4))  # a red corner: shows the orientation
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Model] = "Phone X (serial 12345)"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:11:30 09:15:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", dms(lon)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo_client(database_url: str, tmp_path_factory) -> Iterator[tuple[TestClient, Path]]:
    from gis_service import create_app
    from tests.conftest import make_settings
    from tests.test_access import access_settings

    directory = tmp_path_factory.mktemp("photos")
    settings = make_settings(
        database_url,
        access=access_settings(),
        workflow={"photo_dir": directory, "photo_max_mb": 1},
        hj212={"enabled": False},
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client, directory


def test_a_photo_is_checked_turned_upright_resized_and_stripped(photo_client, tokens, river_case, client) -> None:
    import hashlib

    from PIL import Image

    photo_api, directory = photo_client
    iid = report(client, tokens["chief"], river_case)["id"]
    content = jpeg_with_exif(3000, 1000, 118.0894, 24.4798)
    added = photo_api.post(
        f"/api/issues/{iid}/photos",
        files={"file": ("p.jpg", content, "image/jpeg")},
        data={"caption": "排污口"},
        headers=tokens["chief"],
    )
    assert added.status_code == 201, added.text
    photo = added.json()
    assert (photo["width"], photo["height"]) == (683, 2048), "rotated upright (orientation 6), longest side 2048"
    assert photo["lon"] == pytest.approx(118.0894, abs=1e-5) and photo["lat"] == pytest.approx(24.4798, abs=1e-5)
    assert photo["taken_at"].startswith("2026-11-30T01:15:00")  # 09:15 in China
    served = photo_api.get(f"/api/issues/{iid}/photos/{photo['id']}", headers=tokens["planner"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(served.content).hexdigest() == photo["sha256"]
    assert (directory / photo["sha256"][:2] / f"{photo['sha256']}.jpg").read_bytes() == served.content
    image = Image.open(io.BytesIO(served.content))
    assert len(image.getexif()) == 0, "no EXIF (phone model, serial, position) in the stored photo"
    assert image.getpixel((image.width - 5, 5))[0] > 150, "the red corner is top right once upright"
    detail = photo_api.get(f"/api/issues/{iid}", headers=tokens["planner"]).json()
    assert [p["id"] for p in detail["photos"]] == [photo["id"]]
    assert photo_api.get(f"/api/issues/{iid}/photos/{photo['id']}").status_code == 401


def test_a_photo_sent_again_to_the_same_issue_is_stored_once(photo_client, tokens, river_case, client, db) -> None:
    """An offline phone re-sends a photo whose first answer it lost: the issue keeps one copy;
    another issue (or another photo) is stored as usual."""
    photo_api, _ = photo_client
    first_issue = report(client, tokens["chief"], river_case)["id"]
    other_issue = report(client, tokens["chief"], river_case)["id"]
    content = jpeg_with_exif(1200, 900, 118.0894, 24.4798)

    def send(issue_id: int, data: bytes):
        return photo_api.post(
            f"/api/issues/{issue_id}/photos", files={"file": ("p.jpg", data, "image/jpeg")}, headers=tokens["chief"]
        )

    first, again = send(first_issue, content), send(first_issue, content)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["sha256"] == first.json()["sha256"]
    assert send(other_issue, content).status_code == 201
    assert send(first_issue, jpeg_with_exif(1200, 901, 118.0894, 24.4798)).status_code == 201
    counts = db.execute(
        "SELECT issue_id, count(*) FROM workflow_photo WHERE issue_id = ANY(%s) GROUP BY issue_id ORDER BY issue_id",
        [[first_issue, other_issue]],
    ).fetchall()
    assert counts == [(first_issue, 2), (other_issue, 1)]
    audited = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'issue.photo' AND target = %s", [f"issue:{first_issue}"]
    ).fetchone()[0]
    assert audited == 2, "the re-sent photo is not audited as a second upload"


def _image(kind: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size).save(out, kind)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "status", "expected"),
    [
        (b"just text, not a photo", 415, "not an image"),
        (_image("GIF", (40, 40)), 415, "GIF"),
        (_image("PNG", (9000, 6000), mode="1"), 413, "MP"),
        (os.urandom(1_200_000), 413, "limit is 1 MB"),
        (b"", 400, "empty"),
    ],
    ids=["text", "gif", "too-many-pixels", "too-many-bytes", "empty"],
)
def test_bad_huge_and_non_image_files_are_refused(
    photo_client, tokens, river_case, client, db, content, status, expected
) -> None:
    photo_api, _ = photo_client
    iid = report(client, tokens["chief"], river_case)["id"]
    answer = photo_api.post(f"/api/issues/{iid}/photos", files={"file": ("x", content)}, headers=tokens["chief"])
    assert answer.status_code == status, answer.text
    assert expected in answer.json()["detail"]
    assert db.execute("SELECT count(*) FROM workflow_photo WHERE issue_id = %s", [iid]).fetchone()[0] == 0


def test_a_truncated_photo_is_refused(photo_client, tokens, river_case, client) -> None:
    photo_api, _ = photo_client
    iid = report(client, tokens["chief"], river_case)["id"]
    broken = jpeg_with_exif(800, 600, 118.1, 24.5)[:3000]
    answer = photo_api.post(f"/api/issues/{iid}/photos", files={"file": ("b.jpg", broken)}, headers=tokens["chief"])
    assert answer.status_code == 400 and "cannot be decoded" in answer.json()["detail"]


# --- public reports (公众参与) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def public_client(database_url: str, tmp_path_factory) -> Iterator[TestClient]:
    from gis_service import create_app
    from tests.conftest import make_settings
    from tests.test_access import access_settings

    settings = make_settings(
        database_url,
        access=access_settings(),
        workflow={"photo_dir": tmp_path_factory.mktemp("public-photos")},
        limits={"public_report": 3, "window_s": 3600},
        hj212={"enabled": False},
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_anyone_reports_pollution_and_follows_only_their_own_report(public_client, tokens, river_case) -> None:
    lon, lat = river_case["point"]["coordinates"]
    form = {
        "title": "河面有油污",
        "category": "water_quality",
        "lon": str(lon),
        "lat": str(lat),
        "contact": "13800000000",
        "description": "桥下一片彩色油膜",
    }
    sent = public_client.post(
        "/api/public-reports", data=form, files={"photo": ("p.jpg", jpeg_with_exif(800, 600, lon, lat), "image/jpeg")}
    )
    assert sent.status_code == 201, sent.text
    receipt = sent.json()
    assert receipt["state"] == "reported" and receipt["label"]["zh"] == "上报" and len(receipt["tracking_code"]) >= 16
    followed = public_client.get(f"/api/public-reports/{receipt['tracking_code']}")
    assert followed.status_code == 200
    assert set(followed.json()) == {
        "id",
        "title",
        "category",
        "state",
        "created_at",
        "updated_at",
        "closed_at",
        "label",
    }, "no contact, reporter, notes or place"
    assert public_client.get("/api/public-reports/not-a-code").status_code == 404
    assert public_client.get(f"/api/issues/{receipt['id']}").status_code == 401

    staff = public_client.get(f"/api/issues/{receipt['id']}", headers=tokens["data_manager"]).json()
    assert staff["source"] == "public" and staff["contact"] == "13800000000" and len(staff["photos"]) == 1
    assert river_case["chief_id"] in staff["chiefs"]
    planner = public_client.get(f"/api/issues/{receipt['id']}", headers=tokens["planner"]).json()
    assert "contact" not in planner, "a planner does not handle reports: no personal data"


def test_public_reports_are_rate_limited_per_address(public_client, river_case) -> None:
    lon, lat = river_case["point"]["coordinates"]
    form = {"title": "垃圾", "category": "waste", "lon": str(lon), "lat": str(lat)}
    answers = [public_client.post("/api/public-reports", data=form) for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["retry-after"]) > 0 and "public reports" in limited[0].json()["detail"]


# --- assessment (考核) -------------------------------------------------------------------------


def test_the_assessment_counts_patrols_and_issues_handled_on_time_and_late(client, tokens, river_case, db) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    chief = river_case["chief_id"]
    ids = [report(client, tokens["chief"], river_case)["id"] for _ in range(3)]
    for iid in ids[:2]:
        assert (
            step(
                client, tokens["chief"], iid, to="assigned", department="区水利局", deadline="2099-01-01T00:00:00Z"
            ).status_code
            == 200
        )
        assert step(client, tokens["data_manager"], iid, to="handled", note="done").status_code == 200
    # The second was handled after its deadline; the third is past its deadline unhandled.
    db.execute("UPDATE workflow_issue SET deadline = now() - interval '2 hours' WHERE id = %s", [ids[1]])
    db.execute(
        "UPDATE workflow_transition SET created_at = now() - interval '1 hour'"
        " WHERE issue_id = %s AND to_state = 'handled'",
        [ids[1]],
    )
    db.execute("UPDATE workflow_issue SET deadline = now() - interval '1 hour' WHERE id = %s", [ids[2]])

    params = {"since": since.isoformat(), "until": until.isoformat()}
    result = client.get("/api/assessment", params=params, headers=tokens["planner"])
    assert result.status_code == 200, result.text
    mine = next(r for r in result.json()["chiefs"] if r["chief_id"] == chief)
    expected = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE i.state = 'closed') FROM workflow_issue AS i"
        " JOIN workflow_issue_chief AS c ON c.issue_id = i.id WHERE c.chief_id = %s AND i.created_at >= %s"
        " AND i.created_at < %s",
        [chief, since, until],
    ).fetchone()
    assert (mine["issues"], mine["closed"]) == expected
    assert mine["late"] >= 1 and mine["overdue_open"] >= 1 and mine["on_time"] >= 1
    done = db.execute(
        "SELECT count(*) FROM workflow_patrol WHERE chief_id = %s AND state = 'finished'"
        " AND started_at >= %s AND started_at < %s",
        [chief, since, until],
    ).fetchone()[0]
    assert mine["patrols_done"] == done
    district = next(d for d in result.json()["districts"] if d["adcode"] == river_case["adcode"])
    assert district["issues"] >= 3

    as_csv = client.get("/api/assessment", params={**params, "f": "csv"}, headers=tokens["planner"])
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("河湖长编号 (Chief)") and len(lines) == 1 + len(result.json()["chiefs"])
    as_xlsx = client.get("/api/assessment", params={**params, "f": "xlsx"}, headers=tokens["planner"])
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(as_xlsx.content))
    assert book.sheetnames == ["河湖长 Chiefs", "区 Districts"]
    assert book["河湖长 Chiefs"].max_row == 1 + len(result.json()["chiefs"])
    too_long = client.get(
        "/api/assessment",
        params={"since": "2024-01-01T00:00:00Z", "until": until.isoformat()},
        headers=tokens["planner"],
    )
    assert too_long.status_code == 400 and "year" in too_long.json()["detail"]
    assert client.get("/api/assessment", params=params).status_code == 401


# --- one file per river and bay (一河一档 / 一湾一档) -------------------------------------------


def test_the_file_of_a_river_gathers_its_segments_chiefs_stations_issues_and_neighbours(
    client, tokens, river_case, db
) -> None:
    answer = client.get(f"/api/rivers/{river_case['river_id']}/file", headers=tokens["planner"])
    assert answer.status_code == 200, answer.text
    file = answer.json()
    name = db.execute("SELECT name FROM river WHERE id = %s", [river_case["river_id"]]).fetchone()[0]
    segments = [r[0] for r in db.execute("SELECT id FROM river WHERE name = %s ORDER BY id", [name])]
    assert file["name"] == name and [s["id"] for s in file["segments"]] == segments
    assert river_case["chief_id"] in [c["id"] for c in file["chiefs"]]
    on_river = {r[0] for r in db.execute("SELECT id FROM station WHERE river_id = ANY(%s)", [segments])}
    assert {s["id"] for s in file["stations"] + file["outfalls"]} == on_river
    assert all(s["kind"] == "outfall" for s in file["outfalls"])
    upstream = {
        r[0]
        for r in db.execute(
            "SELECT id FROM river WHERE downstream_id = ANY(%s) AND NOT id = ANY(%s)", [segments, segments]
        )
    }
    downstream = {
        r[0]
        for r in db.execute(
            "SELECT downstream_id FROM river WHERE id = ANY(%s) AND downstream_id IS NOT NULL"
            " AND NOT downstream_id = ANY(%s)",
            [segments, segments],
        )
    }
    assert {n["id"] for n in file["upstream"]} == upstream
    assert {n["id"] for n in file["downstream"]} == downstream
    open_issues = db.execute(
        "SELECT count(*) FROM workflow_issue WHERE river_id = ANY(%s) AND state <> 'closed'", [segments]
    ).fetchone()[0]
    assert file["issues"]["open"] == open_issues >= 1
    assert file["patrols"], "the patrols along the river are in its file"
    assert client.get("/api/rivers/999999/file", headers=tokens["planner"]).status_code == 404
    assert client.get(f"/api/rivers/{river_case['river_id']}/file").status_code == 401


def test_the_file_of_a_bay(client, tokens, db) -> None:
    bay_id, name = db.execute("SELECT id, name FROM bay ORDER BY id LIMIT 1").fetchone()
    file = client.get(f"/api/bays/{bay_id}/file", headers=tokens["chief"]).json()
    assert file["kind"] == "bay" and file["name"] == name
    crossing = {
        r[0]
        for r in db.execute(
            "SELECT r.id FROM redline AS r, bay AS b WHERE b.id = %s AND ST_Intersects(r.geom, b.geom)", [bay_id]
        )
    }
    assert {r["id"] for r in file["redlines"]} == crossing
    assert client.get("/api/bays/999999/file", headers=tokens["chief"]).status_code == 404
