"""Overlap lengths in the zone check: a line site gives the length of itself inside each zone it
crosses, an area site the length of each river segment inside it (m on the ellipsoid, never m²);
both compared with an independent computation (shapely for the intersection, pyproj's Geod for
the length). The report's words as JSON (``f=json``) say the same."""

from __future__ import annotations

import math
import re
from typing import Any

import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import LineString, box, mapping

GEOD = Geod(ellps="WGS84")


def _zone(db: psycopg.Connection, table: str) -> tuple[int, shapely.Geometry]:
    """The largest feature of a polygon layer (a crossing line surely meets it)."""
    fid, wkb = db.execute(
        f"SELECT id, ST_AsBinary(geom) FROM {table} WHERE geom @ ST_MakeEnvelope(117.9, 24.4, 118.4, 24.9, 4326) "
        "ORDER BY ST_Area(geom) DESC LIMIT 1"
    ).fetchone()
    return fid, shapely.from_wkb(wkb)


def _line_across(zone: shapely.Geometry) -> LineString:
    """A west-east line through the zone's representative point, reaching 500 m beyond it on both sides."""
    inside = zone.representative_point()
    x0, _, x1, _ = zone.bounds
    margin = 500 / (111_320 * math.cos(math.radians(inside.y)))
    return LineString([(max(x0 - margin, inside.x - 0.05), inside.y), (min(x1 + margin, inside.x + 0.05), inside.y)])


def test_a_line_site_gives_its_length_inside_each_zone(client: TestClient, db: psycopg.Connection) -> None:
    fid, zone = _zone(db, "redline")
    line = _line_across(zone)
    answer = client.post("/api/zone-check", json={"geometry": mapping(line)})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    site_length = GEOD.geometry_length(line)
    assert result["input"]["length_m"] == pytest.approx(site_length, rel=1e-6)
    overlap = next(o for o in result["overlaps"] if o["layer"] == "redline" and o["id"] == fid)
    expected = GEOD.geometry_length(line.intersection(zone))
    assert expected > 10
    assert overlap["overlap_length_m"] == pytest.approx(expected, rel=1e-3)
    assert overlap["share"] == pytest.approx(expected / site_length, rel=1e-3)
    assert overlap["overlap_m2"] == 0.0  # a line takes no area
    # Every zone touched by the line has its length; nothing reads as an area.
    for o in result["overlaps"]:
        if o["distance_m"] is None and o["layer"] != "river":
            assert o["overlap_length_m"] is not None, o
    # The report's words: a length in m or km, never m².
    data = client.post("/api/zone-check/report", params={"f": "json"}, json={"geometry": mapping(line)})
    assert data.status_code == 200, data.text
    assert data.headers["content-type"].startswith("application/json")
    row = next(r for r in data.json()["overlaps"] if r["layer"] == "redline" and r["id"] == fid)
    text = f"{expected:,.0f} m" if expected < 1000 else f"{expected / 1000:,.2f} km"
    assert row["amount"] == text
    assert row["relation"] in {"crosses", "within", "overlaps"}
    assert data.json()["site"]["measure"]["value"].endswith(("m", "km"))


def test_a_river_inside_an_area_site_is_a_length(client: TestClient, db: psycopg.Connection) -> None:
    river_id, wkb = db.execute(
        "SELECT id, ST_AsBinary(geom) FROM river WHERE geom @ ST_MakeEnvelope(117.9, 24.4, 118.4, 24.9, 4326) "
        "ORDER BY ST_Length(geom) DESC LIMIT 1"
    ).fetchone()
    river = shapely.from_wkb(wkb)
    at = river.interpolate(0.5, normalized=True)
    dx = 400 / (111_320 * math.cos(math.radians(at.y)))
    dy = 400 / 110_574
    site = box(at.x - dx, at.y - dy, at.x + dx, at.y + dy)
    answer = client.post("/api/zone-check", json={"geometry": mapping(site)})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    overlap = next(o for o in result["overlaps"] if o["layer"] == "river" and o["id"] == river_id)
    expected = GEOD.geometry_length(river.intersection(site))
    assert overlap["overlap_length_m"] == pytest.approx(expected, rel=1e-3)
    data = client.post("/api/zone-check/report?f=json", json={"geometry": mapping(site)}).json()
    row = next(r for r in data["overlaps"] if r["layer"] == "river" and r["id"] == river_id)
    assert "m²" not in row["amount"] and re.fullmatch(r"[\d,.]+ (m|km)", row["amount"])
    assert row["relation"] in {"crosses", "contains"}
    assert row["relation_title"]["en"] in {"crosses the site", "inside the site"}


def test_report_json_speaks_words_not_codes(client: TestClient, db: psycopg.Connection) -> None:
    _, zone = _zone(db, "watershed")
    point = zone.representative_point()
    data: dict[str, Any] = client.post("/api/zone-check/report?f=json", json={"geometry": mapping(point)}).json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", data["computed_local"])
    assert data["verdict_title"]["zh"] and data["verdict_title"]["en"]
    assert data["title"] == {"zh": "选址生态环境合规初判报告", "en": "Zone check report"}
    assert data["site"]["measure"] is None  # a point has no length or area
    for row in data["overlaps"]:
        assert row["layer_title"]["zh"] and row["layer_title"]["en"]
        assert row["relation_title"]["zh"] and row["relation_title"]["en"]
        assert row["amount"] == "—" or not row["amount"].endswith("m²")
    watershed = [r for r in data["overlaps"] if r["layer"] == "watershed"]
    assert watershed and all(r["relation"] == "within" for r in watershed)
    for row in watershed:
        assert row["zone_title"] is None or row["zone_title"]["zh"] not in {"basin", "sub_basin"}
    ids = [c["id"] for c in data["chiefs"]]
    assert len(ids) == len(set(ids)), "each chief once"
    for chief in data["chiefs"]:
        assert "#" not in " ".join(chief["units"])
        assert chief["post"]["zh"].endswith(("河长", "湾长"))
    assert isinstance(data["sample_data"], bool)
    assert client.post("/api/zone-check/report?f=pdf", json={"geometry": mapping(point)}).status_code == 400
