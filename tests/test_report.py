"""The zone-check site report as a person reads it: local times, names instead of ids and
codes, the right spatial relation words, lengths for lines, each chief once, dialable contacts
only, a legend, and nothing of Leaflet's controls or the service's internals on paper."""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from html.parser import HTMLParser
from typing import Any

import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Point, box, mapping

from tests.test_access import add_user, bearer, sign_in

GEOD = Geod(ellps="WGS84")
CJK = re.compile(r"[\u3400-\u9fff]")


class ReportPage(HTMLParser):
    """The report's visible text and its tables (by id): rows of cell texts with the row's attributes."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.links: list[str] = []
        self._skip = 0
        self._table: str | None = None
        self._row: dict[str, Any] | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style", "title"):
            self._skip += 1
        elif tag == "table" and values.get("id"):
            self._table = values["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = {"attrs": values, "cells": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1
        elif tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def visible_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The data rows (with attributes) of a table."""
        return [row for row in self.tables.get(table, []) if row["attrs"]]


def square(lon: float, lat: float, side_m: float) -> shapely.Polygon:
    dx = side_m / 2 / (111_320 * math.cos(math.radians(lat)))
    dy = side_m / 2 / 110_574
    return box(lon - dx, lat - dy, lon + dx, lat + dy)


def report(client: TestClient, geometry: Any, headers: dict | None = None) -> tuple[dict[str, Any], ReportPage, str]:
    body = {"geometry": mapping(geometry)}
    result = client.post("/api/zone-check", json=body, headers=headers or {})
    assert result.status_code == 200, result.text
    page = client.post("/api/zone-check/report", json=body, headers=headers or {})
    assert page.status_code == 200, page.text
    return result.json(), ReportPage(page.text), page.text


@pytest.fixture()
def river_site(db: psycopg.Connection, client: TestClient) -> dict[str, Any]:
    """A 600 m square across a river segment whose answer lists a chief for two units (the chief
    of this segment and the next one downstream, say)."""
    rows = db.execute(
        "SELECT r.id, ST_AsBinary(r.geom) FROM river AS r ORDER BY r.id",
    ).fetchall()
    for river_id, wkb in rows:
        line = shapely.from_wkb(wkb)
        # Where a segment meets the next one downstream, a chief of both is responsible twice.
        for fraction in (0.98, 0.5):
            at = line.interpolate(fraction, normalized=True)
            site = square(at.x, at.y, 600)
            result = client.post("/api/zone-check", json={"geometry": mapping(site)}).json()
            ids = [c["id"] for c in result["chiefs"]]
            crossed = any(o["layer"] == "river" and o["id"] == river_id for o in result["overlaps"])
            if len(ids) > len(set(ids)) and crossed:
                return {"site": site, "river_id": river_id, "river": line, "result": result}
    pytest.fail("the demo data should have a river segment whose site lists one chief for two units")


def test_times_are_local_and_never_raw_iso(client: TestClient, river_site: dict[str, Any]) -> None:
    result, page, raw = report(client, river_site["site"])
    stamp = re.search(r'<time datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)">', raw)
    assert stamp, "the machine-readable UTC time stays in <time datetime>"
    assert (
        abs(dt.datetime.fromisoformat(stamp.group(1)) - dt.datetime.fromisoformat(result["computed_at"])).seconds < 60
    )
    local = dt.datetime.fromisoformat(stamp.group(1)).astimezone(zoneinfo.ZoneInfo("Asia/Shanghai"))
    assert local.utcoffset() == dt.timedelta(hours=8)
    assert local.strftime("%Y-%m-%d %H:%M") in page.visible_text
    assert "UTC+8" in page.visible_text
    # No ISO timestamp anywhere a person reads.
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", page.visible_text)
    revisions = page.tables["revisions"][1:]
    assert len(revisions) == len(result["revisions"])
    for row in revisions:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row["cells"][2]), row["cells"]


def test_river_overlap_is_a_length_and_relations_are_named(
    client: TestClient, db: psycopg.Connection, river_site: dict[str, Any]
) -> None:
    result, page, _ = report(client, river_site["site"])
    site = river_site["site"]
    rows = page.rows("overlaps")
    assert len(rows) == len(result["overlaps"])
    river_rows = [r for r in rows if r["attrs"].get("data-layer") == "river"]
    assert river_rows, "the segment crossing the site is listed"
    # The segment's length inside the site, measured here on the ellipsoid.
    inside = river_site["river"].intersection(site)
    expected_m = GEOD.geometry_length(inside)
    by_id = {o["id"]: o for o in result["overlaps"] if o["layer"] == "river"}
    assert by_id[river_site["river_id"]]["overlap_length_m"] == pytest.approx(expected_m, rel=0.01)
    amounts = [r["cells"][5] for r in river_rows]
    assert f"{expected_m:,.0f} m" in amounts or f"{expected_m / 1000:,.2f} km" in amounts
    assert not any("m²" in a for a in amounts), "a line has no area"
    assert {r["attrs"]["data-relation"] for r in river_rows} <= {"crosses", "contains"}
    # Watersheds holding the whole site: the site lies within them.
    for row, overlap in zip(rows, result["overlaps"], strict=True):
        if overlap["layer"] != "watershed":
            continue
        geometry = shapely.from_wkb(
            db.execute("SELECT ST_AsBinary(geom) FROM watershed WHERE id = %s", [overlap["id"]]).fetchone()[0]
        )
        expected = "within" if geometry.contains(site) else "overlaps"
        assert row["attrs"]["data-relation"] == expected, overlap["name"]
        assert ("拟选址位于其内" in row["cells"][4]) == (expected == "within")
    # Codes come as words: the watershed level, never basin/sub_basin.
    text = page.visible_text
    for code in ("sub_basin", "basin", "air_local", "water_auto", "townRiver", "流域 #"):
        assert not re.search(rf"(?<![\w-]){code}(?![\w-])", text), code


def test_each_chief_once_with_names_and_no_link_for_masked_numbers(
    client: TestClient, database_url: str, river_site: dict[str, Any]
) -> None:
    planner = bearer(sign_in(client, *add_user(database_url, "planner"))["access_token"])  # sees the contacts
    result, page, _ = report(client, river_site["site"], planner)
    chiefs = page.rows("chiefs")
    distinct = {c["id"]: c for c in result["chiefs"]}
    assert len(chiefs) == len(distinct) < len(result["chiefs"])
    names = {o["name"] if o["layer"] != "river" else f"{o['name']} {o['zone']}" for o in result["overlaps"]}
    for row in chiefs:
        chief = distinct[int(row["attrs"]["data-chief"])]
        assert row["cells"][0] == chief["name"]
        units = row["cells"][3].split("、")
        assert units and set(units) <= names, "the units are named, never '#id'"
        assert "#" not in row["cells"][3]
        # Post in words in both languages.
        assert {"river": "河长", "bay": "湾长"}[chief["role"]] in row["cells"][1]
        assert re.search(r"(river|bay) chief", row["cells"][1])
    masked = [c["contact"] for c in distinct.values() if c["contact"] and "*" in c["contact"]]
    assert masked, "the demo contacts are masked"
    for contact in masked:
        assert contact in page.visible_text
    assert not [href for href in page.links if href.startswith("tel:") and "*" in href]


def test_print_hides_leaflet_controls_shows_a_legend_and_no_internal_path(
    client: TestClient, river_site: dict[str, Any]
) -> None:
    result, page, raw = report(client, river_site["site"])
    prints = raw[raw.index("@media print") :]
    assert re.search(r"\.leaflet-control-container\s*\{\s*display:\s*none", prints)
    assert "gis_service/" not in raw and "zone_check.yaml" not in raw
    legend = re.search(r'id="sketch-legend">(.*?)</div>', raw, re.S)
    assert legend, "the sketch map has a legend"
    entries = re.findall(r"<li>", legend.group(1))
    # One entry per drawn layer or category, the site, and each station kind shown.
    assert len(entries) >= 2 + len({s["kind"] for s in result["stations"]})
    assert "拟选址" in legend.group(1)
    for station in result["stations"]:
        assert station["kind"] not in page.visible_text.split(), "station kinds are words"


def test_a_point_on_a_boundary_touches_and_a_site_round_a_feature_contains_it(
    client: TestClient, db: psycopg.Connection
) -> None:
    fid, wkb = db.execute("SELECT id, ST_AsBinary(geom) FROM protected_area ORDER BY ST_Area(geom) LIMIT 1").fetchone()
    zone = shapely.from_wkb(wkb)
    vertex = Point(shapely.get_coordinates(zone)[0])
    result, page, _ = report(client, vertex)
    row = next(
        r
        for r, o in zip(page.rows("overlaps"), result["overlaps"], strict=True)
        if o["layer"] == "protected_area" and o["id"] == fid
    )
    assert row["attrs"]["data-relation"] == "touches"
    assert "边界相接" in row["cells"][4]
    x0, y0, x1, y1 = zone.bounds
    around = box(x0 - 0.002, y0 - 0.002, x1 + 0.002, y1 + 0.002)
    result, page, _ = report(client, around)
    row = next(
        r
        for r, o in zip(page.rows("overlaps"), result["overlaps"], strict=True)
        if o["layer"] == "protected_area" and o["id"] == fid
    )
    assert row["attrs"]["data-relation"] == "contains"
    assert "完全位于拟选址内" in row["cells"][4]
    # A polygon inside the site: its own area, in m² and ha.
    assert "m²" in row["cells"][5] and "ha" in row["cells"][5]
