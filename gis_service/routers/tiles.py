"""Vector tiles, TileJSON and the MapLibre style."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from gis_service.errors import InvalidRequest, NotFound
from gis_service.routers.deps import base_url, get_catalog
from gis_service.tile_http import MVT_MEDIA_TYPE, tile_reply
from layers.catalog import Catalog, Layer
from layers.filters import FilterError
from tiles.cache import CachedTile
from tiles.engine import TileEngine, UnknownLayerError
from tiles.grid import TileAddressError, tile_address
from tiles.style import default_style, tilejson

router = APIRouter(tags=["tiles"])

LayerSpec = Annotated[
    str,
    Path(description="A layer id or a comma-separated list of layer ids (composite tile)", examples=["redline,river"]),
]


def _engine(request: Request) -> TileEngine:
    return request.app.state.tile_engine


FilterParam = Annotated[
    str | None,
    Query(
        alias="filter",
        description="CQL2 text filter over the layer properties, e.g. `zone = '核心区' AND area_ha > 100`",
        max_length=4000,
    ),
]
PropertiesParam = Annotated[
    str | None, Query(description="Comma-separated properties to include (default: all)", max_length=2000)
]


async def serve_tile(
    request: Request,
    engine: TileEngine,
    layers: list[Layer],
    zxy: tuple[int, int, int],
    properties: str | None,
    filter_text: str | None,
) -> Response:
    """Validate the address and options, get the tile from the engine and reply."""
    try:
        address = tile_address(*zxy)
    except TileAddressError as exc:
        raise InvalidRequest(str(exc)) from None
    chosen = tuple(p.strip() for p in properties.split(",") if p.strip()) if properties is not None else None
    try:
        tile = await engine.tile(layers, address, properties=chosen, filter_text=filter_text)
    except FilterError as exc:
        raise InvalidRequest(str(exc)) from None
    return tile_response(request, tile)


def tile_response(request: Request, tile: CachedTile) -> Response:
    """The HTTP reply of a tile (ETag/304, gzip, 204 when empty); see ``gis_service.tile_http``."""
    status, headers, body = tile_reply(
        tile,
        request.headers.get("if-none-match", ""),
        request.headers.get("accept-encoding", ""),
        request.app.state.settings.tiles.max_age_s,
    )
    return Response(body, status_code=status, headers=headers)


@router.api_route(
    "/tiles/{layers}/{z}/{x}/{y}.pbf",
    methods=["GET", "HEAD"],
    summary="Mapbox Vector Tile of one or more layers",
    response_class=Response,
    responses={
        200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "The tile"},
        204: {"description": "Empty tile: no feature of these layers here (or below their minzoom)"},
        400: {"description": "z/x/y outside the WebMercatorQuad grid"},
        404: {"description": "Unknown layer; the message lists the valid layers"},
    },
)
async def vector_tile(
    layers: LayerSpec,
    z: Annotated[int, Path(ge=0, le=24)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    request: Request,
    filter_text: FilterParam = None,
    properties: PropertiesParam = None,
    engine: TileEngine = Depends(_engine),
) -> Response:
    """A composite MVT (one MVT layer per catalog layer, features keep their stable ids).

    An empty tile answers **204 No Content**. Below a layer's `minzoom` the layer is left out of
    the tile; above its `maxzoom` tiles are still served at full detail (clients overzoom anyway).
    """
    try:
        chosen = engine.resolve(layers)
    except UnknownLayerError as exc:
        raise NotFound(str(exc)) from None
    return await serve_tile(request, engine, chosen, (z, x, y), properties, filter_text)


@router.get("/tiles/{layers}.json", summary="TileJSON 3.0.0 of one or more layers")
async def layer_tilejson(
    layers: LayerSpec,
    engine: TileEngine = Depends(_engine),
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
) -> dict[str, Any]:
    """TileJSON with the tile URL template, zoom range, bounds, centre and `vector_layers`."""
    try:
        chosen = engine.resolve(layers)
    except UnknownLayerError as exc:
        raise NotFound(str(exc)) from None
    return tilejson(catalog, [layer.id for layer in chosen], base)


@router.get("/styles/default.json", summary="MapLibre style of all layers")
async def style(catalog: Catalog = Depends(get_catalog), base: str = Depends(base_url)) -> dict[str, Any]:
    """A MapLibre GL style drawing every catalog layer with its default cartography."""
    return default_style(catalog, base)
