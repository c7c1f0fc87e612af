"""Raster layer listing: catalog entries with their legend, file bounds and tile URLs."""

from __future__ import annotations

from typing import Any

from layers.catalog import RasterLayer
from tiles.raster import RasterTiler, RasterUnavailable
from tiles.style import XIAMEN_CENTER


def legend(raster: RasterLayer) -> dict[str, Any]:
    """The legend of a raster: its classes, or its colour ramp over the range with the unit."""
    if raster.categorical:
        return {
            "type": "categorical",
            "classes": [item.model_dump(mode="json") for item in raster.classes or []],
        }
    assert raster.colormap is not None and raster.range is not None  # noqa: S101 - validated by the catalog
    return {
        "type": "continuous",
        "min": raster.range[0],
        "max": raster.range[1],
        "unit": raster.unit,
        "stops": [[value, color] for value, color in raster.colormap.stops],
    }


def tile_template(raster: RasterLayer, base_url: str, image_format: str = "png") -> str:
    return f"{base_url}/tiles/raster/{raster.id}/{{z}}/{{x}}/{{y}}.{image_format}"


def describe_raster(raster: RasterLayer, tiler: RasterTiler, base_url: str) -> dict[str, Any]:
    """The public description of a raster layer (``GET /api/rasters``).

    ``available`` is false (and ``bounds`` null) while the raster's file is missing.
    """
    try:
        info = tiler.file_info(raster)
        bounds, revision, available = list(info.bounds), info.revision, True
    except RasterUnavailable:
        bounds, revision, available = None, None, False
    return {
        "id": raster.id,
        "title": raster.title.model_dump(),
        "description": raster.description.model_dump() if raster.description else None,
        "group": raster.group,
        "order": raster.order,
        "categorical": raster.categorical,
        "role": raster.role,
        "unit": raster.unit,
        "band_meaning": raster.band_meaning.model_dump(),
        "legend": legend(raster),
        "tilejson": f"{base_url}/tiles/raster/{raster.id}.json",
        "tiles": tile_template(raster, base_url),
        # Elevation rasters only: heights (MapLibre raster-dem, encoding "terrarium") and relief shading.
        "terrarium_tiles": tile_template(raster, base_url, "terrarium") if raster.role == "elevation" else None,
        "hillshade_tiles": tile_template(raster, base_url, "hillshade") if raster.role == "elevation" else None,
        "minzoom": raster.minzoom,
        "maxzoom": raster.maxzoom,
        "bounds": bounds,
        "opacity": raster.opacity,
        "is_sample": raster.is_sample,
        "available": available,
        "revision": revision,
    }


def list_rasters(tiler: RasterTiler, base_url: str) -> list[dict[str, Any]]:
    """Every raster layer of the catalog, in drawing order."""
    return [describe_raster(raster, tiler, base_url) for raster in tiler.catalog.rasters]


def raster_tilejson(raster: RasterLayer, tiler: RasterTiler, base_url: str) -> dict[str, Any]:
    """TileJSON 3.0.0 of a raster layer (PNG tiles; WebP at the same path with ``.webp``)."""
    info = tiler.file_info(raster)
    west, south, east, north = info.bounds
    center_lon, center_lat = XIAMEN_CENTER[0], XIAMEN_CENTER[1]
    if not (west <= center_lon <= east and south <= center_lat <= north):
        center_lon, center_lat = (west + east) / 2, (south + north) / 2
    center_zoom = min(max(XIAMEN_CENTER[2], raster.minzoom), raster.maxzoom)
    return {
        "tilejson": "3.0.0",
        "name": raster.id,
        "description": raster.title.en,
        "version": "1.0.0",
        "attribution": "EcoMap Xiamen (sample data)" if raster.is_sample else "EcoMap Xiamen",
        "scheme": "xyz",
        "tiles": [tile_template(raster, base_url)],
        "minzoom": raster.minzoom,
        "maxzoom": raster.maxzoom,
        "bounds": list(info.bounds),
        "center": [round(center_lon, 6), round(center_lat, 6), center_zoom],
        "format": "png",
        "tileSize": 256,
        "vector_layers": [],  # required by the TileJSON 3.0.0 schema; a raster has none
    }


async def values_at(tiler: RasterTiler, rasters: list[RasterLayer], lon: float, lat: float) -> dict[str, Any]:
    """The values of some rasters at a point, with their meaning: the class (name, colour) of
    a categorical raster, the number and unit of a continuous one; null where a raster has
    no data there, lies elsewhere, or its file is missing."""
    values = []
    for raster in rasters:
        try:
            value = await tiler.value_at(raster, lon, lat)
        except RasterUnavailable:
            value = None
        entry: dict[str, Any] = {
            "raster": raster.id,
            "title": raster.title.model_dump(),
            "band_meaning": raster.band_meaning.model_dump(),
            "value": value,
            "unit": raster.unit,
        }
        if raster.categorical:
            match = next((c for c in raster.classes or [] if value is not None and c.value == value), None)
            entry["class"] = match.model_dump(mode="json") if match else None
        elif isinstance(value, float):
            entry["value"] = round(value, 2)
        values.append(entry)
    return {"lon": lon, "lat": lat, "values": values}
