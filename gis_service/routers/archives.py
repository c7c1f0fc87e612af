"""Serving PMTiles archives (e.g. exported by ``ecomap tiles export``) as XYZ tiles.

Archives are files ``<name>.pmtiles`` in ``ECOMAP_TILES__ARCHIVE_DIR``; they are opened
once (memory-mapped) and answered with the same ETag/gzip/204 semantics as live tiles.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import FileResponse

from gis_service.access import layer_rules, policy
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.db import connection
from gis_service.errors import Forbidden, InvalidRequest, NotFound
from gis_service.routers.deps import base_url
from gis_service.routers.tiles import tile_response
from gis_service.tile_http import MVT_MEDIA_TYPE
from tiles.cache import CachedTile
from tiles.grid import TileAddressError, tile_address
from tiles.offline import PMTilesArchive

router = APIRouter(prefix="/archives", tags=["tiles"])
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
PMTILES_MEDIA_TYPE = "application/vnd.pmtiles"


def _archive(request: Request, name: str) -> PMTilesArchive:
    directory = request.app.state.settings.tiles.archive_dir
    if directory is None:
        raise NotFound("no tile archives are configured: set ECOMAP_TILES__ARCHIVE_DIR to a directory of .pmtiles")
    path = directory / f"{name}.pmtiles"
    if not NAME.match(name) or not path.is_file():
        available = sorted(p.stem for p in directory.glob("*.pmtiles"))
        raise NotFound(f"no archive {name!r}; available: {', '.join(available) or 'none'}")
    opened: dict[str, PMTilesArchive] = getattr(request.app.state, "archives", {})
    request.app.state.archives = opened
    if name not in opened:
        opened[name] = PMTilesArchive(path)
    return opened[name]


async def _require_archive_layers(request: Request, archive: PMTilesArchive, principal: Principal) -> None:
    """An archive holding a catalog layer the caller may not read is refused (401/403), as the layer is;
    so is one holding a layer the caller's per-feature scope reads only in part (an archive holds
    whole layers: a partner with an area reads the live tiles, cut to it)."""
    catalog = request.app.state.catalog.current()
    ids = {entry.get("id") for entry in archive.metadata.get("vector_layers", [])}
    layers = [layer for layer in catalog.layers if layer.id in ids]
    layer_rules.require_layers(principal, layers)
    pool = request.app.state.pool
    scope = await policy.feature_scope(catalog, principal, lambda: connection(pool))
    scoped = [layer.id for layer in layers if scope is not None and scope.filters(layer)]
    if scoped:
        raise Forbidden(
            f"a tile archive holds whole layers, and {principal.actor} reads {', '.join(map(repr, scoped))} only"
            f" inside its area: use the live tiles, /tiles/{','.join(scoped)}/{{z}}/{{x}}/{{y}}.pbf"
        )


@router.get(
    "/{name}.pmtiles",
    summary="A PMTiles archive itself, read by range requests",
    response_class=FileResponse,
    responses={
        200: {"content": {PMTILES_MEDIA_TYPE: {}}, "description": "The whole archive"},
        206: {"content": {PMTILES_MEDIA_TYPE: {}}, "description": "The byte range asked for (`Range: bytes=a-b`)"},
        416: {"description": "The range lies outside the archive"},
    },
)
async def archive_file(request: Request, name: str, principal: Principal = Depends(current_principal)) -> FileResponse:
    """The archive file, for clients that read PMTiles directly (the map's vector basemap, via
    the `pmtiles` protocol): `Range` requests are answered 206 with that part only. The same
    access rule as its tiles: an archive holding catalog layers the caller may not read is refused."""
    archive = _archive(request, name)
    await _require_archive_layers(request, archive, principal)
    return FileResponse(archive.path, media_type=PMTILES_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@router.get("/{name}.json", summary="TileJSON of a PMTiles archive")
async def archive_tilejson(
    request: Request, name: str, base: str = Depends(base_url), principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    archive = _archive(request, name)
    await _require_archive_layers(request, archive, principal)
    header, metadata = archive.header, archive.metadata
    return {
        "tilejson": "3.0.0",
        "name": metadata.get("name", name),
        "tiles": [f"{base}/archives/{name}/{{z}}/{{x}}/{{y}}.pbf"],
        "minzoom": header["min_zoom"],
        "maxzoom": header["max_zoom"],
        "bounds": [
            header["min_lon_e7"] / 1e7,
            header["min_lat_e7"] / 1e7,
            header["max_lon_e7"] / 1e7,
            header["max_lat_e7"] / 1e7,
        ],
        "vector_layers": metadata.get("vector_layers", []),
    }


@router.get(
    "/{name}/{z}/{x}/{y}.pbf",
    summary="A tile from a PMTiles archive",
    response_class=Response,
    responses={200: {"content": {MVT_MEDIA_TYPE: {}}}, 204: {"description": "No tile in the archive here"}},
)
async def archive_tile(
    request: Request,
    name: str,
    z: Annotated[int, Path(ge=0, le=24)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    principal: Principal = Depends(current_principal),
) -> Response:
    archive = _archive(request, name)
    await _require_archive_layers(request, archive, principal)
    try:
        address = tile_address(z, x, y)
    except TileAddressError as exc:
        raise InvalidRequest(str(exc)) from None
    return tile_response(request, CachedTile(archive.tile(address.z, address.x, address.y)))
