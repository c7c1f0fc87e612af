"""The layer catalog: strict validation with errors naming file and key; agreement with the schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from layers.catalog import CATALOG_DIR, CatalogError, load_catalog

EXPECTED_IDS = {"redline", "protected_area", "water_source_zone", "watershed", "river", "bay", "station", "district"}


def _copy_catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, target)
    return target


def test_bundled_catalog_has_every_layer() -> None:
    catalog = load_catalog()
    assert set(catalog.ids) == EXPECTED_IDS
    for layer in catalog:
        assert layer.title.zh and layer.title.en
        assert layer.minzoom <= layer.maxzoom
        assert layer.tiles.extent == 4096


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    directory = _copy_catalog(tmp_path)
    path = directory / "river.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "colour: red\n", encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(directory)
    assert str(path) in str(error.value)
    assert "unknown key 'colour'" in str(error.value)


def test_nested_unknown_key_is_located(tmp_path: Path) -> None:
    directory = _copy_catalog(tmp_path)
    path = directory / "bay.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("  kind: fill", "  kind: fill\n  glow: 3"), encoding="utf-8"
    )
    with pytest.raises(CatalogError, match=r"bay\.yaml: unknown key 'style\.glow'"):
        load_catalog(directory)


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("minzoom: 8", "minzoom: 18", "minzoom 18 is greater than maxzoom 16"),
        ("table: river", "table: river; DROP TABLE x", "table: String should match pattern"),
        ("geometry_type: MultiLineString", "geometry_type: Curve", "geometry_type: Input should be"),
        ("label: {property: name,", "label: {property: nom,", "refers to unknown properties: ['nom']"),
    ],
)
def test_invalid_values_are_refused(tmp_path: Path, replace: str, by: str, message: str) -> None:
    directory = _copy_catalog(tmp_path)
    path = directory / "river.yaml"
    text = path.read_text(encoding="utf-8")
    assert replace in text
    path.write_text(text.replace(replace, by), encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(directory)
    assert "river.yaml" in str(error.value)
    assert message in str(error.value)


def test_id_must_match_file_name(tmp_path: Path) -> None:
    directory = _copy_catalog(tmp_path)
    (directory / "river.yaml").rename(directory / "streams.yaml")
    with pytest.raises(CatalogError, match="id 'river' must match the file name 'streams'"):
        load_catalog(directory)


def test_broken_yaml_is_reported(tmp_path: Path) -> None:
    directory = _copy_catalog(tmp_path)
    (directory / "station.yaml").write_text("id: station\n  bad: [indent\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"station\.yaml: not valid YAML"):
        load_catalog(directory)


def test_catalog_matches_database_schema(db: psycopg.Connection) -> None:
    """Every catalog table, geometry and property exists with the declared geometry type."""
    for layer in load_catalog():
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", [layer.table]
        ).fetchall()
        columns = {r[0] for r in rows}
        assert set(layer.property_names) <= columns, (layer.id, set(layer.property_names) - columns)
        geometry_type, srid = db.execute(
            "SELECT type, srid FROM geometry_columns WHERE f_table_name = %s AND f_geometry_column = %s",
            [layer.table, layer.geometry_column],
        ).fetchone()
        assert srid == 4326
        assert geometry_type.lower() == layer.geometry_type.lower()


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_no_two_categories_of_a_layer_share_a_colour() -> None:
    """Each category a legend lists can be told apart on the map (核心保护区 and 核心区 once
    shared one): their colours differ by at least 40 in RGB distance."""
    for layer in load_catalog():
        colors = (layer.style.categories.colors if layer.style.categories else {}).items()
        for i, (value, color) in enumerate(colors):
            for other, other_color in list(colors)[i + 1 :]:
                distance = sum((a - b) ** 2 for a, b in zip(_rgb(color), _rgb(other_color), strict=True)) ** 0.5
                assert distance >= 40, f"{layer.id}: {value} {color} and {other} {other_color} look alike"


def test_id_properties_name_the_layer_they_refer_to() -> None:
    """Ids of other features (下游河段, 所属流域, 所在河段) declare their layer, so clients show names."""
    catalog = load_catalog()
    references = {
        (layer.id, p.name): p.references for layer in catalog for p in layer.properties if p.name.endswith("_id")
    }
    assert references == {
        ("river", "downstream_id"): "river",
        ("river", "watershed_id"): "watershed",
        ("station", "river_id"): "river",
        ("watershed", "parent_id"): "watershed",
        ("watershed", "downstream_id"): "watershed",
    }
    assert all(target in catalog.ids for target in references.values())


def test_coded_values_have_titles_in_both_languages() -> None:
    """Codes a person would otherwise read raw (outfall, air_local, basin, sub_basin) have titles."""
    catalog = load_catalog()
    for layer_id, prop in (("station", "kind"), ("station", "status"), ("station", "standard"), ("watershed", "level")):
        p = catalog.get(layer_id).get_property(prop)
        assert p is not None and p.values and set(p.value_titles or {}) == set(p.values), (layer_id, prop)
    assert catalog.get("station").get_property("kind").value_title("air_local").en == "Local air station"
