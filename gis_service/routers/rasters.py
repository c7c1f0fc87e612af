"""Raster layers: their list with legends, TileJSON, and PNG/WebP tiles."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from gis_service.access import layer_rules
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.errors import InvalidRequest, NotFound
from gis_service.routers.deps import base_url
from gis_service.services.rasters import list_rasters, raster_tilejson, values_at
from gis_service.tile_http import tile_reply
from layers.catalog import RasterLayer
from tiles.grid import TileAddressError, tile_address
from tiles.raster import ELEVATION_FORMATS, MEDIA_TYPES, RasterTiler, RasterUnavailable

router = APIRouter(tags=["rasters"])

RasterId = Annotated[str, Path(description="A raster layer id (see `GET /api/rasters`)", examples=["landcover"])]


class ImageFormat(StrEnum):
    png = "png"
    webp = "webp"
    terrarium = "terrarium"
    hillshade = "hillshade"


def _tiler(request: Request) -> RasterTiler:
    return request.app.state.raster_tiler


def _find(raster_id: str, tiler: RasterTiler, principal: Principal) -> RasterLayer:
    try:
        raster = tiler.get(raster_id)
    except KeyError as exc:
        raise NotFound(str(exc.args[0])) from None
    layer_rules.require_layers(principal, [raster])
    return raster


def _raster(
    raster_id: RasterId, tiler: RasterTiler = Depends(_tiler), principal: Principal = Depends(current_principal)
) -> RasterLayer:
    """The raster of an id: 404 naming the valid ones, 401/403 when the caller may not read it."""
    return _find(raster_id, tiler, principal)


@router.get("/api/rasters", summary="Raster layers with legends and tile URLs")
async def rasters(
    tiler: RasterTiler = Depends(_tiler),
    base: str = Depends(base_url),
    principal: Principal = Depends(current_principal),
) -> list[dict[str, Any]]:
    """Every raster layer (land cover, elevation, slope, and rasters added with `ecomap raster add`):
    titles, role, unit, legend (classes with names and colours, or a colour ramp over a range),
    TileJSON and tile URL template (elevation rasters also `terrarium_tiles`, the heights, and
    `hillshade_tiles`, the relief shading), zoom range, lon/lat bounds of the file, default opacity
    and the sample-data flag.
    `available` is false while a raster's file is missing."""
    readable = {raster.id for raster in layer_rules.readable_rasters(principal, tiler.catalog)}
    return [entry for entry in list_rasters(tiler, base) if entry["id"] in readable]


@router.get(
    "/api/rasters/values",
    summary="Raster values at a point (land cover class, elevation, slope…)",
    responses={404: {"description": "An unknown raster id in `rasters` (the message lists the valid ones)"}},
)
async def raster_values(
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude (WGS 84)", examples=[118.1])],
    lat: Annotated[float, Query(ge=-85.05, le=85.05, description="Latitude (WGS 84)", examples=[24.6])],
    rasters: Annotated[
        str | None,
        Query(
            max_length=500,
            description="Comma-separated raster ids (default: all)",
            examples=["landcover,dem"],
        ),
    ] = None,
    tiler: RasterTiler = Depends(_tiler),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """The value of each listed raster in the cell holding the point: for a categorical raster
    its class (value, names, colour), for a continuous one the number with its unit. `value` is
    null where the raster has no data (e.g. the sea in the elevation model), does not reach, or
    its file is missing. An unknown raster id is a 404 naming the valid ones."""
    chosen = layer_rules.readable_rasters(principal, tiler.catalog)
    if rasters:
        ids = [part.strip() for part in rasters.split(",") if part.strip()]
        chosen = [_find(raster_id, tiler, principal) for raster_id in dict.fromkeys(ids)]
    return await values_at(tiler, chosen, lon, lat)


@router.get("/tiles/raster/{raster_id}.json", summary="TileJSON 3.0.0 of a raster layer")
async def tilejson(
    raster: RasterLayer = Depends(_raster), tiler: RasterTiler = Depends(_tiler), base: str = Depends(base_url)
) -> dict[str, Any]:
    """TileJSON with the PNG tile URL template (the same path ending in `.webp` gives WebP), the
    zoom range and the bounds of the raster's file."""
    try:
        return raster_tilejson(raster, tiler, base)
    except RasterUnavailable as exc:
        raise NotFound(str(exc)) from None


@router.api_route(
    "/tiles/raster/{raster_id}/{z}/{x}/{y}.{image_format}",
    methods=["GET"],
    summary="PNG or WebP tile of a raster layer (or an elevation raster's Terrarium or hillshade tile)",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/webp": {}}, "description": "The tile, 256×256 RGBA"},
        204: {"description": "Nothing to draw: outside the raster, only no-data cells, or below its minzoom"},
        304: {"description": "Not modified (the `If-None-Match` ETag matches)"},
        400: {
            "description": "z/x/y outside the WebMercatorQuad grid, a format other than "
            "png/webp/terrarium/hillshade, or terrarium/hillshade for a raster that is not an elevation"
        },
        404: {"description": "Unknown raster (the message lists the valid ones) or its file is missing"},
    },
)
async def raster_tile(
    z: Annotated[int, Path(ge=0, le=24, description="Zoom level")],
    x: Annotated[int, Path(ge=0, description="Column")],
    y: Annotated[int, Path(ge=0, description="Row")],
    image_format: Annotated[
        ImageFormat,
        Path(
            description="Image format: png or webp (lossless); terrarium: elevation rasters' heights as RGB;"
            " hillshade: elevation rasters' relief shading (translucent RGBA)"
        ),
    ],
    request: Request,
    raster: RasterLayer = Depends(_raster),
    tiler: RasterTiler = Depends(_tiler),
) -> Response:
    """A 256×256 WebMercatorQuad tile drawn with the catalog's colours: class colours for a
    categorical raster, the colour ramp over the range for a continuous one. No-data cells are
    transparent (alpha 0). Strong `ETag` (`If-None-Match` → 304) and the same `Cache-Control` as
    vector tiles; the tile changes when the raster's file is replaced. `terrarium` (elevation
    rasters only) gives the heights themselves as a Terrarium-encoded RGB PNG (metres = R × 256 +
    G + B / 256 − 32768; no data is 0 m) for clients that shade or measure terrain themselves;
    `hillshade` (elevation rasters only) the relief shaded by a light from the north-west
    (azimuth 315°, altitude 45°, Horn's gradient as in `gdaldem hillshade`): dark translucent
    pixels on slopes turned from the light, light ones on slopes facing it, flat ground and the
    sea clear; the offline basemap lays it over the land."""
    if image_format.value in ELEVATION_FORMATS and raster.role != "elevation":
        raise InvalidRequest(f"{image_format.value} tiles are made of elevation rasters only; {raster.id!r} is not one")
    try:
        address = tile_address(z, x, y)
    except TileAddressError as exc:
        raise InvalidRequest(str(exc)) from None
    try:
        tile = await tiler.tile(raster, address, image_format.value)
    except RasterUnavailable as exc:
        raise NotFound(str(exc)) from None
    status, headers, body = tile_reply(
        tile,
        request.headers.get("if-none-match", ""),
        "",
        request.app.state.settings.tiles.max_age_s,
        MEDIA_TYPES[image_format.value],
        private=not raster.access.is_public,
    )
    return Response(body, status_code=status, headers=headers)
