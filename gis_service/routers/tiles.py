"""Vector tiles, TileJSON and the MapLibre style."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from gis_service.access import layer_rules, policy
from gis_service.access.policy import CurrentPrincipal, current_principal
from gis_service.access.principal import Principal
from gis_service.errors import InvalidRequest, NotFound
from gis_service.routers.deps import base_url, get_map_catalog
from gis_service.services import resolve
from gis_service.tile_http import MVT_MEDIA_TYPE, tile_reply
from layers.catalog import Catalog, Layer
from layers.filters import FilterError, parse_filter
from layers.history import HistoryError
from tiles.cache import CachedTile
from tiles.engine import TileEngine, UnknownLayerError
from tiles.grid import TileAddressError, tile_address
from tiles.style import default_style, tilejson

router = APIRouter(tags=["tiles"])

LayerSpec = Annotated[
    str,
    Path(description="A layer id or a comma-separated list of layer ids (composite tile)", examples=["redline,river"]),
]


STALE_HEADERS: dict[str, Any] = {
    "X-Cache": {
        "description": "`stale`: served from the cache while the database is unreachable (may miss recent edits)",
        "schema": {"type": "string", "enum": ["stale"]},
    },
    "Warning": {"description": '`110 - "Response is Stale"`, with `X-Cache: stale`', "schema": {"type": "string"}},
}


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
RevisionParam = Annotated[
    int | None,
    Query(ge=0, description="Features as of this revision (red lines and protected areas keep history)"),
]
AsOfParam = Annotated[
    str | None,
    Query(description="Features as of a date or time, e.g. 2025-06-30 or 2025-06-30T12:00+08:00", max_length=40),
]


async def tile_revisions(
    engine: TileEngine, layers: list[Layer], revision: int | None, asof: str | None
) -> tuple[int | None, ...] | None:
    """The revision of each layer a tile shows (revisions are numbered per layer), checked to
    exist; None for the current data (no database round trip then). Asked on a tile
    connection: it fails as fast as a tile while the database is unreachable."""
    if revision is None and asof is None:
        return None
    resolve.check_revision_request(layers, revision, asof)  # 400 before borrowing a connection
    async with engine.connect() as conn:
        return await resolve.revisions(conn, layers, revision, asof)


async def serve_tile(
    request: Request,
    engine: TileEngine,
    layers: list[Layer],
    zxy: tuple[int, int, int],
    properties: str | None,
    filter_text: str | None,
    revision: int | None = None,
    asof: str | None = None,
    *,
    principal: Principal,
) -> Response:
    """Check the caller may read every layer (a composite with one it may not is refused, naming
    it), validate the address and options, get the tile of the caller's view and reply."""
    access = layer_rules.tile_access(principal, layers)
    if access.refused:
        layer_rules.require_layers(principal, layers)  # 401/403 naming them
    try:
        address = tile_address(*zxy)
    except TileAddressError as exc:
        raise InvalidRequest(str(exc)) from None
    chosen = tuple(p.strip() for p in properties.split(",") if p.strip()) if properties is not None else None
    hidden = access.hidden
    for layer in layers:
        if chosen:
            layer_rules.require_properties(principal, layer, chosen)
        if filter_text and layer.id in hidden:  # a filter may only name properties the caller sees
            try:
                parse_filter(filter_text, layer_rules.view(principal, layer))
            except FilterError as exc:
                raise InvalidRequest(f"filter: {exc}") from None
    revisions = await tile_revisions(engine, layers, revision, asof)
    scope = await policy.feature_scope(engine.catalog, principal, engine.connect)
    scope = scope if scope is not None and any(scope.applies(layer) for layer in layers) else None
    try:
        tile = await engine.tile(
            layers, address, properties=chosen, filter_text=filter_text, revision=revisions, hidden=hidden, scope=scope
        )
    except (FilterError, HistoryError) as exc:
        raise InvalidRequest(str(exc)) from None
    scoped = scope is not None
    return tile_response(request, tile, access.private or scoped, access.per_caller or scoped)


def tile_response(request: Request, tile: CachedTile, private: bool = False, per_caller: bool = False) -> Response:
    """The HTTP reply of a tile (ETag/304, gzip, 204 when empty); see ``gis_service.tile_http``."""
    status, headers, body = tile_reply(
        tile,
        request.headers.get("if-none-match", ""),
        request.headers.get("accept-encoding", ""),
        request.app.state.settings.tiles.max_age_s,
        private=private,
        per_caller=per_caller,
    )
    return Response(body, status_code=status, headers=headers)


@router.api_route(
    "/tiles/{layers}/{z}/{x}/{y}.pbf",
    methods=["GET"],
    summary="Mapbox Vector Tile of one or more layers",
    response_class=Response,
    responses={
        200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "The tile", "headers": STALE_HEADERS},
        204: {"description": "Empty tile: no feature of these layers here (or below their minzoom)"},
        400: {"description": "z/x/y outside the WebMercatorQuad grid, or an unusable filter or parameter value"},
        401: {"description": "A layer (or a property asked for) needs you to sign in"},
        403: {"description": "Signed in, but a layer (or a property asked for) is not for your role"},
        404: {"description": "Unknown layer (the message lists the valid layers), or a revision that does not exist"},
        503: {
            "description": "The database is unreachable or too slow and the tile is not cached (`Retry-After`"
            " says when to try again); cached tiles are served meanwhile with `Warning: 110` and `X-Cache: stale`",
            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        },
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
    revision: RevisionParam = None,
    asof: AsOfParam = None,
    engine: TileEngine = Depends(_engine),
    principal: Principal = Depends(current_principal),
) -> Response:
    """A composite MVT (one MVT layer per catalog layer, features keep their stable ids).

    An empty tile answers **204 No Content**. Below a layer's `minzoom` the layer is left out of
    the tile; above its `maxzoom` tiles are still served at full detail (clients overzoom anyway).
    """
    try:
        chosen = engine.resolve(layers)
    except UnknownLayerError as exc:
        raise NotFound(str(exc)) from None
    return await serve_tile(
        request, engine, chosen, (z, x, y), properties, filter_text, revision, asof, principal=principal
    )


@router.get("/tiles/{layers}.json", summary="TileJSON 3.0.0 of one or more layers")
async def layer_tilejson(
    layers: LayerSpec,
    principal: CurrentPrincipal,
    engine: TileEngine = Depends(_engine),
    catalog: Catalog = Depends(get_map_catalog),
    base: str = Depends(base_url),
) -> dict[str, Any]:
    """TileJSON with the tile URL template, zoom range, bounds, centre and `vector_layers` (the
    fields the caller sees; a layer the caller may not read is refused, 401/403)."""
    try:
        chosen = engine.resolve(layers)
    except UnknownLayerError as exc:
        raise NotFound(str(exc)) from None
    layer_rules.require_layers(principal, chosen)
    return tilejson(caller_catalog(principal, catalog), [layer.id for layer in chosen], base)


def caller_catalog(principal: Principal, catalog: Catalog) -> Catalog:
    """The catalog as the caller sees it: readable layers and rasters, hidden properties left out."""
    return Catalog.model_construct(
        layers=layer_rules.readable_layers(principal, catalog), rasters=layer_rules.readable_rasters(principal, catalog)
    )


@router.get("/styles/default.json", summary="MapLibre style of all layers")
async def style(
    principal: CurrentPrincipal, catalog: Catalog = Depends(get_map_catalog), base: str = Depends(base_url)
) -> dict[str, Any]:
    """A MapLibre GL style drawing every layer the caller may read with its default cartography
    (remote layers, copies of partners' collections, included: group `partners`)."""
    return default_style(caller_catalog(principal, catalog), base)
