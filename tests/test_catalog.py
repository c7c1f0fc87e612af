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
