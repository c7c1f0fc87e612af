"""The demo dataset, checked without a database: schema, geometry, topology, links; Xiamen, and
the Jiulong upstream in Zhangzhou and Longyan (``layers/demo/upstream.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from layers.demo import DemoDataset, build_demo_dataset
from layers.demo.build import table_columns
from layers.demo.upstream import XIAMEN
from layers.models import LAYER_TABLES, Base
from layers.regions import load_regions

GEOD = Geod(ellps="WGS84")
CATALOG_DIR = Path(__file__).resolve().parent.parent / "layers" / "catalog"
TOLERANCE_M2 = 1.0
"""Overlaps and spill-overs below a square metre are float noise, not geometry."""
M2_PER_DEG2 = 110_790.0 * 101_190.0
"""Square metres per square degree near 24.6° N, for measuring slivers (planar)."""

NATIONAL_AIR = {
    # code: (name, lon, lat) as published (DOMAIN.md)
    "1286A": ("溪东", 118.1608, 24.8169),
    "1287A": ("洪文", 118.1514, 24.4767),
    "1288A": ("鼓浪屿", 118.0661, 24.4444),
    "2842A": ("湖里中学", 118.0936, 24.5058),
    "3527A": ("集美中学", 118.0958, 24.5688),
    "3528A": ("同安二实小", 118.1493, 24.7245),
}


@pytest.fixture(scope="module")
def dataset() -> DemoDataset:
    return build_demo_dataset()


def xiamen_part(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The features in Xiamen (all of a layer without a ``city``)."""
    return frame[frame.city == XIAMEN] if "city" in frame.columns else frame


def upstream_part(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The features of the neighbouring cities (none for a layer without a ``city``)."""
    return frame[frame.city != XIAMEN] if "city" in frame.columns else frame.iloc[0:0]


def region_of(adcode: str):
    """The region (``layers/regions.yaml``) of a city adcode."""
    return next(r for r in load_regions().values() if r.adcode == adcode)


def area_m2(geom: BaseGeometry) -> float:
    """Area on the ellipsoid, for the reported measures."""
    return abs(GEOD.geometry_area_perimeter(geom)[0]) if not geom.is_empty else 0.0


def sliver_m2(geom: BaseGeometry) -> float:
    """Approximate planar area, robust for the near-degenerate slivers overlays leave."""
    return geom.area * M2_PER_DEG2


def allowed_values(layer: str) -> dict[str, list[str]]:
    spec = yaml.safe_load((CATALOG_DIR / f"{layer}.yaml").read_text(encoding="utf-8"))
    return {p["name"]: p["values"] for p in spec["properties"] if p.get("values")}


def overlapping_pairs(frame: gpd.GeoDataFrame) -> list[tuple[int, int, float]]:
    """Pairs of features whose interiors overlap by more than the tolerance."""
    geoms = frame.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = []
    for i, j in zip(left, right, strict=True):
        if i < j:
            overlap = sliver_m2(shapely.intersection(geoms[i], geoms[j]))
            if overlap > TOLERANCE_M2:
                pairs.append((int(frame.id.iloc[i]), int(frame.id.iloc[j]), overlap))
    return pairs


def filled(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` with its holes filled."""
    return shapely.union_all([shapely.Polygon(p.exterior) for p in shapely.get_parts(geom)])


def spill_m2(geom: BaseGeometry, region: BaseGeometry) -> float:
    """Area of ``geom`` outside ``region`` (m²)."""
    return sliver_m2(shapely.difference(geom, region))


# --- reproducibility and schema -------------------------------------------------------


def as_comparable(frame: pd.DataFrame) -> pd.DataFrame:
    if isinstance(frame, gpd.GeoDataFrame):
        frame = pd.DataFrame(frame).assign(geom=shapely.to_wkb(frame.geometry.to_numpy()))
    return frame


def test_same_seed_gives_identical_data(dataset: DemoDataset) -> None:
    again = build_demo_dataset(dataset.seed)
    for layer in LAYER_TABLES:
        pd.testing.assert_frame_equal(as_comparable(dataset.layers[layer]), as_comparable(again.layers[layer]))
    pd.testing.assert_frame_equal(dataset.chiefs, again.chiefs)
    pd.testing.assert_frame_equal(dataset.assignments, again.assignments)
    assert dataset.sea.equals_exact(again.sea, 0.0)


def test_another_seed_gives_other_shapes(dataset: DemoDataset) -> None:
    other = build_demo_dataset(7)
    assert not dataset.layers["redline"].geometry.geom_equals(other.layers["redline"].geometry).all()
    # The real district boundaries do not depend on the seed.
    assert dataset.layers["district"].geometry.geom_equals(other.layers["district"].geometry).all()


@pytest.mark.parametrize("layer", LAYER_TABLES)
def test_layer_has_exactly_the_table_columns(dataset: DemoDataset, layer: str) -> None:
    frame = dataset.layers[layer]
    assert list(frame.columns) == table_columns(layer)
    assert "updated_at" not in frame.columns
    assert frame.geometry.name == "geom"
    assert frame.crs.to_epsg() == 4326
    assert frame["id"].tolist() == list(range(1, len(frame) + 1))
    # The district boundaries are real (AMap's, see shared/data/README.md); everything else is sample data.
    expected = layer != "district"
    assert frame["is_sample"].dtype == bool and (frame["is_sample"] == expected).all()


@pytest.mark.parametrize("layer", LAYER_TABLES)
def test_geometries_are_valid_nonempty_and_of_the_table_type(dataset: DemoDataset, layer: str) -> None:
    frame = dataset.layers[layer]
    expected = Base.metadata.tables[layer].c.geom.type.geometry_type
    assert (frame.geom_type.str.upper() == expected).all()
    assert frame.is_valid.all()
    assert not frame.is_empty.any()
    minx, miny, maxx, maxy = xiamen_part(frame).total_bounds
    assert minx > 117.8 and maxx < 118.5
    assert miny > 24.3 and maxy < 25.0


@pytest.mark.parametrize("layer", ["river", "watershed", "station"])
def test_upstream_features_lie_in_their_city_and_off_xiamen(dataset: DemoDataset, layer: str) -> None:
    """Every layer with a city names it; the neighbours' features lie in their city's region
    (a watershed, named by its outlet, in the Minxinan region) and never on Xiamen's land."""
    frame = dataset.layers[layer]
    assert set(frame.city) <= set(allowed_values(layer)["city"])
    upstream = upstream_part(frame)
    assert {"350600", "350800"} <= set(upstream.city)
    region = load_regions()["minxinan"]
    for row in upstream.itertuples():
        box = region if layer == "watershed" and row.level != "small" else region_of(row.city)
        assert box.covers(row.geom.bounds), f"{layer} {row.id} of {row.city} lies outside {box.describe()}"
        assert sliver_m2(shapely.intersection(row.geom, dataset.dry_land)) < TOLERANCE_M2, row.id
        assert row.is_sample


@pytest.mark.parametrize("layer", LAYER_TABLES)
def test_attribute_values_are_allowed_by_the_catalog(dataset: DemoDataset, layer: str) -> None:
    frame = dataset.layers[layer]
    for column, values in allowed_values(layer).items():
        present = set(frame[column].dropna())
        assert present <= set(values), f"{layer}.{column}: {present - set(values)} not in the catalog"


def test_chief_tables_have_exactly_the_table_columns(dataset: DemoDataset) -> None:
    assert list(dataset.chiefs.columns) == table_columns("chief")
    assert list(dataset.assignments.columns) == table_columns("chief_assignment")
    assert dataset.chiefs["is_sample"].all()


# --- districts, land and sea -----------------------------------------------------------


def test_districts_are_the_six_real_ones_with_the_city_area(dataset: DemoDataset) -> None:
    districts = dataset.layers["district"]
    assert sorted(districts.adcode) == ["350203", "350205", "350206", "350211", "350212", "350213"]
    assert set(districts.name_zh) == {"思明区", "海沧区", "湖里区", "集美区", "同安区", "翔安区"}
    assert districts.name_en.notna().all()
    total_km2 = sum(area_m2(g) for g in districts.geometry) / 1e6
    # 1,700.6 km² of land plus a few per cent of tidal flats and enclosed waters.
    assert 1700.0 < total_km2 < 1700.6 * 1.06
    assert shapely.coverage_is_valid(districts.geometry.to_numpy())


def test_land_is_the_union_of_districts_and_sea_lies_off_dry_land(dataset: DemoDataset) -> None:
    union = shapely.union_all(dataset.layers["district"].geometry.to_numpy())
    assert sliver_m2(shapely.symmetric_difference(union, dataset.land)) < TOLERANCE_M2
    assert sliver_m2(shapely.intersection(dataset.sea, dataset.dry_land)) < TOLERANCE_M2
    sea_km2 = area_m2(dataset.sea) / 1e6
    assert 250.0 < sea_km2 < 600.0


# --- red lines -----------------------------------------------------------------------------


def test_red_lines_cover_every_function_type(dataset: DemoDataset) -> None:
    redlines = dataset.layers["redline"]
    assert len(redlines) >= 30
    assert set(redlines.function_type) == set(allowed_values("redline")["function_type"])
    assert set(redlines.domain) == {"陆域", "海域"}
    assert redlines.code.is_unique
    assert redlines.code.str.fullmatch(r"XM-HLX-\d{3}").all()
    assert (redlines.revision == 1).all() and redlines.valid_from.notna().all()
    assert redlines.approval_doc.str.startswith("闽政文〔").all()


def test_marine_class_only_and_always_at_sea(dataset: DemoDataset) -> None:
    redlines = dataset.layers["redline"]
    marine = redlines.domain == "海域"
    assert redlines.loc[marine, "marine_class"].isin(["禁止类", "限制类"]).all()
    assert redlines.loc[~marine, "marine_class"].isna().all()
    assert set(redlines.loc[marine, "marine_class"]) == {"禁止类", "限制类"}


def test_red_lines_do_not_overlap(dataset: DemoDataset) -> None:
    assert overlapping_pairs(dataset.layers["redline"]) == []


def test_land_red_lines_stay_on_land_and_marine_ones_at_sea(dataset: DemoDataset) -> None:
    for row in dataset.layers["redline"].itertuples():
        area = area_m2(row.geom)
        if row.domain == "陆域":
            assert spill_m2(row.geom, dataset.land) < 1e-6 * area, row.name
            assert sliver_m2(shapely.intersection(row.geom, dataset.sea)) < 1e-6 * area, f"{row.name} crosses the sea"
        else:
            assert spill_m2(row.geom, dataset.sea) < 1e-6 * area, row.name


def test_red_line_measures_and_districts(dataset: DemoDataset) -> None:
    redlines = dataset.layers["redline"]
    adcodes = set(dataset.layers["district"].adcode)
    assert set(redlines.adcode) <= adcodes
    for row in redlines.itertuples():
        assert row.area_km2 == pytest.approx(area_m2(row.geom) / 1e6, rel=1e-3)
    # Xiamen's territorial plan sets the red line at no less than 287.97 km².
    assert 200.0 < redlines.area_km2.sum() < 400.0


def test_red_line_shapes_are_irregular(dataset: DemoDataset) -> None:
    for geom in dataset.layers["redline"].geometry:
        largest = max(geom.geoms, key=lambda p: p.area)
        assert shapely.get_num_coordinates(geom) > 8
        # Neither a box nor a disc: noticeably less compact than a circle.
        compactness = 4 * np.pi * largest.area / largest.length**2
        assert compactness < 0.85


# --- protected areas, water sources, watersheds --------------------------------------------


def test_protected_areas_and_their_zones(dataset: DemoDataset) -> None:
    areas = dataset.layers["protected_area"]
    zones = areas.groupby("area_name").zone.apply(set).to_dict()
    assert zones["厦门珍稀海洋物种国家级自然保护区"] == {"核心区", "缓冲区", "实验区"}
    assert zones["天竺山国家森林公园"] == {"核心保护区", "一般控制区"}
    assert "鼓浪屿–万石山风景名胜区" in zones
    assert any("下潭尾" in name and "红树林" in name for name in zones)
    three_zone = areas.zone.isin(["核心区", "缓冲区", "实验区"])
    assert (areas.loc[three_zone, "zoning_scheme"] == "三区").all()
    assert (areas.loc[~three_zone, "zoning_scheme"] == "两区").all()
    assert overlapping_pairs(areas) == []
    for row in areas.itertuples():
        assert row.area_ha == pytest.approx(area_m2(row.geom) / 1e4, rel=1e-3)


def test_marine_reserve_core_is_wrapped_by_its_buffer_zone(dataset: DemoDataset) -> None:
    areas = dataset.layers["protected_area"].set_index("zone")
    reserve = areas[areas.area_name == "厦门珍稀海洋物种国家级自然保护区"].geometry
    core, buffer_zone = reserve["核心区"], reserve["缓冲区"]
    # Away from the shore the core is surrounded by the buffer zone.
    ring = shapely.difference(shapely.buffer(core, 0.001), core)
    at_sea = shapely.intersection(ring, shapely.buffer(dataset.sea, -0.0005))
    assert area_m2(shapely.intersection(at_sea, buffer_zone)) > 0.9 * area_m2(at_sea)
    for zone in reserve:
        assert spill_m2(zone, dataset.sea) < 1e-6 * area_m2(zone)


def test_water_source_zones_are_disjoint_rings(dataset: DemoDataset) -> None:
    zones = dataset.layers["water_source_zone"]
    assert {"石兜–坂头水库", "汀溪水库", "莲花水库"} <= set(zones.source_name)
    assert overlapping_pairs(zones) == []
    for source, group in zones.groupby("source_name"):
        assert set(zip(group.zone, group.part, strict=True)) >= {("一级", "水域"), ("一级", "陆域"), ("二级", "陆域")}
        by_zone = {z: shapely.union_all(g.geometry.to_numpy()) for z, g in group.groupby("zone")}
        # Grade I is enclosed by grade II, and both by the quasi-protection zone.
        assert spill_m2(by_zone["一级"], filled(by_zone["二级"])) < TOLERANCE_M2, source
        if "准保护区" in by_zone:
            inner = shapely.union(by_zone["一级"], by_zone["二级"])
            assert spill_m2(inner, filled(by_zone["准保护区"])) < TOLERANCE_M2, source
        for geom in group.geometry:
            assert spill_m2(geom, dataset.dry_land) < 1e-6 * area_m2(geom)


def test_watershed_hierarchy_is_consistent(dataset: DemoDataset) -> None:
    xiamen = set(xiamen_part(dataset.layers["watershed"]).id)
    sheds = dataset.layers["watershed"].set_index("id")
    rank = {"basin": 0, "sub_basin": 1, "small": 2}
    assert set(sheds.level) == set(rank)
    for shed_id, row in sheds.iterrows():
        if pd.notna(row.parent_id):
            parent = sheds.loc[int(row.parent_id)]
            assert rank[parent.level] < rank[row.level]
            assert spill_m2(row.geom, parent.geom) < 1e-6 * area_m2(row.geom), row["name"]
        else:
            assert row.level == "basin"
        if pd.notna(row.downstream_id):
            assert int(row.downstream_id) in sheds.index and int(row.downstream_id) != shed_id
        assert row.area_km2 == pytest.approx(area_m2(row.geom) / 1e6, rel=1e-3)
        if shed_id in xiamen:
            assert spill_m2(row.geom, dataset.dry_land) < 1e-6 * area_m2(row.geom)
        else:  # upstream: off Xiamen's land and sea
            assert sliver_m2(shapely.intersection(row.geom, shapely.union(dataset.land, dataset.sea))) < TOLERANCE_M2
    basin = sheds[sheds.name == "东西溪流域"].iloc[0]
    assert 440.0 < basin.area_km2 < 550.0
    basins = sheds[sheds.level == "basin"]
    assert overlapping_pairs(basins.reset_index()) == []


# --- rivers and bays ---------------------------------------------------------------------


def test_river_downstream_chains_end_at_a_mouth_on_the_coast(dataset: DemoDataset) -> None:
    rivers = dataset.layers["river"].set_index("id")
    for start in rivers.index:
        seen, current = [], start
        while pd.notna(rivers.loc[current, "downstream_id"]):
            seen.append(current)
            current = int(rivers.loc[current, "downstream_id"])
            assert current in rivers.index and current not in seen, f"cycle from segment {start}"
        mouth = rivers.loc[current, "geom"]
        end = shapely.Point(mouth.geoms[-1].coords[-1])
        assert dataset.sea.distance(end) < 1e-5, f"segment {current} ends away from the sea"


def test_segments_connect_to_their_downstream_segment(dataset: DemoDataset) -> None:
    rivers = dataset.layers["river"].set_index("id")
    for _, row in rivers[rivers.downstream_id.notna()].iterrows():
        end = shapely.Point(row.geom.geoms[-1].coords[-1])
        assert rivers.loc[int(row.downstream_id), "geom"].distance(end) < 1e-9


def test_rivers_have_lengths_watersheds_and_stay_on_land(dataset: DemoDataset) -> None:
    rivers = dataset.layers["river"]
    sheds = dataset.layers["watershed"].set_index("id")
    assert rivers.watershed_id.notna().all() and set(rivers.watershed_id.astype(int)) <= set(sheds.index)
    for row in rivers.itertuples():
        assert row.length_km == pytest.approx(GEOD.geometry_length(row.geom) / 1000.0, rel=1e-3)
    for row in xiamen_part(rivers).itertuples():
        assert shapely.difference(row.geom, shapely.buffer(dataset.dry_land, 1e-7)).length < 1e-9
    for row in upstream_part(rivers).itertuples():  # in its watershed, off Xiamen (its mouth in the bay)
        assert shapely.intersection(row.geom, dataset.dry_land).length < 1e-9
        inside = shapely.intersection(row.geom, shapely.buffer(sheds.loc[int(row.watershed_id), "geom"], 1e-7))
        assert inside.length > 0.97 * row.geom.length, row.segment
    totals = rivers.groupby("name").length_km.sum()
    assert totals["东西溪"] == pytest.approx(34.0, rel=0.05)
    assert totals["过芸溪"] == pytest.approx(15.1, rel=0.05)
    assert {"后溪", "许溪", "深青溪", "九溪", "官浔溪"} <= set(totals.index)


def test_bays_partition_the_sea(dataset: DemoDataset) -> None:
    bays = dataset.layers["bay"]
    expected = {"同安湾", "西海域", "东南部海域", "大嶝海域", "马銮湾", "杏林湾", "东坑湾", "九龙江口"}
    assert expected <= set(bays.name)
    assert overlapping_pairs(bays) == []
    for row in bays.itertuples():
        assert spill_m2(row.geom, dataset.sea) < 1e-6 * area_m2(row.geom), row.name
        assert row.area_km2 == pytest.approx(area_m2(row.geom) / 1e6, rel=1e-3)
    covered = area_m2(shapely.union_all(bays.geometry.to_numpy()))
    assert covered > 0.95 * area_m2(dataset.sea)


# --- stations ------------------------------------------------------------------------------------


def test_stations_of_every_kind_inside_land_or_sea(dataset: DemoDataset) -> None:
    stations = dataset.layers["station"]
    assert len(stations) >= 60
    assert set(stations.kind) == set(allowed_values("station")["kind"])
    assert stations.code.is_unique and stations.mn.is_unique
    territory = shapely.union(dataset.land, dataset.sea)
    xiamen, upstream = xiamen_part(stations), upstream_part(stations)
    outside = xiamen[~xiamen.geometry.within(shapely.buffer(territory, 1e-7))]
    assert outside.empty, outside[["code", "name"]].to_dict("records")
    assert set(xiamen.adcode) <= set(dataset.layers["district"].adcode)
    assert not upstream.geometry.within(territory).any()
    assert (upstream.adcode == upstream.city).all()  # no county boundaries outside Xiamen


def test_national_air_stations_at_published_coordinates(dataset: DemoDataset) -> None:
    stations = dataset.layers["station"]
    national = stations[stations.kind == "air_national"].set_index("code")
    assert set(national.index) == set(NATIONAL_AIR)
    for code, (name, lon, lat) in NATIONAL_AIR.items():
        assert national.loc[code, "name"] == name
        assert national.loc[code, "geom"].x == pytest.approx(lon, abs=1e-9)
        assert national.loc[code, "geom"].y == pytest.approx(lat, abs=1e-9)


def test_water_stations_sit_on_their_river_segment(dataset: DemoDataset) -> None:
    stations = dataset.layers["station"]
    rivers = dataset.layers["river"].set_index("id")
    on_rivers = stations[stations.kind.isin(["water_auto", "section"])]
    assert on_rivers.river_id.notna().all()
    linked = stations[stations.river_id.notna()]
    assert set(linked.kind) <= {"water_auto", "section", "outfall"}
    for row in linked.itertuples():
        assert rivers.loc[int(row.river_id), "geom"].distance(row.geom) < 1e-6, row.name


def test_seawater_stations_in_bays_and_intakes_in_reservoirs(dataset: DemoDataset) -> None:
    stations = dataset.layers["station"]
    bays = shapely.union_all(dataset.layers["bay"].geometry.to_numpy())
    assert stations[stations.kind == "seawater"].geometry.within(bays).all()
    zones = dataset.layers["water_source_zone"]
    water = shapely.union_all(zones[zones.part == "水域"].geometry.to_numpy())
    intakes = stations[stations.kind == "drinking_intake"]
    in_zones = intakes.geometry.within(water)
    assert in_zones.sum() >= 3
    assert intakes.geometry.within(dataset.dry_land).all()


# --- chiefs ---------------------------------------------------------------------------------------


def test_every_chief_assigned_and_every_river_and_bay_has_a_chief(dataset: DemoDataset) -> None:
    chiefs, assignments = dataset.chiefs, dataset.assignments
    assert len(chiefs) >= 20
    assert set(chiefs.role) == {"river", "bay"}
    assert set(chiefs.level) == {"city", "district", "town", "village"}
    assert set(assignments.chief_id) == set(chiefs.id)
    assert set(assignments.layer) <= {"river", "bay", "watershed"}
    assert not assignments.duplicated(["chief_id", "layer", "feature_id"]).any()
    for layer in ("river", "bay", "watershed"):
        ids = set(dataset.layers[layer].id)
        assigned = set(assignments.loc[assignments.layer == layer, "feature_id"])
        assert assigned <= ids
        if layer != "watershed":
            assert assigned == ids, f"{layer} without a chief: {ids - assigned}"


def test_chief_roles_match_their_assignments(dataset: DemoDataset) -> None:
    merged = dataset.assignments.merge(dataset.chiefs, left_on="chief_id", right_on="id")
    assert (merged.loc[merged.layer == "bay", "role"] == "bay").all()
    assert (merged.loc[merged.layer.isin(["river", "watershed"]), "role"] == "river").all()


def test_chief_attributes_look_real_but_are_masked(dataset: DemoDataset) -> None:
    chiefs = dataset.chiefs
    assert chiefs.name.str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    area_codes = {"350200": "0592", "350600": "0596", "350800": "0597"}
    for row in chiefs.itertuples():
        assert re.fullmatch(area_codes[row.adcode[:4] + "00"] + r"-\d{2}\*{3}\d{2}", row.contact), row.contact
    assert chiefs.title.str.len().gt(0).all()
    district_codes = set(dataset.layers["district"].adcode)
    assert set(chiefs.adcode) <= district_codes | set(area_codes)
    # The neighbours' chiefs are city chiefs of their own city's segments and watersheds.
    merged = dataset.assignments.merge(chiefs, left_on="chief_id", right_on="id")
    for layer in ("river", "watershed"):
        features = dataset.layers[layer].set_index("id")
        rows = merged[(merged.layer == layer) & (merged.adcode.isin(["350600", "350800"]))]
        assert not rows.empty and (rows.level == "city").all()
        assert (features.loc[rows.feature_id, "city"].to_numpy() == rows.adcode.to_numpy()).all()
    assert re.fullmatch(r"\S+区副区长", chiefs.loc[chiefs.level == "district", "title"].iloc[0])


# --- the region: the Jiulong across the city boundaries ----------------------------------------


def _segments_above(rivers: pd.DataFrame, segment: int) -> set[int]:
    above, frontier = set(), {segment}
    while frontier:
        frontier = set(rivers.index[rivers.downstream_id.isin(frontier)]) - above
        above |= frontier
    return above


def test_the_jiulong_flows_from_longyan_through_zhangzhou_into_xiamen_bay(dataset: DemoDataset) -> None:
    """Upstream of the segment entering the 九龙江口 bay lie Zhangzhou's and Longyan's segments."""
    rivers = dataset.layers["river"].set_index("id")
    bay = dataset.layers["bay"].set_index("name").loc["九龙江口", "geom"]
    mouths = [i for i, r in rivers[rivers.downstream_id.isna()].iterrows() if r.city != XIAMEN]
    assert len(mouths) == 1
    end = shapely.Point(rivers.loc[mouths[0], "geom"].geoms[-1].coords[-1])
    assert bay.distance(end) < 1e-9
    above = _segments_above(rivers, mouths[0])
    assert set(rivers.loc[sorted(above), "city"]) == {"350600", "350800"}
    assert {"九龙江北溪", "九龙江西溪"} <= set(rivers.loc[sorted(above), "name"])


def test_cross_boundary_sections_sit_where_the_river_leaves_the_upstream_city(dataset: DemoDataset) -> None:
    stations = dataset.layers["station"]
    rivers = dataset.layers["river"].set_index("id")
    sections = stations[stations.upstream_city.notna()]
    assert len(sections) >= 2 and (sections.kind == "section").all()
    assert sections.downstream_city.notna().all() and (sections.upstream_city != sections.downstream_city).all()
    assert (sections.water_target.notna()).all() and sections.mn.notna().all()
    for row in sections.itertuples():
        own = int(row.river_id)
        cities_above = set(rivers.loc[sorted(_segments_above(rivers, own) | {own}), "city"])
        assert row.upstream_city in cities_above, row.name
        below = rivers.loc[own, "downstream_id"]
        # Below it the river reaches the downstream city: its segments, or its bay at the mouth.
        reaches = rivers.loc[own, "city"] == row.downstream_city or (pd.isna(below) and row.downstream_city == XIAMEN)
        assert reaches, row.name
    assert {("350800", "350600"), ("350600", "350200")} <= set(
        zip(sections.upstream_city, sections.downstream_city, strict=True)
    )
