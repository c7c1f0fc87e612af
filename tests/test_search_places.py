"""Search: the gazetteer (pinyin, initials, fuzzy, aliases, English), coordinates (decimal in
either order, DMS, CGCS2000 Gauss–Krüger), the import of a gazetteer file, and the demo
gazetteer's places on land or water as their kind says."""

from __future__ import annotations

import math
from pathlib import Path

import psycopg
import pyproj
import pytest
import shapely
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gis_service.cli import app as cli_app
from layers import db as layer_db
from layers.gazetteer import DEMO_GAZETTEER, GazetteerError, initials_of, read_places, to_pinyin
from layers.regions import REGIONS_FILE, get_region
from tests.conftest import recreate_database, scratch_database_name

WATER_KINDS = {"bay"}
INNER_BAYS = {"五缘湾"}
"""Bays behind a sluice that the demo's approximate coastline draws as land: in the districts,
near the sea."""
LAND_KINDS = {"mountain", "town", "subdistrict", "village", "university", "landmark", "district", "station"}


def search(client: TestClient, q: str, limit: int = 10) -> list[dict]:
    response = client.get("/api/search", params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    return response.json()["results"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("筼筜湖", "筼筜湖"),  # exact
        ("yundanghu", "筼筜湖"),  # pinyin
        ("Yun Dang Hu", "筼筜湖"),  # pinyin with spaces and capitals
        ("yun2dang1hu2", "筼筜湖"),  # tone numbers
        ("ydh", "筼筜湖"),  # initials
        ("yundanhu", "筼筜湖"),  # a pinyin typo: fuzzy
        ("筼当湖", "筼筜湖"),  # a wrong character: two of three characters
        ("Yundang Lake", "筼筜湖"),  # English
        ("厦大", "厦门大学"),  # an alias (and the characters in order)
        ("xiamen university", "厦门大学"),
        ("xmdx", "厦门大学"),
        ("gulangyu", "鼓浪屿"),
        ("tianzhushan", "天竺山"),
        ("tzs", "天竺山"),
        ("云顶", "云顶山"),
        ("汀溪水库", "汀溪水库"),
        ("jimeixuecun", "集美学村"),
        ("五缘湾", "五缘湾"),
        ("厦门港", "厦门港"),
        ("xia gang jie dao", "厦港街道"),  # an explicit pinyin overrides pypinyin's 厦 = sha
    ],
)
def test_places_are_found_by_name_pinyin_initials_and_fuzzily(client: TestClient, query: str, expected: str) -> None:
    results = search(client, query)
    assert results, f"nothing found for {query!r}"
    top = results[0]
    assert (top["layer"], top["name"]) == ("place", expected), results[:3]
    assert top["approximate"] is True and len(top["bbox"]) == 4


def test_place_results_carry_their_kind_and_point(client: TestClient, db: psycopg.Connection) -> None:
    top = search(client, "筼筜湖")[0]
    lon, lat, kind = db.execute("SELECT ST_X(geom), ST_Y(geom), kind FROM place WHERE name_zh = '筼筜湖'").fetchone()
    assert top["detail"] == kind == "lake" and top["bbox"] == [lon, lat, lon, lat]


def test_ranking_exact_before_pinyin_before_fuzzy(client: TestClient) -> None:
    """An exact name beats a pinyin match, which beats initials, a prefix and a fuzzy match."""
    scores = {q: search(client, q)[0]["score"] for q in ("筼筜湖", "yundanghu", "ydh", "yundang", "yundanhu")}
    assert scores["筼筜湖"] > scores["yundanghu"] > scores["ydh"] > scores["yundang"] > scores["yundanhu"]
    # 厦门大学 (shorter) before 厦门大学翔安校区, both starting with the text
    names = [r["name"] for r in search(client, "厦门大学") if r["layer"] == "place"]
    assert names[:2] == ["厦门大学", "厦门大学翔安校区"]


def test_layer_features_are_still_found_and_ranked_with_places(client: TestClient, db: psycopg.Connection) -> None:
    bay = db.execute("SELECT name FROM bay ORDER BY id LIMIT 1").fetchone()[0]
    results = search(client, bay, limit=20)
    assert {"bay", "place"} <= {r["layer"] for r in results} or results[0]["layer"] == "bay"
    assert any(r["layer"] == "bay" and r["name"] == bay and r["score"] == 3 for r in results)
    assert search(client, "%") == [] and search(client, "_") == []


def _transform(code: int, lon: float, lat: float) -> tuple[float, float]:
    return pyproj.Transformer.from_crs(4326, code, always_xy=True).transform(lon, lat)


def test_coordinates_in_every_form(client: TestClient) -> None:
    def point(q: str) -> dict:
        first = search(client, q)[0]
        assert first["layer"] == "coordinate", (q, first)
        return first

    for q, how in (("118.1,24.5", "lon,lat"), ("24.5,118.1", "lat,lon"), ("24.5 118.1", "lat,lon")):
        hit = point(q)
        assert (hit["lon"], hit["lat"], hit["detail"], hit["inside"]) == (118.1, 24.5, how, True)
    for q in ("24°27′N 118°05′E", "118°05′E 24°27′N", "24°27'N, 118°5'E", "北纬24°27′ 东经118°05′", "24d27m 118d5m"):
        hit = point(q)
        assert math.isclose(hit["lat"], 24 + 27 / 60) and math.isclose(hit["lon"], 118 + 5 / 60), q
    hit = point("24°27'30\"N 118°05'15\"E")
    assert math.isclose(hit["lat"], 24 + 27 / 60 + 30 / 3600) and math.isclose(hit["lon"], 118 + 5 / 60 + 15 / 3600)
    east, north = _transform(4527, 118.1, 24.5)
    east_cm, north_cm = _transform(4548, 118.1, 24.5)
    for q, code in (
        (f"EPSG:4527 {east:.2f} {north:.2f}", "EPSG:4527"),
        (f"{east:.2f},{north:.2f}", "EPSG:4527"),  # zone prefix 39: zone 39
        (f"{north:.2f} {east:.2f}", "EPSG:4527"),  # surveyors' X (northing) first
        (f"{east_cm:.2f} {north_cm:.2f}", "EPSG:4548"),  # no prefix: CM 117°E
    ):
        hit = point(q)
        assert hit["detail"] == code and abs(hit["lon"] - 118.1) < 1e-6 and abs(hit["lat"] - 24.5) < 1e-6, q
    outside = point("24.5,24.6")  # both orders possible, neither in Xiamen: offered, flagged
    assert outside["inside"] is False
    assert all(r["layer"] != "coordinate" for r in search(client, "2023"))


def test_demo_gazetteer_lies_in_xiamen_on_land_or_water(demo) -> None:
    """Every place lies inside the xiamen extent of layers/regions.yaml (without its margins);
    bays on the sea, mountains, towns, villages, universities and landmarks on dry land, lakes
    and reservoirs inside the districts, ports within 1.5 km of the sea."""
    west, south, east, north = yaml.safe_load(REGIONS_FILE.read_text(encoding="utf-8"))["xiamen"]["extent"]
    places = read_places(DEMO_GAZETTEER.read_text(encoding="utf-8"))
    assert len(places) >= 60 and {p.kind for p in places} >= {"lake", "reservoir", "island", "mountain", "town"}
    land, sea, dry = demo.land, demo.sea, demo.dry_land
    wrong = []
    for place in places:
        point = shapely.Point(place.lon, place.lat)
        if not (west <= place.lon <= east and south <= place.lat <= north):
            wrong.append(f"{place.name_zh} outside the extent")
        elif place.name_zh in INNER_BAYS:
            if not land.covers(point) or sea.distance(point) > 1.5 / 111:
                wrong.append(f"{place.name_zh} (inner bay) not by the sea")
        elif place.kind in WATER_KINDS and not sea.covers(point):
            wrong.append(f"{place.name_zh} ({place.kind}) not at sea")
        elif place.kind in LAND_KINDS | {"island"} and not dry.covers(point):
            wrong.append(f"{place.name_zh} ({place.kind}) not on dry land")
        elif place.kind in {"lake", "reservoir"} and not land.covers(point):
            wrong.append(f"{place.name_zh} ({place.kind}) outside the districts")
        elif place.kind == "port" and sea.distance(point) > 1.5 / 111:
            wrong.append(f"{place.name_zh} (port) far from the sea")
    assert wrong == []


def test_pinyin_rules() -> None:
    assert to_pinyin("筼筜湖") == "yun dang hu" and initials_of("筼筜湖") == "ydh"
    assert to_pinyin("SM城市广场") == "sm cheng shi guang chang"
    assert to_pinyin("绿岛") == "lv dao"


def test_gazetteer_file_errors_name_the_lines() -> None:
    region = get_region("xiamen")
    with pytest.raises(GazetteerError, match="header lacks lat"):
        read_places("name_zh,name_en,kind,lon\n", region)
    bad = (
        "name_zh,name_en,kind,lon,lat,pinyin\n"
        "某湖,,pond,118.1,24.5,\n"
        "某山,,mountain,116.0,24.5,\n"
        "某村,,village,abc,24.5,\n"
        "某镇,,town,118.1,24.5,Mǒu zhèn\n"
        "某岛,,island,118.1,24.5,\n"
        "某岛,,island,118.2,24.5,\n"
    )
    with pytest.raises(GazetteerError) as error:
        read_places(bad, region)
    message = str(error.value)
    for expected in ("line 2: kind 'pond'", "line 3: 某山 at 116.0, 24.5 is outside", "line 4: lon/lat",
                     "line 5: pinyin", "line 7: 某岛 (island) is also on line 6"):  # fmt: skip
        assert expected in message


def test_cli_imports_a_gazetteer_and_refuses_a_wrong_file(tmp_path: Path) -> None:
    """``ecomap places import`` adds and updates places in one transaction; a wrong file writes
    nothing and says what to fix (on a scratch database, migrated and empty)."""
    url = recreate_database(scratch_database_name("gazetteer"))
    layer_db.upgrade(url)
    runner = CliRunner()
    env = {"ECOMAP_DATABASE_URL": url}
    good = tmp_path / "places.csv"
    good.write_text("name_zh,name_en,kind,lon,lat\n测试湖,Test Lake,lake,118.1,24.6\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("name_zh,name_en,kind,lon,lat\n另一湖,,lake,118.1,24.6\n坏,,lake,0,0\n", encoding="utf-8")
    with psycopg.connect(url, autocommit=True) as db:
        before = db.execute("SELECT count(*) FROM place").fetchone()[0]
        result = runner.invoke(cli_app, ["places", "import", str(good)], env=env)
        assert result.exit_code == 0, result.output
        assert "imported 1 places" in result.output
        row = db.execute("SELECT pinyin, initials, kind, ST_X(geom) FROM place WHERE name_zh = '测试湖'").fetchone()
        assert row == ("ce shi hu", "csh", "lake", 118.1)
        assert db.execute("SELECT count(*) FROM place").fetchone()[0] == before + 1
        refused = runner.invoke(cli_app, ["places", "import", str(bad)], env=env)
        assert refused.exit_code == 2 and "line 3" in refused.output and "outside" in refused.output
        assert db.execute("SELECT count(*) FROM place WHERE name_zh = '另一湖'").fetchone()[0] == 0
        dry = runner.invoke(cli_app, ["places", "import", "--dry-run", str(DEMO_GAZETTEER)], env=env)
        assert dry.exit_code == 0 and "all valid" in dry.output
        update = runner.invoke(cli_app, ["places", "import", "--replace", str(DEMO_GAZETTEER)], env=env)
        assert update.exit_code == 0, update.output
        count = db.execute("SELECT count(*), count(*) FILTER (WHERE name_zh = '测试湖') FROM place").fetchone()
        assert count == (len(read_places(DEMO_GAZETTEER.read_text(encoding="utf-8"))), 0)
