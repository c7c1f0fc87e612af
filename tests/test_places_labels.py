"""GET /api/places: the gazetteer's places as GeoJSON points for the basemap's labels, with the
zoom from which each kind is labelled; filtered by bbox and kind, capped by limit."""

from __future__ import annotations

import csv
from pathlib import Path

from fastapi.testclient import TestClient

GAZETTEER = Path(__file__).resolve().parents[1] / "layers" / "demo" / "data" / "gazetteer.csv"


def test_every_place_with_its_names_kind_and_label_zoom(client: TestClient) -> None:
    rows = list(csv.DictReader(GAZETTEER.open(encoding="utf-8")))
    answer = client.get("/api/places", params={"limit": 2000})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["type"] == "FeatureCollection"
    features = doc["features"]
    assert len(features) == len(rows)
    by_name = {(f["properties"]["name_zh"], f["properties"]["kind"]): f for f in features}
    for row in rows:
        feature = by_name[(row["name_zh"], row["kind"])]
        assert feature["properties"]["name_en"] == (row["name_en"] or None)
        lon, lat = feature["geometry"]["coordinates"]
        assert abs(lon - float(row["lon"])) < 1e-6 and abs(lat - float(row["lat"])) < 1e-6
    lake = by_name[("筼筜湖", "lake")]["properties"]
    assert lake["name_en"] == "Yundang Lake" and lake["minzoom"] == 11
    # The prominent kinds are labelled earlier, and win collisions (lower rank).
    zooms = {f["properties"]["kind"]: f["properties"]["minzoom"] for f in features}
    assert zooms["district"] < zooms["lake"] < zooms["university"] < zooms["village"]
    ranks = [f["properties"]["rank"] for f in features]
    assert ranks == sorted(ranks), "the most prominent kinds first"


def test_bbox_kind_and_limit(client: TestClient) -> None:
    rows = list(csv.DictReader(GAZETTEER.open(encoding="utf-8")))
    box = (118.05, 24.45, 118.15, 24.52)
    inside = [r for r in rows if box[0] <= float(r["lon"]) <= box[2] and box[1] <= float(r["lat"]) <= box[3]]
    doc = client.get("/api/places", params={"bbox": ",".join(map(str, box)), "limit": 2000}).json()
    assert sorted(f["properties"]["name_zh"] for f in doc["features"]) == sorted(r["name_zh"] for r in inside)
    lakes = client.get("/api/places", params={"kind": "lake,mountain"}).json()["features"]
    assert {f["properties"]["kind"] for f in lakes} == {"lake", "mountain"}
    assert len(lakes) == sum(r["kind"] in ("lake", "mountain") for r in rows)
    two = client.get("/api/places", params={"limit": 2}).json()["features"]
    assert [f["properties"]["kind"] for f in two] == ["district", "district"]


def test_bad_input_is_a_400_saying_what_to_fix(client: TestClient) -> None:
    unknown = client.get("/api/places", params={"kind": "lake,volcano"})
    assert unknown.status_code == 400 and "volcano" in unknown.json()["detail"]
    bad = client.get("/api/places", params={"bbox": "118,24"})
    assert bad.status_code == 400 and "bbox" in bad.json()["detail"]
    assert client.get("/api/places", params={"limit": 0}).status_code in (400, 422)
