"""The deployment's region of interest is configuration (``ECOMAP_REGION``), kept as data."""

from __future__ import annotations

import json

import pytest
import shapely
from pydantic import ValidationError

from gis_service.settings import Settings
from layers.gcj02 import geometry_gcj02_to_wgs84
from layers.regions import UnknownRegion, get_region, load_regions
from tests.conftest import ROOT

CITIES = {"xiamen": "350200", "zhangzhou": "350600", "quanzhou": "350500", "longyan": "350800", "sanming": "350400"}
# A few places with published coordinates (county seats and landmarks), each in its city.
PLACES = {
    "xiamen": [(118.089, 24.479), (118.066, 24.447), (118.247, 24.618)],  # 思明, 鼓浪屿, 翔安
    "zhangzhou": [(117.647, 24.513), (117.31, 24.36), (117.54, 23.69)],  # 芗城, 平和, 东山
    "quanzhou": [(118.589, 24.908), (118.186, 25.055), (118.68, 25.38)],  # 鲤城, 安溪, 仙游 border
    "longyan": [(117.017, 25.075), (116.36, 25.70), (116.75, 24.73)],  # 新罗, 长汀, 永定
    "sanming": [(117.639, 26.263), (117.17, 26.89), (116.93, 25.99)],  # 三元, 泰宁, 宁化 south
}


def test_every_city_and_the_union_are_defined() -> None:
    regions = load_regions()
    assert set(regions) == {*CITIES, "minxinan"}
    for key, adcode in CITIES.items():
        assert regions[key].adcode == adcode and regions[key].name_zh
    union = regions["minxinan"]
    for key in CITIES:
        west, south, east, north = regions[key].bounds
        assert union.west <= west and union.south <= south and union.east >= east and union.north >= north
    assert {key for key, region in regions.items() if region.approximate} == {*CITIES, "minxinan"} - {"xiamen"}


@pytest.mark.parametrize("city", list(PLACES))
def test_known_places_lie_in_their_city_and_in_the_union(city: str) -> None:
    for lon, lat in PLACES[city]:
        assert get_region(city).covers((lon, lat, lon, lat)), (city, lon, lat)
        assert get_region("minxinan").covers((lon, lat, lon, lat))


def test_xiamen_covers_the_real_city_outline_and_not_its_neighbours_centres() -> None:
    """The real outline (AMap boundaries, GCJ-02 converted to WGS84) lies inside the default
    region; Zhangzhou's centre, 0.23° west of Haicang, does not (a box cannot keep out
    Quanzhou's coast to the north-east, which the sea margin covers)."""
    source = ROOT / "layers" / "demo" / "data" / "city_gcj02.geojson"
    document = json.loads(source.read_text(encoding="utf-8"))
    outline = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in document["features"]])
    xiamen = get_region()
    assert xiamen.key == "xiamen"
    assert xiamen.covers(tuple(geometry_gcj02_to_wgs84(outline).bounds))
    assert not xiamen.covers((117.647, 24.513, 117.647, 24.513))  # Zhangzhou (芗城)


def test_the_setting_selects_and_validates_the_region(monkeypatch) -> None:
    monkeypatch.setenv("ECOMAP_REGION", "MinXiNan")
    assert Settings().region == "minxinan"
    monkeypatch.setenv("ECOMAP_REGION", "fuzhou")
    with pytest.raises(ValidationError, match="xiamen, zhangzhou"):
        Settings()
    monkeypatch.delenv("ECOMAP_REGION")
    assert Settings().region == "xiamen"
    with pytest.raises(UnknownRegion, match="ECOMAP_REGION must be one of"):
        get_region("fuzhou")


def test_messages_name_the_region_and_how_to_change_it() -> None:
    hint = get_region().change_hint()
    assert "ECOMAP_REGION=minxinan" in hint and "zhangzhou" in hint
    assert "approximate" in get_region("longyan").describe()
