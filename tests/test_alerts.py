"""Alerts from the monitoring data, against the real PostGIS with the demo data (a database of
this module's own): episodes are stored through the observation store as a data logger's
packets are, the evaluator's passes run as the service runs them (as the web role), and what
they raise is checked against expectations worked out here — the upstream network walked in
Python from the river table's ``downstream_id`` links, the responsible chiefs from
``chief_assignment`` and the containing polygons, the multiples from GB 3838's table.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.monitoring.hj212 import Reading, build_data_packet, parse_data_packet, parse_frame
from gis_service.monitoring.store import PartitionKeeper, store_packet
from gis_service.services.network import STATION_REACH_M
from gis_service.settings import AlertSettings
from gis_service.workflow.alerts.lifecycle import PassResult, evaluate_stations
from gis_service.workflow.alerts.rules import AlertRules, load_rules, parse_rules
from gis_service.workflow.machine import load_workflow
from layers.catalog import load_catalog
from tests.conftest import demo_database, make_settings, run_async, scratch_database_name, web_url
from tests.test_access import access_settings, add_user, bearer, sign_in, unique
from tests.test_chiefs_network_search import river_graph, upstream_distances
from tests.test_degrade import serving

RULES = load_rules()
WORKFLOW = load_workflow()
CATALOG = load_catalog()
HOUR = dt.timedelta(hours=1)
NH3N_LIMITS = {"I": 0.15, "II": 0.5, "III": 1.0, "IV": 1.5, "V": 2.0}
"""GB 3838-2002 表1 氨氮 (NH3-N) ≤ limits, mg/L."""
CLEAN = {"w01001": 7.5, "w01009": 7.0, "w01019": 3.0, "w21003": 0.3, "w21011": 0.05}
"""Class II by GB 3838 表1 (pH 6–9, DO ≥ 6, COD_Mn ≤ 4, NH3-N ≤ 0.5, TP ≤ 0.1): within every river target."""
EPISODE = [1.2, 1.5, 2.4, 2.8, 2.0, 1.6]
"""NH3-N of the six episode hours, as multiples of the target class limit."""


@pytest.fixture(scope="module")
def url() -> str:
    return demo_database(scratch_database_name("alerts"))


def ingest(url: str, mn: str, when: dt.datetime, values: dict[str, float], flags: dict[str, str] | None = None):
    """Store one hourly packet (HJ 212 CN 2061) through the observation store, as the web role."""
    readings = [Reading(code, value, (flags or {}).get(code, "N")) for code, value in values.items()]
    packet = parse_data_packet(parse_frame(build_data_packet(mn=mn, cn="2061", data_time=when, readings=readings)))

    async def main():
        async with await psycopg.AsyncConnection.connect(web_url(url), autocommit=True) as conn:
            await store_packet(conn, packet, PartitionKeeper())

    run_async(main())


def evaluation_pass(
    url: str, full: set[int] | None, now: dt.datetime | None = None, rules: AlertRules = RULES
) -> PassResult:
    """One pass of the evaluator, as the service runs it (web role)."""

    async def main():
        async with await psycopg.AsyncConnection.connect(web_url(url), autocommit=True) as conn:
            return await evaluate_stations(conn, CATALOG, rules, WORKFLOW, now or dt.datetime.now(dt.UTC), full)

    return run_async(main())


def newest(db: psycopg.Connection, station_id: int | None = None) -> dt.datetime:
    """The newest latest value of a station (of any when None)."""
    return db.execute(
        "SELECT max(l.phenomenon_time) FROM datastream_latest AS l JOIN datastream AS d ON d.id = l.datastream_id"
        " WHERE %(s)s::int IS NULL OR d.station_id = %(s)s",
        {"s": station_id},
    ).fetchone()[0]


def alerts_of(db: psycopg.Connection, station_id: int, rule: str) -> list[dict]:
    cursor = db.cursor(row_factory=psycopg.rows.dict_row)
    return cursor.execute(
        "SELECT * FROM workflow_alert WHERE station_id = %s AND rule = %s ORDER BY id", [station_id, rule]
    ).fetchall()


def events_of(db: psycopg.Connection, alert_id: int) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT action, severity FROM workflow_alert_event WHERE alert_id = %s ORDER BY id", [alert_id]
    ).fetchall()


def responsible_chiefs(db: psycopg.Connection, station_id: int) -> list[int]:
    """Chiefs of the station's segment, of the bay and of every watershed it lies in."""
    return [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT a.chief_id FROM chief_assignment AS a, station AS s WHERE s.id = %s AND ("
            " (a.layer = 'river' AND a.feature_id = s.river_id)"
            " OR (a.layer = 'bay' AND a.feature_id IN (SELECT b.id FROM bay AS b WHERE ST_Intersects(b.geom, s.geom)))"
            " OR (a.layer = 'watershed' AND a.feature_id IN"
            "     (SELECT w.id FROM watershed AS w WHERE ST_Intersects(w.geom, s.geom)))) ORDER BY 1",
            [station_id],
        )
    ]


def upstream_on_network(
    db: psycopg.Connection, own: int, fraction: float, exclude: int | None = None
) -> tuple[dict[int, float], dict[int, float]]:
    """Upstream of the point at ``fraction`` of segment ``own``: the segments (walked in Python
    from ``downstream_id``; km from the point to each one's downstream end) and the water
    stations and outfalls on them and on ``own`` above the point, with their km along the network."""
    _, length = river_graph(db)
    above = fraction * length[own]  # the own segment above the point, then the walk up from its top
    reach = {segment: above + distance for segment, distance in upstream_distances(db, own).items()}
    located = db.execute(
        "SELECT t.id, r.id, ST_LineLocatePoint(ST_LineMerge(r.geom), t.geom) FROM station AS t JOIN river AS r"
        " ON t.river_id = r.id OR (t.river_id IS NULL AND ST_DWithin(t.geom::geography, r.geom::geography, %s))"
        " WHERE t.kind IN ('water_auto', 'section', 'outfall', 'drinking_intake') AND t.id IS DISTINCT FROM %s"
        " AND r.id = ANY(%s)",
        [STATION_REACH_M, exclude, [own, *reach]],
    ).fetchall()
    found: dict[int, float] = {}
    for sid, segment, f in located:
        if segment == own:
            if f > fraction:
                continue  # below the point
            distance = (fraction - f) * length[own]
        else:
            distance = reach[segment] + (1 - f) * length[segment]
        found[sid] = min(distance, found.get(sid, distance))
    return reach, found


def nearest_first(found: dict[int, float]) -> list[tuple[int, float]]:
    return sorted(found.items(), key=lambda item: (item[1], item[0]))


@pytest.fixture(scope="module")
def episode_station(url: str) -> dict:
    """An active river station with segments upstream and an outfall above it on its own segment."""
    with psycopg.connect(url) as db:
        sid, mn, target, river = db.execute(
            "SELECT s.id, s.mn, s.water_target, s.river_id FROM station AS s JOIN river AS r ON r.id = s.river_id"
            " WHERE s.status = 'active' AND s.kind IN ('water_auto', 'section')"
            " AND EXISTS (SELECT 1 FROM river AS u WHERE u.downstream_id = s.river_id)"
            " AND EXISTS (SELECT 1 FROM station AS o WHERE o.kind = 'outfall' AND o.river_id = s.river_id"
            "   AND ST_LineLocatePoint(ST_LineMerge(r.geom), o.geom)"
            "     < ST_LineLocatePoint(ST_LineMerge(r.geom), s.geom))"
            " ORDER BY s.id LIMIT 1"
        ).fetchone()
        DEMO_END[:] = [newest(db)]
    USED.add(sid)
    return {"id": sid, "mn": mn, "target": target, "river_id": river, "start": DEMO_END[0] + HOUR}


def test_an_episode_upstream_raises_one_alert_routed_to_the_chiefs_with_the_upstream_candidates(
    url: str, episode_station: dict
) -> None:
    station, start = episode_station, episode_station["start"]
    limit = NH3N_LIMITS[station["target"]]
    ingest(url, station["mn"], start, CLEAN)
    evaluation_pass(url, {station["id"]})
    with psycopg.connect(url) as db:
        assert not [a for a in alerts_of(db, station["id"], "section_off_target") if a["state"] == "open"]
    for hour, multiple in enumerate(EPISODE, start=1):  # one packet an hour, a pass after each
        ingest(url, station["mn"], start + hour * HOUR, {**CLEAN, "w21003": round(multiple * limit, 3)})
        evaluation_pass(url, {station["id"]})

    with psycopg.connect(url) as db:
        [alert] = alerts_of(db, station["id"], "section_off_target")  # one alert, not one per observation
        expected = [(round(m * limit, 3) - limit) / limit for m in EPISODE]
        assert alert["state"] == "open"
        assert (alert["first_seen"], alert["last_seen"]) == (start + HOUR, start + len(EPISODE) * HOUR)
        assert alert["peak"] == pytest.approx(max(expected)) and alert["measure"] == pytest.approx(expected[-1])
        assert alert["peak_at"] == start + (expected.index(max(expected)) + 1) * HOUR
        [deciding] = alert["detail"]["deciding_factors"]
        assert deciding["code"] == "w21003" and deciding["limit"] == limit
        # Opened medium (超标 0.2 倍), escalated to high once the peak reached 1 (the rule's step).
        assert events_of(db, alert["id"]) == [("opened", "medium"), ("escalated", "high")]
        assert alert["severity"] == "high"

        chiefs = responsible_chiefs(db, station["id"])
        routing = alert["routing"]
        assert sorted(c["id"] for c in routing["chiefs"]) == chiefs and chiefs
        assert [r[0] for r in db.execute("SELECT chief_id FROM workflow_alert_chief WHERE alert_id = %s"
                                          " ORDER BY 1", [alert["id"]])] == chiefs  # fmt: skip

        fraction = db.execute(
            "SELECT ST_LineLocatePoint(ST_LineMerge(r.geom), s.geom) FROM station AS s JOIN river AS r"
            " ON r.id = s.river_id WHERE s.id = %s",
            [station["id"]],
        ).fetchone()[0]
        reach, found = upstream_on_network(db, station["river_id"], fraction, station["id"])
        on_network = nearest_first(found)
        assert routing["traced"] == "river"
        assert {s["id"] for s in routing["segments"]} == {station["river_id"], *reach}
        for segment in routing["segments"]:
            if segment["id"] in reach:
                assert segment["distance_km"] == pytest.approx(reach[segment["id"]], abs=0.002)
            assigned = [r[0] for r in db.execute(
                "SELECT chief_id FROM chief_assignment WHERE layer = 'river' AND feature_id = %s ORDER BY 1",
                [segment["id"]])]  # fmt: skip
            assert segment["chiefs"] == assigned
        candidates = routing["candidates"]
        placed = [(c["id"], c["distance_km"]) for c in candidates if c["distance_km"] is not None]
        assert [c for c, _ in placed] == [c for c, _ in on_network]  # nearest first
        assert [d for _, d in placed] == pytest.approx([d for _, d in on_network], abs=0.002)
        assert all(c["distance_km"] is None for c in candidates[len(placed) :])  # inside upstream watersheds only
        kinds = {c["kind"] for c in candidates}
        assert "outfall" in kinds and kinds & {"section", "water_auto"}
        for candidate in candidates:
            codes = {r[0] for r in db.execute(
                "SELECT DISTINCT d.factor_code FROM datastream AS d JOIN datastream_latest AS l"
                " ON l.datastream_id = d.id WHERE d.station_id = %s", [candidate["id"]])}  # fmt: skip
            assert {v["code"] for v in candidate["latest"]} == codes

        issue = db.execute(
            "SELECT i.source, i.category, i.severity, i.state, ST_Equals(i.geom, s.geom), i.river_id,"
            " ARRAY(SELECT c.chief_id FROM workflow_issue_chief AS c WHERE c.issue_id = i.id ORDER BY 1)"
            " FROM workflow_issue AS i, station AS s WHERE i.id = %s AND s.id = %s",
            [alert["issue_id"], station["id"]],
        ).fetchone()
        assert issue == ("alert", "water_quality", "high", "reported", True, station["river_id"], chiefs)

        # The same data judged again changes nothing: one alert, the same events, not rewritten.
        evaluation_pass(url, {station["id"]})
        [again] = alerts_of(db, station["id"], "section_off_target")
        assert again["updated_at"] == alert["updated_at"] and len(events_of(db, alert["id"])) == 2

        # Cleared: resolved with the time of the clean value; the issue stays in the workflow.
        ingest(url, station["mn"], start + 7 * HOUR, CLEAN)
        evaluation_pass(url, {station["id"]})
        [resolved] = alerts_of(db, station["id"], "section_off_target")
        assert resolved["state"] == "resolved" and resolved["resolved_at"] is not None
        assert resolved["cleared_at"] == start + 7 * HOUR
        assert events_of(db, alert["id"])[-1] == ("resolved", "high")

        # Raised again while its issue is still open: a new alert that joins that issue.
        ingest(url, station["mn"], start + 8 * HOUR, {**CLEAN, "w21003": round(1.5 * limit, 3)})
        evaluation_pass(url, {station["id"]})
        first, second = alerts_of(db, station["id"], "section_off_target")
        assert second["state"] == "open" and second["issue_id"] == first["issue_id"]
        comments = [r[0] for r in db.execute(
            "SELECT body FROM workflow_comment WHERE issue_id = %s ORDER BY id", [first["issue_id"]])]  # fmt: skip
        assert len(comments) == 3 and "升级" in comments[0] and "解除" in comments[1] and "再次" in comments[2]


def other_station(db: psycopg.Connection, used: set[int]) -> tuple[int, str]:
    """An active river station not used by another test, with data up to the demo's last hour
    and no open alert."""
    return db.execute(
        "SELECT s.id, s.mn FROM station AS s WHERE s.status = 'active' AND s.standard = 'river'"
        " AND NOT s.id = ANY(%s) AND (SELECT max(l.phenomenon_time) FROM datastream_latest AS l"
        "   JOIN datastream AS d ON d.id = l.datastream_id WHERE d.station_id = s.id) >= %s"
        " AND NOT EXISTS (SELECT 1 FROM workflow_alert AS a WHERE a.station_id = s.id AND a.state = 'open')"
        " ORDER BY s.id LIMIT 1",
        [list(used), DEMO_END[0]],
    ).fetchone()


USED: set[int] = set()
"""Stations a test of this module injected data at (each test takes its own)."""
DEMO_END: list[dt.datetime] = []
"""The demo data's last hour (before this module stored anything)."""


def test_missing_data_opens_escalates_and_resolves(url: str, episode_station: dict) -> None:
    with psycopg.connect(url) as db:
        sid, mn = other_station(db, USED)
        USED.add(sid)
        last = newest(db, sid)
        evaluation_pass(url, set(), now=last + 7 * HOUR)
        [alert] = alerts_of(db, sid, "data_missing")
        assert (alert["state"], alert["severity"], alert["measure"]) == ("open", "low", 7.0)
        assert (alert["first_seen"], alert["last_seen"]) == (last + 6 * HOUR, last + 7 * HOUR)
        assert alert["issue_id"] is None  # the rule raises no issue
        evaluation_pass(url, set(), now=last + 31 * HOUR)  # 25 h without data since it was first seen missing
        [alert] = alerts_of(db, sid, "data_missing")
        assert (alert["severity"], alert["measure"], alert["last_seen"]) == ("medium", 31.0, last + 31 * HOUR)
        assert events_of(db, alert["id"]) == [("opened", "low"), ("escalated", "medium")]
        ingest(url, mn, last + HOUR, CLEAN)
        evaluation_pass(url, {sid}, now=last + 2 * HOUR)
        [alert] = alerts_of(db, sid, "data_missing")
        assert alert["state"] == "resolved" and alert["cleared_at"] == last + HOUR


def test_a_logger_fault_is_raised_and_cleared(url: str, episode_station: dict) -> None:
    with psycopg.connect(url) as db:
        sid, mn = other_station(db, USED)
        USED.add(sid)
        start = newest(db, sid) + HOUR
        ingest(url, mn, start, CLEAN, flags={"w21011": "D"})
        evaluation_pass(url, {sid})
        [alert] = alerts_of(db, sid, "logger_fault")
        assert (alert["state"], alert["measure"]) == ("open", 1.0)
        assert [(f["code"], f["flag"]) for f in alert["detail"]["factors"]] == [("w21011", "D")]
        ingest(url, mn, start + HOUR, CLEAN)
        evaluation_pass(url, {sid})
        [alert] = alerts_of(db, sid, "logger_fault")
        assert alert["state"] == "resolved" and alert["cleared_at"] == start + HOUR


ESCALATING = """
rules:
  do_low_test:
    zh: 溶解氧过低（测试）
    en: Dissolved oxygen too low (test)
    stations: {standards: [river]}
    condition: {type: outside_range, factor: w01009, min: 2}
    severity: medium
    escalation:
      - {after_hours: 2, severity: high}
      - {after_hours: 4, severity: critical}
    issue: {category: water_quality}
acknowledge: [chief, admin]
"""


def test_an_alert_escalates_while_it_persists_and_its_issue_follows(url: str, episode_station: dict) -> None:
    rules = parse_rules(ESCALATING, "escalating.yaml", WORKFLOW)
    with psycopg.connect(url) as db:
        sid, mn = other_station(db, USED)
        USED.add(sid)
        start = newest(db, sid) + HOUR
        severities = []
        for hour in range(5):
            ingest(url, mn, start + hour * HOUR, {**CLEAN, "w01009": 1.5})
            evaluation_pass(url, {sid}, rules=rules)
            severities.append(alerts_of(db, sid, "do_low_test")[0]["severity"])
        assert severities == ["medium", "medium", "high", "high", "critical"]
        [alert] = alerts_of(db, sid, "do_low_test")
        assert alert["measure"] == 0.5 and alert["last_seen"] - alert["first_seen"] == 4 * HOUR
        assert events_of(db, alert["id"]) == [("opened", "medium"), ("escalated", "high"), ("escalated", "critical")]
        issue_severity = db.execute("SELECT severity FROM workflow_issue WHERE id = %s", [alert["issue_id"]])
        assert issue_severity.fetchone()[0] == "critical"


def test_a_bay_station_is_traced_from_the_rivers_entering_the_bay(url: str, episode_station: dict) -> None:
    with psycopg.connect(url) as db:
        sid, mn, bay = db.execute(
            "SELECT s.id, s.mn, b.id FROM station AS s JOIN bay AS b ON ST_Intersects(b.geom, s.geom)"
            " WHERE s.kind = 'seawater' AND s.status = 'active' AND s.water_target = '二类' AND NOT s.id = ANY(%s)"
            " AND EXISTS (SELECT 1 FROM river AS r WHERE r.downstream_id IS NULL"
            "   AND ST_DWithin(ST_EndPoint(ST_LineMerge(r.geom))::geography, b.geom::geography, 1000))"
            " ORDER BY s.id LIMIT 1",
            [list(USED)],
        ).fetchone()
        USED.add(sid)
        # GB 3097-1997: DO 3.5 > 3 is 四类 (三类 > 4): worse than the bay's 二类 target.
        ingest(url, mn, newest(db, sid) + HOUR, {"w01001": 8.1, "w01009": 3.5, "w01018": 1.5})
        evaluation_pass(url, {sid})
        [alert] = alerts_of(db, sid, "sea_off_target")
        assert alert["state"] == "open" and alert["detail"]["water_class"] == "四类" and alert["bay_id"] == bay
        routing = alert["routing"]
        assert routing["traced"] == "bay"
        assert sorted(c["id"] for c in routing["chiefs"]) == responsible_chiefs(db, sid)
        mouths = db.execute(
            "SELECT r.id, ST_Distance(ST_EndPoint(ST_LineMerge(r.geom))::geography, s.geom::geography) / 1000"
            " FROM river AS r, bay AS b, station AS s WHERE b.id = %s AND s.id = %s AND r.downstream_id IS NULL"
            " AND ST_DWithin(ST_EndPoint(ST_LineMerge(r.geom))::geography, b.geom::geography, 1000)",
            [bay, sid],
        ).fetchall()
        segments: set[int] = set()
        found: dict[int, float] = {}
        for mouth, offset in mouths:  # each river from its mouth, the way there across the bay first
            reach, on_river = upstream_on_network(db, mouth, 1.0)
            segments |= {mouth, *reach}
            for candidate, distance in on_river.items():
                found[candidate] = min(offset + distance, found.get(candidate, offset + distance))
        for outfall, distance in db.execute(
            "SELECT o.id, ST_Distance(o.geom::geography, s.geom::geography) / 1000 FROM station AS o, bay AS b,"
            " station AS s WHERE b.id = %s AND s.id = %s AND o.kind = 'outfall' AND ST_Intersects(b.geom, o.geom)",
            [bay, sid],
        ):
            found[outfall] = distance
    assert {s["id"] for s in routing["segments"]} == segments
    expected = nearest_first(found)
    assert len(mouths) >= 1 and len(expected) >= 3
    assert [c["id"] for c in routing["candidates"]] == [c for c, _ in expected]
    assert [c["distance_km"] for c in routing["candidates"]] == pytest.approx([d for _, d in expected], abs=0.005)


# --- the API --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(url: str, episode_station: dict) -> Iterator[TestClient]:
    settings = make_settings(url, access=access_settings(), hj212={"enabled": False})
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def people(api: TestClient, url: str, episode_station: dict) -> dict[str, dict[str, str]]:
    """A bearer header per role; `chief` is one the episode's alert is routed to, `outsider` not."""
    with psycopg.connect(url) as db:
        routed = responsible_chiefs(db, episode_station["id"])
        outsider = db.execute("SELECT min(id) FROM chief WHERE NOT id = ANY(%s)", [routed]).fetchone()[0]
    headers = {}
    for role, chief in (("planner", None), ("analyst", None), ("data_manager", None), ("admin", None),
                        ("chief", routed[-1]), ("outsider", outsider)):  # fmt: skip
        login, password = add_user(url, "chief" if role == "outsider" else role, chief)
        headers[role] = bearer(sign_in(api, login, password)["access_token"])
    headers["chief_id"] = routed[-1]  # type: ignore[assignment]
    headers["outsider_id"] = outsider  # type: ignore[assignment]
    return headers


def _ids(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [a["id"] for a in answer.json()["alerts"]]


def _sql_ids(db: psycopg.Connection, where: str = "true", params: list | None = None) -> list[int]:
    query = f"SELECT a.id FROM workflow_alert AS a WHERE {where} ORDER BY a.opened_at DESC, a.id DESC"
    return [r[0] for r in db.execute(query, params or [])]


def test_alerts_are_read_by_the_workflows_readers_only(api: TestClient, people: dict, url: str) -> None:
    with psycopg.connect(url) as db:
        alert_id = db.execute("SELECT min(id) FROM workflow_alert").fetchone()[0]
    for method, path in (("GET", "/api/alerts"), ("GET", f"/api/alerts/{alert_id}"),
                         ("POST", f"/api/alerts/{alert_id}/acknowledge")):  # fmt: skip
        anonymous = api.request(method, path)
        assert anonymous.status_code == 401 and anonymous.json()["detail"]
    for role, layers in (("station", []), ("partner", ["river", "station"])):
        created = api.post("/api/admin/keys", json={"name": unique(role), "role": role, "layers": layers},
                           headers=people["admin"])  # fmt: skip
        assert created.status_code == 201, created.text
        refused = api.get("/api/alerts", headers={"X-API-Key": created.json()["key"]})
        assert refused.status_code == 403 and "planner" in refused.json()["detail"]
    for role in ("planner", "analyst", "data_manager", "admin", "chief"):
        assert api.get("/api/alerts", headers=people[role]).status_code == 200, role
    assert api.get("/api/alert-rules").json()["rules"]["section_off_target"]["condition"]["measure"] == (
        "exceedance_multiple"
    )


def test_alert_filters_match_the_table(api: TestClient, people: dict, url: str, episode_station: dict) -> None:
    planner = people["planner"]
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "UPDATE workflow_alert SET resolved_at = now() - interval '2 hours' WHERE id ="
            " (SELECT min(id) FROM workflow_alert WHERE state = 'resolved')"
        )  # one resolved before `since`
        cases = [
            ({"state": "open"}, "a.state = 'open'", []),
            ({"state": "resolved"}, "a.state = 'resolved'", []),
            ({"station_id": episode_station["id"]}, "a.station_id = %s", [episode_station["id"]]),
            ({"river_id": episode_station["river_id"]}, "a.river_id = %s", [episode_station["river_id"]]),
            ({"severity": "high"}, "a.severity = 'high'", []),
            ({"rule": "data_missing"}, "a.rule = 'data_missing'", []),
            ({"chief_id": people["outsider_id"]},
             "EXISTS (SELECT 1 FROM workflow_alert_chief c WHERE c.alert_id = a.id AND c.chief_id = %s)",
             [people["outsider_id"]]),
            ({"since": since.isoformat()}, "(a.resolved_at IS NULL OR a.resolved_at >= %s)", [since]),
            ({"state": "open", "rule": "section_off_target"}, "a.state = 'open' AND a.rule = 'section_off_target'", []),
        ]  # fmt: skip
        for params, where, values in cases:
            expected = _sql_ids(db, where, values)
            assert _ids(api.get("/api/alerts", params={**params, "limit": 500}, headers=planner)) == expected, params
        assert expected, "the filters were checked on alerts that exist"
        everything = _sql_ids(db)
    assert _ids(api.get("/api/alerts", params={"limit": 500}, headers=planner)) == everything
    paged = _ids(api.get("/api/alerts", params={"limit": 2, "offset": 1}, headers=planner))
    assert paged == everything[1:3]
    for params, fragment in (({"severity": "huge"}, "severity"), ({"state": "closed"}, "state"),
                             ({"since": "2026-01-01T00:00:00"}, "time zone"), ({"rule": "nope"}, "rule"),
                             ({"station_id": "abc"}, "station_id"), ({"limit": 0}, "limit")):  # fmt: skip
        bad = api.get("/api/alerts", params=params, headers=planner)
        assert bad.status_code == 400 and fragment in bad.json()["detail"], (params, bad.text)


def test_a_chief_sees_the_alerts_routed_to_them_by_default(api: TestClient, people: dict, url: str) -> None:
    with psycopg.connect(url) as db:
        for who in ("chief", "outsider"):
            chief_id = people[f"{who}_id" if who == "outsider" else "chief_id"]
            mine = _sql_ids(
                db, "EXISTS (SELECT 1 FROM workflow_alert_chief c WHERE c.alert_id = a.id AND c.chief_id = %s)",
                [chief_id],
            )  # fmt: skip
            answer = api.get("/api/alerts", params={"limit": 500}, headers=people[who])
            assert _ids(answer) == mine and answer.json()["chief_id"] == chief_id
        everything = _sql_ids(db)
    assert mine != everything
    assert _ids(api.get("/api/alerts", params={"limit": 500, "all": True}, headers=people["outsider"])) == everything


def test_one_alert_with_its_routing_events_and_issue(api: TestClient, people: dict, url: str, episode_station) -> None:
    with psycopg.connect(url) as db:
        alert_id, issue_id, routing = db.execute(
            "SELECT id, issue_id, routing FROM workflow_alert WHERE station_id = %s AND rule = 'section_off_target'"
            " ORDER BY id LIMIT 1",
            [episode_station["id"]],
        ).fetchone()
    body = api.get(f"/api/alerts/{alert_id}", headers=people["chief"]).json()
    assert body["routing"]["candidates"] == routing["candidates"]  # as stored when it was raised
    assert body["routing"]["chiefs"][0]["contact"]  # signed-in staff see the chiefs' office numbers
    assert [e["action"] for e in body["events"]] == ["opened", "escalated", "resolved"]
    assert body["issue"]["id"] == issue_id and body["issue"]["state"] == "reported"
    assert body["rule_label"]["zh"] == "断面水质劣于目标" and body["measure_name"] == "exceedance_multiple"
    missing = api.get("/api/alerts/99999999", headers=people["chief"])
    assert missing.status_code == 404 and "99999999" in missing.json()["detail"]


def test_acknowledging_an_alert(api: TestClient, people: dict, url: str, episode_station: dict) -> None:
    with psycopg.connect(url) as db:
        alert_id = db.execute(
            "SELECT max(id) FROM workflow_alert WHERE station_id = %s AND rule = 'section_off_target'",
            [episode_station["id"]],
        ).fetchone()[0]
        other = db.execute("SELECT min(id) FROM workflow_alert WHERE id <> %s", [alert_id]).fetchone()[0]
        path = f"/api/alerts/{alert_id}/acknowledge"
        outsider = api.post(path, json={"note": "不归我管"}, headers=people["outsider"])
        assert outsider.status_code == 403 and "not routed to you" in outsider.json()["detail"]
        planner = api.post(path, headers=people["planner"])
        assert planner.status_code == 403 and "chief" in planner.json()["detail"]
        assert api.post(path, json={"colour": "red"}, headers=people["chief"]).status_code == 400
        done = api.post(path, json={"note": "已安排现场排查上游排口"}, headers=people["chief"])
        assert done.status_code == 200, done.text
        assert done.json()["acknowledged_by"].startswith("chief-") and done.json()["acknowledged_at"]
        assert done.json()["events"][-1]["action"] == "acknowledged"
        assert done.json()["events"][-1]["note"] == "已安排现场排查上游排口"
        again = api.post(path, headers=people["chief"])
        assert again.status_code == 409 and "acknowledged by" in again.json()["detail"]
        assert api.post(f"/api/alerts/{other}/acknowledge", headers=people["admin"]).status_code == 200
        audited = db.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'alert.acknowledge' AND target = ANY(%s)",
            [[f"alert:{alert_id}", f"alert:{other}"]],
        ).fetchone()[0]
        assert audited == 2


# --- the evaluator in the running service ------------------------------------------------------


def _read_events(base: str, headers: dict, found: list, until) -> None:
    with httpx.stream("GET", f"{base}/api/monitoring/events", headers=headers, timeout=90.0) as response:
        assert response.status_code == 200
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((name, json.loads(line[6:])))
                if until(found):
                    return
            elif line.startswith(": connected"):
                found.append(("connected", {}))


def test_an_exceedance_reaches_the_chiefs_stream_within_a_minute(url: str, episode_station: dict) -> None:
    settings = make_settings(
        url, access=access_settings(), hj212={"enabled": False}, alerts=AlertSettings(enabled=True, interval_s=1.0)
    )
    with psycopg.connect(url) as db:
        sid, mn = other_station(db, USED)
        USED.add(sid)
        start = newest(db, sid) + HOUR
        chief_id = responsible_chiefs(db, sid)[0]
    login, password = add_user(url, "chief", chief_id)
    with serving(create_app(settings)) as base:
        token = httpx.post(f"{base}/api/auth/token", data={"username": login, "password": password}).json()
        chief_headers = {"Authorization": f"Bearer {token['access_token']}"}
        seen_by_chief: list = []
        seen_by_anyone: list = []
        second = start + HOUR

        def alert_here(found):
            return any(n == "alert" and e["station_id"] == sid and e["rule"] == "do_low" for n, e in found)

        def second_observation(found):
            return any(
                n == "observation" and e["station_id"] == sid and dt.datetime.fromisoformat(e["time"]) == second
                for n, e in found
            )

        readers = [
            threading.Thread(target=_read_events, args=(base, chief_headers, seen_by_chief, alert_here), daemon=True),
            threading.Thread(target=_read_events, args=(base, {}, seen_by_anyone, second_observation), daemon=True),
        ]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + 30
        while not (seen_by_chief and seen_by_anyone) and time.monotonic() < deadline:
            time.sleep(0.1)
        ingest(url, mn, start, {**CLEAN, "w01009": 1.2})  # DO 1.2 mg/L: below class V's 2
        readers[0].join(60)  # the requirement: an exceedance reaches its chiefs within a minute
        assert alert_here(seen_by_chief), "no alert event reached the chief within a minute"
        event = next(e for n, e in seen_by_chief if n == "alert" and e["station_id"] == sid and e["rule"] == "do_low")
        assert event["action"] == "opened" and event["state"] == "open" and chief_id in event["chiefs"]
        assert "readers" not in event
        ingest(url, mn, start + HOUR, CLEAN)
        readers[1].join(60)
        assert second_observation(seen_by_anyone)
        assert not [n for n, _ in seen_by_anyone if n == "alert"], "an anonymous client received alert events"
        listed = httpx.get(f"{base}/api/alerts", params={"station_id": sid}, headers=chief_headers).json()
        assert [a["id"] for a in listed["alerts"] if a["rule"] == "do_low"] == [event["id"]]
